//! Whether the server can be reached: the circuit breaker every request goes through.
//!
//! While the server answers, requests pass. When one fails in a way that says the server is
//! down ([`XnatError::says_server_down`]: no connection, or a gateway answering 502-504 until
//! the retries ran out), the breaker opens: from then on every request fails at once with
//! [`XnatError::Offline`] (EHOSTDOWN), instead of each one waiting through its own retries, and
//! the mount serves what it has kept (listings, cached blocks, the spool). A probe asks the
//! server in the background, after 1, 2, 4, … 30 s, and closes the breaker when it answers.
//! `--offline` opens it for good: nothing is sent and nothing probed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::error::XnatError;

/// The first wait of the probe, doubled after each failure up to [`PROBE_MAX_WAIT`].
pub const PROBE_FIRST_WAIT: Duration = Duration::from_secs(1);
pub const PROBE_MAX_WAIT: Duration = Duration::from_secs(30);

/// The breaker of one server.
#[derive(Debug)]
pub struct Reach {
    server: String,
    /// `--offline`: open for good.
    forced: bool,
    state: Mutex<Option<Outage>>,
    /// A probe task is running.
    probing: AtomicBool,
    /// Times the breaker opened, since the mount started.
    outages: AtomicU64,
}

#[derive(Debug, Clone)]
struct Outage {
    since: SystemTime,
    reason: String,
}

impl Reach {
    /// A closed breaker, or one open for good when `offline`.
    pub fn new(server: &str, offline: bool) -> Reach {
        let reach = Reach {
            server: server.to_string(),
            forced: offline,
            state: Mutex::new(None),
            probing: AtomicBool::new(false),
            outages: AtomicU64::new(0),
        };
        if offline {
            reach.open("--offline: the server is not asked");
        }
        reach
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Outage>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Ok` while the server may be asked; the error every request gets while it is offline.
    pub fn check(&self) -> Result<(), XnatError> {
        match &*self.lock() {
            None => Ok(()),
            Some(outage) => Err(XnatError::Offline {
                server: self.server.clone(),
                since: httpdate::fmt_http_date(outage.since),
                reason: outage.reason.clone(),
            }),
        }
    }

    /// Since when the server has been offline, and why; `None` while it answers.
    pub fn offline_since(&self) -> Option<(SystemTime, String)> {
        self.lock().as_ref().map(|o| (o.since, o.reason.clone()))
    }

    /// How many times the mount went offline.
    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }

    /// The server is down (`reason` says how it showed). Returns true when this opened the
    /// breaker (it was closed): the caller starts the probe.
    pub fn open(&self, reason: &str) -> bool {
        let mut state = self.lock();
        if state.is_some() {
            return false;
        }
        *state = Some(Outage {
            since: SystemTime::now(),
            reason: reason.to_string(),
        });
        self.outages.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            server = %self.server,
            "the mount is offline ({reason}): listings and cached files are still served, \
             other reads fail at once with EHOSTDOWN, files written wait in the spool"
        );
        true
    }

    /// The server answered. Returns true when this closed the breaker.
    pub fn close(&self) -> bool {
        if self.forced {
            return false;
        }
        let mut state = self.lock();
        let Some(outage) = state.take() else {
            return false;
        };
        let secs = outage.since.elapsed().unwrap_or_default().as_secs();
        tracing::warn!(server = %self.server, "the server answers again after {secs} s offline: the mount is online");
        true
    }

    /// Take the right to run the probe (false when one runs already, or never: `--offline`).
    pub fn start_probe(&self) -> bool {
        !self.forced && !self.probing.swap(true, Ordering::AcqRel)
    }

    /// The probe ended (the breaker closed, or the client went away).
    pub fn probe_ended(&self) {
        self.probing.store(false, Ordering::Release);
    }
}

/// The wait before probe number `n` (from 0): 1, 2, 4, … up to 30 s.
pub fn probe_wait(n: u32) -> Duration {
    PROBE_FIRST_WAIT
        .saturating_mul(1 << n.min(6))
        .min(PROBE_MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_once_fails_fast_and_closes() {
        let reach = Reach::new("http://x", false);
        assert!(reach.check().is_ok());
        assert!(reach.open("connection refused"));
        assert!(!reach.open("again"), "a second failure does not reopen it");
        let err = reach.check().unwrap_err();
        assert_eq!(err.errno(), libc::EHOSTDOWN);
        assert!(err.to_string().contains("connection refused"), "{err}");
        assert!(err.retryable(), "an upload offline waits for the server");
        assert_eq!(reach.outages(), 1);
        assert!(reach.close());
        assert!(!reach.close());
        assert!(reach.check().is_ok());
    }

    #[test]
    fn offline_by_choice_never_closes_nor_probes() {
        let reach = Reach::new("http://x", true);
        assert!(reach.check().is_err());
        assert!(!reach.close());
        assert!(!reach.start_probe());
        assert!(reach.check().is_err());
    }

    #[test]
    fn one_probe_at_a_time() {
        let reach = Reach::new("http://x", false);
        assert!(reach.start_probe());
        assert!(!reach.start_probe());
        reach.probe_ended();
        assert!(reach.start_probe());
    }

    #[test]
    fn probe_waits_double_up_to_the_cap() {
        assert_eq!(probe_wait(0), Duration::from_secs(1));
        assert_eq!(probe_wait(2), Duration::from_secs(4));
        assert_eq!(probe_wait(20), PROBE_MAX_WAIT);
    }
}
