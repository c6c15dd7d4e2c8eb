//! [`Backend`]: the XNAT operations the filesystem core needs, in the archive's own terms
//! (projects, owners, resources, files), and the real client's implementation of them.
//!
//! Every call is one REST request (or one request and its retries). Listings are asked in
//! their bulk forms so a project walk costs few requests: a project's experiments with their
//! subjects' IDs, every scan of every session with its resource labels, every file of a
//! session's scans. The client's own error type comes back unchanged, classified once
//! (`XnatError::errno`, `retryable`, `level`). Tests of the core use the fake in `fake.rs`,
//! which keeps to the answers this implementation can give.

use std::ops::Range;
use std::path::Path;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::address::{FileAddr, NewObject, Owner, Removal};
use super::client::{Health, XnatClient};
use super::error::Result;
use super::model::{
    fold_scans, Assessor, CatalogFile, Experiment, Project, ProjectScanRow, Resource, ScanFile,
    SessionScan, Subject, PROJECT_SCAN_COLUMNS,
};
use super::paths::{self, ApiPath};
use super::transfer::{Download, HashedPrefix, Uploaded};

/// Columns asked of a project's experiment listing, so subjects come in the same call.
const PROJECT_EXPERIMENT_COLUMNS: &str =
    "ID,label,project,subject_ID,subject_label,xsiType,date,insert_date,URI";

/// What a create answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The object was there already (XNAT answers 200 instead of 201 for a subject or an
    /// experiment it had; for scans it cannot tell, and a resource it had is a 409 error).
    pub existed: bool,
    /// The accession ID the server answered with, for subjects and experiments.
    pub id: String,
}

/// The XNAT operations the filesystem core is built on.
pub trait Backend: Send + Sync + 'static {
    /// Every project the account can read.
    fn projects(&self) -> BoxFuture<'_, Result<Vec<Project>>>;
    /// The subjects of a project.
    fn subjects<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<Subject>>>;
    /// Every experiment of a project, with its subject's ID, in one listing.
    fn experiments<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<Experiment>>>;
    /// Every scan of every image session of a project, with its resource labels, in one
    /// listing (sessions shared into the project from another are not included).
    fn scans<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<SessionScan>>>;
    /// The resources of a project, subject, experiment, scan or assessor.
    fn resources<'a>(&'a self, owner: &'a Owner) -> BoxFuture<'a, Result<Vec<Resource>>>;
    /// The files of a resource (label or numeric ID), nested paths included.
    fn files<'a>(
        &'a self,
        owner: &'a Owner,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<Vec<CatalogFile>>>;
    /// Every file of every scan resource of a session, in one listing.
    fn scan_files<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, Result<Vec<ScanFile>>>;
    /// The assessors of a session.
    fn assessors<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, Result<Vec<Assessor>>>;
    /// GET a file by the URI a listing gave for it, optionally with `Range: bytes=start-(end-1)`
    /// (`end == u64::MAX`: to the end). The server may ignore the range (real XNAT does): then
    /// `partial` is false and the body is the whole file. A range that starts past the end is
    /// [`XnatError::RangeNotSatisfiable`](super::XnatError::RangeNotSatisfiable).
    fn fetch(&self, uri: &str, range: Option<Range<u64>>) -> BoxFuture<'static, Result<Download>>;
    /// GET every file of a resource in one zip (`…/resources/R/files?format=zip`, entries
    /// named `…/resources/R/files/<path>`), for `xnatfs warm`. A backend without zips answers
    /// an error, and the files are fetched one by one.
    fn resource_zip<'a>(
        &'a self,
        owner: &'a Owner,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<Download>> {
        let _ = (owner, resource);
        async { Err(super::XnatError::protocol("", "zip downloads not offered")) }.boxed()
    }
    /// Upload the local file `source` as `file`, replacing a file of that path when `replace`
    /// (XNAT keeps the old one in its history). Without `replace`, an existing file is
    /// [`XnatError::Duplicate`](super::XnatError::Duplicate) and stays as it was. Returns the
    /// size and MD5 of the bytes the server took. `prefix` is the MD5 state of the source's
    /// first bytes when the caller computed it already: only the rest is hashed as it is sent.
    fn upload<'a>(
        &'a self,
        file: &'a FileAddr,
        source: &'a Path,
        replace: bool,
        prefix: Option<HashedPrefix>,
    ) -> BoxFuture<'a, Result<Uploaded>>;
    /// Make a subject, experiment, scan or resource.
    fn create<'a>(&'a self, object: &'a NewObject) -> BoxFuture<'a, Result<Created>>;
    /// Delete a file, or an object with its files.
    fn delete<'a>(&'a self, object: &'a Removal) -> BoxFuture<'a, Result<()>>;
    /// What the backend has seen of its server (requests, failures, whether it is offline,
    /// the uploads running), for `xnatfs status`.
    fn health(&self) -> Health {
        Health::default()
    }
}

/// The request that makes `object`: its path and query.
fn create_request(object: &NewObject) -> (ApiPath, Vec<(String, String)>) {
    match object {
        NewObject::Subject { project, label } => (paths::subject(project, label), Vec::new()),
        NewObject::Experiment {
            project,
            subject,
            label,
            xsi_type,
        } => (
            paths::subject_experiment(project, subject, label),
            [("xsiType".to_string(), xsi_type.clone())]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        ),
        NewObject::Scan {
            experiment,
            id,
            scan_type,
            xsi_type,
        } => {
            let mut params: Vec<(String, String)> = [("xsiType".to_string(), xsi_type.clone())]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect();
            if !scan_type.is_empty() {
                // The type field of the scan's own xsiType (`xnat:mrScanData/type`).
                params.push((format!("{xsi_type}/type"), scan_type.clone()));
            }
            (paths::experiment(experiment).scan(id), params)
        }
        NewObject::Resource { owner, label } => (paths::resource(owner, label), Vec::new()),
    }
}

/// The request that deletes `object`: its path and query.
fn delete_request(object: &Removal) -> (ApiPath, &'static [(&'static str, &'static str)]) {
    const WITH_FILES: &[(&str, &str)] = &[("removeFiles", "true")];
    match object {
        Removal::File(file) => (paths::file(file), &[]),
        Removal::Subject { project, subject } => (paths::subject(project, subject), WITH_FILES),
        Removal::Experiment { experiment } => (paths::experiment(experiment), WITH_FILES),
        Removal::Scan { experiment, scan } => {
            (paths::experiment(experiment).scan(scan), WITH_FILES)
        }
        Removal::Assessor {
            experiment,
            assessor,
        } => (paths::experiment(experiment).assessor(assessor), WITH_FILES),
        Removal::Resource { owner, resource } => (paths::resource(owner, resource), WITH_FILES),
    }
}

impl Backend for XnatClient {
    fn projects(&self) -> BoxFuture<'_, Result<Vec<Project>>> {
        async move { self.rows(&paths::projects(), &[]).await }.boxed()
    }

    fn subjects<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<Subject>>> {
        async move { self.rows(&paths::project_subjects(project), &[]).await }.boxed()
    }

    fn experiments<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<Experiment>>> {
        async move {
            self.rows(
                &paths::project_experiments(project),
                &[("columns", PROJECT_EXPERIMENT_COLUMNS)],
            )
            .await
        }
        .boxed()
    }

    fn scans<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<SessionScan>>> {
        async move {
            let rows: Vec<ProjectScanRow> = self
                .rows(
                    &paths::experiments(),
                    &[
                        ("project", project),
                        ("xsiType", "xnat:imageSessionData"),
                        ("columns", PROJECT_SCAN_COLUMNS),
                    ],
                )
                .await?;
            Ok(fold_scans(rows))
        }
        .boxed()
    }

    fn resources<'a>(&'a self, owner: &'a Owner) -> BoxFuture<'a, Result<Vec<Resource>>> {
        async move { self.rows(&paths::owner(owner).resources(), &[]).await }.boxed()
    }

    fn files<'a>(
        &'a self,
        owner: &'a Owner,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<Vec<CatalogFile>>> {
        async move {
            self.rows(&paths::resource(owner, resource).files(), &[])
                .await
        }
        .boxed()
    }

    fn scan_files<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, Result<Vec<ScanFile>>> {
        async move {
            self.rows(&paths::experiment(experiment).all_scan_files(), &[])
                .await
        }
        .boxed()
    }

    fn assessors<'a>(&'a self, experiment: &'a str) -> BoxFuture<'a, Result<Vec<Assessor>>> {
        async move {
            self.rows(&paths::experiment(experiment).assessors(), &[])
                .await
        }
        .boxed()
    }

    fn fetch(&self, uri: &str, range: Option<Range<u64>>) -> BoxFuture<'static, Result<Download>> {
        let client = self.clone();
        let path = ApiPath::from_uri(uri);
        async move { client.download(&path, range).await }.boxed()
    }

    fn resource_zip<'a>(
        &'a self,
        owner: &'a Owner,
        resource: &'a str,
    ) -> BoxFuture<'a, Result<Download>> {
        async move {
            let path = paths::resource(owner, resource).files();
            self.download_with(&path, &[("format", "zip")], None).await
        }
        .boxed()
    }

    fn upload<'a>(
        &'a self,
        file: &'a FileAddr,
        source: &'a Path,
        replace: bool,
        prefix: Option<HashedPrefix>,
    ) -> BoxFuture<'a, Result<Uploaded>> {
        async move {
            let path = paths::file(file);
            XnatClient::upload_known(self, &path, source, replace, &[], prefix).await
        }
        .boxed()
    }

    fn create<'a>(&'a self, object: &'a NewObject) -> BoxFuture<'a, Result<Created>> {
        async move {
            let (path, params) = create_request(object);
            let params: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let answer = self.put(&path, &params).await?;
            let labelled = matches!(
                object,
                NewObject::Subject { .. } | NewObject::Experiment { .. }
            );
            Ok(Created {
                existed: labelled && answer.status.as_u16() == 200,
                id: answer.body,
            })
        }
        .boxed()
    }

    fn delete<'a>(&'a self, object: &'a Removal) -> BoxFuture<'a, Result<()>> {
        async move {
            let (path, params) = delete_request(object);
            XnatClient::delete(self, &path, params).await
        }
        .boxed()
    }

    fn health(&self) -> Health {
        XnatClient::health(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_and_deletes_as_requests() {
        let (path, params) = create_request(&NewObject::Scan {
            experiment: "E".into(),
            id: "5".into(),
            scan_type: "T2w".into(),
            xsi_type: "xnat:mrScanData".into(),
        });
        assert_eq!(path.as_str(), "/data/experiments/E/scans/5");
        assert_eq!(
            params,
            vec![
                ("xsiType".to_string(), "xnat:mrScanData".to_string()),
                ("xnat:mrScanData/type".to_string(), "T2w".to_string())
            ]
        );
        let (path, params) = create_request(&NewObject::Experiment {
            project: "P".into(),
            subject: "S".into(),
            label: "S_MR1".into(),
            xsi_type: "xnat:mrSessionData".into(),
        });
        assert_eq!(
            path.as_str(),
            "/data/projects/P/subjects/S/experiments/S_MR1"
        );
        assert_eq!(
            params,
            vec![("xsiType".to_string(), "xnat:mrSessionData".to_string())]
        );
        let (path, params) = delete_request(&Removal::File(FileAddr {
            owner: Owner::Experiment {
                experiment: "E".into(),
            },
            resource: "R".into(),
            path: "a/b.txt".into(),
        }));
        assert_eq!(
            path.as_str(),
            "/data/experiments/E/resources/R/files/a/b.txt"
        );
        assert!(params.is_empty());
        let (_, params) = delete_request(&Removal::Experiment {
            experiment: "E".into(),
        });
        assert_eq!(params, &[("removeFiles", "true")]);
    }
}
