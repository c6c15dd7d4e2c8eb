//! Experiments (image sessions and other subject assessors, and image
//! assessors) and the scans of an image session.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Experiment {
    /// Accession ID, `XNAT_E00001` (assessors share the same sequence).
    pub id: String,
    pub project: String,
    pub subject_id: String,
    pub label: String,
    /// e.g. `xnat:mrSessionData`, `xnat:qcAssessmentData`.
    pub xsi_type: String,
    /// Session date `YYYY-MM-DD`, may be empty.
    pub date: String,
    pub insert_date: String,
    pub insert_user: String,
    /// For an image assessor: the ID of the image session it assesses.
    pub session_id: Option<String>,
    pub scans: Vec<Scan>,
    /// Session-level resources; for an assessor its `out` resources.
    pub resources: Vec<u64>,
    /// An assessor's `in` resources.
    pub in_resources: Vec<u64>,
    pub fields: BTreeMap<String, String>,
}

impl Experiment {
    pub fn is_assessor(&self) -> bool {
        self.session_id.is_some()
    }

    /// Scan by ID first, then by type (XNAT's secondary lookup, which xnatpy uses).
    pub fn scan(&self, key: &str) -> Option<&Scan> {
        self.scans
            .iter()
            .find(|s| s.id == key)
            .or_else(|| self.scans.iter().find(|s| s.scan_type == key))
    }

    pub fn scan_mut(&mut self, key: &str) -> Option<&mut Scan> {
        let idx = self
            .scans
            .iter()
            .position(|s| s.id == key)
            .or_else(|| self.scans.iter().position(|s| s.scan_type == key))?;
        Some(&mut self.scans[idx])
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scan {
    pub id: String,
    pub xsi_type: String,
    pub scan_type: String,
    pub series_description: String,
    pub quality: String,
    pub note: String,
    /// `xnat_imagescandata_id`, a site-wide number.
    pub uid: u64,
    pub resources: Vec<u64>,
    pub fields: BTreeMap<String, String>,
}

impl Scan {
    /// The `{id}-{type}` folder name of XNAT's zip layout, non-word characters as `_`.
    pub fn zip_folder(&self) -> String {
        let raw = if self.scan_type.is_empty() {
            self.id.clone()
        } else {
            format!("{}-{}", self.id, self.scan_type)
        };
        raw.chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}
