//! The filesystem core as the FUSE adapter sees it: the namespace plus open files.
//!
//! A read is a straight line: the adapter calls [`Core::read`], which finds the open file's
//! shared download and asks it for the bytes; the download serves them from the block cache or
//! waits until they arrive from the server. An open also tells the prefetcher which file of
//! its folder was opened, so a folder read file after file has its next files on their way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use super::cache::BlockCache;
use super::error::{FsError, FsResult};
use super::inode::Ino;
use super::namespace::Namespace;
use super::node::Node;
use super::read::{FileVersion, Prefetcher, ReadConfig, ReadEngine, ReadHandle};
use super::write::journal::Spool;
use super::write::stage::Staged;
use super::write::{WriteConfig, Writes};
use crate::xnat::XnatClient;

/// What the core is built from.
pub struct CoreConfig {
    pub metadata_ttl: Duration,
    pub project: Option<String>,
    pub read_only: bool,
    pub read: ReadConfig,
    pub write: WriteConfig,
}

/// An open file: a handle on the server's bytes, on the file's stage for reading (the file
/// is being written through another handle), or on its stage for writing, with the process
/// that opened it (when `/proc` tells).
#[derive(Clone)]
pub(super) enum Handle {
    Read(Arc<ReadHandle>),
    ReadStaged(Arc<Staged>),
    Write {
        staged: Arc<Staged>,
        opener: Option<u32>,
    },
}

/// Told the inode number of a file whose size a download corrected.
pub type SizeChanged = Box<dyn Fn(Ino) + Send + Sync>;

/// Reads in flight per inode, and the inodes found smaller than listed not yet told about.
#[derive(Default)]
struct Shrunk {
    in_flight: HashMap<Ino, usize>,
    pending: std::collections::HashSet<Ino>,
}

pub struct Core {
    namespace: Arc<Namespace<XnatClient>>,
    /// Set once the FUSE session exists: drops the kernel's cached attributes of the inode.
    size_changed: Arc<OnceLock<SizeChanged>>,
    /// Files a download found smaller than listed, to tell about once no read is in flight.
    shrunk: Arc<Mutex<Shrunk>>,
    reads: Arc<ReadEngine>,
    /// Fetches the next files of a folder read in order.
    prefetch: Prefetcher,
    /// The write path; `None` on a read-only mount.
    writes: Option<Arc<Writes>>,
    open: Mutex<HashMap<u64, (Ino, Handle)>>,
    next_fh: AtomicU64,
    read_only: bool,
}

impl Core {
    /// `spool` is where files written are staged; a read-only mount has none.
    pub fn new(
        client: XnatClient,
        cache: Arc<BlockCache>,
        spool: Option<Spool>,
        config: CoreConfig,
    ) -> Core {
        let namespace = Arc::new(Namespace::new(
            Arc::new(client.clone()),
            config.metadata_ttl,
            config.project,
        ));
        let sizes = namespace.clone();
        let size_changed: Arc<OnceLock<SizeChanged>> = Arc::default();
        let shrunk: Arc<Mutex<Shrunk>> = Arc::default();
        let listener = size_changed.clone();
        let pending = shrunk.clone();
        let reads = ReadEngine::new(Arc::new(client.clone()), cache, config.read)
            .with_size_observer(Arc::new(move |uri: &str, listed: u64, actual: u64| {
                let Some(ino) = sizes.correct_file_size(uri, listed, actual) else {
                    return;
                };
                if actual > listed {
                    // Grew: at once, before the read that found out is answered, so that the
                    // reader's next read past the old end asks for the size again.
                    if let Some(tell) = listener.get() {
                        tell(ino);
                    }
                } else {
                    // Shrank: only after the read is answered. The kernel shrinks its copy of
                    // the size itself on that short read, unless the attributes changed while
                    // the read was in flight, when it keeps the listed size and zero-fills.
                    pending.lock().expect("shrunk lock").pending.insert(ino);
                }
            }));
        let reads = Arc::new(reads);
        let series = (reads.config().series, reads.config().series_parallel);
        let prefetch = Prefetcher::new(reads.clone(), series.0, series.1);
        let writes = spool.filter(|_| !config.read_only).map(|spool| {
            Writes::new(
                namespace.clone(),
                client,
                reads.clone(),
                spool,
                config.write,
            )
        });
        Core {
            namespace,
            size_changed,
            shrunk,
            reads,
            prefetch,
            writes,
            open: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            read_only: config.read_only,
        }
    }

    /// Call `tell` with the inode of every file whose size a download corrected (the kernel
    /// caches a file's size; page-cache reads stop at it, or are zero-filled up to it): for a
    /// file larger than listed at once, for one smaller when [`Core::after_reply`] is called.
    /// Only the first call counts.
    pub fn on_size_changed(&self, tell: SizeChanged) {
        let _ = self.size_changed.set(tell);
    }

    /// Call once the answer to a read of `ino` (from [`Core::read`]) has gone to the kernel.
    /// When no other read of the file is in flight any more, tells the size listener if a
    /// download found the file smaller than listed. (Concurrent short reads can leave the
    /// kernel holding a size between the real and the listed one, with zeros past the real
    /// end; once its attributes are invalid it asks again, and drops those pages. Doing it
    /// while a read is in flight would make the kernel zero-fill that read instead.)
    pub fn after_reply(&self, ino: Ino) {
        let tell_now = {
            let mut shrunk = self.shrunk.lock().expect("shrunk lock");
            let left = match shrunk.in_flight.get_mut(&ino) {
                Some(n) => {
                    *n -= 1;
                    *n
                }
                None => 0,
            };
            if left == 0 {
                shrunk.in_flight.remove(&ino);
            }
            left == 0 && shrunk.pending.remove(&ino)
        };
        if let (true, Some(tell)) = (tell_now, self.size_changed.get()) {
            tell(ino);
        }
    }

    pub fn namespace(&self) -> &Namespace<XnatClient> {
        &self.namespace
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Open a file for reading; the handle shares the file's one download with every other.
    ///
    /// While the file's real size is unknown (no download of this version yet, here or in the
    /// disk cache), the open starts the download and waits for its first answer, which carries
    /// the size: a listing can be wrong, and the kernel must have the right size before the
    /// first read, or it stops page-cache reads at the listed size or zero-fills up to it. The
    /// first read waits for that answer anyway, so this costs no extra request.
    pub async fn open(&self, ino: Ino) -> FsResult<u64> {
        let inode = self.namespace.inode(ino)?;
        let Some(file) = file_version(&inode) else {
            return Err(FsError::is_dir());
        };
        if let Some(staged) = self.writes.as_ref().and_then(|w| w.staged(ino)) {
            // Being written here: read the stage, as a local filesystem would.
            staged.opened();
            return Ok(self.add_handle(ino, Handle::ReadStaged(staged)));
        }
        let handle = Arc::new(self.reads.open(&file));
        let fh = self.add_handle(ino, Handle::Read(handle.clone()));
        // Before this file's first answer, so that the next files' requests overlap it.
        self.fetch_ahead(&inode);
        if handle.real_size().is_none() {
            let first = self.read(ino, fh, 0, 1).await;
            self.after_reply(ino);
            if let Err(e) = first {
                self.release(fh);
                return Err(e);
            }
        }
        Ok(fh)
    }

    /// Tells the prefetcher that `inode` was opened, with its place among its folder's files.
    fn fetch_ahead(&self, inode: &super::inode::Inode) {
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

    /// Read from an open file; the caller calls [`Core::after_reply`] with `ino` once the
    /// answer (bytes or error) has gone to the kernel.
    pub async fn read(&self, ino: Ino, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        *self
            .shrunk
            .lock()
            .expect("shrunk lock")
            .in_flight
            .entry(ino)
            .or_default() += 1;
        let handle = match self.handle(fh)? {
            Handle::ReadStaged(staged) | Handle::Write { staged, .. } => Err(staged),
            // Opened before the file was staged: the stage has the newer bytes.
            Handle::Read(handle) => match self.writes.as_ref().and_then(|w| w.staged(ino)) {
                Some(staged) => Err(staged),
                None => Ok(handle),
            },
        };
        let handle = match handle {
            Ok(handle) => handle,
            Err(staged) => {
                return staged.read_at(offset, size).map(Bytes::from).map_err(|e| {
                    FsError::new(e.raw_os_error().unwrap_or(libc::EIO), e.to_string())
                })
            }
        };
        handle.read(offset, size).await.map_err(|e| {
            tracing::warn!("read failed: {e}");
            FsError::new(e.errno(), e.to_string())
        })
    }

    pub fn release(&self, fh: u64) {
        // A read still in flight keeps its reference; the last one dropped releases the file.
        let handle = self.open.lock().expect("open files lock").remove(&fh);
        if let (
            Some((_, Handle::ReadStaged(staged) | Handle::Write { staged, .. })),
            Some(writes),
        ) = (handle, &self.writes)
        {
            writes.release(&staged);
        }
    }

    pub(super) fn add_handle(&self, ino: Ino, handle: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.open
            .lock()
            .expect("open files lock")
            .insert(fh, (ino, handle));
        fh
    }

    pub(super) fn handle(&self, fh: u64) -> FsResult<Handle> {
        let open = self.open.lock().expect("open files lock");
        open.get(&fh)
            .map(|(_, h)| h.clone())
            .ok_or_else(|| FsError::new(libc::EBADF, format!("no open file {fh}")))
    }

    pub(super) fn writes(&self) -> FsResult<&Arc<Writes>> {
        self.writes
            .as_ref()
            .ok_or_else(|| FsError::new(libc::EROFS, "the mount is read-only"))
    }

    pub(super) fn writes_opt(&self) -> Option<&Arc<Writes>> {
        self.writes.as_ref()
    }

    /// The size to show for `inode`: its stage's while it is staged.
    pub fn size_of(&self, inode: &super::inode::Inode) -> u64 {
        match self.writes.as_ref().and_then(|w| w.staged(inode.ino)) {
            Some(staged) => staged.size(),
            None => inode.size(),
        }
    }
}

/// The server version of a file inode (`None` for a folder, or a file not on the server yet).
fn file_version(inode: &super::inode::Inode) -> Option<FileVersion> {
    let Node::File { version, .. } = &inode.node else {
        return None;
    };
    Some(FileVersion {
        uri: inode.uri.clone(),
        size: inode.size(),
        version: version.clone(),
        digest: inode.digest.clone(),
    })
}
