//! The read engine: opens handles on file versions, keeping one shared `FileState` (and so one
//! set of downloads) per version however many handles read it, and stopping that file's
//! downloads at once when its last handle is released.

use super::digest::DigestCheck;
use super::file::FileState;
use super::handle::ReadHandle;
use super::plan::PlanConfig;
use super::series::SeriesConfig;
use super::shared::{Counters, Ctx, Files};
use super::version::FileVersion;
use crate::fs::cache::BlockCache;
use crate::fs::shared::SharedCache;
use crate::xnat::Backend;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// The longest a read waits for its bytes, unless configured.
pub const DEFAULT_READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

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
    /// Downloads in flight on the whole mount beyond which read-ahead waits (a read's own
    /// blocks are always fetched): a bound on the blocks being filled outside the memory tier.
    pub max_downloads_ahead: usize,
    /// Files with a digest up to this size are fetched whole and held until it matched: no
    /// byte of them reaches a reader or the cache unchecked (0: stream every file).
    pub verify_whole_max: u64,
    /// Breaks in a row that brought no new byte before a download fails its readers with EIO
    /// (a resume asks from the first missing byte by range, or from 0 again where the server
    /// ignores ranges); also the base of its total budget of resumes, which grows by one per
    /// 64 KiB of the file. Counted per download, however many reads wait on it.
    pub max_resumes: u32,
    /// The wait before a resume after a break that brought nothing, doubled for each such
    /// break in a row (zero: none).
    pub resume_backoff: std::time::Duration,
    /// The longest a read waits for its bytes; then it fails with ETIMEDOUT (the download
    /// goes on for later reads).
    pub read_deadline: std::time::Duration,
    /// Files of a folder read in order that are fetched ahead of the reader (`series`).
    pub series: SeriesConfig,
    /// Files fetched ahead at once, for the whole mount; 0 turns cross-file read-ahead off.
    /// Latency, not bandwidth, is what it hides: 32 requests of 20 ms each in flight keep a
    /// series of 512 KiB files flowing at 800 MiB/s, with room to spare when the reader gets
    /// little CPU (16 measured up to 60% slower on B3 on a loaded 2-core machine, 32 did not).
    /// A mount sets it to three quarters of its `--max-connections` (12 by default), so files
    /// fetched ahead never hold every connection the reader's own requests need; on a quiet
    /// machine 12 read a 200-file series no slower than 24 (0.68-0.75 s against 0.75-0.97 s).
    pub series_parallel: usize,
    /// The shared cache tier (`--shared-cache`): whole files every mount of it reads, fetched
    /// once across them, between this mount's block cache and the server.
    pub shared: Option<Arc<SharedCache>>,
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
            max_downloads_ahead: 8,
            verify_whole_max: super::digest::VERIFY_WHOLE_MAX,
            max_resumes: 3,
            resume_backoff: std::time::Duration::from_secs(1),
            read_deadline: DEFAULT_READ_DEADLINE,
            series: SeriesConfig::default(),
            series_parallel: 32,
            shared: None,
        }
    }
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
    /// Downloads running now.
    pub in_flight: u64,
}

pub struct ReadEngine {
    ctx: Arc<Ctx>,
    files: Arc<Files>,
}

impl ReadEngine {
    pub fn new(backend: Arc<dyn Backend>, cache: Arc<BlockCache>, config: ReadConfig) -> Self {
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
                backend,
                cache,
                config,
                plan,
                stats: Counters::default(),
                downloads: Default::default(),
            }),
            files: Arc::new(Mutex::new(HashMap::new())),
        }
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

    /// The block cache's figures.
    pub fn cache_stats(&self) -> crate::fs::cache::CacheStats {
        self.ctx.cache.stats()
    }

    pub fn stats(&self) -> ReadStats {
        let s = &self.ctx.stats;
        ReadStats {
            requests: s.requests.load(Ordering::Relaxed),
            resumes: s.resumes.load(Ordering::Relaxed),
            bytes_received: s.bytes.load(Ordering::Relaxed),
            in_flight: self.ctx.downloads.load(Ordering::Relaxed) as u64,
        }
    }
}
