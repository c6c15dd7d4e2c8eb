//! The read engine: opens handles on file versions, keeping one shared `FileState` (and so one
//! set of downloads) per version however many handles read it, and stopping that file's
//! downloads at once when its last handle is released.

use super::digest::DigestCheck;
use super::fetcher::{Fetcher, FileVersion};
use super::file::FileState;
use super::handle::ReadHandle;
use super::plan::PlanConfig;
use super::series::SeriesConfig;
use crate::fs::cache::{BlockCache, FileKey};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct ReadConfig {
    /// First read-ahead window of a sequential reader (doubles per fetch it triggers).
    pub initial_window: u64,
    /// Largest read-ahead window; also capped at half the memory tier.
    pub max_window: u64,
    /// Largest single range request.
    pub part_size: u64,
    /// Range requests in flight per file before read-ahead waits (the read's own part does not).
    pub max_parts_in_flight: usize,
    pub digest_check: DigestCheck,
    /// Files of a folder read in order that are fetched ahead of the reader (`series`).
    pub series: SeriesConfig,
    /// Files fetched ahead at once, for the whole mount; 0 turns cross-file read-ahead off.
    /// Latency, not bandwidth, is what it hides: 32 requests of 20 ms each in flight keep a
    /// series of 512 KiB files flowing at 800 MiB/s, with room to spare when the reader gets
    /// little CPU (16 measured up to 60% slower on B3 on a loaded 2-core machine, 32 did not).
    pub series_parallel: usize,
}

impl Default for ReadConfig {
    fn default() -> Self {
        let p = PlanConfig::default();
        ReadConfig {
            initial_window: p.initial_window,
            max_window: p.max_window,
            part_size: p.part_size,
            max_parts_in_flight: p.max_in_flight,
            digest_check: DigestCheck::default(),
            series: SeriesConfig::default(),
            series_parallel: 32,
        }
    }
}

/// Called with (URI, listed size, real size) when a download shows a different size.
pub type SizeObserver = Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub resumes: AtomicU64,
    pub bytes: AtomicU64,
}

/// Download counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// GET requests sent (resumes included).
    pub requests: u64,
    /// Broken bodies resumed.
    pub resumes: u64,
    /// Body bytes received.
    pub bytes_received: u64,
}

/// What the engine's tasks share.
pub(crate) struct Ctx {
    pub fetcher: Arc<dyn Fetcher>,
    pub cache: Arc<BlockCache>,
    pub config: ReadConfig,
    pub plan: PlanConfig,
    pub on_size: Option<SizeObserver>,
    pub stats: Counters,
}

impl Ctx {
    /// Records a file's real size: in its state, in the cache (so a later open, even after a
    /// remount, knows it), and to the observer when it differs from the listing.
    pub fn learn_size(&self, file: &FileState, size: u64) {
        if !file.set_real_size(size) {
            return;
        }
        self.cache.put_size(file.key, size);
        if size != file.listed_size {
            tracing::info!(uri = %file.uri, listed = file.listed_size, real = size,
                "size corrected by download");
            if let Some(observer) = &self.on_size {
                observer(&file.uri, file.listed_size, size);
            }
        }
    }
}

/// Open file versions and how many handles each has.
pub(crate) type Files = Mutex<HashMap<FileKey, (Arc<FileState>, usize)>>;

pub struct ReadEngine {
    ctx: Arc<Ctx>,
    files: Arc<Files>,
}

impl ReadEngine {
    pub fn new(fetcher: Arc<dyn Fetcher>, cache: Arc<BlockCache>, config: ReadConfig) -> Self {
        let bs = cache.block_size();
        let max_window = config.max_window.min(cache.memory_capacity() / 2).max(bs);
        let plan = PlanConfig {
            block_size: bs,
            part_size: config.part_size.max(bs),
            initial_window: config.initial_window.min(max_window),
            max_window,
            max_in_flight: config.max_parts_in_flight.max(1),
            ..PlanConfig::default()
        };
        ReadEngine {
            ctx: Arc::new(Ctx {
                fetcher,
                cache,
                config,
                plan,
                on_size: None,
                stats: Counters::default(),
            }),
            files: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Sets the callback for size corrections. Call before the first `open`.
    pub fn with_size_observer(mut self, observer: SizeObserver) -> Self {
        Arc::get_mut(&mut self.ctx)
            .expect("set the size observer before opening files")
            .on_size = Some(observer);
        self
    }

    /// Opens a handle on a file version; no request is made until the first read.
    pub fn open(&self, file: &FileVersion) -> ReadHandle {
        let state = {
            let mut files = self.files.lock().unwrap();
            let entry = files.entry(file.key()).or_insert_with(|| {
                let state = FileState::new(file, self.ctx.cache.block_size());
                (Arc::new(state), 0)
            });
            entry.1 += 1;
            entry.0.clone()
        };
        ReadHandle::new(self.ctx.clone(), self.files.clone(), state)
    }

    /// Releases a handle (the same as dropping it).
    pub fn release(&self, handle: ReadHandle) {
        drop(handle);
    }

    pub fn cache(&self) -> &Arc<BlockCache> {
        &self.ctx.cache
    }

    pub fn config(&self) -> &ReadConfig {
        &self.ctx.config
    }

    /// File versions with at least one open handle.
    pub fn open_files(&self) -> usize {
        self.files.lock().unwrap().len()
    }

    pub fn stats(&self) -> ReadStats {
        let s = &self.ctx.stats;
        ReadStats {
            requests: s.requests.load(Ordering::Relaxed),
            resumes: s.resumes.load(Ordering::Relaxed),
            bytes_received: s.bytes.load(Ordering::Relaxed),
        }
    }
}

/// Drops one handle's count; the last one closes the file (aborting its downloads).
pub(crate) fn release(files: &Files, key: FileKey) {
    let closed = {
        let mut files = files.lock().unwrap();
        match files.get_mut(&key) {
            Some(entry) if entry.1 > 1 => {
                entry.1 -= 1;
                None
            }
            Some(_) => files.remove(&key).map(|(state, _)| state),
            None => None,
        }
    };
    if let Some(state) = closed {
        state.close();
    }
}
