//! The `/__sim` admin endpoints (no authentication): read and change the
//! faults, read and reset the counters.

use super::{Faults, Knobs};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

pub fn router(knobs: Arc<Knobs>) -> Router {
    Router::new()
        .route(
            "/__sim/faults",
            get(get_faults)
                .post(patch_faults)
                .put(put_faults)
                .delete(reset_faults),
        )
        .route("/__sim/stats", get(get_stats).delete(reset_stats))
        .route("/__sim/stats/reset", post(reset_stats))
        .with_state(knobs)
}

async fn get_faults(State(k): State<Arc<Knobs>>) -> Json<Faults> {
    Json(k.faults())
}

/// Lays the posted keys over the current faults (`null` clears one).
async fn patch_faults(
    State(k): State<Arc<Knobs>>,
    Json(patch): Json<serde_json::Value>,
) -> Response {
    match k.faults().merged(&patch) {
        Ok(f) => {
            k.set_faults(f.clone());
            Json(f).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn put_faults(State(k): State<Arc<Knobs>>, Json(f): Json<Faults>) -> Json<Faults> {
    k.set_faults(f.clone());
    Json(f)
}

async fn reset_faults(State(k): State<Arc<Knobs>>) -> Json<Faults> {
    k.reset_faults();
    Json(k.faults())
}

async fn get_stats(State(k): State<Arc<Knobs>>) -> Json<super::StatsSnapshot> {
    Json(k.stats.snapshot())
}

async fn reset_stats(State(k): State<Arc<Knobs>>) -> Json<super::StatsSnapshot> {
    k.stats.reset();
    Json(k.stats.snapshot())
}
