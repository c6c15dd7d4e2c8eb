//! Reading a block's slot of a cache file, with O_DIRECT where the filesystem allows it.
//!
//! A block read back from the disk tier goes to the memory tier and from there, through the
//! kernel, into the mount's own page cache. A buffered read would add a third copy of it (the
//! cache file's pages) and cost a copy out of them plus their allocation and accounting, about
//! a quarter of the daemon's work on a warm re-read. O_DIRECT has the disk write straight into
//! our buffer. Its rules: the buffer, offset and length aligned to the device's logical block
//! (4 KiB covers every common device); so the buffer is over-allocated and used from an
//! aligned offset (no unsafe allocation), and the length rounded up (a read past the end is
//! short, as usual). A filesystem without O_DIRECT (tmpfs) refuses it with EINVAL, at open or
//! at the first read: then the file is read the ordinary way.

use super::buffers::BlockBuffers;
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

const ALIGN: usize = 4096;

/// `expected` bytes of the file at `path` from `offset` (a multiple of 4 KiB), fewer where the
/// file ends first, and the open file (to touch its mtime). A block is read into one of
/// `buffers`.
pub fn read_at(
    path: &Path,
    offset: u64,
    expected: u64,
    buffers: &Arc<BlockBuffers>,
) -> io::Result<(Bytes, File)> {
    debug_assert_eq!(offset % ALIGN as u64, 0);
    let len = (expected as usize).div_ceil(ALIGN).max(1) * ALIGN;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            return read_buffered(path, offset, expected)
        }
        Err(e) => return Err(e),
    };
    let mut buf = if len + ALIGN <= buffers.capacity() {
        buffers.take()
    } else {
        Vec::with_capacity(len + ALIGN)
    };
    match read_aligned(&file, offset, len, &mut buf) {
        Ok(start) => {
            let end = buf.len().min(start + expected as usize);
            Ok((buffers.freeze(buf).slice(start..end), file))
        }
        Err(e) => {
            buffers.give_back(buf);
            match e.raw_os_error() {
                Some(libc::EINVAL) => read_buffered(path, offset, expected),
                _ => Err(e),
            }
        }
    }
}

/// Reads up to `len` bytes of `file` from `offset` into `buf` (empty, with room for `len` plus
/// the alignment gap) at an aligned place, which it returns; the bytes read are `buf[start..]`.
fn read_aligned(file: &File, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<usize> {
    // Not zeroed: zeroing a fresh megabyte costs as much as the CRC check that follows.
    debug_assert!(buf.is_empty() && buf.capacity() >= len + ALIGN);
    let start = buf.as_ptr().align_offset(ALIGN);
    let mut got = 0;
    while got < len {
        let at = buf.spare_capacity_mut()[start + got..start + len].as_mut_ptr();
        // SAFETY: `at` points into `buf`'s spare capacity with `len - got` bytes after it; the
        // kernel writes at most that many, through a raw pointer (no reference to the
        // uninitialized bytes is made).
        let n = unsafe {
            let at_offset = (offset + got as u64) as libc::off_t;
            libc::pread(file.as_raw_fd(), at.cast(), len - got, at_offset)
        };
        match n {
            0 => break,
            n if n > 0 => got += n as usize,
            _ => match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::Interrupted => continue,
                e => return Err(e),
            },
        }
        if got % ALIGN != 0 {
            break; // a short read ends at the end of the file
        }
    }
    // SAFETY: the kernel initialized bytes `start..start + got`; the bytes before `start` are
    // the alignment gap, zeroed here first.
    buf.spare_capacity_mut()[..start].fill(std::mem::MaybeUninit::new(0));
    unsafe { buf.set_len(start + got) };
    Ok(start)
}

/// `expected` bytes of the file at `path` from `offset`, through the page cache.
pub fn read_buffered(path: &Path, offset: u64, expected: u64) -> io::Result<(Bytes, File)> {
    let file = File::open(path)?;
    let mut buf = Vec::with_capacity(expected as usize);
    (&file).seek(SeekFrom::Start(offset))?;
    (&file).take(expected).read_to_end(&mut buf)?;
    Ok((Bytes::from(buf), file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_whole(path: &Path, expected: u64) -> io::Result<(Bytes, File)> {
        super::read_at(path, 0, expected, &BlockBuffers::new(1 << 20, 2))
    }

    #[test]
    fn reads_a_slot_at_an_offset_and_stops_at_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 * 8192).map(|i| (i % 251) as u8).collect();
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        let buffers = BlockBuffers::new(1 << 20, 2);
        let (got, _) = super::read_at(&path, 8192, 5000, &buffers).unwrap();
        assert_eq!(got, data[8192..8192 + 5000]);
        // Past the end: what there is.
        let (got, _) = super::read_at(&path, 16384, 10_000, &buffers).unwrap();
        assert_eq!(got, data[16384..]);
    }

    #[test]
    fn reads_whole_files_of_any_length() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, 64, 4095, 4096, 4097, (1 << 20) + 64] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &data).unwrap();
            let (got, _) = read_whole(&path, len as u64).unwrap();
            assert_eq!(got, data, "length {len}");
            // A file shorter than expected comes back short (and fails its checks later).
            let (got, _) = read_whole(&path, len as u64 + 10_000).unwrap();
            assert_eq!(got, data, "length {len}, expected longer");
        }
    }

    #[test]
    fn a_filesystem_without_o_direct_is_read_the_ordinary_way() {
        // tmpfs refuses O_DIRECT; skip where there is none.
        let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let data = vec![7u8; 5000];
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        assert_eq!(read_whole(&path, 5000).unwrap().0, data);
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_whole(&dir.path().join("none"), 10).is_err());
    }
}
