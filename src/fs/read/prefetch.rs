//! Fetching the next files of a folder before they are opened, as `series` plans it.
//!
//! - Each file planned is read whole through a handle of its own on the read engine, so its
//!   bytes land in the block cache the normal reads use, and an open of the file while it is
//!   on its way joins its download (the engine keeps one per file version): the same bytes are
//!   never fetched twice. A later open finds the real size and the blocks in the cache.
//! - At most `parallel` files are fetched at once for the whole mount (a semaphore; the
//!   reader's own requests never wait on it), and what is fetched ahead is bounded in files and
//!   bytes (`SeriesConfig`, its bytes capped at half the memory tier so that read-ahead never
//!   evicts itself before it is read).
//! - When a folder's run breaks, its fetches not yet done are aborted; so are all of them when
//!   the prefetcher is dropped (the unmount). The state of the few folders read last is kept.
//! - The real size each fetch found is sent on the channel the prefetcher was made with, so
//!   its owner can correct what the listing said before anyone opens the file.

use super::engine::ReadEngine;
use super::series::{self, SeriesConfig, SeriesState};
use super::version::FileVersion;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::AbortHandle;

/// The real size a fetch ahead found for the file at `uri`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnedSize {
    pub uri: String,
    pub size: u64,
}

/// Folders whose read-ahead state is kept; the one used least recently goes first.
const MAX_FOLDERS: usize = 8;

pub struct Prefetcher {
    engine: Arc<ReadEngine>,
    cfg: SeriesConfig,
    permits: Arc<Semaphore>,
    folders: Mutex<HashMap<u64, Folder>>,
    tick: AtomicU64,
    started: Arc<AtomicU64>,
    learned: mpsc::UnboundedSender<LearnedSize>,
}

struct Folder {
    state: SeriesState,
    fetches: Vec<AbortHandle>,
    used: u64,
}

impl Folder {
    fn abort(&mut self) {
        for f in self.fetches.drain(..) {
            f.abort();
        }
    }
}

impl Prefetcher {
    /// `parallel` files fetched at once at most; 0 turns cross-file read-ahead off. The sizes
    /// fetches find go to `learned`.
    pub fn new(
        engine: Arc<ReadEngine>,
        mut cfg: SeriesConfig,
        parallel: usize,
        learned: mpsc::UnboundedSender<LearnedSize>,
    ) -> Self {
        cfg.max_bytes = cfg.max_bytes.min(engine.cache().memory_capacity() / 2);
        if parallel == 0 {
            cfg.max_files = 0;
        }
        Prefetcher {
            engine,
            cfg,
            permits: Arc::new(Semaphore::new(parallel.max(1))),
            folders: Mutex::new(HashMap::new()),
            tick: AtomicU64::new(0),
            started: Arc::default(),
            learned,
        }
    }

    /// Files whose fetch ahead began (for tests and stats).
    pub fn files_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// The file at index `opened` of folder `folder`'s `files` (in name order) was opened;
    /// `version(i)` describes the file at index `i` (`None`: not a server file, skipped).
    pub fn opened(
        &self,
        folder: u64,
        opened: usize,
        files: usize,
        version: impl Fn(usize) -> Option<FileVersion>,
    ) {
        if self.cfg.max_files == 0 {
            return;
        }
        let mut folders = self.folders.lock().unwrap();
        let used = self.tick.fetch_add(1, Ordering::Relaxed);
        if !folders.contains_key(&folder) && folders.len() >= MAX_FOLDERS {
            let oldest = folders.iter().min_by_key(|(_, f)| f.used).map(|(k, _)| *k);
            if let Some(mut f) = oldest.and_then(|k| folders.remove(&k)) {
                f.abort();
            }
        }
        let entry = folders.entry(folder).or_insert_with(|| Folder {
            state: SeriesState::default(),
            fetches: Vec::new(),
            used,
        });
        entry.used = used;
        entry.fetches.retain(|f| !f.is_finished());
        // The last file opened here is whole in the cache: read to its end, not only its
        // header (or fetched ahead, in a run already going).
        let last_read_whole = entry
            .state
            .last
            .and_then(&version)
            .is_some_and(|v| v.size > 0 && self.engine.cache().holds_whole(v.key(), v.size));
        let (state, plan) = series::plan_files(
            &self.cfg,
            entry.state,
            opened,
            files,
            last_read_whole,
            |i| version(i).map_or(0, |v| v.size),
        );
        entry.state = state;
        if plan.broke {
            entry.abort();
        }
        for i in plan.fetch {
            let Some(file) = version(i) else { continue };
            let task = tokio::spawn(fetch_whole(
                self.engine.clone(),
                self.permits.clone(),
                self.started.clone(),
                self.learned.clone(),
                file,
            ));
            entry.fetches.push(task.abort_handle());
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        for f in self.folders.lock().unwrap().values_mut() {
            f.abort();
        }
    }
}

/// Reads a file whole, once a permit is free, through a handle of its own.
async fn fetch_whole(
    engine: Arc<ReadEngine>,
    permits: Arc<Semaphore>,
    started: Arc<AtomicU64>,
    learned: mpsc::UnboundedSender<LearnedSize>,
    file: FileVersion,
) {
    let Ok(_permit) = permits.acquire_owned().await else {
        return;
    };
    started.fetch_add(1, Ordering::Relaxed);
    let handle = engine.open(&file);
    let step = engine.cache().block_size();
    let mut offset = 0u64;
    loop {
        match handle.read(offset, step as u32).await {
            Ok(bytes) => {
                offset += bytes.len() as u64;
                if (bytes.len() as u64) < step {
                    break; // the end of the file
                }
            }
            Err(e) => {
                tracing::debug!(uri = %file.uri, error = %e, "fetch ahead failed");
                break;
            }
        }
    }
    if let Some(size) = handle.real_size().filter(|size| *size != file.size) {
        // Nobody may listen (the mount is ending): then nothing needs correcting.
        let _ = learned.send(LearnedSize {
            uri: file.uri.clone(),
            size,
        });
    }
}
