//! An in-memory catalog for unit tests of the core: a small archive and a count of calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::catalog::*;
use super::error::{FsError, FsResult};
use super::node::Owner;

#[derive(Default)]
pub struct FakeCatalog {
    pub projects: Vec<ProjectRow>,
    pub subjects: HashMap<String, Vec<SubjectRow>>,
    pub experiments: HashMap<String, Vec<ExperimentRow>>,
    pub scans: HashMap<String, Vec<ScanRow>>,
    pub resources: HashMap<Owner, Vec<ResourceRow>>,
    pub files: HashMap<(Owner, String), Vec<FileRow>>,
    pub assessors: HashMap<String, Vec<AssessorRow>>,
    pub calls: AtomicUsize,
    pub log: Mutex<Vec<String>>,
}

impl FakeCatalog {
    fn count(&self, what: String) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.log.lock().unwrap().push(what);
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn ready<T: Send + 'static>(value: FsResult<T>) -> BoxFuture<'static, FsResult<T>> {
        async move { value }.boxed()
    }
}

impl Catalog for FakeCatalog {
    fn projects(&self) -> BoxFuture<'_, FsResult<Vec<ProjectRow>>> {
        self.count("projects".into());
        Self::ready(Ok(self.projects.clone()))
    }

    fn subjects<'a>(&'a self, project: &'a str) -> BoxFuture<'a, FsResult<Vec<SubjectRow>>> {
        self.count(format!("subjects {project}"));
        Self::ready(
            self.subjects
                .get(project)
                .cloned()
                .ok_or_else(FsError::not_found),
        )
    }

    fn experiments<'a>(&'a self, project: &'a str) -> BoxFuture<'a, FsResult<Vec<ExperimentRow>>> {
        self.count(format!("experiments {project}"));
        Self::ready(Ok(self
            .experiments
            .get(project)
            .cloned()
            .unwrap_or_default()))
    }

    fn scans<'a>(&'a self, project: &'a str) -> BoxFuture<'a, FsResult<Vec<ScanRow>>> {
        self.count(format!("scans {project}"));
        Self::ready(Ok(self.scans.get(project).cloned().unwrap_or_default()))
    }

    fn resources<'a>(&'a self, owner: &'a Owner) -> BoxFuture<'a, FsResult<Vec<ResourceRow>>> {
        self.count(format!("resources {}", owner.path()));
        Self::ready(Ok(self.resources.get(owner).cloned().unwrap_or_default()))
    }

    fn files<'a>(
        &'a self,
        owner: &'a Owner,
        resource: &'a str,
    ) -> BoxFuture<'a, FsResult<Vec<FileRow>>> {
        self.count(format!("files {}", owner.resource_path(resource)));
        Self::ready(Ok(self
            .files
            .get(&(owner.clone(), resource.to_string()))
            .cloned()
            .unwrap_or_default()))
    }

    fn scan_files<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, FsResult<Vec<ScanFileRow>>> {
        self.count(format!("scan_files {experiment}"));
        let rows = self
            .files
            .iter()
            .filter_map(|((owner, resource), files)| match owner {
                Owner::Scan {
                    experiment: e,
                    scan,
                } if e == experiment => Some(
                    files
                        .iter()
                        .map(|f| ScanFileRow {
                            scan_id: scan.clone(),
                            resource: resource.clone(),
                            file: f.clone(),
                        })
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        Self::ready(Ok(rows))
    }

    fn assessors<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, FsResult<Vec<AssessorRow>>> {
        self.count(format!("assessors {experiment}"));
        Self::ready(Ok(self
            .assessors
            .get(experiment)
            .cloned()
            .unwrap_or_default()))
    }
}
