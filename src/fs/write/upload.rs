//! Uploading a stage, checking that the server has it, and retrying failed uploads.
//!
//! An upload is a streamed `PUT …/files/<path>` (see `XnatClient::upload`); afterwards the
//! resource's file listing must show the path with the size and MD5 digest of the bytes sent,
//! or the upload counts as failed. XNAT answers `200 {"duplicates":[…]}` when a file of that
//! name exists and `overwrite=true` was not sent: for a file this mount created, that means
//! someone else put one there since, and the upload fails with EEXIST rather than replace it.
//! Failures a retry may cure (network, timeouts, 5xx) are retried in the background with
//! backoff; the others (403, 404, a name taken) wait in the spool until the next mount.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::journal::{Record, UploadState};
use super::stage::Staged;
use super::Writes;
use crate::fs::catalog::FileRow;
use crate::fs::error::{FsError, FsResult};
use crate::fs::namespace::file_entry;
use crate::fs::node::Node;
use crate::fs::remote::{file_row, owner_path};
use crate::xnat::XnatError;

/// Whether a failed upload is worth retrying without anyone changing anything.
fn retryable(err: &XnatError) -> bool {
    match err {
        XnatError::Network { .. }
        | XnatError::Timeout { .. }
        | XnatError::RetriesExhausted { .. }
        | XnatError::Protocol { .. }
        | XnatError::Io { .. } => true,
        XnatError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

/// The wait before retry number `attempts` (1, 2, 4, … seconds, at most `max`).
pub(super) fn backoff(attempts: u32, max: Duration) -> Duration {
    let secs = 1u64 << attempts.saturating_sub(1).min(16);
    Duration::from_secs(secs).min(max)
}

/// MD5 of a file, in lower-case hex.
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

impl Writes {
    /// Upload `staged` if the server lacks some of its changes, and return once the server
    /// has them (checked against its listing), or with the reason it does not.
    pub async fn upload(&self, staged: &Arc<Staged>) -> FsResult<()> {
        let _one = staged.upload.lock().await;
        if staged.is_unlinked() {
            return Ok(());
        }
        if staged.poisoned() {
            return Err(FsError::new(
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
        if let Err(e) = self.journal(staged, |r| {
            r.state = UploadState::Pending;
            r.unsynced_boot = super::journal::boot_id();
        }) {
            return Err(super::io_error("writing the journal record", e));
        }
        let record = staged.snapshot();
        match self.send(staged, &record).await {
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
                // Under the record's lock, so that a write starting now either sees the record
                // dropped (and saves a new one) or is counted before the dirty check.
                let done = {
                    let mut r = staged.record.lock().expect("record lock");
                    r.replace = true;
                    r.attempts = 0;
                    r.reason = None;
                    r.state = UploadState::Writing;
                    if staged.dirty() {
                        if let Err(e) = self.save_locked(staged, &r) {
                            tracing::error!("writing the journal record of {}: {e}", r.shown);
                        }
                        false
                    } else {
                        self.spool.drop_record(staged.id);
                        staged.journaled(false);
                        true
                    }
                };
                if done {
                    self.finish(staged);
                }
                Ok(())
            }
            Err((err, again)) => {
                let attempts = {
                    let mut r = staged.record.lock().expect("record lock");
                    r.attempts += 1;
                    r.attempts
                };
                let state = if again {
                    UploadState::Pending
                } else {
                    UploadState::Failed
                };
                self.set_state(staged, state, Some(err.message.clone()));
                if again {
                    let wait = backoff(attempts, self.config.retry_max);
                    *staged.retry_at.lock().expect("retry lock") = Some(Instant::now() + wait);
                    tracing::warn!(
                        "upload of {} failed (attempt {attempts}); it stays in the spool and is \
                         retried in {wait:?}: {}",
                        record.shown,
                        err.message
                    );
                } else {
                    tracing::error!(
                        "upload of {} failed and is kept in the spool ({}); it is tried again \
                         at the next mount: {}",
                        record.shown,
                        self.spool.dir().display(),
                        err.message
                    );
                }
                self.wake.notify_one();
                Err(err)
            }
        }
    }

    /// Send the stage and check the server's listing. On failure: the error and whether a
    /// retry may cure it.
    pub(super) async fn send(
        &self,
        staged: &Staged,
        record: &Record,
    ) -> Result<FileRow, (FsError, bool)> {
        let resource = owner_path(&record.owner).resource(&record.resource);
        let target = resource.file(&record.path);
        // Not `FsError::from`, which logs: the caller logs what the failure means.
        let fail = |err: XnatError| {
            let again = retryable(&err);
            (FsError::new(err.errno(), err.to_string()), again)
        };
        let sent = match self
            .client
            .upload(&target, &staged.path, record.replace, &[])
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
                let md5 = md5_of(&staged.path)
                    .map_err(|e| (super::io_error("reading the stage", e), true))?;
                let size = std::fs::metadata(&staged.path)
                    .map(|m| m.len())
                    .unwrap_or(0);
                let rows = self.client.files(&resource).await.map_err(fail)?;
                let same = rows.into_iter().map(file_row).find(|r| {
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
                return Err((FsError::new(err.errno(), message), false));
            }
            Err(err) => return Err(fail(err)),
        };
        let rows = self.client.files(&resource).await.map_err(fail)?;
        let row = rows
            .into_iter()
            .map(file_row)
            .find(|r| r.path == record.path)
            .ok_or_else(|| {
                (
                    FsError::new(
                        libc::EIO,
                        format!(
                            "uploaded {}, but the server's listing of {resource} does not show it",
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
                FsError::new(
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
    pub(super) fn commit(&self, staged: &Staged, record: &Record, row: FileRow) {
        let (node, info) = file_entry(&record.owner, &record.resource, row);
        if let Err(e) = self.namespace.rekey(staged.ino, node, info) {
            tracing::warn!("after the upload of {}: {e}", record.shown);
        }
        let folder = record
            .path
            .rsplit_once('/')
            .map(|(f, _)| f.to_string())
            .unwrap_or_default();
        let dir = if folder.is_empty() {
            Node::Resource {
                owner: record.owner.clone(),
                resource: record.resource.clone(),
            }
        } else {
            Node::Folder {
                owner: record.owner.clone(),
                resource: record.resource.clone(),
                path: folder,
            }
        };
        let shown = record.shown.rsplit('/').next().unwrap_or_default();
        self.namespace.settle(&dir, shown);
    }

    /// Retry failed uploads in the background, each when its backoff has passed, until the
    /// mount ends.
    pub async fn run_retries(self: Arc<Self>) {
        loop {
            let mut next: Option<Instant> = None;
            for staged in self.stages() {
                if staged.state() != UploadState::Pending {
                    continue;
                }
                let at = *staged.retry_at.lock().expect("retry lock");
                if let Some(at) = at.filter(|at| *at > Instant::now()) {
                    next = Some(next.map_or(at, |n| n.min(at)));
                    continue;
                }
                if self.upload(&staged).await.is_ok() {
                    self.finish(&staged);
                } else if let Some(at) = *staged.retry_at.lock().expect("retry lock") {
                    next = Some(next.map_or(at, |n| n.min(at)));
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

    /// Every staged file's journal state, for `xnatfs status` through the daemon.
    pub fn records(&self) -> Vec<Record> {
        let mut out: Vec<Record> = self.stages().iter().map(|s| s.snapshot()).collect();
        out.sort_by_key(|r| r.id);
        out
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
