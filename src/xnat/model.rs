//! Typed rows of XNAT listings, read with the column names the server really uses.
//!
//! Column names per endpoint (reference §2.2): projects `ID,name,…`; subjects
//! `ID,label,project,insert_date`; experiments `ID,label,project,subject_ID,subject_label,
//! xsiType,date,insert_date`; scans `ID,type,quality,xsiType,series_description,note`;
//! resources `xnat_abstractresource_id,label,cat_id,format,content,tags,file_count,file_size`
//! (no URI, no ID; a legacy label may be empty); files `Name,Size,URI,collection,file_tags,
//! file_format,file_content,cat_ID,digest` (note `cat_ID` here, `cat_id` above). A file's
//! place inside its resource is only in its `URI`, after `/resources/<id>/files/`.

use super::listing::Row;

/// A number from a listing cell: "" or junk → `None`; "12.0" is accepted.
pub fn parse_count(cell: &str) -> Option<u64> {
    let cell = cell.trim();
    if let Ok(n) = cell.parse::<u64>() {
        return Some(n);
    }
    match cell.parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => {
            Some(f as u64)
        }
        _ => None,
    }
}

/// A digest cell as a lower-case MD5, if it is one (32 hex digits).
pub fn parse_md5(cell: &str) -> Option<String> {
    let cell = cell.trim();
    (cell.len() == 32 && cell.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| cell.to_ascii_lowercase())
}

/// The path of a file inside its resource, from its `URI`: whatever follows the first
/// `/resources/<one segment>/files/`. `None` if the URI has no such part.
pub fn relpath_from_uri(uri: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(pos) = uri[from..].find("/resources/") {
        let after = from + pos + "/resources/".len();
        let rest = &uri[after..];
        if let Some(slash) = rest.find('/') {
            if slash > 0 {
                if let Some(path) = rest[slash..].strip_prefix("/files/") {
                    return Some(path);
                }
            }
        }
        from = after - 1;
    }
    None
}

/// The segment after `/{word}/` in a URI (e.g. the scan ID after `/scans/`).
fn segment_after<'a>(uri: &'a str, word: &str) -> Option<&'a str> {
    let key = format!("/{word}/");
    let start = uri.find(&key)? + key.len();
    let rest = &uri[start..];
    let seg = rest.split('/').next()?;
    (!seg.is_empty()).then_some(seg)
}

/// A row of `/data/projects`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Project {
    pub id: String,
    pub secondary_id: String,
    pub name: String,
    pub description: String,
    pub pi_firstname: String,
    pub pi_lastname: String,
    pub uri: String,
}

impl From<&Row> for Project {
    fn from(r: &Row) -> Self {
        Project {
            id: r.text("ID").to_string(),
            secondary_id: r.text("secondary_ID").to_string(),
            name: r.text("name").to_string(),
            description: r.text("description").to_string(),
            pi_firstname: r.text("pi_firstname").to_string(),
            pi_lastname: r.text("pi_lastname").to_string(),
            uri: r.text("URI").to_string(),
        }
    }
}

/// A row of `/data/projects/P/subjects`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    pub id: String,
    pub label: String,
    pub project: String,
    pub insert_date: String,
    pub uri: String,
}

impl From<&Row> for Subject {
    fn from(r: &Row) -> Self {
        Subject {
            id: r.text("ID").to_string(),
            label: r.text("label").to_string(),
            project: r.text("project").to_string(),
            insert_date: r.text("insert_date").to_string(),
            uri: r.text("URI").to_string(),
        }
    }
}

/// A row of `/data/projects/P/experiments` (asked with the subject columns).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Experiment {
    pub id: String,
    pub label: String,
    pub project: String,
    pub subject_id: String,
    pub subject_label: String,
    pub xsi_type: String,
    pub date: String,
    pub insert_date: String,
    pub uri: String,
}

impl From<&Row> for Experiment {
    fn from(r: &Row) -> Self {
        Experiment {
            id: r.text("ID").to_string(),
            label: r.text("label").to_string(),
            project: r.text("project").to_string(),
            subject_id: r
                .text_any(&["subject_ID", "xnat:subjectassessordata/subject_id"])
                .to_string(),
            subject_label: r.text("subject_label").to_string(),
            xsi_type: r.text("xsiType").to_string(),
            date: r.text("date").to_string(),
            insert_date: r.text("insert_date").to_string(),
            uri: r.text("URI").to_string(),
        }
    }
}

/// A row of `/data/experiments/E/scans`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Scan {
    pub id: String,
    pub scan_type: String,
    pub series_description: String,
    pub quality: String,
    pub xsi_type: String,
    pub note: String,
    pub uri: String,
}

impl From<&Row> for Scan {
    fn from(r: &Row) -> Self {
        Scan {
            id: r.text("ID").to_string(),
            scan_type: r.text("type").to_string(),
            series_description: r.text("series_description").to_string(),
            quality: r.text("quality").to_string(),
            xsi_type: r.text("xsiType").to_string(),
            note: r.text("note").to_string(),
            uri: r.text("URI").to_string(),
        }
    }
}

/// A row of `/data/experiments/E/assessors`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Assessor {
    pub id: String,
    pub label: String,
    pub project: String,
    pub xsi_type: String,
    pub insert_date: String,
    pub uri: String,
}

impl From<&Row> for Assessor {
    fn from(r: &Row) -> Self {
        Assessor {
            id: r.text("ID").to_string(),
            label: r.text("label").to_string(),
            project: r.text("project").to_string(),
            xsi_type: r.text("xsiType").to_string(),
            insert_date: r.text("insert_date").to_string(),
            uri: r.text("URI").to_string(),
        }
    }
}

/// A row of a `…/resources` listing.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Resource {
    /// `xnat_abstractresource_id`, numeric; usable in URLs in place of the label.
    pub id: String,
    /// The label; a legacy resource without one gets its id.
    pub label: String,
    pub element_name: String,
    pub category: String,
    pub cat_id: String,
    pub format: String,
    pub content: String,
    pub tags: String,
    /// `None` when the server left the count empty.
    pub file_count: Option<u64>,
    /// Total bytes, `None` when the server left it empty.
    pub file_size: Option<u64>,
}

impl From<&Row> for Resource {
    fn from(r: &Row) -> Self {
        let id = r.text("xnat_abstractresource_id").to_string();
        let label = match r.text("label").trim() {
            "" => id.clone(),
            l => l.to_string(),
        };
        Resource {
            id,
            label,
            element_name: r.text("element_name").to_string(),
            category: r.text("category").to_string(),
            cat_id: r.text("cat_id").to_string(),
            format: r.text("format").to_string(),
            content: r.text("content").to_string(),
            tags: r.text("tags").to_string(),
            file_count: parse_count(r.text("file_count")),
            file_size: parse_count(r.text("file_size")),
        }
    }
}

/// A row of a `…/files` listing.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CatalogFile {
    /// The base name.
    pub name: String,
    /// The path inside the resource (`mri/aseg.mgz`); the name when the URI has no
    /// `/files/` part.
    pub path: String,
    /// Bytes according to the catalog, which can be stale.
    pub size: Option<u64>,
    /// The server path to download it from (not URL-encoded).
    pub uri: String,
    /// The MD5 digest, only when the catalog has a 32-hex one.
    pub digest: Option<String>,
    pub format: String,
    pub content: String,
    pub tags: String,
    /// The resource label the file belongs to.
    pub collection: String,
    pub cat_id: String,
}

impl From<&Row> for CatalogFile {
    fn from(r: &Row) -> Self {
        let name = r.text("Name").to_string();
        let uri = r.text("URI").to_string();
        let path = match relpath_from_uri(&uri) {
            Some(p) if !p.is_empty() => p.to_string(),
            _ => name.clone(),
        };
        CatalogFile {
            path,
            size: parse_count(r.text("Size")),
            digest: parse_md5(r.text("digest")),
            format: r.text("file_format").to_string(),
            content: r.text("file_content").to_string(),
            tags: r.text("file_tags").to_string(),
            collection: r.text("collection").to_string(),
            cat_id: r.text_any(&["cat_ID", "cat_id"]).to_string(),
            name,
            uri,
        }
    }
}

/// A row of `/data/experiments/E/scans/ALL/files`: a file and the scan and resource its URI
/// names (`…/scans/{scan}/resources/{resource id}/files/…`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ScanFile {
    pub scan_id: String,
    /// The resource segment of the URI (a numeric id); `file.collection` has the label.
    pub resource_id: String,
    pub file: CatalogFile,
}

impl ScanFile {
    /// The label of the file's resource: the listing's `collection`, or the URI's resource
    /// segment when the server left it out.
    pub fn resource_label(&self) -> &str {
        if self.file.collection.is_empty() {
            &self.resource_id
        } else {
            &self.file.collection
        }
    }
}

impl From<&Row> for ScanFile {
    fn from(r: &Row) -> Self {
        let file = CatalogFile::from(r);
        ScanFile {
            scan_id: segment_after(&file.uri, "scans").unwrap_or("").to_string(),
            resource_id: segment_after(&file.uri, "resources")
                .unwrap_or("")
                .to_string(),
            file,
        }
    }
}

/// The columns asked for by the project-wide scan listing.
pub const PROJECT_SCAN_COLUMNS: &str = "ID,URI,label,subject_label,project,xsiType,\
xnat:imagesessiondata/subject_id,xnat:imagescandata/id,xnat:imagescandata/type,\
xnat:imagescandata/quality,xnat:imagescandata/series_description,\
xnat:imagescandata/file/label";

/// A row of the project-wide scan listing: one per (session, scan, scan resource). A session
/// without scans has an empty `scan_id`; a scan without resources an empty `resource_label`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProjectScanRow {
    pub session_id: String,
    pub session_label: String,
    pub session_uri: String,
    pub project: String,
    pub subject_id: String,
    pub subject_label: String,
    pub xsi_type: String,
    pub scan_id: String,
    pub scan_type: String,
    pub quality: String,
    pub series_description: String,
    pub resource_label: String,
}

impl From<&Row> for ProjectScanRow {
    fn from(r: &Row) -> Self {
        ProjectScanRow {
            session_id: r.text("ID").to_string(),
            session_label: r.text("label").to_string(),
            session_uri: r.text("URI").to_string(),
            project: r.text("project").to_string(),
            subject_id: r
                .text_any(&["xnat:imagesessiondata/subject_id", "subject_ID"])
                .to_string(),
            subject_label: r.text("subject_label").to_string(),
            xsi_type: r.text("xsiType").to_string(),
            scan_id: r.text("xnat:imagescandata/id").to_string(),
            scan_type: r.text("xnat:imagescandata/type").to_string(),
            quality: r.text("xnat:imagescandata/quality").to_string(),
            series_description: r.text("xnat:imagescandata/series_description").to_string(),
            resource_label: r.text("xnat:imagescandata/file/label").to_string(),
        }
    }
}

/// One scan of a project's image session with the labels of its resources: the project-wide
/// scan listing's rows (one per session × scan × resource) folded into their scans.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SessionScan {
    pub experiment_id: String,
    pub id: String,
    pub scan_type: String,
    pub series_description: String,
    pub quality: String,
    pub xsi_type: String,
    pub resources: Vec<String>,
}

/// Fold the project-wide scan rows into one [`SessionScan`] per (session, scan), in the order
/// the rows first name them; sessions without scans drop out.
pub fn fold_scans(rows: Vec<ProjectScanRow>) -> Vec<SessionScan> {
    let mut scans: Vec<SessionScan> = Vec::new();
    let mut index: std::collections::HashMap<(String, String), usize> = Default::default();
    for row in rows {
        if row.scan_id.is_empty() {
            continue;
        }
        let at = *index
            .entry((row.session_id.clone(), row.scan_id.clone()))
            .or_insert_with(|| {
                scans.push(SessionScan {
                    experiment_id: row.session_id.clone(),
                    id: row.scan_id.clone(),
                    scan_type: row.scan_type.clone(),
                    series_description: row.series_description.clone(),
                    quality: row.quality.clone(),
                    xsi_type: String::new(),
                    resources: Vec::new(),
                });
                scans.len() - 1
            });
        let scan = &mut scans[at];
        if !row.resource_label.is_empty() && !scan.resources.contains(&row.resource_label) {
            scan.resources.push(row.resource_label);
        }
    }
    scans
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
