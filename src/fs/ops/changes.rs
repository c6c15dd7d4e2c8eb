//! The changing operations of the core, as the FUSE adapter calls them.
//!
//! Each one refuses with EROFS on a read-only mount and otherwise hands over to the write path
//! (`write/`). Handles on a file being written are handles on its stage; `flush` (a `close` in
//! the process that opened the file) and `fsync` upload the stage when the server lacks some
//! of its changes and return the upload's error, which is what `close` returns to the program.

use std::sync::Arc;

use super::{Core, Handle};
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::{Ino, Inode};

impl Core {
    /// Create and open file `name` in `parent`, for the thread `pid`.
    pub async fn create(&self, parent: Ino, name: &[u8], pid: u32) -> FsResult<(Arc<Inode>, u64)> {
        self.refuse_in_view(parent, None).await?;
        let writes = self.writes()?;
        let dir = self.namespace().inode(parent)?;
        if self.namespace().lookup(parent, name).await.is_ok() {
            return Err(FsError::new(libc::EEXIST, "the file exists"));
        }
        let (inode, staged) = writes.create(&dir, name).await?;
        let opener = process_of(pid);
        let fh = self.add_handle(inode.ino, Handle::Write { staged, opener });
        Ok((inode, fh))
    }

    /// Open an existing file for writing (`truncate`: `O_TRUNC`), for the thread `pid`.
    pub async fn open_write(&self, ino: Ino, truncate: bool, pid: u32) -> FsResult<u64> {
        self.refuse_in_view(ino, None).await?;
        let writes = self.writes()?;
        let inode = self.namespace().inode(ino)?;
        let staged = writes.open_existing(&inode, truncate).await?;
        let opener = process_of(pid);
        Ok(self.add_handle(ino, Handle::Write { staged, opener }))
    }

    /// A write that can be done at once, on the caller's thread (it touches no disk but the
    /// stage's page cache); `None` when it cannot, and [`Core::write`] must do it.
    pub fn write_now(&self, fh: u64, offset: u64, data: &[u8]) -> Option<FsResult<u32>> {
        let writes = match self.writes() {
            Ok(w) => w,
            Err(e) => return Some(Err(e)),
        };
        match self.handle(fh) {
            Ok(Handle::Write { staged, .. }) => writes.write_now(&staged, offset, data),
            Ok(_) => Some(Err(FsError::new(libc::EBADF, "not open for writing"))),
            Err(e) => Some(Err(e)),
        }
    }

    /// A write that first saves the stage's journal record (the first write since an upload).
    pub async fn write(&self, fh: u64, offset: u64, data: Vec<u8>) -> FsResult<u32> {
        let writes = self.writes()?;
        match self.handle(fh)? {
            Handle::Write { staged, .. } => writes.write(&staged, offset, data).await,
            _ => Err(FsError::new(libc::EBADF, "not open for writing")),
        }
    }

    /// Change a file's size: through an open handle (`ftruncate`), the change goes up at its
    /// close; by path (`truncate`), it goes up now.
    pub async fn set_size(&self, ino: Ino, fh: Option<u64>, size: u64) -> FsResult<Arc<Inode>> {
        self.refuse_in_view(ino, None).await?;
        let writes = self.writes()?;
        let inode = self.namespace().inode(ino)?;
        if inode.is_dir() {
            return Err(FsError::is_dir());
        }
        let through_handle = match fh.map(|fh| self.handle(fh)) {
            Some(Ok(Handle::Write { staged, .. })) => Some(staged),
            _ => None,
        };
        if let Some(staged) = &through_handle {
            writes.truncate(staged, size).await?;
        } else {
            let staged = writes.open_existing(&inode, size == 0).await?;
            let cut = match size {
                0 => Ok(()),
                _ => writes.truncate(&staged, size).await,
            };
            let result = match cut {
                Ok(()) => writes.upload(&staged).await,
                Err(e) => Err(e),
            };
            writes.release(&staged).await;
            result?;
        }
        self.namespace().inode(ino)
    }

    /// A `close` of `fh` by the thread `pid`: upload what the server lacks.
    ///
    /// A close by another process than the one that opened the file is a copy of the
    /// descriptor going away: a child that inherited it (a shell redirection) or a fork in
    /// another thread whose exec closes it. It uploads nothing, as the file may be half
    /// written; the opener's close uploads, and if the opener closed first, the release of
    /// the last copy hands the file to the background uploads.
    pub async fn flush(&self, fh: u64, pid: u32) -> FsResult<()> {
        let (Some(writes), Ok(Handle::Write { staged, opener })) =
            (self.writes.as_ref(), self.handle(fh))
        else {
            return Ok(());
        };
        if let (Some(opener), Some(closer)) = (opener, process_of(pid)) {
            if opener != closer {
                tracing::debug!(
                    opener,
                    closer,
                    "close of a copy of a descriptor in another process: no upload"
                );
                return Ok(());
            }
        }
        writes.upload(&staged).await
    }

    /// An `fsync` of `fh`, from any process: upload what the server lacks.
    pub async fn fsync(&self, fh: u64) -> FsResult<()> {
        match (self.writes.as_ref(), self.handle(fh)) {
            (Some(writes), Ok(Handle::Write { staged, .. })) => writes.upload(&staged).await,
            _ => Ok(()),
        }
    }

    pub async fn mkdir(&self, parent: Ino, name: &[u8]) -> FsResult<Arc<Inode>> {
        self.refuse_in_view(parent, None).await?;
        let writes = self.writes()?;
        let dir = self.namespace().inode(parent)?;
        writes.mkdir(&dir, name).await
    }

    pub async fn unlink(&self, parent: Ino, name: &[u8]) -> FsResult<()> {
        self.refuse_in_view(parent, Some(name)).await?;
        let writes = self.writes()?;
        let dir = self.namespace().inode(parent)?;
        writes.unlink(&dir, name).await
    }

    pub async fn rmdir(&self, parent: Ino, name: &[u8]) -> FsResult<()> {
        self.refuse_in_view(parent, Some(name)).await?;
        let writes = self.writes()?;
        let dir = self.namespace().inode(parent)?;
        writes.rmdir(&dir, name).await
    }

    pub async fn rename(
        &self,
        parent: Ino,
        name: &[u8],
        new_parent: Ino,
        new_name: &[u8],
        no_replace: bool,
    ) -> FsResult<()> {
        self.refuse_in_view(parent, Some(name)).await?;
        self.refuse_in_view(new_parent, Some(new_name)).await?;
        let writes = self.writes()?;
        let dir = self.namespace().inode(parent)?;
        let new_dir = self.namespace().inode(new_parent)?;
        writes
            .rename(&dir, name, &new_dir, new_name, no_replace)
            .await
    }
}

impl Core {
    /// EROFS for a change in a view (`.bids`, `.tables`) or to the view folders themselves,
    /// on any mount: they show the archive in another shape and hold nothing of their own.
    async fn refuse_in_view(&self, ino: Ino, name: Option<&[u8]>) -> FsResult<()> {
        let mut in_view = self.namespace().inode(ino)?.node.in_view();
        if let (false, Some(name)) = (in_view, name) {
            if let Ok(child) = self.namespace().lookup(ino, name).await {
                in_view = child.node.in_view();
            }
        }
        if in_view {
            return Err(FsError::new(
                libc::EROFS,
                "the .bids and .tables views are read-only",
            ));
        }
        Ok(())
    }
}

/// The process (thread group) of thread `tid`, as `/proc` tells it: FUSE names the thread that
/// made a request, and threads of one process must count as one.
fn process_of(tid: u32) -> Option<u32> {
    if tid == 0 {
        // The request came from outside the daemon's PID namespace.
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:"))
        .and_then(|n| n.trim().parse().ok())
}
