//! The write path: files written under a resource are staged on local disk and uploaded when
//! they are closed; `mkdir`, `rm`, `rmdir` and `mv` change the archive.
//!
//! - `place`: where a file goes on the server, and which names it may have;
//! - `spool`: the spool folder, a stage file and a journal record per file;
//! - `stage`: one staged file (reads and writes at offsets, change counters);
//! - `stages`: the table of staged files and the saving of their records;
//! - `upload`: the uploader: a stage's upload, its check against the server's listing, and
//!   the background retries of failed uploads;
//! - `recovery`: the stages an earlier mount left, put back at the next mount;
//! - `objects`: `mkdir`, `unlink` and `rmdir` as XNAT requests;
//! - `moves`: `mv`, local for files not uploaded yet, upload-then-delete otherwise.
//!
//! A file's stage is keyed by its inode, so every handle on the file (duplicated descriptors,
//! another process, a reader) sees the same bytes, as on a local filesystem. The upload runs
//! from `flush` (every `close`) when the stage has changes the server lacks; its error is the
//! error `close` returns. A failed upload stays in the spool and is retried in the background.
//! Work that waits on the disk (journal saves, syncs, hashing a stage) runs on the blocking
//! pool, never on the async threads or the FUSE session's.

mod digest;
mod moves;
mod objects;
mod place;
mod recovery;
pub mod spool;
pub use spool::Space;
pub mod stage;
mod stages;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use place::{check_file_name, file_place, raw_name, staged_node, Place};
use spool::{Record, Spool, UploadState};
use stage::Staged;
use stages::{blocking, StageTable};
use upload::Uploader;

use super::error::{FsError, FsResult};
use super::inode::{Ino, Inode};
use super::namespace::Namespace;
use super::node::Node;
use super::read::{FileVersion, ReadEngine};
use crate::xnat::{Backend, FileAddr};

/// How much of a file is copied into its stage per read.
const FILL_CHUNK: u32 = 1 << 20;

/// The longest one upload attempt may take (plus a second per MiB), unless configured.
pub const DEFAULT_UPLOAD_DEADLINE: Duration = Duration::from_secs(300);

/// What the write path is set up with.
#[derive(Clone, Debug)]
pub struct WriteConfig {
    /// Deleting server data (`rm`, `rmdir`, the source of `mv`) is allowed.
    pub allow_delete: bool,
    /// The xsiType `mkdir` gives a new experiment.
    pub session_type: String,
    /// The longest wait between two background retries of a failed upload.
    pub retry_max: Duration,
    /// The longest one upload attempt may take (sending, then checking the listing), plus a
    /// second per MiB of the file: a server that takes the body a byte at a time, or holds
    /// the answer, cannot keep a `close` waiting longer.
    pub upload_deadline: Duration,
}

impl Default for WriteConfig {
    fn default() -> Self {
        WriteConfig {
            allow_delete: false,
            session_type: "xnat:mrSessionData".into(),
            retry_max: Duration::from_secs(60),
            upload_deadline: DEFAULT_UPLOAD_DEADLINE,
        }
    }
}

/// Entries that left the tree without the kernel asking (a new file whose stage was thrown
/// away): the kernel must drop its cached entries `names` of directory `dir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gone {
    pub dir: Ino,
    pub names: Vec<String>,
}

pub struct Writes {
    namespace: Arc<Namespace>,
    backend: Arc<dyn Backend>,
    /// Fetches the server's bytes of a file opened for writing without truncation.
    reads: Arc<ReadEngine>,
    stages: Arc<StageTable>,
    uploader: Arc<Uploader>,
    config: WriteConfig,
    /// Held while a stage is made for a file, so two opens make one stage.
    opening: tokio::sync::Mutex<()>,
}

impl Writes {
    pub fn new(
        namespace: Arc<Namespace>,
        backend: Arc<dyn Backend>,
        reads: Arc<ReadEngine>,
        spool: Spool,
        config: WriteConfig,
    ) -> Arc<Writes> {
        let stages = Arc::new(StageTable::new(spool));
        let uploader = Arc::new(Uploader::new(
            backend.clone(),
            namespace.clone(),
            stages.clone(),
            config.retry_max,
            config.upload_deadline,
        ));
        Arc::new(Writes {
            namespace,
            backend,
            reads,
            stages,
            uploader,
            config,
            opening: tokio::sync::Mutex::new(()),
        })
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.stages.spool().dir().to_path_buf()
    }

    /// (free, total) bytes of the spool's disk.
    pub fn space(&self) -> spool::Space {
        self.stages.spool().space()
    }

    pub fn staged(&self, ino: Ino) -> Option<Arc<Staged>> {
        self.stages.get(ino)
    }

    /// Every staged file's journal state and where its bytes are, in journal order.
    pub fn uploads_now(&self) -> Vec<(Record, std::path::PathBuf)> {
        self.stages.records_with_stages()
    }

    /// Put the uploads an earlier mount left in the spool back in the tree, and start the
    /// background retries. Call once, inside the runtime, before serving. Returns how many
    /// files the spool held, and the retries' task.
    pub fn start(&self) -> (usize, tokio::task::AbortHandle) {
        let found = recovery::recover(&self.stages, &self.namespace);
        let retries = tokio::spawn(self.uploader.clone().run_retries());
        self.uploader.wake();
        (found, retries.abort_handle())
    }

    /// A new file `name` in directory `dir`, staged and open.
    pub async fn create(&self, dir: &Inode, name: &[u8]) -> FsResult<(Arc<Inode>, Arc<Staged>)> {
        let place = Place::for_files(&dir.node)?;
        let raw = raw_name(name)?;
        check_file_name(&raw)?;
        let shown = String::from_utf8_lossy(name).into_owned();
        let file = FileAddr {
            owner: place.owner.clone(),
            resource: place.resource.clone(),
            path: place.path(&raw),
        };
        let shown_path = format!("{}/{shown}", self.namespace.shown_path(dir.ino));
        let stages = self.stages.clone();
        let to = file.clone();
        let (record, data) = blocking("making a stage", move || {
            let spool = stages.spool();
            let (id, data) = spool
                .create_stage()
                .map_err(|e| FsError::io("making a stage in the spool", e))?;
            let record = Record::new(id, to.owner, to.resource, to.path, shown_path, false);
            if let Err(e) = spool.save(&record) {
                spool.remove(id);
                return Err(FsError::io("writing the journal record", e));
            }
            Ok((record, data))
        })
        .await?;
        let id = record.id;
        let (node, info) = staged_node(file, id, 0);
        let inode = self.namespace.add_local(dir, &shown, node, info);
        let path = self.stages.spool().data_path(id);
        let staged = Arc::new(
            Staged::new(record, inode.ino, path, data, true, false)
                .map_err(|e| FsError::io("reading the new stage", e))?,
        );
        staged.journaled(true);
        staged.opened();
        self.stages.insert(staged.clone());
        Ok((inode, staged))
    }

    /// Open the existing file `inode` for writing: its stage, made from the server's bytes
    /// (or empty when `truncate`) if it has none yet.
    pub async fn open_existing(&self, inode: &Inode, truncate: bool) -> FsResult<Arc<Staged>> {
        let staged = self.stage_for(inode, !truncate).await?;
        staged.hold(false);
        if truncate {
            if let Err(e) = self.truncate(&staged, 0).await {
                self.release(&staged).await;
                return Err(e);
            }
        }
        Ok(staged)
    }

    /// The stage of `inode`, made (and filled from the server when `fill`) if missing, with
    /// a handle counted on it.
    async fn stage_for(&self, inode: &Inode, fill: bool) -> FsResult<Arc<Staged>> {
        let _opening = self.opening.lock().await;
        if let Some(staged) = self.stages.open(inode.ino) {
            return Ok(staged);
        }
        let file = file_place(inode)?;
        let spool = self.stages.spool();
        let (id, data) = spool
            .create_stage()
            .map_err(|e| FsError::io("making a stage in the spool", e))?;
        let record = Record::new(
            id,
            file.owner,
            file.resource,
            file.path,
            self.namespace.shown_path(inode.ino),
            true,
        );
        let staged = Arc::new(
            Staged::new(record, inode.ino, spool.data_path(id), data, false, true)
                .map_err(|e| FsError::io("reading the new stage", e))?,
        );
        if fill {
            if let Err(e) = self.fill(&staged, inode).await {
                self.stages.abandon(&staged);
                return Err(e);
            }
        }
        Ok(self.stages.adopt_opened(staged))
    }

    /// Copy the server's bytes of `inode` into a fresh stage.
    async fn fill(&self, staged: &Staged, inode: &Inode) -> FsResult<()> {
        let Node::File { version, .. } = &inode.node else {
            return Err(FsError::is_dir());
        };
        let handle = self.reads.open(&FileVersion {
            uri: inode.uri.clone(),
            size: inode.size(),
            version: version.clone(),
            digest: inode.digest.clone(),
        });
        let mut offset = 0;
        loop {
            let bytes = handle.read(offset, FILL_CHUNK).await?;
            if bytes.is_empty() {
                break;
            }
            staged
                .fill_at(offset, &bytes)
                .map_err(|e| FsError::io("copying the file into its stage", e))?;
            offset += bytes.len() as u64;
            if handle.real_size().is_some_and(|size| offset >= size) {
                break;
            }
        }
        Ok(())
    }

    /// A write that needs no disk sync: `None` when the stage's record must be saved first,
    /// which [`Writes::write`] does off the caller's thread.
    pub fn write_now(&self, staged: &Staged, offset: u64, data: &[u8]) -> Option<FsResult<u32>> {
        self.stages.try_note_change(staged)?;
        Some(self.write_noted(staged, offset, data))
    }

    /// Write `data` at `offset` of the stage, saving its record first if it must be.
    pub async fn write(&self, staged: &Arc<Staged>, offset: u64, data: Vec<u8>) -> FsResult<u32> {
        let (stages, staged) = (self.stages.clone(), staged.clone());
        blocking("writing to the stage", move || {
            if let Err(e) = stages.note_change(&staged) {
                return Err(poison(&staged, e));
            }
            Writes::write_change(&staged, offset, &data)
        })
        .await
    }

    fn write_noted(&self, staged: &Staged, offset: u64, data: &[u8]) -> FsResult<u32> {
        Writes::write_change(staged, offset, data)
    }

    /// The bytes of a change already noted; a failure poisons the stage.
    fn write_change(staged: &Staged, offset: u64, data: &[u8]) -> FsResult<u32> {
        match staged.write_at(offset, data) {
            Ok(()) => Ok(data.len() as u32),
            Err(e) => Err(poison(staged, FsError::io("writing to the stage", e))),
        }
    }

    /// Cut or extend the stage to `size` bytes.
    pub async fn truncate(&self, staged: &Arc<Staged>, size: u64) -> FsResult<()> {
        let (stages, staged) = (self.stages.clone(), staged.clone());
        blocking("truncating the stage", move || {
            stages.note_change(&staged)?;
            staged
                .set_len(size)
                .map_err(|e| FsError::io("truncating the stage", e))
        })
        .await
    }

    /// Upload `staged` if the server lacks some of its changes (see [`Uploader::upload`]).
    pub async fn upload(&self, staged: &Arc<Staged>) -> FsResult<()> {
        self.uploader.upload(staged).await
    }

    /// A handle on a staged file closed. The last one leaves a stage the server has to be
    /// removed, and a stage with changes the server lacks to the background retries; a stage
    /// that must not be uploaded goes, and a new file with it (what the kernel must forget).
    pub async fn release(&self, staged: &Arc<Staged>) -> Option<Gone> {
        if staged.closed() > 0 || staged.is_unlinked() {
            return None;
        }
        if staged.poisoned() {
            self.stages.discard(staged);
            return self.forget_new_file(staged);
        }
        if staged.dirty() {
            if staged.is_held() {
                // Put back by this mount unfinished, and only read since: it stays as it is.
                return None;
            }
            if staged.state() == UploadState::Writing {
                // Closed without a flush that uploaded (a failed write, an interrupted close).
                self.stages
                    .set_state_async(staged, UploadState::Pending, None)
                    .await;
            }
            self.uploader.wake();
            return None;
        }
        self.stages.finish(staged);
        None
    }

    /// A new file that never reached the server leaves the tree with its stage.
    fn forget_new_file(&self, staged: &Staged) -> Option<Gone> {
        if staged.on_server() {
            return None;
        }
        let inode = self.namespace.inode(staged.ino).ok()?;
        let dir = self.namespace.inode(inode.parent).ok()?;
        let record = staged.snapshot();
        let name = record.path.rsplit('/').next().unwrap_or(&record.path);
        let typed = record.shown.rsplit('/').next().unwrap_or_default();
        let names = vec![crate::fs::names::encode(name), typed.to_string()];
        for shown in &names {
            self.namespace.remove_entry(&dir, shown);
        }
        Some(Gone {
            dir: dir.ino,
            names,
        })
    }

    fn check_delete(&self, what: &str) -> FsResult<()> {
        if self.config.allow_delete {
            return Ok(());
        }
        Err(FsError::warn(
            libc::EPERM,
            format!(
                "refused to delete {what} on the server: deleting server data needs the mount \
                 option --allow-delete (-o allow_delete)"
            ),
        ))
    }
}

/// A write into the stage failed: the file must never be uploaded, since the server must not
/// get a file with a hole where the write should have gone. The error says so.
fn poison(staged: &Staged, e: FsError) -> FsError {
    staged.poison();
    let mut e = e.context(format!(
        "a write to {} failed; the file will not be uploaded",
        staged.snapshot().shown
    ));
    e.level = tracing::Level::ERROR;
    e
}
