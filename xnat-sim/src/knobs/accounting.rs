//! The outermost layer: counts requests by method, kind and status, bytes in
//! and out, downloads per path and in flight at once, and writes the request log line
//! (`METHOD path?query STATUS BYTES`) once the response body is done.

use super::body::Counted;
use super::Knobs;
use crate::http::RequestKind;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

pub async fn layer(State(knobs): State<Arc<Knobs>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| path.clone());
    knobs
        .stats
        .update(|s| *s.started_by_method.entry(method.clone()).or_default() += 1);
    let k = knobs.clone();
    let req = req.map(|b| Counted::wrap(b, move |n| k.stats.update(|s| s.bytes_received += n)));
    let resp = next.run(req).await;
    let kind = resp
        .extensions()
        .get::<RequestKind>()
        .copied()
        .unwrap_or(RequestKind::Other);
    let status = resp.status().as_u16();
    let kind_name = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "other".into());
    let sending = kind == RequestKind::Download && method != "HEAD";
    knobs.stats.update(|s| {
        s.requests += 1;
        *s.by_method.entry(method.clone()).or_default() += 1;
        *s.by_kind.entry(kind_name).or_default() += 1;
        *s.by_status.entry(status.to_string()).or_default() += 1;
        if sending {
            *s.downloads.entry(path).or_default() += 1;
            s.downloads_in_flight += 1;
            s.peak_downloads_in_flight = s.peak_downloads_in_flight.max(s.downloads_in_flight);
        }
    });
    let k = knobs.clone();
    resp.map(|b| {
        Counted::wrap(b, move |n| {
            k.stats.update(|s| {
                s.bytes_served += n;
                if sending {
                    s.downloads_in_flight = s.downloads_in_flight.saturating_sub(1);
                }
            });
            k.log_line(&format!("{method} {target} {status} {n}\n"));
        })
    })
}
