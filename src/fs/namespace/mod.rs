//! The namespace: path ↔ XNAT object, answered from cached listings.
//!
//! Every directory's children come from a listing kept for `ttl`; `lookup` and negative lookups
//! are answered from it, so a miss costs no request. Listings are loaded in bulk where XNAT allows
//! it, so that walking a project costs a few requests per session rather than one per object:
//!
//! - a project: its subjects, every experiment of the project, and every scan of every session
//!   with its resource labels (three requests fill the project, subject, experiment and scan
//!   folders at once);
//! - the scan resources of a session: one `scans/ALL/files` request fills every scan resource
//!   folder of that session, nested folders included;
//! - `.resources`, `.assessors` and non-scan resources: one request each.
//!
//! Concurrent loads of the same folder are merged into one request.
//!
//! Files: `children` (rows → the folders they fill, pure), `load` (which requests fill which
//! folder), `view_load` (a project's `.bids` and `.tables`, filled whole from the project's
//! listings and the scan files of its sessions), `local` (entries made through the mount that
//! the server does not list yet); this file holds the listing cache and the inode table.

mod children;
mod kept;
mod load;
mod local;
pub mod store;
#[cfg(test)]
mod tests;
mod view_load;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::error::{FsError, FsResult};
use super::inode::{Ino, Inode, InodeTable, ROOT_INO};
use super::names::{self, Deduper};
use super::node::Node;
use crate::xnat::Backend;

pub use children::{file_entry, Child, Fill, ASSESSORS_DIR, RESOURCES_DIR};
pub use local::LocalEntry;

/// One directory's children, as shown.
#[derive(Debug)]
pub struct Listing {
    pub entries: Vec<(String, Ino)>,
    by_name: HashMap<String, Ino>,
    fetched: Instant,
    /// The files among `entries` in name order, made when first asked for.
    files_by_name: OnceLock<Arc<FileOrder>>,
}

impl Listing {
    pub fn get(&self, name: &str) -> Option<Ino> {
        self.by_name.get(name).copied()
    }
}

/// A folder's files in name order (the order `ls`, shell globs and series readers use), with
/// each file's place in it.
#[derive(Debug, Default)]
pub struct FileOrder {
    pub files: Vec<Ino>,
    pub index: HashMap<Ino, usize>,
}

pub struct Namespace {
    backend: Arc<dyn Backend>,
    inodes: InodeTable,
    listings: Mutex<HashMap<Ino, Arc<Listing>>>,
    loading: Mutex<HashMap<Ino, Arc<tokio::sync::Mutex<()>>>>,
    /// Entries made through the mount that the server does not list (yet): staged files and
    /// folders inside resources, by the directory node they sit in and their shown name. A
    /// listing reload keeps them, over a server entry of the same name.
    local: Mutex<HashMap<Node, BTreeMap<String, LocalEntry>>>,
    ttl: Duration,
    project: Option<String>,
    /// The mount's BIDS mapping file (`--bids-map`), over each project's own.
    bids_map: crate::fs::views::bids_map::BidsMap,
    /// The bytes of the files views make, by inode.
    made: Mutex<HashMap<Ino, bytes::Bytes>>,
    /// Listings kept on disk (see `kept.rs`); none in a mount without a disk cache.
    store: Option<Arc<store::ListingStore>>,
    /// This mount has changed something: kept listings are only for when the server is down.
    changed: AtomicBool,
    /// The server's answers that came after a kept one was shown at a remount.
    revalidated: kept::Revalidated,
}

impl Namespace {
    /// `project` limits the root to one project.
    pub fn new(backend: Arc<dyn Backend>, ttl: Duration, project: Option<String>) -> Self {
        Namespace {
            backend,
            inodes: InodeTable::default(),
            listings: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
            ttl,
            project,
            bids_map: Default::default(),
            made: Mutex::new(HashMap::new()),
            store: None,
            changed: AtomicBool::new(false),
            revalidated: Default::default(),
        }
    }

    /// Bytes of listings kept on disk, and their budget.
    pub fn kept_usage(&self) -> (u64, u64) {
        self.store.as_ref().map_or((0, 0), |s| s.usage())
    }

    /// Keep listings in `store`, and use them when the server cannot be reached.
    pub fn with_store(mut self, store: Option<Arc<store::ListingStore>>) -> Self {
        self.store = store;
        self
    }

    /// Use `map` for every project's `.bids` view, over the project's own mapping.
    pub fn with_bids_map(mut self, map: crate::fs::views::bids_map::BidsMap) -> Self {
        self.bids_map = map;
        self
    }

    pub fn inode(&self, ino: Ino) -> FsResult<Arc<Inode>> {
        self.inodes
            .get(ino)
            .ok_or_else(|| FsError::new(libc::ESTALE, format!("unknown inode {ino}")))
    }

    /// The child `name` of directory `parent`, from its (possibly freshly loaded) listing.
    pub async fn lookup(&self, parent: Ino, name: &[u8]) -> FsResult<Arc<Inode>> {
        let name = std::str::from_utf8(name).map_err(|_| FsError::not_found())?;
        let listing = self.list(parent).await?;
        let ino = listing.get(name).ok_or_else(FsError::not_found)?;
        self.inode(ino)
    }

    /// The children of directory `dir`.
    pub async fn list(&self, dir: Ino) -> FsResult<Arc<Listing>> {
        let inode = self.inode(dir)?;
        if !inode.is_dir() {
            return Err(FsError::not_dir());
        }
        if let Some(listing) = self.fresh(dir) {
            return Ok(listing);
        }
        let gate = self
            .loading
            .lock()
            .expect("loading lock")
            .entry(dir)
            .or_default()
            .clone();
        let _held = gate.lock().await;
        if let Some(listing) = self.fresh(dir) {
            return Ok(listing);
        }
        kept::watching_kept(self.load(&inode)).await?;
        if self.has_local_dir(&inode.node) && self.fresh(dir).is_none() {
            // A folder made through the mount that no server file is in yet.
            self.fill(inode.node.clone(), inode.parent, Vec::new());
        }
        // The listing just loaded, however old it already is: with a short TTL (or 0, "always
        // ask the server") a slow load must not turn into an error.
        let loaded = self
            .listings
            .lock()
            .expect("listings lock")
            .get(&dir)
            .cloned();
        loaded.ok_or_else(|| {
            FsError::warn(
                libc::EIO,
                format!("listing of {:?} did not load", inode.node),
            )
        })
    }

    /// The files of directory `dir` in name order, from the listing held now: never a request,
    /// and `None` when the listing expired or was never loaded.
    pub fn files_in_name_order(&self, dir: Ino) -> Option<Arc<FileOrder>> {
        let listing = self.fresh(dir)?;
        let order = listing.files_by_name.get_or_init(|| {
            let mut files: Vec<(&str, Ino)> = listing
                .entries
                .iter()
                .filter(|(_, ino)| self.inodes.get(*ino).is_some_and(|i| !i.is_dir()))
                .map(|(name, ino)| (name.as_str(), *ino))
                .collect();
            files.sort_unstable();
            let index = files
                .iter()
                .enumerate()
                .map(|(i, (_, ino))| (*ino, i))
                .collect();
            Arc::new(FileOrder {
                files: files.into_iter().map(|(_, ino)| ino).collect(),
                index,
            })
        });
        Some(order.clone())
    }

    /// The size a download of the file at `uri` found, replacing the listed one ("sizes come
    /// from listings and are corrected by the first download"). Returns the inode and its
    /// size before, when this call changed it.
    pub fn correct_size(&self, uri: &str, actual: u64) -> Option<(Ino, u64)> {
        let inode = self.inodes.find_uri(uri)?;
        let before = inode.correct_size(actual)?;
        tracing::info!(uri, listed = before, actual, "size corrected by download");
        Some((inode.ino, before))
    }

    fn fresh(&self, dir: Ino) -> Option<Arc<Listing>> {
        let listings = self.listings.lock().expect("listings lock");
        listings
            .get(&dir)
            .filter(|l| l.fetched.elapsed() < self.ttl)
            .cloned()
    }

    /// Record `fills` (parents before children; the first folder's parent is `parent` if it
    /// has no inode yet). Every folder is interned top-down first, so each knows its parent's
    /// inode; the listings are then recorded bottom-up, so that a listing shows only children
    /// whose own listings are there.
    fn apply(&self, parent: Ino, fills: Vec<Fill>) {
        let mut dirs: Vec<Ino> = Vec::with_capacity(fills.len());
        for fill in &fills {
            let dir = match self.inodes.find(&fill.dir) {
                Some(inode) => inode.ino,
                None => {
                    let above = dirs.first().copied().unwrap_or(parent);
                    self.inodes
                        .intern(fill.dir.clone(), above, super::inode::InodeInfo::default())
                        .ino
                }
            };
            for child in &fill.children {
                self.inodes
                    .intern(child.node.clone(), dir, child.info.clone());
            }
            dirs.push(dir);
        }
        for (fill, dir) in fills.into_iter().zip(dirs).rev() {
            let parent = self.inode(dir).map(|i| i.parent).unwrap_or(ROOT_INO);
            self.fill(fill.dir, parent, fill.children);
        }
    }

    /// Record `children` as the listing of the directory `node`.
    fn fill(&self, node: Node, parent: Ino, children: Vec<Child>) -> Arc<Inode> {
        let local = self.local_entries(&node);
        let dir = self
            .inodes
            .intern(node, parent, super::inode::InodeInfo::default());
        let mut dedup = Deduper::default();
        let mut entries = Vec::with_capacity(children.len() + local.len());
        let mut by_name = HashMap::with_capacity(children.len() + local.len());
        let mut aliases = Vec::new();
        let local_names: std::collections::HashSet<String> =
            local.iter().map(|(n, _)| n.clone()).collect();
        for (name, entry) in local {
            dedup.reserve(&name);
            let inode = self.inodes.intern(entry.node, dir.ino, entry.info);
            by_name.insert(name.clone(), inode.ino);
            entries.push((name, inode.ino));
        }
        for child in children {
            // Only the real reserved folders keep their dot name; a server object labelled
            // `.resources` (a resource, a file) is escaped like any other leading dot.
            let reserved = child.is_reserved();
            let name = if reserved {
                dedup.reserve(&child.name);
                child.name
            } else {
                let shown = names::encode(&child.name);
                if local_names.contains(&shown) {
                    // A local entry stands in for it (a staged version of that file).
                    continue;
                }
                dedup.unique(shown)
            };
            // A project's views are found by name but not listed, so that a walk of the
            // archive (find, du, rsync, diff -r) does not meet every file twice.
            let unlisted = matches!(&child.node, Node::ViewDir { path, .. } if !path.contains('/'));
            let inode = self.inodes.intern(child.node, dir.ino, child.info);
            if unlisted {
                by_name.insert(name, inode.ino);
                continue;
            }
            if let Some(alias) = child.alias {
                aliases.push((names::encode(&alias), inode.ino));
            }
            by_name.insert(name.clone(), inode.ino);
            entries.push((name, inode.ino));
        }
        for (alias, ino) in aliases {
            by_name.entry(alias).or_insert(ino);
        }
        let now = Instant::now();
        // Filled from what a remount kept: shown until the server's answer is there.
        let fetched = if kept::showing_kept() {
            self.ttl
                .checked_sub(kept::KEPT_LIFE)
                .and_then(|older| now.checked_sub(older))
                .unwrap_or(now)
        } else {
            now
        };
        let listing = Arc::new(Listing {
            entries,
            by_name,
            fetched,
            files_by_name: OnceLock::new(),
        });
        self.listings
            .lock()
            .expect("listings lock")
            .insert(dir.ino, listing);
        dir
    }
}
