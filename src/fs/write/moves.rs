//! `mv` of a file.
//!
//! XNAT has no rename. A file that has not reached the server yet moves locally: its stage
//! just gets a new destination. A file the server has is uploaded to its new place, checked,
//! and then deleted at the old one, which needs `--allow-delete`; if the upload fails, nothing
//! moved. Folders inside a resource answer EXDEV, so `mv` copies them file by file; XNAT
//! objects (subjects, sessions, scans, resources) are not renamed through the mount (EPERM).

use super::place::{check_file_name, file_place, raw_name, staged_node, Place};
use super::spool::{Record, UploadState};
use super::Writes;
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::Inode;
use crate::fs::namespace::file_entry;
use crate::fs::node::Node;
use crate::xnat::{FileAddr, Removal};

impl Writes {
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
                let (to, path, at) = (place.clone(), new_path.clone(), shown_at.clone());
                self.stages
                    .journal_async(s, move |record| {
                        to.retarget(record, &path, &at, target_on_server)
                    })
                    .await?;
                let addr = FileAddr {
                    owner: place.owner.clone(),
                    resource: place.resource.clone(),
                    path: new_path,
                };
                let (node, info) = staged_node(addr, s.id, s.size());
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
        let old_file = file_place(&inode)?;
        let source = self.stage_for(&inode, true).await?;
        let _one = source.upload.lock().await;
        let was_dirty = source.dirty();
        source.touch();
        let generation = source.generation();
        let synced = source.clone();
        super::stages::blocking("syncing the stage", move || {
            synced
                .sync()
                .map_err(|e| FsError::io("syncing the stage", e))
        })
        .await?;
        let mut record = source.snapshot();
        place.retarget(&mut record, &new_path, &shown_at, target_on_server);
        let moved = async {
            let row = self
                .uploader
                .send(&source, &record)
                .await
                .map_err(|(e, _)| e)?;
            self.delete(&Removal::File(old_file)).await.map_err(|e| {
                e.context(format!(
                    "{old} was uploaded to {}, but deleting the old copy failed",
                    record.shown
                ))
            })?;
            Ok::<_, FsError>(row)
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
                self.stages.finish(&source);
                return Err(e);
            }
        };
        record.replace = true;
        record.state = UploadState::Writing;
        *source.record.lock().expect("record lock") = record.clone();
        let (node, info) = file_entry(&record.owner, &record.resource, row);
        self.namespace
            .rekey(inode.ino, node.clone(), info.clone())?;
        self.replace_target(target.as_deref());
        self.namespace.remove_entry(dir, &shown);
        self.namespace.add_local(new_dir, &new_shown, node, info);
        self.namespace.settle(&new_dir.node, &new_shown);
        tracing::info!("moved {old} to {}", record.shown);
        drop(_one);
        self.stages.finish(&source);
        Ok(())
    }

    /// The file a rename replaced: its stage, if any, is dropped.
    fn replace_target(&self, target: Option<&Inode>) {
        if let Some(s) = target.and_then(|t| self.staged(t.ino)) {
            self.stages.unlink(&s);
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
