//! The XNAT REST client: one logged-in session per mount, retries, listings, transfers, and
//! [`Backend`], the archive's operations in its own terms, which the filesystem core is
//! built on.
//!
//! No FUSE types here. `XnatClient` does the HTTP and implements [`Backend`]; `fake` (tests
//! only) is the in-memory archive the core's tests run against, kept to the answers the real
//! client gives by one conformance suite run against both. REST paths are built only in
//! `paths`, from the addresses of `address`; listings are parsed only in `listing` and
//! `model`; every failure is an [`XnatError`] that knows its errno, whether a retry may cure
//! it and how loud to log it.

pub mod address;
pub mod backend;
pub mod client;
pub mod dates;
pub mod error;
mod http;
pub mod listing;
pub mod model;
pub mod paths;
pub mod reach;
pub mod retry;
mod session;
mod setup;
pub mod token;
pub mod transfer;

#[cfg(test)]
pub mod fake;

pub use address::{FileAddr, NewObject, Owner, Removal};
pub use backend::{Backend, Created};
pub use client::{Health, RangeSupport, XnatClient};
pub use error::{Result, XnatError};
pub use listing::{Listing, Row};
pub use model::{
    Assessor, CatalogFile, Experiment, Project, ProjectScanRow, Resource, Scan, ScanFile,
    SessionScan, Subject,
};
pub use paths::ApiPath;
pub use retry::RetryPolicy;
pub use setup::{ClientConfig, OfflineStart, DEFAULT_LISTING_DEADLINE, DEFAULT_LISTING_MAX_BYTES};
pub use transfer::{BodyStream, Download, FileHead, HashedPrefix, UploadProgress, Uploaded};

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod test_server;
