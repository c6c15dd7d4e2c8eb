//! The listing tables of the archive collections. Projects, subjects,
//! experiments and scans are XNAT query-organizer listings (records answering
//! XML paths, shaped by `columns=`, the root element and the criteria);
//! experiments join their subject, and their scans (a row per scan) or their
//! scans' resources (a row per scan and resource) when a column or a filter
//! names them (evidence D1, D2, D5). Resources are a fixed table (§2.2).

use super::error::{XnatError, XnatResult};
use super::path::Coll;
use super::resolve::{owner_of, Node};
use super::CurrentUser;
use crate::listing::shortcuts::{self, Shortcuts};
use crate::listing::{ListingQuery, Part, QueryTable, Record, Row, Shaped, Table};
use crate::model::{xsi, Archive, Experiment, Project, Resource, ResourceOwner, Scan, Subject};

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

fn project_defaults(_: &str) -> Vec<&'static str> {
    vec![
        "ID",
        "secondary_ID",
        "name",
        "description",
        "pi_firstname",
        "pi_lastname",
    ]
}

fn subject_defaults(_: &str) -> Vec<&'static str> {
    vec!["ID", "project", "label", "insert_date", "insert_user"]
}

/// `ProjSubExptList` (experiments of a project or a subject).
fn experiment_defaults(_: &str) -> Vec<&'static str> {
    vec!["ID", "project", "date", "xsiType", "label", "insert_date"]
}

/// `ExperimentListResource` (`/data/experiments`) adds the subject or the session columns
/// the root element has.
fn site_experiment_defaults(root: &str) -> Vec<&'static str> {
    let mut d = experiment_defaults(root);
    if xsi::extends(root, "xnat:subjectAssessorData") {
        d.extend(["subject_ID", "subject_label"]);
    }
    if xsi::extends(root, "xnat:imageAssessorData") {
        d.extend(["session_ID", "session_label"]);
    }
    d
}

fn scan_defaults(_: &str) -> Vec<&'static str> {
    vec![
        "xnat_imagescandata_id",
        "ID",
        "type",
        "quality",
        "xsiType",
        "note",
        "series_description",
    ]
}

/// The listing of collection `coll` below `parent`, shaped by `q`.
pub fn collection(
    a: &Archive,
    user: &CurrentUser,
    parent: &Node,
    coll: Coll,
    q: &ListingQuery,
) -> XnatResult<Shaped> {
    let visible = |project: &str| user.admin || a.can_access(&user.name, project);
    let shaped = match (parent, coll) {
        (Node::Root, Coll::Projects) => q.shape_query(QueryTable {
            title: "Projects",
            shortcuts: &shortcuts::PROJECT,
            default_root: "xnat:projectData",
            defaults: project_defaults,
            type_and_project: false,
            // XNAT replaces the criteria with the user's projects unless an admin asks.
            filters_apply: user.admin,
            records: a
                .projects
                .values()
                .filter(|p| visible(&p.id))
                .map(project_record)
                .collect(),
        }),
        (Node::Root, Coll::Subjects) => q.shape_query(subjects(a, |s| visible(&s.project))),
        (Node::Project(p), Coll::Subjects) => {
            // ProjectSubjectList answers with totalRecords and no title.
            let mut t = subjects(a, |s| &s.project == p);
            t.title = "";
            q.shape_query(t)
        }
        (Node::Root, Coll::Experiments) => q.shape_query(experiments(
            a,
            q,
            ("xnat:experimentData", site_experiment_defaults),
            |e| visible(&e.project),
        )),
        (Node::Project(p), Coll::Experiments) => q.shape_query(experiments(
            a,
            q,
            ("xnat:subjectAssessorData", experiment_defaults),
            |e| &e.project == p,
        )),
        (Node::Subject(s), Coll::Experiments) => q.shape_query(experiments(
            a,
            q,
            ("xnat:subjectAssessorData", experiment_defaults),
            |e| &e.subject_id == s,
        )),
        (Node::Experiment(e), Coll::Assessors) => {
            let mut t = experiments(
                a,
                q,
                ("xnat:imageAssessorData", site_experiment_defaults),
                |x| x.session_id.as_deref() == Some(e.as_str()),
            );
            t.title = "Assessors";
            q.shape_query(t)
        }
        (Node::Experiment(e), Coll::Scans) => {
            let x = a
                .experiments
                .get(e)
                .ok_or_else(|| XnatError::not_found("Unable to find experiment"))?;
            q.shape_query(QueryTable {
                title: "Scans",
                shortcuts: &shortcuts::SCAN,
                default_root: "xnat:imageScanData",
                defaults: scan_defaults,
                type_and_project: false,
                // ScanList sets its own criterion (the session), replacing the query's.
                filters_apply: false,
                records: x
                    .scans
                    .iter()
                    .map(|s| {
                        Record::new(
                            &s.xsi_type,
                            format!("/data/experiments/{}/scans/{}", x.id, s.id),
                            scan_part(x, s),
                        )
                    })
                    .collect(),
            })
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
            q.shape(resources(a, &ids))
        }
        (node, Coll::Resources | Coll::InResources) => {
            let owner = owner_of(a, node, coll)
                .ok_or_else(|| XnatError::not_found("Invalid resource path"))?;
            q.shape(resources(a, &a.resource_ids(&owner)))
        }
        _ => return Err(XnatError::not_found("Unknown URI")),
    };
    Ok(shaped)
}

pub(super) fn project_record(p: &Project) -> Record {
    Record::new(
        "xnat:projectData",
        format!("/data/projects/{}", p.id),
        Part::new("xnat:projectData")
            .with("xnat:projectData/ID", &p.id)
            .with("xnat:projectData/secondary_ID", &p.secondary_id)
            .with("xnat:projectData/name", &p.name)
            .with("xnat:projectData/description", &p.description)
            .with("xnat:projectData/PI/firstname", &p.pi_firstname)
            .with("xnat:projectData/PI/lastname", &p.pi_lastname)
            .with("xnat:projectData/meta/insert_date", &p.insert_date)
            .with("xnat:projectData/meta/insert_user/login", &p.insert_user)
            .with_extra(&p.fields),
    )
}

pub(super) fn subject_part(s: &Subject) -> Part {
    Part::new("xnat:subjectData")
        .with("xnat:subjectData/ID", &s.id)
        .with("xnat:subjectData/project", &s.project)
        .with("xnat:subjectData/label", &s.label)
        .with("xnat:subjectData/meta/insert_date", &s.insert_date)
        .with("xnat:subjectData/meta/insert_user/login", &s.insert_user)
        .with("xnat:subjectData/meta/last_modified", &s.insert_date)
        .with_extra(&s.fields)
}

fn subjects(a: &Archive, keep: impl Fn(&Subject) -> bool) -> QueryTable {
    QueryTable {
        title: "Project Subjects",
        shortcuts: &shortcuts::SUBJECT,
        default_root: "xnat:subjectData",
        defaults: subject_defaults,
        type_and_project: false,
        filters_apply: true,
        records: a
            .subjects
            .values()
            .filter(|s| keep(s))
            .map(|s| {
                Record::new(
                    "xnat:subjectData",
                    format!("/data/subjects/{}", s.id),
                    subject_part(s),
                )
            })
            .collect(),
    }
}

pub(super) fn experiment_part(e: &Experiment) -> Part {
    let mut part = Part::new(&e.xsi_type)
        .with("xnat:experimentData/ID", &e.id)
        .with("xnat:experimentData/label", &e.label)
        .with("xnat:experimentData/project", &e.project)
        .with("xnat:experimentData/date", &e.date)
        .with("xnat:experimentData/meta/insert_date", &e.insert_date)
        .with("xnat:experimentData/meta/insert_user/login", &e.insert_user)
        .with("xnat:experimentData/meta/last_modified", &e.insert_date)
        .with(
            "xnat:experimentData/extension_item/element_name",
            &e.xsi_type,
        );
    if e.is_assessor() {
        if let Some(s) = &e.session_id {
            part = part.with("xnat:imageAssessorData/imageSession_ID", s);
        }
    } else {
        part = part
            .with("xnat:subjectAssessorData/subject_ID", &e.subject_id)
            .with("xnat:imageSessionData/modality", xsi::modality(&e.xsi_type));
    }
    part.with_extra(&e.fields)
}

pub(super) fn scan_part(e: &Experiment, s: &Scan) -> Part {
    Part::new(&s.xsi_type)
        .with("xnat:imageScanData/ID", &s.id)
        .with("xnat:imageScanData/type", &s.scan_type)
        .with("xnat:imageScanData/quality", &s.quality)
        .with("xnat:imageScanData/note", &s.note)
        .with(
            "xnat:imageScanData/series_description",
            &s.series_description,
        )
        .with(
            "xnat:imageScanData/xnat_imagescandata_id",
            s.uid.to_string(),
        )
        .with("xnat:imageScanData/image_session_ID", &e.id)
        .with("xnat:imageScanData/project", &e.project)
        .with("xnat:imageScanData/modality", xsi::modality(&e.xsi_type))
        .with(
            "xnat:imageScanData/extension_item/element_name",
            &s.xsi_type,
        )
        .with_extra(&s.fields)
}

/// A scan's part with the columns of one of its resources (`xnat:imagescandata/file/…`).
fn with_resource(part: Part, r: &Resource) -> Part {
    part.with("xnat:imageScanData/file/label", &r.label)
        .with(
            "xnat:imageScanData/file/xnat_abstractresource_id",
            r.id.to_string(),
        )
        .with("xnat:imageScanData/file/format", &r.format)
        .with("xnat:imageScanData/file/content", &r.content)
        .with(
            "xnat:imageScanData/file/file_count",
            r.file_count().to_string(),
        )
        .with(
            "xnat:imageScanData/file/file_size",
            r.file_size().to_string(),
        )
}

/// Experiments as query rows: each with its subject (and, for an assessor, its session),
/// multiplied by the scans (and their resources) that the query joins.
fn experiments(
    a: &Archive,
    q: &ListingQuery,
    (default_root, defaults): (&'static str, fn(&str) -> Vec<&'static str>),
    keep: impl Fn(&Experiment) -> bool,
) -> QueryTable {
    let table_shortcuts: &'static Shortcuts = &shortcuts::EXPERIMENT;
    let join = q.scan_join(table_shortcuts);
    let mut records = Vec::new();
    for e in a.experiments.values().filter(|e| keep(e)) {
        let mut base = Record::new(
            &e.xsi_type,
            format!("/data/experiments/{}", e.id),
            experiment_part(e),
        );
        let subject = a.subjects.get(&e.subject_id);
        if let Some(s) = subject {
            base = base.join(subject_part(s));
        }
        if let Some(session) = e.session_id.as_ref().and_then(|s| a.experiments.get(s)) {
            base = base.join(experiment_part(session));
        }
        let Some((scan_element, with_files)) = &join else {
            records.push(base);
            continue;
        };
        let before = records.len();
        for s in e
            .scans
            .iter()
            .filter(|s| xsi::extends(&s.xsi_type, scan_element))
        {
            let part = scan_part(e, s);
            let resources: Vec<&Resource> = s
                .resources
                .iter()
                .filter_map(|r| a.resources.get(r))
                .collect();
            if *with_files && !resources.is_empty() {
                for r in resources {
                    records.push(base.clone().join(with_resource(part.clone(), r)));
                }
            } else {
                records.push(base.clone().join(part));
            }
        }
        // A LEFT JOIN: a session without such scans is one row with empty scan columns.
        if records.len() == before {
            records.push(base);
        }
    }
    QueryTable {
        title: "Experiments",
        shortcuts: table_shortcuts,
        default_root,
        defaults,
        type_and_project: true,
        filters_apply: true,
        records,
    }
}

/// Resource rows: no ID, no URI (xnatpy fills them in); `columns=` is ignored.
fn resources(a: &Archive, ids: &[u64]) -> Table {
    Table {
        title: "Resources",
        defaults: RESOURCE_COLS,
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
