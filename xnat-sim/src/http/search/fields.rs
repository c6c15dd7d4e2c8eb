//! The display fields of the search service: for each data type, the
//! FIELD_IDs `/data/search/elements/{type}` lists and a search can ask or
//! test, and their values for one object (evidence §2.3: the ids XNAT
//! publishes for projects, subjects, MR sessions and MR scans).

use crate::model::{xsi, Archive, Experiment, Project, Scan, Subject};

/// (FIELD_ID, TYPE, HEADER)
pub type FieldSpec = (&'static str, &'static str, &'static str);

const PROJECT: &[FieldSpec] = &[
    ("INSERT_DATE", "date", "Inserted"),
    ("INSERT_USER", "string", "Creator"),
    ("ID", "string", "ID"),
    ("NAME", "string", "Title"),
    ("NAME_CSV", "string", "Title"),
    ("DESCRIPTION", "string", "Description"),
    ("DESCRIPTION_CSV", "string", "Description"),
    ("SECONDARY_ID", "string", "Running Title"),
    ("KEYWORDS", "string", "Keywords"),
    ("PI", "string", "PI"),
    ("PROJECT_INVS", "string", "Investigators"),
    ("PROJECT_ACCESS", "string", "Accessibility"),
    ("PROJECT_USERS", "string", "Users"),
    ("PROJECT_OWNERS", "string", "Owners"),
    ("PROJECT_MEMBERS", "string", "Members"),
    ("PROJECT_COLLABS", "string", "Collaborators"),
    ("PROJECT_LAST_WORKFLOW", "date", "Last Workflow"),
    ("PROJECT_LAST_ACCESS", "date", "Last Accessed"),
    ("PROJECT_FAV", "string", "Favorite"),
    ("PROJ_MR_COUNT", "integer", "MR Sessions"),
    ("PROJ_CT_COUNT", "integer", "CT Sessions"),
    ("PROJ_PET_COUNT", "integer", "PET Sessions"),
    ("PROJ_UT_COUNT", "integer", "UT Sessions"),
];

const SUBJECT: &[FieldSpec] = &[
    ("SUBJECT_ID", "string", "Subject"),
    ("SUBJECT_LABEL", "string", "Label"),
    ("PROJECT", "string", "Project"),
    ("INSERT_DATE", "date", "Inserted"),
    ("INSERT_USER", "string", "Creator"),
    ("GENDER_TEXT", "string", "M/F"),
    ("HANDEDNESS_TEXT", "string", "Hand"),
    ("DOB", "integer", "YOB"),
    ("EDUC", "integer", "Educ"),
    ("SES", "integer", "SES"),
    ("INVEST_CSV", "string", "Investigator"),
    ("PROJECTS", "string", "Projects"),
    ("SUB_GROUP", "string", "Group"),
    ("ADD_IDS", "string", "Additional IDs"),
    ("RACE", "string", "Race"),
    ("ETHNICITY", "string", "Ethnicity"),
    ("AGE", "integer", "Age"),
];

const SESSION: &[FieldSpec] = &[
    ("SESSION_ID", "string", "Session"),
    ("SUBJECT_ID", "string", "Subject"),
    ("DATE", "date", "Date"),
    ("INVEST_SEARCH", "string", "Investigator"),
    ("INVEST", "string", "Investigator"),
    ("TYPE", "string", "Type"),
    ("OPERATOR_CSV", "string", "Operator"),
    ("SCANNER_CSV", "string", "Scanner"),
    ("MARKER_CSV", "string", "Marker"),
    ("STABILIZATION_CSV", "string", "Stabilization"),
    ("GEN_AGE", "integer", "Age"),
    ("AGE", "integer", "Age"),
    ("DTI_COUNT", "integer", "DTI"),
    ("INSERT_DATE", "date", "Inserted"),
    ("INSERT_USER", "string", "Creator"),
    ("LAST_MODIFIED", "date", "Last Modified"),
    ("MR_SCAN_COUNT_AGG", "string", "Scans"),
    ("MPRAGE_COUNT", "integer", "MPRAGE"),
    ("PROJECT", "string", "Project"),
    ("LABEL", "string", "Label"),
];

const EXPERIMENT: &[FieldSpec] = &[
    ("EXPT_ID", "string", "ID"),
    ("SESSION_ID", "string", "Session"),
    ("LABEL", "string", "Label"),
    ("PROJECT", "string", "Project"),
    ("DATE", "date", "Date"),
    ("INSERT_DATE", "date", "Inserted"),
    ("INSERT_USER", "string", "Creator"),
    ("LAST_MODIFIED", "date", "Last Modified"),
];

const SCAN: &[FieldSpec] = &[
    ("IMAGE_SESSION_ID", "string", "Session"),
    ("ID", "string", "Scan"),
    ("TYPE", "string", "Type"),
    ("NOTE", "string", "Note"),
    ("QUALITY", "string", "Quality"),
    ("CONDITION", "string", "Condition"),
    ("SERIES_DESCRIPTION", "string", "Series Description"),
    ("DOCUMENTATION", "string", "Documentation"),
    ("SCANNER", "string", "Scanner"),
    ("MODALITY", "string", "Modality"),
    ("FRAMES", "integer", "Frames"),
    ("UID", "string", "UID"),
    ("PROJECT", "string", "Project"),
    ("INSERT_DATE", "date", "Inserted"),
    ("INSERT_USER", "string", "Creator"),
];

/// The display fields of a data type.
pub fn of(element: &str) -> &'static [FieldSpec] {
    let l = element.to_ascii_lowercase();
    match l.as_str() {
        "xnat:projectdata" => PROJECT,
        "xnat:subjectdata" => SUBJECT,
        _ if xsi::is_session_type(&l) => SESSION,
        _ if xsi::is_scan_type(&l) => SCAN,
        _ => EXPERIMENT,
    }
}

/// The fields of a search that names none: XNAT shows the type's listing display then
/// (the exact set of each type's display is not in the reference: these are its identifying
/// fields, which every listing display has).
pub fn listing(element: &str) -> &'static [&'static str] {
    let l = element.to_ascii_lowercase();
    match l.as_str() {
        "xnat:projectdata" => &["ID", "NAME", "SECONDARY_ID", "DESCRIPTION", "PI"],
        "xnat:subjectdata" => &[
            "SUBJECT_ID",
            "SUBJECT_LABEL",
            "PROJECT",
            "GENDER_TEXT",
            "HANDEDNESS_TEXT",
            "INSERT_DATE",
        ],
        _ if xsi::is_session_type(&l) => &[
            "SESSION_ID",
            "LABEL",
            "SUBJECT_ID",
            "PROJECT",
            "DATE",
            "TYPE",
            "SCANNER_CSV",
            "INSERT_DATE",
        ],
        _ if xsi::is_scan_type(&l) => &[
            "IMAGE_SESSION_ID",
            "ID",
            "TYPE",
            "QUALITY",
            "SERIES_DESCRIPTION",
        ],
        _ => &["EXPT_ID", "LABEL", "PROJECT", "DATE"],
    }
}

/// The spec of one field of a type, case-insensitively.
pub fn spec(element: &str, id: &str) -> Option<&'static FieldSpec> {
    of(element)
        .iter()
        .find(|(f, _, _)| f.eq_ignore_ascii_case(id))
}

/// One object of a search row.
#[derive(Debug, Clone, Copy)]
pub enum Obj<'a> {
    Project(&'a Project),
    Subject(&'a Subject),
    Experiment(&'a Experiment),
    Scan(&'a Experiment, &'a Scan),
}

impl Obj<'_> {
    pub fn xsi_type(&self) -> &str {
        match self {
            Obj::Project(_) => "xnat:projectData",
            Obj::Subject(_) => "xnat:subjectData",
            Obj::Experiment(e) => &e.xsi_type,
            Obj::Scan(_, s) => &s.xsi_type,
        }
    }
}

/// `' <br/> '`-joined, as XNAT's user lists (pyxnat splits on it).
fn joined<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.cloned().collect::<Vec<_>>().join(" <br/> ")
}

fn count_or_blank(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        n.to_string()
    }
}

fn field<'a>(map: &'a std::collections::BTreeMap<String, String>, name: &str) -> &'a str {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The value of display field `id` of `obj` (None: the type has no such field).
pub fn value(a: &Archive, obj: Obj, id: &str) -> Option<String> {
    let (spec_id, _, _) = spec(obj.xsi_type(), id)?;
    Some(match obj {
        Obj::Project(p) => project(a, p, spec_id),
        Obj::Subject(s) => subject(s, spec_id),
        Obj::Experiment(e) if xsi::is_session_type(&e.xsi_type) => session(a, e, spec_id),
        Obj::Experiment(e) => experiment(e, spec_id),
        Obj::Scan(e, s) => scan(e, s, spec_id),
    })
}

fn project(a: &Archive, p: &Project, id: &str) -> String {
    let sessions = |modality: &str| {
        a.experiments
            .values()
            .filter(|e| e.project == p.id && xsi::modality(&e.xsi_type) == modality)
            .count()
    };
    match id {
        "INSERT_DATE" => p.insert_date.clone(),
        "INSERT_USER" => p.insert_user.clone(),
        "ID" => p.id.clone(),
        "NAME" | "NAME_CSV" => p.name.clone(),
        "DESCRIPTION" => p.description.chars().take(162).collect(),
        "DESCRIPTION_CSV" => p.description.clone(),
        "SECONDARY_ID" => p.secondary_id.clone(),
        "KEYWORDS" => field(&p.fields, "keywords").to_string(),
        "PI" => format!("{} {}", p.pi_firstname, p.pi_lastname)
            .trim()
            .to_string(),
        "PROJECT_ACCESS" => "private".into(),
        "PROJECT_USERS" => joined(p.owners.iter().chain(&p.members).chain(&p.collaborators)),
        "PROJECT_OWNERS" => joined(p.owners.iter()),
        "PROJECT_MEMBERS" => joined(p.members.iter()),
        "PROJECT_COLLABS" => joined(p.collaborators.iter()),
        "PROJ_MR_COUNT" => count_or_blank(sessions("MR")),
        "PROJ_CT_COUNT" => count_or_blank(sessions("CT")),
        "PROJ_PET_COUNT" => count_or_blank(sessions("PT")),
        "PROJ_UT_COUNT" => count_or_blank(sessions("US")),
        _ => String::new(),
    }
}

fn subject(s: &Subject, id: &str) -> String {
    match id {
        "SUBJECT_ID" => s.id.clone(),
        "SUBJECT_LABEL" => s.label.clone(),
        "PROJECT" | "PROJECTS" => s.project.clone(),
        "INSERT_DATE" => s.insert_date.clone(),
        "INSERT_USER" => s.insert_user.clone(),
        "GENDER_TEXT" => match field(&s.fields, "gender").to_ascii_lowercase().as_str() {
            "" => String::new(),
            "male" | "m" => "M".into(),
            "female" | "f" => "F".into(),
            _ => "U".into(),
        },
        "HANDEDNESS_TEXT" => match field(&s.fields, "handedness").to_ascii_lowercase().as_str() {
            "" => String::new(),
            "left" | "l" => "L".into(),
            "right" | "r" => "R".into(),
            "ambidextrous" | "a" => "A".into(),
            _ => "U".into(),
        },
        "DOB" => {
            let dob = field(&s.fields, "dob");
            if dob.len() >= 4 {
                dob[..4].to_string()
            } else {
                field(&s.fields, "yob").to_string()
            }
        }
        "EDUC" => field(&s.fields, "education").to_string(),
        "SES" => field(&s.fields, "ses").to_string(),
        "SUB_GROUP" => field(&s.fields, "group").to_string(),
        "RACE" => field(&s.fields, "race").to_string(),
        "ETHNICITY" => field(&s.fields, "ethnicity").to_string(),
        "AGE" => field(&s.fields, "age").to_string(),
        _ => String::new(),
    }
}

fn session(a: &Archive, e: &Experiment, id: &str) -> String {
    let count_types = |want: &str| {
        e.scans
            .iter()
            .filter(|s| s.scan_type.to_ascii_lowercase().contains(want))
            .count()
    };
    match id {
        "SESSION_ID" => e.id.clone(),
        "SUBJECT_ID" => e.subject_id.clone(),
        "DATE" => e.date.clone(),
        "TYPE" => field(&e.fields, "session_type").to_string(),
        "OPERATOR_CSV" => field(&e.fields, "operator").to_string(),
        "SCANNER_CSV" => field(&e.fields, "scanner").to_string(),
        "MARKER_CSV" => field(&e.fields, "marker").to_string(),
        "STABILIZATION_CSV" => field(&e.fields, "stabilization").to_string(),
        "INSERT_DATE" | "LAST_MODIFIED" => e.insert_date.clone(),
        "INSERT_USER" => e.insert_user.clone(),
        "MR_SCAN_COUNT_AGG" => count_or_blank(e.scans.len()),
        "MPRAGE_COUNT" => count_or_blank(count_types("mprage")),
        "DTI_COUNT" => count_or_blank(count_types("dti") + count_types("dwi")),
        "PROJECT" => e.project.clone(),
        "LABEL" => e.label.clone(),
        "AGE" | "GEN_AGE" => a
            .subjects
            .get(&e.subject_id)
            .map(|s| field(&s.fields, "age").to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn experiment(e: &Experiment, id: &str) -> String {
    match id {
        "EXPT_ID" => e.id.clone(),
        "SESSION_ID" => e.session_id.clone().unwrap_or_default(),
        "LABEL" => e.label.clone(),
        "PROJECT" => e.project.clone(),
        "DATE" => e.date.clone(),
        "INSERT_DATE" | "LAST_MODIFIED" => e.insert_date.clone(),
        "INSERT_USER" => e.insert_user.clone(),
        _ => String::new(),
    }
}

fn scan(e: &Experiment, s: &Scan, id: &str) -> String {
    match id {
        "IMAGE_SESSION_ID" => e.id.clone(),
        "ID" => s.id.clone(),
        "TYPE" => s.scan_type.clone(),
        "NOTE" => s.note.clone(),
        "QUALITY" => s.quality.clone(),
        "SERIES_DESCRIPTION" => s.series_description.clone(),
        "MODALITY" => xsi::modality(&e.xsi_type).to_string(),
        "PROJECT" => e.project.clone(),
        "INSERT_DATE" => e.insert_date.clone(),
        "INSERT_USER" => e.insert_user.clone(),
        other => field(&s.fields, other).to_string(),
    }
}
