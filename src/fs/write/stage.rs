//! One staged file: the local copy a file is written to before it is uploaded.
//!
//! Writes land in the stage file at their offsets; reads of a staged file are served from it, so
//! a file is readable while it is written and while its upload waits. Three counters tell
//! whether the server is behind: `begun` counts changes started, `done` the changes whose bytes
//! are in the stage, `uploaded` the count of done changes the server has. An upload reads the
//! stage after it noted `done`, so every change it counts is in what it sends; a change still
//! in flight keeps the stage dirty (`begun` is ahead of `uploaded`) until a later upload. A
//! write that fails (no space left on the spool disk, a disk error) poisons the stage: it is
//! never uploaded, because the server must not get a file with a hole where the failed write
//! should have gone.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

use super::digest::StageDigest;
use super::spool::{Record, UploadState};
use crate::fs::inode::Ino;

pub struct Staged {
    pub id: u64,
    pub ino: Ino,
    pub path: PathBuf,
    file: File,
    /// The MD5 of what was written, followed as in-order writes land.
    digest: Arc<StageDigest>,
    size: AtomicU64,
    begun: AtomicU64,
    done: AtomicU64,
    uploaded: AtomicU64,
    /// Open handles (of any mode) on the file while it is staged.
    handles: AtomicUsize,
    /// A write failed (no space left, a disk error): never upload this stage.
    poisoned: AtomicBool,
    /// The server holds a version of this file (it was there before, or an upload landed).
    on_server: AtomicBool,
    /// A journal record of this stage is in the spool.
    journaled: AtomicBool,
    /// The file was removed (`rm`): never upload it again.
    unlinked: AtomicBool,
    /// Put back by a new mount while it was still being written (or from a stage that may be
    /// torn): only a writer's close uploads it, never the release of a reader that checked it.
    held: AtomicBool,
    pub record: Mutex<Record>,
    /// Uploads of this stage, one at a time.
    pub upload: tokio::sync::Mutex<()>,
    /// When the background retry may try again.
    pub retry_at: Mutex<Option<Instant>>,
}

impl Staged {
    /// `dirty`: the stage differs from the server (a new file, a truncated one).
    pub fn new(
        record: Record,
        ino: Ino,
        path: PathBuf,
        file: File,
        dirty: bool,
        on_server: bool,
    ) -> io::Result<Staged> {
        let size = file.metadata()?.len();
        let digest = StageDigest::new(Arc::new(file.try_clone()?), size);
        Ok(Staged {
            id: record.id,
            ino,
            path,
            file,
            digest,
            size: AtomicU64::new(size),
            begun: AtomicU64::new(u64::from(dirty)),
            done: AtomicU64::new(u64::from(dirty)),
            uploaded: AtomicU64::new(0),
            handles: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            on_server: AtomicBool::new(on_server),
            journaled: AtomicBool::new(false),
            unlinked: AtomicBool::new(false),
            held: AtomicBool::new(false),
            record: Mutex::new(record),
            upload: tokio::sync::Mutex::new(()),
            retry_at: Mutex::new(None),
        })
    }

    /// When the stage was last written (its file's mtime).
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        self.file.metadata().ok()?.modified().ok()
    }

    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub fn read_at(&self, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        let end = self.size().min(offset.saturating_add(u64::from(len)));
        let mut buf = vec![0; end.saturating_sub(offset) as usize];
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// Count a change as started; the caller then makes it with [`Staged::write_at`] or
    /// [`Staged::set_len`], which count it as done.
    pub fn begin_change(&self) {
        self.begun.fetch_add(1, Ordering::AcqRel);
    }

    pub fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let written = self.file.write_all_at(data, offset);
        if written.is_err() {
            // Some of the bytes may be in, some not: the stage no longer holds what the
            // program wrote, and must never reach the server.
            self.poison();
            self.digest.changed();
        } else {
            self.size
                .fetch_max(offset + data.len() as u64, Ordering::AcqRel);
            self.digest.wrote(offset, data.len() as u64);
        }
        self.done.fetch_add(1, Ordering::AcqRel);
        written
    }

    pub fn set_len(&self, size: u64) -> io::Result<()> {
        if size != self.size() {
            self.digest.changed();
        }
        let cut = self.file.set_len(size);
        if cut.is_ok() {
            self.size.store(size, Ordering::Release);
        }
        self.done.fetch_add(1, Ordering::AcqRel);
        cut
    }

    /// Make the stage's bytes durable on the local disk.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// The count of changes in the stage now, to hand to [`Staged::mark_uploaded`] once the
    /// bytes read after this call landed.
    pub fn generation(&self) -> u64 {
        self.done.load(Ordering::Acquire)
    }

    pub fn mark_uploaded(&self, generation: u64) {
        self.uploaded.fetch_max(generation, Ordering::AcqRel);
        self.on_server.store(true, Ordering::Release);
    }

    /// The stage holds changes the server does not have.
    pub fn dirty(&self) -> bool {
        self.begun.load(Ordering::Acquire) != self.uploaded.load(Ordering::Acquire)
    }

    pub fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    pub fn poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub fn on_server(&self) -> bool {
        self.on_server.load(Ordering::Acquire)
    }

    pub fn unlink(&self) {
        self.unlinked.store(true, Ordering::Release);
    }

    pub fn is_unlinked(&self) -> bool {
        self.unlinked.load(Ordering::Acquire)
    }

    /// Count a change without writing (a stage about to go to a new place).
    pub fn touch(&self) {
        self.begun.fetch_add(1, Ordering::AcqRel);
        self.done.fetch_add(1, Ordering::AcqRel);
    }

    /// Keep the stage from the background uploads until a writer opens it.
    pub fn hold(&self, yes: bool) {
        self.held.store(yes, Ordering::Release);
    }

    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }

    pub fn journaled(&self, yes: bool) {
        self.journaled.store(yes, Ordering::Release);
    }

    pub fn is_journaled(&self) -> bool {
        self.journaled.load(Ordering::Acquire)
    }

    /// Copy the server's bytes in (not a change: the server has them).
    pub fn fill_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.digest.changed();
        self.file.write_all_at(data, offset)?;
        self.size
            .fetch_max(offset + data.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    /// The MD5 state of the stage's first bytes, hashed as in-order writes landed, if its
    /// `size` bytes are what was written in order; the upload hashes the rest (see
    /// `digest`). Blocking (briefly).
    pub fn take_prefix(&self, size: u64) -> Option<crate::xnat::HashedPrefix> {
        self.digest.take_prefix(size)
    }

    pub fn opened(&self) {
        self.handles.fetch_add(1, Ordering::AcqRel);
    }

    /// One handle fewer; returns how many are left.
    pub fn closed(&self) -> usize {
        let before = self
            .handles
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(1))
            })
            .unwrap_or(0);
        before.saturating_sub(1)
    }

    pub fn handles(&self) -> usize {
        self.handles.load(Ordering::Acquire)
    }

    pub fn state(&self) -> UploadState {
        self.record.lock().expect("record lock").state
    }

    pub fn snapshot(&self) -> Record {
        let mut record = self.record.lock().expect("record lock").clone();
        record.size = self.size();
        record
    }
}
