//! `mkdir`, `unlink` and `rmdir` as XNAT requests (reference §2.6).
//!
//! `mkdir` makes the object its level implies: a subject in a project, an experiment
//! (`--session-type`) in a subject, a scan (`<ID>` or `<ID>-<type>`, `xnat:mrScanData`) in an
//! experiment, a resource in a scan, assessor or `.resources` folder. A folder inside a resource
//! stays local until a file lands in it, since XNAT has no empty folders. Deleting anything the
//! server holds needs `--allow-delete`; a file that never reached the server is local and goes
//! without it.

use std::sync::Arc;

use super::place::{file_place, raw_name, Place};
use super::Writes;
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::{Inode, InodeInfo};
use crate::fs::namespace::{ASSESSORS_DIR, RESOURCES_DIR};
use crate::fs::node::Node;
use crate::xnat::{NewObject, Owner, Removal};

/// The scan ID and type a folder name `<ID>` or `<ID>-<type>` asks for. The type may only
/// hold characters that XNAT's own scan folder names keep (`[A-Za-z0-9_-]`), or the folder
/// would show under another name than the one made.
fn scan_name(raw: &str) -> FsResult<(String, String)> {
    let (id, kind) = raw.split_once('-').unwrap_or((raw, ""));
    let id_ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    let kind_ok = kind
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !id_ok || !kind_ok {
        return Err(FsError::new(
            libc::EINVAL,
            format!(
                "a scan folder is named <ID> or <ID>-<type>, with an ID of letters, digits, `_` \
                 and `.`, and a type of letters, digits, `_` and `-`: {raw:?}"
            ),
        ));
    }
    Ok((id.to_string(), kind.to_string()))
}

fn attr<'a>(inode: &'a Inode, key: &str) -> Option<&'a str> {
    inode
        .xattrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

impl Writes {
    /// Make directory `name` in `dir`.
    pub async fn mkdir(&self, dir: &Inode, name: &[u8]) -> FsResult<Arc<Inode>> {
        let raw = raw_name(name)?;
        let shown = String::from_utf8_lossy(name).into_owned();
        let listing = self.namespace.list(dir.ino).await?;
        if listing.get(&shown).is_some() {
            return Err(FsError::new(libc::EEXIST, format!("{shown} exists")));
        }
        let object = match &dir.node {
            Node::Resource { .. } | Node::Folder { .. } => {
                let place = Place::of(&dir.node).expect("a resource or folder");
                let node = place.folder_node(&raw);
                return Ok(self
                    .namespace
                    .add_local(dir, &shown, node, InodeInfo::default()));
            }
            Node::Root => {
                return Err(FsError::new(
                    libc::EPERM,
                    "projects are made on the XNAT server (its web interface), not with mkdir",
                ))
            }
            Node::Assessors { .. } => {
                return Err(FsError::new(
                    libc::EPERM,
                    "assessors are made by pipelines or uploads of their XML, not with mkdir",
                ))
            }
            Node::File { .. } | Node::ViewFile { .. } => return Err(FsError::not_dir()),
            Node::ViewDir { .. } => {
                return Err(FsError::new(libc::EROFS, "the views are read-only"))
            }
            Node::Project { project } => NewObject::Subject {
                project: project.clone(),
                label: raw.clone(),
            },
            Node::Subject { project, subject } => NewObject::Experiment {
                project: project.clone(),
                subject: attr(dir, "user.xnat.label").unwrap_or(subject).to_string(),
                label: raw.clone(),
                xsi_type: self.config.session_type.clone(),
            },
            Node::Experiment { experiment, .. } => {
                let (id, scan_type) = scan_name(&raw)?;
                NewObject::Scan {
                    experiment: experiment.clone(),
                    id,
                    scan_type,
                    xsi_type: "xnat:mrScanData".into(),
                }
            }
            Node::Scan {
                experiment, scan, ..
            } => NewObject::Resource {
                owner: Owner::Scan {
                    experiment: experiment.clone(),
                    scan: scan.clone(),
                },
                label: raw.clone(),
            },
            Node::Resources { owner } => NewObject::Resource {
                owner: owner.clone(),
                label: raw.clone(),
            },
            Node::Assessor {
                experiment,
                assessor,
            } => NewObject::Resource {
                owner: Owner::Assessor {
                    experiment: experiment.clone(),
                    assessor: assessor.clone(),
                },
                label: raw.clone(),
            },
        };
        let created = self.backend.create(&object).await?;
        self.namespace.forget(dir.ino);
        if created.existed {
            return Err(FsError::new(
                libc::EEXIST,
                format!("{shown} already exists on the server"),
            ));
        }
        tracing::info!("created {object:?}");
        self.namespace.lookup(dir.ino, name).await.map_err(|_| {
            FsError::warn(
                libc::EIO,
                format!("created {object:?}, but the server's listing does not show it as {shown}"),
            )
        })
    }

    /// Remove file `name` from `dir`.
    pub async fn unlink(&self, dir: &Inode, name: &[u8]) -> FsResult<()> {
        let shown = String::from_utf8_lossy(name).into_owned();
        let inode = self.namespace.lookup(dir.ino, name).await?;
        let file = file_place(&inode)?;
        let staged = self.staged(inode.ino);
        let _one = match &staged {
            Some(s) => Some(s.upload.lock().await),
            None => None,
        };
        if staged.as_ref().is_none_or(|s| s.on_server()) {
            let what = format!("{}/{shown}", self.namespace.shown_path(dir.ino));
            self.check_delete(&what)?;
            self.delete(&Removal::File(file)).await?;
        }
        if let Some(s) = &staged {
            self.stages.unlink(s);
        }
        self.namespace.remove_entry(dir, &shown);
        Ok(())
    }

    /// Delete `object` on the server; one that is gone already counts as deleted.
    pub(super) async fn delete(&self, object: &Removal) -> FsResult<()> {
        match self.backend.delete(object).await {
            Ok(()) => {
                tracing::info!("deleted {object:?}");
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove the empty directory `name` from `dir`.
    pub async fn rmdir(&self, dir: &Inode, name: &[u8]) -> FsResult<()> {
        let shown = String::from_utf8_lossy(name).into_owned();
        let inode = self.namespace.lookup(dir.ino, name).await?;
        if !inode.is_dir() {
            return Err(FsError::not_dir());
        }
        let listing = self.namespace.list(inode.ino).await?;
        for (child, ino) in &listing.entries {
            let reserved = child == RESOURCES_DIR || child == ASSESSORS_DIR;
            if !reserved || !self.namespace.list(*ino).await?.entries.is_empty() {
                return Err(FsError::new(
                    libc::ENOTEMPTY,
                    format!("{shown} is not empty"),
                ));
            }
        }
        let object = match &inode.node {
            Node::Folder { .. } => {
                // An empty folder inside a resource exists only here.
                self.namespace.remove_entry(dir, &shown);
                return Ok(());
            }
            Node::Resources { .. } | Node::Assessors { .. } => {
                // `.resources` and `.assessors` are part of their owner's shape, not objects:
                // removing one that is empty succeeds and changes nothing (it shows again,
                // empty), so that `rm -r` of a subject, session or scan gets to the owner.
                let what = format!("{}/{shown}", self.namespace.shown_path(dir.ino));
                return self.check_delete(&what);
            }
            Node::Subject { project, subject } => Removal::Subject {
                project: project.clone(),
                subject: subject.clone(),
            },
            Node::Experiment { experiment, .. } => Removal::Experiment {
                experiment: experiment.clone(),
            },
            Node::Scan {
                experiment, scan, ..
            } => Removal::Scan {
                experiment: experiment.clone(),
                scan: scan.clone(),
            },
            Node::Resource { owner, resource } => Removal::Resource {
                owner: owner.clone(),
                resource: resource.clone(),
            },
            Node::Assessor {
                experiment,
                assessor,
            } => Removal::Assessor {
                experiment: experiment.clone(),
                assessor: assessor.clone(),
            },
            _ => {
                return Err(FsError::new(
                    libc::EPERM,
                    format!("{shown} cannot be removed through the mount"),
                ))
            }
        };
        let what = format!("{}/{shown}", self.namespace.shown_path(dir.ino));
        self.check_delete(&what)?;
        self.delete(&object).await?;
        self.namespace.remove_entry(dir, &shown);
        self.namespace.forget(dir.ino);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_folder_names() {
        assert_eq!(scan_name("5").unwrap(), ("5".into(), String::new()));
        assert_eq!(scan_name("5-T2w").unwrap(), ("5".into(), "T2w".to_string()));
        assert_eq!(
            scan_name("12-fmri-rest_1").unwrap(),
            ("12".into(), "fmri-rest_1".to_string())
        );
        assert_eq!(scan_name("").unwrap_err().errno, libc::EINVAL);
        assert_eq!(scan_name("-T1").unwrap_err().errno, libc::EINVAL);
        assert_eq!(scan_name("5-T1 w").unwrap_err().errno, libc::EINVAL);
    }
}
