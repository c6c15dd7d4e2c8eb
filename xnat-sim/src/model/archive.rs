//! The whole archive: every object by its accession ID, the id counters, and
//! the lookups and changes the REST layer, `populate` and `import` share.

use super::{
    now_ms, xnat_timestamp, xsi, CatalogFile, Experiment, HistoryFile, Project, Resource,
    ResourceOwner, Scan, Subject, User,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counters for the next accession IDs and numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NextIds {
    pub subject: u64,
    pub experiment: u64,
    pub resource: u64,
    pub scan_uid: u64,
    pub blob: u64,
}

impl Default for NextIds {
    fn default() -> Self {
        NextIds {
            subject: 1,
            experiment: 1,
            resource: 1,
            scan_uid: 1,
            blob: 1,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Archive {
    pub projects: BTreeMap<String, Project>,
    pub subjects: BTreeMap<String, Subject>,
    pub experiments: BTreeMap<String, Experiment>,
    pub resources: BTreeMap<u64, Resource>,
    pub users: BTreeMap<String, User>,
    pub next: NextIds,
}

impl Archive {
    // ---- users and access ----

    /// Whether `user` may read project `project` (admin, owner, member or collaborator).
    pub fn can_access(&self, user: &str, project: &str) -> bool {
        if self.users.get(user).is_some_and(|u| u.admin) {
            return true;
        }
        self.projects.get(project).is_some_and(|p| p.can_read(user))
    }

    /// Whether `user` may change project `project`: admins, owners and members, not
    /// collaborators (see [`Project`]).
    pub fn can_write(&self, user: &str, project: &str) -> bool {
        if self.users.get(user).is_some_and(|u| u.admin) {
            return true;
        }
        self.projects
            .get(project)
            .is_some_and(|p| p.is_member(user))
    }

    /// Whether `user` may delete in project `project`: admins and owners. XNAT's members
    /// create and edit but do not delete (its project roles: owners CRUD, members CRU).
    pub fn can_delete(&self, user: &str, project: &str) -> bool {
        if self.users.get(user).is_some_and(|u| u.admin) {
            return true;
        }
        self.projects
            .get(project)
            .is_some_and(|p| p.owners.contains(user))
    }

    pub fn add_user(&mut self, name: &str, password: &str, admin: bool) {
        let u = self.users.entry(name.to_string()).or_default();
        u.name = name.to_string();
        u.password = password.to_string();
        u.admin |= admin;
    }

    // ---- lookups ----

    /// A subject of `project` by accession ID or label.
    pub fn subject_in_project(&self, project: &str, key: &str) -> Option<&Subject> {
        if let Some(s) = self.subjects.get(key).filter(|s| s.project == project) {
            return Some(s);
        }
        self.subjects
            .values()
            .find(|s| s.project == project && s.label == key)
    }

    /// An experiment (session or assessor) of `project` by accession ID or label.
    pub fn experiment_in_project(&self, project: &str, key: &str) -> Option<&Experiment> {
        if let Some(e) = self.experiments.get(key).filter(|e| e.project == project) {
            return Some(e);
        }
        self.experiments
            .values()
            .find(|e| e.project == project && e.label == key)
    }

    /// An experiment of a subject by accession ID or label.
    pub fn experiment_in_subject(&self, subject: &str, key: &str) -> Option<&Experiment> {
        if let Some(e) = self
            .experiments
            .get(key)
            .filter(|e| e.subject_id == subject && !e.is_assessor())
        {
            return Some(e);
        }
        self.experiments
            .values()
            .find(|e| e.subject_id == subject && !e.is_assessor() && e.label == key)
    }

    /// An assessor of an image session by accession ID or label.
    pub fn assessor_of(&self, session: &str, key: &str) -> Option<&Experiment> {
        self.experiments
            .values()
            .filter(|e| e.session_id.as_deref() == Some(session))
            .find(|e| e.id == key)
            .or_else(|| {
                self.experiments
                    .values()
                    .filter(|e| e.session_id.as_deref() == Some(session))
                    .find(|e| e.label == key)
            })
    }

    pub fn subject_experiments<'a>(
        &'a self,
        subject: &'a str,
    ) -> impl Iterator<Item = &'a Experiment> + 'a {
        self.experiments
            .values()
            .filter(move |e| e.subject_id == subject && !e.is_assessor())
    }

    pub fn assessors_of<'a>(
        &'a self,
        session: &'a str,
    ) -> impl Iterator<Item = &'a Experiment> + 'a {
        self.experiments
            .values()
            .filter(move |e| e.session_id.as_deref() == Some(session))
    }

    /// The resource ids hanging off `owner`, in creation order.
    pub fn resource_ids(&self, owner: &ResourceOwner) -> Vec<u64> {
        match owner {
            ResourceOwner::Project(p) => self.projects.get(p).map(|p| p.resources.clone()),
            ResourceOwner::Subject(s) => self.subjects.get(s).map(|s| s.resources.clone()),
            ResourceOwner::Experiment(e) => self.experiments.get(e).map(|e| e.resources.clone()),
            ResourceOwner::AssessorIn(e) => self.experiments.get(e).map(|e| e.in_resources.clone()),
            ResourceOwner::Scan { experiment, scan } => self
                .experiments
                .get(experiment)
                .and_then(|e| e.scans.iter().find(|s| &s.id == scan))
                .map(|s| s.resources.clone()),
        }
        .unwrap_or_default()
    }

    /// A resource of `owner` by label or numeric id (label first, as XNAT).
    pub fn resource_of(&self, owner: &ResourceOwner, key: &str) -> Option<&Resource> {
        let ids = self.resource_ids(owner);
        let rs: Vec<&Resource> = ids.iter().filter_map(|i| self.resources.get(i)).collect();
        rs.iter()
            .find(|r| r.label == key)
            .or_else(|| {
                key.parse::<u64>()
                    .ok()
                    .and_then(|n| rs.iter().find(|r| r.id == n))
            })
            .copied()
    }

    /// The project a resource owner lives in.
    pub fn owner_project(&self, owner: &ResourceOwner) -> Option<String> {
        match owner {
            ResourceOwner::Project(p) => Some(p.clone()),
            ResourceOwner::Subject(s) => self.subjects.get(s).map(|s| s.project.clone()),
            ResourceOwner::Experiment(e)
            | ResourceOwner::AssessorIn(e)
            | ResourceOwner::Scan { experiment: e, .. } => {
                self.experiments.get(e).map(|e| e.project.clone())
            }
        }
    }

    // ---- creation ----

    pub fn add_project(&mut self, id: &str, creator: &str) -> &mut Project {
        let mut p = Project::new(id, creator);
        if !creator.is_empty() {
            p.owners.insert(creator.to_string());
        }
        self.projects.insert(id.to_string(), p);
        self.projects.get_mut(id).expect("just inserted")
    }

    pub fn add_subject(&mut self, project: &str, label: &str, user: &str) -> String {
        let id = format!("XNAT_S{:05}", self.next.subject);
        self.next.subject += 1;
        self.subjects.insert(
            id.clone(),
            Subject {
                id: id.clone(),
                project: project.to_string(),
                label: label.to_string(),
                insert_date: xnat_timestamp(now_ms()),
                insert_user: user.to_string(),
                ..Default::default()
            },
        );
        id
    }

    fn next_experiment_id(&mut self) -> String {
        let id = format!("XNAT_E{:05}", self.next.experiment);
        self.next.experiment += 1;
        id
    }

    pub fn add_experiment(
        &mut self,
        subject_id: &str,
        label: &str,
        xsi_type: &str,
        user: &str,
    ) -> String {
        let project = self
            .subjects
            .get(subject_id)
            .map(|s| s.project.clone())
            .unwrap_or_default();
        let id = self.next_experiment_id();
        self.experiments.insert(
            id.clone(),
            Experiment {
                id: id.clone(),
                project,
                subject_id: subject_id.to_string(),
                label: label.to_string(),
                xsi_type: xsi::canonical(xsi_type),
                insert_date: xnat_timestamp(now_ms()),
                insert_user: user.to_string(),
                ..Default::default()
            },
        );
        id
    }

    /// Adds an image assessor of `session`.
    pub fn add_assessor(
        &mut self,
        session: &str,
        label: &str,
        xsi_type: &str,
        user: &str,
    ) -> String {
        let (project, subject) = self
            .experiments
            .get(session)
            .map(|e| (e.project.clone(), e.subject_id.clone()))
            .unwrap_or_default();
        let id = self.next_experiment_id();
        self.experiments.insert(
            id.clone(),
            Experiment {
                id: id.clone(),
                project,
                subject_id: subject,
                label: label.to_string(),
                xsi_type: xsi::canonical(xsi_type),
                insert_date: xnat_timestamp(now_ms()),
                insert_user: user.to_string(),
                session_id: Some(session.to_string()),
                ..Default::default()
            },
        );
        id
    }

    /// Adds a scan to a session; returns false if the session is unknown.
    pub fn add_scan(&mut self, experiment: &str, scan: Scan) -> bool {
        let uid = self.next.scan_uid;
        match self.experiments.get_mut(experiment) {
            Some(e) => {
                self.next.scan_uid += 1;
                e.scans.push(Scan { uid, ..scan });
                true
            }
            None => false,
        }
    }

    /// Adds an empty resource to `owner` and returns its numeric id.
    pub fn add_resource(&mut self, owner: ResourceOwner, label: &str) -> u64 {
        let id = self.next.resource;
        self.next.resource += 1;
        match &owner {
            ResourceOwner::Project(p) => {
                if let Some(p) = self.projects.get_mut(p) {
                    p.resources.push(id)
                }
            }
            ResourceOwner::Subject(s) => {
                if let Some(s) = self.subjects.get_mut(s) {
                    s.resources.push(id)
                }
            }
            ResourceOwner::Experiment(e) => {
                if let Some(e) = self.experiments.get_mut(e) {
                    e.resources.push(id)
                }
            }
            ResourceOwner::AssessorIn(e) => {
                if let Some(e) = self.experiments.get_mut(e) {
                    e.in_resources.push(id)
                }
            }
            ResourceOwner::Scan { experiment, scan } => {
                if let Some(s) = self
                    .experiments
                    .get_mut(experiment)
                    .and_then(|e| e.scans.iter_mut().find(|s| &s.id == scan))
                {
                    s.resources.push(id)
                }
            }
        }
        self.resources.insert(id, Resource::new(id, label, owner));
        id
    }

    pub fn next_blob(&mut self) -> u64 {
        let b = self.next.blob;
        self.next.blob += 1;
        b
    }

    /// Catalogues a file; an entry with the same path moves to history first.
    pub fn put_file(&mut self, resource: u64, file: CatalogFile) {
        if let Some(r) = self.resources.get_mut(&resource) {
            if let Some(i) = r.files.iter().position(|f| f.path == file.path) {
                let old = r.files.remove(i);
                r.history.push(HistoryFile {
                    file: old,
                    replaced_ms: now_ms(),
                });
                r.files.insert(i, file);
            } else {
                r.files.push(file);
            }
        }
    }

    // ---- removal ----

    /// Removes a resource and returns the blobs it held (current and history).
    pub fn remove_resource(&mut self, id: u64) -> Vec<u64> {
        let Some(r) = self.resources.remove(&id) else {
            return Vec::new();
        };
        let unlink = |v: &mut Vec<u64>| v.retain(|x| *x != id);
        match &r.owner {
            ResourceOwner::Project(p) => {
                if let Some(p) = self.projects.get_mut(p) {
                    unlink(&mut p.resources)
                }
            }
            ResourceOwner::Subject(s) => {
                if let Some(s) = self.subjects.get_mut(s) {
                    unlink(&mut s.resources)
                }
            }
            ResourceOwner::Experiment(e) => {
                if let Some(e) = self.experiments.get_mut(e) {
                    unlink(&mut e.resources)
                }
            }
            ResourceOwner::AssessorIn(e) => {
                if let Some(e) = self.experiments.get_mut(e) {
                    unlink(&mut e.in_resources)
                }
            }
            ResourceOwner::Scan { experiment, scan } => {
                if let Some(s) = self
                    .experiments
                    .get_mut(experiment)
                    .and_then(|e| e.scans.iter_mut().find(|s| &s.id == scan))
                {
                    unlink(&mut s.resources)
                }
            }
        }
        r.files
            .iter()
            .map(|f| f.blob)
            .chain(r.history.iter().map(|h| h.file.blob))
            .collect()
    }

    pub fn remove_scan(&mut self, experiment: &str, scan: &str) -> Vec<u64> {
        let ids = self.resource_ids(&ResourceOwner::Scan {
            experiment: experiment.to_string(),
            scan: scan.to_string(),
        });
        let mut blobs: Vec<u64> = ids
            .into_iter()
            .flat_map(|r| self.remove_resource(r))
            .collect();
        if let Some(e) = self.experiments.get_mut(experiment) {
            e.scans.retain(|s| s.id != scan);
        }
        blobs.sort_unstable();
        blobs
    }

    pub fn remove_experiment(&mut self, id: &str) -> Vec<u64> {
        let mut blobs = Vec::new();
        let assessors: Vec<String> = self.assessors_of(id).map(|a| a.id.clone()).collect();
        for a in assessors {
            blobs.extend(self.remove_experiment(&a));
        }
        let Some(e) = self.experiments.get(id).cloned() else {
            return blobs;
        };
        for s in &e.scans {
            blobs.extend(self.remove_scan(id, &s.id));
        }
        for r in e.resources.iter().chain(&e.in_resources) {
            blobs.extend(self.remove_resource(*r));
        }
        self.experiments.remove(id);
        blobs
    }

    pub fn remove_subject(&mut self, id: &str) -> Vec<u64> {
        let exps: Vec<String> = self.subject_experiments(id).map(|e| e.id.clone()).collect();
        let mut blobs: Vec<u64> = exps
            .iter()
            .flat_map(|e| self.remove_experiment(e))
            .collect();
        if let Some(s) = self.subjects.remove(id) {
            for r in s.resources {
                blobs.extend(self.remove_resource(r));
            }
        }
        blobs
    }

    pub fn remove_project(&mut self, id: &str) -> Vec<u64> {
        let subs: Vec<String> = self
            .subjects
            .values()
            .filter(|s| s.project == id)
            .map(|s| s.id.clone())
            .collect();
        let mut blobs: Vec<u64> = subs.iter().flat_map(|s| self.remove_subject(s)).collect();
        if let Some(p) = self.projects.remove(id) {
            for r in p.resources {
                blobs.extend(self.remove_resource(r));
            }
        }
        blobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_lookups() {
        let mut a = Archive::default();
        a.add_project("P", "alice");
        let s = a.add_subject("P", "S1", "alice");
        assert_eq!(s, "XNAT_S00001");
        let e = a.add_experiment(&s, "E1", "xnat:mrSessionData", "alice");
        assert_eq!(e, "XNAT_E00001");
        let q = a.add_assessor(&e, "QC", "xnat:qcAssessmentData", "alice");
        assert_eq!(q, "XNAT_E00002");
        assert_eq!(a.subject_in_project("P", "S1").unwrap().id, s);
        assert_eq!(a.subject_in_project("P", &s).unwrap().label, "S1");
        assert!(a.subject_in_project("Q", "S1").is_none());
        assert_eq!(a.experiment_in_subject(&s, "E1").unwrap().id, e);
        assert!(a.experiment_in_subject(&s, "QC").is_none());
        assert_eq!(a.assessor_of(&e, "QC").unwrap().id, q);
        assert!(a.can_access("alice", "P"));
        assert!(!a.can_access("bob", "P"));
        a.projects
            .get_mut("P")
            .unwrap()
            .collaborators
            .insert("carol".into());
        assert!(a.can_access("carol", "P"));
        assert!(!a.can_write("carol", "P"));
        assert!(a.can_write("alice", "P"));
    }

    #[test]
    fn resources_by_label_or_id_and_removal() {
        let mut a = Archive::default();
        a.add_project("P", "u");
        let s = a.add_subject("P", "S", "u");
        let e = a.add_experiment(&s, "E", "xnat:mrSessionData", "u");
        a.add_scan(
            &e,
            Scan {
                id: "1".into(),
                scan_type: "T1w".into(),
                ..Default::default()
            },
        );
        let owner = ResourceOwner::Scan {
            experiment: e.clone(),
            scan: "1".into(),
        };
        let r = a.add_resource(owner.clone(), "NIFTI");
        assert_eq!(a.resource_of(&owner, "NIFTI").unwrap().id, r);
        assert_eq!(
            a.resource_of(&owner, &r.to_string()).unwrap().label,
            "NIFTI"
        );
        let blob = a.next_blob();
        a.put_file(
            r,
            CatalogFile {
                path: "a/b.nii".into(),
                size: 3,
                digest: String::new(),
                blob,
                format: String::new(),
                content: String::new(),
                tags: vec![],
                modified_ms: 0,
            },
        );
        assert_eq!(a.resources[&r].file("a/b.nii").unwrap().name(), "b.nii");
        assert_eq!(a.remove_project("P"), vec![blob]);
        assert!(a.resources.is_empty() && a.experiments.is_empty() && a.subjects.is_empty());
    }
}
