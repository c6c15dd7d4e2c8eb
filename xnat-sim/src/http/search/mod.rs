//! The search service, `POST /data/search?format=json|csv|xml` with an XML
//! search document (evidence §2): the rows are the user's objects of the
//! root type (projects, subjects, experiments of a type, scans of a type),
//! each with its subject, session and project joined; the where clause
//! tests display fields (`xnat:subjectData/PROJECT`) or schema paths
//! (`xnat:mrSessionData/ID`); a column of the root type is named by its
//! FIELD_ID lower-cased, a column of another type by that type's SQL name
//! and the FIELD_ID (`xnat_subjectdata_subject_label`).

mod bundle;
pub mod fields;

use super::error::{XnatError, XnatResult};
use super::listings::{experiment_part, project_record, scan_part, subject_part};
use super::{listing_response, tagged, AppState, CurrentUser, Params, RequestKind};
use crate::listing::{result_objects, Record, Shaped};
use crate::model::{xsi, Archive};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bundle::{Bundle, Clause, Criterion};
use fields::Obj;
use serde_json::{json, Value};

/// One result row: the root object, the objects joined to it, and its schema paths.
struct Hit<'a> {
    objects: Vec<Obj<'a>>,
    record: Record,
}

impl Hit<'_> {
    /// The value of `element/field`: a display field of a joined object of that type,
    /// else the schema path.
    fn value(&self, a: &Archive, path: &str) -> String {
        let Some((element, id)) = path.split_once('/') else {
            return String::new();
        };
        let by_field = self
            .objects
            .iter()
            .filter(|o| xsi::extends(o.xsi_type(), element))
            .find_map(|o| fields::value(a, *o, id));
        by_field.unwrap_or_else(|| self.record.get(path).to_string())
    }
}

/// The rows of the root type the user may read.
fn hits<'a>(a: &'a Archive, user: &CurrentUser, root: &str) -> Vec<Hit<'a>> {
    let readable = |project: &str| user.admin || a.can_access(&user.name, project);
    let root_l = root.to_ascii_lowercase();
    match root_l.as_str() {
        "xnat:projectdata" => a
            .projects
            .values()
            .filter(|p| readable(&p.id))
            .map(|p| Hit {
                objects: vec![Obj::Project(p)],
                record: project_record(p),
            })
            .collect(),
        "xnat:subjectdata" => a
            .subjects
            .values()
            .filter(|s| readable(&s.project))
            .map(|s| {
                let mut objects = vec![Obj::Subject(s)];
                objects.extend(a.projects.get(&s.project).map(Obj::Project));
                Hit {
                    objects,
                    record: Record::new("xnat:subjectData", String::new(), subject_part(s)),
                }
            })
            .collect(),
        r if xsi::is_scan_type(r) => a
            .experiments
            .values()
            .filter(|e| readable(&e.project))
            .flat_map(|e| {
                e.scans
                    .iter()
                    .filter(|s| xsi::extends(&s.xsi_type, root))
                    .map(move |s| (e, s))
            })
            .map(|(e, s)| {
                let mut objects = vec![Obj::Scan(e, s), Obj::Experiment(e)];
                let mut record = Record::new(&s.xsi_type, String::new(), scan_part(e, s))
                    .join(experiment_part(e));
                if let Some(subject) = a.subjects.get(&e.subject_id) {
                    objects.push(Obj::Subject(subject));
                    record = record.join(subject_part(subject));
                }
                Hit { objects, record }
            })
            .collect(),
        _ => a
            .experiments
            .values()
            .filter(|e| readable(&e.project) && xsi::extends(&e.xsi_type, root))
            .map(|e| {
                let mut objects = vec![Obj::Experiment(e)];
                let mut record = Record::new(&e.xsi_type, String::new(), experiment_part(e));
                if let Some(subject) = a.subjects.get(&e.subject_id) {
                    objects.push(Obj::Subject(subject));
                    record = record.join(subject_part(subject));
                }
                objects.extend(a.projects.get(&e.project).map(Obj::Project));
                Hit { objects, record }
            })
            .collect(),
    }
}

/// SQL `LIKE`: `%` any run, `_` one character; case-sensitive.
fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('_', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// Numbers compare as numbers, the rest as text.
fn compare(have: &str, want: &str) -> std::cmp::Ordering {
    match (have.trim().parse::<f64>(), want.trim().parse::<f64>()) {
        (Ok(h), Ok(w)) => h.partial_cmp(&w).unwrap_or(std::cmp::Ordering::Equal),
        _ => have.cmp(want),
    }
}

fn test(c: &Criterion, have: &str) -> XnatResult<bool> {
    use std::cmp::Ordering::*;
    let want = c.value.as_str();
    let null = want.eq_ignore_ascii_case("NULL");
    Ok(match c.op.trim().to_ascii_uppercase().as_str() {
        "=" if null => have.is_empty(),
        "=" => have == want,
        "!=" | "<>" if null => !have.is_empty(),
        "!=" | "<>" => have != want,
        "IS" => have.is_empty(),
        "IS NOT" => !have.is_empty(),
        "LIKE" => like(want, have),
        "NOT LIKE" => !like(want, have),
        "<" => !have.is_empty() && compare(have, want) == Less,
        ">" => !have.is_empty() && compare(have, want) == Greater,
        "<=" => !have.is_empty() && compare(have, want) != Greater,
        ">=" => !have.is_empty() && compare(have, want) != Less,
        other => {
            return Err(XnatError::bad_request(format!(
                "Unknown comparison type {other}"
            )))
        }
    })
}

fn matches(a: &Archive, hit: &Hit, clause: &Clause) -> XnatResult<bool> {
    let mut results = Vec::new();
    for c in &clause.criteria {
        results.push(test(c, &hit.value(a, &c.field))?);
    }
    for set in &clause.sets {
        results.push(matches(a, hit, set)?);
    }
    Ok(if clause.or {
        results.is_empty() || results.iter().any(|r| *r)
    } else {
        results.iter().all(|r| *r)
    })
}

/// One column of a search's result.
struct Column {
    key: String,
    path: String,
    element: String,
    id: String,
    kind: &'static str,
    header: String,
}

/// The result's column name of a search field.
fn column_key(root: &str, element: &str, id: &str) -> String {
    if element.eq_ignore_ascii_case(root) {
        id.to_ascii_lowercase()
    } else {
        format!("{}_{}", element.replace(':', "_"), id).to_ascii_lowercase()
    }
}

fn run(a: &Archive, user: &CurrentUser, b: &Bundle) -> XnatResult<(Vec<Value>, Shaped)> {
    let listed;
    let b = if b.fields.is_empty() {
        listed = Bundle {
            fields: fields::listing(&b.root)
                .iter()
                .enumerate()
                .map(|(i, id)| bundle::SearchField {
                    element: b.root.clone(),
                    field_id: id.to_string(),
                    sequence: i as i64,
                })
                .collect(),
            ..b.clone()
        };
        &listed
    } else {
        b
    };
    // A display field of its type, or an XML path (xnatpy sends `xnat:mrSessionData/label`
    // as the field_ID); a display field the type lacks is left out.
    let columns: Vec<Column> = b
        .fields
        .iter()
        .filter_map(|f| {
            if f.field_id.contains('/') {
                let key = f.field_id.replace([':', '/'], "_").to_ascii_lowercase();
                return Some(Column {
                    key,
                    path: f.field_id.clone(),
                    element: f.element.clone(),
                    id: f.field_id.clone(),
                    kind: "string",
                    header: f.field_id.clone(),
                });
            }
            let (id, kind, header) = fields::spec(&f.element, &f.field_id)?;
            Some(Column {
                key: column_key(&b.root, &f.element, &f.field_id),
                path: format!("{}/{}", f.element, f.field_id),
                element: f.element.clone(),
                id: id.to_string(),
                kind,
                header: header.to_string(),
            })
        })
        .collect();
    let mut rows = Vec::new();
    for hit in hits(a, user, &b.root) {
        if let Some(clause) = &b.clause {
            if !matches(a, &hit, clause)? {
                continue;
            }
        }
        rows.push(
            columns
                .iter()
                .map(|c| hit.value(a, &c.path))
                .collect::<Vec<String>>(),
        );
    }
    let described = columns
        .iter()
        .map(|c| {
            json!({
                "key": c.key,
                "element_name": c.element,
                "id": c.id,
                "xPATH": format!("{}.{}", c.element, c.id),
                "header": c.header,
                "type": c.kind,
            })
        })
        .collect();
    let shaped = Shaped {
        title: "",
        columns: columns.into_iter().map(|c| c.key).collect(),
        total_records: Some(rows.len()),
        rows,
        file_listing: false,
    };
    Ok((described, shaped))
}

fn json_body(described: Vec<Value>, s: &Shaped, root: &str) -> String {
    json!({"ResultSet": {
        "Columns": described,
        "Result": result_objects(s),
        "totalRecords": s.rows.len().to_string(),
        "rootElementName": root,
    }})
    .to_string()
}

/// `POST /data/search`.
pub async fn search(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = Params::parse(query.as_deref());
    let format = params.format();
    let text = String::from_utf8_lossy(&body);
    let bundle = match bundle::parse(&text) {
        Ok(b) => b,
        Err(e) => {
            return XnatError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Unable to parse the search: {e}"),
            )
            .into_response()
        }
    };
    match state.store.read(|a| run(a, &user, &bundle)) {
        Ok((described, shaped)) => {
            if matches!(format.as_deref(), Some("csv" | "xml" | "html")) {
                return listing_response(&shaped, format.as_deref());
            }
            let body = json_body(described, &shaped, &bundle.root);
            tagged(
                RequestKind::Listing,
                ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            )
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_is_sql_like() {
        assert!(like("sub%", "sub01"));
        assert!(like("%", ""));
        assert!(like("s_b01", "sub01"));
        assert!(!like("SUB%", "sub01"));
        assert!(!like("%-00000-P-%", "S-01"));
    }

    #[test]
    fn column_keys() {
        assert_eq!(
            column_key("xnat:subjectData", "xnat:subjectData", "SUBJECT_ID"),
            "subject_id"
        );
        assert_eq!(
            column_key("xnat:mrSessionData", "xnat:subjectData", "SUBJECT_LABEL"),
            "xnat_subjectdata_subject_label"
        );
    }
}
