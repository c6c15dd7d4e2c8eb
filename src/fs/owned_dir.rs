//! Folders xnatfs keeps its own files in (the disk cache, a spool), claimed before anything in
//! them is trusted, changed or deleted.
//!
//! A folder is used only when it is a real folder (not a symbolic link) owned by this user, and
//! either new, empty, marked as xnatfs's own (a `.xnatfs` file), or holding nothing but what
//! xnatfs puts there (a folder made by a version before the mark). Anything else is refused
//! with a message that names it, so `--cache-dir ~` can never chmod a home or empty its `tmp`.
//! A claimed folder is made 0700 and marked.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mark of a folder xnatfs made.
pub const MARK: &str = ".xnatfs";

/// Make or check `dir` as xnatfs's `what` folder (e.g. "cache"); `ours` says whether an entry
/// name is one xnatfs makes there (for folders made before the mark).
pub fn claim(dir: &Path, what: &str, ours: impl Fn(&str) -> bool) -> io::Result<()> {
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{what} folder {}: {why}", dir.display()),
        ))
    };
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            make_with_parents(dir)?;
        }
        Err(e) => return Err(e),
        Ok(meta) if meta.file_type().is_symlink() => {
            return refuse("is a symbolic link; give the folder it points to instead".into())
        }
        Ok(meta) if !meta.is_dir() => return refuse("is not a folder".into()),
        // SAFETY: geteuid cannot fail.
        Ok(meta) if meta.uid() != unsafe { libc::geteuid() } => {
            return refuse(format!("belongs to another user (uid {})", meta.uid()))
        }
        Ok(_) => {
            let marked = fs::symlink_metadata(dir.join(MARK)).is_ok_and(|m| m.is_file());
            if !marked {
                for entry in fs::read_dir(dir)? {
                    let name = entry?.file_name();
                    let name = name.to_string_lossy();
                    if !ours(&name) {
                        return refuse(format!(
                            "holds {name:?}, which xnatfs did not put there: give a new or \
                             empty folder"
                        ));
                    }
                }
            }
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    let mark = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(MARK));
    match mark {
        Ok(mut f) => f.write_all(format!("xnatfs {what} folder\n").as_bytes()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("{what} folder {}: cannot mark it: {e}", dir.display()),
        )),
    }
}

/// Makes `dir` and any folder missing above it, 0700 (past the umask); a `dir` another process
/// made meanwhile is fine.
pub fn make_with_parents(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o700)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes the claimed folder `dir` for this process: an exclusive `flock` on `dir/lock` (made
/// 0600, never through a link), held while the returned file is open. When another process
/// holds it: `WouldBlock`, with the message `busy`.
pub fn lock(dir: &Path, busy: impl FnOnce() -> String) -> io::Result<fs::File> {
    use std::os::fd::AsRawFd;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join("lock"))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => io::Error::new(io::ErrorKind::WouldBlock, busy()),
            _ => err,
        });
    }
    Ok(file)
}

/// Write `bytes` to the new file `tmp` (0600, never through a link) and rename it over
/// `dest`, so a reader sees the old file or the new one, never half of one; with `sync` the
/// bytes are on the disk before the rename. `tmp` is removed if anything fails.
pub fn replace_private(tmp: &Path, dest: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        fs::rename(tmp, dest)
    };
    let result = write();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// A folder inside a claimed one, made 0700 if missing; refused if it is anything but a real
/// folder (a symbolic link planted there is never followed).
pub fn subdir(dir: &Path) -> io::Result<()> {
    subdir_with_mode(dir, 0o700)
}

/// [`subdir`], made with `mode` (past the umask; a setgid bit it inherited is kept).
pub fn subdir_with_mode(dir: &Path, mode: u32) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) if mode == 0o700 => Ok(()),
        Ok(()) => {
            let setgid = fs::symlink_metadata(dir)?.mode() & 0o2000;
            fs::set_permissions(dir, fs::Permissions::from_mode(mode | setgid))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(dir)?;
            if meta.is_dir() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a folder (a link?): not used", dir.display()),
                ))
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_names(name: &str) -> bool {
        name == "tmp" || (name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    #[test]
    fn new_empty_and_old_layout_folders_are_claimed() {
        let top = tempfile::tempdir().unwrap();
        let new = top.path().join("a/b/cache");
        claim(&new, "cache", cache_names).unwrap();
        assert!(new.join(MARK).is_file());
        let mode = fs::metadata(&new).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Marked: anything may be in it.
        fs::write(new.join("other"), b"x").unwrap();
        claim(&new, "cache", cache_names).unwrap();
        let old = top.path().join("old");
        fs::create_dir_all(old.join("tmp")).unwrap();
        fs::create_dir_all(old.join("ab/cd")).unwrap();
        fs::set_permissions(&old, fs::Permissions::from_mode(0o777)).unwrap();
        claim(&old, "cache", cache_names).unwrap();
        let mode = fs::metadata(&old).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o700,
            "a world-writable folder of ours is made private"
        );
    }

    #[test]
    fn foreign_folders_and_links_are_refused_untouched() {
        let top = tempfile::tempdir().unwrap();
        let home = top.path().join("home");
        fs::create_dir_all(home.join("tmp")).unwrap();
        fs::write(home.join("tmp/precious"), b"mine").unwrap();
        fs::write(home.join("notes.txt"), b"mine").unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
        let err = claim(&home, "cache", cache_names).unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
        assert!(home.join("tmp/precious").exists());
        let mode = fs::metadata(&home).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "left as it was");
        assert!(!home.join(MARK).exists());

        let link = top.path().join("link");
        std::os::unix::fs::symlink(&home, &link).unwrap();
        let err = claim(&link, "cache", cache_names).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");

        let claimed = top.path().join("c");
        claim(&claimed, "cache", cache_names).unwrap();
        std::os::unix::fs::symlink(&home, claimed.join("tmp")).unwrap();
        assert!(subdir(&claimed.join("tmp")).is_err());
        subdir(&claimed.join("ab")).unwrap();
        subdir(&claimed.join("ab")).unwrap();
    }
}
