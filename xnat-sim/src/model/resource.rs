//! Resources (XNAT's `xnat:resourceCatalog`) and the files their catalog lists.
//!
//! File bytes live in blobs named by number, never by the user-given path, so
//! a hostile path cannot reach outside the storage root.

use serde::{Deserialize, Serialize};

/// What a resource hangs off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceOwner {
    Project(String),
    Subject(String),
    /// A session's resources, or an assessor's `out` resources.
    Experiment(String),
    Scan {
        experiment: String,
        scan: String,
    },
    /// An assessor's `in` resources.
    AssessorIn(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource {
    /// `xnat_abstractresource_id`.
    pub id: u64,
    pub label: String,
    pub format: String,
    pub content: String,
    pub tags: String,
    pub description: String,
    pub owner: ResourceOwner,
    pub files: Vec<CatalogFile>,
    /// Files replaced by `overwrite=true` or removed, newest last.
    pub history: Vec<HistoryFile>,
    pub insert_date: String,
}

impl Resource {
    pub fn new(id: u64, label: &str, owner: ResourceOwner) -> Resource {
        Resource {
            id,
            label: label.to_string(),
            format: String::new(),
            content: String::new(),
            tags: String::new(),
            description: String::new(),
            owner,
            files: Vec::new(),
            history: Vec::new(),
            insert_date: super::xnat_timestamp(super::now_ms()),
        }
    }

    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    pub fn file_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The first catalog entry with exactly this relative path.
    pub fn file(&self, path: &str) -> Option<&CatalogFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// XNAT's `category` column.
    pub fn category(&self) -> &'static str {
        match self.owner {
            ResourceOwner::Scan { .. } => "scans",
            ResourceOwner::AssessorIn(_) => "assessors",
            _ => "resources",
        }
    }
}

/// One catalog entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogFile {
    /// Path relative to the resource, `/`-separated (may be anything: the model does not judge).
    pub path: String,
    pub size: u64,
    /// MD5 of the bytes, lowercase hex.
    pub digest: String,
    /// Number of the blob holding the bytes.
    pub blob: u64,
    pub format: String,
    pub content: String,
    pub tags: Vec<String>,
    pub modified_ms: i64,
}

impl CatalogFile {
    /// The basename, XNAT's `Name` column.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// A catalog entry that was replaced or removed, with its old blob kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryFile {
    pub file: CatalogFile,
    pub replaced_ms: i64,
}
