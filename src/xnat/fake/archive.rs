//! The fake's archive: the objects, their resources and files, and how an address finds them
//! (subjects by ID or label, resources by label or numeric ID, files by the URI their listing
//! gave), with XNAT's answers for what is not there.

use std::collections::BTreeMap;

use bytes::Bytes;
use md5::{Digest, Md5};

use crate::xnat::address::Owner;
use crate::xnat::error::{Result, XnatError};
use crate::xnat::model::CatalogFile;
use crate::xnat::paths;

/// A file's bytes: held, or `size` bytes repeating `pattern` (for files too big to hold).
#[derive(Clone)]
pub(super) enum Content {
    Bytes(Bytes),
    Pattern { pattern: Bytes, size: u64 },
}

impl Content {
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Pattern { size, .. } => *size,
        }
    }

    /// Up to `max` bytes at `pos` (a zero-copy slice).
    pub fn chunk(&self, pos: u64, max: u64) -> Bytes {
        match self {
            Content::Bytes(b) => b.slice(pos as usize..(pos + max).min(b.len() as u64) as usize),
            Content::Pattern { pattern, size } => {
                let p = pattern.len() as u64;
                let at = pos % p;
                let n = max.min(p - at).min(size - pos);
                pattern.slice(at as usize..(at + n) as usize)
            }
        }
    }
}

pub(super) struct File {
    pub content: Content,
    /// The catalog's MD5 digest, if it has one.
    pub digest: Option<String>,
    /// The size the catalog lists, when it is wrong (a stale catalog).
    pub listed_size: Option<u64>,
    pub format: String,
}

pub(super) struct Resource {
    pub id: u64,
    /// The owner with accession IDs (a subject by ID, not label).
    pub owner: Owner,
    pub label: String,
    pub format: String,
    /// The catalog's entries in its order (a damaged catalog may hold a path twice).
    pub files: Vec<(String, File)>,
}

impl Resource {
    pub fn file(&self, path: &str) -> Option<&File> {
        self.files.iter().find(|(p, _)| p == path).map(|(_, f)| f)
    }

    /// Put `file` at `path`, in place of the entry there if any.
    pub fn put(&mut self, path: &str, file: File) {
        match self.files.iter_mut().find(|(p, _)| p == path) {
            Some(entry) => entry.1 = file,
            None => self.files.push((path.to_string(), file)),
        }
    }

    pub fn remove(&mut self, path: &str) {
        self.files.retain(|(p, _)| p != path);
    }

    /// The URI a listing gives for `path`: the resource by numeric ID, as XNAT writes it.
    pub fn uri(&self, path: &str) -> String {
        paths::resource(&self.owner, &self.id.to_string())
            .file(path)
            .raw()
            .to_string()
    }

    pub fn row(&self, path: &str, file: &File) -> CatalogFile {
        CatalogFile {
            name: path.rsplit('/').next().unwrap_or(path).to_string(),
            path: path.to_string(),
            size: Some(file.listed_size.unwrap_or(file.content.len())),
            uri: self.uri(path),
            digest: file.digest.clone(),
            format: file.format.clone(),
            collection: self.label.clone(),
            cat_id: self.id.to_string(),
            ..CatalogFile::default()
        }
    }
}

pub(super) struct Subject {
    pub id: String,
    pub label: String,
    pub project: String,
}

pub(super) struct Experiment {
    pub id: String,
    pub label: String,
    pub project: String,
    pub subject: String,
    pub xsi_type: String,
    pub date: String,
}

pub(super) struct Scan {
    pub experiment: String,
    pub id: String,
    pub scan_type: String,
    pub series_description: String,
}

pub(super) struct Assessor {
    pub experiment: String,
    pub id: String,
    pub label: String,
    pub xsi_type: String,
}

#[derive(Default)]
pub(super) struct Archive {
    pub projects: BTreeMap<String, String>,
    pub subjects: Vec<Subject>,
    pub experiments: Vec<Experiment>,
    pub scans: Vec<Scan>,
    pub assessors: Vec<Assessor>,
    pub resources: Vec<Resource>,
    next_id: u64,
}

pub(super) fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// XNAT's 404, as the client reports it.
pub(super) fn not_found(method: &str, what: &str) -> XnatError {
    XnatError::from_status(
        method,
        &format!("http://fake.invalid{what}"),
        404,
        "Unable to identify object".into(),
    )
}

impl Archive {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn project(&self, method: &str, project: &str) -> Result<()> {
        if self.projects.contains_key(project) {
            Ok(())
        } else {
            Err(not_found(method, &format!("/data/projects/{project}")))
        }
    }

    /// The subject `subject` (ID or label) of `project`.
    pub fn subject(&self, project: &str, subject: &str) -> Option<&Subject> {
        self.subjects
            .iter()
            .find(|s| s.project == project && (s.id == subject || s.label == subject))
    }

    pub fn experiment(&self, id: &str) -> Option<&Experiment> {
        self.experiments.iter().find(|e| e.id == id)
    }

    pub fn scan(&self, experiment: &str, id: &str) -> Option<&Scan> {
        self.scans
            .iter()
            .find(|s| s.experiment == experiment && s.id == id)
    }

    /// The owner with accession IDs, or XNAT's 404.
    pub fn owner(&self, method: &str, owner: &Owner) -> Result<Owner> {
        let found = match owner {
            Owner::Project { project } => {
                self.projects.contains_key(project).then(|| owner.clone())
            }
            Owner::Subject { project, subject } => {
                self.subject(project, subject).map(|s| Owner::Subject {
                    project: project.clone(),
                    subject: s.id.clone(),
                })
            }
            Owner::Experiment { experiment } => self.experiment(experiment).map(|_| owner.clone()),
            Owner::Scan { experiment, scan } => self.scan(experiment, scan).map(|_| owner.clone()),
            Owner::Assessor {
                experiment,
                assessor,
            } => self
                .assessors
                .iter()
                .find(|a| {
                    &a.experiment == experiment && (&a.id == assessor || &a.label == assessor)
                })
                .map(|a| Owner::Assessor {
                    experiment: experiment.clone(),
                    assessor: a.id.clone(),
                }),
        };
        found.ok_or_else(|| not_found(method, paths::owner(owner).raw()))
    }

    /// The index of resource `resource` (label or numeric ID) of `owner`.
    pub fn resource(&self, method: &str, owner: &Owner, resource: &str) -> Result<usize> {
        let owner = self.owner(method, owner)?;
        self.resources
            .iter()
            .position(|r| r.owner == owner && (r.label == resource || r.id.to_string() == resource))
            .ok_or_else(|| not_found(method, paths::resource(&owner, resource).raw()))
    }

    pub fn add_resource(&mut self, owner: Owner, label: &str) -> usize {
        let id = self.next_id();
        self.resources.push(Resource {
            id,
            owner,
            label: label.to_string(),
            format: String::new(),
            files: Vec::new(),
        });
        self.resources.len() - 1
    }

    /// The resource and path a listing's URI names.
    pub fn find_uri(&self, uri: &str) -> Option<(&Resource, &str, &File)> {
        self.resources.iter().find_map(|r| {
            r.files
                .iter()
                .find(|(path, _)| r.uri(path) == uri)
                .map(|(path, file)| (r, path.as_str(), file))
        })
    }

    /// Remove the resources of `owner`, or of every owner `below` says is under the object.
    pub fn remove_resources(&mut self, below: impl Fn(&Owner) -> bool) {
        self.resources.retain(|r| !below(&r.owner));
    }
}
