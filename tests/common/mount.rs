//! A real xnatfs mount for tests: the `xnatfs` binary in the foreground as a child process,
//! unmounted and stopped by PID when dropped (also when a test panics).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Mount {
    pub dir: tempfile::TempDir,
    pub cache: tempfile::TempDir,
    child: Option<Child>,
    pub log: PathBuf,
}

/// Whether `path` is a mount point right now (from /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let target = path.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines()
                .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
        })
        .unwrap_or(false)
}

/// `--log-level` from `XNATFS_TEST_LOG_LEVEL` (e.g. `debug`), for a closer look at a failure.
fn log_level() -> Vec<String> {
    match std::env::var("XNATFS_TEST_LOG_LEVEL") {
        Ok(level) if !level.is_empty() => vec!["--log-level".into(), level],
        _ => vec![],
    }
}

pub fn xnatfs_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xnatfs"))
}

impl Mount {
    /// Mount `url` as `user`/`password` with extra flags; panics with the daemon's log if it
    /// does not come up.
    pub fn start(url: &str, user: &str, password: &str, extra: &[&str]) -> Mount {
        Self::start_with_cache(
            url,
            user,
            password,
            extra,
            tempfile::tempdir().expect("cache dir"),
        )
    }

    pub fn start_with_cache(
        url: &str,
        user: &str,
        password: &str,
        extra: &[&str],
        cache: tempfile::TempDir,
    ) -> Mount {
        assert!(
            Path::new("/dev/fuse").exists(),
            "these tests mount FUSE filesystems and need /dev/fuse"
        );
        let dir = tempfile::tempdir().expect("mount dir");
        let log = cache.path().join("xnatfs.log");
        let own_spool = extra.contains(&"--spool-dir");
        let spool = cache.path().join("spool");
        let child = Command::new(xnatfs_bin())
            .arg("mount")
            .arg(url)
            .arg(dir.path())
            .arg("-f")
            .arg("--cache-dir")
            .arg(cache.path().join("blocks"))
            .arg("--log-file")
            .arg(&log)
            .args(if own_spool {
                vec![]
            } else {
                vec!["--spool-dir".as_ref(), spool.as_os_str()]
            })
            .args(extra)
            .args(log_level())
            .env("XNAT_USER", user)
            .env("XNAT_PASS", password)
            .env_remove("XNAT_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start xnatfs");
        let mut mount = Mount {
            dir,
            cache,
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !is_mounted(mount.dir.path()) {
            if let Some(status) = mount.child.as_mut().unwrap().try_wait().expect("wait") {
                let log = std::fs::read_to_string(&mount.log).unwrap_or_default();
                panic!("xnatfs exited with {status} before mounting; log:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "xnatfs did not mount within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        mount
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The daemon's log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Unmount and wait for the daemon to exit.
    pub fn stop(&mut self) {
        self.unmount_with(&["umount"]);
    }

    /// Unmount with `command` (e.g. `["fusermount3", "-u"]`), wait for the daemon to exit and
    /// return its exit status (`None` if it had to be killed, or was already stopped). Whatever
    /// happens, the mount is gone and the daemon stopped afterwards.
    pub fn unmount_with(&mut self, command: &[&str]) -> Option<ExitStatus> {
        if is_mounted(self.dir.path()) {
            let _ = Command::new(command[0])
                .args(&command[1..])
                .arg(self.dir.path())
                .status();
        }
        let mut status = None;
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(s)) => {
                        status = Some(s);
                        break;
                    }
                    _ if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        if is_mounted(self.dir.path()) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
        status
    }

    /// The daemon dies as in a crash (SIGKILL); the dead mount is detached. The cache and
    /// spool folders stay for a remount ([`Mount::into_cache`]).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if is_mounted(self.dir.path()) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }

    /// The spool folder this mount stages files in (inside its cache folder).
    pub fn spool_root(&self) -> PathBuf {
        self.cache.path().join("spool")
    }

    /// Stop this mount and keep its cache folder, for a remount with the same `--cache-dir`.
    pub fn into_cache(mut self) -> tempfile::TempDir {
        self.stop();
        std::mem::replace(&mut self.cache, tempfile::tempdir().expect("cache dir"))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            // The test failed: the daemon's side of the story goes with the failure message.
            eprintln!(
                "---- xnatfs log of the mount at {} ----\n{}---- end of log ----",
                self.dir.path().display(),
                self.log_text()
            );
        }
    }
}

/// `xnatfs status ARGS MOUNTPOINT`: its exit code, standard output and standard error.
pub fn xnatfs_status(mountpoint: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(xnatfs_bin())
        .arg("status")
        .args(args)
        .arg(mountpoint)
        .output()
        .expect("run xnatfs status");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
