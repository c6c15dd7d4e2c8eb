//! Test knobs around the faithful server, each a layer: latency, bandwidth,
//! Range on/off, injected failures, connection resets and stalls in download
//! bodies, stale `Size` in file listings, counters and a request log. They
//! read one shared [`Faults`] value per request, so tests can change them at
//! run time (`POST /__sim/faults`, or `SimServer::set_faults`).

mod accounting;
pub mod admin;
mod body;
mod faults;
mod layers;
mod stale_size;
mod stats;

pub use faults::Faults;
pub use stats::{Stats, StatsSnapshot};

use axum::Router;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The knobs' shared state.
pub struct Knobs {
    faults: RwLock<Faults>,
    initial: Faults,
    /// Requests seen since the faults were last set (for `fail_nth`).
    since_set: AtomicU64,
    pub stats: Stats,
    request_log: Option<Mutex<std::fs::File>>,
}

impl Knobs {
    pub fn new(initial: Faults, request_log: Option<std::fs::File>) -> Knobs {
        Knobs {
            faults: RwLock::new(initial.clone()),
            initial,
            since_set: AtomicU64::new(0),
            stats: Stats::default(),
            request_log: request_log.map(Mutex::new),
        }
    }

    pub fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_faults(&self, f: Faults) {
        *self.faults.write().unwrap_or_else(|e| e.into_inner()) = f;
        self.since_set.store(0, Ordering::SeqCst);
    }

    /// Back to the faults the server started with.
    pub fn reset_faults(&self) {
        self.set_faults(self.initial.clone());
    }

    /// Counts a request; returns its 1-based number since the faults were set.
    fn next_request(&self) -> u64 {
        self.since_set.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn log_line(&self, line: &str) {
        if let Some(f) = &self.request_log {
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Wraps the XNAT router in the knob layers (outermost first: accounting,
/// latency, failures, body shaping, range, stale size).
pub fn wrap(router: Router, knobs: Arc<Knobs>) -> Router {
    use axum::middleware::from_fn_with_state as layer;
    router
        .layer(layer(knobs.clone(), stale_size::layer))
        .layer(layer(knobs.clone(), layers::range))
        .layer(layer(knobs.clone(), layers::shape_bodies))
        .layer(layer(knobs.clone(), layers::inject_failures))
        .layer(layer(knobs.clone(), layers::latency))
        .layer(layer(knobs, accounting::layer))
}
