//! Failures: broken bodies, digest mismatches, missing files, released handles.

use super::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn releasing_the_last_handle_stops_the_download() {
    for honour in [false, true] {
        let fake = fake(honour);
        fake.set_chunk_delay(Duration::from_millis(2));
        let v = add_pattern(&fake, "big", (0..=250u8).collect(), 64 << 20);
        let e = engine(&fake, None);
        let h1 = e.open(&v);
        let h2 = e.open(&v);
        h1.read(0, 4096).await.unwrap();
        drop(h1);
        // Another handle still reads: the download goes on.
        let before = fake.served.load(Ordering::SeqCst);
        h2.read(100_000, 4096).await.unwrap();
        assert!(fake.served.load(Ordering::SeqCst) > before);
        e.release(h2);
        assert_eq!(e.open_files(), 0);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let stopped = fake.served.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            fake.served.load(Ordering::SeqCst),
            stopped,
            "honour {honour}"
        );
        assert!(stopped < 4 << 20);
    }
}

#[tokio::test(start_paused = true)]
async fn a_broken_body_is_resumed_once() {
    for honour in [false, true] {
        let fake = fake(honour);
        let data = random_bytes(1 << 20, 20);
        let v = add(&fake, "f", data.clone());
        fake.break_bodies(100_000, 1);
        let e = engine(&fake, None);
        let h = e.open(&v);
        assert!(read_to_end(&h, 0, 65536).await == data, "honour {honour}");
        assert_eq!(e.stats().resumes, 1);
        if !honour {
            // Re-streamed from 0: the first 100,000 bytes were skipped, not duplicated.
            let calls = fake.fetches();
            assert_eq!(calls.len(), 2);
            assert_eq!(calls[1].range.clone().unwrap().start, 100_000);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_that_breaks_without_progress_fails_the_waiting_read_with_eio() {
    for honour in [false, true] {
        let fake = fake(honour);
        let data = random_bytes(1 << 20, 21);
        let v = add(&fake, "f", data.clone());
        // The first request and its three resumes all break before a byte arrives.
        fake.break_bodies(0, 4);
        let e = engine(&fake, None);
        let h = e.open(&v);
        let err = h.read(0, 200_000).await.unwrap_err();
        assert_eq!(err.errno(), libc::EIO, "honour {honour}: {err}");
        assert_eq!(e.stats().resumes, 3, "honour {honour}");
        // A later read tries again and succeeds.
        assert!(read_to_end(&h, 0, 65536).await == data);
    }
}

#[tokio::test(start_paused = true)]
async fn a_restarted_stream_that_gets_no_further_fails_after_its_resumes() {
    // Without ranges every restart streams from 0: cut at the same byte, it never gets
    // past it. The first break brought bytes; the next four did not.
    let fake = fake(false);
    let data = random_bytes(1 << 20, 22);
    let v = add(&fake, "f", data.clone());
    fake.break_bodies(50_000, 5);
    let e = engine(&fake, None);
    let h = e.open(&v);
    let err = h.read(0, 200_000).await.unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
    assert_eq!(e.stats().resumes, 4);
}

#[tokio::test(start_paused = true)]
async fn a_body_cut_again_and_again_is_resumed_while_each_resume_gets_further() {
    // With ranges, every body is cut after 100,000 bytes and each resume brings that many new
    // ones: more cuts than the three fruitless resumes a download may take, all cured.
    let fake = fake(true);
    let data = random_bytes(1 << 20, 23);
    let v = add(&fake, "f", data.clone());
    fake.break_bodies(100_000, 1000);
    // One request for the whole file, so that all the cuts fall on one download.
    let config = ReadConfig {
        initial_window: 4 << 20,
        max_window: 4 << 20,
        part_size: 4 << 20,
        ..read_config(DigestCheck::Background)
    };
    let e = engine_with(&fake, cache_config(None), config);
    let h = e.open(&v);
    assert!(read_to_end(&h, 0, 1 << 20).await == data);
    let stats = e.stats();
    assert!(stats.resumes >= 10, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_missing_file_is_enoent() {
    let fake = fake(false);
    let mut v = add(&fake, "f", vec![1, 2, 3]);
    v.uri = "/gone".into();
    let e = engine(&fake, None);
    let err = e.open(&v).read(0, 10).await.unwrap_err();
    assert_eq!(err.errno(), libc::ENOENT);
}

#[tokio::test(start_paused = true)]
async fn a_strict_digest_mismatch_fails_the_end_of_the_file_and_drops_its_blocks() {
    let fake = fake(false);
    let data = random_bytes(1 << 20, 22);
    let v = add(&fake, "f", data.clone());
    fake.corrupt(&v.uri);
    let e = engine_with(&fake, cache_config(None), read_config(DigestCheck::Strict));
    let h = e.open(&v);
    let mut at = 0;
    let err = loop {
        match h.read(at, 65536).await {
            Ok(b) if b.is_empty() => panic!("reached the end without an error"),
            Ok(b) => at += b.len() as u64,
            Err(e) => break e,
        }
    };
    assert_eq!(err.errno(), libc::EIO);
    assert!(matches!(err, ReadError::DigestMismatch { .. }));
    assert!(at < data.len() as u64);
    assert!(no_block_cached(&e, &v));
    assert!(h.read(0, 10).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_background_digest_mismatch_poisons_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake(false);
    let data = random_bytes(300_000, 23);
    let v = add(&fake, "f", data.clone());
    fake.corrupt(&v.uri);
    let e = engine(&fake, Some(dir.path()));
    let h = e.open(&v);
    // The bytes come back (they are the server's); the check runs beside.
    let _ = read_to_end(&h, 0, 65536).await;
    let mut failed = false;
    for _ in 0..100 {
        if h.read(0, 10).await.is_err() {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(failed, "reads of a poisoned version fail");
    // The blocks are dropped just after the version is marked.
    for _ in 0..100 {
        if no_block_cached(&e, &v) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("blocks of a poisoned version still cached");
}

#[tokio::test(start_paused = true)]
async fn a_background_mismatch_is_found_however_far_the_hasher_falls_behind() {
    // 16 MiB in 256 blocks: the download outruns the hasher's queue of 16, and the blocks it
    // missed are read back from the disk tier to finish the check.
    let dir = tempfile::tempdir().unwrap();
    let fake = fake(false);
    let data = random_bytes(16 << 20, 29);
    let v = add(&fake, "big", data.clone());
    fake.corrupt(&v.uri);
    let e = engine(&fake, Some(dir.path()));
    let h = e.open(&v);
    let _ = read_to_end(&h, 0, 1 << 20).await;
    for _ in 0..1000 {
        if h.read(0, 10).await.is_err() && no_block_cached(&e, &v) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a corrupt download was not caught by the background check");
}

#[tokio::test(start_paused = true)]
async fn a_matching_digest_passes_in_strict_mode() {
    let fake = fake(false);
    let data = random_bytes((1 << 20) + 5, 24);
    let v = add(&fake, "f", data.clone());
    let e = engine_with(&fake, cache_config(None), read_config(DigestCheck::Strict));
    assert!(read_to_end(&e.open(&v), 0, 65536).await == data);
}

fn no_block_cached(e: &ReadEngine, v: &crate::fs::read::FileVersion) -> bool {
    use crate::fs::cache::BlockKey;
    (0..v.size.div_ceil(BS)).all(|i| !e.cache().contains(&BlockKey::new(v.key(), i)))
}

#[tokio::test(start_paused = true)]
async fn a_small_corrupt_file_gives_no_byte_and_caches_nothing() {
    for honour in [false, true] {
        let fake = fake(honour);
        let data = random_bytes(300_000, 25);
        let v = add(&fake, "f", data.clone());
        fake.corrupt(&v.uri);
        let config = ReadConfig {
            verify_whole_max: 1 << 20,
            ..read_config(DigestCheck::Background)
        };
        let e = engine_with(&fake, cache_config(None), config);
        let h = e.open(&v);
        // Not even the first block: the file is checked whole before any byte goes out.
        let err = h.read(0, 10).await.unwrap_err();
        assert_eq!(err.errno(), libc::EIO, "honour {honour}: {err}");
        assert!(no_block_cached(&e, &v), "honour {honour}");
        assert!(h.read(100_000, 10).await.is_err(), "honour {honour}");
        // Fetched whole even where ranges work: one request.
        assert_eq!(fake.fetches().len(), 1, "honour {honour}");
        assert_eq!(fake.fetches()[0].range, None, "honour {honour}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_small_right_file_is_checked_whole_then_served() {
    let fake = fake(true);
    let data = random_bytes(300_000, 26);
    let v = add(&fake, "f", data.clone());
    let config = ReadConfig {
        verify_whole_max: 1 << 20,
        ..read_config(DigestCheck::Background)
    };
    let e = engine_with(&fake, cache_config(None), config);
    let h = e.open(&v);
    assert_eq!(h.read(200_000, 10).await.unwrap(), &data[200_000..200_010]);
    assert!(read_to_end(&h, 0, 65536).await == data);
    assert_eq!(fake.fetches().len(), 1);
}

#[tokio::test]
async fn a_read_whose_bytes_drip_fails_at_the_read_deadline_not_later() {
    let fake = fake(false);
    let v = add(&fake, "drip", random_bytes(400_000, 31));
    // One chunk a second: every chunk resets no timer of the read; its deadline holds.
    fake.make_slow(&v.uri);
    fake.set_chunk_size(1024);
    let config = ReadConfig {
        read_deadline: Duration::from_millis(1500),
        ..read_config(DigestCheck::Background)
    };
    let e = engine_with(&fake, cache_config(None), config);
    let h = e.open(&v);
    // The guard only catches a hang; the deadline is what must end the read.
    let err = tokio::time::timeout(Duration::from_secs(60), h.read(300_000, 4096))
        .await
        .expect("the read ended by itself")
        .unwrap_err();
    assert!(matches!(err, ReadError::Deadline { .. }), "{err:?}");
    assert_eq!(err.errno(), libc::ETIMEDOUT);
}
