//! The disk tier: one file per block under `<dir>/<2 hex>/<2 hex>/<64 hex>.blk`, named by the
//! SHA-256 of (file key, block index), so 65,536 leaf folders spread even a 100 GiB cache
//! (~100,000 blocks) to a couple of files per folder.
//!
//! - Private: folders are created 0700 (the root is chmod-ed to 0700), files 0600.
//! - Atomic: a block is written to `<dir>/tmp/` and renamed into place, so a reader sees a whole
//!   file or none. There is no fsync: a crash can leave a torn file, which the checksums in the
//!   header (see `format`) turn into a miss, and the file is then deleted.
//! - Bounded: the total of file sizes stays under the capacity; the least recently used blocks go
//!   first. The use order lives in memory (an LRU index); at startup it is rebuilt by scanning
//!   the folders, oldest mtime first, and a hit touches the file's mtime so the order survives a
//!   remount.
//!
//! Every method here does blocking file I/O: call them from a blocking thread.

use super::buffers::BlockBuffers;
use super::direct;
use super::format::{self, HEADER_LEN};
use super::key::{hex, unhex, BlockKey};
use crate::fs::owned_dir;
use bytes::Bytes;
use lru::LruCache;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

type Name = [u8; 32];

pub struct DiskCache {
    root: PathBuf,
    tmp: PathBuf,
    capacity: u64,
    index: Mutex<Index>,
    tmp_seq: AtomicU64,
    /// Where blocks read back are put.
    buffers: Arc<BlockBuffers>,
    /// Held while the cache is open: an exclusive `flock` on `lock`.
    _lock: fs::File,
}

struct Index {
    /// Block name → file size (header included), in use order.
    lru: LruCache<Name, u64>,
    /// Bytes of indexed files plus bytes reserved by writes in progress.
    used: u64,
}

impl DiskCache {
    /// Opens (creating it if needed) the cache under `root`, holding at most `capacity` bytes.
    #[cfg(test)]
    pub fn open(root: impl Into<PathBuf>, capacity: u64) -> io::Result<Self> {
        let buffers = BlockBuffers::new(super::DEFAULT_BLOCK_SIZE, super::buffers::DEFAULT_KEEP);
        Self::open_with(root, capacity, buffers)
    }

    /// Opens the cache under `root`; blocks read back go into `buffers`.
    pub fn open_with(
        root: impl Into<PathBuf>,
        capacity: u64,
        buffers: Arc<BlockBuffers>,
    ) -> io::Result<Self> {
        let root = root.into();
        owned_dir::claim(&root, "cache", |name| {
            name == "tmp"
                || name == "lock"
                || name == "listings"
                || (name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()))
        })?;
        let lock = owned_dir::lock(&root, || {
            "in use by another xnatfs mount; give this one its own with --cache-dir".into()
        })?;
        let tmp = root.join("tmp");
        owned_dir::subdir(&tmp)?;
        for entry in fs::read_dir(&tmp)? {
            // Leftovers of writes cut short by a crash.
            let _ = fs::remove_file(entry?.path());
        }
        let cache = DiskCache {
            root,
            tmp,
            capacity,
            index: Mutex::new(Index {
                lru: LruCache::unbounded(),
                used: 0,
            }),
            tmp_seq: AtomicU64::new(0),
            buffers,
            _lock: lock,
        };
        cache.scan()?;
        Ok(cache)
    }

    /// Rebuilds the index from the files present, oldest mtime least recently used, then trims
    /// the cache to its capacity (which may have shrunk since the last mount).
    fn scan(&self) -> io::Result<()> {
        let mut found: Vec<(SystemTime, Name, u64)> = Vec::new();
        for l1 in fs::read_dir(&self.root)? {
            let l1 = l1?;
            if !is_hex_dir(&l1) {
                continue;
            }
            for l2 in fs::read_dir(l1.path())? {
                let l2 = l2?;
                if !is_hex_dir(&l2) {
                    continue;
                }
                for f in fs::read_dir(l2.path())? {
                    let f = f?;
                    let file_name = f.file_name();
                    let Some(name) = file_name
                        .to_str()
                        .and_then(|n| n.strip_suffix(".blk"))
                        .and_then(unhex::<32>)
                    else {
                        continue;
                    };
                    let meta = f.metadata()?;
                    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    found.push((mtime, name, meta.len()));
                }
            }
        }
        found.sort();
        let victims = {
            let mut index = self.index.lock().unwrap();
            for (_, name, size) in found {
                index.lru.put(name, size);
                index.used += size;
            }
            index.evict_for(0, self.capacity)
        };
        self.delete(&victims);
        Ok(())
    }

    /// Whether the block is indexed (its file may still turn out corrupt).
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.index.lock().unwrap().lru.contains(&key.disk_name())
    }

    /// The block's data, if its file is present and every check passes. A file that fails a
    /// check is deleted.
    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        let name = key.disk_name();
        let size = *self.index.lock().unwrap().lru.get(&name)?;
        let path = self.path(&name);
        let Ok((buf, file)) = direct::read_whole(&path, size, &self.buffers) else {
            self.forget(&name);
            return None;
        };
        if format::validate(key, &buf).is_none() {
            tracing::warn!(path = %path.display(), "corrupt cache block deleted");
            self.remove(key);
            return None;
        }
        // Best effort: the mtime carries the use order across mounts.
        let _ = file.set_modified(SystemTime::now());
        Some(buf.slice(HEADER_LEN..))
    }

    /// Stores a block. Returns `Ok(false)` when the block cannot fit at all. On error (a full
    /// disk, say) nothing is indexed and no partial file is left behind.
    pub fn put(&self, key: &BlockKey, data: &[u8]) -> io::Result<bool> {
        let name = key.disk_name();
        let size = (HEADER_LEN + data.len()) as u64;
        if size > self.capacity {
            return Ok(false);
        }
        let victims = {
            let mut index = self.index.lock().unwrap();
            if index.lru.get(&name).is_some() {
                return Ok(true);
            }
            let victims = index.evict_for(size, self.capacity);
            index.used += size;
            victims
        };
        self.delete(&victims);
        let written = self.write(&name, key, data);
        let mut index = self.index.lock().unwrap();
        match written {
            Ok(()) => {
                if let Some(old) = index.lru.put(name, size) {
                    index.used -= old;
                }
                Ok(true)
            }
            Err(e) => {
                index.used -= size;
                Err(e)
            }
        }
    }

    fn write(&self, name: &Name, key: &BlockKey, data: &[u8]) -> io::Result<()> {
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp.join(format!("{}-{seq}.tmp", std::process::id()));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&format::encode_header(key, data))?;
            f.write_all(data)?;
            drop(f);
            let path = self.path(name);
            let dir = path.parent().expect("block path has a parent");
            owned_dir::subdir(dir.parent().expect("two levels"))?;
            owned_dir::subdir(dir)?;
            fs::rename(&tmp, &path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Deletes a block, if present.
    pub fn remove(&self, key: &BlockKey) {
        let name = key.disk_name();
        self.forget(&name);
        let _ = fs::remove_file(self.path(&name));
    }

    fn forget(&self, name: &Name) {
        let mut index = self.index.lock().unwrap();
        if let Some(size) = index.lru.pop(name) {
            index.used -= size;
        }
    }

    fn delete(&self, names: &[Name]) {
        for name in names {
            let _ = fs::remove_file(self.path(name));
        }
    }

    fn path(&self, name: &Name) -> PathBuf {
        let h = hex(name);
        self.root
            .join(&h[0..2])
            .join(&h[2..4])
            .join(format!("{h}.blk"))
    }

    /// Bytes on disk (headers included) plus bytes of writes in progress.
    pub fn used_bytes(&self) -> u64 {
        self.index.lock().unwrap().used
    }

    /// Number of blocks indexed.
    pub fn len(&self) -> usize {
        self.index.lock().unwrap().lru.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where block `key`'s file lives.
    #[cfg(test)]
    pub(super) fn path_of(&self, key: &BlockKey) -> PathBuf {
        self.path(&key.disk_name())
    }

    /// Holds the index locked while the guard lives, so every other call here waits: a
    /// stand-in for a slow or hung disk.
    #[cfg(test)]
    pub(super) fn stall(&self) -> impl Sized + '_ {
        self.index.lock().unwrap()
    }
}

impl Index {
    /// Pops least recently used blocks until `extra` more bytes fit; returns their names so the
    /// files can be deleted outside the lock.
    fn evict_for(&mut self, extra: u64, capacity: u64) -> Vec<Name> {
        let mut victims = Vec::new();
        while self.used + extra > capacity {
            match self.lru.pop_lru() {
                Some((name, size)) => {
                    self.used -= size;
                    victims.push(name);
                }
                None => break,
            }
        }
        victims
    }
}

fn is_hex_dir(entry: &fs::DirEntry) -> bool {
    let name = entry.file_name();
    let name = name.as_encoded_bytes();
    // The entry's own type: a link to a folder elsewhere is never entered.
    name.len() == 2
        && name.iter().all(u8::is_ascii_hexdigit)
        && entry.file_type().is_ok_and(|t| t.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::cache::key::FileKey;
    use std::os::unix::fs::PermissionsExt;

    fn key(version: &str, i: u64) -> BlockKey {
        BlockKey::new(FileKey::new("/data/f", version), i)
    }

    fn data(len: usize, fill: u8) -> Vec<u8> {
        vec![fill; len]
    }

    const H: u64 = HEADER_LEN as u64;

    #[test]
    fn hit_miss_and_persistence_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
            assert!(c.get(&key("v", 0)).is_none());
            assert!(c.put(&key("v", 0), &data(100, 1)).unwrap());
            assert!(c.put(&key("v", 1), &data(50, 2)).unwrap());
            assert_eq!(c.get(&key("v", 0)).unwrap(), data(100, 1));
            assert_eq!(c.used_bytes(), 150 + 2 * H);
        }
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.used_bytes(), 150 + 2 * H);
        assert_eq!(c.get(&key("v", 1)).unwrap(), data(50, 2));
        assert!(c.get(&key("v", 2)).is_none());
    }

    #[test]
    fn evicts_least_recently_used_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cap = 3 * (100 + H);
        let c = DiskCache::open(dir.path(), cap).unwrap();
        for i in 0..3 {
            c.put(&key("v", i), &data(100, i as u8)).unwrap();
        }
        c.get(&key("v", 0));
        c.put(&key("v", 3), &data(100, 3)).unwrap();
        assert!(c.contains(&key("v", 0)));
        assert!(!c.contains(&key("v", 1)), "block 1 was least recently used");
        assert!(!c.path(&key("v", 1).disk_name()).exists());
        // A bigger block pushes out two.
        c.put(&key("v", 4), &data(150, 4)).unwrap();
        assert!(c.used_bytes() <= cap);
        assert!(!c.contains(&key("v", 2)) && !c.contains(&key("v", 0)));
        assert!(c.contains(&key("v", 3)) && c.contains(&key("v", 4)));
        // Larger than the whole cache: refused.
        assert!(!c.put(&key("v", 5), &data(cap as usize, 5)).unwrap());
    }

    #[test]
    fn reopen_orders_by_mtime_and_trims_to_a_smaller_capacity() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
            for i in 0..3 {
                c.put(&key("v", i), &data(100, 0)).unwrap();
            }
            let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
            for i in [2u64, 0] {
                let f = fs::File::options()
                    .write(true)
                    .open(c.path(&key("v", i).disk_name()))
                    .unwrap();
                f.set_modified(old + std::time::Duration::from_secs(i))
                    .unwrap();
            }
        }
        // Order by mtime: 0 (oldest), 2, 1. Room for two: 0 goes.
        let c = DiskCache::open(dir.path(), 2 * (100 + H)).unwrap();
        assert!(!c.contains(&key("v", 0)));
        assert!(c.contains(&key("v", 1)) && c.contains(&key("v", 2)));
    }

    #[test]
    fn corrupt_or_truncated_block_is_a_miss_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        for i in 0..2 {
            c.put(&key("v", i), &data(1000, 9)).unwrap();
        }
        let flipped = c.path(&key("v", 0).disk_name());
        let mut bytes = fs::read(&flipped).unwrap();
        bytes[HEADER_LEN + 500] ^= 0x40;
        fs::write(&flipped, &bytes).unwrap();
        let truncated = c.path(&key("v", 1).disk_name());
        let bytes = fs::read(&truncated).unwrap();
        fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();

        assert!(c.get(&key("v", 0)).is_none());
        assert!(c.get(&key("v", 1)).is_none());
        assert!(!flipped.exists() && !truncated.exists());
        assert_eq!((c.len(), c.used_bytes()), (0, 0));
    }

    #[test]
    fn a_block_of_another_version_is_never_returned() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        c.put(&key("v1", 0), &data(10, 1)).unwrap();
        assert!(c.get(&key("v2", 0)).is_none());
        // Even a v1 file planted under v2's name (a hash clash, a stray copy) is refused.
        c.put(&key("v2", 0), &data(10, 2)).unwrap();
        fs::copy(
            c.path(&key("v1", 0).disk_name()),
            c.path(&key("v2", 0).disk_name()),
        )
        .unwrap();
        assert!(c.get(&key("v2", 0)).is_none());
        assert_eq!(c.get(&key("v1", 0)).unwrap(), data(10, 1));
    }

    #[test]
    fn folders_are_0700_and_files_0600() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let c = DiskCache::open(&root, 1 << 20).unwrap();
        c.put(&key("v", 0), &data(10, 1)).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let file = c.path(&key("v", 0).disk_name());
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
        assert_eq!(mode(file.parent().unwrap().parent().unwrap()), 0o700);
        assert_eq!(mode(&root.join("tmp")), 0o700);
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        c.put(&key("v", 0), &data(10, 1)).unwrap();
        let before = c.used_bytes();
        // Make the temp folder unusable (a stand-in for ENOSPC, which a test cannot cause).
        fs::remove_dir(dir.path().join("tmp")).unwrap();
        fs::write(dir.path().join("tmp"), b"not a folder").unwrap();
        assert!(c.put(&key("v", 1), &data(10, 1)).is_err());
        assert_eq!(c.used_bytes(), before);
        assert!(!c.contains(&key("v", 1)));
    }

    #[test]
    fn leftover_temp_files_and_foreign_files_are_handled_at_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        fs::write(dir.path().join("tmp/1-1.tmp"), b"torn").unwrap();
        fs::create_dir_all(dir.path().join("ab/cd")).unwrap();
        fs::write(dir.path().join("ab/cd/notes.txt"), b"not ours").unwrap();
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        assert!(!dir.path().join("tmp/1-1.tmp").exists());
        assert!(dir.path().join("ab/cd/notes.txt").exists());
        assert_eq!(c.len(), 0);
    }
}
