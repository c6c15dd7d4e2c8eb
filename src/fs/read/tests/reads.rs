//! Reads return the source's bytes, share one download, and reuse the caches.

use super::*;
use rand::{Rng, SeedableRng};
use std::sync::atomic::Ordering;
use std::time::Duration;

const SIZES: [usize; 8] = [0, 1, 1000, 65535, 65536, 65537, 3 * 65536 + 17, 1 << 20];

#[tokio::test(start_paused = true)]
async fn whole_file_reads_equal_the_source() {
    for honour in [false, true] {
        for (i, &size) in SIZES.iter().enumerate() {
            let fake = fake(honour);
            let data = random_bytes(size, i as u64);
            let v = add(&fake, "f", data.clone());
            let e = engine(&fake, None);
            for step in [4096, 100_000, 1 << 20] {
                let h = e.open(&v);
                let got = read_to_end(&h, 0, step).await;
                assert!(got == data, "honour {honour} size {size} step {step}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn random_offset_reads_equal_the_source() {
    for honour in [false, true] {
        let fake = fake(honour);
        let data = random_bytes(3 << 20, 7);
        let v = add(&fake, "f", data.clone());
        let e = engine(&fake, None);
        let h = e.open(&v);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..300 {
            let offset = rng.gen_range(0..data.len() as u64 + 1000);
            let len = rng.gen_range(0..300_000u32);
            let got = h.read(offset, len).await.unwrap();
            let s = (offset as usize).min(data.len());
            let e = (offset as usize + len as usize).min(data.len());
            assert_eq!(&got[..], &data[s..e], "read {offset}+{len}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_handles_share_one_download() {
    let fake = fake(false);
    fake.set_chunk_delay(Duration::from_micros(200));
    let data = Arc::new(random_bytes(2 << 20, 3));
    let v = add(&fake, "f", data.to_vec());
    let e = Arc::new(engine(&fake, None));
    let mut tasks = Vec::new();
    for i in 0..8u32 {
        let (e, v, data) = (e.clone(), v.clone(), data.clone());
        tasks.push(tokio::spawn(async move {
            let h = e.open(&v);
            let step = 4096 + i * 10_000;
            assert!(read_to_end(&h, 0, step).await == *data);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // One whole-body stream served everyone.
    assert_eq!(fake.count(Call::Fetch), 1);
    assert_eq!(fake.served.load(Ordering::SeqCst), data.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_random_readers_with_ranges_fetch_each_block_once() {
    let fake = fake(true);
    fake.set_latency(Duration::from_millis(2));
    let data = Arc::new(random_bytes(2 << 20, 4));
    let v = add(&fake, "f", data.to_vec());
    let e = Arc::new(engine(&fake, None));
    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let (e, v, data) = (e.clone(), v.clone(), data.clone());
        tasks.push(tokio::spawn(async move {
            let h = e.open(&v);
            let mut rng = rand::rngs::StdRng::seed_from_u64(i);
            for _ in 0..40 {
                let offset = rng.gen_range(0..data.len() as u64);
                let got = h.read(offset, 10_000).await.unwrap();
                let end = (offset as usize + 10_000).min(data.len());
                assert_eq!(&got[..], &data[offset as usize..end]);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // No byte was requested twice (the 2 MiB memory tier holds the whole file).
    let mut ranges: Vec<_> = fake
        .fetches()
        .into_iter()
        .map(|c| c.range.unwrap())
        .collect();
    ranges.sort_by_key(|r| r.start);
    for pair in ranges.windows(2) {
        assert!(pair[0].end <= pair[1].start, "overlap: {pair:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_in_flight_are_given_back_to_the_budget_when_downloads_end() {
    let fake = fake(false);
    fake.set_chunk_delay(Duration::from_micros(100));
    let files: Vec<_> = (0..6)
        .map(|i| add(&fake, &format!("f{i}"), random_bytes(3 << 20, 40 + i)))
        .collect();
    let e = Arc::new(engine(&fake, None));
    let mut tasks = Vec::new();
    for (i, v) in files.iter().enumerate() {
        let (e, v) = (e.clone(), v.clone());
        tasks.push(tokio::spawn(async move {
            let h = e.open(&v);
            if i % 2 == 0 {
                read_to_end(&h, 0, 100_000).await;
            } else {
                // Left mid-file: its download is aborted with a block half filled.
                h.read(1 << 20, 1000).await.unwrap();
            }
        }));
    }
    let mut saw_outside = false;
    for task in tasks {
        saw_outside |= e.cache_stats().outside_bytes > 0;
        task.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        e.cache_stats().outside_bytes,
        0,
        "every download gave its pieces back (some were in flight: {saw_outside})"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reread_costs_no_new_fetch() {
    for honour in [false, true] {
        let fake = fake(honour);
        let data = random_bytes(1 << 20, 5);
        let v = add(&fake, "f", data.clone());
        let e = engine(&fake, None);
        let h = e.open(&v);
        read_to_end(&h, 0, 65536).await;
        let calls = fake.count(Call::Fetch);
        drop(h);
        let h = e.open(&v);
        assert!(read_to_end(&h, 0, 10_000).await == data);
        assert_eq!(h.read(12345, 1000).await.unwrap(), &data[12345..13345]);
        assert_eq!(fake.count(Call::Fetch), calls);
    }
}

#[tokio::test(start_paused = true)]
async fn a_second_engine_on_the_same_cache_dir_fetches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(5 << 20, 6); // more than the 2 MiB memory tier
    {
        let fake = fake(false);
        let v = add(&fake, "f", data.clone());
        let e = engine(&fake, Some(dir.path()));
        assert!(read_to_end(&e.open(&v), 0, 65536).await == data);
        e.cache().flush();
        // The download ends with its MD5 check, which may read blocks back from the cache.
        while e.stats().in_flight > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let fake = fake(false);
    let v = add(&fake, "f", data.clone());
    let e = engine(&fake, Some(dir.path()));
    let h = e.open(&v);
    assert!(read_to_end(&h, 0, 50_000).await == data);
    assert_eq!(
        h.read(3_000_000, 10).await.unwrap(),
        &data[3_000_000..3_000_010]
    );
    assert_eq!(fake.count(Call::Fetch), 0);
    assert!(e.cache().stats().disk_hits > 0);
    // Another version of the same URI is not served from those blocks.
    let mut other = v.clone();
    other.version.push_str("-new");
    read_to_end(&e.open(&other), 0, 65536).await;
    assert_eq!(fake.count(Call::Fetch), 1);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_ignores_range_is_streamed_once() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake(false);
    let data = random_bytes(3 << 20, 8);
    let v = add(&fake, "f", data.clone());
    // The file is larger than the memory tier: its start comes back from disk.
    let e = engine(&fake, Some(dir.path()));
    let h = e.open(&v);
    // Start in the middle: the stream still starts at 0 and the read waits for its bytes.
    assert_eq!(
        h.read(2 << 20, 1000).await.unwrap(),
        &data[2 << 20..(2 << 20) + 1000]
    );
    e.cache().flush();
    assert!(read_to_end(&h, 0, 65536).await == data);
    let calls = fake.fetches();
    assert_eq!(calls.len(), 1);
    assert!(!calls[0].partial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_go_in_parallel_and_read_ahead_grows() {
    let fake = fake(true);
    fake.set_latency(Duration::from_millis(20));
    let data = random_bytes(8 << 20, 9);
    let v = add(&fake, "f", data.clone());
    let e = engine(&fake, None);
    let h = e.open(&v);
    assert!(read_to_end(&h, 0, 16 << 10).await == data);
    let lens: Vec<u64> = fake
        .fetches()
        .iter()
        .map(|c| c.range.clone().unwrap())
        .map(|r| r.end - r.start)
        .collect();
    // Starts with two blocks, grows to whole 256 KiB parts.
    assert_eq!(lens[0], 2 * BS);
    assert!(
        lens.iter().filter(|&&l| l == 256 << 10).count() > 10,
        "{lens:?}"
    );
    assert!(fake.max_in_flight.load(Ordering::SeqCst) >= 2);
    assert!(fake.max_in_flight.load(Ordering::SeqCst) <= 5);
    // Every byte fetched once.
    assert_eq!(fake.served.load(Ordering::SeqCst), data.len() as u64);
}

#[tokio::test(start_paused = true)]
async fn a_random_reader_fetches_only_its_blocks() {
    let fake = fake(true);
    let pattern: Vec<u8> = (0..=250u8).collect();
    let v = add_pattern(&fake, "f", pattern.clone(), 256 << 20);
    let e = engine(&fake, None);
    let h = e.open(&v);
    // More than the 16 MiB forward tolerance apart, so each read is random.
    for offset in [200_000_000u64, 20_000_000, 60_000_000, 5_000_000] {
        let got = h.read(offset, 4096).await.unwrap();
        let expected: Vec<u8> = (offset..offset + 4096)
            .map(|i| pattern[(i % 251) as usize])
            .collect();
        assert!(got == expected, "bytes at {offset}");
    }
    for c in fake.fetches() {
        let r = c.range.unwrap();
        assert_eq!(r.end - r.start, BS, "one block per random read: {r:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn sizes_are_corrected_by_the_first_download() {
    for honour in [false, true] {
        for report_total in [true, false] {
            for (listed, real) in [(100_000u64, 300_000usize), (300_000, 100_000)] {
                let fake = fake(honour);
                fake.report_total.store(report_total, Ordering::SeqCst);
                let data = random_bytes(real, 11);
                let mut v = add(&fake, "f", data.clone());
                v.size = listed;
                let e = engine(&fake, None);
                let h = e.open(&v);
                assert_eq!(h.size(), listed);
                let got = read_to_end(&h, 0, 32 << 10).await;
                assert!(got == data, "honour {honour} total {report_total} {listed}");
                assert_eq!(h.real_size(), Some(real as u64));
                assert!(h.read(real as u64, 10).await.unwrap().is_empty());
                assert!(h.read(listed - 1, 10).await.unwrap().len() <= 10);
                // A later open, even of another engine over the same cache, knows the size.
                let again = engine_on(&fake, e.cache().clone());
                let h2 = again.open(&v);
                h2.read(0, 1).await.unwrap();
                assert_eq!(h2.real_size(), Some(real as u64));
            }
        }
    }
}

#[tokio::test]
async fn a_slow_download_does_not_block_other_reads() {
    let fake = fake(false);
    let cached = random_bytes(300_000, 12);
    let other = random_bytes(300_000, 13);
    let (vc, vs, vo) = (
        add(&fake, "cached", cached.clone()),
        add(&fake, "slow", random_bytes(300_000, 14)),
        add(&fake, "other", other.clone()),
    );
    let e = Arc::new(engine(&fake, None));
    let hc = e.open(&vc);
    read_to_end(&hc, 0, 65536).await;
    fake.make_slow(&vs.uri);
    let hs = e.open(&vs);
    let slow = tokio::spawn(async move { hs.read(200_000, 1000).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let quick = Duration::from_millis(500);
    let got = tokio::time::timeout(quick, hc.read(1000, 1000))
        .await
        .unwrap();
    assert_eq!(got.unwrap(), &cached[1000..2000]);
    let ho = e.open(&vo);
    let got = tokio::time::timeout(quick, read_to_end(&ho, 0, 65536))
        .await
        .unwrap();
    assert_eq!(got, other);
    assert!(!slow.is_finished());
    assert!(fake.fetches().iter().any(|c| c.uri == vs.uri));
    slow.abort();
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_keeps_the_stream_a_window_ahead() {
    let fake = fake(false);
    let v = add_pattern(&fake, "big", (0..=250u8).collect(), 64 << 20);
    let e = engine(&fake, None);
    let h = e.open(&v);
    let mut at = 0;
    for _ in 0..20 {
        let got = h.read(at, 16 << 10).await.unwrap();
        at += got.len() as u64;
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // At most the window (512 KiB) plus a block in the reader's lead.
    let served = fake.served.load(Ordering::SeqCst);
    assert!(
        served <= at + (512 << 10) + 2 * BS,
        "served {served} for {at} read"
    );
    let mem = e.cache().stats().memory_bytes;
    assert!(mem <= 2 << 20);
}

#[tokio::test(start_paused = true)]
async fn the_memory_tier_stays_bounded_and_the_disk_tier_serves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake(false);
    let data = random_bytes(8 << 20, 15);
    let v = add(&fake, "f", data.clone());
    let e = engine(&fake, Some(dir.path()));
    let h = e.open(&v);
    assert!(read_to_end(&h, 0, 65536).await == data);
    assert!(e.cache().stats().memory_bytes <= 2 << 20);
    e.cache().flush();
    // The start of the file left memory long ago; it comes back from disk, not the network.
    assert_eq!(h.read(0, 100_000).await.unwrap(), &data[..100_000]);
    assert_eq!(fake.count(Call::Fetch), 1);
}

#[tokio::test]
async fn a_read_returns_when_its_own_bytes_arrive() {
    for honour in [false, true] {
        let fake = fake(honour);
        // 16 KiB chunks, 100 ms apart: a 64 KiB block takes 400 ms to arrive.
        fake.set_chunk_delay(Duration::from_millis(100));
        let data = random_bytes(256 << 10, 16);
        let v = add(&fake, "f", data.clone());
        let e = engine(&fake, None);
        let h = e.open(&v);
        let start = std::time::Instant::now();
        assert_eq!(h.read(0, 4096).await.unwrap(), &data[..4096]);
        assert!(
            start.elapsed() < Duration::from_millis(300),
            "honour {honour}"
        );
        // Bytes spanning two arrived chunks come back too (copied together).
        assert_eq!(h.read(10_000, 20_000).await.unwrap(), &data[10_000..30_000]);
        assert!(
            start.elapsed() < Duration::from_millis(350),
            "honour {honour}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_waiting_read_gets_its_block_even_if_memory_drops_it_at_once() {
    // A one-block memory tier and no disk: every block is evicted as the next one arrives.
    let fake = fake(false);
    let data = random_bytes(1 << 20, 17);
    let v = add(&fake, "f", data.clone());
    let mut cache = cache_config(None);
    cache.memory_bytes = BS;
    let e = engine_with(&fake, cache, read_config(DigestCheck::Off));
    let h = e.open(&v);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    for _ in 0..50 {
        let offset = rng.gen_range(0..data.len() as u64);
        let read = tokio::time::timeout(Duration::from_secs(5), h.read(offset, 5000));
        let got = read.await.expect("no livelock").unwrap();
        let end = (offset as usize + 5000).min(data.len());
        assert!(got[..] == data[offset as usize..end]);
    }
}
