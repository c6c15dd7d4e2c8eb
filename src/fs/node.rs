//! What each inode stands for in XNAT: the node kinds of the tree.
//!
//! Nodes carry accession IDs (stable across relabelling), never the shown names; the names live in
//! the parent's listing. A file node also carries the version it was listed with, so a file whose
//! server version changes becomes a new node and gets a new inode number.

use crate::xnat::{paths, FileAddr, Owner};

/// What an inode is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Root,
    Project {
        project: String,
    },
    /// The `.resources` folder of a project, subject or experiment.
    Resources {
        owner: Owner,
    },
    Subject {
        project: String,
        subject: String,
    },
    Experiment {
        project: String,
        experiment: String,
    },
    /// The `.assessors` folder of an experiment.
    Assessors {
        experiment: String,
    },
    Assessor {
        experiment: String,
        assessor: String,
    },
    Scan {
        project: String,
        experiment: String,
        scan: String,
    },
    Resource {
        owner: Owner,
        resource: String,
    },
    /// A folder inside a resource (`path` without leading or trailing `/`).
    Folder {
        owner: Owner,
        resource: String,
        path: String,
    },
    File {
        owner: Owner,
        resource: String,
        path: String,
        version: String,
    },
    /// A folder of one of a project's views (`.bids`, `.tables`): `path` from the project
    /// folder, e.g. `.bids/sub-01/anat`.
    ViewDir {
        project: String,
        path: String,
    },
    /// A file of a view.
    ViewFile {
        project: String,
        path: String,
        source: ViewSource,
    },
}

/// Where a view's file gets its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ViewSource {
    /// A file of the archive, at the version it was listed with.
    Archive { file: FileAddr, version: String },
    /// Bytes the view makes, known by their MD5, so that new bytes make a new inode.
    Made { md5: String },
}

impl Node {
    pub fn is_dir(&self) -> bool {
        !matches!(self, Node::File { .. } | Node::ViewFile { .. })
    }

    /// In a view: read-only, whatever the mount.
    pub fn in_view(&self) -> bool {
        matches!(self, Node::ViewDir { .. } | Node::ViewFile { .. })
    }

    /// The server version of a file of the archive, shown at its own path or in a view.
    pub fn archive_version(&self) -> Option<&str> {
        match self {
            Node::File { version, .. }
            | Node::ViewFile {
                source: ViewSource::Archive { version, .. },
                ..
            } => Some(version),
            _ => None,
        }
    }

    /// The file's place on the server, for a file node.
    pub fn file_addr(&self) -> Option<FileAddr> {
        match self {
            Node::File {
                owner,
                resource,
                path,
                ..
            } => Some(FileAddr {
                owner: owner.clone(),
                resource: resource.clone(),
                path: path.clone(),
            }),
            _ => None,
        }
    }
}

/// The URI of a file as XNAT writes it (not percent-encoded): what `user.xnat.uri` shows for
/// a file the server does not list yet.
pub fn file_uri(file: &FileAddr) -> String {
    paths::file(file).raw().to_string()
}

/// The folder name XNAT's own zip downloads give a scan: `<ID>-<type>`, with every character of
/// the type outside `[A-Za-z0-9_-]` written as `_`; just `<ID>` when the type is empty.
pub fn scan_folder_name(id: &str, scan_type: &str) -> String {
    if scan_type.is_empty() {
        return id.to_string();
    }
    let clean: String = scan_type
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{id}-{clean}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_are_raw_server_paths() {
        let owner = Owner::Scan {
            experiment: "XNAT_E00001".into(),
            scan: "1".into(),
        };
        let file = Node::File {
            owner,
            resource: "NIFTI".into(),
            path: "sub dir/a#b?.nii.gz".into(),
            version: String::new(),
        };
        assert_eq!(
            file_uri(&file.file_addr().unwrap()),
            "/data/experiments/XNAT_E00001/scans/1/resources/NIFTI/files/sub dir/a#b?.nii.gz"
        );
        assert_eq!(Node::Root.file_addr(), None);
    }

    #[test]
    fn scan_folders_follow_xnat_zip_names() {
        assert_eq!(scan_folder_name("1", "mprage"), "1-mprage");
        assert_eq!(
            scan_folder_name("3", "T1 MPRAGE (sag)"),
            "3-T1_MPRAGE__sag_"
        );
        assert_eq!(scan_folder_name("4", ""), "4");
    }
}
