//! The authentication endpoints: `/data/JSESSION`, `/data/services/auth`,
//! `/data/auth` and the alias-token service.

use super::middleware::{auth_kind, unauthorized};
use super::LoginError;
use crate::http::{status_page, AppState, CurrentUser};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

fn text(body: String) -> Response {
    auth_kind(([(header::CONTENT_TYPE, "text/plain")], body).into_response())
}

/// `GET|POST /data/JSESSION`: the session id as text (the middleware sets the cookie).
pub async fn jsession(Extension(user): Extension<CurrentUser>) -> Response {
    text(user.session)
}

/// `DELETE /data/JSESSION`: ends the session.
pub async fn end_jsession(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> Response {
    state.auth.end_session(&user.session);
    text(String::new())
}

/// `PUT|POST /data/services/auth` with `username=…&password=…` (form body or query).
pub async fn form_login(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if method != Method::PUT && method != Method::POST {
        return auth_kind(status_page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
        ));
    }
    let mut form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    form.extend(
        serde_urlencoded::from_str::<Vec<(String, String)>>(query.as_deref().unwrap_or(""))
            .unwrap_or_default(),
    );
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (Some(u), Some(p)) = (get("username"), get("password")) else {
        return unauthorized(&headers, "Login failed");
    };
    match state.auth.login(&u, &p) {
        Ok(user) => {
            let session = state.auth.new_session(&user);
            let mut resp = text(session.clone());
            for c in [
                format!("JSESSIONID={session}; Path=/; HttpOnly"),
                state.auth.expiration_cookie(&session),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(LoginError::Locked) => {
            unauthorized(&headers, "Account locked after too many failed logins")
        }
        Err(LoginError::BadCredentials) => unauthorized(&headers, "Login failed"),
    }
}

/// `GET /data/auth`: who is logged in.
pub async fn who_am_i(Extension(user): Extension<CurrentUser>) -> Response {
    text(format!("User '{}' is logged in", user.name))
}

/// `GET /data/services/tokens/issue`.
pub async fn issue_token(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> Response {
    let t = state.auth.issue_token(&user.name);
    auth_kind(
        Json(json!({
            "alias": t.alias,
            "secret": t.secret,
            "xdatUserId": user.name,
            "singleUse": false,
            "estimatedExpirationTime": t.expires_ms,
            "timestamp": t.created_ms,
            "enabled": true,
            "created": t.created_ms,
            "id": t.created_ms,
            "validIPAddresses": [],
        }))
        .into_response(),
    )
}

/// `GET /data/services/tokens/validate/{alias}/{secret}` → `{"valid":"username"}`.
pub async fn validate_token(
    State(state): State<AppState>,
    Path((alias, secret)): Path<(String, String)>,
) -> Response {
    match state.auth.token_user(&alias, &secret) {
        Some(user) => auth_kind(Json(json!({ "valid": user })).into_response()),
        None => auth_kind(status_page(
            StatusCode::FORBIDDEN,
            "Invalid or expired token",
        )),
    }
}

/// `GET /data/services/tokens/invalidate/{alias}/{secret}`.
pub async fn invalidate_token(
    State(state): State<AppState>,
    Path((alias, secret)): Path<(String, String)>,
) -> Response {
    if state.auth.invalidate_token(&alias, &secret) {
        auth_kind(Json(json!({ "alias": alias, "invalidated": true })).into_response())
    } else {
        auth_kind(status_page(StatusCode::NOT_FOUND, "No such token"))
    }
}
