//! Creating and updating hierarchy objects with `PUT` (or `POST`), with the
//! codes of reference §2.6: subject and experiment 201/200 + ID, experiment
//! without `xsiType` → 417 "Need PUT Contents", scan without `xsiType` → 400,
//! xsiType change → 409, resource 200 + id / 409 if it exists. Field values
//! come from xpath parameters (`xnat:mrSessionData/date=…`, `req_format=qs`)
//! or their shortcuts (`type=`, `date=`).

use super::error::{XnatError, XnatResult};
use super::path::{Coll, Step};
use super::resolve::{missing_message, owner_of, Node};
use super::{tagged, AppState, CurrentUser, Params, RequestKind};
use crate::model::{is_valid_label, xsi, Archive, Scan};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

/// Fields with a place of their own in the model; the rest go to `fields`.
const MODELLED: &[&str] = &[
    "id",
    "label",
    "project",
    "subject_id",
    "date",
    "type",
    "series_description",
    "quality",
    "note",
    "name",
    "description",
    "secondary_id",
    "pi_firstname",
    "pi_lastname",
    "format",
    "content",
    "tags",
];

fn extra_fields(p: &Params) -> BTreeMap<String, String> {
    p.xpath_fields()
        .into_iter()
        .filter(|(k, _)| !MODELLED.contains(&k.to_ascii_lowercase().as_str()))
        .collect()
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn need_put_contents() -> XnatError {
    XnatError::new(StatusCode::EXPECTATION_FAILED, "Need PUT Contents")
}

fn invalid_label(what: &str) -> XnatError {
    XnatError::new(
        StatusCode::EXPECTATION_FAILED,
        format!("Invalid character in {what}"),
    )
}

/// `PUT` of something that does not exist yet.
pub fn create(
    state: &AppState,
    user: &CurrentUser,
    parent: Node,
    coll: Coll,
    key: String,
    rest: Vec<Step>,
    params: &Params,
) -> Response {
    let result = state
        .store
        .write(|a| create_in(a, user, &parent, coll, &key, &rest, params))
        .map_err(XnatError::from)
        .and_then(|r| r);
    tagged(
        RequestKind::Create,
        match result {
            Ok((status, body)) => text(status, body),
            Err(e) => e.into_response(),
        },
    )
}

fn create_in(
    a: &mut Archive,
    user: &CurrentUser,
    parent: &Node,
    coll: Coll,
    key: &str,
    rest: &[Step],
    params: &Params,
) -> XnatResult<(StatusCode, String)> {
    let rest_experiment = match rest {
        [] => None,
        [Step {
            coll: Coll::Experiments,
            key: Some(e),
        }] => Some(e.as_str()),
        _ => return Err(XnatError::not_found(missing_message(coll, key))),
    };
    match (parent, coll) {
        (Node::Root, Coll::Projects) if rest.is_empty() => {
            if !is_valid_label(key) {
                return Err(invalid_label("project ID"));
            }
            let p = a.add_project(key, &user.name);
            set_project_fields(p, params);
            Ok((StatusCode::CREATED, key.to_string()))
        }
        (Node::Project(p), Coll::Subjects) => {
            if rest_experiment.is_some() && params.get("xsiType").is_none() {
                return Err(need_put_contents());
            }
            if !is_valid_label(key) {
                return Err(invalid_label("subject label"));
            }
            let sid = a.add_subject(p, key, &user.name);
            if let Some(s) = a.subjects.get_mut(&sid) {
                s.fields.extend(extra_fields(params));
            }
            match rest_experiment {
                Some(e) => create_experiment(a, user, &sid, e, params),
                None => Ok((StatusCode::CREATED, sid)),
            }
        }
        (Node::Project(p), Coll::Experiments) if rest.is_empty() => {
            let subject = params
                .field("subject_ID")
                .or_else(|| params.field("subject_label"))
                .and_then(|s| a.subject_in_project(p, s))
                .map(|s| s.id.clone())
                .ok_or_else(|| {
                    XnatError::bad_request("Creating an experiment needs a subject: use …/subjects/S/experiments/E or subject_ID=")
                })?;
            create_experiment(a, user, &subject, key, params)
        }
        (Node::Subject(s), Coll::Experiments) if rest.is_empty() => {
            create_experiment(a, user, s, key, params)
        }
        (Node::Experiment(e), Coll::Assessors) if rest.is_empty() => {
            let t = params.get("xsiType").ok_or_else(need_put_contents)?;
            if !is_valid_label(key) {
                return Err(invalid_label("assessor label"));
            }
            let id = a.add_assessor(e, key, t, &user.name);
            if let Some(x) = a.experiments.get_mut(&id) {
                x.date = params.field("date").unwrap_or("").to_string();
                x.fields = extra_fields(params);
            }
            Ok((StatusCode::CREATED, id))
        }
        (Node::Experiment(e), Coll::Scans) if rest.is_empty() => {
            let Some(t) = params.get("xsiType") else {
                return Err(XnatError::bad_request(format!(
                    "Scan {key} does not exist. To create it, retry with an xsiType, e.g. ?xsiType=xnat:mrScanData"
                )));
            };
            let mut scan = Scan {
                id: key.to_string(),
                xsi_type: xsi::canonical(t),
                quality: "usable".into(),
                ..Default::default()
            };
            set_scan_fields(&mut scan, params);
            a.add_scan(e, scan);
            Ok((StatusCode::OK, String::new()))
        }
        (node, Coll::Resources | Coll::InResources) if rest.is_empty() => {
            let owner = owner_of(a, node, coll)
                .ok_or_else(|| XnatError::not_found("Invalid resource path"))?;
            let id = a.add_resource(owner, key);
            if let Some(r) = a.resources.get_mut(&id) {
                r.format = params.field("format").unwrap_or("").to_string();
                r.content = params.field("content").unwrap_or("").to_string();
                r.tags = params.all("tags").join(",");
                r.description = params.field("description").unwrap_or("").to_string();
            }
            Ok((StatusCode::OK, id.to_string()))
        }
        _ => Err(XnatError::not_found(missing_message(coll, key))),
    }
}

fn create_experiment(
    a: &mut Archive,
    user: &CurrentUser,
    subject: &str,
    label: &str,
    params: &Params,
) -> XnatResult<(StatusCode, String)> {
    let t = params.get("xsiType").ok_or_else(need_put_contents)?;
    if !is_valid_label(label) {
        return Err(invalid_label("experiment label"));
    }
    let id = a.add_experiment(subject, label, t, &user.name);
    if let Some(x) = a.experiments.get_mut(&id) {
        x.date = params.field("date").unwrap_or("").to_string();
        x.fields = extra_fields(params);
    }
    Ok((StatusCode::CREATED, id))
}

fn set_project_fields(p: &mut crate::model::Project, params: &Params) {
    let set = |dst: &mut String, name: &str| {
        if let Some(v) = params.field(name) {
            *dst = v.to_string();
        }
    };
    set(&mut p.name, "name");
    set(&mut p.secondary_id, "secondary_ID");
    set(&mut p.description, "description");
    set(&mut p.pi_firstname, "pi_firstname");
    set(&mut p.pi_lastname, "pi_lastname");
    p.fields.extend(extra_fields(params));
}

fn set_scan_fields(s: &mut Scan, params: &Params) {
    let set = |dst: &mut String, name: &str| {
        if let Some(v) = params.field(name) {
            *dst = v.to_string();
        }
    };
    set(&mut s.scan_type, "type");
    set(&mut s.series_description, "series_description");
    set(&mut s.quality, "quality");
    set(&mut s.note, "note");
    s.fields.extend(extra_fields(params));
}

/// `PUT` of an object that exists: update fields, or refuse as XNAT does.
pub fn update(state: &AppState, node: Node, params: &Params) -> Response {
    let result = state
        .store
        .write(|a| update_in(a, &node, params))
        .map_err(XnatError::from)
        .and_then(|r| r);
    tagged(
        RequestKind::Create,
        match result {
            Ok(body) => text(StatusCode::OK, body),
            Err(e) => e.into_response(),
        },
    )
}

fn update_in(a: &mut Archive, node: &Node, params: &Params) -> XnatResult<String> {
    match node {
        Node::Project(p) => {
            let p = a
                .projects
                .get_mut(p)
                .ok_or_else(|| XnatError::not_found("Unknown project"))?;
            set_project_fields(p, params);
            Ok(p.id.clone())
        }
        Node::Subject(s) => {
            let s = a
                .subjects
                .get_mut(s)
                .ok_or_else(|| XnatError::not_found("Unknown subject"))?;
            s.fields.extend(extra_fields(params));
            Ok(s.id.clone())
        }
        Node::Experiment(e) => {
            let e = a
                .experiments
                .get_mut(e)
                .ok_or_else(|| XnatError::not_found("Unknown experiment"))?;
            if let Some(d) = params.field("date") {
                e.date = d.to_string();
            }
            e.fields.extend(extra_fields(params));
            Ok(e.id.clone())
        }
        Node::Scan { experiment, scan } => {
            let s = a
                .experiments
                .get_mut(experiment)
                .and_then(|e| e.scan_mut(scan))
                .ok_or_else(|| XnatError::not_found("Unknown scan"))?;
            if let Some(t) = params.get("xsiType") {
                if !xsi::canonical(t).eq_ignore_ascii_case(&s.xsi_type) {
                    return Err(XnatError::conflict(format!(
                        "Scan {} is a {}; its xsiType cannot change to {t}",
                        s.id, s.xsi_type
                    )));
                }
            }
            set_scan_fields(s, params);
            Ok(String::new())
        }
        Node::Resource(_) | Node::ResourceSet(_) => {
            Err(XnatError::conflict("Specified resource already exists"))
        }
        Node::ScanSet { .. } | Node::Root => Err(XnatError::bad_request("Cannot PUT here")),
    }
}
