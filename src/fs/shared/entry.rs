//! One entry of the shared cache: one file version in one file, `objects/<2 hex>/<64 hex>.xfe`,
//! named by the version's [`FileKey`] (the SHA-256 of its URI and version token, which is the
//! listed size and MD5 digest where the catalog has one).
//!
//! Layout: the file's bytes from offset 0 (so a reader reads them where they are), then a CRC32
//! per 1 MiB of them, then a fixed trailer: magic, the key, the size, the MD5 of the bytes,
//! the server's `Last-Modified`, and a CRC32 of the table and the trailer. An entry is written
//! whole to `tmp/` and renamed into place, never changed after. Opening one checks the trailer
//! (a torn file, or one of another version planted under this name, is a miss); reading checks
//! each 1 MiB against its CRC before any byte of it is returned.

use crate::fs::cache::FileKey;
use bytes::Bytes;
use md5::{Digest, Md5};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::SystemTime;

/// Bytes per checksummed piece.
pub const PIECE: u64 = 1 << 20;
const MAGIC: &[u8; 8] = b"XNATFSE1";
/// magic 8, key 32, size 8, md5 16, modified 8, pieces' CRC 4, trailer CRC 4
pub const TRAILER_LEN: u64 = 80;

/// An entry open for reading, its trailer checked.
pub struct Entry {
    file: File,
    /// The entry file's inode number (to remove it only if it is still this one).
    pub ino: u64,
    pub size: u64,
    pub modified: Option<SystemTime>,
    crcs: Vec<u32>,
}

impl Entry {
    /// Opens the entry at `path` for `key`: `Ok(None)` when there is none or it fails a check
    /// (it stays: a fill for the key renames its new entry over it).
    pub fn open(path: &Path, key: &FileKey) -> io::Result<Option<Entry>> {
        let file = match File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if !meta.is_file() || meta.len() < TRAILER_LEN {
            return Ok(None);
        }
        let mut trailer = [0u8; TRAILER_LEN as usize];
        file.read_exact_at(&mut trailer, meta.len() - TRAILER_LEN)?;
        let Some((size, modified)) = parse_trailer(&trailer, key) else {
            return Ok(None);
        };
        let pieces = size.div_ceil(PIECE);
        if meta.len() != size + pieces * 4 + TRAILER_LEN {
            return Ok(None);
        }
        let mut table = vec![0u8; (pieces * 4) as usize];
        file.read_exact_at(&mut table, size)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&table);
        crc.update(&trailer[..TRAILER_LEN as usize - 4]);
        if crc.finalize() != le_u32(&trailer[76..80]) {
            return Ok(None);
        }
        Ok(Some(Entry {
            file,
            ino: meta.ino(),
            size,
            modified,
            crcs: table.chunks_exact(4).map(le_u32).collect(),
        }))
    }

    /// Piece `index`, checked: `Ok(None)` when it fails its CRC.
    pub fn piece(&self, index: u64) -> io::Result<Option<Bytes>> {
        let start = index * PIECE;
        let len = PIECE.min(self.size.saturating_sub(start)) as usize;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, start)?;
        if crc32fast::hash(&buf) != self.crcs[index as usize] {
            return Ok(None);
        }
        Ok(Some(Bytes::from(buf)))
    }

    /// Sets the mtime (the use order eviction goes by); best effort, as another user's entry
    /// may not allow it.
    pub fn touch(&self) {
        let _ = self.file.set_modified(SystemTime::now());
    }
}

/// The size and time a trailer gives, if it is one of `key`'s (the MD5 it holds is for
/// people and tools looking at the folder; readers check the pieces' CRCs).
fn parse_trailer(t: &[u8], key: &FileKey) -> Option<(u64, Option<SystemTime>)> {
    if &t[..8] != MAGIC || t[8..40] != key.0 {
        return None;
    }
    let size = le_u64(&t[40..48]);
    let secs = le_u64(&t[64..72]);
    let modified = (secs != 0).then(|| crate::fs::mtime::from_epoch_secs(secs));
    Some((size, modified))
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

impl Write for EntryWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes a new entry's file, piece by piece, with its CRCs and MD5 computed on the way.
pub struct EntryWriter {
    file: File,
    written: u64,
    crcs: Vec<u32>,
    piece: crc32fast::Hasher,
    md5: Md5,
}

impl EntryWriter {
    /// Starts the entry in a new file at `tmp` (which must not exist).
    pub fn create(tmp: &Path, mode: u32) -> io::Result<Self> {
        let file = File::options()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(tmp)?;
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        Ok(EntryWriter {
            file,
            written: 0,
            crcs: Vec::new(),
            piece: crc32fast::Hasher::new(),
            md5: Md5::new(),
        })
    }

    /// A handle on the file for readers of the bytes written so far.
    pub fn reader(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends bytes of the file.
    pub fn append(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.md5.update(data);
        while !data.is_empty() {
            let room = (PIECE - self.written % PIECE) as usize;
            let take = room.min(data.len());
            self.piece.update(&data[..take]);
            self.written += take as u64;
            data = &data[take..];
            if self.written.is_multiple_of(PIECE) {
                let done = std::mem::replace(&mut self.piece, crc32fast::Hasher::new());
                self.crcs.push(done.finalize());
            }
        }
        Ok(())
    }

    /// Writes the table and trailer; returns the bytes' size and MD5. The file is then
    /// complete, to be renamed into place.
    pub fn finish(
        mut self,
        key: &FileKey,
        modified: Option<SystemTime>,
    ) -> io::Result<(u64, [u8; 16])> {
        if !self.written.is_multiple_of(PIECE) {
            self.crcs.push(self.piece.clone().finalize());
        }
        let md5: [u8; 16] = self.md5.clone().finalize().into();
        let mut tail = Vec::with_capacity(self.crcs.len() * 4 + TRAILER_LEN as usize);
        for c in &self.crcs {
            tail.extend_from_slice(&c.to_le_bytes());
        }
        let trailer_at = tail.len();
        tail.extend_from_slice(MAGIC);
        tail.extend_from_slice(&key.0);
        tail.extend_from_slice(&self.written.to_le_bytes());
        tail.extend_from_slice(&md5);
        let secs = modified.map_or(0, crate::fs::mtime::epoch_secs);
        tail.extend_from_slice(&secs.to_le_bytes());
        tail.extend_from_slice(&(PIECE as u32).to_le_bytes());
        let crc = crc32fast::hash(&tail);
        tail.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(tail.len() - trailer_at, TRAILER_LEN as usize);
        self.file.write_all(&tail)?;
        self.file.flush()?;
        Ok((self.written, md5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_entry(path: &Path, key: &FileKey, data: &[u8]) {
        let tmp = path.with_extension("tmp");
        let mut w = EntryWriter::create(&tmp, 0o600).unwrap();
        for chunk in data.chunks(300_000) {
            w.append(chunk).unwrap();
        }
        let (size, md5) = w.finish(key, None).unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(md5, <[u8; 16]>::from(Md5::digest(data)));
        std::fs::rename(tmp, path).unwrap();
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4099) as u8).collect()
    }

    #[test]
    fn an_entry_reads_back_piece_by_piece() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e");
        let key = FileKey::new("/f", "v");
        let bytes = data((2 * PIECE + 12_345) as usize);
        write_entry(&path, &key, &bytes);
        let e = Entry::open(&path, &key).unwrap().unwrap();
        assert_eq!(e.size, bytes.len() as u64);
        let mut back = Vec::new();
        for i in 0..3 {
            back.extend_from_slice(&e.piece(i).unwrap().unwrap());
        }
        assert_eq!(back, bytes);
        // Empty files are entries too.
        let empty = dir.path().join("empty");
        write_entry(&empty, &key, b"");
        assert_eq!(Entry::open(&empty, &key).unwrap().unwrap().size, 0);
    }

    #[test]
    fn a_damaged_torn_or_foreign_entry_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e");
        let key = FileKey::new("/f", "v");
        let bytes = data((PIECE + 10) as usize);
        write_entry(&path, &key, &bytes);
        // Another version's key: a miss.
        assert!(Entry::open(&path, &FileKey::new("/f", "v2"))
            .unwrap()
            .is_none());
        // A flipped data byte: the trailer is fine, the piece is refused.
        let mut raw = std::fs::read(&path).unwrap();
        raw[PIECE as usize + 3] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        let e = Entry::open(&path, &key).unwrap().unwrap();
        assert!(e.piece(0).unwrap().is_some());
        assert!(e.piece(1).unwrap().is_none());
        // Torn: cut short.
        std::fs::write(&path, &raw[..raw.len() - 5]).unwrap();
        assert!(Entry::open(&path, &key).unwrap().is_none());
        // A flipped CRC in the table: the trailer's own check fails.
        raw[PIECE as usize + 3] ^= 1;
        raw[bytes.len()] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        assert!(Entry::open(&path, &key).unwrap().is_none());
    }
}
