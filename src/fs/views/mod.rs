//! Views: read-only trees beside a project's archive folders, made from the listings the
//! archive tree already loads, so that tools that want another layout read the same bytes in
//! place.
//!
//! - `.bids` (`bids`, naming rules in `bids_map`): the project as a BIDS dataset, its images
//!   the scans' NIfTI files under BIDS names, its metadata files written by the mount;
//! - `.tables` (`tables`): the project's subjects, sessions, scans and files as CSV files.
//!
//! Both are pure functions from listings to a [`ViewTree`]; the namespace loads the listings,
//! records the tree, and keeps the bytes of the files the view makes. A file shown from the
//! archive is the archive's file (same download URI and version), so reading it through a view
//! and through its archive path is one download and one cache entry.

pub mod bids;
pub mod bids_map;
pub mod tables;

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::xnat::{CatalogFile, Experiment, Owner, ScanFile, SessionScan, Subject};

/// The BIDS view's folder in each project.
pub const BIDS_DIR: &str = ".bids";
/// The tables view's folder in each project.
pub const TABLES_DIR: &str = ".tables";

/// Which view a path is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Bids,
    Tables,
}

impl View {
    /// The view whose folder `path` (from the project) is or is in.
    pub fn of(path: &str) -> Option<View> {
        let top = path.split('/').next()?;
        match top {
            BIDS_DIR => Some(View::Bids),
            TABLES_DIR => Some(View::Tables),
            _ => None,
        }
    }
}

/// An entry of a view folder.
#[derive(Clone, Debug)]
pub enum Entry {
    Dir,
    /// A file of the archive, shown under the view's name.
    Archive {
        owner: Owner,
        resource: String,
        file: Box<CatalogFile>,
    },
    /// A file the view writes itself (a table, a BIDS metadata file).
    Made(Bytes),
}

/// A view's folders by path from the project (`.bids`, `.bids/sub-01`, …), each with its
/// entries by name. Parents sort before their children.
pub type ViewTree = BTreeMap<String, Vec<(String, Entry)>>;

/// What a view is made from: a project's bulk listings and the scan files of its sessions.
pub struct Listings<'a> {
    pub project: &'a str,
    /// The project's name (its ID when it has none).
    pub name: &'a str,
    pub subjects: &'a [Subject],
    pub experiments: &'a [Experiment],
    pub scans: &'a [SessionScan],
    /// `scans/ALL/files` of each session asked for, by experiment ID.
    pub scan_files: &'a HashMap<String, Vec<ScanFile>>,
}

/// A view tree with one folder and its entries added, creating the missing folders above it.
pub(crate) fn add(tree: &mut ViewTree, dir: &str, name: String, entry: Entry) {
    let mut at = String::new();
    for part in dir.split('/') {
        let parent = at.clone();
        if !at.is_empty() {
            at.push('/');
        }
        at.push_str(part);
        if !tree.contains_key(&at) {
            tree.insert(at.clone(), Vec::new());
            if !parent.is_empty() {
                tree.get_mut(&parent)
                    .expect("parent made first")
                    .push((part.to_string(), Entry::Dir));
            }
        }
    }
    tree.get_mut(dir).expect("folder made").push((name, entry));
}

/// Sort key for scan IDs: numbers in numeric order, before other IDs.
pub(crate) fn scan_order(id: &str) -> (u64, String) {
    (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string())
}
