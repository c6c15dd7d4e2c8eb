//! Faults injected by xnat-sim under a real mount: 500s on a fraction of requests, a connection
//! reset in the middle of a body (Range off and on), a stalled body, and a session that expires
//! between reads. Every read gives the server's bytes (after retries) or EIO, never other bytes,
//! and a failure is not remembered once the fault is gone.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::mount::Mount;
use common::sim::*;
use xnat_sim::{Faults, Shape};

fn shape(file_size: u64) -> Shape {
    Shape {
        subjects: 2,
        sessions: 1,
        scans: 2,
        resources: vec!["DICOM".into(), "EXTRA".into()],
        files: 2,
        file_size,
        ..Default::default()
    }
}

/// The bytes of `path` as an MD5, or the errno the read failed with.
fn read_md5(path: &Path) -> Result<String, i32> {
    std::fs::read(path)
        .map(|b| md5_hex(&b))
        .map_err(|e| e.raw_os_error().unwrap_or(-1))
}

/// Read every expected file; each must be its bytes or EIO. Returns how many were right.
fn read_all_right_or_eio(root: &Path, expected: &BTreeMap<String, Expected>) -> usize {
    let mut right = 0;
    for (path, exp) in expected {
        match read_md5(&root.join(path)) {
            Ok(md5) => {
                assert_eq!(md5, exp.md5, "{path}: wrong bytes");
                right += 1;
            }
            Err(errno) => assert_eq!(errno, libc::EIO, "{path}: errno {errno}"),
        }
    }
    right
}

#[test]
fn server_errors_on_a_third_of_requests_are_retried() {
    let sim = Sim::start(shape(40_000));
    let expected = expected_files(sim.store(), None);
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    sim.server.set_faults(Faults {
        fail_rate: 0.3,
        fail_status: 500,
        ..Default::default()
    });
    let root = m.path().to_path_buf();
    let exp = expected.clone();
    let right = within(Duration::from_secs(90), "reads under 500s", move || {
        read_all_right_or_eio(&root, &exp)
    });
    let stats = sim.server.stats();
    println!(
        "{right} of {} files right with {} injected 500s in {} requests",
        expected.len(),
        stats.injected_failures,
        stats.requests
    );
    assert!(stats.injected_failures > 0, "the fault was injected");
    // Five retries per request: all but astronomically unlucky reads succeed.
    assert_eq!(right, expected.len(), "retries should get every file");
}

#[test]
fn a_fail_once_then_recovers() {
    // Every request fails: reads give EIO; once the server is healthy, the same files read
    // right (a failure is not cached).
    let sim = Sim::start(shape(10_000));
    let expected = expected_files(sim.store(), None);
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    // List the tree first, so the failures hit the downloads.
    assert_eq!(walk_files(m.path()).len(), expected.len());
    sim.server.set_faults(Faults {
        fail_rate: 1.0,
        fail_status: 503,
        ..Default::default()
    });
    let (path, exp) = expected.iter().next().unwrap();
    let file = m.path().join(path);
    let f = file.clone();
    let failed = within(
        Duration::from_secs(90),
        "a read against a failing server",
        move || read_md5(&f),
    );
    assert_eq!(failed, Err(libc::EIO), "retries exhausted → EIO");
    sim.server.set_faults(Faults::default());
    assert_eq!(
        read_md5(&file),
        Ok(exp.md5.clone()),
        "right bytes once the server recovers"
    );
    let root = m.path().to_path_buf();
    assert_eq!(read_all_right_or_eio(&root, &expected), expected.len());
}

/// Every download body is cut after at least 32 KiB (the sim pauses there, so those bytes do
/// reach the client, and breaks the connection at 64 KiB). A 90 000-byte file then needs one
/// resume: with Range on it asks for the rest, which arrives before the next cut; with Range off
/// the server starts again from 0, the second body breaks too, and the read fails with EIO.
fn reset_mid_body(range: bool) {
    let sim = Sim::start(Shape {
        subjects: 1,
        ..shape(90_000)
    });
    let expected = expected_files(sim.store(), None);
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    assert_eq!(walk_files(m.path()).len(), expected.len());
    sim.server.set_faults(Faults {
        range,
        reset_after_bytes: Some(64 * 1024),
        stall_after_bytes: Some(32 * 1024),
        stall_ms: Some(200),
        ..Default::default()
    });
    let root = m.path().to_path_buf();
    let exp = expected.clone();
    let right = within(Duration::from_secs(90), "reads with resets", move || {
        read_all_right_or_eio(&root, &exp)
    });
    let stats = sim.server.stats();
    println!(
        "range={range}: {right} of {} files right, {} downloads, {:?}",
        expected.len(),
        stats.by_kind.get("download").copied().unwrap_or(0),
        stats.by_status
    );
    if range {
        assert_eq!(right, expected.len(), "a resumed range download completes");
    } else {
        assert_eq!(right, 0, "without Range a second break fails the read");
    }
    // Once the fault is gone every file reads right.
    sim.server.set_faults(Faults {
        range,
        ..Default::default()
    });
    let root = m.path().to_path_buf();
    assert_eq!(read_all_right_or_eio(&root, &expected), expected.len());
}

#[test]
fn a_reset_mid_body_with_range_off() {
    reset_mid_body(false);
}

#[test]
fn a_reset_mid_body_with_range_on() {
    reset_mid_body(true);
}

#[test]
fn a_stalled_body_completes_with_the_right_bytes() {
    let sim = Sim::start(shape(50_000));
    let expected = expected_files(sim.store(), None);
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    sim.server.set_faults(Faults {
        stall_after_bytes: Some(20_000),
        stall_ms: Some(1500),
        ..Default::default()
    });
    let (path, exp) = expected.iter().next().unwrap();
    let file = m.path().join(path);
    let got = within(Duration::from_secs(60), "a stalled read", move || {
        read_md5(&file)
    });
    assert_eq!(got, Ok(exp.md5.clone()));
}

#[test]
fn a_session_expiring_between_reads_is_survived() {
    let sim = Sim::start(shape(5_000));
    let expected = expected_files(sim.store(), None);
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    let mut files = expected.iter();
    let (path, exp) = files.next().unwrap();
    assert_eq!(read_md5(&m.path().join(path)), Ok(exp.md5.clone()));
    sim.server.reset_stats();
    sim.server.expire_sessions();
    // The session is gone on the server while the mount still holds it: listings of folders
    // not seen yet and downloads must log in again and go on.
    let root = m.path().to_path_buf();
    let exp = expected.clone();
    let right = within(
        Duration::from_secs(60),
        "reads after the session expired",
        move || read_all_right_or_eio(&root, &exp),
    );
    assert_eq!(right, expected.len(), "log:\n{}", m.log_text());
    let stats = sim.server.stats();
    println!("after expiry: {:?} {:?}", stats.by_kind, stats.by_status);
    assert!(
        stats.by_kind.get("auth").copied().unwrap_or(0) >= 1,
        "a new login after the expiry: {:?}",
        stats.by_kind
    );
}

#[test]
fn a_deleted_file_is_enoent_and_a_revoked_project_eacces() {
    let sim = Sim::start(shape(3_000));
    let expected = expected_files(sim.store(), None);
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    assert_eq!(walk_files(m.path()).len(), expected.len());
    let mut files = expected.keys();
    let deleted = files.next().unwrap().clone();
    let other = files.next().unwrap().clone();
    // Deleted on the server after it was listed: 404 → ENOENT, not EIO.
    let blob = expected[&deleted].blob.clone();
    let store = sim.store();
    store
        .write(|a| {
            for r in a.resources.values_mut() {
                r.files.retain(|f| store.blob_path(f.blob) != blob);
            }
        })
        .unwrap();
    assert_eq!(read_md5(&m.path().join(&deleted)), Err(libc::ENOENT));
    // alice loses the project: 403 → EACCES.
    sim.store()
        .write(|a| {
            a.projects.values_mut().for_each(|p| {
                p.members.clear();
                p.owners.clear();
            })
        })
        .unwrap();
    assert_eq!(read_md5(&m.path().join(&other)), Err(libc::EACCES));
}

/// A byte of a small file flipped in the server's copy, its catalog digest unchanged: no read
/// of it succeeds, not even of its first bytes, and nothing of it is cached: once the server's
/// copy is right again, a new mount on the same cache reads it right.
#[test]
fn a_small_file_corrupt_on_the_server_is_never_served() {
    let sim = Sim::start(Shape {
        subjects: 1,
        ..shape(200_000)
    });
    let expected = expected_files(sim.store(), None);
    let (path, exp) = expected.iter().next().unwrap();
    let good = exp.bytes();
    let mut bad = good.clone();
    bad[150_000] ^= 0x01;
    std::fs::write(&exp.blob, &bad).unwrap();
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    let file = m.path().join(path);
    for _ in 0..2 {
        let mut head = [0u8; 16];
        let got = std::fs::File::open(&file).and_then(|mut f| {
            use std::io::Read;
            f.read_exact(&mut head)
        });
        assert_eq!(
            got.map_err(|e| e.raw_os_error()),
            Err(Some(libc::EIO)),
            "a read of a file whose bytes do not match its digest; log:\n{}",
            m.log_text()
        );
    }
    let cache = m.into_cache();
    std::fs::write(&exp.blob, &good).unwrap();
    let again = Mount::start_with_cache(&sim.url(), USER, PASS, &[], cache);
    assert_eq!(read_md5(&again.path().join(path)), Ok(exp.md5.clone()));
}
