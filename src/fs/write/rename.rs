//! `mv` of a file, and opening an existing file for writing.
//!
//! XNAT has no rename. A file that has not reached the server yet moves locally: its stage
//! just gets a new destination. A file the server has is uploaded to its new place, checked,
//! and then deleted at the old one, which needs `--allow-delete`; if the upload fails, nothing
//! moved. Folders inside a resource answer EXDEV, so `mv` copies them file by file; XNAT
//! objects (subjects, sessions, scans, resources) are not renamed through the mount (EPERM).

use std::sync::Arc;

use super::journal::{Record, UploadState};
use super::stage::Staged;
use super::{check_file_name, file_place, io_error, raw_name, staged_node, Place, Writes};
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::Inode;
use crate::fs::node::Node;
use crate::fs::read::FileVersion;
use crate::fs::remote::owner_path;

/// How much of a file is copied into its stage per read.
const FILL_CHUNK: u32 = 1 << 20;

impl Writes {
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
            let bytes = handle
                .read(offset, FILL_CHUNK)
                .await
                .map_err(|e| FsError::new(e.errno(), e.to_string()))?;
            if bytes.is_empty() {
                break;
            }
            staged
                .fill_at(offset, &bytes)
                .map_err(|e| io_error("copying the file into its stage", e))?;
            offset += bytes.len() as u64;
            if handle.real_size().is_some_and(|size| offset >= size) {
                break;
            }
        }
        Ok(())
    }

    /// Open the existing file `inode` for writing: its stage, made from the server's bytes
    /// (or empty when `truncate`) if it has none yet.
    pub async fn open_existing(&self, inode: &Inode, truncate: bool) -> FsResult<Arc<Staged>> {
        let staged = self.stage_for(inode, !truncate).await?;
        staged.opened();
        if truncate {
            if let Err(e) = self.truncate(&staged, 0) {
                self.release(&staged);
                return Err(e);
            }
        }
        Ok(staged)
    }

    /// The stage of `inode`, made (and filled from the server when `fill`) if missing.
    async fn stage_for(&self, inode: &Inode, fill: bool) -> FsResult<Arc<Staged>> {
        let _opening = self.opening().await;
        let (staged, fresh) = self.stage_existing(inode)?;
        if !fresh {
            return Ok(staged);
        }
        if fill {
            if let Err(e) = self.fill(&staged, inode).await {
                self.abandon(&staged);
                return Err(e);
            }
        }
        Ok(self.adopt(staged))
    }

    /// Move file `name` of `dir` to `new_name` in `new_dir`.
    pub async fn rename(
        &self,
        dir: &Inode,
        name: &[u8],
        new_dir: &Inode,
        new_name: &[u8],
        no_replace: bool,
    ) -> FsResult<()> {
        let inode = self.namespace.lookup(dir.ino, name).await?;
        if inode.is_dir() {
            return Err(match inode.node {
                Node::Folder { .. } => FsError::new(
                    libc::EXDEV,
                    "folders inside a resource are moved file by file",
                ),
                _ => FsError::new(
                    libc::EPERM,
                    "XNAT objects (subjects, sessions, scans, resources) are not renamed \
                     through the mount",
                ),
            });
        }
        let place = Place::for_files(&new_dir.node)?;
        let raw = raw_name(new_name)?;
        check_file_name(&raw)?;
        let shown = String::from_utf8_lossy(name).into_owned();
        let new_shown = String::from_utf8_lossy(new_name).into_owned();
        let target = self.namespace.lookup(new_dir.ino, new_name).await.ok();
        if let Some(t) = &target {
            if t.ino == inode.ino {
                return Ok(());
            }
            if no_replace {
                return Err(FsError::new(libc::EEXIST, format!("{new_shown} exists")));
            }
            if t.is_dir() {
                return Err(FsError::is_dir());
            }
        }
        let target_on_server = match &target {
            Some(t) => self.staged(t.ino).is_none_or(|s| s.on_server()),
            None => false,
        };
        let new_path = place.path(&raw);
        let shown_at = format!("{}/{new_shown}", self.namespace.shown_path(new_dir.ino));
        let staged = self.staged(inode.ino);

        if let Some(s) = staged.as_ref().filter(|s| !s.on_server()) {
            let _one = s.upload.lock().await;
            if !s.on_server() {
                // Not on the server yet: only the destination changes.
                self.journal(s, |record| {
                    place.retarget(record, &new_path, &shown_at, target_on_server)
                })
                .map_err(|e| io_error("writing the journal record", e))?;
                let (node, info) = staged_node(
                    place.owner.clone(),
                    place.resource.clone(),
                    new_path,
                    s.id,
                    s.size(),
                );
                self.namespace
                    .rekey(inode.ino, node.clone(), info.clone())?;
                self.replace_target(target.as_deref());
                self.namespace.remove_entry(dir, &shown);
                self.namespace.add_local(new_dir, &new_shown, node, info);
                return Ok(());
            }
        }

        // The server has the file: upload it to its new place, then delete the old one.
        let old = format!("{}/{shown}", self.namespace.shown_path(dir.ino));
        self.check_delete(&old)?;
        let (owner, resource, path) = file_place(&inode)?;
        let source = self.stage_for(&inode, true).await?;
        let _one = source.upload.lock().await;
        let was_dirty = source.dirty();
        source.touch();
        let generation = source.generation();
        source
            .sync()
            .map_err(|e| io_error("syncing the stage", e))?;
        let mut record = source.snapshot();
        place.retarget(&mut record, &new_path, &shown_at, target_on_server);
        let moved = async {
            let row = self.send(&source, &record).await.map_err(|(e, _)| e)?;
            let old_file = owner_path(owner).resource(resource).file(path);
            match self.client.delete(&old_file, &[]).await {
                Ok(()) => Ok(row),
                Err(e) if e.is_not_found() => Ok(row),
                Err(e) => {
                    let e = FsError::from(e);
                    tracing::error!(
                        "{old} was uploaded to {}, but deleting the old copy failed: {}",
                        record.shown,
                        e.message
                    );
                    Err(e)
                }
            }
        }
        .await;
        let row = match moved {
            Ok(row) => {
                source.mark_uploaded(generation);
                row
            }
            Err(e) => {
                if !was_dirty {
                    // The server still has the file at its old place, as the stage holds it.
                    source.mark_uploaded(generation);
                }
                drop(_one);
                self.finish(&source);
                return Err(e);
            }
        };
        record.replace = true;
        record.state = UploadState::Writing;
        *source.record.lock().expect("record lock") = record.clone();
        let (node, info) = crate::fs::namespace::file_entry(&record.owner, &record.resource, row);
        self.namespace
            .rekey(inode.ino, node.clone(), info.clone())?;
        self.replace_target(target.as_deref());
        self.namespace.remove_entry(dir, &shown);
        self.namespace.add_local(new_dir, &new_shown, node, info);
        self.namespace.settle(&new_dir.node, &new_shown);
        tracing::info!("moved {old} to {}", record.shown);
        drop(_one);
        self.finish(&source);
        Ok(())
    }

    /// The file a rename replaced: its stage, if any, is dropped.
    fn replace_target(&self, target: Option<&Inode>) {
        if let Some(s) = target.and_then(|t| self.staged(t.ino)) {
            self.unlink_stage(&s);
        }
    }
}

impl Place {
    /// Point `record` at `path` in this place.
    fn retarget(&self, record: &mut Record, path: &str, shown: &str, replace: bool) {
        record.owner = self.owner.clone();
        record.resource = self.resource.clone();
        record.path = path.to_string();
        record.shown = shown.to_string();
        record.replace = replace;
    }
}
