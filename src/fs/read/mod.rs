//! The read path: serves reads of remote files from the block cache and, for what is not
//! cached, from ONE shared download per file version, whatever the number of handles.
//!
//! - A read is answered as soon as its own bytes arrived (readers watch the file's progress,
//!   chunk by chunk); a read of a cached block never waits on anything but the memory tier's
//!   lock, or a disk read.
//! - Whether the server honours Range is learnt from the first response (`partial`), never
//!   assumed. Real XNAT does not: the first request's whole body is streamed once into blocks,
//!   filling the caches, and pauses a read-ahead window (up to 32 MiB) past what readers want,
//!   so a slow reader keeps memory bounded. A server that does honours ranges gets parallel
//!   block-aligned range requests (up to 4 in flight, 8 MiB each) driven by a growing
//!   read-ahead window (`plan`, a pure function).
//! - A whole-file stream of a file with a catalog digest is MD5-checked beside the download
//!   (`digest`); a mismatch fails reads with EIO and drops the version's cached blocks.
//! - A download's real size corrects the listing's (`ReadHandle::real_size`, and a callback);
//!   bytes past the real end are never returned, nothing is zero-filled.
//! - A broken body is resumed once, then the waiting reads fail. Releasing a file's last
//!   handle aborts its downloads at once.
//! - A folder read file after file (a DICOM series) has its next files fetched before they are
//!   opened, several at once, into the same cache (`series` plans it, `prefetch` does it), so
//!   reading a series does not cost a round trip per file.
//!
//! Files: `fetcher` (the trait the REST client is adapted to), `engine` (open/release),
//! `handle` (a read), `file` (shared per-file state), `task` (a request in flight), `plan`,
//! `series` and `prefetch` (the next files of a folder), `digest`, `error`.

mod digest;
mod engine;
mod error;
mod fetcher;
mod file;
mod handle;
mod plan;
mod prefetch;
mod series;
mod task;

#[cfg(test)]
mod tests;

pub use digest::DigestCheck;
pub use engine::{ReadConfig, ReadEngine, ReadStats, SizeObserver};
pub use error::ReadError;
pub use fetcher::{FetchBody, FetchError, FetchErrorKind, Fetcher, FileVersion};
pub use handle::ReadHandle;
pub use plan::{plan, Plan, PlanConfig, Readahead};
pub use prefetch::Prefetcher;
pub use series::{SeriesConfig, SeriesPlan, SeriesState};
