//! Stale catalog sizes: file listings report `Size` off by a set amount, as
//! a catalog does after files change on disk behind XNAT's back.

use super::Knobs;
use crate::http::FileListing;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

pub async fn layer(State(knobs): State<Arc<Knobs>>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let Some(delta) = knobs.faults().stale_size else {
        return resp;
    };
    if resp.extensions().get::<FileListing>().is_none() {
        return resp;
    }
    let csv = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/csv"));
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    let out = if csv {
        stale_csv(&text, delta)
    } else {
        stale_json(&text, delta).unwrap_or_else(|| text.into_owned())
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

fn shift(size: &str, delta: i64) -> String {
    size.parse::<i64>()
        .map(|s| (s + delta).max(0).to_string())
        .unwrap_or_else(|_| size.to_string())
}

fn stale_json(text: &str, delta: i64) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(text).ok()?;
    for row in v["ResultSet"]["Result"].as_array_mut()? {
        if let Some(s) = row
            .get("Size")
            .and_then(|s| s.as_str())
            .map(|s| shift(s, delta))
        {
            row["Size"] = serde_json::Value::String(s);
        }
    }
    Some(v.to_string())
}

/// Listing CSV has simple cells in the Size column, so a plain split is enough there.
fn stale_csv(text: &str, delta: i64) -> String {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return text.to_string();
    };
    let Some(col) = header.split(',').position(|c| c == "Size") else {
        return text.to_string();
    };
    let mut out = format!("{header}\n");
    for line in lines {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        if let Some(c) = cells.get_mut(col) {
            *c = shift(c, delta);
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_sizes() {
        assert_eq!(stale_csv("Name,Size\na,10\n", -3), "Name,Size\na,7\n");
        let j = stale_json(r#"{"ResultSet":{"Result":[{"Size":"2"}]}}"#, -5).unwrap();
        assert!(j.contains(r#""Size":"0""#));
    }
}
