//! `xnatfs status MOUNTPOINT`: the uploads of a mount that have not reached the server yet.
//!
//! The mount tells where its spool is through the extended attribute `user.xnatfs.spool` of
//! its root; the journal records there say, for each staged file, where it goes, whether it is
//! still open for writing, waiting for a retry, or refused, and the last error. `--spool-dir`
//! reads a spool folder directly, for a mount that has ended.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::StatusArgs;
use crate::fs::write::spool::{read_records, Record, UploadState};

/// The extended attribute of a mount's root that names its spool folder.
pub const SPOOL_XATTR: &str = "user.xnatfs.spool";

pub fn run(args: &StatusArgs) -> ExitCode {
    match report(args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(message) => {
            eprintln!("xnatfs status: {message}");
            ExitCode::from(2)
        }
    }
}

/// Print the report; returns how many files wait.
fn report(args: &StatusArgs) -> Result<usize, String> {
    let dirs: Vec<PathBuf> = match (&args.spool_dir, &args.mountpoint) {
        (Some(dir), _) => {
            // The folder given, or each per-server folder inside it.
            if dir.join("lock").exists() {
                vec![dir.clone()]
            } else {
                std::fs::read_dir(dir)
                    .map_err(|e| format!("{}: {e}", dir.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join("lock").exists())
                    .collect()
            }
        }
        (None, Some(mountpoint)) => vec![spool_of(mountpoint)?],
        (None, None) => return Err("give a mount point or --spool-dir".into()),
    };
    let mut records = Vec::new();
    for dir in &dirs {
        records.extend(read_records(dir).map_err(|e| format!("{}: {e}", dir.display()))?);
    }
    if records.is_empty() {
        println!("no uploads waiting");
        return Ok(0);
    }
    for record in &records {
        println!("{}", line(record));
    }
    Ok(records.len())
}

/// One line per staged file: state, size, path under the mount, attempts, last error.
fn line(record: &Record) -> String {
    let state = match record.state {
        UploadState::Writing => "writing",
        UploadState::Pending => "pending",
        UploadState::Failed => "failed",
    };
    let mut out = format!("{state:<8} {:>12} bytes  {}", record.size, record.shown);
    if record.attempts > 0 {
        out.push_str(&format!("  ({} attempt(s))", record.attempts));
    }
    if let Some(reason) = &record.reason {
        out.push_str(&format!("\n         last error: {reason}"));
    }
    out
}

/// The spool folder of the xnatfs mount at `mountpoint`.
fn spool_of(mountpoint: &Path) -> Result<PathBuf, String> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(mountpoint.as_os_str().as_bytes())
        .map_err(|_| "a mount point path with a NUL byte".to_string())?;
    let name = std::ffi::CString::new(SPOOL_XATTR).expect("no NUL in the name");
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C strings and a buffer of the length given.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let err = std::io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => format!(
                "{} is not a read-write xnatfs mount (use --spool-dir for the spool of one \
                 that has ended)",
                mountpoint.display()
            ),
            _ => format!("{}: {err}", mountpoint.display()),
        });
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&buf)))
}
