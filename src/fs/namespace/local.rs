//! Changes the write path makes to the namespace without asking the server.
//!
//! A file created through the mount shows in its folder at once, and stays there while it is
//! written and while its upload waits, across listing reloads: it is a *local entry* of its
//! directory until the server has it (`settle`). Folders made inside a resource are local
//! entries for good (XNAT has no empty folders). When an upload lands, the file's inode is
//! re-keyed to the version the server now lists, so it keeps its inode number and the kernel
//! keeps the pages it already holds.

use std::sync::Arc;
use std::time::Instant;

use super::{Listing, Namespace};
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::{Ino, Inode, InodeInfo, ROOT_INO};
use crate::fs::names;
use crate::fs::node::Node;
use crate::xnat::Owner;

/// An entry of a directory that only this mount knows of.
#[derive(Clone, Debug)]
pub struct LocalEntry {
    pub node: Node,
    pub info: InodeInfo,
}

impl Namespace {
    pub(super) fn local_entries(&self, dir: &Node) -> Vec<(String, LocalEntry)> {
        self.local
            .lock()
            .expect("local entries lock")
            .get(dir)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// `node` is a folder made through the mount (its parent holds it as a local entry).
    pub(super) fn has_local_dir(&self, node: &Node) -> bool {
        matches!(node, Node::Folder { .. })
            && self
                .local
                .lock()
                .expect("local entries lock")
                .values()
                .any(|m| m.values().any(|e| &e.node == node))
    }

    /// Add `name` (as shown) to directory `dir` as a local entry, and to its cached listing.
    pub fn add_local(&self, dir: &Inode, name: &str, node: Node, info: InodeInfo) -> Arc<Inode> {
        let inode = self.inodes.intern(node.clone(), dir.ino, info.clone());
        self.local
            .lock()
            .expect("local entries lock")
            .entry(dir.node.clone())
            .or_default()
            .insert(name.to_string(), LocalEntry { node, info });
        self.edit_listing(dir.ino, |entries| {
            entries.retain(|(n, _)| n != name);
            entries.push((name.to_string(), inode.ino));
        });
        inode
    }

    /// Put a staged file back at its place after a remount: a local entry of the folder its
    /// path names inside `resource`, with local entries for the folders on the way.
    pub fn add_local_file(
        &self,
        owner: &Owner,
        resource: &str,
        path: &str,
        node: Node,
        info: InodeInfo,
    ) -> Arc<Inode> {
        let mut dir = Node::Resource {
            owner: owner.clone(),
            resource: resource.to_string(),
        };
        let mut parts: Vec<&str> = path.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        let mut walked = String::new();
        for part in parts {
            if !walked.is_empty() {
                walked.push('/');
            }
            walked.push_str(part);
            let folder = Node::Folder {
                owner: owner.clone(),
                resource: resource.to_string(),
                path: walked.clone(),
            };
            let mut local = self.local.lock().expect("local entries lock");
            local
                .entry(dir.clone())
                .or_default()
                .entry(names::encode(part))
                .or_insert(LocalEntry {
                    node: folder.clone(),
                    info: InodeInfo::default(),
                });
            drop(local);
            dir = folder;
        }
        let parent = self.inodes.find(&dir).map(|i| i.ino).unwrap_or(ROOT_INO);
        let inode = self.inodes.intern(node.clone(), parent, info.clone());
        self.local
            .lock()
            .expect("local entries lock")
            .entry(dir)
            .or_default()
            .insert(names::encode(name), LocalEntry { node, info });
        inode
    }

    /// The server lists the entry now: it no longer needs keeping locally.
    pub fn settle(&self, dir: &Node, name: &str) {
        let mut local = self.local.lock().expect("local entries lock");
        if let Some(entries) = local.get_mut(dir) {
            entries.remove(name);
            if entries.is_empty() {
                local.remove(dir);
            }
        }
    }

    /// Take `name` out of directory `dir`: its cached listing and its local entries.
    pub fn remove_entry(&self, dir: &Inode, name: &str) {
        self.settle(&dir.node, name);
        self.edit_listing(dir.ino, |entries| entries.retain(|(n, _)| n != name));
    }

    /// Drop a directory's cached listing, so that the next look at it asks the server.
    pub fn forget(&self, dir: Ino) {
        self.changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.listings.lock().expect("listings lock").remove(&dir);
    }

    /// The node of inode `ino` changed (a new version uploaded, a new path): same number.
    pub fn rekey(&self, ino: Ino, node: Node, info: InodeInfo) -> FsResult<Arc<Inode>> {
        self.inodes
            .rekey(ino, node, info)
            .ok_or_else(|| FsError::new(libc::ESTALE, format!("unknown inode {ino}")))
    }

    /// The path of `ino` under the mount point, from the cached listings (for people: logs and
    /// `xnatfs status`).
    pub fn shown_path(&self, ino: Ino) -> String {
        let listings = self.listings.lock().expect("listings lock");
        let mut parts = Vec::new();
        let mut at = ino;
        while at != ROOT_INO && parts.len() < 64 {
            let Some(inode) = self.inodes.get(at) else {
                break;
            };
            let name = listings
                .get(&inode.parent)
                .and_then(|l| l.entries.iter().find(|(_, i)| *i == at))
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| format!("<inode {at}>"));
            parts.push(name);
            at = inode.parent;
        }
        parts.reverse();
        parts.join("/")
    }

    fn edit_listing(&self, dir: Ino, edit: impl FnOnce(&mut Vec<(String, Ino)>)) {
        let mut listings = self.listings.lock().expect("listings lock");
        let Some(old) = listings.get(&dir) else {
            return;
        };
        let mut entries = old.entries.clone();
        edit(&mut entries);
        // Keep aliases (a scan's bare ID) of entries that are still there.
        let kept: std::collections::HashSet<Ino> = entries.iter().map(|(_, i)| *i).collect();
        let mut by_name: std::collections::HashMap<String, Ino> = old
            .by_name
            .iter()
            .filter(|(_, i)| kept.contains(i))
            .map(|(n, i)| (n.clone(), *i))
            .collect();
        by_name.extend(entries.iter().cloned());
        let fetched: Instant = old.fetched;
        listings.insert(
            dir,
            Arc::new(Listing {
                entries,
                by_name,
                fetched,
                files_by_name: std::sync::OnceLock::new(),
            }),
        );
    }
}
