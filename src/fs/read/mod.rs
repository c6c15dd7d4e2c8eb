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
//! - A download's real size is the file's size from then on (`ReadHandle::real_size`, kept in
//!   the cache too); bytes past the real end are never returned, nothing is zero-filled. The
//!   engine corrects nothing above it: its owner compares the real size with what it listed.
//! - A broken body is resumed once, then the waiting reads fail. Releasing a file's last
//!   handle aborts its downloads at once.
//! - A folder read file after file (a DICOM series) has its next files fetched before they are
//!   opened, several at once, into the same cache (`series` plans it, `prefetch` does it), so
//!   reading a series does not cost a round trip per file.
//!
//! Files: `engine` (open/release), `handle` (a read), `file` (shared per-file state),
//! `download` (a request in flight), `shared` (what handles and downloads share), `plan` (a
//! file's read-ahead), `series` and `prefetch` (the next files of a folder), `digest`,
//! `version` (what a file version is), `error`. Bytes come from the
//! [`Backend`](crate::xnat::Backend)'s `fetch`.

mod digest;
mod download;
mod engine;
mod error;
mod file;
mod handle;
mod plan;
mod prefetch;
mod series;
mod shared;
mod version;

#[cfg(test)]
mod tests;

pub use digest::DigestCheck;
pub use engine::{ReadConfig, ReadEngine, ReadStats, DEFAULT_READ_DEADLINE};
pub use error::ReadError;
pub use handle::ReadHandle;
pub use plan::{plan_blocks, Plan, PlanConfig, Readahead};
pub use prefetch::{LearnedSize, Prefetcher};
pub use series::{plan_files, SeriesConfig, SeriesPlan, SeriesState};
pub use version::FileVersion;
