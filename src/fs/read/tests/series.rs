//! The prefetcher on the engine, with the fake server: a folder read in order has its next
//! files fetched ahead, each file once whatever the race between the reader and the fetch, a
//! bounded number at a time; a corrupt file still fails its reader; dropping the prefetcher
//! (the unmount) stops its fetches.

use super::*;
use crate::fs::read::{FileVersion, LearnedSize, Prefetcher, SeriesConfig};
use std::sync::atomic::Ordering;
use std::time::Duration;

const FILES: usize = 30;

fn series(fake: &FakeXnat) -> Vec<(FileVersion, Vec<u8>)> {
    (0..FILES)
        .map(|i| {
            let data = random_bytes(40 << 10, i as u64);
            (add(fake, &format!("s/{i:04}.dcm"), data.clone()), data)
        })
        .collect()
}

fn prefetcher(engine: &Arc<ReadEngine>, parallel: usize) -> Prefetcher {
    prefetcher_reporting(engine, parallel).0
}

fn prefetcher_reporting(
    engine: &Arc<ReadEngine>,
    parallel: usize,
) -> (
    Prefetcher,
    tokio::sync::mpsc::UnboundedReceiver<LearnedSize>,
) {
    let cfg = SeriesConfig {
        max_files: 8,
        ..SeriesConfig::default()
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (Prefetcher::new(engine.clone(), cfg, parallel, tx), rx)
}

/// Opens file `i` as the core does: a handle, then the prefetcher told.
fn open(
    engine: &ReadEngine,
    p: &Prefetcher,
    files: &[(FileVersion, Vec<u8>)],
    i: usize,
) -> ReadHandle {
    let h = engine.open(&files[i].0);
    p.opened(7, i, files.len(), |j| Some(files[j].0.clone()));
    h
}

#[tokio::test(start_paused = true)]
async fn a_series_read_in_order_is_fetched_ahead_once_per_file() {
    let fake = fake(false);
    fake.set_latency(Duration::from_millis(5));
    let files = series(&fake);
    let engine = Arc::new(engine(&fake, None));
    let p = prefetcher(&engine, 4);
    for i in 0..FILES {
        let h = open(&engine, &p, &files, i);
        assert_eq!(read_to_end(&h, 0, 16 << 10).await, files[i].1, "file {i}");
    }
    assert_eq!(
        p.files_started(),
        FILES as u64 - 2,
        "files 2.. fetched ahead"
    );
    let calls = fake.fetches();
    for (v, _) in &files {
        let n = calls.iter().filter(|c| c.uri == v.uri).count();
        assert_eq!(n, 1, "{} fetched {n} times", v.uri);
    }
    // The reader's own requests and at most `parallel` fetches ahead.
    assert!(fake.max_in_flight.load(Ordering::Relaxed) <= 4 + 1);
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_file_fetched_ahead_still_fails_its_reader() {
    let fake = fake(false);
    let files = series(&fake);
    fake.corrupt(&files[4].0.uri);
    let e = Arc::new(engine_with(
        &fake,
        cache_config(None),
        read_config(DigestCheck::Strict),
    ));
    let p = prefetcher(&e, 4);
    for i in 0..4 {
        let h = open(&e, &p, &files, i);
        assert_eq!(read_to_end(&h, 0, 16 << 10).await, files[i].1);
    }
    let h = open(&e, &p, &files, 4);
    let mut at = 0;
    let failed = loop {
        match h.read(at, 16 << 10).await {
            Ok(b) if b.is_empty() => break false,
            Ok(b) => at += b.len() as u64,
            Err(e) => break matches!(e, ReadError::DigestMismatch { .. }),
        }
    };
    assert!(failed, "the corrupt file read without an error");
}

#[tokio::test(start_paused = true)]
async fn reading_only_headers_fetches_no_file_ahead() {
    // Files of several blocks on a server that honours ranges: a header read fetches the
    // first block, and the folder's other files must not be fetched whole ahead of it.
    let fake = fake(true);
    let files: Vec<_> = (0..10)
        .map(|i| {
            let data = random_bytes(8 * BS as usize, i);
            (add(&fake, &format!("h/{i:04}.nii"), data.clone()), data)
        })
        .collect();
    let engine = Arc::new(engine(&fake, None));
    let p = prefetcher(&engine, 4);
    for i in 0..files.len() {
        let h = open(&engine, &p, &files, i);
        assert_eq!(h.read(0, 352).await.unwrap(), &files[i].1[..352]);
    }
    assert_eq!(
        p.files_started(),
        0,
        "a header reader had files fetched ahead"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_prefetcher_stops_its_fetches() {
    let fake = fake(false);
    fake.set_latency(Duration::from_millis(300));
    let files = series(&fake);
    let engine = Arc::new(engine(&fake, None));
    let p = prefetcher(&engine, 4);
    // The first file read whole, then the second opened: the run starts.
    let first = open(&engine, &p, &files, 0);
    assert_eq!(read_to_end(&first, 0, 16 << 10).await, files[0].1);
    drop(first);
    drop(open(&engine, &p, &files, 1));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(engine.open_files() > 0, "fetches ahead are running");
    drop(p);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(engine.open_files(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_fetch_ahead_reports_a_size_the_listing_had_wrong() {
    let fake = fake(false);
    let mut files = series(&fake);
    // The listing says file 3 is smaller than it is.
    files[3].0.size = 1000;
    let engine = Arc::new(engine(&fake, None));
    let (p, mut learned) = prefetcher_reporting(&engine, 4);
    for i in 0..2 {
        let h = open(&engine, &p, &files, i);
        read_to_end(&h, 0, 16 << 10).await;
    }
    let report = tokio::time::timeout(Duration::from_secs(10), learned.recv())
        .await
        .expect("a report")
        .expect("the channel is open");
    assert_eq!(
        report,
        LearnedSize {
            uri: files[3].0.uri.clone(),
            size: 40 << 10
        }
    );
    // Only the file whose listing was wrong is reported.
    drop(p);
    let next = tokio::time::timeout(Duration::from_secs(10), learned.recv()).await;
    assert_eq!(next.expect("the fetches end"), None);
}
