//! Resolving a parsed archive path against the archive: labels or IDs at
//! each level, ID shortcuts (`/data/experiments/{ID}`), scan selections
//! (`ALL`, comma lists, IDs or types) and the project access check.

use super::error::{XnatError, XnatResult};
use super::path::{ArchivePath, Coll, FilesSel, Step};
use super::CurrentUser;
use crate::model::{Archive, ResourceOwner};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Root,
    Project(String),
    Subject(String),
    /// An image session or other experiment, or an assessor.
    Experiment(String),
    Scan {
        experiment: String,
        scan: String,
    },
    /// `scans/ALL` or `scans/1,2` (scan IDs).
    ScanSet {
        experiment: String,
        scans: Vec<String>,
    },
    Resource(u64),
    /// One resource label picked from each scan of a scan set.
    ResourceSet(Vec<u64>),
}

#[derive(Debug, Clone)]
pub enum Resolved {
    /// Every step named an existing object.
    Object(Node),
    /// The last step named a collection without a key.
    Collection { parent: Node, coll: Coll },
    /// A step named something that does not exist (yet).
    Missing {
        parent: Node,
        coll: Coll,
        key: String,
        rest: Vec<Step>,
        files: Option<FilesSel>,
    },
    /// `…/files[/path]` below `parent`.
    Files { parent: Node, sel: FilesSel },
}

/// The project an object lives in, if any.
pub fn node_project(a: &Archive, node: &Node) -> Option<String> {
    match node {
        Node::Root => None,
        Node::Project(p) => Some(p.clone()),
        Node::Subject(s) => a.subjects.get(s).map(|s| s.project.clone()),
        Node::Experiment(e)
        | Node::Scan { experiment: e, .. }
        | Node::ScanSet { experiment: e, .. } => a.experiments.get(e).map(|e| e.project.clone()),
        Node::Resource(r) => a.resources.get(r).and_then(|r| a.owner_project(&r.owner)),
        Node::ResourceSet(rs) => rs
            .first()
            .and_then(|r| a.resources.get(r))
            .and_then(|r| a.owner_project(&r.owner)),
    }
}

/// The resource owner a node stands for (for `resources` below it).
pub fn owner_of(a: &Archive, node: &Node, coll: Coll) -> Option<ResourceOwner> {
    match (node, coll) {
        (Node::Project(p), Coll::Resources) => Some(ResourceOwner::Project(p.clone())),
        (Node::Subject(s), Coll::Resources) => Some(ResourceOwner::Subject(s.clone())),
        (Node::Experiment(e), Coll::Resources) => Some(ResourceOwner::Experiment(e.clone())),
        (Node::Experiment(e), Coll::InResources)
            if a.experiments.get(e).is_some_and(|x| x.is_assessor()) =>
        {
            Some(ResourceOwner::AssessorIn(e.clone()))
        }
        (Node::Scan { experiment, scan }, Coll::Resources) => Some(ResourceOwner::Scan {
            experiment: experiment.clone(),
            scan: scan.clone(),
        }),
        _ => None,
    }
}

/// 404 for an unknown project, 403 for one the user may not read.
pub fn check_project(a: &Archive, user: &CurrentUser, project: &str) -> XnatResult<()> {
    if !a.projects.contains_key(project) {
        return Err(XnatError::not_found(format!(
            "Unable to identify project {project}"
        )));
    }
    if user.admin || a.can_access(&user.name, project) {
        Ok(())
    } else {
        Err(XnatError::forbidden(format!(
            "Specified user account has insufficient privileges for experiments in the {project} project."
        )))
    }
}

/// 403 for a change to a project the user may only read (a collaborator: see
/// `model::Project`); XNAT answers permission failures with 403 (reference §2.6).
/// One doubt: XNAT's FileList `handlePost` (XW 1.8.9.1 and NW) only skips the upload when
/// `canEdit` fails and sets no status, so a real server may answer a collaborator's upload
/// with an empty 200 and store nothing; the sim follows the reference's 403.
pub fn check_write(a: &Archive, user: &CurrentUser, project: &str) -> XnatResult<()> {
    if user.admin || a.can_write(&user.name, project) {
        Ok(())
    } else {
        Err(XnatError::forbidden(format!(
            "User account doesn't have permission to modify data in the {project} project."
        )))
    }
}

/// 403 for a delete by anyone but an owner or an admin (`FileList.handleDelete` checks
/// `canDelete`, evidence: owners CRUD, members CRU).
pub fn check_delete(a: &Archive, user: &CurrentUser, project: &str) -> XnatResult<()> {
    if user.admin || a.can_delete(&user.name, project) {
        Ok(())
    } else {
        Err(XnatError::forbidden(
            "User account doesn't have permission to modify this session.",
        ))
    }
}

/// The project a write to `resolved` changes (None: a new project, or no project at all).
pub fn target_project(a: &Archive, resolved: &Resolved) -> Option<String> {
    match resolved {
        Resolved::Object(node) => node_project(a, node),
        Resolved::Collection { parent, .. }
        | Resolved::Missing { parent, .. }
        | Resolved::Files { parent, .. } => node_project(a, parent),
    }
}

/// Scan IDs selected by `ALL` or a comma list of IDs and types.
fn select_scans(a: &Archive, experiment: &str, key: &str) -> Vec<String> {
    let Some(e) = a.experiments.get(experiment) else {
        return Vec::new();
    };
    if key == "ALL" {
        return e.scans.iter().map(|s| s.id.clone()).collect();
    }
    let mut out: Vec<String> = Vec::new();
    for k in key.split(',') {
        let by_id = e.scans.iter().filter(|s| s.id == k);
        let by_type = e.scans.iter().filter(|s| s.scan_type == k);
        let picked: Vec<&String> = if e.scans.iter().any(|s| s.id == k) {
            by_id.map(|s| &s.id).collect()
        } else {
            by_type.map(|s| &s.id).collect()
        };
        for id in picked {
            if !out.contains(id) {
                out.push(id.clone());
            }
        }
    }
    out
}

/// Finds the child `key` of `cur` in collection `coll`.
fn child(
    a: &Archive,
    user: &CurrentUser,
    cur: &Node,
    coll: Coll,
    key: &str,
) -> XnatResult<Option<Node>> {
    let found = match (cur, coll) {
        (Node::Root, Coll::Projects) => {
            if !a.projects.contains_key(key) {
                return Ok(None);
            }
            check_project(a, user, key)?;
            Some(Node::Project(key.to_string()))
        }
        (Node::Root, Coll::Subjects) => match a.subjects.get(key) {
            Some(s) => {
                check_project(a, user, &s.project)?;
                Some(Node::Subject(s.id.clone()))
            }
            None => None,
        },
        (Node::Root, Coll::Experiments) => match a.experiments.get(key) {
            Some(e) => {
                check_project(a, user, &e.project)?;
                Some(Node::Experiment(e.id.clone()))
            }
            None => None,
        },
        (Node::Project(p), Coll::Subjects) => a
            .subject_in_project(p, key)
            .map(|s| Node::Subject(s.id.clone())),
        (Node::Project(p), Coll::Experiments) => a
            .experiment_in_project(p, key)
            .map(|e| Node::Experiment(e.id.clone())),
        (Node::Subject(s), Coll::Experiments) => a
            .experiment_in_subject(s, key)
            .map(|e| Node::Experiment(e.id.clone())),
        (Node::Experiment(e), Coll::Scans) => {
            if key == "ALL" || key.contains(',') {
                Some(Node::ScanSet {
                    experiment: e.clone(),
                    scans: select_scans(a, e, key),
                })
            } else {
                a.experiments
                    .get(e)
                    .and_then(|x| x.scan(key))
                    .map(|s| Node::Scan {
                        experiment: e.clone(),
                        scan: s.id.clone(),
                    })
            }
        }
        (Node::Experiment(e), Coll::Assessors) => a
            .assessor_of(e, key)
            .map(|x| Node::Experiment(x.id.clone())),
        (Node::ScanSet { experiment, scans }, Coll::Resources) => {
            let ids: Vec<u64> = scans
                .iter()
                .filter_map(|s| {
                    let owner = ResourceOwner::Scan {
                        experiment: experiment.clone(),
                        scan: s.clone(),
                    };
                    a.resource_of(&owner, key).map(|r| r.id)
                })
                .collect();
            Some(Node::ResourceSet(ids))
        }
        (node, Coll::Resources | Coll::InResources) => match owner_of(a, node, coll) {
            Some(owner) => a.resource_of(&owner, key).map(|r| Node::Resource(r.id)),
            None => return Err(XnatError::not_found("Invalid resource path")),
        },
        _ => return Err(XnatError::not_found("Unknown URI")),
    };
    Ok(found)
}

pub fn resolve(a: &Archive, user: &CurrentUser, path: &ArchivePath) -> XnatResult<Resolved> {
    let mut cur = Node::Root;
    for (i, step) in path.steps.iter().enumerate() {
        let Some(key) = &step.key else {
            if i + 1 != path.steps.len() || path.files.is_some() {
                return Err(XnatError::not_found("Unknown URI"));
            }
            if let Some(p) = node_project(a, &cur) {
                check_project(a, user, &p)?;
            }
            return Ok(Resolved::Collection {
                parent: cur,
                coll: step.coll,
            });
        };
        match child(a, user, &cur, step.coll, key)? {
            Some(next) => cur = next,
            None => {
                if let Some(p) = node_project(a, &cur) {
                    check_project(a, user, &p)?;
                }
                return Ok(Resolved::Missing {
                    parent: cur,
                    coll: step.coll,
                    key: key.clone(),
                    rest: path.steps[i + 1..].to_vec(),
                    files: path.files.clone(),
                });
            }
        }
    }
    Ok(match &path.files {
        Some(sel) => Resolved::Files {
            parent: cur,
            sel: sel.clone(),
        },
        None => Resolved::Object(cur),
    })
}

/// The 404 message XNAT gives for a missing object of a collection.
pub fn missing_message(coll: Coll, key: &str) -> String {
    match coll {
        Coll::Projects => format!("Unable to identify project {key}"),
        Coll::Subjects => format!("Unable to find subject {key}"),
        Coll::Experiments => format!("Unable to find experiment {key}"),
        Coll::Scans => format!("Unable to find scan {key}"),
        Coll::Assessors => format!("Unable to find assessor {key}"),
        Coll::Resources | Coll::InResources => format!("Unable to find resource {key}"),
    }
}
