//! Throughput micro-benchmark, not a timed assertion: streams 1 GiB from a fake fetcher that
//! does no work per byte (it hands out slices of one pattern) through the engine with the
//! default geometry (1 MiB blocks, 64 MiB memory tier), and prints the rate and the process's
//! peak RSS. Run it in release mode:
//!
//! ```text
//! cargo test --release --lib read::tests::bench -- --ignored --nocapture
//! ```

use super::{add_pattern, fake};
use crate::fs::cache::{BlockCache, CacheConfig, DiskConfig};
use crate::fs::read::{FileVersion, ReadConfig, ReadEngine};
use crate::xnat::fake::FakeXnat;
use crate::xnat::Backend;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZE: u64 = 1 << 30;
const READ: u32 = 128 << 10;

fn pattern() -> Vec<u8> {
    super::random_bytes((1 << 20) + 7, 99)
}

fn status(field: &str) -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn report(what: &str, bytes: u64, t: Duration) {
    let rate = bytes as f64 / t.as_secs_f64() / 1e6;
    println!(
        "{what:<44} {rate:>6.0} MB/s  RSS {:>10} (anon {:>10})  peak {:>10}",
        status("VmRSS:"),
        status("RssAnon:"),
        status("VmHWM:")
    );
}

async fn read_all(engine: &ReadEngine, v: &FileVersion, pattern: &[u8], pause: Duration) -> u64 {
    let h = engine.open(v);
    let mut at = 0u64;
    loop {
        let got = h.read(at, READ).await.expect("read");
        if got.is_empty() {
            break;
        }
        // Spot-check the bytes: first and last of every read.
        let p = pattern.len() as u64;
        assert_eq!(got[0], pattern[(at % p) as usize]);
        let last = at + got.len() as u64 - 1;
        assert_eq!(got[got.len() - 1], pattern[(last % p) as usize]);
        at += got.len() as u64;
        if !pause.is_zero() && at.is_multiple_of(1 << 20) {
            tokio::time::sleep(pause).await;
        }
    }
    at
}

fn engine(fake: &Arc<FakeXnat>, disk: Option<&std::path::Path>) -> ReadEngine {
    let cache = CacheConfig {
        disk: disk.map(|dir| DiskConfig::new(dir.to_path_buf(), 2 << 30)),
        ..CacheConfig::default()
    };
    ReadEngine::new(
        fake.clone(),
        Arc::new(BlockCache::new(cache).unwrap()),
        ReadConfig::default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release mode with --ignored --nocapture"]
async fn stream_one_gib_through_the_engine() {
    let pattern = pattern();
    for honour in [false, true] {
        let fake = fake(honour);
        fake.set_chunk_size(64 << 10);
        let v = add_pattern(&fake, "big", pattern.clone(), SIZE);
        let mode = if honour { "ranges" } else { "stream" };

        // The fake alone: what the engine is compared with.
        let t = Instant::now();
        let mut body = fake.fetch(&v.uri, None).await.unwrap().body;
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            n += chunk.unwrap().len() as u64;
        }
        report(&format!("[{mode}] fake fetcher alone"), n, t.elapsed());

        let e = engine(&fake, None);
        let t = Instant::now();
        let n = read_all(&e, &v, &pattern, Duration::ZERO).await;
        report(
            &format!("[{mode}] engine, memory tier only"),
            n,
            t.elapsed(),
        );
        drop(e);

        let dir = tempfile::tempdir().unwrap();
        let e = engine(&fake, Some(dir.path()));
        let t = Instant::now();
        let n = read_all(&e, &v, &pattern, Duration::ZERO).await;
        report(&format!("[{mode}] engine + disk tier"), n, t.elapsed());
        let s = e.cache().stats();
        println!(
            "    disk blocks written {}, waits for the writer {}",
            s.disk_writes, s.disk_write_waits
        );
        drop(e);

        let dir = tempfile::tempdir().unwrap();
        let e = engine(&fake, Some(dir.path()));
        let t = Instant::now();
        let n = read_all(&e, &v, &pattern, Duration::from_millis(1)).await;
        report(
            &format!("[{mode}] slow reader (1 ms per MiB) + disk"),
            n,
            t.elapsed(),
        );
        let r = e.stats();
        let s = e.cache().stats();
        println!(
            "    requests {}, bytes received {} (file {SIZE}); disk blocks written {}, waits for the writer {}",
            r.requests, r.bytes_received, s.disk_writes, s.disk_write_waits
        );
    }
}
