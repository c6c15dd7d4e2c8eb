//! The stage table: which files have a stage (by inode), and the journal records that say how
//! far each got.
//!
//! A record is saved before a stage's bytes change (`note_change`), when an upload starts and
//! ends, and when one fails; saves of one record happen under its lock, so they never cross
//! and the newest state is the one kept. Saves sync the disk: the `_async` forms run them on
//! the blocking pool, and the write path's hot call (`try_note_change`) only ever takes the
//! fast way, which touches no disk.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use super::spool::{Record, Spool, UploadState};
use super::stage::Staged;
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::Ino;

pub struct StageTable {
    spool: Spool,
    staged: Mutex<HashMap<Ino, Arc<Staged>>>,
}

/// Run `work` on the blocking pool; a panic there is an EIO.
pub(super) async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> FsResult<T> + Send + 'static,
) -> FsResult<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => Err(FsError::warn(libc::EIO, format!("{what}: {e}"))),
    }
}

impl StageTable {
    pub fn new(spool: Spool) -> StageTable {
        StageTable {
            spool,
            staged: Mutex::new(HashMap::new()),
        }
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    pub fn get(&self, ino: Ino) -> Option<Arc<Staged>> {
        self.staged.lock().expect("staged lock").get(&ino).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Staged>> {
        self.staged
            .lock()
            .expect("staged lock")
            .values()
            .cloned()
            .collect()
    }

    /// Make `staged` the stage of its inode.
    pub fn insert(&self, staged: Arc<Staged>) {
        self.staged
            .lock()
            .expect("staged lock")
            .insert(staged.ino, staged);
    }

    /// The stage of `ino`, with one more handle counted, taken under the table's lock: the
    /// last handle's release ([`StageTable::finish`]) checks the count under the same lock,
    /// so it cannot drop a stage an open has just found.
    pub fn open(&self, ino: Ino) -> Option<Arc<Staged>> {
        let map = self.staged.lock().expect("staged lock");
        let staged = map.get(&ino)?.clone();
        staged.opened();
        Some(staged)
    }

    /// Put a new stage in the table, unless another open put one there first; either way the
    /// stage of the inode, with a handle counted (as `open`).
    pub fn adopt_opened(&self, staged: Arc<Staged>) -> Arc<Staged> {
        let mut map = self.staged.lock().expect("staged lock");
        let staged = map.entry(staged.ino).or_insert(staged).clone();
        staged.opened();
        staged
    }

    /// Throw away a stage that was never adopted (its fill failed).
    pub fn abandon(&self, staged: &Staged) {
        self.spool.remove(staged.id);
    }

    /// Take `staged` out of the table if it is still the stage of its inode.
    fn take_out(&self, staged: &Arc<Staged>) {
        let mut map = self.staged.lock().expect("staged lock");
        if map.get(&staged.ino).is_some_and(|s| Arc::ptr_eq(s, staged)) {
            map.remove(&staged.ino);
        }
    }

    /// Start a change of the stage without touching the disk, when its record already says it
    /// is being written; `None` when the record must be saved first ([`StageTable::note_change`]).
    pub fn try_note_change(&self, staged: &Staged) -> Option<()> {
        let record = staged.record.try_lock().ok()?;
        if record.state != UploadState::Writing || !staged.is_journaled() {
            return None;
        }
        staged.begin_change();
        Some(())
    }

    /// Start a change of the stage: count it, and make sure a journal record in the spool
    /// says the stage is being written before its bytes change. Both happen under the record's
    /// lock, so an upload that just finished cannot drop the record in between. Blocks on the
    /// disk when the record must be saved.
    pub fn note_change(&self, staged: &Staged) -> FsResult<()> {
        let mut record = staged.record.lock().expect("record lock");
        staged.begin_change();
        if record.state != UploadState::Writing || !staged.is_journaled() {
            record.state = UploadState::Writing;
            self.save_locked(staged, &record)
                .map_err(|e| FsError::io("writing the journal record", e))?;
        }
        Ok(())
    }

    /// Write `record`, the locked journal record of `staged`, to the spool.
    pub fn save_locked(&self, staged: &Staged, record: &Record) -> io::Result<()> {
        let mut copy = record.clone();
        copy.size = staged.size();
        copy.touch();
        self.spool.save(&copy)?;
        staged.journaled(true);
        Ok(())
    }

    /// Change the journal record of `staged` and save it (blocks on the disk).
    pub fn journal(&self, staged: &Staged, change: impl FnOnce(&mut Record)) -> io::Result<()> {
        let mut record = staged.record.lock().expect("record lock");
        change(&mut record);
        self.save_locked(staged, &record)
    }

    /// [`StageTable::journal`] on the blocking pool.
    pub async fn journal_async(
        self: &Arc<Self>,
        staged: &Arc<Staged>,
        change: impl FnOnce(&mut Record) + Send + 'static,
    ) -> FsResult<()> {
        let (stages, staged) = (self.clone(), staged.clone());
        blocking("writing the journal record", move || {
            stages
                .journal(&staged, change)
                .map_err(|e| FsError::io("writing the journal record", e))
        })
        .await
    }

    /// Save the record of `staged` in `state`. A stage left pending or failed must outlive the
    /// mount and a machine restart: it is synced to disk first. Blocks on the disk; failures
    /// are logged, since the state is best kept even when the disk refuses.
    pub fn set_state(&self, staged: &Staged, state: UploadState, reason: Option<String>) {
        let synced = match state {
            UploadState::Writing => false,
            UploadState::Pending | UploadState::Failed => match staged.sync() {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!("syncing the stage of {}: {e}", staged.snapshot().shown);
                    false
                }
            },
        };
        let saved = self.journal(staged, |record| {
            record.state = state;
            if reason.is_some() {
                record.reason = reason;
            }
            if synced {
                record.unsynced_boot = None;
            }
        });
        if let Err(e) = saved {
            tracing::error!(
                "writing the journal record of {}: {e}",
                staged.snapshot().shown
            );
        }
    }

    /// [`StageTable::set_state`] on the blocking pool.
    pub async fn set_state_async(
        self: &Arc<Self>,
        staged: &Arc<Staged>,
        state: UploadState,
        reason: Option<String>,
    ) {
        let (stages, staged) = (self.clone(), staged.clone());
        let _ = blocking("saving an upload's state", move || {
            stages.set_state(&staged, state, reason);
            Ok(())
        })
        .await;
    }

    /// The server has the stage's bytes and nobody holds it: drop it.
    pub fn finish(&self, staged: &Arc<Staged>) {
        let mut map = self.staged.lock().expect("staged lock");
        if staged.handles() > 0 || staged.dirty() {
            return;
        }
        if map.get(&staged.ino).is_some_and(|s| Arc::ptr_eq(s, staged)) {
            map.remove(&staged.ino);
        }
        drop(map);
        self.spool.remove(staged.id);
    }

    /// Drop a stage that must not be uploaded (a write into it failed, or the file was
    /// removed): out of the table and out of the spool.
    pub fn discard(&self, staged: &Arc<Staged>) {
        self.take_out(staged);
        self.spool.remove(staged.id);
    }

    /// A staged file was removed: it is never uploaded again; open handles keep its bytes.
    pub fn unlink(&self, staged: &Arc<Staged>) {
        staged.unlink();
        self.discard(staged);
    }

    /// The server has every change of the stage: its record goes (the stage stays while
    /// handles read it).
    pub fn drop_record(&self, staged: &Staged) {
        self.spool.drop_record(staged.id);
        staged.journaled(false);
    }

    /// Every file the journal says waits (staged and not on the server yet), with its record
    /// and its stage's path, for `xnatfs status`. A stage kept only to serve reads (the server
    /// has its bytes) has no record and does not wait.
    pub fn records_with_stages(&self) -> Vec<(Record, std::path::PathBuf)> {
        let mut out: Vec<(Record, std::path::PathBuf)> = self
            .all()
            .iter()
            .filter(|s| s.is_journaled())
            .map(|s| (s.snapshot(), s.path.clone()))
            .collect();
        out.sort_by_key(|(r, _)| r.id);
        out
    }
}
