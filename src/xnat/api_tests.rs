//! A fake behind `XnatApi` needs no boxing or macros: plain `async fn`s, and generic code
//! that spawns the futures compiles against it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::*;
use crate::xnat::listing::Row;

/// Answers every listing from fixed rows and counts calls; transfers are refused.
#[derive(Default)]
struct Fake {
    calls: AtomicU32,
}

impl Fake {
    fn count<T>(&self, v: T) -> Result<T> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(v)
    }
}

fn refused(path: &ApiPath) -> XnatError {
    XnatError::from_status("GET", path.as_str(), 403, "fake".into())
}

impl XnatApi for Fake {
    async fn projects(&self) -> Result<Vec<Project>> {
        self.count(vec![Project::from(&Row::from_pairs([("ID", "P1")]))])
    }
    async fn project_subjects(&self, _: &str) -> Result<Vec<Subject>> {
        self.count(vec![])
    }
    async fn project_experiments(&self, _: &str) -> Result<Vec<Experiment>> {
        self.count(vec![])
    }
    async fn experiment_scans(&self, _: &str) -> Result<Vec<Scan>> {
        self.count(vec![])
    }
    async fn project_scan_rows(&self, _: &str) -> Result<Vec<ProjectScanRow>> {
        self.count(vec![])
    }
    async fn resources(&self, _: &ApiPath) -> Result<Vec<Resource>> {
        self.count(vec![])
    }
    async fn files(&self, _: &ApiPath) -> Result<Vec<CatalogFile>> {
        self.count(vec![])
    }
    async fn session_scan_files(&self, _: &str) -> Result<Vec<ScanFile>> {
        self.count(vec![])
    }
    async fn assessors(&self, _: &str) -> Result<Vec<Assessor>> {
        self.count(vec![])
    }
    async fn assessor_out_resources(&self, _: &str, _: &str) -> Result<Vec<Resource>> {
        self.count(vec![])
    }
    async fn head(&self, path: &ApiPath) -> Result<FileHead> {
        Err(refused(path))
    }
    async fn download(&self, path: &ApiPath, _: Option<Range<u64>>) -> Result<Download> {
        Err(refused(path))
    }
    async fn upload(
        &self,
        path: &ApiPath,
        _: &Path,
        _: bool,
        _: &[(&str, &str)],
    ) -> Result<crate::xnat::Uploaded> {
        Err(refused(path))
    }
    async fn put(&self, path: &ApiPath, _: &[(&str, &str)]) -> Result<Created> {
        Err(refused(path))
    }
    async fn delete(&self, path: &ApiPath, _: &[(&str, &str)]) -> Result<()> {
        Err(refused(path))
    }
    fn range_support(&self) -> RangeSupport {
        RangeSupport::No
    }
}

/// Generic code as the filesystem core would write it: spawn a listing on the runtime.
async fn project_ids<A: XnatApi>(api: Arc<A>) -> Result<Vec<String>> {
    tokio::spawn(async move { api.projects().await })
        .await
        .expect("task")
        .map(|ps| ps.into_iter().map(|p| p.id).collect())
}

#[tokio::test]
async fn a_fake_serves_generic_code() {
    let fake = Arc::new(Fake::default());
    assert_eq!(project_ids(fake.clone()).await.unwrap(), vec!["P1"]);
    assert_eq!(fake.calls.load(Ordering::Relaxed), 1);
    let err = fake.head(&paths::projects()).await.unwrap_err();
    assert_eq!(err.errno(), libc::EACCES);
    assert_eq!(fake.range_support(), RangeSupport::No);
}
