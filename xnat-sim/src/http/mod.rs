//! The faithful XNAT REST server: routing, listings, single objects,
//! downloads, uploads, creation and deletion (reference §2, §4). Knobs
//! (latency, faults, counters) are not here: `crate::knobs` wraps this
//! router in layers.

mod archive;
mod create;
mod delete;
mod dicomdump;
mod download;
mod error;
mod file_body;
mod files;
mod listings;
mod object;
mod packed_download;
mod params;
mod path;
mod resolve;
mod search;
mod services;
mod site;
mod upload;

pub use archive::write_kind;
pub use error::{status_page, XnatError, XnatResult};
pub use file_body::file_body;
pub use params::Params;
pub use upload::refused;

use crate::auth::{self, AuthState};
use crate::store::Store;
use axum::routing::{any, get};
use axum::Router;
use serde::Serialize;
use std::sync::Arc;

/// What the server shares between requests.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub auth: Arc<AuthState>,
    /// The version `/data/version` reports.
    pub version: Arc<str>,
}

/// The authenticated user of a request (set by the auth middleware).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub name: String,
    pub admin: bool,
    /// The JSESSION the request used or created.
    pub session: String,
}

/// What a request did, for the counters (set by handlers as a response extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    Listing,
    Download,
    Upload,
    Create,
    Delete,
    Auth,
    Other,
}

/// Marks a file listing response (the stale-size knob rewrites those).
#[derive(Debug, Clone, Copy)]
pub struct FileListing;

/// Tags a response with its kind.
pub fn tagged(kind: RequestKind, mut resp: axum::response::Response) -> axum::response::Response {
    resp.extensions_mut().insert(kind);
    resp
}

/// A listing in the asked format, tagged as a listing for the counters.
pub fn listing_response(
    shaped: &crate::listing::Shaped,
    format: Option<&str>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (body, ct) = crate::listing::render(shaped, format);
    tagged(
        RequestKind::Listing,
        ([(axum::http::header::CONTENT_TYPE, ct)], body).into_response(),
    )
}

/// A fixed table (its columns, no filter, no paging) as a listing in the asked format.
pub fn fixed_listing(
    table: crate::listing::Table,
    format: Option<&str>,
) -> axum::response::Response {
    listing_response(
        &crate::listing::ListingQuery::default().shape(table),
        format,
    )
}

/// The XNAT routes (with authentication, which is part of XNAT).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(site::root))
        .route("/app/template/Login.vm", get(site::login_page))
        .route("/data/version", get(site::version))
        .route("/REST/version", get(site::version))
        .route("/xapi/siteConfig/buildInfo", get(site::build_info))
        .route("/xapi/schemas", get(site::schemas))
        .route("/xapi/schemas/{name}", get(site::schema))
        .route("/data/search", axum::routing::post(search::search))
        .route("/REST/search", axum::routing::post(search::search))
        .route("/data/search/elements", get(site::search_elements))
        .route("/data/prearchive/projects", get(services::prearchive))
        .route(
            "/data/prearchive/projects/{project}",
            get(services::prearchive),
        )
        .route("/REST/prearchive/projects", get(services::prearchive))
        .route("/xapi/access/projects", get(services::access_projects))
        .route("/data/services/dicomdump", get(dicomdump::dump))
        .route("/REST/services/dicomdump", get(dicomdump::dump))
        .route("/xapi/users/{name}", get(services::xapi_user))
        .route(
            "/data/projects/{project}/users",
            get(services::project_users),
        )
        .route(
            "/REST/projects/{project}/users",
            get(services::project_users),
        )
        .route(
            "/data/search/elements/{xsi}",
            get(site::search_element_fields),
        )
        .route(
            "/data/JSESSION",
            get(auth::endpoints::jsession)
                .post(auth::endpoints::jsession)
                .delete(auth::endpoints::end_jsession),
        )
        .route(
            "/REST/JSESSION",
            get(auth::endpoints::jsession)
                .post(auth::endpoints::jsession)
                .delete(auth::endpoints::end_jsession),
        )
        .route("/data/services/auth", any(auth::endpoints::form_login))
        .route("/data/auth", get(auth::endpoints::who_am_i))
        .route(
            "/data/services/tokens/issue",
            get(auth::endpoints::issue_token),
        )
        .route(
            "/data/services/tokens/validate/{alias}/{secret}",
            get(auth::endpoints::validate_token),
        )
        .route(
            "/data/services/tokens/invalidate/{alias}/{secret}",
            get(auth::endpoints::invalidate_token),
        )
        .fallback(archive::handle)
        // XNAT puts no cap on upload bodies; axum's Multipart extractor has a 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::middleware::authenticate,
        ))
        .with_state(state)
}
