//! The simple knob layers: latency, injected failures (any request, or only
//! uploads or archive changes), body shaping and the Range switch.

use super::body::{Shape, Shaped};
use super::Knobs;
use crate::http::{refused, status_page, write_kind, RequestKind, XnatError};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;

pub async fn latency(State(knobs): State<Arc<Knobs>>, req: Request, next: Next) -> Response {
    let ms = knobs.faults().latency_ms;
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    next.run(req).await
}

const INJECTED: &str = "xnat-sim: injected failure";

fn status_or_503(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// Answers the Nth request, or a random fraction of requests, with the failure status;
/// and uploads or all archive changes with theirs (`fail_uploads`, `fail_writes`).
pub async fn inject_failures(
    State(knobs): State<Arc<Knobs>>,
    req: Request,
    next: Next,
) -> Response {
    let f = knobs.faults();
    let n = knobs.next_request();
    let nth = f.fail_nth == Some(n);
    let random = f.fail_rate > 0.0 && rand::thread_rng().gen::<f64>() < f.fail_rate;
    if nth || random {
        knobs.stats.update(|s| s.injected_failures += 1);
        let mut resp = status_page(status_or_503(f.fail_status), INJECTED);
        resp.extensions_mut().insert(RequestKind::Other);
        return resp;
    }
    if f.fail_uploads.is_some() || f.fail_writes.is_some() {
        let write = match write_kind(req.method(), req.uri().path()) {
            Some(RequestKind::Upload) => f.fail_uploads.or(f.fail_writes),
            Some(_) => f.fail_writes,
            None => None,
        };
        if let Some(code) = write {
            knobs.stats.update(|s| s.injected_failures += 1);
            // as for any refused upload: swallow the body so the client reads the answer
            let err = XnatError::new(status_or_503(code), INJECTED);
            return refused(RequestKind::Other, req, err).await;
        }
    }
    next.run(req).await
}

/// Bandwidth on request and response bodies; resets and stalls on download bodies.
pub async fn shape_bodies(State(knobs): State<Arc<Knobs>>, req: Request, next: Next) -> Response {
    let f = knobs.faults();
    let pace = Shape {
        bandwidth: f.bandwidth,
        ..Default::default()
    };
    let req = req.map(|b| Shaped::wrap(b, pace));
    let resp = next.run(req).await;
    let download = resp.extensions().get::<RequestKind>() == Some(&RequestKind::Download)
        && resp.status().is_success();
    let shape = if download {
        Shape {
            bandwidth: f.bandwidth,
            reset_after: f.reset_after_bytes,
            stall_after: f.stall_after_bytes,
            stall_for: f.stall_ms.map(Duration::from_millis),
        }
    } else {
        pace
    };
    resp.map(|b| Shaped::wrap(b, shape))
}

/// With Range off (XNAT's behaviour) the handler never sees `Range`.
pub async fn range(State(knobs): State<Arc<Knobs>>, mut req: Request, next: Next) -> Response {
    let on = knobs.faults().range;
    if !on {
        req.headers_mut().remove(header::RANGE);
    }
    let mut resp = next.run(req).await;
    if !on {
        resp.headers_mut().remove(header::ACCEPT_RANGES);
    }
    resp
}
