//! The FUSE ceiling (benchmark B0): a mount with one file whose reads are answered with zeros
//! from memory, with no network, no cache and no task hand-off, but the same kernel settings
//! (`xnatfs::fuse::negotiate`) and session threads as xnatfs. `cat` of its file measures what
//! the kernel and fuser cost per byte, the limit every xnatfs read is held against.
//!
//! Usage: `fuse_ceiling MOUNTPOINT SIZE_BYTES`; it serves `/zeros.bin` until unmounted
//! (`umount MOUNTPOINT`). For benchmarks only: `cargo build --release --example fuse_ceiling`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEntry, ReplyOpen, Request,
};

const ROOT: u64 = 1;
const FILE: u64 = 2;
const NAME: &str = "zeros.bin";
/// Zeros to answer from: the largest read the kernel sends is 1 MiB (`negotiate`).
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

struct Ceiling {
    size: u64,
    uid: u32,
    gid: u32,
    time: SystemTime,
}

impl Ceiling {
    fn attr(&self, ino: u64) -> FileAttr {
        let (kind, perm, nlink, size) = if ino == ROOT {
            (FileType::Directory, 0o555, 2, 0)
        } else {
            (FileType::RegularFile, 0o444, 1, self.size)
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            crtime: self.time,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 1 << 20,
            flags: 0,
        }
    }
}

const TTL: Duration = Duration::from_secs(3600);

impl Filesystem for Ceiling {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        xnatfs::fuse::negotiate(config);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent.0 == ROOT && name == NAME {
            reply.entry(&TTL, &self.attr(FILE), Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match ino.0 {
            ROOT | FILE => reply.attr(&TTL, &self.attr(ino.0)),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match ino.0 {
            FILE => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            _ => reply.error(Errno::EISDIR),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let len = self.size.saturating_sub(offset).min(u64::from(size)) as usize;
        reply.data(&ZEROS[..len.min(ZEROS.len())]);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino.0 != ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let entries = [
            (ROOT, FileType::Directory, "."),
            (ROOT, FileType::Directory, ".."),
            (FILE, FileType::RegularFile, NAME),
        ];
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(mountpoint), Some(size)) = (args.next(), args.next()) else {
        eprintln!("usage: fuse_ceiling MOUNTPOINT SIZE_BYTES");
        std::process::exit(2);
    };
    let Some(size) = size.to_str().and_then(|s| s.parse().ok()) else {
        eprintln!("fuse_ceiling: SIZE_BYTES must be a number of bytes");
        std::process::exit(2);
    };
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let fs = Ceiling {
        size,
        uid,
        gid,
        time: SystemTime::now(),
    };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("fuse-ceiling".into()),
        MountOption::RO,
        MountOption::NoAtime,
    ];
    config.n_threads = Some(xnatfs::fuse::SESSION_THREADS);
    let mountpoint = PathBuf::from(mountpoint);
    match fuser::Session::new(fs, &mountpoint, &config).and_then(|s| s.run()) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("fuse_ceiling: {}: {e}", mountpoint.display());
            std::process::exit(1);
        }
    }
}
