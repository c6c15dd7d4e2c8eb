//! Opening, reading and releasing files.
//!
//! An open also tells the prefetcher which file of its folder was opened, so a folder read
//! file after file has its next files on their way. A read or an open that finds the file's
//! real size differs from what the mount showed corrects it and says so in its answer, for the
//! adapter to tell the kernel.

use std::sync::Arc;

use bytes::Bytes;

use super::{Core, Handle, Resize};
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::{Ino, Inode};
use crate::fs::read::{FileVersion, ReadHandle};
use crate::fs::write::Gone;

/// The answer to a read.
#[derive(Debug)]
pub struct ReadReply {
    pub data: Bytes,
    /// This read found the file's size differs from what the mount showed.
    pub resize: Option<Resize>,
}

/// The server version of a file inode (`None` for a folder).
pub(super) fn file_version(inode: &Inode) -> Option<FileVersion> {
    let version = inode.node.archive_version()?;
    Some(FileVersion {
        uri: inode.uri.clone(),
        size: inode.size(),
        version: version.to_string(),
        digest: inode.digest.clone(),
    })
}

/// The inode's size corrected to the real size `handle` found, if it differs.
fn reconcile(inode: &Inode, handle: &ReadHandle) -> Option<Resize> {
    if let Some(t) = handle.modified() {
        inode.set_mtime(t);
    }
    let real = handle.real_size()?;
    let before = inode.correct_size(real)?;
    tracing::info!(uri = %inode.uri, listed = before, actual = real, "size corrected by download");
    Some(Resize {
        ino: inode.ino,
        grew: real > before,
    })
}

impl Core {
    /// Whether the file's bytes are cached whole, in the shared cache or in this mount's
    /// block cache (`xnatfs warm` skips those).
    pub fn is_cached(&self, ino: Ino) -> FsResult<bool> {
        let inode = self.namespace.inode(ino)?;
        let Some(file) = file_version(&inode) else {
            return Err(FsError::is_dir());
        };
        let key = file.key();
        if let Some(shared) = &self.reads.config().shared {
            if shared.contains(&key) {
                return Ok(true);
            }
        }
        Ok(self.reads.cache().holds_whole(key, inode.size()))
    }

    /// Open a file for reading; the handle shares the file's one download with every other.
    ///
    /// While the file's real size is unknown (no download of this version yet, here or in the
    /// disk cache), the open starts the download and waits for its first answer, which carries
    /// the size: a listing can be wrong, and the kernel must have the right size before the
    /// first read, or it stops page-cache reads at the listed size or zero-fills up to it. The
    /// first read waits for that answer anyway, so this costs no extra request.
    pub async fn open(&self, ino: Ino) -> FsResult<(u64, Option<Resize>)> {
        let inode = self.namespace.inode(ino)?;
        if let Some(bytes) = self.namespace.made_bytes(&inode) {
            return Ok((self.add_handle(ino, Handle::Made(bytes)), None));
        }
        let Some(file) = file_version(&inode) else {
            return Err(FsError::is_dir());
        };
        if let Some(staged) = self.writes.as_ref().and_then(|w| w.staged(ino)) {
            // Being written here: read the stage, as a local filesystem would.
            staged.opened();
            return Ok((self.add_handle(ino, Handle::ReadStaged(staged)), None));
        }
        let handle = Arc::new(self.reads.open(&file));
        let fh = self.add_handle(
            ino,
            Handle::Read {
                handle: handle.clone(),
                inode: inode.clone(),
            },
        );
        // Before this file's first answer, so that the next files' requests overlap it.
        self.fetch_ahead(&inode);
        if handle.real_size().is_none() {
            if let Err(e) = handle.read(0, 1).await {
                self.release(fh).await;
                return Err(e.into());
            }
        }
        Ok((fh, reconcile(&inode, &handle)))
    }

    /// Tells the prefetcher that `inode` was opened, with its place among its folder's files.
    fn fetch_ahead(&self, inode: &Inode) {
        let Some(order) = self.namespace.files_in_name_order(inode.parent) else {
            return;
        };
        let Some(&index) = order.index.get(&inode.ino) else {
            return;
        };
        let writes = self.writes.as_ref();
        self.prefetch
            .opened(inode.parent, index, order.files.len(), |i| {
                let ino = order.files[i];
                if writes.is_some_and(|w| w.staged(ino).is_some()) {
                    return None;
                }
                file_version(&*self.namespace.inode(ino).ok()?)
            });
    }

    /// Read from an open file.
    pub async fn read(&self, ino: Ino, fh: u64, offset: u64, size: u32) -> FsResult<ReadReply> {
        let (handle, inode) = match self.handle(fh)? {
            Handle::Made(bytes) => {
                let start = (offset as usize).min(bytes.len());
                let end = start.saturating_add(size as usize).min(bytes.len());
                return Ok(ReadReply {
                    data: bytes.slice(start..end),
                    resize: None,
                });
            }
            Handle::ReadStaged(staged) | Handle::Write { staged, .. } => {
                return read_stage(&staged, offset, size)
            }
            // Opened before the file was staged: the stage has the newer bytes.
            Handle::Read { handle, inode } => {
                if let Some(staged) = self.writes.as_ref().and_then(|w| w.staged(ino)) {
                    return read_stage(&staged, offset, size);
                }
                (handle, inode)
            }
        };
        let data = handle.read(offset, size).await?;
        Ok(ReadReply {
            data,
            resize: reconcile(&inode, &handle),
        })
    }

    /// A handle closed for good. A read still in flight keeps its reference; the last one
    /// dropped releases the file. Returns the entries the kernel must forget, if the file
    /// left the tree (a new file whose stage had to be thrown away).
    pub async fn release(&self, fh: u64) -> Option<Gone> {
        let handle = self.open.lock().expect("open files lock").remove(&fh);
        match (handle, &self.writes) {
            (
                Some((_, Handle::ReadStaged(staged) | Handle::Write { staged, .. })),
                Some(writes),
            ) => writes.release(&staged).await,
            _ => None,
        }
    }
}

fn read_stage(
    staged: &crate::fs::write::stage::Staged,
    offset: u64,
    size: u32,
) -> FsResult<ReadReply> {
    let data = staged
        .read_at(offset, size)
        .map_err(|e| FsError::io("reading the stage", e))?;
    Ok(ReadReply {
        data: Bytes::from(data),
        resize: None,
    })
}
