//! The listings the namespace asks for, through the [`ListingStore`] when the mount has one:
//! each answer the server gives is kept on disk, and when the server cannot be reached (the
//! mount is offline, the request found it down, or a listing ran out of time) the kept answer
//! is used instead, so the last known tree stays listed.
//!
//! After a remount the first look at a listing waits at most [`REMOUNT_GRACE`] for the server:
//! past that the kept answer is shown, for [`KEPT_LIFE`] only, while the server's answer is
//! awaited in the background; the next look after that takes the server's answer if it has come
//! (else asks again). A mount that has changed something itself asks the server every time (its
//! own change must show).

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Namespace;
use crate::fs::error::FsResult;
use crate::xnat::{
    Assessor, Backend, CatalogFile, Experiment, Owner, Project, Resource, ScanFile, SessionScan,
    Subject, XnatError,
};

/// How long the first look at a listing after a remount waits for the server before the kept
/// answer is shown.
pub const REMOUNT_GRACE: Duration = Duration::from_secs(1);

/// How long a listing filled from a kept answer at a remount is shown before the server's
/// answer, awaited in the background, replaces it.
pub const KEPT_LIFE: Duration = Duration::from_secs(2);

type Fetch<T> = BoxFuture<'static, Result<Vec<T>, XnatError>>;

/// Answers the server gave in the background after a kept one was shown, by request, each
/// taken by the next look at it.
pub(super) type Revalidated = Arc<Mutex<HashMap<String, (Instant, Box<dyn Any + Send>)>>>;

tokio::task_local! {
    /// Set while a folder loads when one of its listings came from what was kept at a remount:
    /// the folders it fills are shown for [`KEPT_LIFE`] only.
    static SHOWN_KEPT: Cell<bool>;
}

/// Run a folder's load, telling whether it showed a kept answer at a remount.
pub(super) async fn watching_kept<F: std::future::Future>(load: F) -> F::Output {
    SHOWN_KEPT.scope(Cell::new(false), load).await
}

/// Whether the load running now showed a kept answer at a remount.
pub(super) fn showing_kept() -> bool {
    SHOWN_KEPT.try_with(Cell::get).unwrap_or(false)
}

impl Namespace {
    pub(super) async fn projects(&self) -> FsResult<Vec<Project>> {
        self.ask(super::store::ROOT_LISTING.into(), |b| {
            async move { b.projects().await }.boxed()
        })
        .await
    }

    pub(super) async fn subjects(&self, project: &str) -> FsResult<Vec<Subject>> {
        let p = project.to_string();
        self.ask(format!("subjects {project}"), |b| {
            async move { b.subjects(&p).await }.boxed()
        })
        .await
    }

    pub(super) async fn experiments(&self, project: &str) -> FsResult<Vec<Experiment>> {
        let p = project.to_string();
        self.ask(format!("experiments {project}"), |b| {
            async move { b.experiments(&p).await }.boxed()
        })
        .await
    }

    pub(super) async fn scans(&self, project: &str) -> FsResult<Vec<SessionScan>> {
        let p = project.to_string();
        self.ask(format!("scans {project}"), |b| {
            async move { b.scans(&p).await }.boxed()
        })
        .await
    }

    pub(super) async fn resources(&self, owner: &Owner) -> FsResult<Vec<Resource>> {
        let o = owner.clone();
        self.ask(format!("resources {owner:?}"), |b| {
            async move { b.resources(&o).await }.boxed()
        })
        .await
    }

    pub(super) async fn files(&self, owner: &Owner, resource: &str) -> FsResult<Vec<CatalogFile>> {
        let (o, r) = (owner.clone(), resource.to_string());
        self.ask(format!("files {owner:?} {resource}"), |b| {
            async move { b.files(&o, &r).await }.boxed()
        })
        .await
    }

    pub(super) async fn scan_files(&self, experiment: &str) -> FsResult<Vec<ScanFile>> {
        let e = experiment.to_string();
        self.ask(format!("scan files {experiment}"), |b| {
            async move { b.scan_files(&e).await }.boxed()
        })
        .await
    }

    pub(super) async fn assessors(&self, experiment: &str) -> FsResult<Vec<Assessor>> {
        let e = experiment.to_string();
        self.ask(format!("assessors {experiment}"), |b| {
            async move { b.assessors(&e).await }.boxed()
        })
        .await
    }

    /// The rows of the request `key`, which `fetch` makes: from the server, kept; or kept.
    async fn ask<T>(
        &self,
        key: String,
        fetch: impl FnOnce(Arc<dyn Backend>) -> Fetch<T>,
    ) -> FsResult<Vec<T>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let Some(store) = self.store.clone() else {
            return Ok(fetch(self.backend.clone()).await?);
        };
        let came = self
            .revalidated
            .lock()
            .expect("revalidated lock")
            .remove(&key);
        if let Some((when, rows)) = came.filter(|(when, _)| when.elapsed() < self.ttl) {
            if let Ok(rows) = rows.downcast::<Vec<T>>() {
                // The server's answer that came after a kept one was shown.
                tracing::debug!(key, age = ?when.elapsed(), "the server's answer after a kept one");
                return Ok(*rows);
            }
        }
        let mut fetch = fetch(self.backend.clone());
        let remount = store.first_use(&key) && !self.changed.load(Ordering::Relaxed);
        let answer = if remount && store.has(&key) {
            tokio::select! {
                answer = &mut fetch => answer,
                _ = tokio::time::sleep(REMOUNT_GRACE) => {
                    // The server is slow: show what was kept, keep its answer when it comes.
                    if let Some(rows) = self.kept(&key).await {
                        let (store, key) = (store.clone(), key.clone());
                        let revalidated = self.revalidated.clone();
                        tokio::spawn(async move {
                            if let Ok(rows) = fetch.await {
                                let rows = store.keep(key.clone(), rows).await;
                                revalidated
                                    .lock()
                                    .expect("revalidated lock")
                                    .insert(key, (Instant::now(), Box::new(rows)));
                            }
                        });
                        let _ = SHOWN_KEPT.try_with(|shown| shown.set(true));
                        return Ok(rows);
                    }
                    fetch.await
                }
            }
        } else {
            fetch.await
        };
        match answer {
            Ok(rows) => Ok(store.keep(key, rows).await),
            Err(e) if e.says_server_down() || matches!(e, XnatError::Timeout { .. }) => {
                match self.kept(&key).await {
                    Some(rows) => {
                        tracing::debug!(key, "server unreachable: the kept listing is shown");
                        Ok(rows)
                    }
                    None => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The kept rows of `key`, read off the async threads.
    async fn kept<T: DeserializeOwned + Send + 'static>(&self, key: &str) -> Option<Vec<T>> {
        let store = self.store.clone()?;
        let key = key.to_string();
        tokio::task::spawn_blocking(move || store.load::<T>(&key))
            .await
            .ok()
            .flatten()
    }
}
