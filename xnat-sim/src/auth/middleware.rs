//! Who is asking: a live JSESSIONID cookie, else HTTP Basic (password or
//! alias token), which starts a session as XNAT does. Data paths without
//! valid credentials get 401 + `WWW-Authenticate` (browser-like user agents
//! a 302 to the login page). Authenticated responses carry the
//! `SESSION_EXPIRATION_TIME` cookie.

use super::LoginError;
use crate::http::{status_page, tagged, AppState, CurrentUser, RequestKind};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;

/// Paths anyone may call.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/" | "/data/version"
            | "/REST/version"
            | "/xapi/siteConfig/buildInfo"
            | "/data/services/auth"
    ) || path.starts_with("/app/")
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

enum Identity {
    Known {
        user: String,
        session: String,
        new: bool,
    },
    Anonymous,
    Refused(LoginError),
}

fn identify(state: &AppState, headers: &HeaderMap) -> Identity {
    if let Some(id) = cookie(headers, "JSESSIONID") {
        if let Some(user) = state.auth.session_user(&id) {
            return Identity::Known {
                user,
                session: id,
                new: false,
            };
        }
    }
    match basic(headers) {
        Some((u, p)) => match state.auth.login(&u, &p) {
            Ok(user) => {
                let session = state.auth.new_session(&user);
                Identity::Known {
                    user,
                    session,
                    new: true,
                }
            }
            Err(e) => Identity::Refused(e),
        },
        None => Identity::Anonymous,
    }
}

/// Browser-like agents are sent to the login page instead of a 401.
fn is_interactive(headers: &HeaderMap) -> bool {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.contains("Mozilla") && !ua.contains("XNATDesktopClient"))
}

pub fn unauthorized(headers: &HeaderMap, message: &str) -> Response {
    let mut resp = if is_interactive(headers) {
        let mut r = status_page(StatusCode::FOUND, "Login required");
        r.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_static("/app/template/Login.vm"),
        );
        r
    } else {
        let mut r = status_page(StatusCode::UNAUTHORIZED, message);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"XNAT\""),
        );
        r
    };
    resp.extensions_mut().insert(RequestKind::Auth);
    resp
}

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let public = is_public(req.uri().path());
    let identity = identify(&state, req.headers());
    let (user, session, new) = match identity {
        Identity::Known { user, session, new } => (user, session, new),
        Identity::Refused(e) if !public => {
            let msg = match e {
                LoginError::Locked => "Account locked after too many failed logins",
                LoginError::BadCredentials => "Login failed",
            };
            return unauthorized(req.headers(), msg);
        }
        _ if public => return next.run(req).await,
        _ => return unauthorized(req.headers(), "Authentication required"),
    };
    let admin = state.auth.is_admin(&user);
    req.extensions_mut().insert(CurrentUser {
        name: user,
        admin,
        session: session.clone(),
    });
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    if new {
        if let Ok(v) = HeaderValue::from_str(&format!("JSESSIONID={session}; Path=/; HttpOnly")) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&state.auth.expiration_cookie(&session)) {
        headers.append(header::SET_COOKIE, v);
    }
    resp
}

/// Marks a response as an authentication request for the counters.
pub fn auth_kind(resp: Response) -> Response {
    tagged(RequestKind::Auth, resp)
}
