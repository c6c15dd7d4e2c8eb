//! What the namespace needs to know of the archive, as a small trait over the REST client.
//!
//! The rows are the filesystem's view of XNAT's listings: just the fields that make names,
//! attributes and extended attributes. The real implementation adapts the REST client; tests use
//! an in-memory fake that counts calls.

use futures::future::BoxFuture;

use super::error::FsResult;
use super::node::Owner;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProjectRow {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubjectRow {
    pub id: String,
    pub label: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExperimentRow {
    pub id: String,
    pub label: String,
    pub subject_id: String,
    pub xsi_type: String,
    pub date: String,
}

/// One scan of a session, with the labels of its resources (from the project-wide bulk listing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanRow {
    pub experiment_id: String,
    pub id: String,
    pub scan_type: String,
    pub series_description: String,
    pub quality: String,
    pub xsi_type: String,
    pub resources: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceRow {
    pub id: String,
    pub label: String,
    pub format: String,
    pub content: String,
    pub tags: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileRow {
    /// Path inside the resource, `/`-separated, as the server holds it.
    pub path: String,
    pub size: Option<u64>,
    /// A 32-hex MD5 digest, when the server gave one.
    pub digest: Option<String>,
    /// The download URI the server gave (`/data/…`).
    pub uri: String,
    pub format: String,
    pub content: String,
    pub tags: String,
}

/// A file of a session's scan resources, from `…/scans/ALL/files`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanFileRow {
    pub scan_id: String,
    pub resource: String,
    pub file: FileRow,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AssessorRow {
    pub id: String,
    pub label: String,
    pub xsi_type: String,
}

/// The listings the namespace is built from. Each call is one REST request.
pub trait Catalog: Send + Sync + 'static {
    fn projects(&self) -> BoxFuture<'_, FsResult<Vec<ProjectRow>>>;
    fn subjects<'a>(&'a self, project: &'a str) -> BoxFuture<'a, FsResult<Vec<SubjectRow>>>;
    /// Every experiment of the project in one listing.
    fn experiments<'a>(&'a self, project: &'a str) -> BoxFuture<'a, FsResult<Vec<ExperimentRow>>>;
    /// Every scan of every session of the project, with its resource labels, in one listing.
    fn scans<'a>(&'a self, project: &'a str) -> BoxFuture<'a, FsResult<Vec<ScanRow>>>;
    fn resources<'a>(&'a self, owner: &'a Owner) -> BoxFuture<'a, FsResult<Vec<ResourceRow>>>;
    fn files<'a>(
        &'a self,
        owner: &'a Owner,
        resource: &'a str,
    ) -> BoxFuture<'a, FsResult<Vec<FileRow>>>;
    /// Every file of every scan resource of a session in one listing.
    fn scan_files<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, FsResult<Vec<ScanFileRow>>>;
    fn assessors<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, FsResult<Vec<AssessorRow>>>;
}
