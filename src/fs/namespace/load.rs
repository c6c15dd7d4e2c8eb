//! Which requests fill which folder: a folder's load asks the backend for the listings that
//! fill it (in bulk where XNAT allows, filling its neighbours too) and records the folders
//! `children` makes of them.

use std::collections::HashMap;

use super::{children, Namespace};
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::{Inode, ROOT_INO};
use crate::fs::node::Node;
use crate::xnat::{CatalogFile, Owner};

impl Namespace {
    pub(super) async fn load(&self, dir: &Inode) -> FsResult<()> {
        match &dir.node {
            Node::Root => {
                let projects = self.projects().await?;
                let children = children::root(projects, self.project.as_deref());
                self.fill(Node::Root, ROOT_INO, children);
            }
            Node::Project { project }
            | Node::Subject { project, .. }
            | Node::Experiment { project, .. }
            | Node::Scan { project, .. } => self.load_project(project).await?,
            Node::Resources { owner } => {
                let rows = self.resources(owner).await?;
                let children = children::resources(owner, rows);
                self.fill(dir.node.clone(), dir.parent, children);
            }
            Node::Assessors { experiment } => {
                let rows = self.assessors(experiment).await?;
                let children = children::assessors(experiment, rows);
                self.fill(dir.node.clone(), dir.parent, children);
            }
            Node::Assessor {
                experiment,
                assessor,
            } => {
                let owner = Owner::Assessor {
                    experiment: experiment.clone(),
                    assessor: assessor.clone(),
                };
                let rows = self.resources(&owner).await?;
                let children = children::resources(&owner, rows);
                self.fill(dir.node.clone(), dir.parent, children);
            }
            Node::Resource { owner, resource } => self.load_resource(dir, owner, resource).await?,
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
                self.load_resource(&resource_inode, owner, resource).await?
            }
            Node::ViewDir { project, path } => self.load_view(project, path).await?,
            Node::File { .. } | Node::ViewFile { .. } => return Err(FsError::not_dir()),
        }
        Ok(())
    }

    /// Subjects, experiments and scans of a project, from three requests.
    async fn load_project(&self, project: &str) -> FsResult<()> {
        let (subjects, experiments, scans) = futures::try_join!(
            self.subjects(project),
            self.experiments(project),
            self.scans(project),
        )?;
        let fills = children::project(project, &subjects, &experiments, &scans);
        self.apply(ROOT_INO, fills);
        Ok(())
    }

    async fn load_resource(&self, dir: &Inode, owner: &Owner, resource: &str) -> FsResult<()> {
        let Owner::Scan { experiment, .. } = owner else {
            let files = self.files(owner, resource).await?;
            self.apply(dir.parent, children::resource_files(owner, resource, files));
            return Ok(());
        };
        // One request fills every scan resource of the session.
        let rows = self.scan_files(experiment).await?;
        let mut by_resource: HashMap<(String, String), Vec<CatalogFile>> = HashMap::new();
        for row in rows {
            let label = row.resource_label().to_string();
            by_resource
                .entry((row.scan_id, label))
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
            self.apply(parent, children::resource_files(&scan_owner, &label, files));
        }
        if !filled_this {
            self.apply(
                dir.parent,
                children::resource_files(owner, resource, Vec::new()),
            );
        }
        Ok(())
    }
}
