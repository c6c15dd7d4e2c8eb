//! The write path: files written under a resource are staged on local disk and uploaded when
//! they are closed; `mkdir`, `rm`, `rmdir` and `mv` change the archive.
//!
//! - `journal`: the spool folder, a stage file and a journal record per file;
//! - `stage`: one staged file (reads and writes at offsets, change counters);
//! - `upload`: the upload of a stage, its check against the server's listing, and the
//!   background retries of failed uploads;
//! - `objects`: `mkdir`, `unlink` and `rmdir` as XNAT requests;
//! - `rename`: `mv`, local for files not uploaded yet, upload-then-delete otherwise.
//!
//! A file's stage is keyed by its inode, so every handle on the file (duplicated descriptors,
//! another process, a reader) sees the same bytes, as on a local filesystem. The upload runs
//! from `flush` (every `close`) when the stage has changes the server lacks; its error is the
//! error `close` returns. A failed upload stays in the spool and is retried in the background.

pub mod journal;
mod objects;
mod rename;
pub mod stage;
mod upload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use journal::{Record, Spool, UploadState};
use stage::Staged;

use super::error::{FsError, FsResult};
use super::inode::{Ino, Inode, InodeInfo};
use super::names;
use super::namespace::Namespace;
use super::node::{Node, Owner};
use super::read::ReadEngine;
use crate::xnat::XnatClient;

/// What the write path is set up with.
#[derive(Clone, Debug)]
pub struct WriteConfig {
    /// Deleting server data (`rm`, `rmdir`, the source of `mv`) is allowed.
    pub allow_delete: bool,
    /// The xsiType `mkdir` gives a new experiment.
    pub session_type: String,
    /// The longest wait between two background retries of a failed upload.
    pub retry_max: Duration,
}

impl Default for WriteConfig {
    fn default() -> Self {
        WriteConfig {
            allow_delete: false,
            session_type: "xnat:mrSessionData".into(),
            retry_max: Duration::from_secs(60),
        }
    }
}

pub struct Writes {
    namespace: Arc<Namespace<XnatClient>>,
    client: XnatClient,
    /// Fetches the server's bytes of a file opened for writing without truncation.
    reads: Arc<ReadEngine>,
    spool: Spool,
    config: WriteConfig,
    staged: Mutex<HashMap<Ino, Arc<Staged>>>,
    /// Held while a stage is made for a file, so two opens make one stage.
    opening: tokio::sync::Mutex<()>,
    /// Wakes the background retries.
    wake: tokio::sync::Notify,
    /// Told (directory, name) of an entry that went away without the kernel asking.
    gone: std::sync::OnceLock<EntryGone>,
}

/// Drops the kernel's cached entry `name` of directory `dir`.
pub type EntryGone = Box<dyn Fn(Ino, &str) + Send + Sync>;

/// Where a file goes: its resource and its path inside.
struct Place {
    owner: Owner,
    resource: String,
    /// The folder inside the resource (`""` for the resource itself).
    folder: String,
}

impl Place {
    /// The place a directory's files go; EPERM where XNAT keeps no files.
    fn for_files(dir: &Node) -> FsResult<Place> {
        Self::of(dir).ok_or_else(|| {
            FsError::new(
                libc::EPERM,
                "files can only go inside a resource folder (…/SCAN/RESOURCE/)",
            )
        })
    }

    /// The place a directory's files go, if files can go there.
    fn of(dir: &Node) -> Option<Place> {
        match dir {
            Node::Resource { owner, resource } => Some(Place {
                owner: owner.clone(),
                resource: resource.clone(),
                folder: String::new(),
            }),
            Node::Folder {
                owner,
                resource,
                path,
            } => Some(Place {
                owner: owner.clone(),
                resource: resource.clone(),
                folder: path.clone(),
            }),
            _ => None,
        }
    }

    fn path(&self, raw: &str) -> String {
        if self.folder.is_empty() {
            raw.to_string()
        } else {
            format!("{}/{raw}", self.folder)
        }
    }
}

/// A name a user typed, as the server will hold it.
fn raw_name(name: &[u8]) -> FsResult<String> {
    let raw = names::decode_str(name)
        .ok_or_else(|| FsError::new(libc::EINVAL, "not a name XNAT can hold (not UTF-8)"))?;
    if raw.is_empty() || raw.contains('/') || raw.contains('\0') {
        return Err(FsError::new(
            libc::EINVAL,
            format!("not a valid name: {raw:?}"),
        ));
    }
    Ok(raw)
}

/// XNAT refuses to catalogue these names (reference §2.5).
fn check_file_name(raw: &str) -> FsResult<()> {
    if raw.ends_with("_catalog.xml") {
        return Err(FsError::new(
            libc::EINVAL,
            format!(
                "XNAT cannot store a file named {raw:?}: names ending in _catalog.xml are its own"
            ),
        ));
    }
    Ok(())
}

/// Where a file is on the server: its owner, its resource and its path in the resource.
fn file_place(inode: &Inode) -> FsResult<(&Owner, &String, &String)> {
    match &inode.node {
        Node::File {
            owner,
            resource,
            path,
            ..
        } => Ok((owner, resource, path)),
        _ => Err(FsError::is_dir()),
    }
}

/// The tree's node, and its attributes, of a file of `size` bytes held in stage `id`.
fn staged_node(
    owner: Owner,
    resource: String,
    path: String,
    id: u64,
    size: u64,
) -> (Node, InodeInfo) {
    let node = Node::File {
        owner,
        resource,
        path,
        version: format!("stage:{id}"),
    };
    let info = InodeInfo {
        size,
        uri: node.path().unwrap_or_default(),
        ..InodeInfo::default()
    };
    (node, info)
}

fn io_error(what: &str, e: std::io::Error) -> FsError {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    tracing::warn!("{what}: {e}");
    FsError::new(errno, format!("{what}: {e}"))
}

impl Writes {
    pub fn new(
        namespace: Arc<Namespace<XnatClient>>,
        client: XnatClient,
        reads: Arc<ReadEngine>,
        spool: Spool,
        config: WriteConfig,
    ) -> Arc<Writes> {
        Arc::new(Writes {
            namespace,
            client,
            reads,
            spool,
            config,
            staged: Mutex::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            gone: std::sync::OnceLock::new(),
        })
    }

    /// Call `tell` with each entry that leaves the tree without the kernel asking (a new file
    /// whose stage was thrown away). Only the first call counts.
    pub fn on_entry_gone(&self, tell: EntryGone) {
        let _ = self.gone.set(tell);
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.spool.dir().to_path_buf()
    }

    /// (free, total) bytes of the spool's disk.
    pub fn space(&self) -> (u64, u64) {
        self.spool.space()
    }

    pub fn staged(&self, ino: Ino) -> Option<Arc<Staged>> {
        self.staged.lock().expect("staged lock").get(&ino).cloned()
    }

    fn stages(&self) -> Vec<Arc<Staged>> {
        self.staged
            .lock()
            .expect("staged lock")
            .values()
            .cloned()
            .collect()
    }

    /// Put the uploads a previous mount left in the spool back in the tree, and queue them.
    pub fn recover(&self) -> usize {
        let records = self.spool.recover();
        let count = records.len();
        for mut record in records {
            let path = self.spool.data_path(record.id);
            let file = match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(
                        "journal record {} names stage {}, which cannot be opened: {e}",
                        record.id,
                        path.display()
                    );
                    continue;
                }
            };
            let (node, info) = staged_node(
                record.owner.clone(),
                record.resource.clone(),
                record.path.clone(),
                record.id,
                file.metadata().map(|m| m.len()).unwrap_or(0),
            );
            let inode = self.namespace.add_local_file(
                &record.owner,
                &record.resource,
                &record.path,
                node,
                info,
            );
            if record.state != UploadState::Writing {
                record.state = UploadState::Pending;
            }
            let survived = record.stage_survived();
            if !survived {
                record.state = UploadState::Writing;
                record.reason = Some(
                    "the machine restarted while this file was being uploaded, before its bytes \
                     were safe on disk: check it, then open and close it to upload it, or \
                     remove it"
                        .into(),
                );
                if let Err(e) = self.spool.save(&record) {
                    tracing::error!("writing the journal record of {}: {e}", record.shown);
                }
            }
            let replace = record.replace;
            let pending = record.state == UploadState::Pending;
            let staged = match Staged::new(record, inode.ino, path, file, true, replace) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    tracing::error!("stage of inode {}: {e}", inode.ino);
                    continue;
                }
            };
            staged.journaled(true);
            if pending {
                tracing::info!(
                    "upload of {} left by an earlier mount: queued",
                    staged.snapshot().shown
                );
            } else if !survived {
                tracing::warn!(
                    "{} was being uploaded when the machine restarted, from a stage not yet \
                     synced; kept in the spool, not uploaded (check it, then open and close it \
                     to upload it)",
                    staged.snapshot().shown
                );
            } else {
                tracing::warn!(
                    "{} was still open for writing when the last mount ended; kept in the spool, \
                     not uploaded (open and close it to upload it)",
                    staged.snapshot().shown
                );
            }
            self.staged
                .lock()
                .expect("staged lock")
                .insert(inode.ino, staged);
        }
        self.wake.notify_one();
        count
    }

    /// A new file `name` in directory `dir`, staged and open.
    pub fn create(&self, dir: &Inode, name: &[u8]) -> FsResult<(Arc<Inode>, Arc<Staged>)> {
        let place = Place::for_files(&dir.node)?;
        let raw = raw_name(name)?;
        check_file_name(&raw)?;
        let shown = String::from_utf8_lossy(name).into_owned();
        let path = place.path(&raw);
        let (id, file) = self
            .spool
            .create_stage()
            .map_err(|e| io_error("making a stage in the spool", e))?;
        let record = Record::new(
            id,
            place.owner.clone(),
            place.resource.clone(),
            path.clone(),
            format!("{}/{shown}", self.namespace.shown_path(dir.ino)),
            false,
        );
        if let Err(e) = self.spool.save(&record) {
            self.spool.remove(id);
            return Err(io_error("writing the journal record", e));
        }
        let (node, info) = staged_node(place.owner, place.resource, path, id, 0);
        let inode = self.namespace.add_local(dir, &shown, node, info);
        let data = self.spool.data_path(id);
        let staged = Arc::new(
            Staged::new(record, inode.ino, data, file, true, false)
                .map_err(|e| io_error("reading the new stage", e))?,
        );
        staged.journaled(true);
        staged.opened();
        self.staged
            .lock()
            .expect("staged lock")
            .insert(inode.ino, staged.clone());
        Ok((inode, staged))
    }

    /// Held while a stage is made for an existing file (see [`Writes::stage_existing`]).
    pub async fn opening(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.opening.lock().await
    }

    /// The stage of `inode`, made empty if there is none yet: the caller fills it with the
    /// server's bytes unless it truncates (`fill` says which). Call with [`Writes::opening`]
    /// held.
    pub fn stage_existing(&self, inode: &Inode) -> FsResult<(Arc<Staged>, bool)> {
        if let Some(staged) = self.staged(inode.ino) {
            return Ok((staged, false));
        }
        let (owner, resource, path) = file_place(inode)?;
        let (id, file) = self
            .spool
            .create_stage()
            .map_err(|e| io_error("making a stage in the spool", e))?;
        let record = Record::new(
            id,
            owner.clone(),
            resource.clone(),
            path.clone(),
            self.namespace.shown_path(inode.ino),
            true,
        );
        let data = self.spool.data_path(id);
        let staged = Staged::new(record, inode.ino, data, file, false, true)
            .map_err(|e| io_error("reading the new stage", e))?;
        Ok((Arc::new(staged), true))
    }

    /// Make a filled (or deliberately empty) stage the file's stage.
    pub fn adopt(&self, staged: Arc<Staged>) -> Arc<Staged> {
        let mut map = self.staged.lock().expect("staged lock");
        map.entry(staged.ino).or_insert(staged).clone()
    }

    /// Throw away a stage that was never adopted (its fill failed).
    pub fn abandon(&self, staged: &Staged) {
        self.spool.remove(staged.id);
    }

    /// Start a change of the stage: count it, and make sure a journal record in the spool
    /// says the stage is being written before its bytes change. Both happen under the record's
    /// lock, so an upload that just finished cannot drop the record in between.
    fn note_change(&self, staged: &Staged) -> FsResult<()> {
        let mut record = staged.record.lock().expect("record lock");
        staged.begin_change();
        if record.state != UploadState::Writing || !staged.is_journaled() {
            record.state = UploadState::Writing;
            self.save_locked(staged, &record)
                .map_err(|e| io_error("writing the journal record", e))?;
        }
        Ok(())
    }

    /// Write `record`, the locked journal record of `staged`, to the spool. Saves of one
    /// record happen under its lock, so they never cross and the newest state is the one kept.
    fn save_locked(&self, staged: &Staged, record: &Record) -> std::io::Result<()> {
        let mut copy = record.clone();
        copy.size = staged.size();
        copy.touch();
        self.spool.save(&copy)?;
        staged.journaled(true);
        Ok(())
    }

    /// Change the journal record of `staged` and save it.
    fn journal(&self, staged: &Staged, change: impl FnOnce(&mut Record)) -> std::io::Result<()> {
        let mut record = staged.record.lock().expect("record lock");
        change(&mut record);
        self.save_locked(staged, &record)
    }

    pub fn write(&self, staged: &Staged, offset: u64, data: &[u8]) -> FsResult<u32> {
        let written = self.note_change(staged).and_then(|()| {
            staged
                .write_at(offset, data)
                .map_err(|e| io_error("writing to the stage", e))
        });
        if let Err(e) = written {
            staged.poison();
            tracing::error!(
                "a write to {} failed ({}); the file will not be uploaded",
                staged.snapshot().shown,
                e.message
            );
            return Err(e);
        }
        Ok(data.len() as u32)
    }

    pub fn truncate(&self, staged: &Staged, size: u64) -> FsResult<()> {
        self.note_change(staged)?;
        staged
            .set_len(size)
            .map_err(|e| io_error("truncating the stage", e))
    }

    /// A handle on a staged file closed. The last one leaves a stage the server has to be
    /// removed, and a stage with changes the server lacks to the background retries.
    pub fn release(&self, staged: &Arc<Staged>) {
        if staged.closed() > 0 || staged.is_unlinked() {
            return;
        }
        if staged.poisoned() {
            self.discard(staged);
            return;
        }
        if staged.dirty() {
            if staged.state() == UploadState::Writing {
                // Closed without a flush that uploaded (a failed write, an interrupted close).
                self.set_state(staged, UploadState::Pending, None);
            }
            self.wake.notify_one();
            return;
        }
        self.finish(staged);
    }

    /// The server has the stage's bytes and nobody holds it: drop it.
    fn finish(&self, staged: &Arc<Staged>) {
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

    /// Drop a stage that must not be uploaded (a write into it failed for want of space, or
    /// the file was removed before it reached the server).
    fn discard(&self, staged: &Arc<Staged>) {
        {
            let mut map = self.staged.lock().expect("staged lock");
            if map.get(&staged.ino).is_some_and(|s| Arc::ptr_eq(s, staged)) {
                map.remove(&staged.ino);
            }
        }
        self.spool.remove(staged.id);
        if !staged.on_server() {
            // A new file that never reached the server: it goes from the tree too.
            if let Ok(inode) = self.namespace.inode(staged.ino) {
                let record = staged.snapshot();
                let name = record.path.rsplit('/').next().unwrap_or(&record.path);
                if let Ok(dir) = self.namespace.inode(inode.parent) {
                    let typed = record.shown.rsplit('/').next().unwrap_or_default();
                    for shown in [names::encode(name), typed.to_string()] {
                        self.namespace.remove_entry(&dir, &shown);
                        if let Some(tell) = self.gone.get() {
                            tell(dir.ino, &shown);
                        }
                    }
                }
            }
        }
    }

    /// Save the record of `staged` in `state`. A stage left pending or failed must outlive the
    /// mount and a machine restart: it is synced to disk first.
    fn set_state(&self, staged: &Staged, state: UploadState, reason: Option<String>) {
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

    fn check_delete(&self, what: &str) -> FsResult<()> {
        if self.config.allow_delete {
            return Ok(());
        }
        tracing::warn!(
            "refused to delete {what} on the server: deleting server data needs the mount option \
             --allow-delete (-o allow_delete)"
        );
        Err(FsError::new(
            libc::EPERM,
            format!("deleting {what} needs --allow-delete"),
        ))
    }
}
