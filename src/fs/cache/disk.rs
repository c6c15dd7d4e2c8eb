//! The disk tier: one sparse file per file version, `<dir>/<2 hex>/<64 hex>.xfv`, named by the
//! version's key (a SHA-256 of its URI and version token, so names say nothing about the
//! archive), with each block at a fixed slot: slot 0 holds the size record, slot `k + 1` block
//! `k`. A slot is `stride` bytes, a 64-byte header (see `format`) and the block, rounded up to
//! 4 KiB so every slot starts aligned for O_DIRECT. A block not cached is a hole.
//!
//! One file per version, not per block: a 1 GiB file is one inode instead of 1,024, and a
//! block costs two writes into a file already open instead of a create, a rename and often a
//! folder or two (those were a third of the daemon's CPU on a cold read).
//!
//! - Private: folders are created 0700 (the root is chmod-ed to 0700), files 0600; links are
//!   never followed.
//! - Torn writes: a slot is written in place and indexed only once written, so no reader of
//!   this mount sees half of one. There is no fsync: a crash can leave a torn slot, which the
//!   header's checksums turn into a miss, and the slot is then punched out.
//! - Bounded: the total of the slots' bytes stays under the capacity; the least recently used
//!   blocks go first. An evicted block's slot is punched (`FALLOC_FL_PUNCH_HOLE`), and the file
//!   goes with its last block (on a filesystem that cannot punch holes, with the first). The use
//!   order lives in memory (an LRU index); at startup it is rebuilt from the files' data extents
//!   (`SEEK_DATA`) and slot headers, oldest file mtime least recently used, and a hit touches
//!   its file's mtime so the order survives a remount.
//!
//! Every method here does blocking file I/O: call them from a blocking thread.

use super::buffers::BlockBuffers;
use super::direct;
use super::format::{self, HEADER_LEN};
use super::key::{hex, unhex, BlockKey, FileKey};
use super::SIZE_RECORD;
use crate::fs::owned_dir;
use bytes::Bytes;
use lru::LruCache;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Slots start at multiples of this (the O_DIRECT alignment).
const SLOT_ALIGN: u64 = 4096;
const SUFFIX: &str = ".xfv";

pub struct DiskCache {
    root: PathBuf,
    capacity: u64,
    /// Bytes between slot starts: header and block, rounded up to 4 KiB.
    stride: u64,
    index: Mutex<Index>,
    /// The file last written to, kept open: blocks of one version come one after another.
    writing: Mutex<Option<(FileKey, Arc<File>)>>,
    /// Where blocks read back are put.
    buffers: Arc<BlockBuffers>,
    /// Held while the cache is open: an exclusive `flock` on `lock`.
    _lock: fs::File,
}

struct Index {
    /// Block → bytes of its slot in use (header included), in use order.
    lru: LruCache<BlockKey, u64>,
    /// Bytes of indexed blocks plus bytes reserved by writes in progress.
    used: u64,
    /// Blocks indexed or being written, per file version: its file goes with the last.
    blocks: HashMap<FileKey, usize>,
}

/// What an eviction leaves to do on disk, outside the index's lock.
enum Victim {
    Slot(BlockKey),
    File(FileKey),
}

impl DiskCache {
    /// Opens (creating it if needed) the cache under `root`, holding at most `capacity` bytes,
    /// with blocks of the default size.
    #[cfg(test)]
    pub fn open(root: impl Into<PathBuf>, capacity: u64) -> io::Result<Self> {
        let block_size = super::DEFAULT_BLOCK_SIZE;
        let buffers = BlockBuffers::new(block_size, super::buffers::DEFAULT_KEEP);
        Self::open_with(root, capacity, block_size, buffers)
    }

    /// Opens the cache under `root` for blocks of `block_size` bytes; blocks read back go into
    /// `buffers`.
    pub fn open_with(
        root: impl Into<PathBuf>,
        capacity: u64,
        block_size: u64,
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
            capacity,
            stride: (HEADER_LEN as u64 + block_size).div_ceil(SLOT_ALIGN) * SLOT_ALIGN,
            index: Mutex::new(Index {
                lru: LruCache::unbounded(),
                used: 0,
                blocks: HashMap::new(),
            }),
            writing: Mutex::new(None),
            buffers,
            _lock: lock,
        };
        cache.scan()?;
        Ok(cache)
    }

    /// Rebuilds the index from the files present, oldest mtime least recently used, then trims
    /// the cache to its capacity (which may have shrunk since the last mount). A cache folder
    /// of the older layout (a file per block, one folder level deeper) is emptied.
    fn scan(&self) -> io::Result<()> {
        let mut found: Vec<(SystemTime, BlockKey, u64)> = Vec::new();
        for l1 in fs::read_dir(&self.root)? {
            let l1 = l1?;
            if !is_hex_dir(&l1) {
                continue;
            }
            for f in fs::read_dir(l1.path())? {
                let f = f?;
                if is_hex_dir(&f) {
                    let _ = fs::remove_dir_all(f.path());
                    continue;
                }
                let file_name = f.file_name();
                let Some(file) = file_name
                    .to_str()
                    .and_then(|n| n.strip_suffix(SUFFIX))
                    .and_then(unhex::<32>)
                    .map(FileKey)
                else {
                    continue;
                };
                if !f.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let Ok(opened) = open_nofollow(&f.path(), false) else {
                    continue;
                };
                let meta = opened.metadata()?;
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                for (index, size) in self.slots_in(file, &opened, meta.len()) {
                    found.push((mtime, BlockKey::new(file, index), size));
                }
            }
        }
        found.sort_by_key(|(mtime, key, _)| (*mtime, key.file.0, key.index));
        let victims = {
            let mut index = self.index.lock().unwrap();
            for (_, key, size) in found {
                index.lru.put(key, size);
                index.used += size;
                *index.blocks.entry(key.file).or_default() += 1;
            }
            index.evict_for(0, self.capacity)
        };
        self.drop_victims(victims);
        Ok(())
    }

    /// The blocks a version's file holds, with their slots' bytes: every slot with data whose
    /// header is whole and names it (the data's checksum is checked when it is read). A slot
    /// that fails is punched out; a file with none is deleted.
    fn slots_in(&self, file: FileKey, opened: &File, len: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut slot = 0;
        for (start, end) in data_extents(opened, len) {
            slot = slot.max(start / self.stride);
            while slot * self.stride < end {
                let index = if slot == 0 { SIZE_RECORD } else { slot - 1 };
                let key = BlockKey::new(file, index);
                let mut header = [0u8; HEADER_LEN];
                let whole = opened
                    .read_exact_at(&mut header, slot * self.stride)
                    .is_ok();
                match format::data_len(&key, &header).filter(|_| whole) {
                    Some(n) if (HEADER_LEN + n) as u64 <= self.stride => {
                        out.push((index, (HEADER_LEN + n) as u64))
                    }
                    _ => {
                        let _ = punch(opened, slot * self.stride, self.stride);
                    }
                }
                slot += 1;
            }
        }
        if out.is_empty() {
            let _ = fs::remove_file(self.path(&file));
        }
        out
    }

    /// Whether the block is indexed (its slot may still turn out corrupt).
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.index.lock().unwrap().lru.contains(key)
    }

    /// The block's data, if its slot is present and every check passes. A slot that fails a
    /// check is punched out.
    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        self.read(key, true)
    }

    /// [`get`](Self::get) through the page cache, where a block just written still is.
    pub fn get_buffered(&self, key: &BlockKey) -> Option<Bytes> {
        self.read(key, false)
    }

    fn read(&self, key: &BlockKey, direct: bool) -> Option<Bytes> {
        let size = *self.index.lock().unwrap().lru.get(key)?;
        let offset = self.slot(key.index)?;
        let path = self.path(&key.file);
        let read = if direct {
            direct::read_at(&path, offset, size, &self.buffers)
        } else {
            direct::read_buffered(&path, offset, size)
        };
        let Ok((buf, file)) = read else {
            self.forget(key);
            return None;
        };
        if format::validate(key, &buf).is_none() {
            tracing::warn!(path = %path.display(), block = key.index, "corrupt cache block deleted");
            self.remove(key);
            return None;
        }
        // Best effort: the mtime carries the use order across mounts.
        let _ = file.set_modified(SystemTime::now());
        Some(buf.slice(HEADER_LEN..))
    }

    /// Stores a block. Returns `Ok(false)` when the block cannot fit at all. On error (a full
    /// disk, say) nothing is indexed and the slot is punched out again.
    pub fn put(&self, key: &BlockKey, data: &[u8]) -> io::Result<bool> {
        let size = (HEADER_LEN + data.len()) as u64;
        let Some(offset) = self.slot(key.index) else {
            return Ok(false);
        };
        if size > self.capacity || size > self.stride {
            return Ok(false);
        }
        let victims = {
            let mut index = self.index.lock().unwrap();
            if index.lru.get(key).is_some() {
                return Ok(true);
            }
            let victims = index.evict_for(size, self.capacity);
            index.used += size;
            *index.blocks.entry(key.file).or_default() += 1;
            victims
        };
        self.drop_victims(victims);
        let written = self.write(key, offset, data);
        let mut index = self.index.lock().unwrap();
        match written {
            Ok(()) => {
                if let Some(old) = index.lru.put(*key, size) {
                    index.let_go(*key, old);
                }
                Ok(true)
            }
            Err(e) => {
                let victim = index.let_go(*key, size);
                drop(index);
                self.drop_victims(vec![victim]);
                Err(e)
            }
        }
    }

    fn write(&self, key: &BlockKey, offset: u64, data: &[u8]) -> io::Result<()> {
        let file = self.file_for_writing(&key.file)?;
        file.write_all_at(&format::encode_header(key, data), offset)?;
        file.write_all_at(data, offset + HEADER_LEN as u64)
    }

    /// The version's file, open for writing: the one kept open, or opened (created) now.
    fn file_for_writing(&self, file: &FileKey) -> io::Result<Arc<File>> {
        let mut writing = self.writing.lock().unwrap();
        if let Some((open, f)) = writing.as_ref() {
            if open == file {
                return Ok(f.clone());
            }
        }
        let path = self.path(file);
        let opened = match open_nofollow(&path, true) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                owned_dir::subdir(path.parent().expect("a file path has a parent"))?;
                open_nofollow(&path, true)?
            }
            other => other?,
        };
        let opened = Arc::new(opened);
        *writing = Some((*file, opened.clone()));
        Ok(opened)
    }

    /// Deletes a block, if present.
    pub fn remove(&self, key: &BlockKey) {
        let victim = {
            let mut index = self.index.lock().unwrap();
            match index.lru.pop(key) {
                Some(size) => index.let_go(*key, size),
                None => Victim::Slot(*key),
            }
        };
        self.drop_victims(vec![victim]);
    }

    fn forget(&self, key: &BlockKey) {
        let mut index = self.index.lock().unwrap();
        if let Some(size) = index.lru.pop(key) {
            index.let_go(*key, size);
        }
    }

    /// Punches the victims' slots out and deletes the files left without blocks.
    fn drop_victims(&self, victims: Vec<Victim>) {
        for victim in victims {
            match victim {
                Victim::File(file) => self.delete_file(&file),
                Victim::Slot(key) => {
                    let Some(offset) = self.slot(key.index) else {
                        continue;
                    };
                    let punched = open_nofollow(&self.path(&key.file), false)
                        .and_then(|f| punch(&f, offset, self.stride));
                    match punched {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => {
                            tracing::debug!(error = %e, "no hole punched: the whole file goes");
                            self.drop_file(&key.file);
                        }
                    }
                }
            }
        }
    }

    /// Forgets every block of a version and deletes its file.
    fn drop_file(&self, file: &FileKey) {
        {
            let mut index = self.index.lock().unwrap();
            let keys: Vec<BlockKey> = index
                .lru
                .iter()
                .filter(|(k, _)| k.file == *file)
                .map(|(k, _)| *k)
                .collect();
            for key in keys {
                if let Some(size) = index.lru.pop(&key) {
                    index.let_go(key, size);
                }
            }
        }
        self.delete_file(file);
    }

    fn delete_file(&self, file: &FileKey) {
        let mut writing = self.writing.lock().unwrap();
        if writing.as_ref().is_some_and(|(open, _)| open == file) {
            *writing = None;
        }
        let _ = fs::remove_file(self.path(file));
    }

    /// Where block `index`'s slot starts in its version's file.
    fn slot(&self, index: u64) -> Option<u64> {
        let slot = if index == SIZE_RECORD {
            0
        } else {
            index.checked_add(1)?
        };
        slot.checked_mul(self.stride).filter(|end| {
            end.checked_add(self.stride)
                .is_some_and(|e| e <= i64::MAX as u64)
        })
    }

    fn path(&self, file: &FileKey) -> PathBuf {
        let h = hex(&file.0);
        self.root.join(&h[0..2]).join(format!("{h}{SUFFIX}"))
    }

    /// Bytes of the slots in use (headers included) plus bytes of writes in progress.
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

    /// Where block `key` lives: its version's file and the slot's offset in it.
    #[cfg(test)]
    pub(super) fn slot_of(&self, key: &BlockKey) -> (PathBuf, u64) {
        (self.path(&key.file), self.slot(key.index).unwrap())
    }

    /// Holds the index locked while the guard lives, so every other call here waits: a
    /// stand-in for a slow or hung disk.
    #[cfg(test)]
    pub(super) fn stall(&self) -> impl Sized + '_ {
        self.index.lock().unwrap()
    }
}

impl Index {
    /// Pops least recently used blocks until `extra` more bytes fit; returns what to remove
    /// from disk outside the lock.
    fn evict_for(&mut self, extra: u64, capacity: u64) -> Vec<Victim> {
        let mut victims = Vec::new();
        while self.used + extra > capacity {
            match self.lru.pop_lru() {
                Some((key, size)) => victims.push(self.let_go(key, size)),
                None => break,
            }
        }
        victims
    }

    /// Accounts for block `key` (of `size` bytes, already out of the LRU or never in it) no
    /// longer being held: what its going leaves to do on disk, its slot punched or, when it was
    /// its version's last block, the file deleted.
    fn let_go(&mut self, key: BlockKey, size: u64) -> Victim {
        self.used -= size;
        match self.blocks.get_mut(&key.file) {
            Some(n) if *n > 1 => {
                *n -= 1;
                Victim::Slot(key)
            }
            Some(_) => {
                self.blocks.remove(&key.file);
                Victim::File(key.file)
            }
            None => Victim::File(key.file),
        }
    }
}

/// Opens a cache file for reading and writing without following a link; `create` makes it
/// (0600) if missing.
fn open_nofollow(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Frees `len` bytes of `file` from `offset`, which then read as zeros; the size stays.
fn punch(file: &File, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: fallocate on an open descriptor; no memory is passed.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            len as libc::off_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The ranges of `file` (of length `len`) that hold data, from `SEEK_DATA`/`SEEK_HOLE`; the
/// whole file where the filesystem cannot tell.
fn data_extents(file: &File, len: u64) -> Vec<(u64, u64)> {
    let fd = file.as_raw_fd();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        // SAFETY: lseek on an open descriptor.
        let start = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_DATA) };
        if start < 0 {
            if io::Error::last_os_error().raw_os_error() != Some(libc::ENXIO) {
                out.push((pos, len));
            }
            break;
        }
        // SAFETY: as above.
        let end = unsafe { libc::lseek(fd, start, libc::SEEK_HOLE) };
        let end = if end < 0 { len } else { (end as u64).min(len) };
        out.push((start as u64, end));
        pos = end.max(start as u64 + 1);
    }
    out
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
        assert!(!c.contains(&key("v", 1)));
        assert_eq!(allocated(&c, &key("v", 1)), 0, "its slot is a hole again");
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
                c.put(&key(&format!("v{i}"), 0), &data(100, 0)).unwrap();
            }
            let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
            for i in [2u64, 0] {
                let f = fs::File::options()
                    .write(true)
                    .open(c.slot_of(&key(&format!("v{i}"), 0)).0)
                    .unwrap();
                f.set_modified(old + std::time::Duration::from_secs(i))
                    .unwrap();
            }
        }
        // Order by mtime: v0 (oldest), v2, v1. Room for two: v0 goes, and its file with it.
        let c = DiskCache::open(dir.path(), 2 * (100 + H)).unwrap();
        assert!(!c.contains(&key("v0", 0)));
        assert!(!c.slot_of(&key("v0", 0)).0.exists());
        assert!(c.contains(&key("v1", 0)) && c.contains(&key("v2", 0)));
    }

    #[test]
    fn corrupt_or_truncated_block_is_a_miss_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        for i in 0..2 {
            c.put(&key("v", i), &data(1000, 9)).unwrap();
        }
        let (path, at) = c.slot_of(&key("v", 0));
        let mut bytes = fs::read(&path).unwrap();
        bytes[at as usize + HEADER_LEN + 500] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        // Block 1 is the last slot: cut its end off.
        let f = fs::File::options().write(true).open(&path).unwrap();
        f.set_len(bytes.len() as u64 - 10).unwrap();

        assert!(c.get(&key("v", 0)).is_none());
        assert!(c.get(&key("v", 1)).is_none());
        assert!(!path.exists(), "the file went with its last block");
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
        fs::copy(c.slot_of(&key("v1", 0)).0, c.slot_of(&key("v2", 0)).0).unwrap();
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
        let file = c.slot_of(&key("v", 0)).0;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
        assert_eq!(mode(&root.join("tmp")), 0o700);
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        c.put(&key("v", 0), &data(10, 1)).unwrap();
        let before = c.used_bytes();
        // Put a file where another version's folder goes (a stand-in for ENOSPC, which a test
        // cannot cause).
        let other = key("w", 1);
        let (path, _) = c.slot_of(&other);
        let folder = path.parent().unwrap();
        if folder.exists() {
            fs::remove_dir_all(folder).unwrap();
        }
        fs::write(folder, b"not a folder").unwrap();
        assert!(c.put(&other, &data(10, 1)).is_err());
        assert_eq!(
            c.used_bytes(),
            before - if c.contains(&key("v", 0)) { 0 } else { 10 + H }
        );
        assert!(!c.contains(&other));
    }

    #[test]
    fn leftover_temp_files_and_foreign_files_are_handled_at_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        fs::write(dir.path().join("tmp/1-1.tmp"), b"torn").unwrap();
        fs::create_dir_all(dir.path().join("ab")).unwrap();
        fs::write(dir.path().join("ab/notes.txt"), b"not ours").unwrap();
        // A block file of the older layout (a file per block, a folder deeper): emptied.
        fs::create_dir_all(dir.path().join("cd/ef")).unwrap();
        fs::write(dir.path().join("cd/ef/00.blk"), b"old").unwrap();
        // A link where a version's file would be is not followed.
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("elsewhere");
        fs::write(&target, vec![1u8; 8192]).unwrap();
        let k = key("v", 0);
        let link = {
            let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
            c.slot_of(&k).0
        };
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        assert!(!dir.path().join("tmp/1-1.tmp").exists());
        assert!(dir.path().join("ab/notes.txt").exists());
        assert!(!dir.path().join("cd/ef").exists());
        assert_eq!(c.len(), 0);
        assert!(
            c.put(&k, &data(10, 1)).is_err(),
            "a link is not written through"
        );
        assert_eq!(fs::read(&target).unwrap(), vec![1u8; 8192]);
    }

    /// Bytes the filesystem holds for `key`'s slot.
    fn allocated(c: &DiskCache, key: &BlockKey) -> u64 {
        let (path, at) = c.slot_of(key);
        let Ok(f) = fs::File::open(path) else {
            return 0;
        };
        let len = f.metadata().unwrap().len();
        data_extents(&f, len)
            .into_iter()
            .map(|(s, e)| e.min(at + c.stride).saturating_sub(s.max(at)))
            .sum()
    }

    #[test]
    fn one_file_per_version_with_blocks_at_their_slots() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 64 << 20).unwrap();
        for i in [0u64, 1, 5] {
            c.put(&key("v", i), &data(1 << 20, i as u8 + 1)).unwrap();
        }
        c.put(&key("v", SIZE_RECORD), b"12345678").unwrap();
        let (path, _) = c.slot_of(&key("v", 0));
        let files: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(files.len(), 1, "one file for the version");
        assert!(allocated(&c, &key("v", 5)) >= 1 << 20);
        assert_eq!(
            allocated(&c, &key("v", 3)),
            0,
            "a block never cached is a hole"
        );
        drop(c);
        let c = DiskCache::open(dir.path(), 64 << 20).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c.get(&key("v", 5)).unwrap(), data(1 << 20, 6));
        assert_eq!(c.get(&key("v", SIZE_RECORD)).unwrap(), &b"12345678"[..]);
        assert!(c.get(&key("v", 3)).is_none());
        // Evicting one block punches its slot; the others stay.
        c.remove(&key("v", 1));
        assert_eq!(allocated(&c, &key("v", 1)), 0);
        assert_eq!(c.get(&key("v", 0)).unwrap(), data(1 << 20, 1));
    }

    #[test]
    fn a_torn_slot_found_at_open_is_punched_and_not_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let (path, at) = {
            let c = DiskCache::open(dir.path(), 64 << 20).unwrap();
            c.put(&key("v", 0), &data(5000, 1)).unwrap();
            c.put(&key("v", 2), &data(5000, 2)).unwrap();
            c.slot_of(&key("v", 2))
        };
        // A crash between the header and the data of block 2 is a checksum miss; a header
        // torn itself is not even indexed.
        let f = fs::File::options().write(true).open(&path).unwrap();
        f.write_all_at(&[0u8; 8], at).unwrap();
        let c = DiskCache::open(dir.path(), 64 << 20).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c.used_bytes(), 5000 + H);
        assert_eq!(allocated(&c, &key("v", 2)), 0);
        assert_eq!(c.get(&key("v", 0)).unwrap(), data(5000, 1));
    }
}
