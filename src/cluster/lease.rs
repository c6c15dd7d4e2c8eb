//! Lease files: a claim that mounts on other machines see through a shared folder (a file's
//! fetch into the shared cache, one of a server's connection slots).
//!
//! Made for NFS-like filesystems: a lease is a file made with `O_CREAT|O_EXCL` (atomic on
//! NFSv3 and later), never `flock`, `mmap` or inotify. Its holder keeps it alive by touching
//! its mtime every [`HEARTBEAT`] (one thread per process, [`Heartbeats`]). A lease is dead when
//! the process that holds it is gone (same host: `kill(pid, 0)`), or when another mount sees
//! its mtime unchanged for [`STALE`] on its own clock (no clocks are compared between
//! machines). A dead lease is taken over by renaming it away (one taker wins the rename) and
//! making a new one. Two takers that both judged the same lease dead can, at worst, both hold
//! it for a moment: what a lease guards here (a fetch whose result is renamed into place, a
//! connection) stays correct when that happens, it only costs a request.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// How often a holder touches its leases.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a lease's mtime must stay unchanged before another mount takes it over.
pub const STALE: Duration = Duration::from_secs(5);

/// A lease this process holds; dropping it removes the file (if it is still this lease's).
pub struct Lease {
    path: PathBuf,
    file: Arc<File>,
    ino: u64,
    _beat: Beat,
}

impl Lease {
    /// Takes the lease at `path` if no one holds it; `mode` is the file's permission bits.
    pub fn try_take(path: &Path, mode: u32) -> io::Result<Option<Lease>> {
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(e),
        };
        // The umask may have taken bits the group needs.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        writeln!(file, "{} {}", hostname(), std::process::id())?;
        let ino = file.metadata()?.ino();
        let file = Arc::new(file);
        Ok(Some(Lease {
            path: path.to_path_buf(),
            _beat: Heartbeats::global().add(file.clone()),
            file,
            ino,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Touches the lease now (the heartbeat thread does so every [`HEARTBEAT`]).
    pub fn touch(&self) {
        let _ = self.file.set_modified(SystemTime::now());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Only our own file: a taker may have replaced it after judging us dead.
        if fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// What a mount has seen of other holders' leases: each lease's mtime and since when (on this
/// mount's clock) it has not changed.
#[derive(Default)]
pub struct Watcher {
    seen: HashMap<PathBuf, Seen>,
}

struct Seen {
    ino: u64,
    mtime: SystemTime,
    since: Instant,
}

/// The state of a lease someone else may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// No lease file.
    Free,
    /// Held, and alive as far as can be told.
    Alive,
    /// Held by a process that is gone or stopped touching it.
    Dead,
}

impl Watcher {
    /// Looks at the lease at `path`.
    pub fn check(&mut self, path: &Path, stale: Duration) -> Holder {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(_) => {
                self.seen.remove(path);
                return Holder::Free;
            }
        };
        if local_holder_is_gone(path) {
            return Holder::Dead;
        }
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let now = Instant::now();
        let seen = self.seen.entry(path.to_path_buf()).or_insert(Seen {
            ino: meta.ino(),
            mtime,
            since: now,
        });
        if seen.ino != meta.ino() || seen.mtime != mtime {
            *seen = Seen {
                ino: meta.ino(),
                mtime,
                since: now,
            };
        }
        if now.duration_since(seen.since) >= stale {
            Holder::Dead
        } else {
            Holder::Alive
        }
    }

    /// Removes a lease judged dead, so that it can be taken: renamed to a name of our own
    /// first, so that of two mounts breaking it at once only one does.
    pub fn break_dead(&mut self, path: &Path) {
        self.seen.remove(path);
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let mut away = path.as_os_str().to_owned();
        away.push(format!(
            ".dead.{}.{}.{}",
            hostname(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        if fs::rename(path, &away).is_ok() {
            tracing::info!(lease = %path.display(), "took over a lease whose holder is gone");
            let _ = fs::remove_file(&away);
        }
    }
}

/// Whether the lease names a process of this host that no longer exists.
fn local_holder_is_gone(path: &Path) -> bool {
    let mut text = String::new();
    let read = File::open(path).and_then(|f| f.take(512).read_to_string(&mut text));
    if read.is_err() {
        return false;
    }
    let mut words = text.split_whitespace();
    let (Some(host), Some(pid)) = (words.next(), words.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<libc::pid_t>() else {
        return false;
    };
    if host != hostname() || pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// This machine's name, as leases record it.
pub fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
        let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        match std::str::from_utf8(&buf[..end]) {
            Ok(name) if r == 0 && !name.is_empty() && !name.contains(char::is_whitespace) => {
                name.to_string()
            }
            _ => "unknown-host".to_string(),
        }
    })
}

/// The process's heartbeat: one thread that touches every lease held, every [`HEARTBEAT`].
pub struct Heartbeats {
    leases: Mutex<HashMap<u64, Arc<File>>>,
    next: AtomicU64,
}

/// A lease's place in the heartbeat; removed on drop.
struct Beat(u64);

impl Drop for Beat {
    fn drop(&mut self) {
        Heartbeats::global().leases.lock().unwrap().remove(&self.0);
    }
}

impl Heartbeats {
    fn global() -> &'static Heartbeats {
        static BEATS: OnceLock<Heartbeats> = OnceLock::new();
        BEATS.get_or_init(|| {
            let _ = std::thread::Builder::new()
                .name("xnatfs-leases".into())
                .spawn(|| loop {
                    std::thread::sleep(HEARTBEAT);
                    let files: Vec<Arc<File>> = Heartbeats::global()
                        .leases
                        .lock()
                        .unwrap()
                        .values()
                        .cloned()
                        .collect();
                    let now = SystemTime::now();
                    for f in files {
                        let _ = f.set_modified(now);
                    }
                });
            Heartbeats {
                leases: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
            }
        })
    }

    fn add(&self, file: Arc<File>) -> Beat {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.leases.lock().unwrap().insert(id, file);
        Beat(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_file_goes_with_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lease");
        let lease = Lease::try_take(&path, 0o600).unwrap().expect("free");
        assert!(Lease::try_take(&path, 0o600).unwrap().is_none());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut w = Watcher::default();
        assert_eq!(w.check(&path, STALE), Holder::Alive);
        drop(lease);
        assert!(!path.exists());
        assert_eq!(w.check(&path, STALE), Holder::Free);
        assert!(Lease::try_take(&path, 0o600).unwrap().is_some());
    }

    #[test]
    fn a_lease_of_a_gone_process_is_dead_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lease");
        // A pid that cannot exist (above the kernel's pid_max).
        fs::write(&path, format!("{} 2000000000\n", hostname())).unwrap();
        let mut w = Watcher::default();
        assert_eq!(w.check(&path, Duration::from_secs(3600)), Holder::Dead);
        w.break_dead(&path);
        assert!(!path.exists());
        assert!(Lease::try_take(&path, 0o600).unwrap().is_some());
    }

    #[test]
    fn a_lease_no_one_touches_goes_stale_and_a_touched_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let quiet = dir.path().join("quiet.lease");
        fs::write(&quiet, "other-host 1\n").unwrap();
        let held = Lease::try_take(&dir.path().join("held.lease"), 0o600)
            .unwrap()
            .unwrap();
        let stale = Duration::from_millis(300);
        let mut w = Watcher::default();
        assert_eq!(w.check(&quiet, stale), Holder::Alive);
        assert_eq!(w.check(held.path(), stale), Holder::Alive);
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(600) {
            std::thread::sleep(Duration::from_millis(20));
            held.touch();
            assert_eq!(w.check(held.path(), stale), Holder::Alive);
        }
        assert_eq!(w.check(&quiet, stale), Holder::Dead);
    }
}
