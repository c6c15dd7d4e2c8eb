//! The filesystem's operations as the FUSE adapter calls them: the namespace, the read engine
//! and the write path put together, and the table of open files.
//!
//! A read is a straight line: the adapter calls [`Core::read`], which finds the open file's
//! shared download and asks it for the bytes; the download serves them from the block cache or
//! waits until they arrive from the server. Nothing calls back up: what the kernel must be told
//! comes back to the adapter as part of an answer (a [`Resize`] with a read, a
//! [`Gone`](crate::fs::write::Gone) with a release) or, for what was learnt in the background
//! (a file fetched ahead found larger or smaller than listed), on the channel
//! [`Core::resizes`] hands out once.
//!
//! `reads.rs` opens and reads files, `changes.rs` holds the operations that change something.

mod changes;
mod reads;
pub mod report;
pub mod warm;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::cache::BlockCache;
use super::error::{FsError, FsResult};
use super::inode::{Ino, Inode};
use super::namespace::store::ListingStore;
use super::namespace::Namespace;
use super::read::{LearnedSize, Prefetcher, ReadConfig, ReadEngine, ReadHandle};
use super::write::spool::Spool;
use super::write::stage::Staged;
use super::write::{WriteConfig, Writes};
use crate::xnat::Backend;

pub use reads::ReadReply;

/// What the core is built from.
pub struct CoreConfig {
    pub metadata_ttl: Duration,
    pub project: Option<String>,
    pub read_only: bool,
    pub read: ReadConfig,
    pub write: WriteConfig,
    /// The `--bids-map` file's entries, over each project's own.
    pub bids_map: crate::fs::views::bids_map::BidsMap,
    /// Where listings are kept across mounts and for when the server is down.
    pub listings: Option<Arc<ListingStore>>,
}

/// A file whose size the mount now knows to differ from what it showed (a listing was wrong):
/// the kernel's copy of its attributes is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resize {
    pub ino: Ino,
    /// Larger than shown before.
    pub grew: bool,
}

/// An open file: a handle on the server's bytes, on the file's stage for reading (the file
/// is being written through another handle), or on its stage for writing, with the process
/// that opened it (when `/proc` tells).
#[derive(Clone)]
enum Handle {
    Read {
        handle: Arc<ReadHandle>,
        inode: Arc<Inode>,
    },
    ReadStaged(Arc<Staged>),
    /// A file a view makes, its bytes held whole.
    Made(bytes::Bytes),
    Write {
        staged: Arc<Staged>,
        opener: Option<u32>,
    },
}

pub struct Core {
    backend: Arc<dyn Backend>,
    namespace: Arc<Namespace>,
    reads: Arc<ReadEngine>,
    /// Fetches the next files of a folder read in order.
    prefetch: Prefetcher,
    /// What fetches ahead learnt of sizes, until [`Core::start`] takes it in.
    learned: Mutex<Option<mpsc::UnboundedReceiver<LearnedSize>>>,
    /// Resizes found in the background, for the adapter.
    resizes_tx: mpsc::UnboundedSender<Resize>,
    resizes_rx: Mutex<Option<mpsc::UnboundedReceiver<Resize>>>,
    /// The write path; `None` on a read-only mount.
    writes: Option<Arc<Writes>>,
    open: Mutex<HashMap<u64, (Ino, Handle)>>,
    next_fh: AtomicU64,
    read_only: bool,
    /// The tasks [`Core::start`] spawned, stopped when the core goes.
    background: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Resources `xnatfs warm` is fetching as zips now, one at a time each (`warm`).
    warming: Mutex<HashMap<Ino, Arc<tokio::sync::Mutex<()>>>>,
}

impl Core {
    /// `spool` is where files written are staged; a read-only mount has none.
    pub fn new(
        backend: Arc<dyn Backend>,
        cache: Arc<BlockCache>,
        spool: Option<Spool>,
        config: CoreConfig,
    ) -> Core {
        let namespace = Arc::new(
            Namespace::new(backend.clone(), config.metadata_ttl, config.project)
                .with_bids_map(config.bids_map)
                .with_store(config.listings),
        );
        let reads = Arc::new(ReadEngine::new(backend.clone(), cache, config.read));
        let (learned_tx, learned_rx) = mpsc::unbounded_channel();
        let series = (reads.config().series, reads.config().series_parallel);
        let prefetch = Prefetcher::new(reads.clone(), series.0, series.1, learned_tx);
        let writes = spool.filter(|_| !config.read_only).map(|spool| {
            Writes::new(
                namespace.clone(),
                backend.clone(),
                reads.clone(),
                spool,
                config.write,
            )
        });
        let (resizes_tx, resizes_rx) = mpsc::unbounded_channel();
        Core {
            backend,
            namespace,
            reads,
            prefetch,
            learned: Mutex::new(Some(learned_rx)),
            resizes_tx,
            resizes_rx: Mutex::new(Some(resizes_rx)),
            writes,
            open: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            read_only: config.read_only,
            background: Mutex::new(Vec::new()),
            warming: Mutex::new(HashMap::new()),
        }
    }

    /// Start the background work: put back the uploads an earlier mount left in the spool,
    /// retry failed uploads, and correct sizes that fetches ahead found wrong. Call once,
    /// inside the runtime, before serving. Returns how many files the spool held.
    pub fn start(&self) -> usize {
        let mut background = self.background.lock().expect("background lock");
        if let Some(mut learned) = self.learned.lock().expect("learned lock").take() {
            let namespace = self.namespace.clone();
            let resizes = self.resizes_tx.clone();
            let drain = tokio::spawn(async move {
                while let Some(LearnedSize { uri, size }) = learned.recv().await {
                    if let Some((ino, before)) = namespace.correct_size(&uri, size) {
                        let _ = resizes.send(Resize {
                            ino,
                            grew: size > before,
                        });
                    }
                }
            });
            background.push(drain.abort_handle());
        }
        let Some(writes) = &self.writes else {
            return 0;
        };
        let (found, retries) = writes.start();
        background.push(retries);
        found
    }

    /// The sizes found wrong in the background, for the kernel to be told (only the first
    /// call gets the channel).
    pub fn resizes(&self) -> Option<mpsc::UnboundedReceiver<Resize>> {
        self.resizes_rx.lock().expect("resizes lock").take()
    }

    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The size to show for `inode`: its stage's while it is staged.
    pub fn size_of(&self, inode: &Inode) -> u64 {
        match self.writes.as_ref().and_then(|w| w.staged(inode.ino)) {
            Some(staged) => staged.size(),
            None => inode.size(),
        }
    }

    /// The modification time shown: a file being written, its last write; else what the
    /// server gives (see `Inode::mtime`).
    pub fn mtime_of(&self, inode: &Inode) -> Option<std::time::SystemTime> {
        match self.writes.as_ref().and_then(|w| w.staged(inode.ino)) {
            Some(staged) => staged.modified(),
            None => inode.mtime(),
        }
    }

    /// The spool folder, where files are staged (none on a read-only mount).
    pub fn spool_dir(&self) -> Option<PathBuf> {
        self.writes.as_ref().map(|w| w.spool_dir())
    }

    /// The size and room of the disk files are staged on (none on a read-only mount).
    pub fn spool_space(&self) -> Option<crate::fs::write::Space> {
        self.writes.as_ref().map(|w| w.space())
    }

    fn add_handle(&self, ino: Ino, handle: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.open
            .lock()
            .expect("open files lock")
            .insert(fh, (ino, handle));
        fh
    }

    fn handle(&self, fh: u64) -> FsResult<Handle> {
        let open = self.open.lock().expect("open files lock");
        open.get(&fh)
            .map(|(_, h)| h.clone())
            .ok_or_else(|| FsError::new(libc::EBADF, format!("no open file {fh}")))
    }

    fn writes(&self) -> FsResult<&Arc<Writes>> {
        self.writes
            .as_ref()
            .ok_or_else(|| FsError::new(libc::EROFS, "the mount is read-only"))
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        for task in self.background.lock().expect("background lock").drain(..) {
            task.abort();
        }
    }
}
