//! A row of a query listing as XNAT builds it: the objects joined into the
//! row (the experiment, its subject, one of its scans…), each answering XML
//! paths by the schema's rules: a field asked through a subtype or a
//! supertype (`xnat:mrSessionData/subject_id`, `xnat:subjectAssessorData/ID`)
//! is the field of the element that declares it.

use super::shortcuts::normalise;
use crate::model::xsi;
use std::collections::BTreeMap;

/// One object of a row.
#[derive(Debug, Clone, Default)]
pub struct Part {
    /// The object's type and the types it extends, lower-cased, most specific first.
    types: Vec<String>,
    /// Values by normalised path from the declaring element (`xnat:experimentdata/label`).
    cells: BTreeMap<String, String>,
    /// Fields set through any path (`PUT …?xnat:mrSessionData/coil=…`), by lower-cased last step.
    extra: BTreeMap<String, String>,
}

impl Part {
    pub fn new(xsi_type: &str) -> Part {
        Part {
            types: xsi::ancestors(xsi_type),
            ..Default::default()
        }
    }

    /// Sets the value at `path` (any case, predicates allowed).
    pub fn with(mut self, path: &str, value: impl Into<String>) -> Part {
        self.cells.insert(normalise(path), value.into());
        self
    }

    /// Adds fields kept by their last path step.
    pub fn with_extra<'a>(
        mut self,
        fields: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Part {
        for (k, v) in fields {
            self.extra.insert(k.to_ascii_lowercase(), v.clone());
        }
        self
    }

    fn is_a(&self, element: &str) -> bool {
        self.types.iter().any(|t| t == element)
    }

    /// The value at `element/field`: declared by `element` or one of the types it extends.
    fn value(&self, element: &str, field: &str) -> Option<&str> {
        for declaring in xsi::ancestors(element) {
            if let Some(v) = self.cells.get(&format!("{declaring}/{field}")) {
                return Some(v);
            }
        }
        let leaf = field.rsplit('/').next().unwrap_or(field);
        self.extra.get(leaf).map(String::as_str)
    }
}

/// A session's path to its scans (`xnat:imagesessiondata/scans/scan/id`, as dax asks) is
/// the scan's own path (`xnat:imagescandata/id`); other normalised paths stay as they are.
pub fn scan_child(norm: &str) -> String {
    if let Some((element, field)) = norm.split_once('/') {
        if let Some(rest) = field.strip_prefix("scans/scan/") {
            if xsi::extends(element, "xnat:imageSessionData") || xsi::is_session_type(element) {
                return format!("xnat:imagescandata/{rest}");
            }
        }
    }
    norm.to_string()
}

/// One listing row.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The type of the row's main object (what `xsiType=` and the root element select).
    pub xsi_type: String,
    /// The `URI` cell.
    pub uri: String,
    pub parts: Vec<Part>,
}

impl Record {
    pub fn new(xsi_type: &str, uri: String, main: Part) -> Record {
        Record {
            xsi_type: xsi_type.to_string(),
            uri,
            parts: vec![main],
        }
    }

    pub fn join(mut self, part: Part) -> Record {
        self.parts.push(part);
        self
    }

    /// The cell for an XML path: the value of the first joined object of the path's element,
    /// or empty (XNAT gives every asked column on every row, NULL as "").
    pub fn get(&self, path: &str) -> &str {
        self.get_resolved(&resolve(path))
    }

    /// [`Record::get`] for a path [`resolve`]d already (once per column, not once per cell).
    pub fn get_resolved(&self, resolved: &str) -> &str {
        let Some((element, field)) = resolved.split_once('/') else {
            return "";
        };
        self.parts
            .iter()
            .filter(|p| p.is_a(element))
            .find_map(|p| p.value(element, field))
            .unwrap_or("")
    }
}

/// A path as records look it up: normalised, a session's path to its scans made the scan's.
pub fn resolve(path: &str) -> String {
    scan_child(&normalise(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_through_the_type_hierarchy() {
        let mut fields = BTreeMap::new();
        fields.insert("fieldStrength".to_string(), "3T".to_string());
        let r = Record::new(
            "xnat:mrSessionData",
            "/data/experiments/E1".into(),
            Part::new("xnat:mrSessionData")
                .with("xnat:experimentData/ID", "E1")
                .with("xnat:subjectAssessorData/subject_ID", "S1")
                .with_extra(&fields),
        )
        .join(Part::new("xnat:subjectData").with("xnat:subjectData/label", "sub01"));
        assert_eq!(r.get("xnat:mrSessionData/ID"), "E1");
        assert_eq!(r.get("xnat:subjectassessordata/id"), "E1");
        assert_eq!(r.get("xnat:imageSessionData/subject_id"), "S1");
        assert_eq!(r.get("xnat:subjectData/label"), "sub01");
        assert_eq!(r.get("xnat:mrsessiondata/fieldstrength"), "3T");
        assert_eq!(r.get("xnat:ctSessionData/ID"), "");
        assert_eq!(r.get("xnat:imageScanData/ID"), "");
        assert_eq!(
            scan_child("xnat:imagesessiondata/scans/scan/file/label"),
            "xnat:imagescandata/file/label"
        );
        assert_eq!(
            scan_child("xnat:subjectdata/label"),
            "xnat:subjectdata/label"
        );
    }
}
