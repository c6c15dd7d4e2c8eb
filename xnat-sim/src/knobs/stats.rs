//! Request counters: by method, by kind, by status, bytes in and out, and
//! downloads per path.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub by_method: BTreeMap<String, u64>,
    /// Requests by method counted when they arrive (the others count when answered), so a
    /// test can see an upload in flight.
    pub started_by_method: BTreeMap<String, u64>,
    /// listing, download, upload, create, delete, auth, other
    pub by_kind: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
    pub bytes_served: u64,
    pub bytes_received: u64,
    /// File and zip downloads per request path.
    pub downloads: BTreeMap<String, u64>,
    /// File and zip downloads whose body is being sent now (from the answer's head to the
    /// body's end), and the most there were at once.
    pub downloads_in_flight: u64,
    pub peak_downloads_in_flight: u64,
    /// TCP connections open now, and the most there were at once (a reset keeps what is
    /// open or in flight and starts both peaks from there).
    pub connections_open: u64,
    pub peak_connections: u64,
    pub injected_failures: u64,
}

#[derive(Default)]
pub struct Stats(Mutex<StatsSnapshot>);

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn reset(&self) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (open, sending) = (s.connections_open, s.downloads_in_flight);
        *s = StatsSnapshot {
            connections_open: open,
            peak_connections: open,
            downloads_in_flight: sending,
            peak_downloads_in_flight: sending,
            ..StatsSnapshot::default()
        };
    }

    pub fn update(&self, f: impl FnOnce(&mut StatsSnapshot)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
