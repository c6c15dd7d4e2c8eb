//! The archive dispatcher: strips the `/data`, `/data/archive` or `/REST`
//! prefix, resolves the path, and hands the request to the listing, object,
//! file, upload, create or delete code by method and target.

use super::error::{status_page, XnatError};
use super::files::{self, FilesRequest};
use super::packed_download::{self, Packing};
use super::path::{self, Coll};
use super::resolve::{
    check_delete, check_write, missing_message, owner_of, resolve, target_project, Node, Resolved,
};
use super::upload::{self, UploadTarget};
use super::{create, delete, download, listings, object};
use super::{listing_response, tagged, AppState, CurrentUser, Params, RequestKind};
use crate::listing::ListingQuery;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};

const PREFIXES: &[&str] = &["/data/archive/", "/data/", "/REST/archive/", "/REST/"];

fn archive_rest(path: &str) -> Option<&str> {
    PREFIXES.iter().find_map(|p| path.strip_prefix(p))
}

/// What a request would change in the archive, judged from its method and path alone
/// (for the fault knobs, which answer before the server looks): an upload (`PUT`/`POST`
/// on `…/files…`), a create (other `PUT`/`POST`) or a delete. None for reads and for
/// non-archive paths (`/data/JSESSION`, `/data/services/…`).
pub fn write_kind(method: &Method, path: &str) -> Option<RequestKind> {
    let parsed = archive_rest(path).and_then(path::parse)?;
    match *method {
        Method::PUT | Method::POST if parsed.files.is_some() => Some(RequestKind::Upload),
        Method::PUT | Method::POST => Some(RequestKind::Create),
        Method::DELETE => Some(RequestKind::Delete),
        _ => None,
    }
}

pub async fn handle(State(state): State<AppState>, req: Request) -> Response {
    let not_found = || {
        status_page(
            StatusCode::NOT_FOUND,
            "The requested resource was not found",
        )
    };
    let uri_path = req.uri().path().to_string();
    let Some(parsed) = archive_rest(&uri_path).and_then(path::parse) else {
        return not_found();
    };
    let Some(user) = req.extensions().get::<CurrentUser>().cloned() else {
        return not_found();
    };
    let params = Params::parse(req.uri().query());
    let resolved = match state.store.read(|a| resolve(a, &user, &parsed)) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let method = req.method().clone();
    if matches!(method, Method::PUT | Method::POST | Method::DELETE) {
        let allowed = state.store.read(|a| match target_project(a, &resolved) {
            Some(p) if method == Method::DELETE => check_delete(a, &user, &p),
            Some(p) => check_write(a, &user, &p),
            None => Ok(()),
        });
        if let Err(e) = allowed {
            let kind = match (&method, &resolved) {
                (&Method::DELETE, _) => RequestKind::Delete,
                (_, Resolved::Files { .. } | Resolved::Missing { files: Some(_), .. }) => {
                    RequestKind::Upload
                }
                _ => RequestKind::Create,
            };
            return upload::refused(kind, req, e).await;
        }
    }
    match method {
        Method::GET | Method::HEAD => read(&state, &user, resolved, &params, req).await,
        Method::PUT | Method::POST => write(state, user, resolved, params, req).await,
        Method::DELETE => remove(&state, &user, resolved, &params),
        _ => status_page(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    }
}

async fn read(
    state: &AppState,
    user: &CurrentUser,
    resolved: Resolved,
    params: &Params,
    req: Request,
) -> Response {
    let format = params.format();
    match resolved {
        Resolved::Collection { parent, coll } => {
            let q = ListingQuery::from_pairs(&params.0);
            let table = state
                .store
                .read(|a| listings::collection(a, user, &parent, coll, &q));
            match table {
                Ok(shaped) => listing_response(&shaped, format.as_deref()),
                Err(e) => e.into_response(),
            }
        }
        Resolved::Object(node) => {
            let out = state
                .store
                .read(|a| object::render(a, &node, format.as_deref()));
            match out {
                Ok((body, ct)) => tagged(
                    RequestKind::Other,
                    ([(header::CONTENT_TYPE, ct)], body).into_response(),
                ),
                Err(e) => e.into_response(),
            }
        }
        Resolved::Files { parent, sel } => {
            let entries = state
                .store
                .read(|a| files::select(a, &parent, &sel, params));
            if let Some(packing) = Packing::of(format.as_deref(), params.get("compression")) {
                return tagged(
                    RequestKind::Download,
                    match packed_download::serve(state.store.clone(), entries, packing).await {
                        Ok(r) => r,
                        Err(e) => e.into_response(),
                    },
                );
            }
            match files::request_shape(&sel) {
                FilesRequest::Single => match entries.first() {
                    Some(entry) => {
                        let blob = state.store.blob_path(entry.file.blob);
                        let resp = download::serve(&blob, entry, req.method(), req.headers());
                        tagged(
                            RequestKind::Download,
                            resp.unwrap_or_else(|e| e.into_response()),
                        )
                    }
                    None => XnatError::not_found(format!("File not found: {}", sel.path))
                        .into_response(),
                },
                FilesRequest::Many => {
                    let q = ListingQuery::from_pairs(&params.0);
                    let mut resp =
                        listing_response(&q.shape(files::listing(&entries)), format.as_deref());
                    resp.extensions_mut().insert(super::FileListing);
                    resp
                }
            }
        }
        Resolved::Missing { coll, key, .. } => {
            XnatError::not_found(missing_message(coll, &key)).into_response()
        }
    }
}

async fn write(
    state: AppState,
    user: CurrentUser,
    resolved: Resolved,
    params: Params,
    req: Request,
) -> Response {
    match resolved {
        Resolved::Files {
            parent: Node::Resource(rid),
            sel,
        } => upload::handle(state, UploadTarget::Resource(rid), sel, params, req).await,
        Resolved::Files { .. } => XnatError::bad_request(
            "Files can only be uploaded into a resource: …/resources/R/files/NAME",
        )
        .into_response(),
        Resolved::Missing {
            parent,
            coll: coll @ (Coll::Resources | Coll::InResources),
            key,
            rest,
            files: Some(sel),
        } if rest.is_empty() => {
            let owner = state.store.read(|a| owner_of(a, &parent, coll));
            match owner {
                Some(owner) => {
                    let target = UploadTarget::NewResource { owner, label: key };
                    upload::handle(state, target, sel, params, req).await
                }
                None => XnatError::not_found("Invalid resource path").into_response(),
            }
        }
        Resolved::Missing {
            files: Some(_),
            coll,
            key,
            ..
        } => XnatError::not_found(missing_message(coll, &key)).into_response(),
        Resolved::Missing {
            parent,
            coll,
            key,
            rest,
            files: None,
        } => create::create(&state, &user, parent, coll, key, rest, &params),
        Resolved::Object(node) => create::update(&state, node, &params),
        Resolved::Collection { .. } => tagged(
            RequestKind::Create,
            status_page(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
        ),
    }
}

fn remove(state: &AppState, user: &CurrentUser, resolved: Resolved, params: &Params) -> Response {
    match resolved {
        Resolved::Object(node) => delete::object(state, user, node, params),
        Resolved::Files { parent, sel } => delete::files(state, parent, sel, params),
        Resolved::Missing { coll, key, .. } => tagged(
            RequestKind::Delete,
            XnatError::not_found(missing_message(coll, &key)).into_response(),
        ),
        Resolved::Collection { .. } => tagged(
            RequestKind::Delete,
            status_page(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
        ),
    }
}
