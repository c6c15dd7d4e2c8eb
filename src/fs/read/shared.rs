//! What a file's handles and downloads share with the engine: the backend, the cache, the
//! settings, the counters, and the table of open file versions.

use super::engine::ReadConfig;
use super::file::FileState;
use super::plan::PlanConfig;
use crate::fs::cache::{BlockCache, FileKey};
use crate::xnat::Backend;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub resumes: AtomicU64,
    pub bytes: AtomicU64,
}

/// What the engine's handles and downloads share.
pub(crate) struct Ctx {
    pub backend: Arc<dyn Backend>,
    pub cache: Arc<BlockCache>,
    pub config: ReadConfig,
    pub plan: PlanConfig,
    pub stats: Counters,
    /// Downloads in flight on the whole mount (read-ahead waits beyond `max_downloads_ahead`).
    pub downloads: AtomicUsize,
}

/// One download in flight, counted in [`Ctx::downloads`] while it lives (also when its task
/// is aborted).
pub(crate) struct InFlight(Arc<Ctx>);

impl InFlight {
    pub fn new(ctx: &Arc<Ctx>) -> InFlight {
        ctx.downloads.fetch_add(1, Ordering::AcqRel);
        InFlight(ctx.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.downloads.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Ctx {
    /// GET the file's bytes `range` (all for `None`): through the shared cache when the mount
    /// has one, else from the server.
    pub async fn fetch(
        &self,
        file: &FileState,
        range: Option<std::ops::Range<u64>>,
    ) -> crate::xnat::Result<crate::xnat::Download> {
        match &self.config.shared {
            Some(shared) => {
                let wanted = crate::fs::shared::SharedFile {
                    key: file.key,
                    uri: file.uri.clone(),
                    md5: file.md5,
                };
                shared.fetch(&self.backend, wanted, range).await
            }
            None => self.backend.fetch(&file.uri, range).await,
        }
    }

    /// Whether read-ahead must wait: as many downloads are in flight on the mount as it
    /// allows (a read's own blocks never wait). Each holds up to a block in memory outside the
    /// memory tier, so this bounds the daemon's memory however many files are read at once.
    pub fn downloads_full(&self) -> bool {
        self.downloads.load(Ordering::Acquire) >= self.config.max_downloads_ahead
    }

    /// Records a file's real size: in its state, and in the cache (so a later open, even after
    /// a remount, knows it).
    pub fn learn_size(&self, file: &FileState, size: u64) {
        if !file.set_real_size(size) {
            return;
        }
        self.cache.put_size(file.key, size, file.modified());
        if size != file.listed_size {
            tracing::debug!(uri = %file.uri, listed = file.listed_size, real = size,
                "a download shows another size than the listing");
        }
    }
}

/// Open file versions and how many handles each has.
pub(crate) type Files = Mutex<HashMap<FileKey, (Arc<FileState>, usize)>>;

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
