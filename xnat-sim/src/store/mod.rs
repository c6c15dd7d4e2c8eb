//! Storage of an archive under a root directory:
//!
//! ```text
//! ROOT/archive.json   the metadata, rewritten atomically after each change
//! ROOT/blobs/NNNN     file bytes, named by blob number (never by user paths)
//! ROOT/tmp/           uploads and zips being written
//! ```

mod blobs;
mod persist;

pub use blobs::{BlobWriter, WrittenBlob};

use crate::model::Archive;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

pub struct Store {
    root: PathBuf,
    archive: RwLock<Archive>,
    /// Generation of the newest snapshot taken, and of the one on disk.
    generation: AtomicU64,
    saved: Mutex<u64>,
    /// While > 0 (inside `batch`), changes are not saved one by one.
    batching: AtomicU64,
}

impl Store {
    /// Opens (or creates) the storage at `root`, loading `archive.json` if present.
    pub fn open(root: &Path) -> io::Result<Store> {
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("tmp"))?;
        let archive = persist::load(&root.join("archive.json"))?.unwrap_or_default();
        Ok(Store {
            root: root.to_path_buf(),
            archive: RwLock::new(archive),
            generation: AtomicU64::new(0),
            saved: Mutex::new(0),
            batching: AtomicU64::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads the archive under a shared lock.
    pub fn read<R>(&self, f: impl FnOnce(&Archive) -> R) -> R {
        f(&self.archive.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Changes the archive under the exclusive lock, then saves it
    /// (unless inside [`Store::batch`], which saves once at its end).
    pub fn write<R>(&self, f: impl FnOnce(&mut Archive) -> R) -> io::Result<R> {
        let result = {
            let mut a = self.archive.write().unwrap_or_else(|e| e.into_inner());
            let r = f(&mut a);
            self.generation.fetch_add(1, Ordering::SeqCst);
            r
        };
        if self.batching.load(Ordering::SeqCst) == 0 {
            self.save()?;
        }
        Ok(result)
    }

    /// Runs many changes (populate, import) and saves once at the end.
    pub fn batch<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        self.batching.fetch_add(1, Ordering::SeqCst);
        let result = f();
        self.batching.fetch_sub(1, Ordering::SeqCst);
        self.save()?;
        result
    }

    /// Writes the archive if it changed since the last save.
    pub fn save(&self) -> io::Result<()> {
        let (snapshot, gen) = {
            let a = self.archive.read().unwrap_or_else(|e| e.into_inner());
            let gen = self.generation.load(Ordering::SeqCst);
            (serde_json::to_vec(&*a).map_err(io::Error::other)?, gen)
        };
        let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        if gen > *saved {
            persist::save(&self.root, &snapshot)?;
            *saved = gen;
        }
        Ok(())
    }

    pub fn blob_path(&self, blob: u64) -> PathBuf {
        self.root.join("blobs").join(format!("{blob:012}"))
    }

    /// A writer for new file bytes; `finish` gives its size and MD5.
    pub fn blob_writer(&self) -> io::Result<BlobWriter> {
        BlobWriter::new(&self.root.join("tmp"))
    }

    /// Moves finished bytes to blob `blob`.
    pub fn commit_blob(&self, written: WrittenBlob, blob: u64) -> io::Result<()> {
        written
            .temp
            .persist(self.blob_path(blob))
            .map(|_| ())
            .map_err(|e| e.error)
    }

    pub fn remove_blobs(&self, blobs: &[u64]) {
        for b in blobs {
            let _ = std::fs::remove_file(self.blob_path(*b));
        }
    }

    /// A scratch file in the storage's temp folder (deleted when dropped).
    pub fn scratch_file(&self) -> io::Result<std::fs::File> {
        tempfile::tempfile_in(self.root.join("tmp"))
    }
}
