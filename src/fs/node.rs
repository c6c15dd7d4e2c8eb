//! What each inode stands for in XNAT: the node kinds of the tree and the REST paths they map to.
//!
//! Nodes carry accession IDs (stable across relabelling), never the shown names; the names live in
//! the parent's listing. A file node also carries the version it was listed with, so a file whose
//! server version changes becomes a new node and gets a new inode number.

/// The object a set of resources hangs off.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    Project {
        project: String,
    },
    Subject {
        project: String,
        subject: String,
    },
    Experiment {
        experiment: String,
    },
    Scan {
        experiment: String,
        scan: String,
    },
    Assessor {
        experiment: String,
        assessor: String,
    },
}

impl Owner {
    /// The REST path of the owner, under which `/resources/…` lives, as the server writes it
    /// (not percent-encoded; the client encodes each segment when it sends a request).
    pub fn path(&self) -> String {
        match self {
            Owner::Project { project } => format!("/data/projects/{}", project),
            Owner::Subject { project, subject } => {
                format!("/data/projects/{}/subjects/{}", project, subject)
            }
            Owner::Experiment { experiment } => {
                format!("/data/experiments/{}", experiment)
            }
            Owner::Scan { experiment, scan } => {
                format!("/data/experiments/{}/scans/{}", experiment, scan)
            }
            Owner::Assessor {
                experiment,
                assessor,
            } => format!(
                "/data/experiments/{}/assessors/{}/out",
                experiment, assessor
            ),
        }
    }

    /// The REST path of one of this owner's resources (by label or numeric id).
    pub fn resource_path(&self, resource: &str) -> String {
        format!("{}/resources/{}", self.path(), resource)
    }
}

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
}

impl Node {
    pub fn is_dir(&self) -> bool {
        !matches!(self, Node::File { .. })
    }

    /// The REST path of the object, where it has one.
    pub fn path(&self) -> Option<String> {
        Some(match self {
            Node::Root | Node::Resources { .. } | Node::Assessors { .. } => return None,
            Node::Project { project } => Owner::Project {
                project: project.clone(),
            }
            .path(),
            Node::Subject { project, subject } => Owner::Subject {
                project: project.clone(),
                subject: subject.clone(),
            }
            .path(),
            Node::Experiment { experiment, .. } => Owner::Experiment {
                experiment: experiment.clone(),
            }
            .path(),
            Node::Assessor {
                experiment,
                assessor,
            } => format!("/data/experiments/{}/assessors/{}", experiment, assessor),
            Node::Scan {
                experiment, scan, ..
            } => Owner::Scan {
                experiment: experiment.clone(),
                scan: scan.clone(),
            }
            .path(),
            Node::Resource { owner, resource } => owner.resource_path(resource),
            Node::Folder {
                owner,
                resource,
                path,
            } => format!("{}/files/{}/", owner.resource_path(resource), path),
            Node::File {
                owner,
                resource,
                path,
                ..
            } => format!("{}/files/{}", owner.resource_path(resource), path),
        })
    }
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
    fn paths_are_raw_server_paths() {
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
            file.path().unwrap(),
            "/data/experiments/XNAT_E00001/scans/1/resources/NIFTI/files/sub dir/a#b?.nii.gz"
        );
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
