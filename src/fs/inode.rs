//! The inode table: one inode number per node, stable for the life of the mount.
//!
//! A node is found by its identity (accession IDs, resource label, path, and for files the
//! version), so listing the same object twice gives the same inode, and a file whose server
//! version changed gets a new one (the kernel then never serves stale pages for it). Inodes are
//! kept for the life of the mount: an entry is a few hundred bytes, and XNAT trees are walked far
//! more often than they grow.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::mtime::AtomicTime;
use super::node::Node;

pub type Ino = u64;

/// The root directory's inode number, fixed by FUSE.
pub const ROOT_INO: Ino = 1;

/// What the filesystem knows of one inode.
#[derive(Debug)]
pub struct Inode {
    pub ino: Ino,
    pub node: Node,
    /// The parent directory (the root is its own parent).
    pub parent: Ino,
    /// Size in bytes: from the listing, corrected by the first download.
    size: AtomicU64,
    /// Extended attributes `user.xnat.*`, in a stable order.
    pub xattrs: Vec<(String, String)>,
    /// Where a file's bytes are downloaded from (empty for directories).
    pub uri: String,
    /// A 32-hex MD5 digest the server gave for a file.
    pub digest: Option<String>,
    /// Modification time (not known: the mount's start is shown).
    mtime: AtomicTime,
}

impl Inode {
    /// The time the server gives: the object's own date, or its owner's, or (files) the
    /// `Last-Modified` of a download; for a folder also its newest dated child.
    pub fn mtime(&self) -> Option<SystemTime> {
        self.mtime.get()
    }

    /// Sets the time (a download's `Last-Modified`, a write).
    pub fn set_mtime(&self, t: SystemTime) {
        self.mtime.set(t);
    }

    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// Replace the size with `actual`; the size before, when this changed it.
    pub fn correct_size(&self, actual: u64) -> Option<u64> {
        let before = self.size.swap(actual, Ordering::AcqRel);
        (before != actual).then_some(before)
    }

    pub fn is_dir(&self) -> bool {
        self.node.is_dir()
    }
}

/// The parts of a new inode that come from a listing.
#[derive(Clone, Debug, Default)]
pub struct InodeInfo {
    pub size: u64,
    pub xattrs: Vec<(String, String)>,
    pub uri: String,
    pub digest: Option<String>,
    /// The object's own time (a date in its listing row); `None` takes its parent's.
    pub mtime: Option<SystemTime>,
}

#[derive(Default)]
struct Table {
    by_ino: HashMap<Ino, Arc<Inode>>,
    by_node: HashMap<Node, Ino>,
    /// The newest inode of each file download URI.
    by_uri: HashMap<String, Ino>,
}

impl Table {
    /// Make inode `ino` of `node` and find it by number, node and (files) download URI.
    fn index(&mut self, ino: Ino, node: Node, parent: Ino, info: InodeInfo) -> Arc<Inode> {
        let mtime = match info.mtime {
            Some(own) => {
                self.newer_above(parent, own);
                Some(own)
            }
            None => self.by_ino.get(&parent).and_then(|p| p.mtime()),
        };
        let inode = Arc::new(Inode {
            ino,
            node: node.clone(),
            parent,
            size: AtomicU64::new(info.size),
            xattrs: info.xattrs,
            uri: info.uri,
            digest: info.digest,
            mtime: AtomicTime::new(mtime),
        });
        self.by_node.insert(node, ino);
        if !inode.uri.is_empty() && matches!(inode.node, Node::File { .. }) {
            self.by_uri.insert(inode.uri.clone(), ino);
        }
        self.by_ino.insert(ino, inode.clone());
        inode
    }

    /// A folder is as new as its newest dated child: `t` moves `dir` and the folders above
    /// it forward.
    fn newer_above(&self, mut dir: Ino, t: SystemTime) {
        while let Some(inode) = self.by_ino.get(&dir) {
            if !inode.mtime.advance_to(t) || dir == inode.parent {
                break;
            }
            dir = inode.parent;
        }
    }
}

pub struct InodeTable {
    table: Mutex<Table>,
    next: AtomicU64,
}

impl Default for InodeTable {
    fn default() -> Self {
        let table = InodeTable {
            table: Mutex::new(Table::default()),
            next: AtomicU64::new(ROOT_INO + 1),
        };
        let root = Arc::new(Inode {
            ino: ROOT_INO,
            node: Node::Root,
            parent: ROOT_INO,
            size: AtomicU64::new(0),
            xattrs: Vec::new(),
            uri: String::new(),
            digest: None,
            mtime: AtomicTime::default(),
        });
        let mut t = table.table.lock().expect("inode table lock");
        t.by_node.insert(Node::Root, ROOT_INO);
        t.by_ino.insert(ROOT_INO, root);
        drop(t);
        table
    }
}

impl InodeTable {
    pub fn get(&self, ino: Ino) -> Option<Arc<Inode>> {
        self.table
            .lock()
            .expect("inode table lock")
            .by_ino
            .get(&ino)
            .cloned()
    }

    /// The inode of `node`, made from `info` if the node is new.
    pub fn intern(&self, node: Node, parent: Ino, info: InodeInfo) -> Arc<Inode> {
        let mut t = self.table.lock().expect("inode table lock");
        if let Some(&ino) = t.by_node.get(&node) {
            let known = t.by_ino[&ino].clone();
            // A bulk load may meet a folder (to fill its listing) before its parent's listing
            // brings the folder's attributes: take them when they come.
            if let Some(own) = info.mtime {
                // A listing row's date is the object's own: it beats one inherited before.
                known.set_mtime(own);
                t.newer_above(known.parent, own);
            }
            if known.xattrs.is_empty() && !info.xattrs.is_empty() {
                let completed = Arc::new(Inode {
                    ino,
                    node: known.node.clone(),
                    parent: known.parent,
                    size: AtomicU64::new(known.size()),
                    xattrs: info.xattrs,
                    uri: if known.uri.is_empty() {
                        info.uri
                    } else {
                        known.uri.clone()
                    },
                    digest: known.digest.clone().or(info.digest),
                    mtime: AtomicTime::new(known.mtime()),
                });
                t.by_ino.insert(ino, completed.clone());
                return completed;
            }
            return known;
        }
        let ino = self.next.fetch_add(1, Ordering::Relaxed);
        t.index(ino, node, parent, info)
    }

    /// Give inode `ino` a new node and attributes, keeping its number (a file whose upload
    /// landed, or that moved). Returns the new inode, or `None` if `ino` is unknown.
    pub fn rekey(&self, ino: Ino, node: Node, info: InodeInfo) -> Option<Arc<Inode>> {
        let mut t = self.table.lock().expect("inode table lock");
        let old = t.by_ino.get(&ino)?.clone();
        if t.by_node.get(&old.node) == Some(&ino) {
            t.by_node.remove(&old.node);
        }
        if t.by_uri.get(&old.uri) == Some(&ino) {
            t.by_uri.remove(&old.uri);
        }
        Some(t.index(ino, node, old.parent, info))
    }

    /// The newest file inode downloaded from `uri`.
    pub fn find_uri(&self, uri: &str) -> Option<Arc<Inode>> {
        let t = self.table.lock().expect("inode table lock");
        t.by_uri.get(uri).map(|ino| t.by_ino[ino].clone())
    }

    /// The inode of `node` if it was seen before.
    pub fn find(&self, node: &Node) -> Option<Arc<Inode>> {
        let t = self.table.lock().expect("inode table lock");
        t.by_node.get(node).map(|ino| t.by_ino[ino].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xnat::Owner;

    fn file(version: &str) -> Node {
        Node::File {
            owner: Owner::Experiment {
                experiment: "XNAT_E00001".into(),
            },
            resource: "NIFTI".into(),
            path: "a.nii".into(),
            version: version.into(),
        }
    }

    #[test]
    fn attributes_arriving_later_complete_the_inode() {
        let table = InodeTable::default();
        let node = Node::Project {
            project: "P".into(),
        };
        let bare = table.intern(node.clone(), ROOT_INO, InodeInfo::default());
        let info = InodeInfo {
            xattrs: vec![("user.xnat.id".into(), "P".into())],
            ..InodeInfo::default()
        };
        let full = table.intern(node, ROOT_INO, info);
        assert_eq!(bare.ino, full.ino);
        assert_eq!(table.get(bare.ino).unwrap().xattrs.len(), 1);
    }

    #[test]
    fn same_node_same_inode_new_version_new_inode() {
        let table = InodeTable::default();
        let a = table.intern(file("1"), ROOT_INO, InodeInfo::default());
        let again = table.intern(file("1"), ROOT_INO, InodeInfo::default());
        let changed = table.intern(file("2"), ROOT_INO, InodeInfo::default());
        assert_eq!(a.ino, again.ino);
        assert_ne!(a.ino, changed.ino);
        assert_eq!(table.get(ROOT_INO).unwrap().node, Node::Root);
    }
}
