//! Which BIDS name a scan gets: a mapping file first, then ReproIn series descriptions, then
//! built-in rules for common scan types and descriptions. Pure: a scan's type and series
//! description in, a datatype, entities and suffix (or the reason it maps to nothing) out.
//!
//! A mapping file is JSON in one of two shapes labs already keep:
//! - bidskit's Protocol_Translator, as UIowa's xnat_downloader uses it: `{"<series description
//!   or scan type>": ["<datatype>", "<entities>_<suffix>"]}`, e.g. `{"rfMRI_REST_AP":
//!   ["func", "task-rest_dir-AP_bold"]}`; `["exclude", …]` leaves the scan out;
//! - dax's `BIDS_datatype` project resource: `{"<project>": {"<scan type>": "<datatype>"}}`; the
//!   suffix then comes from the rules below (a datatype they cannot name leaves the scan out).
//!
//! A key matches the series description first, then the scan type, exactly.

use std::collections::HashMap;

/// The datatypes (folders) of a BIDS session this view makes.
const DATATYPES: &[&str] = &["anat", "func", "dwi", "fmap", "perf"];

/// The order BIDS gives the entities inside a name (after `sub` and `ses`).
const ENTITY_ORDER: &[&str] = &[
    "task", "acq", "ce", "rec", "dir", "run", "mod", "echo", "flip", "inv", "mt", "part",
];

/// A scan's BIDS name, without `sub-`/`ses-` and without the extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidsName {
    pub datatype: String,
    /// `(key, value)` in BIDS order; `run` is added by the view when a name repeats.
    pub entities: Vec<(String, String)>,
    pub suffix: String,
}

impl BidsName {
    fn new(datatype: &str, entities: Vec<(String, String)>, suffix: &str) -> BidsName {
        let mut name = BidsName {
            datatype: datatype.to_string(),
            entities,
            suffix: suffix.to_string(),
        };
        name.sort();
        name
    }

    fn sort(&mut self) {
        self.entities.sort_by_key(|(k, _)| {
            ENTITY_ORDER
                .iter()
                .position(|e| e == k)
                .unwrap_or(ENTITY_ORDER.len())
        });
    }

    /// The same name with `run-<n>`.
    pub fn with_run(&self, run: usize) -> BidsName {
        let mut name = self.clone();
        name.entities.retain(|(k, _)| k != "run");
        name.entities.push(("run".into(), run.to_string()));
        name.sort();
        name
    }

    /// `<entities>_<suffix>` after the subject and session entities.
    pub fn stem(&self) -> String {
        let mut parts: Vec<String> = self
            .entities
            .iter()
            .map(|(k, v)| format!("{k}-{v}"))
            .collect();
        parts.push(self.suffix.clone());
        parts.join("_")
    }
}

/// What becomes of a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapping {
    Named(BidsName),
    /// Left out of the view, with the reason.
    Skipped(String),
}

/// A mapping file's entries.
#[derive(Clone, Debug, Default)]
pub struct BidsMap {
    /// Key → a full name, or `None` for "exclude".
    names: HashMap<String, Option<BidsName>>,
    /// Key → a datatype only (dax).
    datatypes: HashMap<String, String>,
}

impl BidsMap {
    /// Parse a mapping file (either shape; see the module comment). `project` picks dax's
    /// entries for the project.
    pub fn parse(json: &[u8], project: &str) -> Result<BidsMap, String> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
        let obj = value
            .as_object()
            .ok_or("a BIDS mapping file is a JSON object")?;
        let mut map = BidsMap::default();
        for (key, v) in obj {
            match v {
                serde_json::Value::Array(pair) => {
                    let (Some(datatype), Some(stem)) = (
                        pair.first().and_then(|d| d.as_str()),
                        pair.get(1).and_then(|s| s.as_str()),
                    ) else {
                        return Err(format!("{key:?}: expected [datatype, name]"));
                    };
                    if datatype.eq_ignore_ascii_case("exclude") {
                        map.names.insert(key.clone(), None);
                        continue;
                    }
                    let name = parse_stem(datatype, stem)
                        .ok_or_else(|| format!("{key:?}: {datatype:?}/{stem:?} is no BIDS name"))?;
                    map.names.insert(key.clone(), Some(name));
                }
                serde_json::Value::Object(types) if key == project => {
                    for (scan_type, datatype) in types {
                        let datatype = datatype
                            .as_str()
                            .ok_or_else(|| format!("{project}/{scan_type}: expected a datatype"))?;
                        map.datatypes
                            .insert(scan_type.clone(), datatype.to_string());
                    }
                }
                // dax: another project's entries.
                serde_json::Value::Object(_) => {}
                _ => return Err(format!("{key:?}: expected [datatype, name] or an object")),
            }
        }
        Ok(map)
    }

    /// Entries of `other` win over this map's.
    pub fn merge(&mut self, other: BidsMap) {
        self.names.extend(other.names);
        self.datatypes.extend(other.datatypes);
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.datatypes.is_empty()
    }
}

/// `task-rest_dir-AP_bold` under `func` → a name; `None` when it is not one.
fn parse_stem(datatype: &str, stem: &str) -> Option<BidsName> {
    if !DATATYPES.contains(&datatype) {
        return None;
    }
    let mut parts: Vec<&str> = stem.split('_').collect();
    let suffix = parts.pop()?;
    if suffix.is_empty() || !suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let mut entities = Vec::new();
    for part in parts {
        let (k, v) = part.split_once('-')?;
        if k == "sub" || k == "ses" {
            continue;
        }
        if !is_label(k) || !is_label(v) {
            return None;
        }
        entities.push((k.to_string(), v.to_string()));
    }
    Some(BidsName::new(datatype, entities, suffix))
}

fn is_label(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The name of a scan of type `scan_type` with series description `description`.
pub fn map_scan(map: &BidsMap, scan_type: &str, description: &str) -> Mapping {
    for key in [description, scan_type] {
        match map.names.get(key) {
            Some(Some(name)) => return Mapping::Named(name.clone()),
            Some(None) => return Mapping::Skipped(format!("excluded by the mapping file ({key})")),
            None => {}
        }
    }
    if let Some(datatype) = map.datatypes.get(scan_type) {
        return match builtin(scan_type, description) {
            Some(name) if &name.datatype == datatype => Mapping::Named(name),
            _ => Mapping::Skipped(format!(
                "the mapping file says {datatype}, and no rule names a {datatype} scan of this type"
            )),
        };
    }
    if let Some(name) = reproin(description) {
        return Mapping::Named(name);
    }
    if is_localizer(scan_type) || is_localizer(description) {
        return Mapping::Skipped("a localizer".into());
    }
    match builtin(scan_type, description) {
        Some(name) => Mapping::Named(name),
        None => Mapping::Skipped(
            "no rule maps this type or series description (add it to a mapping file)".into(),
        ),
    }
}

fn is_localizer(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    ["localizer", "localiser", "scout", "survey"]
        .iter()
        .any(|w| s.contains(w))
}

/// A ReproIn series description: `<datatype>[-<suffix>][_<key>-<value>…][__<anything>]`.
fn reproin(description: &str) -> Option<BidsName> {
    let main = description.split("__").next()?;
    let mut parts = main.split('_');
    let head = parts.next()?;
    let (datatype, label) = match head.split_once('-') {
        Some((d, l)) => (d, Some(l)),
        None => (head, None),
    };
    let suffix = match (datatype, label) {
        (_, Some(l)) => l,
        ("func", None) => "bold",
        ("dwi", None) => "dwi",
        _ => return None,
    };
    let mut stem: Vec<String> = Vec::new();
    for part in parts {
        let (k, v) = part.split_once('-')?;
        // The view numbers runs itself, in scan order.
        if k != "run" {
            stem.push(format!("{k}-{v}"));
        }
    }
    stem.push(suffix.to_string());
    parse_stem(datatype, &stem.join("_"))
}

/// The phase-encoding direction a description ends with (`…_AP`), as a `dir` entity.
fn direction(description: &str) -> Vec<(String, String)> {
    let upper = description.to_ascii_uppercase();
    ["AP", "PA", "LR", "RL", "SI", "IS"]
        .iter()
        .find(|d| upper.ends_with(&format!("_{d}")))
        .map(|d| vec![("dir".to_string(), d.to_string())])
        .unwrap_or_default()
}

/// Common scan types and descriptions of MR sites.
fn builtin(scan_type: &str, description: &str) -> Option<BidsName> {
    let text = format!("{scan_type} {description}").to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    let dir = direction(description);
    if has(&["flair"]) {
        return Some(BidsName::new("anat", Vec::new(), "FLAIR"));
    }
    if has(&["t1w", "mprage", "mp2rage", "t1_", "spgr", "bravo"]) {
        return Some(BidsName::new("anat", Vec::new(), "T1w"));
    }
    if has(&["t2w", "t2_", "spc", "tse"]) {
        return Some(BidsName::new("anat", Vec::new(), "T2w"));
    }
    if has(&["fieldmap", "field_map", "fmap", "topup"]) {
        return Some(BidsName::new("fmap", dir, "epi"));
    }
    if has(&["dwi", "dti", "dmri", "diffusion"]) {
        return Some(BidsName::new("dwi", dir, "dwi"));
    }
    if has(&["rest"]) && has(&["fmri", "bold", "rfmri", "rest_"]) {
        let mut entities = vec![("task".to_string(), "rest".to_string())];
        entities.extend(dir);
        return Some(BidsName::new("func", entities, "bold"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(m: Mapping) -> String {
        match m {
            Mapping::Named(n) => format!("{}/{}", n.datatype, n.stem()),
            Mapping::Skipped(why) => format!("skipped: {why}"),
        }
    }

    #[test]
    fn reproin_descriptions_name_the_scan() {
        let map = BidsMap::default();
        assert_eq!(named(map_scan(&map, "MPRAGE", "anat-T1w")), "anat/T1w");
        assert_eq!(
            named(map_scan(&map, "fMRI", "func-bold_task-nback_run-02")),
            "func/task-nback_bold"
        );
        assert_eq!(
            named(map_scan(&map, "x", "func_task-rest")),
            "func/task-rest_bold"
        );
        assert_eq!(named(map_scan(&map, "x", "dwi_dir-AP")), "dwi/dir-AP_dwi");
        assert_eq!(
            named(map_scan(&map, "x", "fmap-epi_dir-PA__setter")),
            "fmap/dir-PA_epi"
        );
    }

    #[test]
    fn builtin_rules_cover_common_types_and_leave_out_localizers() {
        let map = BidsMap::default();
        assert_eq!(
            named(map_scan(&map, "mprage", "T1w_MPRAGE_sag_1mm")),
            "anat/T1w"
        );
        assert_eq!(named(map_scan(&map, "FLAIR", "t2_flair_tra")), "anat/FLAIR");
        assert_eq!(
            named(map_scan(&map, "DWI", "dMRI_dir98_AP")),
            "dwi/dir-AP_dwi"
        );
        assert_eq!(
            named(map_scan(&map, "rest_fmri", "rfMRI_REST_AP")),
            "func/task-rest_dir-AP_bold"
        );
        assert_eq!(
            named(map_scan(&map, "field_map", "SpinEchoFieldMap_AP")),
            "fmap/dir-AP_epi"
        );
        assert!(
            named(map_scan(&map, "localizer", "AAHead_Scout")).starts_with("skipped: a localizer")
        );
        assert!(named(map_scan(&map, "nback", "ep2d_bold")).starts_with("skipped: no rule"));
    }

    #[test]
    fn a_mapping_file_wins_in_both_shapes() {
        let bidskit = br#"{"ep2d_bold": ["func", "task-nback_acq-mb4_bold"],
                           "AAHead_Scout": ["exclude", "x"]}"#;
        let map = BidsMap::parse(bidskit, "P").unwrap();
        assert_eq!(
            named(map_scan(&map, "nback", "ep2d_bold")),
            "func/task-nback_acq-mb4_bold"
        );
        assert!(named(map_scan(&map, "localizer", "AAHead_Scout")).contains("excluded"));
        let dax = br#"{"P": {"mprage": "anat", "DWI": "func"}, "Q": {"x": "anat"}}"#;
        let map = BidsMap::parse(dax, "P").unwrap();
        assert_eq!(named(map_scan(&map, "mprage", "whatever")), "anat/T1w");
        assert!(named(map_scan(&map, "DWI", "dMRI_AP")).starts_with("skipped"));
        assert!(BidsMap::parse(b"[1]", "P").is_err());
        assert!(BidsMap::parse(br#"{"a": ["func", "bad name!"]}"#, "P").is_err());
    }
}
