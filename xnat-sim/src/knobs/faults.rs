//! The knob settings, as JSON for `/__sim/faults` and as a Rust struct.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added before every request is handled.
    pub latency_ms: u64,
    /// Cap on each request and response body, bytes per second.
    pub bandwidth: Option<u64>,
    /// Honour `Range` on file downloads (real XNAT ignores it).
    pub range: bool,
    /// Fraction of requests (0..1) answered with `fail_status`.
    pub fail_rate: f64,
    /// Status for injected failures (500 or 503).
    pub fail_status: u16,
    /// Fail the Nth request (1-based) counted from when the faults were set.
    pub fail_nth: Option<u64>,
    /// Close the connection after this many bytes of a download body.
    pub reset_after_bytes: Option<u64>,
    /// Pause a download body after this many bytes…
    pub stall_after_bytes: Option<u64>,
    /// …for this long (absent: forever).
    pub stall_ms: Option<u64>,
    /// Report `Size` in file listings off by this many bytes (clamped at 0).
    pub stale_size: Option<i64>,
    /// Answer every upload (`PUT`/`POST` on `…/files…`) with this status; reads, creates
    /// and deletes still work.
    pub fail_uploads: Option<u16>,
    /// Answer every archive change (uploads, creates and deletes: `PUT`/`POST`/`DELETE`
    /// under `/data`, `/REST`) with this status; reads still work.
    pub fail_writes: Option<u16>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            bandwidth: None,
            range: false,
            fail_rate: 0.0,
            fail_status: 503,
            fail_nth: None,
            reset_after_bytes: None,
            stall_after_bytes: None,
            stall_ms: None,
            stale_size: None,
            fail_uploads: None,
            fail_writes: None,
        }
    }
}

impl Faults {
    /// These faults with the keys of a JSON object laid over them (`null` clears a knob).
    pub fn merged(&self, patch: &serde_json::Value) -> Result<Faults, serde_json::Error> {
        let mut base = serde_json::to_value(self)?;
        if let (Some(b), Some(p)) = (base.as_object_mut(), patch.as_object()) {
            for (k, v) in p {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_overlays_and_clears() {
        let f = Faults {
            latency_ms: 5,
            fail_nth: Some(2),
            ..Default::default()
        };
        let g = f
            .merged(&serde_json::json!({"fail_nth": null, "range": true}))
            .unwrap();
        assert_eq!(g.latency_ms, 5);
        assert_eq!(g.fail_nth, None);
        assert!(g.range);
    }
}
