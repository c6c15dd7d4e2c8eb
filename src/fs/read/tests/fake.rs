//! An in-memory `Fetcher` with switches: honour Range or not, latency before the response and
//! between chunks (also per URI), bodies that break after K bytes, wrong bytes for the digest
//! check, a missing Content-Length; and a log of every call.

use crate::fs::read::{FetchBody, FetchError, FetchErrorKind, Fetcher, FileVersion};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
enum Content {
    Bytes(Bytes),
    /// `size` bytes repeating `pattern`, for files too big to hold.
    Pattern {
        pattern: Bytes,
        size: u64,
    },
}

impl Content {
    fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Pattern { size, .. } => *size,
        }
    }

    /// Up to `max` bytes at `pos` (a zero-copy slice).
    fn chunk(&self, pos: u64, max: u64) -> Bytes {
        match self {
            Content::Bytes(b) => b.slice(pos as usize..(pos + max).min(b.len() as u64) as usize),
            Content::Pattern { pattern, size } => {
                let p = pattern.len() as u64;
                let at = pos % p;
                let n = max.min(p - at).min(size - pos);
                pattern.slice(at as usize..(at + n) as usize)
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Call {
    pub uri: String,
    pub range: Option<Range<u64>>,
    pub partial: bool,
}

pub struct FakeFetcher {
    files: Mutex<HashMap<String, Content>>,
    pub honour_range: AtomicBool,
    pub report_total: AtomicBool,
    pub chunk_size: AtomicU64,
    latency: Mutex<Duration>,
    chunk_delay: Mutex<Duration>,
    slow_uris: Mutex<HashSet<String>>,
    /// Break bodies after this many bytes, this many times.
    breaks: Mutex<Option<(u64, usize)>>,
    /// Serve this file with one byte changed.
    corrupt: Mutex<HashSet<String>>,
    calls: Mutex<Vec<Call>>,
    pub served: Arc<AtomicU64>,
    in_flight: Arc<AtomicUsize>,
    pub max_in_flight: Arc<AtomicUsize>,
}

impl FakeFetcher {
    pub fn new(honour_range: bool) -> Arc<Self> {
        Arc::new(FakeFetcher {
            files: Mutex::new(HashMap::new()),
            honour_range: AtomicBool::new(honour_range),
            report_total: AtomicBool::new(true),
            chunk_size: AtomicU64::new(16 << 10),
            latency: Mutex::new(Duration::ZERO),
            chunk_delay: Mutex::new(Duration::ZERO),
            slow_uris: Mutex::new(HashSet::new()),
            breaks: Mutex::new(None),
            corrupt: Mutex::new(HashSet::new()),
            calls: Mutex::new(Vec::new()),
            served: Arc::new(AtomicU64::new(0)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Adds a file; returns its version, with the right MD5 digest.
    pub fn add(&self, uri: &str, data: Vec<u8>) -> FileVersion {
        use md5::{Digest, Md5};
        let digest = crate::fs::cache::hex_digest(&Md5::digest(&data).into());
        let v = FileVersion {
            uri: uri.to_string(),
            size: data.len() as u64,
            version: format!("{}-{digest}", data.len()),
            digest: Some(digest),
        };
        self.files
            .lock()
            .unwrap()
            .insert(uri.to_string(), Content::Bytes(Bytes::from(data)));
        v
    }

    /// Adds a `size`-byte file repeating `pattern` (no digest).
    pub fn add_pattern(&self, uri: &str, pattern: Vec<u8>, size: u64) -> FileVersion {
        let pattern = Bytes::from(pattern);
        self.files
            .lock()
            .unwrap()
            .insert(uri.to_string(), Content::Pattern { pattern, size });
        FileVersion {
            uri: uri.to_string(),
            size,
            version: format!("{size}"),
            digest: None,
        }
    }

    pub fn set_latency(&self, d: Duration) {
        *self.latency.lock().unwrap() = d;
    }

    pub fn set_chunk_delay(&self, d: Duration) {
        *self.chunk_delay.lock().unwrap() = d;
    }

    /// Bodies of `uri` trickle (1 s between chunks).
    pub fn make_slow(&self, uri: &str) {
        self.slow_uris.lock().unwrap().insert(uri.to_string());
    }

    pub fn break_bodies(&self, after: u64, times: usize) {
        *self.breaks.lock().unwrap() = Some((after, times));
    }

    pub fn corrupt(&self, uri: &str) {
        self.corrupt.lock().unwrap().insert(uri.to_string());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

/// Keeps the in-flight count while a body is alive.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Fetcher for FakeFetcher {
    fn fetch(
        &self,
        uri: &str,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'static, Result<FetchBody, FetchError>> {
        let content = self.files.lock().unwrap().get(uri).cloned();
        let honour = self.honour_range.load(Ordering::SeqCst);
        let slow = self.slow_uris.lock().unwrap().contains(uri);
        let latency = *self.latency.lock().unwrap();
        let delay = if slow {
            Duration::from_secs(1)
        } else {
            *self.chunk_delay.lock().unwrap()
        };
        let chunk = self.chunk_size.load(Ordering::SeqCst);
        let report_total = self.report_total.load(Ordering::SeqCst);
        let break_at = {
            let mut b = self.breaks.lock().unwrap();
            match b.as_mut() {
                Some((after, times)) if *times > 0 => {
                    *times -= 1;
                    Some(*after)
                }
                _ => None,
            }
        };
        let corrupt = self.corrupt.lock().unwrap().contains(uri);
        let partial = honour && range.is_some();
        self.calls.lock().unwrap().push(Call {
            uri: uri.to_string(),
            range: range.clone(),
            partial,
        });
        let served = self.served.clone();
        let in_flight = self.in_flight.clone();
        let max_in_flight = self.max_in_flight.clone();
        let uri = uri.to_string();
        let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        max_in_flight.fetch_max(n, Ordering::SeqCst);
        let guard = InFlight(in_flight);
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            let Some(content) = content else {
                return Err(FetchError::new(
                    FetchErrorKind::NotFound,
                    format!("{uri}: 404"),
                ));
            };
            let size = content.len();
            let (start, end) = match (&range, partial) {
                (Some(r), true) => {
                    if r.start >= size {
                        let kind = FetchErrorKind::RangeNotSatisfiable { size: Some(size) };
                        return Err(FetchError::new(kind, "416"));
                    }
                    (r.start, r.end.min(size))
                }
                _ => (0, size),
            };
            let body = stream::unfold((start, 0u64, guard), move |(pos, sent, guard)| {
                let content = content.clone();
                let served = served.clone();
                async move {
                    if pos >= end {
                        return None;
                    }
                    if break_at.is_some_and(|k| sent >= k) {
                        let e = FetchError::new(FetchErrorKind::Io, "connection reset");
                        return Some((Err(e), (end, sent, guard)));
                    }
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let mut max = chunk.min(end - pos);
                    if let Some(k) = break_at {
                        max = max.min(k - sent).max(1);
                    }
                    let mut bytes = content.chunk(pos, max);
                    let mid = size / 2;
                    if corrupt && (pos..pos + bytes.len() as u64).contains(&mid) {
                        let mut v = bytes.to_vec();
                        v[(mid - pos) as usize] ^= 0xff;
                        bytes = Bytes::from(v);
                    }
                    let n = bytes.len() as u64;
                    served.fetch_add(n, Ordering::SeqCst);
                    Some((Ok(bytes), (pos + n, sent + n, guard)))
                }
            });
            Ok(FetchBody {
                partial,
                offset: start,
                total_size: (partial || report_total).then_some(size),
                body: body.boxed(),
            })
        })
    }
}
