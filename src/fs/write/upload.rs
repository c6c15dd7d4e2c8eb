//! The uploader: sends a stage, checks that the server has it, and retries failed uploads in
//! the background.
//!
//! An upload is a streamed `PUT …/files/<path>` (the backend's `upload`); afterwards the
//! resource's file listing must show the path with the size and MD5 digest of the bytes sent,
//! or the upload counts as failed. XNAT answers `200 {"duplicates":[…]}` when a file of that
//! name exists and `overwrite=true` was not sent: for a file this mount created, that means
//! someone else put one there since, and the upload fails with EEXIST rather than replace it.
//! Failures a retry may cure (`XnatError::retryable`: network, timeouts, 5xx) are retried in
//! the background with backoff; the others (403, 404, a name taken) wait in the spool until
//! the next mount. Failures are returned, not logged: whoever gave up on the upload (the
//! `close` that waited, the background retries) logs them.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::spool::{self, Record, UploadState};
use super::stage::Staged;
use super::stages::{blocking, StageTable};
use crate::fs::error::{FsError, FsResult};
use crate::fs::namespace::{file_entry, Namespace};
use crate::fs::write::place::Place;
use crate::xnat::{Backend, CatalogFile, FileAddr, XnatError};

/// The wait before retry number `attempts` (1, 2, 4, … seconds, at most `max`).
pub(super) fn backoff(attempts: u32, max: Duration) -> Duration {
    let secs = 1u64 << attempts.saturating_sub(1).min(16);
    Duration::from_secs(secs).min(max)
}

/// How often an upload is tried while the mount is offline (each try sends nothing).
const OFFLINE_RETRY: Duration = Duration::from_secs(2);

/// MD5 of a file, in lower-case hex (reads the whole file: call it off the async threads).
fn md5_of(path: &std::path::Path) -> std::io::Result<String> {
    use md5::{Digest, Md5};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// How long one attempt at uploading `size` bytes may take: `base`, plus a second per MiB.
pub(super) fn attempt_deadline(base: Duration, size: u64) -> Duration {
    base + Duration::from_secs(size.div_ceil(1 << 20))
}

pub struct Uploader {
    backend: Arc<dyn Backend>,
    namespace: Arc<Namespace>,
    stages: Arc<StageTable>,
    /// The longest wait between two background retries of one file.
    retry_max: Duration,
    /// One attempt's limit, before the allowance for the file's size (`attempt_deadline`).
    deadline: Duration,
    /// Wakes the background retries.
    wake: tokio::sync::Notify,
}

impl Uploader {
    pub fn new(
        backend: Arc<dyn Backend>,
        namespace: Arc<Namespace>,
        stages: Arc<StageTable>,
        retry_max: Duration,
        deadline: Duration,
    ) -> Uploader {
        Uploader {
            backend,
            namespace,
            stages,
            retry_max,
            deadline,
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Have the background retries look at the stages again.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Upload `staged` if the server lacks some of its changes, and return once the server
    /// has them (checked against its listing), or with the reason it does not, which says what
    /// happens next (a retry, or the next mount).
    pub async fn upload(&self, staged: &Arc<Staged>) -> FsResult<()> {
        let _one = staged.upload.lock().await;
        if staged.is_unlinked() {
            return Ok(());
        }
        if staged.poisoned() {
            return Err(FsError::warn(
                libc::ENOSPC,
                "the spool disk filled up while this file was written: it was not uploaded",
            ));
        }
        if !staged.dirty() {
            return Ok(());
        }
        let generation = staged.generation();
        // No fsync first: the close waits for the server, and a successful upload makes the
        // stage moot. The record says the stage is unsynced; a failure syncs it.
        self.stages
            .journal_async(staged, |r| {
                r.state = UploadState::Pending;
                r.unsynced_boot = spool::boot_id();
            })
            .await?;
        let record = staged.snapshot();
        let limit = attempt_deadline(self.deadline, record.size);
        let attempt = match tokio::time::timeout(limit, self.send(staged, &record)).await {
            Ok(answer) => answer,
            // Dropping the request closes its connection: the server never completes a body
            // it did not get. One that did land is found by the next attempt (a duplicate
            // with this stage's size and digest counts as uploaded).
            Err(_) => Err((
                FsError::warn(
                    libc::ETIMEDOUT,
                    format!("the upload took longer than its deadline of {limit:?}"),
                ),
                true,
            )),
        };
        match attempt {
            Ok(row) => {
                staged.mark_uploaded(generation);
                *staged.retry_at.lock().expect("retry lock") = None;
                self.commit(staged, &record, row);
                tracing::info!(
                    bytes = record.size,
                    "uploaded {} ({} attempt(s))",
                    record.shown,
                    record.attempts + 1
                );
                self.settle_record(staged).await;
                Ok(())
            }
            Err((err, again)) => {
                // The mount is offline: nothing was sent. Not an attempt; the next one comes
                // soon after the server is back, and the outage was logged once already.
                let offline = err.errno == libc::EHOSTDOWN;
                let attempts = {
                    let mut r = staged.record.lock().expect("record lock");
                    if !offline {
                        r.attempts += 1;
                    }
                    r.attempts
                };
                let state = if again {
                    UploadState::Pending
                } else {
                    UploadState::Failed
                };
                self.stages
                    .set_state_async(staged, state, Some(err.message.clone()))
                    .await;
                let err = if again {
                    let wait = if offline {
                        OFFLINE_RETRY.min(self.retry_max)
                    } else {
                        backoff(attempts, self.retry_max)
                    };
                    *staged.retry_at.lock().expect("retry lock") = Some(Instant::now() + wait);
                    let mut err = err.context(format!(
                        "upload of {} failed (attempt {attempts}); it stays in the spool and is \
                         retried in {wait:?}",
                        record.shown
                    ));
                    if offline {
                        err.level = tracing::Level::DEBUG;
                    }
                    err
                } else {
                    let mut err = err.context(format!(
                        "upload of {} failed and is kept in the spool ({}); it is tried again \
                         at the next mount",
                        record.shown,
                        self.stages.spool().dir().display()
                    ));
                    err.level = tracing::Level::ERROR;
                    err
                };
                self.wake();
                Err(err)
            }
        }
    }

    /// After an upload landed: the record goes, unless the stage changed meanwhile (then it
    /// says the stage is being written again). Under the record's lock, so that a write
    /// starting now either sees the record dropped (and saves a new one) or is counted before
    /// the dirty check.
    async fn settle_record(&self, staged: &Arc<Staged>) {
        let (stages, staged) = (self.stages.clone(), staged.clone());
        let _ = blocking("settling an upload's record", move || {
            let done = {
                let mut r = staged.record.lock().expect("record lock");
                r.replace = true;
                r.attempts = 0;
                r.reason = None;
                r.state = UploadState::Writing;
                if staged.dirty() {
                    if let Err(e) = stages.save_locked(&staged, &r) {
                        tracing::error!("writing the journal record of {}: {e}", r.shown);
                    }
                    false
                } else {
                    stages.drop_record(&staged);
                    true
                }
            };
            if done {
                stages.finish(&staged);
            }
            Ok(())
        })
        .await;
    }

    /// Send the stage and check the server's listing. On failure: the error and whether a
    /// retry may cure it.
    pub(super) async fn send(
        &self,
        staged: &Arc<Staged>,
        record: &Record,
    ) -> Result<CatalogFile, (FsError, bool)> {
        let file = FileAddr {
            owner: record.owner.clone(),
            resource: record.resource.clone(),
            path: record.path.clone(),
        };
        let fail = |err: XnatError| {
            let again = err.retryable();
            (FsError::from(err), again)
        };
        // The MD5 followed as the stage was written, when it was written in order: the
        // upload hashes only what the hasher had not reached.
        let prefix = {
            let staged = staged.clone();
            blocking("hashing the stage", move || {
                Ok(staged.take_prefix(staged.size()))
            })
            .await
            .unwrap_or(None)
        };
        let sent = match self
            .backend
            .upload(&file, &staged.path, record.replace, prefix)
            .await
        {
            Ok(sent) => {
                // Whatever the check says, the server now has a file of ours at that path.
                staged.record.lock().expect("record lock").replace = true;
                sent
            }
            Err(err @ XnatError::Duplicate { .. }) => {
                // A file of that name is there. It counts as this upload if it is this stage:
                // a retried request whose first attempt landed, or an upload a crash cut off
                // after the server stored it.
                let path = staged.path.clone();
                let (md5, size) = blocking("reading the stage", move || {
                    let md5 = md5_of(&path).map_err(|e| FsError::io("reading the stage", e))?;
                    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    Ok((md5, size))
                })
                .await
                .map_err(|e| (e, true))?;
                let rows = self
                    .backend
                    .files(&file.owner, &file.resource)
                    .await
                    .map_err(fail)?;
                let same = rows.into_iter().find(|r| {
                    r.path == record.path
                        && r.size == Some(size)
                        && r.digest
                            .as_deref()
                            .is_some_and(|d| d.eq_ignore_ascii_case(&md5))
                });
                if let Some(row) = same {
                    return Ok(row);
                }
                let message = format!(
                    "a file {} is already on the server (put there since this mount listed the \
                     folder); not replaced. {err}",
                    record.path
                );
                return Err((FsError::warn(err.errno(), message), false));
            }
            Err(err) => return Err(fail(err)),
        };
        let rows = self
            .backend
            .files(&file.owner, &file.resource)
            .await
            .map_err(fail)?;
        let row = rows
            .into_iter()
            .find(|r| r.path == record.path)
            .ok_or_else(|| {
                (
                    FsError::warn(
                        libc::EIO,
                        format!(
                            "uploaded {}, but the server's listing of its resource does not \
                             show it",
                            record.path
                        ),
                    ),
                    true,
                )
            })?;
        let size_ok = row.size.is_none_or(|s| s == sent.size);
        let digest_ok = row
            .digest
            .as_deref()
            .is_none_or(|d| d.eq_ignore_ascii_case(&sent.md5));
        if !size_ok || !digest_ok {
            return Err((
                FsError::warn(
                    libc::EIO,
                    format!(
                        "uploaded {}, but the server holds {:?} bytes with MD5 {:?} where {} \
                         bytes with MD5 {} were sent",
                        record.path, row.size, row.digest, sent.size, sent.md5
                    ),
                ),
                true,
            ));
        }
        Ok(row)
    }

    /// The server has the file: give its inode the version the server lists, and stop
    /// keeping its entry locally.
    pub(super) fn commit(&self, staged: &Staged, record: &Record, row: CatalogFile) {
        let (node, mut info) = file_entry(&record.owner, &record.resource, row);
        // A file written here keeps the time of its last write.
        info.mtime = staged.modified();
        if let Err(e) = self.namespace.rekey(staged.ino, node, info) {
            tracing::warn!("after the upload of {}: {e}", record.shown);
        }
        let dir = Place::dir_of(&record.owner, &record.resource, &record.path);
        let shown = record.shown.rsplit('/').next().unwrap_or_default();
        self.namespace.settle(&dir, shown);
    }

    /// Retry failed uploads in the background, each when its backoff has passed, until the
    /// mount ends. Each failure is logged here, once.
    pub async fn run_retries(self: Arc<Self>) {
        loop {
            let mut next: Option<Instant> = None;
            for staged in self.stages.all() {
                if staged.state() != UploadState::Pending {
                    continue;
                }
                let at = *staged.retry_at.lock().expect("retry lock");
                if let Some(at) = at.filter(|at| *at > Instant::now()) {
                    next = Some(next.map_or(at, |n| n.min(at)));
                    continue;
                }
                match self.upload(&staged).await {
                    Ok(()) => self.stages.finish(&staged),
                    Err(e) => {
                        e.log("background upload");
                        if let Some(at) = *staged.retry_at.lock().expect("retry lock") {
                            next = Some(next.map_or(at, |n| n.min(at)));
                        }
                    }
                }
            }
            let wait = next
                .map(|at| at.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let max = Duration::from_secs(60);
        assert_eq!(backoff(1, max), Duration::from_secs(1));
        assert_eq!(backoff(2, max), Duration::from_secs(2));
        assert_eq!(backoff(5, max), Duration::from_secs(16));
        assert_eq!(backoff(9, max), max);
        assert_eq!(backoff(200, max), max);
    }
}
