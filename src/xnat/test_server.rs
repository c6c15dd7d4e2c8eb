//! A tiny scripted XNAT stand-in on loopback for the client's own tests: it counts logins,
//! checks that data requests carry the session cookie and never Basic auth, and can expire
//! sessions, fail with 503, honour or ignore Range, and answer uploads like XNAT does.
//! (The faithful emulator is the `xnat-sim` crate; this one exists to assert exact counts.)

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// `Basic base64("alice:secret")`.
pub const GOOD_AUTH: &str = "Basic YWxpY2U6c2VjcmV0";

#[derive(Default)]
pub struct Knobs {
    /// Login attempts seen (good or bad).
    pub logins: u32,
    pub logouts: u32,
    /// Data requests seen, by decoded path.
    pub requests: HashMap<String, u32>,
    /// Data requests that carried an Authorization header (must stay 0).
    pub basic_on_data: u32,
    /// 401 answers given to data requests.
    pub unauthorized: u32,
    /// Valid session ids.
    pub sessions: HashSet<String>,
    /// The password the server currently accepts (`Basic` value).
    pub accepted_auth: String,
    /// `SESSION_EXPIRATION_TIME` interval to announce, in ms.
    pub expiration_ms: Option<u64>,
    /// Answer 503 this many more times.
    pub fail_503: u32,
    pub honour_range: bool,
    /// Stored files by decoded path.
    pub files: HashMap<String, Vec<u8>>,
    /// Content-Length headers of uploads.
    pub upload_lengths: Vec<Option<u64>>,
    /// Answer file downloads with a 200 HTML login page, as an SSO proxy does.
    pub html_for_files: bool,
    /// Answer file downloads with a 302 to this base URL (same path).
    pub redirect_files_to: Option<String>,
    next_session: u32,
}

pub type Shared = Arc<Mutex<Knobs>>;

/// Start the server; returns its base URL and its knobs.
pub async fn start() -> (String, Shared) {
    let knobs = Arc::new(Mutex::new(Knobs {
        accepted_auth: GOOD_AUTH.to_string(),
        ..Knobs::default()
    }));
    let app = Router::new().fallback(handle).with_state(knobs.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), knobs)
}

fn decoded(uri: &Uri) -> String {
    percent_encoding::percent_decode_str(uri.path())
        .decode_utf8_lossy()
        .into_owned()
}

fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn status_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<html><head><title>Status page</title></head><body><h3>{message}</h3></body></html>"
    );
    (status, body).into_response()
}

fn listing(rows: &str) -> Response {
    format!(r#"{{"ResultSet":{{"Result":[{rows}],"totalRecords":"1"}}}}"#).into_response()
}

async fn handle(
    State(knobs): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = decoded(&uri);
    let mut k = knobs.lock().unwrap();
    if path == "/data/JSESSION" {
        return jsession(&mut k, &method, &headers);
    }
    *k.requests.entry(path.clone()).or_default() += 1;
    if headers.contains_key("authorization") {
        k.basic_on_data += 1;
    }
    let cookie = headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let session_ok = cookie.split("; ").any(|c| {
        c.strip_prefix("JSESSIONID=")
            .is_some_and(|id| k.sessions.contains(id))
    });
    if !session_ok {
        k.unauthorized += 1;
        let mut r = status_page(StatusCode::UNAUTHORIZED, "Unauthorized");
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"XNAT\""),
        );
        return r;
    }
    if k.fail_503 > 0 {
        k.fail_503 -= 1;
        return status_page(StatusCode::SERVICE_UNAVAILABLE, "busy");
    }
    match (method.as_str(), path.as_str()) {
        ("GET", "/data/projects") => listing(
            r#"{"ID":"P1","name":"Project one","URI":"/data/projects/P1","secondary_ID":"","description":"","pi_firstname":"","pi_lastname":""}"#,
        ),
        ("PUT", p) if p.contains("/files/") => upload(&mut k, p, &uri, &headers, body),
        ("GET" | "HEAD", p) if k.files.contains_key(p) && k.html_for_files => (
            [("content-type", "text/html;charset=UTF-8")],
            "<html><body><form action=\"/login\">Log in</form></body></html>",
        )
            .into_response(),
        ("GET" | "HEAD", p) if k.files.contains_key(p) && k.redirect_files_to.is_some() => {
            let to = format!("{}{p}", k.redirect_files_to.as_deref().unwrap_or(""));
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut()
                .insert("location", HeaderValue::from_str(&to).unwrap());
            r
        }
        ("GET" | "HEAD", p) if k.files.contains_key(p) => download(&k, p, &method, &headers),
        ("PUT", p) if p.starts_with("/data/projects/P1/subjects/") => {
            (StatusCode::CREATED, "XNAT_S00001").into_response()
        }
        ("DELETE", _) => StatusCode::OK.into_response(),
        _ => status_page(StatusCode::NOT_FOUND, "Unable to identify object"),
    }
}

fn jsession(k: &mut Knobs, method: &Method, headers: &HeaderMap) -> Response {
    if method == Method::DELETE {
        k.logouts += 1;
        k.sessions.clear();
        return StatusCode::OK.into_response();
    }
    k.logins += 1;
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != k.accepted_auth {
        return status_page(StatusCode::UNAUTHORIZED, "Login failed");
    }
    k.next_session += 1;
    let id = format!("{:032X}", k.next_session);
    k.sessions.insert(id.clone());
    let mut r = id.clone().into_response();
    let h = r.headers_mut();
    h.append(
        "set-cookie",
        HeaderValue::from_str(&format!("JSESSIONID={id}; Path=/; HttpOnly")).unwrap(),
    );
    if let Some(ms) = k.expiration_ms {
        let v = format!("SESSION_EXPIRATION_TIME=\"1668081619871,{ms}\"; Version=1; Path=/");
        h.append("set-cookie", HeaderValue::from_str(&v).unwrap());
    }
    r
}

fn download(k: &Knobs, path: &str, method: &Method, headers: &HeaderMap) -> Response {
    let data = &k.files[path];
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'));
    let mut r = match (k.honour_range, range) {
        (true, Some((a, b))) => {
            let a: usize = a.parse().unwrap();
            let b: usize = b.parse().map(|b: usize| b + 1).unwrap_or(data.len());
            let b = b.min(data.len());
            let mut r = (StatusCode::PARTIAL_CONTENT, data[a..b].to_vec()).into_response();
            let cr = format!("bytes {a}-{}/{}", b - 1, data.len());
            r.headers_mut()
                .insert("content-range", HeaderValue::from_str(&cr).unwrap());
            r
        }
        _ => data.clone().into_response(),
    };
    r.headers_mut().insert(
        "last-modified",
        HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    if method == Method::HEAD {
        let len = HeaderValue::from_str(&data.len().to_string()).unwrap();
        r.headers_mut().insert("content-length", len);
    }
    r
}

fn upload(k: &mut Knobs, path: &str, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Response {
    let len = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    k.upload_lengths.push(len);
    if len.is_none_or(|l| l == 0) {
        return status_page(StatusCode::INTERNAL_SERVER_ERROR, "empty upload");
    }
    let overwrite = query(uri).get("overwrite").is_some_and(|v| v == "true");
    if k.files.contains_key(path) && !overwrite {
        let rel = path.split("/files/").nth(1).unwrap_or(path);
        return format!(r#"{{"duplicates":["{rel}"]}}"#).into_response();
    }
    k.files.insert(path.to_string(), body.to_vec());
    StatusCode::OK.into_response()
}
