//! The calls the filesystem makes, and [`XnatApi`], the trait over them that lets the
//! filesystem core run against a fake in unit tests.
//!
//! Generic requests (`get_listing`, `get_text`, `put`, `delete`) sit beside one typed call
//! per level of the archive. Listings are asked with `format=json` (single objects default
//! to HTML) and the bulk forms are preferred so a project walk costs few requests.

use std::future::Future;
use std::ops::Range;
use std::path::Path;

use reqwest::{Method, StatusCode};

use super::client::{error_detail, Call, RangeSupport, XnatClient};
use super::error::{Result, XnatError};
use super::listing::{parse_listing, Listing};
use super::model::{
    Assessor, CatalogFile, Experiment, Project, ProjectScanRow, Resource, Scan, ScanFile, Subject,
    PROJECT_SCAN_COLUMNS,
};
use super::paths::{self, ApiPath};
use super::transfer::{Download, FileHead, Uploaded};

/// Columns asked of a project's experiment listing, so subjects come in the same call.
const PROJECT_EXPERIMENT_COLUMNS: &str =
    "ID,label,project,subject_ID,subject_label,xsiType,date,insert_date,URI";

/// What a create (`PUT`) answered: 201 for a new object, 200 for an existing one; the body
/// is the object's accession ID for subjects and experiments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub status: StatusCode,
    pub body: String,
}

impl XnatClient {
    async fn body_text(&self, sent: super::client::Sent) -> Result<String> {
        let url = sent.url;
        sent.resp.text().await.map_err(|e| XnatError::Network {
            method: "GET".into(),
            url,
            attempts: 1,
            detail: format!("answer cut short: {}", error_detail(&e)),
        })
    }

    /// GET a listing (`format=json` added) and parse its ResultSet.
    pub async fn get_listing(&self, path: &ApiPath, params: &[(&str, &str)]) -> Result<Listing> {
        let mut call = Call::new(Method::GET, path, params);
        call.query.push(("format".into(), "json".into()));
        let sent = self.execute(&call).await?;
        let url = sent.url.clone();
        let body = sent.resp.bytes().await.map_err(|e| XnatError::Network {
            method: "GET".into(),
            url: url.clone(),
            attempts: 1,
            detail: format!("listing cut short: {}", error_detail(&e)),
        })?;
        parse_listing(&body, &url)
    }

    /// GET a path as text.
    pub async fn get_text(&self, path: &ApiPath, params: &[(&str, &str)]) -> Result<String> {
        let sent = self.execute(&Call::new(Method::GET, path, params)).await?;
        self.body_text(sent).await
    }

    /// PUT without a body: create a subject, experiment, scan or resource. 409 (exists)
    /// comes back as [`XnatError::Conflict`].
    pub async fn put(&self, path: &ApiPath, params: &[(&str, &str)]) -> Result<Created> {
        let sent = self.execute(&Call::new(Method::PUT, path, params)).await?;
        let status = sent.resp.status();
        let body = self.body_text(sent).await?;
        Ok(Created {
            status,
            body: body.trim().to_string(),
        })
    }

    /// DELETE an object or file (`params` e.g. `removeFiles=true`).
    pub async fn delete(&self, path: &ApiPath, params: &[(&str, &str)]) -> Result<()> {
        self.execute(&Call::new(Method::DELETE, path, params))
            .await
            .map(drop)
    }

    async fn rows<T: for<'r> From<&'r super::listing::Row>>(
        &self,
        path: &ApiPath,
        params: &[(&str, &str)],
    ) -> Result<Vec<T>> {
        let listing = self.get_listing(path, params).await?;
        Ok(listing.rows.iter().map(T::from).collect())
    }

    /// Every project the account can read.
    pub async fn projects(&self) -> Result<Vec<Project>> {
        self.rows(&paths::projects(), &[]).await
    }

    /// The subjects of a project.
    pub async fn project_subjects(&self, project: &str) -> Result<Vec<Subject>> {
        self.rows(&paths::project_subjects(project), &[]).await
    }

    /// The experiments of a project, with their subject's ID and label, in one call.
    pub async fn project_experiments(&self, project: &str) -> Result<Vec<Experiment>> {
        self.rows(
            &paths::project_experiments(project),
            &[("columns", PROJECT_EXPERIMENT_COLUMNS)],
        )
        .await
    }

    /// The scans of an experiment (by accession ID).
    pub async fn experiment_scans(&self, experiment_id: &str) -> Result<Vec<Scan>> {
        self.rows(&paths::experiment(experiment_id).scans(), &[])
            .await
    }

    /// Every (session, scan, scan resource) of a project's image sessions in one call.
    /// Sessions shared into the project from another are not included.
    pub async fn project_scan_rows(&self, project: &str) -> Result<Vec<ProjectScanRow>> {
        self.rows(
            &paths::experiments(),
            &[
                ("project", project),
                ("xsiType", "xnat:imageSessionData"),
                ("columns", PROJECT_SCAN_COLUMNS),
            ],
        )
        .await
    }

    /// The resources below a project, subject, experiment, scan or assessor path.
    pub async fn resources(&self, level: &ApiPath) -> Result<Vec<Resource>> {
        self.rows(&level.resources(), &[]).await
    }

    /// The files of a resource (`…/resources/R`), nested paths included.
    pub async fn files(&self, resource: &ApiPath) -> Result<Vec<CatalogFile>> {
        self.rows(&resource.files(), &[]).await
    }

    /// Every file of every scan of an experiment in one call (`scans/ALL/files`).
    pub async fn session_scan_files(&self, experiment_id: &str) -> Result<Vec<ScanFile>> {
        self.rows(&paths::experiment(experiment_id).all_scan_files(), &[])
            .await
    }

    /// The assessors of an experiment.
    pub async fn assessors(&self, experiment_id: &str) -> Result<Vec<Assessor>> {
        self.rows(&paths::experiment(experiment_id).assessors(), &[])
            .await
    }

    /// The output resources of an assessor.
    pub async fn assessor_out_resources(
        &self,
        experiment_id: &str,
        assessor: &str,
    ) -> Result<Vec<Resource>> {
        let path = paths::experiment(experiment_id)
            .assessor(assessor)
            .out_resources();
        self.rows(&path, &[]).await
    }
}

/// The XNAT calls the filesystem needs. [`XnatClient`] is the real one; tests can supply a
/// fake. Futures are `Send` so callers can spawn them.
pub trait XnatApi: Send + Sync + 'static {
    fn projects(&self) -> impl Future<Output = Result<Vec<Project>>> + Send;
    fn project_subjects(&self, project: &str) -> impl Future<Output = Result<Vec<Subject>>> + Send;
    fn project_experiments(
        &self,
        project: &str,
    ) -> impl Future<Output = Result<Vec<Experiment>>> + Send;
    fn experiment_scans(
        &self,
        experiment_id: &str,
    ) -> impl Future<Output = Result<Vec<Scan>>> + Send;
    fn project_scan_rows(
        &self,
        project: &str,
    ) -> impl Future<Output = Result<Vec<ProjectScanRow>>> + Send;
    fn resources(&self, level: &ApiPath) -> impl Future<Output = Result<Vec<Resource>>> + Send;
    fn files(&self, resource: &ApiPath) -> impl Future<Output = Result<Vec<CatalogFile>>> + Send;
    fn session_scan_files(
        &self,
        experiment_id: &str,
    ) -> impl Future<Output = Result<Vec<ScanFile>>> + Send;
    fn assessors(&self, experiment_id: &str) -> impl Future<Output = Result<Vec<Assessor>>> + Send;
    fn assessor_out_resources(
        &self,
        experiment_id: &str,
        assessor: &str,
    ) -> impl Future<Output = Result<Vec<Resource>>> + Send;
    fn head(&self, path: &ApiPath) -> impl Future<Output = Result<FileHead>> + Send;
    fn download(
        &self,
        path: &ApiPath,
        range: Option<Range<u64>>,
    ) -> impl Future<Output = Result<Download>> + Send;
    fn upload(
        &self,
        path: &ApiPath,
        source: &Path,
        overwrite: bool,
        params: &[(&str, &str)],
    ) -> impl Future<Output = Result<Uploaded>> + Send;
    fn put(
        &self,
        path: &ApiPath,
        params: &[(&str, &str)],
    ) -> impl Future<Output = Result<Created>> + Send;
    fn delete(
        &self,
        path: &ApiPath,
        params: &[(&str, &str)],
    ) -> impl Future<Output = Result<()>> + Send;
    fn range_support(&self) -> RangeSupport;
}

impl XnatApi for XnatClient {
    async fn projects(&self) -> Result<Vec<Project>> {
        XnatClient::projects(self).await
    }
    async fn project_subjects(&self, project: &str) -> Result<Vec<Subject>> {
        XnatClient::project_subjects(self, project).await
    }
    async fn project_experiments(&self, project: &str) -> Result<Vec<Experiment>> {
        XnatClient::project_experiments(self, project).await
    }
    async fn experiment_scans(&self, experiment_id: &str) -> Result<Vec<Scan>> {
        XnatClient::experiment_scans(self, experiment_id).await
    }
    async fn project_scan_rows(&self, project: &str) -> Result<Vec<ProjectScanRow>> {
        XnatClient::project_scan_rows(self, project).await
    }
    async fn resources(&self, level: &ApiPath) -> Result<Vec<Resource>> {
        XnatClient::resources(self, level).await
    }
    async fn files(&self, resource: &ApiPath) -> Result<Vec<CatalogFile>> {
        XnatClient::files(self, resource).await
    }
    async fn session_scan_files(&self, experiment_id: &str) -> Result<Vec<ScanFile>> {
        XnatClient::session_scan_files(self, experiment_id).await
    }
    async fn assessors(&self, experiment_id: &str) -> Result<Vec<Assessor>> {
        XnatClient::assessors(self, experiment_id).await
    }
    async fn assessor_out_resources(
        &self,
        experiment_id: &str,
        assessor: &str,
    ) -> Result<Vec<Resource>> {
        XnatClient::assessor_out_resources(self, experiment_id, assessor).await
    }
    async fn head(&self, path: &ApiPath) -> Result<FileHead> {
        XnatClient::head(self, path).await
    }
    async fn download(&self, path: &ApiPath, range: Option<Range<u64>>) -> Result<Download> {
        XnatClient::download(self, path, range).await
    }
    async fn upload(
        &self,
        path: &ApiPath,
        source: &Path,
        overwrite: bool,
        params: &[(&str, &str)],
    ) -> Result<Uploaded> {
        XnatClient::upload(self, path, source, overwrite, params).await
    }
    async fn put(&self, path: &ApiPath, params: &[(&str, &str)]) -> Result<Created> {
        XnatClient::put(self, path, params).await
    }
    async fn delete(&self, path: &ApiPath, params: &[(&str, &str)]) -> Result<()> {
        XnatClient::delete(self, path, params).await
    }
    fn range_support(&self) -> RangeSupport {
        XnatClient::range_support(self)
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
