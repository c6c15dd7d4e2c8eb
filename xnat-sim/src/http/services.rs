//! Site services clients call at start-up (evidence D4): the prearchive
//! listing (empty: nothing waits here), the user's project roles
//! (`/xapi/access/projects`), a project's users (owners and admins only),
//! and a user's account (`/xapi/users/{u}`).

use super::error::{XnatError, XnatResult};
use super::resolve::check_project;
use super::{fixed_listing, listing_response, AppState, CurrentUser, Params};
use crate::listing::{ListingQuery, Row, Table};
use crate::model::Project;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

const PREARCHIVE_COLS: &[&str] = &[
    "project",
    "timestamp",
    "lastmod",
    "uploaded",
    "scan_date",
    "scan_time",
    "subject",
    "folderName",
    "name",
    "tag",
    "status",
    "url",
    "autoarchive",
    "prevent_anon",
    "prevent_auto_commit",
    "SOURCE",
    "VISIT",
    "PROTOCOL",
    "TIMEZONE",
];

const PROJECT_USER_COLS: &[&str] = &[
    "GROUP_ID",
    "displayname",
    "login",
    "firstname",
    "lastname",
    "email",
];

/// A project role: (group display name, group id suffix).
const ROLES: [(&str, &str); 3] = [
    ("Owners", "owner"),
    ("Members", "member"),
    ("Collaborators", "collaborator"),
];

/// The user's role in a project, as (display name, group id suffix).
fn role_of(p: &Project, user: &str) -> Option<(&'static str, &'static str)> {
    if p.owners.contains(user) {
        Some(ROLES[0])
    } else if p.members.contains(user) {
        Some(ROLES[1])
    } else if p.collaborators.contains(user) {
        Some(ROLES[2])
    } else {
        None
    }
}

/// `GET /data/prearchive/projects[/P]`: XNAT answers without title or totalRecords.
pub async fn prearchive(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    project: Option<Path<String>>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(Path(p)) = project {
        if let Err(e) = state.store.read(|a| check_project(a, &user, &p)) {
            return e.into_response();
        }
    }
    let table = Table {
        title: "",
        defaults: PREARCHIVE_COLS,
        file_listing: false,
        rows: Vec::new(),
    };
    let mut shaped = ListingQuery::default().shape(table);
    shaped.total_records = None;
    listing_response(&shaped, Params::parse(query.as_deref()).format().as_deref())
}

/// `GET /xapi/access/projects`: the projects the user has a role in, by secondary ID.
pub async fn access_projects(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> Response {
    let mut rows: Vec<Value> = state.store.read(|a| {
        a.projects
            .values()
            .filter_map(|p| {
                let (role, group) = role_of(p, &user.name)?;
                Some(json!({
                    "secondary_ID": p.secondary_id,
                    "ID": p.id,
                    "role": role,
                    "name": p.name,
                    "URI": format!("/data/projects/{}", p.id),
                    "group_id": format!("{}_{group}", p.id),
                    "description": p.description,
                }))
            })
            .collect()
    });
    rows.sort_by(|a, b| a["secondary_ID"].as_str().cmp(&b["secondary_ID"].as_str()));
    Json(Value::Array(rows)).into_response()
}

/// `GET /data/projects/P/users`: owners and site admins only.
pub async fn project_users(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let rows = state.store.read(|a| -> XnatResult<Vec<Row>> {
        let p = a
            .projects
            .get(&project)
            .ok_or_else(|| XnatError::not_found(format!("Unable to identify project {project}")))?;
        if !(user.admin || p.owners.contains(&user.name)) {
            return Err(XnatError::forbidden(
                "Only project owners and site administrators can list a project's users",
            ));
        }
        let mut rows: Vec<Row> = a
            .users
            .keys()
            .filter_map(|login| {
                let (role, group) = role_of(p, login)?;
                Some(
                    Row::new()
                        .with("GROUP_ID", format!("{}_{group}", p.id))
                        .with("displayname", role)
                        .with("login", login)
                        .with("firstname", "")
                        .with("lastname", "")
                        .with("email", ""),
                )
            })
            .collect();
        // XNAT orders by GROUP_ID, descending.
        rows.sort_by(|a, b| b.get("GROUP_ID").cmp(&a.get("GROUP_ID")));
        Ok(rows)
    });
    match rows {
        Ok(rows) => fixed_listing(
            Table {
                title: "Projects",
                defaults: PROJECT_USER_COLS,
                file_listing: false,
                rows,
            },
            Params::parse(query.as_deref()).format().as_deref(),
        ),
        Err(e) => e.into_response(),
    }
}

/// `GET /xapi/users/{u}`: the account, to the user themself or an admin; secrets are null.
pub async fn xapi_user(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(name): Path<String>,
) -> Response {
    let found = state.store.read(|a| {
        a.users
            .iter()
            .enumerate()
            .find(|(_, (n, _))| **n == name)
            .map(|(i, (_, u))| (i, u.admin))
    });
    let Some((index, admin)) = found else {
        return XnatError::not_found(format!("User {name} not found")).into_response();
    };
    if !(user.admin || user.name == name) {
        return XnatError::forbidden("Only the user or a site administrator may see this account")
            .into_response();
    }
    Json(json!({
        "id": index + 1,
        "username": name,
        "firstName": "",
        "lastName": "",
        "email": "",
        "password": null,
        "salt": null,
        "secured": true,
        "lastModified": null,
        "authorization": null,
        "enabled": true,
        "verified": true,
        "admin": admin,
        "lastSuccessfulLogin": null,
    }))
    .into_response()
}
