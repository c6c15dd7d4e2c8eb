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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::catalog::{Catalog, FileRow, ScanRow};
use super::error::{FsError, FsResult};
use super::inode::{Ino, Inode, InodeInfo, InodeTable, ROOT_INO};
use super::names::{self, Deduper};
use super::node::{scan_folder_name, Node, Owner};

mod edit;
pub use edit::LocalEntry;

/// The name of the reserved folder holding an object's own resources.
pub const RESOURCES_DIR: &str = ".resources";
/// The name of the reserved folder holding a session's assessors.
pub const ASSESSORS_DIR: &str = ".assessors";

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

/// A child as a load produces it, before it has a shown name and an inode.
struct Child {
    name: String,
    /// Another name that also finds this child but is not listed (a scan's bare ID).
    alias: Option<String>,
    node: Node,
    info: InodeInfo,
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
}

pub struct Namespace<C: Catalog> {
    catalog: Arc<C>,
    inodes: InodeTable,
    listings: Mutex<HashMap<Ino, Arc<Listing>>>,
    loading: Mutex<HashMap<Ino, Arc<tokio::sync::Mutex<()>>>>,
    /// Entries made through the mount that the server does not list (yet): staged files and
    /// folders inside resources, by the directory node they sit in and their shown name. A
    /// listing reload keeps them, over a server entry of the same name.
    local: Mutex<HashMap<Node, std::collections::BTreeMap<String, LocalEntry>>>,
    ttl: Duration,
    project: Option<String>,
}

impl<C: Catalog> Namespace<C> {
    /// `project` limits the root to one project.
    pub fn new(catalog: Arc<C>, ttl: Duration, project: Option<String>) -> Self {
        Namespace {
            catalog,
            inodes: InodeTable::default(),
            listings: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
            ttl,
            project,
        }
    }

    pub fn catalog(&self) -> &Arc<C> {
        &self.catalog
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
        self.load(&inode).await?;
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
            FsError::new(
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

    /// The size a download of `uri` found, replacing the listed one ("sizes come from
    /// listings and are corrected by the first download"). Returns the inode whose size
    /// changed, so the kernel's copy of its attributes can be dropped.
    pub fn correct_file_size(&self, uri: &str, listed: u64, actual: u64) -> Option<Ino> {
        let inode = self.inodes.find_uri(uri)?;
        if inode.size() == actual {
            return None;
        }
        tracing::info!(uri, listed, actual, "size corrected by download");
        inode.set_size(actual);
        Some(inode.ino)
    }

    fn fresh(&self, dir: Ino) -> Option<Arc<Listing>> {
        let listings = self.listings.lock().expect("listings lock");
        listings
            .get(&dir)
            .filter(|l| l.fetched.elapsed() < self.ttl)
            .cloned()
    }

    /// The inode of a child whose own listing is filled before its parent's: interned with the
    /// child's attributes, since the parent's fill then finds the inode and keeps it as it is.
    fn intern_child(&self, child: &Child, parent: Ino) -> Ino {
        self.inodes
            .intern(child.node.clone(), parent, child.info.clone())
            .ino
    }

    /// Record `children` as the listing of the directory `node`.
    fn fill(&self, node: Node, parent: Ino, children: Vec<Child>) -> Arc<Inode> {
        let local = self.local_entries(&node);
        let dir = self.inodes.intern(node, parent, InodeInfo::default());
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
            let reserved = matches!(child.node, Node::Resources { .. } | Node::Assessors { .. });
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
            let inode = self.inodes.intern(child.node, dir.ino, child.info);
            if let Some(alias) = child.alias {
                aliases.push((names::encode(&alias), inode.ino));
            }
            by_name.insert(name.clone(), inode.ino);
            entries.push((name, inode.ino));
        }
        for (alias, ino) in aliases {
            by_name.entry(alias).or_insert(ino);
        }
        let listing = Arc::new(Listing {
            entries,
            by_name,
            fetched: Instant::now(),
            files_by_name: OnceLock::new(),
        });
        self.listings
            .lock()
            .expect("listings lock")
            .insert(dir.ino, listing);
        dir
    }

    async fn load(&self, dir: &Inode) -> FsResult<()> {
        match &dir.node {
            Node::Root => self.load_root().await,
            Node::Project { project } => self.load_project(project).await,
            Node::Subject { project, .. } | Node::Experiment { project, .. } => {
                self.load_project(project).await
            }
            Node::Scan { project, .. } => self.load_project(project).await,
            Node::Resources { owner } => self.load_resources(dir, owner).await,
            Node::Assessors { experiment } => self.load_assessors(dir, experiment).await,
            Node::Assessor {
                experiment,
                assessor,
            } => {
                let owner = Owner::Assessor {
                    experiment: experiment.clone(),
                    assessor: assessor.clone(),
                };
                self.load_resources(dir, &owner).await
            }
            Node::Resource { owner, resource } => self.load_resource(dir, owner, resource).await,
            Node::Folder {
                owner, resource, ..
            } => {
                let resource_node = Node::Resource {
                    owner: owner.clone(),
                    resource: resource.clone(),
                };
                let resource_inode = self
                    .inodes
                    .find(&resource_node)
                    .ok_or_else(FsError::not_found)?;
                self.load_resource(&resource_inode, owner, resource).await
            }
            Node::File { .. } => Err(FsError::not_dir()),
        }
    }

    async fn load_root(&self) -> FsResult<()> {
        let projects = self.catalog.projects().await?;
        let children = projects
            .into_iter()
            .filter(|p| self.project.as_deref().is_none_or(|only| only == p.id))
            .map(|p| {
                let xattrs = attrs(
                    &[("id", &p.id), ("name", &p.name)],
                    &format!("/data/projects/{}", p.id),
                );
                Child::dir(p.id.clone(), Node::Project { project: p.id }, xattrs)
            })
            .collect();
        self.fill(Node::Root, ROOT_INO, children);
        Ok(())
    }

    /// Subjects, experiments and scans of a project, from three requests.
    async fn load_project(&self, project: &str) -> FsResult<()> {
        let (subjects, experiments, scans) = futures::try_join!(
            self.catalog.subjects(project),
            self.catalog.experiments(project),
            self.catalog.scans(project),
        )?;
        let project_node = Node::Project {
            project: project.to_string(),
        };
        let mut project_children = vec![Child::dir(
            RESOURCES_DIR,
            Node::Resources {
                owner: Owner::Project {
                    project: project.to_string(),
                },
            },
            Vec::new(),
        )];
        let mut scans_by_session: HashMap<&str, Vec<&ScanRow>> = HashMap::new();
        for scan in &scans {
            scans_by_session
                .entry(scan.experiment_id.as_str())
                .or_default()
                .push(scan);
        }
        let mut sessions_by_subject: HashMap<&str, Vec<_>> = HashMap::new();
        for e in &experiments {
            sessions_by_subject
                .entry(e.subject_id.as_str())
                .or_default()
                .push(e);
        }
        let project_ino = self
            .inodes
            .find(&project_node)
            .map(|i| i.ino)
            .unwrap_or(ROOT_INO);
        for subject in &subjects {
            let subject_node = Node::Subject {
                project: project.to_string(),
                subject: subject.id.clone(),
            };
            let subject_uri = Owner::Subject {
                project: project.to_string(),
                subject: subject.id.clone(),
            }
            .path();
            let subject_child = Child::dir(
                subject.label.clone(),
                subject_node.clone(),
                attrs(
                    &[("id", &subject.id), ("label", &subject.label)],
                    &subject_uri,
                ),
            );
            let subject_ino = self.intern_child(&subject_child, project_ino);
            project_children.push(subject_child);
            let mut subject_children = vec![Child::dir(
                RESOURCES_DIR,
                Node::Resources {
                    owner: Owner::Subject {
                        project: project.to_string(),
                        subject: subject.id.clone(),
                    },
                },
                Vec::new(),
            )];
            for e in sessions_by_subject
                .get(subject.id.as_str())
                .into_iter()
                .flatten()
            {
                let experiment_node = Node::Experiment {
                    project: project.to_string(),
                    experiment: e.id.clone(),
                };
                let uri = format!("/data/experiments/{}", e.id);
                let experiment_child = Child::dir(
                    e.label.clone(),
                    experiment_node.clone(),
                    attrs(
                        &[
                            ("id", &e.id),
                            ("label", &e.label),
                            ("xsitype", &e.xsi_type),
                            ("date", &e.date),
                        ],
                        &uri,
                    ),
                );
                let experiment_ino = self.intern_child(&experiment_child, subject_ino);
                subject_children.push(experiment_child);
                let session_scans = scans_by_session.get(e.id.as_str());
                self.fill_experiment(
                    project,
                    &e.id,
                    experiment_node,
                    subject_ino,
                    experiment_ino,
                    session_scans.map(Vec::as_slice).unwrap_or(&[]),
                );
            }
            self.fill(subject_node, project_ino, subject_children);
        }
        self.fill(project_node, ROOT_INO, project_children);
        Ok(())
    }

    fn fill_experiment(
        &self,
        project: &str,
        experiment: &str,
        node: Node,
        parent: Ino,
        ino: Ino,
        scans: &[&ScanRow],
    ) {
        let mut children = vec![
            Child::dir(
                RESOURCES_DIR,
                Node::Resources {
                    owner: Owner::Experiment {
                        experiment: experiment.to_string(),
                    },
                },
                Vec::new(),
            ),
            Child::dir(
                ASSESSORS_DIR,
                Node::Assessors {
                    experiment: experiment.to_string(),
                },
                Vec::new(),
            ),
        ];
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
                    &owner.path(),
                ),
            );
            child.alias = Some(scan.id.clone());
            self.intern_child(&child, ino);
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
                        attrs(&[("label", label)], &owner.resource_path(label)),
                    )
                })
                .collect();
            self.fill(scan_node, ino, resources);
        }
        self.fill(node, parent, children);
    }

    async fn load_resources(&self, dir: &Inode, owner: &Owner) -> FsResult<()> {
        let rows = self.catalog.resources(owner).await?;
        let children = rows
            .into_iter()
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
                    label.clone(),
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
                        &owner.resource_path(&key),
                    ),
                )
            })
            .collect();
        self.fill(dir.node.clone(), dir.parent, children);
        Ok(())
    }

    async fn load_assessors(&self, dir: &Inode, experiment: &str) -> FsResult<()> {
        let rows = self.catalog.assessors(experiment).await?;
        let children = rows
            .into_iter()
            .map(|a| {
                let uri = format!("/data/experiments/{experiment}/assessors/{}", a.id);
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
                        &uri,
                    ),
                )
            })
            .collect();
        self.fill(dir.node.clone(), dir.parent, children);
        Ok(())
    }

    async fn load_resource(&self, dir: &Inode, owner: &Owner, resource: &str) -> FsResult<()> {
        if let Owner::Scan { experiment, .. } = owner {
            // One request fills every scan resource of the session.
            let rows = self.catalog.scan_files(experiment).await?;
            let mut by_resource: HashMap<(String, String), Vec<FileRow>> = HashMap::new();
            for row in rows {
                by_resource
                    .entry((row.scan_id, row.resource))
                    .or_default()
                    .push(row.file);
            }
            let mut filled_this = false;
            for ((scan, label), files) in by_resource {
                let scan_owner = Owner::Scan {
                    experiment: experiment.clone(),
                    scan,
                };
                let is_this = &scan_owner == owner && label == resource;
                let node = Node::Resource {
                    owner: scan_owner.clone(),
                    resource: label.clone(),
                };
                let parent = match self.inodes.find(&node) {
                    Some(inode) => inode.parent,
                    None if is_this => dir.parent,
                    None => continue,
                };
                filled_this |= is_this;
                self.fill_resource(node, parent, &scan_owner, &label, files);
            }
            if !filled_this {
                self.fill_resource(dir.node.clone(), dir.parent, owner, resource, Vec::new());
            }
        } else {
            let files = self.catalog.files(owner, resource).await?;
            let node = Node::Resource {
                owner: owner.clone(),
                resource: resource.to_string(),
            };
            self.fill_resource(node, dir.parent, owner, resource, files);
        }
        Ok(())
    }

    /// A resource's files as a folder tree: the resource folder and every nested folder.
    fn fill_resource(
        &self,
        node: Node,
        parent: Ino,
        owner: &Owner,
        resource: &str,
        files: Vec<FileRow>,
    ) {
        let mut folders: HashMap<String, Vec<Child>> = HashMap::new();
        let mut announced: std::collections::HashSet<String> = Default::default();
        folders.entry(String::new()).or_default();
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
                        Node::Folder {
                            owner: owner.clone(),
                            resource: resource.to_string(),
                            path: ancestor.clone(),
                        },
                        Vec::new(),
                    ));
                }
                ancestor = up;
            }
            let (file_node, info) = file_entry(owner, resource, file);
            folders.entry(folder).or_default().push(Child {
                name,
                alias: None,
                node: file_node,
                info,
            });
        }
        // Fill parents before children so nested folders know their parent inode.
        let mut paths: Vec<String> = folders.keys().cloned().collect();
        paths.sort_by_key(|p| {
            if p.is_empty() {
                0
            } else {
                p.matches('/').count() + 1
            }
        });
        let resource_ino = self
            .fill(node, parent, folders.remove("").unwrap_or_default())
            .ino;
        let mut inos: HashMap<String, Ino> = HashMap::from([(String::new(), resource_ino)]);
        for path in paths.into_iter().filter(|p| !p.is_empty()) {
            let up = path
                .rsplit_once('/')
                .map(|(u, _)| u.to_string())
                .unwrap_or_default();
            let parent_ino = inos.get(&up).copied().unwrap_or(resource_ino);
            let folder_node = Node::Folder {
                owner: owner.clone(),
                resource: resource.to_string(),
                path: path.clone(),
            };
            let children = folders.remove(&path).unwrap_or_default();
            let ino = self.fill(folder_node, parent_ino, children).ino;
            inos.insert(path, ino);
        }
    }
}

/// The node and attributes of a file from its listing row.
pub fn file_entry(owner: &Owner, resource: &str, file: FileRow) -> (Node, InodeInfo) {
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
        node.path().unwrap_or_default()
    };
    let mut xattrs = attrs(
        &[
            ("format", &file.format),
            ("content", &file.content),
            ("tags", &file.tags),
            ("digest", file.digest.as_deref().unwrap_or("")),
        ],
        &uri,
    );
    xattrs.retain(|(k, _)| !k.is_empty());
    let info = InodeInfo {
        size: file.size.unwrap_or(0),
        xattrs,
        uri,
        digest: file.digest,
    };
    (node, info)
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
