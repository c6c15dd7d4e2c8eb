//! Loading a project's views: the project's bulk listings and the scan files of the sessions a
//! view needs, turned into a tree by `fs::views`, recorded as folders like any other; the
//! bytes of the files a view makes are kept here, by inode.

use std::collections::HashMap;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};

use super::{Child, Fill, Namespace};
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::{Inode, InodeInfo};
use crate::fs::node::{Node, ViewSource};
use crate::fs::views::{bids, bids_map::BidsMap, tables, Entry, Listings, View, ViewTree};
use crate::xnat::Owner;

/// Scan file listings asked for at once while a view loads.
const LISTINGS_AT_ONCE: usize = 8;

/// The project resource dax keeps its scan type → datatype files in.
const DAX_MAP_RESOURCE: &str = "BIDS_datatype";

/// A mapping file larger than this is not read.
const MAP_FILE_MAX: u64 = 1 << 20;

impl Namespace {
    /// The bytes of a file a view makes; `None` for any other inode.
    pub fn made_bytes(&self, inode: &Inode) -> Option<Bytes> {
        if !matches!(
            inode.node,
            Node::ViewFile {
                source: ViewSource::Made { .. },
                ..
            }
        ) {
            return None;
        }
        self.made
            .lock()
            .expect("made lock")
            .get(&inode.ino)
            .cloned()
    }

    pub(super) async fn load_view(&self, project: &str, path: &str) -> FsResult<()> {
        let view = View::of(path).ok_or_else(FsError::not_found)?;
        let (subjects, experiments, scans) = futures::try_join!(
            self.subjects(project),
            self.experiments(project),
            self.scans(project),
        )?;
        let name = self.project_name(project);
        let none = HashMap::new();
        let bare = Listings {
            project,
            name: &name,
            subjects: &subjects,
            experiments: &experiments,
            scans: &scans,
            scan_files: &none,
        };
        let map = match view {
            View::Bids => self.bids_map_for(project).await,
            View::Tables => BidsMap::default(),
        };
        let sessions = match view {
            View::Bids => bids::sessions_to_list(&bare, &map),
            View::Tables => {
                let mut all: Vec<String> = scans.iter().map(|s| s.experiment_id.clone()).collect();
                all.sort();
                all.dedup();
                all
            }
        };
        let scan_files: HashMap<_, _> = futures::stream::iter(sessions)
            .map(|e| async move {
                let rows = self.scan_files(&e).await?;
                Ok::<_, FsError>((e, rows))
            })
            .buffer_unordered(LISTINGS_AT_ONCE)
            .try_collect()
            .await?;
        let listings = Listings {
            scan_files: &scan_files,
            ..bare
        };
        let tree = match view {
            View::Bids => bids::tree(&listings, &map),
            View::Tables => tables::tree(&listings),
        };
        self.record_view(project, tree)
    }

    /// The project's name as the root listing gave it, or its ID.
    fn project_name(&self, project: &str) -> String {
        let node = Node::Project {
            project: project.to_string(),
        };
        self.inodes
            .find(&node)
            .and_then(|i| {
                i.xattrs
                    .iter()
                    .find(|(k, _)| k == "user.xnat.name")
                    .map(|(_, v)| v.clone())
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| project.to_string())
    }

    /// The mount's mapping file over the project's own (dax's `BIDS_datatype` resource).
    async fn bids_map_for(&self, project: &str) -> BidsMap {
        let mut map = self.project_bids_map(project).await;
        map.merge(self.bids_map.clone());
        map
    }

    async fn project_bids_map(&self, project: &str) -> BidsMap {
        let owner = Owner::Project {
            project: project.to_string(),
        };
        let mut map = BidsMap::default();
        // Most projects have no such resource: a 404 here is the usual answer.
        let Ok(files) = self.files(&owner, DAX_MAP_RESOURCE).await else {
            return map;
        };
        for file in files.iter().filter(|f| f.path.ends_with(".json")) {
            if file.size.unwrap_or(0) > MAP_FILE_MAX {
                tracing::warn!(file = %file.path, "BIDS mapping file over 1 MiB: not read");
                continue;
            }
            let read = async {
                let uri = if file.uri.is_empty() {
                    crate::fs::node::file_uri(&crate::xnat::FileAddr {
                        owner: owner.clone(),
                        resource: DAX_MAP_RESOURCE.to_string(),
                        path: file.path.clone(),
                    })
                } else {
                    file.uri.clone()
                };
                self.backend.fetch(&uri, None).await?.bytes().await
            };
            match read.await.map_err(|e| e.to_string()).and_then(|bytes| {
                if bytes.len() as u64 > MAP_FILE_MAX {
                    return Err("over 1 MiB".into());
                }
                BidsMap::parse(&bytes, project)
            }) {
                Ok(found) => map.merge(found),
                Err(e) => tracing::warn!(
                    project,
                    file = %file.path,
                    "BIDS mapping file in {DAX_MAP_RESOURCE} not used: {e}"
                ),
            }
        }
        map
    }

    /// Record a view's folders under the project, and keep the bytes of its made files.
    fn record_view(&self, project: &str, tree: ViewTree) -> FsResult<()> {
        let project_node = Node::Project {
            project: project.to_string(),
        };
        let project_ino = self
            .inodes
            .find(&project_node)
            .ok_or_else(FsError::not_found)?
            .ino;
        let mut made: Vec<(Node, Bytes)> = Vec::new();
        let fills: Vec<Fill> = tree
            .into_iter()
            .map(|(dir, entries)| {
                let children = entries
                    .into_iter()
                    .map(|(name, entry)| {
                        let path = format!("{dir}/{name}");
                        let (node, info) = match entry {
                            Entry::Dir => (
                                Node::ViewDir {
                                    project: project.to_string(),
                                    path,
                                },
                                InodeInfo::default(),
                            ),
                            Entry::Archive {
                                owner,
                                resource,
                                file,
                            } => {
                                let (archive, info) = super::file_entry(&owner, &resource, *file);
                                let Node::File {
                                    owner,
                                    resource,
                                    path: file_path,
                                    version,
                                } = archive
                                else {
                                    unreachable!("file_entry makes file nodes")
                                };
                                let source = ViewSource::Archive {
                                    file: crate::xnat::FileAddr {
                                        owner,
                                        resource,
                                        path: file_path,
                                    },
                                    version,
                                };
                                let node = Node::ViewFile {
                                    project: project.to_string(),
                                    path,
                                    source,
                                };
                                (node, info)
                            }
                            Entry::Made(bytes) => {
                                let md5 = format!("{:x}", Md5::digest(&bytes));
                                let node = Node::ViewFile {
                                    project: project.to_string(),
                                    path,
                                    source: ViewSource::Made { md5 },
                                };
                                let info = InodeInfo {
                                    size: bytes.len() as u64,
                                    ..InodeInfo::default()
                                };
                                made.push((node.clone(), bytes));
                                (node, info)
                            }
                        };
                        Child {
                            name,
                            alias: None,
                            node,
                            info,
                        }
                    })
                    .collect();
                Fill {
                    dir: Node::ViewDir {
                        project: project.to_string(),
                        path: dir,
                    },
                    children,
                }
            })
            .collect();
        self.apply(project_ino, fills);
        let mut kept = self.made.lock().expect("made lock");
        for (node, bytes) in made {
            if let Some(inode) = self.inodes.find(&node) {
                kept.insert(inode.ino, bytes);
            }
        }
        Ok(())
    }
}
