//! Listing rows → the folders they fill: pure functions, no I/O and no inode numbers.
//!
//! Each returns the children of one folder, or a list of [`Fill`]s, parents before children,
//! when one listing fills several folders (a project's bulk listings fill the project, its
//! subjects, sessions and scans; a resource's file listing fills the resource and every
//! folder in it). Names here are server names; the namespace escapes them when it fills.

use std::collections::{HashMap, HashSet};

use crate::fs::inode::InodeInfo;
use crate::fs::node::{file_uri, scan_folder_name, Node};
use crate::fs::views;
use crate::xnat::{
    dates, paths, Assessor, CatalogFile, Experiment, FileAddr, Owner, Project, Resource,
    SessionScan, Subject,
};

/// The name of the reserved folder holding an object's own resources.
pub const RESOURCES_DIR: &str = ".resources";
/// The name of the reserved folder holding a session's assessors.
pub const ASSESSORS_DIR: &str = ".assessors";

/// A child as a listing gives it, before it has a shown name and an inode.
#[derive(Clone, Debug)]
pub struct Child {
    /// The server's name (a reserved folder's name as shown).
    pub name: String,
    /// Another name that also finds this child but is not listed (a scan's bare ID).
    pub alias: Option<String>,
    pub node: Node,
    pub info: InodeInfo,
}

impl Child {
    fn dir(name: impl Into<String>, node: Node, xattrs: Vec<(String, String)>) -> Child {
        Child {
            name: name.into(),
            alias: None,
            node,
            info: InodeInfo {
                xattrs,
                ..InodeInfo::default()
            },
        }
    }

    /// The child with its own time (a date from its listing row), if the text is one.
    fn dated(mut self, text: &str) -> Child {
        self.info.mtime = dates::parse(text);
        self
    }

    /// `.resources`, `.assessors`, the views and what is in them: names the mount makes, shown
    /// as they are (the only names shown with a leading dot).
    pub fn is_reserved(&self) -> bool {
        matches!(
            self.node,
            Node::Resources { .. }
                | Node::Assessors { .. }
                | Node::ViewDir { .. }
                | Node::ViewFile { .. }
        )
    }
}

/// The children of folder `dir`.
#[derive(Debug)]
pub struct Fill {
    pub dir: Node,
    pub children: Vec<Child>,
}

/// `user.xnat.*` attributes from (name, value) pairs, skipping empty values, plus the URI.
fn attrs(pairs: &[(&str, &str)], uri: &str) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (format!("user.xnat.{k}"), v.to_string()))
        .chain(std::iter::once((
            "user.xnat.uri".to_string(),
            uri.to_string(),
        )))
        .collect()
}

fn resources_dir(owner: Owner) -> Child {
    Child::dir(RESOURCES_DIR, Node::Resources { owner }, Vec::new())
}

/// The root: every project (or just `only`).
pub fn root(projects: Vec<Project>, only: Option<&str>) -> Vec<Child> {
    projects
        .into_iter()
        .filter(|p| only.is_none_or(|only| only == p.id))
        .map(|p| {
            let xattrs = attrs(
                &[("id", &p.id), ("name", &p.name)],
                paths::project(&p.id).raw(),
            );
            Child::dir(p.id.clone(), Node::Project { project: p.id }, xattrs)
        })
        .collect()
}

/// A project's folder, and every subject, session and scan folder in it, from its three bulk
/// listings.
pub fn project(
    project: &str,
    subjects: &[Subject],
    experiments: &[Experiment],
    scans: &[SessionScan],
) -> Vec<Fill> {
    let mut scans_by_session: HashMap<&str, Vec<&SessionScan>> = HashMap::new();
    for scan in scans {
        scans_by_session
            .entry(scan.experiment_id.as_str())
            .or_default()
            .push(scan);
    }
    let mut sessions_by_subject: HashMap<&str, Vec<&Experiment>> = HashMap::new();
    for e in experiments {
        sessions_by_subject
            .entry(e.subject_id.as_str())
            .or_default()
            .push(e);
    }
    let mut project_children = vec![resources_dir(Owner::Project {
        project: project.to_string(),
    })];
    for view in [views::BIDS_DIR, views::TABLES_DIR] {
        let node = Node::ViewDir {
            project: project.to_string(),
            path: view.to_string(),
        };
        project_children.push(Child::dir(view, node, Vec::new()));
    }
    let mut below = Vec::new();
    for subject in subjects {
        let owner = Owner::Subject {
            project: project.to_string(),
            subject: subject.id.clone(),
        };
        let node = Node::Subject {
            project: project.to_string(),
            subject: subject.id.clone(),
        };
        project_children.push(
            Child::dir(
                subject.label.clone(),
                node.clone(),
                attrs(
                    &[("id", &subject.id), ("label", &subject.label)],
                    paths::owner(&owner).raw(),
                ),
            )
            .dated(&subject.insert_date),
        );
        let mut subject_children = vec![resources_dir(owner)];
        let mut sessions = Vec::new();
        for e in sessions_by_subject
            .get(subject.id.as_str())
            .into_iter()
            .flatten()
        {
            let session = Node::Experiment {
                project: project.to_string(),
                experiment: e.id.clone(),
            };
            // A session is dated by its acquisition, else by its archiving.
            let date = if dates::parse(&e.date).is_some() {
                &e.date
            } else {
                &e.insert_date
            };
            subject_children.push(
                Child::dir(
                    e.label.clone(),
                    session.clone(),
                    attrs(
                        &[
                            ("id", &e.id),
                            ("label", &e.label),
                            ("xsitype", &e.xsi_type),
                            ("date", &e.date),
                        ],
                        paths::experiment(&e.id).raw(),
                    ),
                )
                .dated(date),
            );
            let session_scans = scans_by_session.get(e.id.as_str());
            sessions.extend(experiment(
                project,
                &e.id,
                session,
                session_scans.map(Vec::as_slice).unwrap_or(&[]),
            ));
        }
        below.push(Fill {
            dir: node,
            children: subject_children,
        });
        below.extend(sessions);
    }
    let mut fills = vec![Fill {
        dir: Node::Project {
            project: project.to_string(),
        },
        children: project_children,
    }];
    fills.extend(below);
    fills
}

/// A session's folder and its scan folders.
fn experiment(project: &str, experiment: &str, node: Node, scans: &[&SessionScan]) -> Vec<Fill> {
    let mut children = vec![
        resources_dir(Owner::Experiment {
            experiment: experiment.to_string(),
        }),
        Child::dir(
            ASSESSORS_DIR,
            Node::Assessors {
                experiment: experiment.to_string(),
            },
            Vec::new(),
        ),
    ];
    let mut scan_fills = Vec::new();
    for scan in scans {
        let scan_node = Node::Scan {
            project: project.to_string(),
            experiment: experiment.to_string(),
            scan: scan.id.clone(),
        };
        let owner = Owner::Scan {
            experiment: experiment.to_string(),
            scan: scan.id.clone(),
        };
        let mut child = Child::dir(
            scan_folder_name(&scan.id, &scan.scan_type),
            scan_node.clone(),
            attrs(
                &[
                    ("id", &scan.id),
                    ("type", &scan.scan_type),
                    ("series_description", &scan.series_description),
                    ("quality", &scan.quality),
                    ("xsitype", &scan.xsi_type),
                ],
                paths::owner(&owner).raw(),
            ),
        );
        child.alias = Some(scan.id.clone());
        children.push(child);
        let resources = scan
            .resources
            .iter()
            .map(|label| {
                Child::dir(
                    label.clone(),
                    Node::Resource {
                        owner: owner.clone(),
                        resource: label.clone(),
                    },
                    attrs(&[("label", label)], paths::resource(&owner, label).raw()),
                )
            })
            .collect();
        scan_fills.push(Fill {
            dir: scan_node,
            children: resources,
        });
    }
    let mut fills = vec![Fill {
        dir: node,
        children,
    }];
    fills.extend(scan_fills);
    fills
}

/// The resources of an owner (`.resources`, an assessor).
pub fn resources(owner: &Owner, rows: Vec<Resource>) -> Vec<Child> {
    rows.into_iter()
        .map(|r| {
            let label = if r.label.is_empty() {
                r.id.clone()
            } else {
                r.label.clone()
            };
            // Requests name the resource by its numeric ID where the listing gives one: a
            // label may hold characters no URL path can carry (`/`, a bare `..`).
            let key = if r.id.is_empty() {
                label.clone()
            } else {
                r.id.clone()
            };
            Child::dir(
                label,
                Node::Resource {
                    owner: owner.clone(),
                    resource: key.clone(),
                },
                attrs(
                    &[
                        ("id", &r.id),
                        ("label", &r.label),
                        ("format", &r.format),
                        ("content", &r.content),
                        ("tags", &r.tags),
                    ],
                    paths::resource(owner, &key).raw(),
                ),
            )
        })
        .collect()
}

/// The assessors of a session.
pub fn assessors(experiment: &str, rows: Vec<Assessor>) -> Vec<Child> {
    rows.into_iter()
        .map(|a| {
            let uri = paths::experiment(experiment).assessor(&a.id);
            Child::dir(
                if a.label.is_empty() {
                    a.id.clone()
                } else {
                    a.label.clone()
                },
                Node::Assessor {
                    experiment: experiment.to_string(),
                    assessor: a.id.clone(),
                },
                attrs(
                    &[("id", &a.id), ("label", &a.label), ("xsitype", &a.xsi_type)],
                    uri.raw(),
                ),
            )
            .dated(&a.insert_date)
        })
        .collect()
}

/// A resource's files as a folder tree: the resource folder first, then every folder in it,
/// parents before children.
pub fn resource_files(owner: &Owner, resource: &str, files: Vec<CatalogFile>) -> Vec<Fill> {
    let mut folders: HashMap<String, Vec<Child>> = HashMap::new();
    let mut announced: HashSet<String> = HashSet::new();
    folders.entry(String::new()).or_default();
    let folder_node = |path: &str| Node::Folder {
        owner: owner.clone(),
        resource: resource.to_string(),
        path: path.to_string(),
    };
    for file in files {
        let (folder, name) = match file.path.rsplit_once('/') {
            Some((folder, name)) => (folder.to_string(), name.to_string()),
            None => (String::new(), file.path.clone()),
        };
        // Make sure every ancestor folder exists and lists its child folder.
        let mut ancestor = folder.clone();
        while !ancestor.is_empty() {
            let (up, leaf) = match ancestor.rsplit_once('/') {
                Some((up, leaf)) => (up.to_string(), leaf.to_string()),
                None => (String::new(), ancestor.clone()),
            };
            folders.entry(ancestor.clone()).or_default();
            if announced.insert(ancestor.clone()) {
                folders.entry(up.clone()).or_default().push(Child::dir(
                    leaf,
                    folder_node(&ancestor),
                    Vec::new(),
                ));
            }
            ancestor = up;
        }
        let (node, info) = file_entry(owner, resource, file);
        folders.entry(folder).or_default().push(Child {
            name,
            alias: None,
            node,
            info,
        });
    }
    let mut paths: Vec<String> = folders.keys().cloned().collect();
    paths.sort_by_key(|p| {
        if p.is_empty() {
            0
        } else {
            p.matches('/').count() + 1
        }
    });
    paths
        .into_iter()
        .map(|path| {
            let children = folders.remove(&path).unwrap_or_default();
            let dir = if path.is_empty() {
                Node::Resource {
                    owner: owner.clone(),
                    resource: resource.to_string(),
                }
            } else {
                folder_node(&path)
            };
            Fill { dir, children }
        })
        .collect()
}

/// The node and attributes of a file from its listing row.
pub fn file_entry(owner: &Owner, resource: &str, file: CatalogFile) -> (Node, InodeInfo) {
    let version = format!(
        "{}:{}",
        file.size.map(|s| s.to_string()).unwrap_or_default(),
        file.digest.clone().unwrap_or_default()
    );
    let node = Node::File {
        owner: owner.clone(),
        resource: resource.to_string(),
        path: file.path.clone(),
        version,
    };
    let uri = if file.uri.starts_with("/data/") || file.uri.starts_with("/REST/") {
        file.uri.clone()
    } else {
        file_uri(&FileAddr {
            owner: owner.clone(),
            resource: resource.to_string(),
            path: file.path.clone(),
        })
    };
    let xattrs = attrs(
        &[
            ("format", &file.format),
            ("content", &file.content),
            ("tags", &file.tags),
            ("digest", file.digest.as_deref().unwrap_or("")),
        ],
        &uri,
    );
    let info = InodeInfo {
        mtime: None,
        size: file.size.unwrap_or(0),
        xattrs,
        uri,
        digest: file.digest,
    };
    (node, info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> CatalogFile {
        CatalogFile {
            path: path.into(),
            size: Some(1),
            ..CatalogFile::default()
        }
    }

    #[test]
    fn a_resource_tree_lists_parents_before_children() {
        let owner = Owner::Experiment {
            experiment: "E".into(),
        };
        let fills = resource_files(
            &owner,
            "R",
            vec![file("a/b/c.txt"), file("top.txt"), file("a/d.txt")],
        );
        let dirs: Vec<String> = fills
            .iter()
            .map(|f| match &f.dir {
                Node::Resource { .. } => String::new(),
                Node::Folder { path, .. } => path.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(dirs, vec!["", "a", "a/b"]);
        let names =
            |i: usize| -> Vec<&str> { fills[i].children.iter().map(|c| c.name.as_str()).collect() };
        assert_eq!(names(0), vec!["a", "top.txt"]);
        assert_eq!(names(1), vec!["b", "d.txt"]);
        assert_eq!(names(2), vec!["c.txt"]);
        let Node::File { version, .. } = &fills[2].children[0].node else {
            panic!("a file");
        };
        assert_eq!(version, "1:");
        assert_eq!(
            fills[2].children[0].info.uri,
            "/data/experiments/E/resources/R/files/a/b/c.txt"
        );
    }

    #[test]
    fn a_project_fills_every_folder_below_it_top_down() {
        let subjects = vec![Subject {
            id: "S1".into(),
            label: "sub01".into(),
            ..Subject::default()
        }];
        let experiments = vec![Experiment {
            id: "E1".into(),
            label: "sub01_MR1".into(),
            subject_id: "S1".into(),
            ..Experiment::default()
        }];
        let scans = vec![SessionScan {
            experiment_id: "E1".into(),
            id: "2".into(),
            scan_type: "T1 w".into(),
            resources: vec!["NIFTI".into()],
            ..SessionScan::default()
        }];
        let fills = project("P", &subjects, &experiments, &scans);
        let dirs: Vec<&Node> = fills.iter().map(|f| &f.dir).collect();
        assert!(matches!(dirs[0], Node::Project { .. }));
        assert!(matches!(dirs[1], Node::Subject { .. }));
        assert!(matches!(dirs[2], Node::Experiment { .. }));
        assert!(matches!(dirs[3], Node::Scan { .. }));
        let session: Vec<&str> = fills[2].children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(session, vec![RESOURCES_DIR, ASSESSORS_DIR, "2-T1_w"]);
        assert_eq!(fills[2].children[2].alias.as_deref(), Some("2"));
        assert_eq!(fills[3].children[0].name, "NIFTI");
    }
}
