//! The attributes the kernel is shown for an inode: type, mode, size, owner, times.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{FileAttr, FileType, INodeNo};

use crate::fs::inode::Inode;
use crate::fs::ops::Core;

/// A cheap copy of what attribute replies need, to move into tasks.
#[derive(Clone)]
pub(super) struct AttrCtx {
    pub core: Arc<Core>,
    /// Owner shown on every inode.
    pub uid: u32,
    pub gid: u32,
    /// The time shown where the server gives none (the mount's start).
    pub time: SystemTime,
    pub ttl: Duration,
    pub read_only: bool,
}

impl AttrCtx {
    pub fn attr(&self, inode: &Inode) -> FileAttr {
        let size = self.core.size_of(inode);
        let time = self.core.mtime_of(inode).unwrap_or(self.time);
        attr_of(inode, size, self.uid, self.gid, time, self.read_only)
    }
}

/// The attributes the kernel sees for an inode.
fn attr_of(
    inode: &Inode,
    size: u64,
    uid: u32,
    gid: u32,
    time: SystemTime,
    read_only: bool,
) -> FileAttr {
    let read_only = read_only || inode.node.in_view();
    let (kind, perm, nlink) = if inode.is_dir() {
        (
            FileType::Directory,
            if read_only { 0o555 } else { 0o755 },
            2,
        )
    } else {
        (
            FileType::RegularFile,
            if read_only { 0o444 } else { 0o644 },
            1,
        )
    };
    let size = if inode.is_dir() { 0 } else { size };
    FileAttr {
        ino: INodeNo(inode.ino),
        size,
        blocks: size.div_ceil(512),
        atime: time,
        mtime: time,
        ctime: time,
        crtime: time,
        kind,
        perm,
        nlink,
        uid,
        gid,
        rdev: 0,
        blksize: 1 << 20,
        flags: 0,
    }
}
