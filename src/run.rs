//! The command line's entry point. `mount.xnatfs` is the same binary under another name (a
//! symlink made by `scripts/install.sh`; cargo cannot name a binary with a dot), told apart by
//! `argv[0]`.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Parse this process's arguments and run the command; called as `mount.xnatfs` (by mount(8),
/// or by hand) it is the same as `xnatfs mount …`.
pub fn run_cli() -> ExitCode {
    tune_malloc();
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as_helper = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|name| name == "mount.xnatfs");
    let mut helper = HelperFlags::default();
    if invoked_as_helper {
        helper = match HelperFlags::take(&mut args) {
            Ok(flags) => flags,
            Err(message) => {
                eprintln!("mount.xnatfs: {message}");
                return ExitCode::from(2);
            }
        };
        args.insert(1, "mount".into());
        if helper.sloppy {
            args.push("--sloppy".into());
        }
    }
    let cli = Cli::parse_from(args.clone());
    let mount = match cli.command {
        Command::Mount(mount) => mount,
        Command::Status(status) => return crate::status::run(&status),
        Command::Token(token) => return crate::token::run(&token),
        Command::Warm(warm) => return crate::warm::run(&warm),
        Command::Generate(what) => return crate::generate::run(&what),
    };
    let result = mount.resolve().and_then(|opts| {
        if helper.verbose {
            eprintln!(
                "mount.xnatfs: mounting {} at {}{}",
                opts.server.as_deref().unwrap_or("the configured server"),
                opts.mountpoint.display(),
                if helper.fake { " (faked: -f)" } else { "" }
            );
        }
        if helper.fake {
            // mount(8) -f: everything but the mount itself, which here is all there is.
            return Ok(());
        }
        crate::mount::run(opts, args[1..].to_vec())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xnatfs: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The flags mount(8) gives its helpers (`mount.TYPE SPEC DIR [-sfnv] [-N NS] [-o OPTS]
/// [-t TYPE]`), taken out of the arguments before the mount command's own parsing: there `-f`
/// would mean the foreground, for a helper it means fake.
#[derive(Debug, Default)]
struct HelperFlags {
    /// `-s`: ignore unknown `-o` options.
    sloppy: bool,
    /// `-f`: do everything but mount.
    fake: bool,
    /// `-v`: say what is done.
    verbose: bool,
}

impl HelperFlags {
    fn take(args: &mut Vec<OsString>) -> Result<HelperFlags, String> {
        let mut flags = HelperFlags::default();
        let mut kept = Vec::with_capacity(args.len());
        let mut rest = std::mem::take(args).into_iter();
        kept.extend(rest.next()); // argv[0]
        while let Some(arg) = rest.next() {
            let text = arg.to_string_lossy();
            match text.as_ref() {
                // The type (`xnatfs`, or `fuse.xnatfs` through mount.fuse): this is it.
                "-t" => {
                    rest.next();
                }
                "-N" => {
                    return Err(
                        "-N (mount in another namespace) is not supported: run mount in it".into(),
                    )
                }
                "-o" => {
                    kept.push(arg);
                    kept.extend(rest.next());
                }
                t if t.len() > 1
                    && t.starts_with('-')
                    && t[1..].chars().all(|c| "sfnv".contains(c)) =>
                {
                    for c in t[1..].chars() {
                        match c {
                            's' => flags.sloppy = true,
                            'f' => flags.fake = true,
                            'v' => flags.verbose = true,
                            _ => {} // -n: there is no mtab to skip writing
                        }
                    }
                }
                _ => kept.push(arg),
            }
        }
        *args = kept;
        Ok(flags)
    }
}

/// Allocator settings for a daemon that streams megabyte blocks through many threads. glibc
/// gives each thread that allocates its own arena and keeps what was freed there, which more
/// than doubles the daemon's peak RSS: two arenas keep the peak near the engine's live memory.
/// And block buffers (a block plus slack, recycled by `cache::BlockBuffers`) are put above a
/// fixed mmap threshold, so one freed beyond the recycler's free list goes back to the system
/// rather than leaving a hole in the heap; everything smaller (a FUSE write or reply is at most
/// a block) stays on the heap. A fixed mmap threshold also fixes glibc's trim threshold at
/// 128 KiB, which hands the heap's top back to the system each time the HTTP client's read
/// buffers (a few hundred KiB, one after another) are freed and faults it in again for the
/// next: 6% of a cold read's CPU. Up to 64 MiB of free heap top is kept instead, and the heap
/// grows 16 MiB at a time. Must run before any thread starts.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        let threshold = crate::fs::cache::DEFAULT_BLOCK_SIZE + 4096;
        libc::mallopt(libc::M_MMAP_THRESHOLD, threshold as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(args: &[&str]) -> (HelperFlags, Vec<String>) {
        let mut args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let flags = HelperFlags::take(&mut args).unwrap();
        (
            flags,
            args.into_iter().map(|a| a.into_string().unwrap()).collect(),
        )
    }

    #[test]
    fn mount8_helper_flags_are_taken_out() {
        let (f, rest) = take(&[
            "mount.xnatfs",
            "https://x.org",
            "/mnt",
            "-sfnv",
            "-o",
            "ro,-f",
            "-t",
            "xnatfs",
        ]);
        assert!(f.sloppy && f.fake && f.verbose);
        assert_eq!(
            rest,
            ["mount.xnatfs", "https://x.org", "/mnt", "-o", "ro,-f"]
        );
        let (f, rest) = take(&["mount.xnatfs", "https://x.org", "/mnt", "-n"]);
        assert!(!f.sloppy && !f.fake && !f.verbose);
        assert_eq!(rest, ["mount.xnatfs", "https://x.org", "/mnt"]);
        let mut ns: Vec<OsString> = ["mount.xnatfs", "u", "/m", "-N", "1"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(HelperFlags::take(&mut ns).is_err());
    }
}
