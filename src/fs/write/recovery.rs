//! Putting back what an earlier mount left in the spool: every staged file returns to its
//! place in the tree, and the uploads that were waiting are queued again.
//!
//! A file that was still open for writing when its mount ended (`writing`) is put back but not
//! uploaded: the program that wrote it never closed it. One that was being uploaded from a stage
//! not yet synced, before the machine restarted, is kept but not uploaded either: its bytes may
//! be incomplete. Both say so in their record, for `xnatfs status`.

use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use super::place::staged_node;
use super::spool::UploadState;
use super::stage::Staged;
use super::stages::StageTable;

use crate::fs::namespace::Namespace;
use crate::xnat::FileAddr;

/// Put the stages of the spool back in the tree and the table; returns how many there were.
/// Runs before the mount serves anything, and blocks on the disk.
pub(super) fn recover(stages: &StageTable, namespace: &Namespace) -> usize {
    let records = stages.spool().recover();
    let count = records.len();
    for mut record in records {
        let path = stages.spool().data_path(record.id);
        // Never through a link: a planted `<id>.data` link would upload its target.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|f| match f.metadata()?.is_file() {
                true => Ok(f),
                false => Err(std::io::Error::other("not a regular file")),
            });
        let file = match opened {
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
        let addr = FileAddr {
            owner: record.owner.clone(),
            resource: record.resource.clone(),
            path: record.path.clone(),
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let (node, info) = staged_node(addr, record.id, size);
        let inode =
            namespace.add_local_file(&record.owner, &record.resource, &record.path, node, info);
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
            if let Err(e) = stages.spool().save(&record) {
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
        staged.hold(!pending);
        let shown = staged.snapshot().shown;
        if pending {
            tracing::info!("upload of {shown} left by an earlier mount: queued");
        } else if !survived {
            tracing::warn!(
                "{shown} was being uploaded when the machine restarted, from a stage not yet \
                 synced; kept in the spool, not uploaded (check it, then open and close it to \
                 upload it)"
            );
        } else {
            tracing::warn!(
                "{shown} was still open for writing when the last mount ended; kept in the \
                 spool, not uploaded (open and close it to upload it)"
            );
        }
        stages.insert(staged);
    }
    count
}
