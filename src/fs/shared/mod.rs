//! The shared cache tier (`--shared-cache DIR`): whole file versions in a folder that many
//! mounts use at once, on one machine or on many through a cluster filesystem (NFS, Lustre,
//! GPFS), between each mount's own block cache and the server.
//!
//! - **Content-addressed**: an entry is named by the file version's key (its URI and version
//!   token: listed size and MD5 digest), so two mounts, two users with read access, or a later
//!   mount find the same bytes (`entry`).
//! - **One fetch across mounts**: a mount that needs a version no entry holds takes its fetch
//!   lease (`leases/<key>.lease`, see `cluster::lease`) and downloads the whole file into
//!   `tmp/`, serving its own readers from there as the bytes land (`fill`); another mount that
//!   finds the lease held waits (polling every 100-200 ms) and reads the entry once it is in
//!   place; a lease whose holder died is taken over within seconds. An entry is published
//!   only once its size and MD5 match what the server and its catalog said.
//! - **NFS-safe**: only create-exclusive, write, rename and unlink; no `flock`, `mmap` or
//!   inotify; one file per version (plus a lease while it is fetched), not one per MiB.
//! - **Bounded** (`--shared-cache-size`): a mount that publishes past the bound removes the
//!   entries used longest ago (mtime, which readers touch at most once a minute), never one
//!   used in the last [`IN_USE`], so an entry another mount is reading stays.
//! - **Permissions**: the folder is made 0700. A folder made group-shared beforehand
//!   (`chmod 2770`, see docs/CLUSTER.md) gets entries 0660 and folders 0770; nothing is ever
//!   given to others, and a folder writable by every user is refused.

mod entry;
mod fill;

pub use entry::{EntryWriter, PIECE};

use crate::cluster::lease::{Holder, Lease, Watcher, STALE};
use crate::fs::cache::FileKey;
use crate::fs::owned_dir::MARK;
use crate::xnat::{Backend, Download, Result as XnatResult, XnatError};
use entry::Entry;
use fill::Fill;
use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::ops::Range;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// An entry used this recently is never evicted (another mount may be reading it).
pub const IN_USE: Duration = Duration::from_secs(300);
/// How often one mount touches an entry it reads.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Temp files and broken leases older than this are leftovers of a crash.
const LEFTOVER: Duration = Duration::from_secs(3600);
/// How long the folder is bypassed after a fill failed to write there.
const BYPASS_FOR: Duration = Duration::from_secs(60);
/// Default bound of the shared cache.
pub const DEFAULT_SHARED_CACHE_SIZE: u64 = 100 << 30;

const SUBDIRS: [&str; 4] = ["objects", "tmp", "leases", "slots"];

/// The version of a file a fetch is for.
#[derive(Clone, Debug)]
pub struct SharedFile {
    pub key: FileKey,
    pub uri: String,
    /// The catalog's MD5 digest: an entry is published only if its bytes match it.
    pub md5: Option<[u8; 16]>,
}

/// Counters for `xnatfs status` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedStats {
    /// Fetches answered from an entry in place.
    pub hits: u64,
    /// Whole-file downloads this mount made into the shared cache.
    pub fills: u64,
    /// Fetches that waited for another mount's download.
    pub waits: u64,
    /// Leases taken over from a holder that died.
    pub takeovers: u64,
    /// Entries this mount removed to stay under the bound.
    pub evicted: u64,
    /// Entries that failed a check (removed, fetched again).
    pub damaged: u64,
    /// Bytes in the folder at the last count.
    pub bytes: u64,
    pub capacity: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    fills: AtomicU64,
    waits: AtomicU64,
    takeovers: AtomicU64,
    evicted: AtomicU64,
    damaged: AtomicU64,
}

pub struct SharedCache {
    root: PathBuf,
    capacity: u64,
    /// Mode of the files made here (0600, or 0660 in a group-shared folder).
    file_mode: u32,
    /// Fills this mount runs: its own later fetches of the version read them.
    fills: Mutex<HashMap<FileKey, Arc<Fill>>>,
    watcher: Mutex<Watcher>,
    touched: Mutex<HashMap<FileKey, Instant>>,
    /// Bytes in the folder: counted at open and by each eviction pass, plus what this mount
    /// published since.
    used: AtomicU64,
    evicting: AtomicBool,
    /// Until when the folder is bypassed (a fill failed to write: a full or failing disk).
    bypass_until: Mutex<Option<Instant>>,
    counters: Counters,
}

impl fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCache")
            .field("root", &self.root)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

enum Probe {
    Entry(Entry),
    /// This mount's fill of the file (started by this look or an earlier one).
    Filling(Arc<Fill>),
    Busy,
}

impl SharedCache {
    /// Opens (making it if needed) the shared cache in `dir`, bounded at `capacity` bytes.
    pub fn open(dir: &Path, capacity: u64) -> io::Result<Arc<Self>> {
        let file_mode = claim_root(dir)?;
        for sub in SUBDIRS {
            make_dir(&dir.join(sub), file_mode)?;
        }
        let cache = Arc::new(SharedCache {
            root: dir.to_path_buf(),
            capacity,
            file_mode,
            fills: Mutex::new(HashMap::new()),
            watcher: Mutex::new(Watcher::default()),
            touched: Mutex::new(HashMap::new()),
            used: AtomicU64::new(0),
            evicting: AtomicBool::new(false),
            bypass_until: Mutex::new(None),
            counters: Counters::default(),
        });
        cache.evict();
        Ok(cache)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The mode files made in the shared folder get (leases, slots).
    pub fn file_mode(&self) -> u32 {
        self.file_mode
    }

    /// Where the connection slots of `server` (its URL) live.
    pub fn slots_dir(&self, server: &str) -> PathBuf {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(server.trim_end_matches('/').as_bytes());
        let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        self.root.join("slots").join(name)
    }

    fn entry_path(&self, key: &FileKey) -> PathBuf {
        let h = key.to_hex();
        self.root
            .join("objects")
            .join(&h[..2])
            .join(format!("{h}.xfe"))
    }

    /// A new name in `tmp/` for an entry of `key` being written (by this host and process:
    /// the folder may be shared by many).
    fn temp_path(&self, key: &FileKey) -> PathBuf {
        self.root.join("tmp").join(format!(
            "{}.{}.{}.{:08x}",
            key.to_hex(),
            crate::cluster::lease::hostname(),
            std::process::id(),
            rand::random::<u32>()
        ))
    }

    fn lease_path(&self, key: &FileKey) -> PathBuf {
        self.root
            .join("leases")
            .join(format!("{}.lease", key.to_hex()))
    }

    /// Whether an entry for the version is in place (its checks are made when it is read).
    pub fn contains(&self, key: &FileKey) -> bool {
        fs::symlink_metadata(self.entry_path(key)).is_ok_and(|m| m.is_file())
    }

    /// The version's bytes `range` (all of them for `None`), from its entry, from this mount's
    /// fill of it, or from a fill started here (from `backend`) once no other mount is
    /// fetching it. A shared folder that fails (a full or unreachable disk) is bypassed for a
    /// while: the server is asked directly.
    pub async fn fetch(
        self: &Arc<Self>,
        backend: &Arc<dyn Backend>,
        file: SharedFile,
        range: Option<Range<u64>>,
    ) -> XnatResult<Download> {
        let mut waited = false;
        let mut pause = Duration::from_millis(100);
        loop {
            if self.bypassed() {
                return backend.fetch(&file.uri, range).await;
            }
            let (me, wanted, from) = (self.clone(), file.clone(), backend.clone());
            let runtime = tokio::runtime::Handle::current();
            let probe =
                tokio::task::spawn_blocking(move || me.probe(&wanted, &from, &runtime)).await;
            let probe = match probe {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    tracing::warn!(dir = %self.root.display(), error = %e,
                        "shared cache unusable for this file; fetching it directly");
                    return backend.fetch(&file.uri, range).await;
                }
                Err(e) => return Err(XnatError::io("shared cache", io::Error::other(e))),
            };
            match probe {
                Probe::Entry(entry) => {
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    return fill::entry_download(self.clone(), file.key, entry, range);
                }
                Probe::Filling(fill) => match fill.download(range.clone()).await {
                    // The fill could not write: the folder is bypassed now, ask again.
                    Err(XnatError::Io { .. }) => continue,
                    answer => return answer,
                },
                Probe::Busy => {
                    if !waited {
                        waited = true;
                        self.counters.waits.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(uri = %file.uri, "another mount is fetching this file; waiting for it");
                    }
                    let jitter = rand::random::<u64>() % (pause.as_millis() as u64 + 1);
                    tokio::time::sleep(pause + Duration::from_millis(jitter)).await;
                    pause = (pause * 3 / 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    /// One look (blocking): an entry, this mount's fill, a fill started now (lease taken), or
    /// another mount's fill to wait for. A fill is spawned here, on `runtime`, so that it runs
    /// even if the fetch that started it is dropped meanwhile (its file closed).
    fn probe(
        self: &Arc<Self>,
        file: &SharedFile,
        backend: &Arc<dyn Backend>,
        runtime: &tokio::runtime::Handle,
    ) -> io::Result<Probe> {
        let key = &file.key;
        loop {
            if let Some(fill) = self.fills.lock().unwrap().get(key) {
                return Ok(Probe::Filling(fill.clone()));
            }
            let path = self.entry_path(key);
            if let Some(entry) = Entry::open(&path, key)? {
                self.touch(key, &entry);
                return Ok(Probe::Entry(entry));
            }
            let lease_path = self.lease_path(key);
            let mut fills = self.fills.lock().unwrap();
            if let Some(fill) = fills.get(key) {
                return Ok(Probe::Filling(fill.clone()));
            }
            match Lease::try_take(&lease_path, self.file_mode)? {
                Some(lease) => {
                    // A fill may have finished between the look and the lease.
                    if let Some(entry) = Entry::open(&path, key)? {
                        drop(lease);
                        return Ok(Probe::Entry(entry));
                    }
                    let tmp = self.temp_path(key);
                    let writer = EntryWriter::create(&tmp, self.file_mode)?;
                    let fill = Arc::new(Fill::new(&writer)?);
                    fills.insert(*key, fill.clone());
                    self.counters.fills.fetch_add(1, Ordering::Relaxed);
                    let start = fill::FillStart { writer, tmp, lease };
                    let (me, from, wanted) = (self.clone(), backend.clone(), file.clone());
                    runtime.spawn(fill::run(me, from, wanted, fill.clone(), start));
                    return Ok(Probe::Filling(fill));
                }
                None => {
                    drop(fills);
                    let mut watcher = self.watcher.lock().unwrap();
                    if watcher.check(&lease_path, STALE) != Holder::Dead {
                        return Ok(Probe::Busy);
                    }
                    watcher.break_dead(&lease_path);
                    self.counters.takeovers.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Whether fetches go straight to the server for now.
    fn bypassed(&self) -> bool {
        let mut until = self.bypass_until.lock().unwrap();
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                tracing::info!(dir = %self.root.display(), "using the shared cache again");
                false
            }
            None => false,
        }
    }

    /// A fill failed to write here: fetches bypass the folder for [`BYPASS_FOR`], so that a
    /// full or failing disk costs reads nothing but the cache.
    fn bypass(&self, error: &XnatError) {
        let mut until = self.bypass_until.lock().unwrap();
        if until.is_none() {
            tracing::warn!(dir = %self.root.display(), %error,
                "the shared cache cannot be written; fetching from the server directly for a minute");
        }
        *until = Some(Instant::now() + BYPASS_FOR);
    }

    fn touch(&self, key: &FileKey, entry: &Entry) {
        let mut touched = self.touched.lock().unwrap();
        if touched.get(key).is_none_or(|t| t.elapsed() >= TOUCH_EVERY) {
            entry.touch();
            touched.insert(*key, Instant::now());
            if touched.len() > 100_000 {
                touched.retain(|_, t| t.elapsed() < TOUCH_EVERY);
            }
        }
    }

    /// Puts a finished fill's file in place (blocking).
    fn publish(&self, key: &FileKey, tmp: &Path) -> io::Result<()> {
        let path = self.entry_path(key);
        make_dir(
            path.parent().expect("entries live in a folder"),
            self.file_mode,
        )?;
        fs::rename(tmp, &path)?;
        let len = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
        let used = self.used.fetch_add(len, Ordering::Relaxed) + len;
        if used > self.capacity {
            self.evict();
        }
        Ok(())
    }

    /// Writes a new entry for `key` with `fill` and puts it in place, if its bytes' MD5 is
    /// `md5` (when given); returns whether it was kept. Blocking.
    pub fn put_with(
        &self,
        key: &FileKey,
        md5: Option<[u8; 16]>,
        fill: impl FnOnce(&mut EntryWriter) -> io::Result<()>,
    ) -> io::Result<bool> {
        let tmp = self.temp_path(key);
        let mut writer = EntryWriter::create(&tmp, self.file_mode)?;
        let written = fill(&mut writer).and_then(|()| writer.finish(key, None));
        let kept = match written {
            Ok((_, got)) if md5.is_none_or(|m| m == got) => self.publish(key, &tmp).map(|()| true),
            Ok(_) => Ok(false),
            Err(e) => Err(e),
        };
        if !matches!(kept, Ok(true)) {
            let _ = fs::remove_file(&tmp);
        }
        kept
    }

    /// An entry failed a check while read: it goes (if it is still the one read), and the
    /// next fetch downloads the version again.
    fn drop_damaged(&self, key: &FileKey, ino: u64) {
        let path = self.entry_path(key);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.ino() == ino) {
            tracing::warn!(path = %path.display(), "damaged shared cache entry removed");
            let _ = fs::remove_file(&path);
            self.counters.damaged.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn finished(&self, key: &FileKey) {
        self.fills.lock().unwrap().remove(key);
    }

    /// Counts the folder and, when over the bound, removes the entries used longest ago down
    /// to 90% of it, sparing those used within [`IN_USE`]; also clears crash leftovers.
    /// Blocking; one pass at a time per mount.
    pub fn evict(&self) {
        if self.evicting.swap(true, Ordering::AcqRel) {
            return;
        }
        let now = SystemTime::now();
        let age = |m: &fs::Metadata| now.duration_since(m.modified().unwrap_or(now)).ok();
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for sub in read_dir_real(&self.root.join("objects"), true) {
            for path in read_dir_real(&sub, false) {
                if path.extension().is_some_and(|e| e == "xfe") {
                    if let Ok(m) = fs::symlink_metadata(&path) {
                        entries.push((m.modified().unwrap_or(now), m.len(), path));
                    }
                }
            }
        }
        for leftovers in ["tmp", "leases"] {
            for path in read_dir_real(&self.root.join(leftovers), false) {
                let old = fs::symlink_metadata(&path)
                    .ok()
                    .and_then(|m| age(&m))
                    .is_some_and(|a| a > LEFTOVER);
                if old {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        if total > self.capacity {
            entries.sort();
            let target = self.capacity - self.capacity / 10;
            for (mtime, len, path) in &entries {
                if total <= target {
                    break;
                }
                if now.duration_since(*mtime).is_ok_and(|a| a >= IN_USE)
                    && fs::remove_file(path).is_ok()
                {
                    total -= len;
                    self.counters.evicted.fetch_add(1, Ordering::Relaxed);
                }
            }
            if total > self.capacity {
                tracing::warn!(dir = %self.root.display(), bytes = total, bound = self.capacity,
                    "shared cache over its bound: every entry left was used in the last 5 minutes");
            }
        }
        self.used.store(total, Ordering::Relaxed);
        self.evicting.store(false, Ordering::Release);
    }

    pub fn stats(&self) -> SharedStats {
        let c = &self.counters;
        SharedStats {
            hits: c.hits.load(Ordering::Relaxed),
            fills: c.fills.load(Ordering::Relaxed),
            waits: c.waits.load(Ordering::Relaxed),
            takeovers: c.takeovers.load(Ordering::Relaxed),
            evicted: c.evicted.load(Ordering::Relaxed),
            damaged: c.damaged.load(Ordering::Relaxed),
            bytes: self.used.load(Ordering::Relaxed),
            capacity: self.capacity,
        }
    }
}

/// The entries of `dir` that are real files (or, with `dirs`, real folders): links are never
/// followed.
fn read_dir_real(dir: &Path, dirs: bool) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| if dirs { t.is_dir() } else { t.is_file() })
        })
        .map(|e| e.path())
        .collect()
}

/// Makes or checks the shared folder's root; returns the mode for the files made in it.
fn claim_root(dir: &Path) -> io::Result<u32> {
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("shared cache folder {}: {why}", dir.display()),
        ))
    };
    let meta = match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            crate::fs::owned_dir::make_with_parents(dir)?;
            fs::symlink_metadata(dir)?
        }
        Err(e) => return Err(e),
        Ok(m) => m,
    };
    if meta.file_type().is_symlink() {
        return refuse("is a symbolic link; give the folder it points to instead");
    }
    if !meta.is_dir() {
        return refuse("is not a folder");
    }
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 {
        return refuse("is writable by every user; make it 0700, or 2770 for a group");
    }
    let marked = fs::symlink_metadata(dir.join(MARK)).is_ok_and(|m| m.is_file());
    if !marked {
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if !SUBDIRS.contains(&name.as_ref()) {
                return refuse(&format!(
                    "holds {name:?}, which xnatfs did not put there: give a new or empty folder"
                ));
            }
        }
        let _ = fs::write(dir.join(MARK), "xnatfs shared cache folder\n");
    }
    Ok(if mode & 0o070 == 0o070 { 0o660 } else { 0o600 })
}

/// A folder inside the shared one, made if missing with the mode that goes with `file_mode`
/// (0700, or 0770 keeping the parent's setgid bit); refused if it is anything but a real
/// folder.
pub fn make_dir(dir: &Path, file_mode: u32) -> io::Result<()> {
    let group = file_mode & 0o070 != 0;
    crate::fs::owned_dir::subdir_with_mode(dir, if group { 0o770 } else { 0o700 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(cache: &SharedCache, key: &FileKey, bytes: &[u8]) -> bool {
        let md5: [u8; 16] = <md5::Md5 as md5::Digest>::digest(bytes).into();
        cache.put_with(key, Some(md5), |w| w.append(bytes)).unwrap()
    }

    #[test]
    fn a_new_folder_is_private_and_a_group_folder_gives_its_group_read_and_write() {
        let base = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        let private = base.path().join("private");
        let cache = SharedCache::open(&private, 1 << 30).unwrap();
        let key = FileKey::new("/f", "v");
        assert!(put(&cache, &key, b"bytes"));
        assert_eq!(mode(&private), 0o700);
        assert_eq!(mode(&private.join("objects")), 0o700);
        assert_eq!(mode(&cache.entry_path(&key)), 0o600);

        let group = base.path().join("group");
        fs::create_dir(&group).unwrap();
        fs::set_permissions(&group, fs::Permissions::from_mode(0o2770)).unwrap();
        let cache = SharedCache::open(&group, 1 << 30).unwrap();
        assert!(put(&cache, &key, b"bytes"));
        let entry = cache.entry_path(&key);
        assert_eq!(mode(&entry), 0o660);
        assert_eq!(mode(entry.parent().unwrap()), 0o2770);
        assert_eq!(mode(&group.join("leases")), 0o2770);
    }

    #[test]
    fn folders_that_are_links_foreign_or_open_to_all_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let open_to_all = base.path().join("all");
        fs::create_dir(&open_to_all).unwrap();
        fs::set_permissions(&open_to_all, fs::Permissions::from_mode(0o777)).unwrap();
        let err = SharedCache::open(&open_to_all, 1 << 30).unwrap_err();
        assert!(err.to_string().contains("writable by every user"), "{err}");
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&open_to_all, &link).unwrap();
        assert!(SharedCache::open(&link, 1 << 30).is_err());
        let home = base.path().join("home");
        fs::create_dir(&home).unwrap();
        fs::write(home.join("thesis.tex"), b"mine").unwrap();
        let err = SharedCache::open(&home, 1 << 30).unwrap_err();
        assert!(err.to_string().contains("thesis.tex"), "{err}");
        assert!(home.join("thesis.tex").exists());
    }

    #[test]
    fn wrong_bytes_are_never_kept_and_eviction_spares_entries_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SharedCache::open(dir.path(), 3000).unwrap();
        let key = |i: u32| FileKey::new(&format!("/f{i}"), "v");
        // An MD5 that is not the bytes': not kept.
        let kept = cache
            .put_with(&key(0), Some([0; 16]), |w| w.append(b"other bytes"))
            .unwrap();
        assert!(!kept && !cache.contains(&key(0)));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        // Over the bound with every entry just used: nothing goes.
        for i in 1..=4 {
            assert!(put(&cache, &key(i), &[i as u8; 1000]));
        }
        assert!((1..=4).all(|i| cache.contains(&key(i))));
        assert_eq!(cache.stats().evicted, 0);
        // Two of them unused for long: the oldest goes first, down to 90% of the bound.
        let old = SystemTime::now() - IN_USE - Duration::from_secs(60);
        for (i, age) in [(1u32, 2u64), (2, 1)] {
            let f = fs::File::options()
                .write(true)
                .open(cache.entry_path(&key(i)))
                .unwrap();
            f.set_modified(old - Duration::from_secs(age)).unwrap();
        }
        cache.evict();
        assert!(!cache.contains(&key(1)) && !cache.contains(&key(2)));
        assert!(cache.contains(&key(3)) && cache.contains(&key(4)));
        assert_eq!(cache.stats().evicted, 2);
    }
}
