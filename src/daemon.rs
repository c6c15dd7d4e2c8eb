//! Going to the background once the mount is ready, the way mount(8) helpers are expected to.
//!
//! `fork()` after the tokio runtime or any thread has started is unsafe, so the background mode
//! re-runs this same program in foreground mode, in a new session, with the write end of a pipe
//! named in `XNATFS_READY_FD`. The child mounts, then writes `ok` (or `error: <message>`) to the
//! pipe and closes it; the parent waits for that word and exits 0 or 1 with the message. So a wrong
//! password or an unreachable server is reported by the command the user typed, with a non-zero
//! exit, and a successful return means the mount is usable.
//!
//! Credentials are resolved by the parent (which may prompt on the terminal) and handed to the
//! child on its standard input, never in its arguments or environment, where `ps` could see them.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The environment variable that carries the ready pipe's file descriptor to the child.
pub const READY_FD_ENV: &str = "XNATFS_READY_FD";

/// The child's side of the pipe: tells the waiting parent how the mount went.
pub struct Ready {
    pipe: File,
}

impl Ready {
    /// What the parent wrote on our standard input (the resolved credentials), read to the end.
    pub fn read_handoff() -> std::io::Result<String> {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    }

    /// The pipe handed down by a parent in background mode, if this process is such a child.
    pub fn from_env() -> Option<Ready> {
        let fd: i32 = std::env::var(READY_FD_ENV).ok()?.parse().ok()?;
        std::env::remove_var(READY_FD_ENV);
        // SAFETY: the parent opened this descriptor for us and nothing else in this process owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Some(Ready {
            pipe: File::from(owned),
        })
    }

    /// The mount is up: the parent may return.
    pub fn ok(mut self) {
        let _ = self.pipe.write_all(b"ok\n");
    }

    /// The mount failed: the parent prints `message` and exits non-zero.
    pub fn fail(mut self, message: &str) {
        let _ = self
            .pipe
            .write_all(format!("error: {message}\n").as_bytes());
    }
}

/// Re-run this program with `args` in the background, hand it `handoff` on its standard input,
/// and wait until it reports.
///
/// Returns `Ok(())` once the child said `ok`, or the child's error message.
pub fn run_in_background(args: &[OsString], handoff: &str) -> Result<(), String> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!(
            "cannot make a pipe: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: both descriptors were just created by pipe2 and are owned here only.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let write_fd = fds[1];
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;

    let mut command = Command::new(exe);
    // argv[0] `xnatfs`, whatever name started us: `args` already say `mount`.
    command
        .arg0("xnatfs")
        .args(args)
        .env(READY_FD_ENV, write_fd.to_string())
        // The password went over the pipe: the daemon's environment (readable in
        // /proc/PID/environ for as long as it runs) must not hold it.
        .env_remove("XNAT_PASS")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec: fcntl to let the write end
    // survive exec, and setsid to leave the caller's session and terminal.
    unsafe {
        command.pre_exec(move || {
            let flags = libc::fcntl(write_fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(write_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start the background process: {e}"))?;
    drop(writer);
    if let Some(mut stdin) = child.stdin.take() {
        // A child that died at once closes the pipe; its exit is reported below.
        let _ = stdin.write_all(handoff.as_bytes());
    }

    let mut word = String::new();
    let read = File::from(reader).read_to_string(&mut word);
    match (read, word.trim_end()) {
        (Ok(_), "ok") => Ok(()),
        (Ok(_), msg) if msg.starts_with("error: ") => {
            let _ = child.wait();
            Err(msg.trim_start_matches("error: ").to_string())
        }
        _ => {
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            Err(format!(
                "the background process ended before the mount was ready ({status}); run with -f to see why"
            ))
        }
    }
}
