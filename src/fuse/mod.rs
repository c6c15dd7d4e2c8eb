//! The FUSE adapter: a thin translation from fuser's callbacks to the filesystem core.
//!
//! It converts types, turns [`FsError`]s into errno replies (logging each failure once, at the
//! error's level), keeps the kernel's caches right (`kernel`), and does nothing else. Every
//! request that may wait on the network is spawned onto the tokio runtime and answered from its
//! task, so a slow download never holds up `ls` or a read of cached data (fuser's replies are
//! `Send`). Attributes and entries are cached by the kernel for the metadata TTL (`attr`), and
//! files are opened with `FOPEN_KEEP_CACHE`: a file's bytes never change under one inode number,
//! because a new server version gets a new inode.

mod attr;
mod kernel;

pub use kernel::KernelCache;

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};
use tokio::runtime::Handle;

use crate::fs::error::FsError;
use crate::fs::inode::ROOT_INO;
use crate::fs::ops::warm::WARM_XATTR;
use crate::fs::ops::Core;
use crate::status::{SPOOL_XATTR, STATUS_XATTR};
use crate::warm::CACHED_XATTR;
use attr::AttrCtx;

/// Largest read the kernel is allowed to send in one request.
const MAX_READAHEAD: u32 = 1 << 20;
/// Largest write the kernel is asked to send in one request.
const MAX_WRITE: u32 = 1 << 20;
/// Threads reading FUSE requests from the kernel (the answers come from tokio tasks).
pub const SESSION_THREADS: usize = 2;

pub struct XnatFuse {
    core: Arc<Core>,
    runtime: Handle,
    kernel: Arc<KernelCache>,
    /// Owner and times shown on every inode.
    uid: u32,
    gid: u32,
    mounted_at: SystemTime,
    ttl: Duration,
}

impl XnatFuse {
    /// `kernel` is told the session's notifier once the session exists.
    pub fn new(core: Arc<Core>, runtime: Handle, kernel: Arc<KernelCache>, ttl: Duration) -> Self {
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        XnatFuse {
            core,
            runtime,
            kernel,
            uid,
            gid,
            mounted_at: SystemTime::now(),
            ttl,
        }
    }

    fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(task);
    }
}

/// The errno of a failed operation `op`, its one log line written.
fn fail(op: &str, err: FsError) -> Errno {
    err.log(op);
    Errno::from_i32(err.errno)
}

/// Answer a request that returns nothing but success or an errno.
fn answer(op: &str, reply: ReplyEmpty, result: Result<(), FsError>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(fail(op, e)),
    }
}

impl XnatFuse {
    fn ctx(&self) -> AttrCtx {
        AttrCtx {
            core: self.core.clone(),
            uid: self.uid,
            gid: self.gid,
            time: self.mounted_at,
            ttl: self.ttl,
            read_only: self.core.read_only(),
        }
    }
}

/// What xnatfs asks of the kernel at `init` (also the FUSE ceiling benchmark's, so that it
/// measures the same kernel settings).
pub fn negotiate(config: &mut KernelConfig) {
    // Larger kernel requests mean fewer round trips through the daemon; take what we get.
    let _ = config.set_max_readahead(MAX_READAHEAD);
    let _ = config.add_capabilities(
        InitFlags::FUSE_DO_READDIRPLUS
                | InitFlags::FUSE_READDIRPLUS_AUTO
                | InitFlags::FUSE_PARALLEL_DIROPS
                | InitFlags::FUSE_AUTO_INVAL_DATA
                // O_TRUNC comes with the open instead of as a separate truncate first, which
                // would upload an empty file before the new one.
                | InitFlags::FUSE_ATOMIC_O_TRUNC,
    );
    // Fewer, larger writes from `cp` and friends.
    let _ = config.set_max_write(MAX_WRITE);
    let _ = config.set_max_background(64);
    let _ = config.set_congestion_threshold(48);
}

impl Filesystem for XnatFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        negotiate(config);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let core = self.core.clone();
        let ctx = self.ctx();
        let name = name.as_encoded_bytes().to_vec();
        self.spawn(async move {
            match core.namespace().lookup(parent.0, &name).await {
                Ok(inode) => reply.entry(&ctx.ttl, &ctx.attr(&inode), Generation(0)),
                Err(e) => reply.error(fail("lookup", e)),
            }
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let ctx = self.ctx();
        match self.core.namespace().inode(ino.0) {
            Ok(inode) => reply.attr(&ctx.ttl, &ctx.attr(&inode)),
            Err(e) => reply.error(fail("getattr", e)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let core = self.core.clone();
        let kernel = self.kernel.clone();
        let pid = req.pid();
        let writing = flags.0 & libc::O_ACCMODE != libc::O_RDONLY;
        let truncate = flags.0 & libc::O_TRUNC != 0;
        self.spawn(async move {
            let opened = if writing {
                core.open_write(ino.0, truncate, pid).await
            } else {
                core.open(ino.0).await.map(|(fh, resize)| {
                    if let Some(resize) = resize {
                        kernel.resized(resize);
                    }
                    fh
                })
            };
            match opened {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE),
                Err(e) => reply.error(fail("open", e)),
            }
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: fuser::ReplyCreate,
    ) {
        let core = self.core.clone();
        let ctx = self.ctx();
        let name = name.as_encoded_bytes().to_vec();
        let pid = req.pid();
        self.spawn(async move {
            match core.create(parent.0, &name, pid).await {
                Ok((inode, fh)) => reply.created(
                    &ctx.ttl,
                    &ctx.attr(&inode),
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::FOPEN_KEEP_CACHE,
                ),
                Err(e) => reply.error(fail("create", e)),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: fuser::ReplyWrite,
    ) {
        // A write into the stage's page cache is answered here, without a task; the first write
        // after an upload saves the stage's journal record first, which waits on the disk, so
        // it goes to a task.
        match self.core.write_now(fh.0, offset, data) {
            Some(Ok(n)) => reply.written(n),
            Some(Err(e)) => reply.error(fail("write", e)),
            None => {
                let core = self.core.clone();
                let data = data.to_vec();
                self.spawn(async move {
                    match core.write(fh.0, offset, data).await {
                        Ok(n) => reply.written(n),
                        Err(e) => reply.error(fail("write", e)),
                    }
                });
            }
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Only the size is kept: XNAT has no owners, modes or times to set, and `cp -p` or
        // `touch` must not fail for that.
        let core = self.core.clone();
        let ctx = self.ctx();
        self.spawn(async move {
            let inode = match size {
                Some(size) => core.set_size(ino.0, fh.map(|f| f.0), size).await,
                None => core.namespace().inode(ino.0),
            };
            match inode {
                Ok(inode) => reply.attr(&ctx.ttl, &ctx.attr(&inode)),
                Err(e) => reply.error(fail("setattr", e)),
            }
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let core = self.core.clone();
        self.spawn(async move {
            answer("fsync", reply, core.fsync(fh.0).await);
        });
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let core = self.core.clone();
        let ctx = self.ctx();
        let name = name.as_encoded_bytes().to_vec();
        self.spawn(async move {
            match core.mkdir(parent.0, &name).await {
                Ok(inode) => reply.entry(&ctx.ttl, &ctx.attr(&inode), Generation(0)),
                Err(e) => reply.error(fail("mkdir", e)),
            }
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let core = self.core.clone();
        let name = name.as_encoded_bytes().to_vec();
        self.spawn(async move {
            answer("unlink", reply, core.unlink(parent.0, &name).await);
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let core = self.core.clone();
        let name = name.as_encoded_bytes().to_vec();
        self.spawn(async move {
            answer("rmdir", reply, core.rmdir(parent.0, &name).await);
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(fuser::RenameFlags::RENAME_EXCHANGE)
            || flags.contains(fuser::RenameFlags::RENAME_WHITEOUT)
        {
            reply.error(Errno::from_i32(libc::EINVAL));
            return;
        }
        let no_replace = flags.contains(fuser::RenameFlags::RENAME_NOREPLACE);
        let core = self.core.clone();
        let name = name.as_encoded_bytes().to_vec();
        let newname = newname.as_encoded_bytes().to_vec();
        self.spawn(async move {
            let moved = core
                .rename(parent.0, &name, newparent.0, &newname, no_replace)
                .await;
            answer("rename", reply, moved);
        });
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let core = self.core.clone();
        let kernel = self.kernel.clone();
        kernel.read_started(ino.0);
        self.spawn(async move {
            match core.read(ino.0, fh.0, offset, size).await {
                Ok(answer) => {
                    if let Some(resize) = answer.resize {
                        kernel.resized(resize);
                    }
                    reply.data(&answer.data)
                }
                Err(e) => reply.error(fail("read", e)),
            }
            kernel.read_answered(ino.0);
        });
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // A `close` of a file written here uploads it, and returns the upload's error: the
        // kernel drops errors from `release`, but `close` returns this one.
        let core = self.core.clone();
        let pid = req.pid();
        self.spawn(async move {
            answer("flush", reply, core.flush(fh.0, pid).await);
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        // The last release of a file written here may save its journal record (a disk sync):
        // from a task.
        let core = self.core.clone();
        let kernel = self.kernel.clone();
        self.spawn(async move {
            if let Some(gone) = core.release(fh.0).await {
                kernel.gone(gone);
            }
            reply.ok();
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.core.namespace().inode(ino.0) {
            Ok(inode) if inode.is_dir() => reply.opened(FileHandle(0), FopenFlags::empty()),
            Ok(_) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(fail("opendir", e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let core = self.core.clone();
        self.spawn(async move {
            let ns = core.namespace();
            let entries = match dir_entries(&core, ino.0).await {
                Ok(e) => e,
                Err(e) => return reply.error(fail("readdir", e)),
            };
            for (i, (name, child)) in entries.iter().enumerate().skip(offset as usize) {
                let kind = match ns.inode(*child) {
                    Ok(inode) if !inode.is_dir() => FileType::RegularFile,
                    _ => FileType::Directory,
                };
                if reply.add(INodeNo(*child), (i + 1) as u64, kind, name) {
                    break;
                }
            }
            reply.ok();
        });
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let core = self.core.clone();
        let ctx = self.ctx();
        self.spawn(async move {
            let ns = core.namespace();
            let entries = match dir_entries(&core, ino.0).await {
                Ok(e) => e,
                Err(e) => return reply.error(fail("readdirplus", e)),
            };
            for (i, (name, child)) in entries.iter().enumerate().skip(offset as usize) {
                let Ok(inode) = ns.inode(*child) else {
                    continue;
                };
                if reply.add(
                    INodeNo(*child),
                    (i + 1) as u64,
                    name,
                    &ctx.ttl,
                    &ctx.attr(&inode),
                    Generation(0),
                ) {
                    break;
                }
            }
            reply.ok();
        });
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // What can be written is what the spool's disk can stage.
        const BLOCK: u64 = 1 << 20;
        let space = self.core.spool_space().unwrap_or_default();
        reply.statfs(
            space.total / BLOCK,
            space.free / BLOCK,
            space.available / BLOCK,
            0,
            0,
            BLOCK as u32,
            255,
            BLOCK as u32,
        );
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        if name != OsStr::new(WARM_XATTR) {
            return reply.error(Errno::ENOTSUP);
        }
        let core = self.core.clone();
        self.spawn(async move {
            match core.warm_folder(ino.0).await {
                Ok(_) => reply.ok(),
                Err(e) => reply.error(fail("setxattr", e)),
            }
        });
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let inode = match self.core.namespace().inode(ino.0) {
            Ok(i) => i,
            Err(e) => return reply.error(fail("getxattr", e)),
        };
        if ino.0 == ROOT_INO && name == OsStr::new(STATUS_XATTR) {
            return reply_xattr(reply, &status_json(&self.core), size);
        }
        if name == OsStr::new(CACHED_XATTR) {
            return match self.core.is_cached(ino.0) {
                Ok(cached) => reply_xattr(reply, if cached { b"1" } else { b"0" }, size),
                Err(_) => reply.error(Errno::NO_XATTR),
            };
        }
        if ino.0 == ROOT_INO && name == OsStr::new(SPOOL_XATTR) {
            return match self.core.spool_dir() {
                Some(dir) => reply_xattr(reply, dir.as_os_str().as_encoded_bytes(), size),
                None => reply.error(Errno::NO_XATTR),
            };
        }
        let Some((_, value)) = inode.xattrs.iter().find(|(k, _)| OsStr::new(k) == name) else {
            return reply.error(Errno::NO_XATTR);
        };
        reply_xattr(reply, value.as_bytes(), size);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let inode = match self.core.namespace().inode(ino.0) {
            Ok(i) => i,
            Err(e) => return reply.error(fail("listxattr", e)),
        };
        let mut names = Vec::new();
        if ino.0 == ROOT_INO {
            names.extend_from_slice(STATUS_XATTR.as_bytes());
            names.push(0);
        }
        if ino.0 == ROOT_INO && self.core.spool_dir().is_some() {
            names.extend_from_slice(SPOOL_XATTR.as_bytes());
            names.push(0);
        }
        for (key, _) in &inode.xattrs {
            names.extend_from_slice(key.as_bytes());
            names.push(0);
        }
        reply_xattr(reply, &names, size);
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        // No ioctls here; `isatty()` and friends ask, and ENOTTY is the answer they expect.
        reply.error(Errno::from_i32(libc::ENOTTY));
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: fuser::AccessFlags, reply: ReplyEmpty) {
        match self.core.namespace().inode(ino.0) {
            Ok(_) if self.core.read_only() && mask.contains(fuser::AccessFlags::W_OK) => {
                reply.error(Errno::from_i32(libc::EROFS))
            }
            Ok(_) => reply.ok(),
            Err(e) => reply.error(fail("access", e)),
        }
    }
}

/// A directory's entries as readdir hands them out: `.`, `..`, then the listing. The position in
/// this list is the offset cookie the kernel resumes from.
async fn dir_entries(core: &Core, dir: u64) -> Result<Vec<(String, u64)>, FsError> {
    let ns = core.namespace();
    let listing = ns.list(dir).await?;
    let parent = ns.inode(dir).map(|i| i.parent).unwrap_or(dir);
    let mut entries = Vec::with_capacity(listing.entries.len() + 2);
    entries.push((".".to_string(), dir));
    entries.push(("..".to_string(), parent));
    entries.extend(listing.entries.iter().cloned());
    Ok(entries)
}

/// Answer a size probe (`size == 0`) or the value itself, or ERANGE if it does not fit.
/// The mount's report as JSON, within what an extended attribute can hold (the upload list
/// shortened if it must be; its total stays).
fn status_json(core: &Core) -> Vec<u8> {
    let mut report = core.report();
    loop {
        let json = serde_json::to_vec(&report).unwrap_or_default();
        if json.len() <= STATUS_MAX_BYTES || report.uploads.is_empty() {
            return json;
        }
        report.uploads.truncate(report.uploads.len() / 2);
    }
}

/// The largest status value: under the kernel's 64 KiB for an extended attribute.
const STATUS_MAX_BYTES: usize = 60 << 10;

fn reply_xattr(reply: ReplyXattr, value: &[u8], size: u32) {
    if size == 0 {
        reply.size(value.len() as u32);
    } else if value.len() <= size as usize {
        reply.data(value);
    } else {
        reply.error(Errno::from_i32(libc::ERANGE));
    }
}
