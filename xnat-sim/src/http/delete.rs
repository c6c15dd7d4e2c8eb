//! `DELETE` of objects (`removeFiles=true` also removes their bytes), of
//! resources, and of files (a path, a folder with a trailing `/`, or a `*`
//! glob; a path not in the catalog is a 200 no-op), reference §2.6.

use super::error::{XnatError, XnatResult};
use super::files::{resources_below, selected};
use super::path::FilesSel;
use super::resolve::Node;
use super::{tagged, AppState, CurrentUser, Params, RequestKind};
use crate::model::Archive;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

fn done(result: XnatResult<Vec<u64>>, state: &AppState) -> Response {
    tagged(
        RequestKind::Delete,
        match result {
            Ok(blobs) => {
                state.store.remove_blobs(&blobs);
                (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "").into_response()
            }
            Err(e) => e.into_response(),
        },
    )
}

pub fn object(state: &AppState, user: &CurrentUser, node: Node, params: &Params) -> Response {
    let remove_files = params.flag("removeFiles");
    let result = state
        .store
        .write(|a| remove(a, user, &node).map(|blobs| (blobs, &node)))
        .map_err(XnatError::from)
        .and_then(|r| r)
        .map(|(blobs, node)| {
            // A resource's files go with it; other objects keep theirs unless removeFiles=true.
            if remove_files || matches!(node, Node::Resource(_) | Node::ResourceSet(_)) {
                blobs
            } else {
                Vec::new()
            }
        });
    done(result, state)
}

fn remove(a: &mut Archive, user: &CurrentUser, node: &Node) -> XnatResult<Vec<u64>> {
    Ok(match node {
        Node::Project(p) => {
            let owner = a
                .projects
                .get(p)
                .is_some_and(|p| p.owners.contains(&user.name));
            if !(owner || user.admin) {
                return Err(XnatError::forbidden(format!(
                    "Only an owner of project {p} can delete it"
                )));
            }
            a.remove_project(p)
        }
        Node::Subject(s) => a.remove_subject(s),
        Node::Experiment(e) => a.remove_experiment(e),
        Node::Scan { experiment, scan } => a.remove_scan(experiment, scan),
        Node::ScanSet { experiment, scans } => scans
            .iter()
            .flat_map(|s| a.remove_scan(experiment, s))
            .collect(),
        Node::Resource(r) => a.remove_resource(*r),
        Node::ResourceSet(rs) => rs.iter().flat_map(|r| a.remove_resource(*r)).collect(),
        Node::Root => return Err(XnatError::bad_request("Cannot delete the site")),
    })
}

pub fn files(state: &AppState, parent: Node, sel: FilesSel, params: &Params) -> Response {
    let keep_bytes = params
        .get("removeFiles")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let recursive = !params
        .get("recursive")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let result = state
        .store
        .write(|a| {
            let mut blobs = Vec::new();
            for rid in resources_below(a, &parent) {
                if let Some(r) = a.resources.get_mut(&rid) {
                    r.files.retain(|f| {
                        let hit = selected(&sel, recursive, &f.path);
                        if hit {
                            blobs.push(f.blob);
                        }
                        !hit
                    });
                }
            }
            blobs
        })
        .map_err(XnatError::from)
        .map(|blobs| if keep_bytes { Vec::new() } else { blobs });
    done(result, state)
}
