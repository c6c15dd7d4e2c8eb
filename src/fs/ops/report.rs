//! What a mount is doing, as `xnatfs status` shows it: whether the server answers, the
//! uploads with their progress, the downloads running, the cache and the requests since the
//! mount started.
//!
//! The mount makes a [`Report`] when asked (the extended attribute `user.xnatfs.status` of its
//! root, as JSON); `xnatfs status` reads it back and prints it, or passes the JSON on with
//! `--json`. Upload states are the journal's (`writing`, `pending`, `failed`), plus
//! `uploading` while a request sends the file.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::Core;
use crate::fs::mtime::epoch_secs;
use crate::fs::write::spool::{Record, UploadState};

/// The format of the report; a reader refuses another.
pub const REPORT_VERSION: u32 = 1;

/// Most uploads listed; the count says how many there are.
pub const MAX_UPLOADS_LISTED: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub version: u32,
    pub server: String,
    /// `online` or `offline`.
    pub state: String,
    /// Seconds since the epoch when the server stopped answering.
    pub offline_since: Option<u64>,
    /// How it showed (or `--offline`).
    pub offline_reason: Option<String>,
    /// Times the server went away since the mount started.
    pub outages: u64,
    /// Requests sent to the server, retries included, and calls that failed in the end.
    pub requests: u64,
    pub request_failures: u64,
    pub uploads: Vec<Upload>,
    /// Files staged (the list may stop at [`MAX_UPLOADS_LISTED`]).
    pub uploads_total: usize,
    pub downloads: Downloads,
    pub cache: Cache,
    /// Listings kept on disk for when the server is down: bytes, and the budget.
    pub listings_kept_bytes: u64,
    pub listings_kept_budget: u64,
    /// The request budget (`--max-connections`, `--cluster-connections`).
    #[serde(default)]
    pub connections: Connections,
    /// The shared cache tier, when the mount has one.
    #[serde(default)]
    pub shared_cache: Option<SharedCacheReport>,
}

/// The request budget's figures.
pub type Connections = crate::cluster::BudgetStats;

/// The shared cache's figures: files served from it, files this mount fetched into it, waits
/// for another mount's fetch, leases taken over from a dead holder, entries evicted and
/// entries found damaged, its bytes and bound.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SharedCacheReport {
    pub dir: String,
    #[serde(flatten)]
    pub figures: crate::fs::shared::SharedStats,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Upload {
    /// Where it shows under the mount point.
    pub path: String,
    /// `writing`, `uploading`, `pending` (waiting for a retry) or `failed`.
    pub state: String,
    pub size: u64,
    /// Bytes of this attempt sent so far (while `uploading`).
    pub sent: u64,
    /// Bytes per second over this attempt (while `uploading`).
    pub rate: u64,
    pub attempts: u32,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Downloads {
    pub in_flight: u64,
    pub requests: u64,
    pub resumes: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cache {
    pub memory_bytes: u64,
    pub memory_capacity: u64,
    pub disk_bytes: u64,
    pub disk_capacity: u64,
    /// Blocks served from memory or disk, and blocks that had to come from the server.
    pub hits: u64,
    pub misses: u64,
    /// `hits / (hits + misses)`, 0 before any read.
    pub hit_ratio: f64,
}

impl Upload {
    /// A staged file as its journal record says, not being sent.
    pub fn from_record(record: Record) -> Upload {
        Upload {
            path: record.shown,
            state: record.state.name().to_string(),
            size: record.size,
            sent: 0,
            rate: 0,
            attempts: record.attempts,
            last_error: record.reason,
        }
    }
}

impl Core {
    /// What the mount is doing now.
    pub fn report(&self) -> Report {
        let health = self.backend.health();
        let running: Vec<_> = health
            .uploads
            .iter()
            .map(|p| (p.source.clone(), p.now()))
            .collect();
        let staged = self
            .writes
            .as_ref()
            .map(|w| w.uploads_now())
            .unwrap_or_default();
        let uploads_total = staged.len();
        let uploads = staged
            .into_iter()
            .take(MAX_UPLOADS_LISTED)
            .map(|(record, stage)| {
                let writing = record.state == UploadState::Writing;
                let mut upload = Upload::from_record(record);
                if let Some((_, (sent, _, took))) = running.iter().find(|(s, _)| *s == stage) {
                    if !writing {
                        upload.state = "uploading".into();
                    }
                    let secs = took.as_secs_f64();
                    upload.sent = *sent;
                    upload.rate = if secs > 0.0 {
                        (*sent as f64 / secs) as u64
                    } else {
                        0
                    };
                }
                upload
            })
            .collect();
        let reads = self.reads.stats();
        let cache = self.reads.cache_stats();
        let hits = cache.memory_hits + cache.disk_hits;
        let (kept, budget) = self.namespace.kept_usage();
        Report {
            version: REPORT_VERSION,
            server: health.server.clone(),
            state: if health.offline_since.is_some() {
                "offline"
            } else {
                "online"
            }
            .to_string(),
            offline_since: health.offline_since.as_ref().map(|(t, _)| epoch_secs(*t)),
            offline_reason: health.offline_since.map(|(_, why)| why),
            outages: health.outages,
            requests: health.requests,
            request_failures: health.failures,
            uploads,
            uploads_total,
            downloads: Downloads {
                in_flight: reads.in_flight,
                requests: reads.requests,
                resumes: reads.resumes,
                bytes: reads.bytes_received,
            },
            cache: Cache {
                memory_bytes: cache.memory_bytes,
                memory_capacity: cache.memory_capacity,
                disk_bytes: cache.disk_bytes,
                disk_capacity: cache.disk_capacity,
                hits,
                misses: cache.misses,
                hit_ratio: if hits + cache.misses == 0 {
                    0.0
                } else {
                    hits as f64 / (hits + cache.misses) as f64
                },
            },
            listings_kept_bytes: kept,
            listings_kept_budget: budget,
            connections: health.connections,
            shared_cache: self
                .reads
                .config()
                .shared
                .as_ref()
                .map(|shared| SharedCacheReport {
                    dir: shared.root().display().to_string(),
                    figures: shared.stats(),
                }),
        }
    }
}

/// "3 min ago" style, for people.
pub fn ago(then: u64, now: SystemTime) -> String {
    let secs = epoch_secs(now).saturating_sub(then);
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}
