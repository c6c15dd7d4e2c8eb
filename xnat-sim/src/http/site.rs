//! Site-level endpoints clients probe: `GET /` (xnatpy's redirect check),
//! the login page, `/data/version`, `/xapi/siteConfig/buildInfo`, the schema
//! list and the minimal XSD xnatpy builds its classes from, and the search
//! element listings.

use super::error::status_page;
use super::AppState;
use crate::listing::{Row, Table};
use crate::model::xsi;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The XSD of tools-and-data.md Appendix A.
pub const XNAT_XSD: &str = include_str!("../../assets/xnat.xsd");

pub async fn root() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html")],
        "<!DOCTYPE html><html><head><title>XNAT</title></head><body><p>xnat-sim: an XNAT REST emulator.</p></body></html>",
    )
        .into_response()
}

pub async fn login_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html")],
        "<!DOCTYPE html><html><head><title>XNAT Login</title></head><body><form method=\"post\" action=\"/j_spring_security_check\"><input name=\"username\"><input name=\"password\" type=\"password\"></form></body></html>",
    )
        .into_response()
}

pub async fn version(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain")],
        state.version.to_string(),
    )
        .into_response()
}

pub async fn build_info(State(state): State<AppState>) -> Response {
    axum::Json(json!({
        "version": &*state.version,
        "buildNumber": "xnat-sim",
        "commit": "xnat-sim",
        "isDirty": "false",
        "buildDate": "2024-01-01T00:00:00Z",
    }))
    .into_response()
}

pub async fn schemas() -> Response {
    axum::Json(json!(["xnat"])).into_response()
}

pub async fn schema(Path(name): Path<String>) -> Response {
    if name == "xnat" || name == "xnat.xsd" {
        ([(header::CONTENT_TYPE, "application/xml")], XNAT_XSD).into_response()
    } else {
        status_page(StatusCode::NOT_FOUND, &format!("No schema named {name}"))
    }
}

fn format_of(query: &Option<String>) -> Option<String> {
    super::Params::parse(query.as_deref()).format()
}

/// `GET /data/search/elements`: the searchable data types (`SearchElementListResource`).
pub async fn search_elements(RawQuery(query): RawQuery) -> Response {
    let rows = xsi::all_elements()
        .into_iter()
        .map(|(name, singular)| {
            Row::new()
                .with("ELEMENT_NAME", name)
                .with("SINGULAR", singular)
                .with("PLURAL", format!("{singular}s"))
                .with("SECURED", "true")
                .with("COUNT", "0")
        })
        .collect();
    let table = Table {
        title: "Data-Types",
        defaults: &["ELEMENT_NAME", "SINGULAR", "PLURAL", "SECURED", "COUNT"],
        file_listing: false,
        rows,
    };
    super::fixed_listing(table, format_of(&query).as_deref())
}

/// `GET /data/search/elements/{types}`: the display fields of each (comma-separated)
/// type (`SearchFieldListResource`), the ones the search service answers.
pub async fn search_element_fields(
    Path(elements): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let rows = elements
        .split(',')
        .map(|e| xsi::canonical(e.trim()))
        .flat_map(|element| {
            super::search::fields::of(&element)
                .iter()
                .map(move |(id, kind, header)| {
                    Row::new()
                        .with("FIELD_ID", *id)
                        .with("HEADER", *header)
                        .with("SUMMARY", *header)
                        .with("TYPE", *kind)
                        .with("REQUIRES_VALUE", "false")
                        .with("DESC", *header)
                        .with("ELEMENT_NAME", &element)
                        .with("SRC", "0")
                })
        })
        .collect();
    let table = Table {
        title: "Search Fields",
        defaults: &[
            "FIELD_ID",
            "HEADER",
            "SUMMARY",
            "TYPE",
            "REQUIRES_VALUE",
            "DESC",
            "ELEMENT_NAME",
            "SRC",
        ],
        file_listing: false,
        rows,
    };
    super::fixed_listing(table, format_of(&query).as_deref())
}
