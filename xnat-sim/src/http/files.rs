//! Selecting catalog entries below a node (`…/files`, `…/files/dir/`,
//! `…/files/pat*`, `scans/ALL/files`) and the file listing table
//! (`Name, Size, URI, collection, file_tags, file_format, file_content, cat_ID, digest`).

use super::path::FilesSel;
use super::resolve::Node;
use super::Params;
use crate::listing::{glob_match, Row, Table};
use crate::model::{Archive, CatalogFile, Resource, ResourceOwner};

const FILE_COLS: &[&str] = &[
    "Name",
    "Size",
    "URI",
    "collection",
    "file_tags",
    "file_format",
    "file_content",
    "cat_ID",
    "digest",
];

/// One selected catalog entry with what listings and zips need to name it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub resource: u64,
    pub file: CatalogFile,
    /// Listing URI: `<base>/resources/{id}/files/{path}`.
    pub uri: String,
    /// Path inside a zip download (§2.9 layout).
    pub zip_name: String,
    pub collection: String,
}

/// How a `files` request reads: one file, or a selection to list or zip.
pub enum FilesRequest {
    Single,
    Many,
}

pub fn request_shape(sel: &FilesSel) -> FilesRequest {
    if !sel.path.is_empty() && !sel.folder && !sel.path.contains('*') {
        FilesRequest::Single
    } else {
        FilesRequest::Many
    }
}

/// The resources a node's `files` covers.
pub fn resources_below(a: &Archive, node: &Node) -> Vec<u64> {
    match node {
        Node::Resource(r) => vec![*r],
        Node::ResourceSet(rs) => rs.clone(),
        Node::Project(p) => a.resource_ids(&ResourceOwner::Project(p.clone())),
        Node::Subject(s) => a.resource_ids(&ResourceOwner::Subject(s.clone())),
        Node::Experiment(e) => a.resource_ids(&ResourceOwner::Experiment(e.clone())),
        Node::Scan { experiment, scan } => a.resource_ids(&ResourceOwner::Scan {
            experiment: experiment.clone(),
            scan: scan.clone(),
        }),
        Node::ScanSet { experiment, scans } => scans
            .iter()
            .flat_map(|s| {
                a.resource_ids(&ResourceOwner::Scan {
                    experiment: experiment.clone(),
                    scan: s.clone(),
                })
            })
            .collect(),
        Node::Root => Vec::new(),
    }
}

/// Whether a catalog path falls under the selection.
pub fn selected(sel: &FilesSel, recursive: bool, path: &str) -> bool {
    if sel.path.is_empty() {
        return recursive || !path.contains('/') || !sel.folder;
    }
    if sel.folder {
        return match path
            .strip_prefix(&sel.path)
            .and_then(|r| r.strip_prefix('/'))
        {
            Some(rest) => recursive || !rest.contains('/'),
            None => false,
        };
    }
    if sel.path.contains('*') {
        return glob_match(&sel.path, path);
    }
    path == sel.path
}

pub fn select(a: &Archive, node: &Node, sel: &FilesSel, params: &Params) -> Vec<Entry> {
    let recursive = !params
        .get("recursive")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let mut out = Vec::new();
    for rid in resources_below(a, node) {
        let Some(r) = a.resources.get(&rid) else {
            continue;
        };
        let (base, zip_base) = bases(a, r);
        for f in r.files.iter().filter(|f| selected(sel, recursive, &f.path)) {
            out.push(Entry {
                resource: rid,
                file: f.clone(),
                uri: format!("{base}/resources/{}/files/{}", r.id, f.path),
                zip_name: format!("{zip_base}/resources/{}/files/{}", r.label, f.path),
                collection: r.label.clone(),
            });
        }
    }
    out
}

/// (URI base with accession IDs, zip folder relative to the session) of a resource's owner.
fn bases(a: &Archive, r: &Resource) -> (String, String) {
    let session_label = |e: &str| {
        a.experiments
            .get(e)
            .map(|x| x.label.clone())
            .unwrap_or_default()
    };
    match &r.owner {
        ResourceOwner::Project(p) => (format!("/data/projects/{p}"), p.clone()),
        ResourceOwner::Subject(s) => (
            format!("/data/subjects/{s}"),
            a.subjects
                .get(s)
                .map(|s| s.label.clone())
                .unwrap_or_default(),
        ),
        ResourceOwner::Experiment(e) | ResourceOwner::AssessorIn(e) => {
            let inout = if matches!(r.owner, ResourceOwner::AssessorIn(_)) {
                "in"
            } else {
                "out"
            };
            match a.experiments.get(e).and_then(|x| x.session_id.clone()) {
                Some(session) => (
                    format!("/data/experiments/{session}/assessors/{e}/{inout}"),
                    format!(
                        "{}/assessors/{}/{inout}",
                        session_label(&session),
                        session_label(e)
                    ),
                ),
                None => (format!("/data/experiments/{e}"), session_label(e)),
            }
        }
        ResourceOwner::Scan { experiment, scan } => {
            let folder = a
                .experiments
                .get(experiment)
                .and_then(|x| x.scans.iter().find(|s| &s.id == scan))
                .map(|s| s.zip_folder())
                .unwrap_or_else(|| scan.clone());
            (
                format!("/data/experiments/{experiment}/scans/{scan}"),
                format!("{}/scans/{folder}", session_label(experiment)),
            )
        }
    }
}

pub fn listing(entries: &[Entry]) -> Table {
    Table {
        title: "Files",
        defaults: FILE_COLS,
        file_listing: true,
        rows: entries
            .iter()
            .map(|e| {
                Row::new()
                    .with("Name", e.file.name())
                    .with("Size", e.file.size.to_string())
                    .with("URI", &e.uri)
                    .with("collection", &e.collection)
                    .with("file_tags", e.file.tags.join(","))
                    .with("file_format", &e.file.format)
                    .with("file_content", &e.file.content)
                    .with("cat_ID", e.resource.to_string())
                    .with("digest", &e.file.digest)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(path: &str, folder: bool) -> FilesSel {
        FilesSel {
            path: path.into(),
            folder,
        }
    }

    #[test]
    fn folder_and_glob_selection() {
        assert!(selected(&sel("", false), true, "a/b/c"));
        assert!(selected(&sel("a", true), true, "a/b/c"));
        assert!(!selected(&sel("a", true), false, "a/b/c"));
        assert!(selected(&sel("a", true), false, "a/b"));
        assert!(!selected(&sel("a", true), true, "ab/c"));
        assert!(selected(&sel("a/*.nii", false), true, "a/x.nii"));
        assert!(selected(&sel("a/x.nii", false), true, "a/x.nii"));
        assert!(!selected(&sel("a/x.nii", false), true, "a/x.nii.gz"));
        assert!(!selected(&sel("", true), false, "a/b"));
    }
}
