//! The XNAT REST client: one logged-in session per mount, retries, listings, transfers.
//!
//! No FUSE types here. `XnatClient` does the HTTP; `XnatApi` is the trait the filesystem
//! core uses so it can run against a fake. URLs are built only in `paths`, listings parsed
//! only in `listing` and `model`, and every failure is an `XnatError` that knows its errno.

pub mod api;
mod attempt;
pub mod client;
pub mod error;
pub mod listing;
pub mod model;
pub mod paths;
pub mod retry;
mod session;
mod setup;
pub mod transfer;

pub use api::{Created, XnatApi};
pub use client::{RangeSupport, XnatClient};
pub use error::{Result, XnatError};
pub use listing::{Listing, Row};
pub use model::{
    Assessor, CatalogFile, Experiment, Project, ProjectScanRow, Resource, Scan, ScanFile, Subject,
};
pub use paths::ApiPath;
pub use retry::RetryPolicy;
pub use setup::ClientConfig;
pub use transfer::{BodyStream, Download, FileHead, Uploaded};

#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod test_server;
