//! An XNAT project: the unit of access control, with XNAT's three default
//! project roles. The reference only names them (§2.2: `/data/projects` filters
//! `owner=`, `member=`, `collaborator=`) and says permission failures are 403
//! (§2.1, §2.6); what each role may do is XNAT's documented CRUD table
//! (wiki "Understanding User Roles and Permissions"): owners create, read,
//! update and delete; members create, read and update; collaborators only read.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub secondary_id: String,
    pub name: String,
    pub description: String,
    pub pi_firstname: String,
    pub pi_lastname: String,
    /// Users who created or were made owners of the project.
    pub owners: BTreeSet<String>,
    /// Users granted read/write access (`--member USER:PROJECT`).
    pub members: BTreeSet<String>,
    /// Users granted read-only access (`--collaborator USER:PROJECT`).
    #[serde(default)]
    pub collaborators: BTreeSet<String>,
    pub insert_date: String,
    pub insert_user: String,
    /// Project-level resources, by numeric resource id.
    pub resources: Vec<u64>,
    /// Extra fields set through xpath query parameters.
    pub fields: BTreeMap<String, String>,
}

impl Project {
    pub fn new(id: &str, insert_user: &str) -> Project {
        Project {
            id: id.to_string(),
            secondary_id: id.to_string(),
            name: id.to_string(),
            insert_date: super::xnat_timestamp(super::now_ms()),
            insert_user: insert_user.to_string(),
            ..Default::default()
        }
    }

    /// Whether `user` may read and write this project (admins are checked by the caller).
    pub fn is_member(&self, user: &str) -> bool {
        self.owners.contains(user) || self.members.contains(user)
    }

    /// Whether `user` may read this project: owners, members and collaborators.
    pub fn can_read(&self, user: &str) -> bool {
        self.is_member(user) || self.collaborators.contains(user)
    }
}
