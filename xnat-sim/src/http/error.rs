//! XNAT's error replies: a Restlet "Status page" in HTML with the message in `<h3>`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct XnatError {
    pub status: StatusCode,
    pub message: String,
}

pub type XnatResult<T> = Result<T, XnatError>;

impl XnatError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> XnatError {
        XnatError {
            status,
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> XnatError {
        XnatError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn forbidden(message: impl Into<String>) -> XnatError {
        XnatError::new(StatusCode::FORBIDDEN, message)
    }
    pub fn bad_request(message: impl Into<String>) -> XnatError {
        XnatError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn conflict(message: impl Into<String>) -> XnatError {
        XnatError::new(StatusCode::CONFLICT, message)
    }
    pub fn internal(message: impl Into<String>) -> XnatError {
        XnatError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<std::io::Error> for XnatError {
    fn from(e: std::io::Error) -> XnatError {
        XnatError::internal(e.to_string())
    }
}

/// The page Restlet 1.x writes for an error status.
pub fn status_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<html><head><title>Status page</title></head><body><h3>{}</h3><p>You can get technical details <a href=\"http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html\">here</a>.<br>Please continue your visit at our <a href=\"/\">home page</a>.</p></body></html>",
        crate::text::xml_escape(message)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html;charset=UTF-8")],
        body,
    )
        .into_response()
}

impl IntoResponse for XnatError {
    fn into_response(self) -> Response {
        status_page(self.status, &self.message)
    }
}
