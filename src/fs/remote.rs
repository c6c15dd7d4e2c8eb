//! The catalog over the real REST client: XNAT's listings turned into the namespace's rows.

use std::ops::Range;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};

use super::catalog::*;
use super::error::{FsError, FsResult};
use super::node::Owner;
use super::read::{FetchBody, FetchError, FetchErrorKind, Fetcher};
use crate::xnat::paths::{self, ApiPath};
use crate::xnat::{CatalogFile, XnatClient, XnatError};

impl From<XnatError> for FsError {
    fn from(err: XnatError) -> Self {
        // Every REST failure is logged once here, where it turns into an errno; the message
        // carries method, URL and status, never credentials.
        if err.is_not_found() {
            tracing::debug!("{err}");
        } else {
            tracing::warn!("{err}");
        }
        FsError::new(err.errno(), err.to_string())
    }
}

/// The REST path of a resource owner.
pub fn owner_path(owner: &Owner) -> ApiPath {
    match owner {
        Owner::Project { project } => paths::project(project),
        Owner::Subject { project, subject } => paths::subject(project, subject),
        Owner::Experiment { experiment } => paths::experiment(experiment),
        Owner::Scan { experiment, scan } => paths::experiment(experiment).scan(scan),
        Owner::Assessor {
            experiment,
            assessor,
        } => paths::experiment(experiment)
            .assessor(assessor)
            .child("out"),
    }
}

pub(crate) fn file_row(file: CatalogFile) -> FileRow {
    FileRow {
        path: file.path,
        size: file.size,
        digest: file.digest,
        uri: file.uri,
        format: file.format,
        content: file.content,
        tags: file.tags,
    }
}

impl Catalog for XnatClient {
    fn projects(&self) -> BoxFuture<'_, FsResult<Vec<ProjectRow>>> {
        async move {
            Ok(XnatClient::projects(self)
                .await?
                .into_iter()
                .map(|p| ProjectRow {
                    id: p.id,
                    name: p.name,
                })
                .collect())
        }
        .boxed()
    }

    fn subjects<'a>(&'a self, project: &'a str) -> BoxFuture<'a, FsResult<Vec<SubjectRow>>> {
        async move {
            Ok(self
                .project_subjects(project)
                .await?
                .into_iter()
                .map(|s| SubjectRow {
                    id: s.id,
                    label: s.label,
                })
                .collect())
        }
        .boxed()
    }

    fn experiments<'a>(&'a self, project: &'a str) -> BoxFuture<'a, FsResult<Vec<ExperimentRow>>> {
        async move {
            Ok(self
                .project_experiments(project)
                .await?
                .into_iter()
                .map(|e| ExperimentRow {
                    id: e.id,
                    label: e.label,
                    subject_id: e.subject_id,
                    xsi_type: e.xsi_type,
                    date: e.date,
                })
                .collect())
        }
        .boxed()
    }

    fn scans<'a>(&'a self, project: &'a str) -> BoxFuture<'a, FsResult<Vec<ScanRow>>> {
        async move {
            // One row per (session, scan, scan resource): fold the resources into their scan.
            let mut scans: Vec<ScanRow> = Vec::new();
            let mut index: std::collections::HashMap<(String, String), usize> = Default::default();
            for row in self.project_scan_rows(project).await? {
                if row.scan_id.is_empty() {
                    continue;
                }
                let at = *index
                    .entry((row.session_id.clone(), row.scan_id.clone()))
                    .or_insert_with(|| {
                        scans.push(ScanRow {
                            experiment_id: row.session_id.clone(),
                            id: row.scan_id.clone(),
                            scan_type: row.scan_type.clone(),
                            series_description: row.series_description.clone(),
                            quality: row.quality.clone(),
                            xsi_type: String::new(),
                            resources: Vec::new(),
                        });
                        scans.len() - 1
                    });
                let scan = &mut scans[at];
                if !row.resource_label.is_empty() && !scan.resources.contains(&row.resource_label) {
                    scan.resources.push(row.resource_label);
                }
            }
            Ok(scans)
        }
        .boxed()
    }

    fn resources<'a>(&'a self, owner: &'a Owner) -> BoxFuture<'a, FsResult<Vec<ResourceRow>>> {
        async move {
            Ok(XnatClient::resources(self, &owner_path(owner))
                .await?
                .into_iter()
                .map(|r| ResourceRow {
                    id: r.id,
                    label: r.label,
                    format: r.format,
                    content: r.content,
                    tags: r.tags,
                })
                .collect())
        }
        .boxed()
    }

    fn files<'a>(
        &'a self,
        owner: &'a Owner,
        resource: &'a str,
    ) -> BoxFuture<'a, FsResult<Vec<FileRow>>> {
        async move {
            let path = owner_path(owner).resource(resource);
            Ok(XnatClient::files(self, &path)
                .await?
                .into_iter()
                .map(file_row)
                .collect())
        }
        .boxed()
    }

    fn scan_files<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, FsResult<Vec<ScanFileRow>>> {
        async move {
            Ok(self
                .session_scan_files(experiment)
                .await?
                .into_iter()
                .map(|f| {
                    // `collection` is the resource label; the URI only has its numeric id.
                    let resource = if f.file.collection.is_empty() {
                        f.resource_id.clone()
                    } else {
                        f.file.collection.clone()
                    };
                    ScanFileRow {
                        scan_id: f.scan_id,
                        resource,
                        file: file_row(f.file),
                    }
                })
                .collect())
        }
        .boxed()
    }

    fn assessors<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, FsResult<Vec<AssessorRow>>> {
        async move {
            Ok(XnatClient::assessors(self, experiment)
                .await?
                .into_iter()
                .map(|a| AssessorRow {
                    id: a.id,
                    label: a.label,
                    xsi_type: a.xsi_type,
                })
                .collect())
        }
        .boxed()
    }
}

fn fetch_error(err: XnatError) -> FetchError {
    let kind = match err.errno() {
        libc::ENOENT => FetchErrorKind::NotFound,
        libc::EACCES => FetchErrorKind::PermissionDenied,
        libc::ETIMEDOUT => FetchErrorKind::TimedOut,
        _ => FetchErrorKind::Io,
    };
    FetchError::new(kind, err.to_string())
}

/// File bytes come through the client's streaming GET: `uri` is the raw server URI.
impl Fetcher for XnatClient {
    fn fetch(
        &self,
        uri: &str,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'static, Result<FetchBody, FetchError>> {
        let client = self.clone();
        let path = ApiPath::from_uri(uri);
        async move {
            let download = client.download(&path, range).await.map_err(fetch_error)?;
            Ok(FetchBody {
                partial: download.partial,
                offset: download.offset,
                total_size: download.total_size,
                body: download.body.map_err(fetch_error).boxed(),
            })
        }
        .boxed()
    }
}
