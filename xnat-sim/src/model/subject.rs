//! An XNAT subject: a participant inside one project.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Subject {
    /// Accession ID, `XNAT_S00001`.
    pub id: String,
    pub project: String,
    pub label: String,
    pub insert_date: String,
    pub insert_user: String,
    pub resources: Vec<u64>,
    pub fields: BTreeMap<String, String>,
}
