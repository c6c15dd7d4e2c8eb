//! The listing tables of the archive collections, with each endpoint's
//! default columns (reference §2.2) and the bulk experiment listing that
//! gives one row per session × scan × scan resource (§2.8).

use super::error::{XnatError, XnatResult};
use super::path::Coll;
use super::resolve::{owner_of, Node};
use super::CurrentUser;
use crate::listing::{ListingQuery, Row, Table};
use crate::model::{Archive, Experiment, Resource, ResourceOwner, Scan};

const PROJECT_COLS: &[&str] = &[
    "ID",
    "secondary_ID",
    "name",
    "description",
    "pi_firstname",
    "pi_lastname",
    "URI",
];
const SUBJECT_COLS: &[&str] = &[
    "ID",
    "project",
    "label",
    "insert_date",
    "insert_user",
    "URI",
];
const EXPERIMENT_COLS: &[&str] = &[
    "ID",
    "project",
    "date",
    "xsiType",
    "label",
    "insert_date",
    "URI",
];
const SCAN_COLS: &[&str] = &[
    "xnat_imagescandata_id",
    "ID",
    "type",
    "quality",
    "xsiType",
    "note",
    "series_description",
    "URI",
];
const RESOURCE_COLS: &[&str] = &[
    "xnat_abstractresource_id",
    "label",
    "element_name",
    "category",
    "cat_id",
    "cat_desc",
    "format",
    "content",
    "tags",
    "file_count",
    "file_size",
];
const ID_URI: &[&str] = &["ID", "URI"];

/// The listing of collection `coll` below `parent`.
pub fn collection(
    a: &Archive,
    user: &CurrentUser,
    parent: &Node,
    coll: Coll,
    q: &ListingQuery,
) -> XnatResult<Table> {
    let visible = |project: &str| user.admin || a.can_access(&user.name, project);
    let table = match (parent, coll) {
        (Node::Root, Coll::Projects) => table(
            "Projects",
            PROJECT_COLS,
            a.projects
                .values()
                .filter(|p| visible(&p.id))
                .map(|p| {
                    Row::new()
                        .with("ID", &p.id)
                        .with("secondary_ID", &p.secondary_id)
                        .with("name", &p.name)
                        .with("description", &p.description)
                        .with("pi_firstname", &p.pi_firstname)
                        .with("pi_lastname", &p.pi_lastname)
                        .with("URI", format!("/data/projects/{}", p.id))
                        .with("xsiType", "xnat:projectData")
                        .with("insert_date", &p.insert_date)
                        .with("insert_user", &p.insert_user)
                })
                .collect(),
        ),
        (Node::Root, Coll::Subjects) => subjects(a, |s| visible(&s.project)),
        (Node::Project(p), Coll::Subjects) => subjects(a, |s| &s.project == p),
        (Node::Root, Coll::Experiments) => {
            experiments(a, q, |e| !e.is_assessor() && visible(&e.project))
        }
        (Node::Project(p), Coll::Experiments) => {
            experiments(a, q, |e| !e.is_assessor() && &e.project == p)
        }
        (Node::Subject(s), Coll::Experiments) => {
            experiments(a, q, |e| !e.is_assessor() && &e.subject_id == s)
        }
        (Node::Experiment(e), Coll::Assessors) => {
            let mut t = experiments(a, q, |x| x.session_id.as_deref() == Some(e.as_str()));
            t.title = "Assessors";
            t
        }
        (Node::Experiment(e), Coll::Scans) => {
            let x = a
                .experiments
                .get(e)
                .ok_or_else(|| XnatError::not_found("Unable to find experiment"))?;
            table(
                "Scans",
                SCAN_COLS,
                x.scans.iter().map(|s| scan_row(x, s)).collect(),
            )
        }
        (Node::ScanSet { experiment, scans }, Coll::Resources) => {
            let ids: Vec<u64> = scans
                .iter()
                .flat_map(|s| {
                    a.resource_ids(&ResourceOwner::Scan {
                        experiment: experiment.clone(),
                        scan: s.clone(),
                    })
                })
                .collect();
            resources(a, &ids)
        }
        (node, Coll::Resources | Coll::InResources) => {
            let owner = owner_of(a, node, coll)
                .ok_or_else(|| XnatError::not_found("Invalid resource path"))?;
            resources(a, &a.resource_ids(&owner))
        }
        _ => return Err(XnatError::not_found("Unknown URI")),
    };
    Ok(table)
}

fn table(title: &'static str, defaults: &'static [&'static str], rows: Vec<Row>) -> Table {
    Table {
        title,
        defaults,
        always: ID_URI,
        honours_columns: true,
        file_listing: false,
        rows,
    }
}

fn subjects(a: &Archive, keep: impl Fn(&crate::model::Subject) -> bool) -> Table {
    let title = "Project Subjects";
    table(
        title,
        SUBJECT_COLS,
        a.subjects
            .values()
            .filter(|s| keep(s))
            .map(|s| {
                Row::new()
                    .with("ID", &s.id)
                    .with("project", &s.project)
                    .with("label", &s.label)
                    .with("insert_date", &s.insert_date)
                    .with("insert_user", &s.insert_user)
                    .with("URI", format!("/data/subjects/{}", s.id))
                    .with("xsiType", "xnat:subjectData")
            })
            .collect(),
    )
}

fn experiment_row(a: &Archive, e: &Experiment) -> Row {
    let subject_label = a
        .subjects
        .get(&e.subject_id)
        .map(|s| s.label.clone())
        .unwrap_or_default();
    let mut r = Row::new()
        .with("ID", &e.id)
        .with("project", &e.project)
        .with("date", &e.date)
        .with("xsiType", &e.xsi_type)
        .with("label", &e.label)
        .with("insert_date", &e.insert_date)
        .with("URI", format!("/data/experiments/{}", e.id))
        .with("subject_ID", &e.subject_id)
        .with("subject_label", subject_label)
        .with("subject_project", &e.project)
        .with("insert_user", &e.insert_user)
        .with("modality", crate::model::xsi::modality(&e.xsi_type))
        .with("xnat:subjectassessordata/subject_id", &e.subject_id)
        .with("xnat:imagesessiondata/subject_id", &e.subject_id)
        .with("xnat:experimentdata/label", &e.label)
        .with("xnat:experimentdata/project", &e.project);
    if let Some(s) = &e.session_id {
        r.push("session_ID", s);
        r.push("imageSession_ID", s);
    }
    r
}

fn experiments(a: &Archive, q: &ListingQuery, keep: impl Fn(&Experiment) -> bool) -> Table {
    let bulk = q.wants_column_prefix("xnat:imagescandata/");
    let mut rows = Vec::new();
    for e in a.experiments.values().filter(|e| keep(e)) {
        let base = experiment_row(a, e);
        if !bulk {
            rows.push(base);
            continue;
        }
        if e.scans.is_empty() {
            rows.push(with_scan_cells(base.clone(), None, None));
        }
        for s in &e.scans {
            let rs: Vec<&Resource> = s
                .resources
                .iter()
                .filter_map(|r| a.resources.get(r))
                .collect();
            if rs.is_empty() {
                rows.push(with_scan_cells(base.clone(), Some(s), None));
            }
            for r in rs {
                rows.push(with_scan_cells(base.clone(), Some(s), Some(r)));
            }
        }
    }
    table("Experiments", EXPERIMENT_COLS, rows)
}

fn with_scan_cells(mut row: Row, s: Option<&Scan>, r: Option<&Resource>) -> Row {
    let cell = |f: fn(&Scan) -> String| s.map(f).unwrap_or_default();
    row.push("xnat:imagescandata/id", cell(|s| s.id.clone()));
    row.push("xnat:imagescandata/type", cell(|s| s.scan_type.clone()));
    row.push("xnat:imagescandata/quality", cell(|s| s.quality.clone()));
    row.push("xnat:imagescandata/note", cell(|s| s.note.clone()));
    row.push(
        "xnat:imagescandata/series_description",
        cell(|s| s.series_description.clone()),
    );
    row.push("xnat:imagescandata/xsi_type", cell(|s| s.xsi_type.clone()));
    row.push(
        "xnat:imagescandata/xnat_imagescandata_id",
        cell(|s| s.uid.to_string()),
    );
    row.push(
        "xnat:imagescandata/file/label",
        r.map(|r| r.label.clone()).unwrap_or_default(),
    );
    row.push(
        "xnat:imagescandata/file/xnat_abstractresource_id",
        r.map(|r| r.id.to_string()).unwrap_or_default(),
    );
    row
}

fn scan_row(e: &Experiment, s: &Scan) -> Row {
    Row::new()
        .with("xnat_imagescandata_id", s.uid.to_string())
        .with("ID", &s.id)
        .with("type", &s.scan_type)
        .with("quality", &s.quality)
        .with("xsiType", &s.xsi_type)
        .with("note", &s.note)
        .with("series_description", &s.series_description)
        .with("URI", format!("/data/experiments/{}/scans/{}", e.id, s.id))
        .with("image_session_ID", &e.id)
        .with("project", &e.project)
}

/// Resource rows: no ID, no URI (xnatpy fills them in); `columns=` is ignored.
fn resources(a: &Archive, ids: &[u64]) -> Table {
    Table {
        title: "Resources",
        defaults: RESOURCE_COLS,
        always: &[],
        honours_columns: false,
        file_listing: false,
        rows: ids
            .iter()
            .filter_map(|i| a.resources.get(i))
            .map(|r| {
                Row::new()
                    .with("xnat_abstractresource_id", r.id.to_string())
                    .with("label", &r.label)
                    .with("element_name", "xnat:resourceCatalog")
                    .with("category", r.category())
                    .with("cat_id", r.id.to_string())
                    .with("cat_desc", &r.description)
                    .with("format", &r.format)
                    .with("content", &r.content)
                    .with("tags", &r.tags)
                    .with("file_count", r.file_count().to_string())
                    .with("file_size", r.file_size().to_string())
            })
            .collect(),
    }
}
