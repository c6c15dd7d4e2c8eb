//! Requests do not block one another (issue #3 item 5): while one file's download is stalled
//! by xnat-sim (and every request is slowed by its latency knob), an `ls` of a folder not yet
//! listed, a read of a file already cached, another file's download, a read of the stalled
//! file's bytes that did arrive (O_DIRECT, past the kernel's page locks), and a `stat` all
//! complete while the stalled read is still pending. No timing is asserted beyond "before the
//! stalled one", with a stall far longer than any of them should take.

mod common;

use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::mount::Mount;
use common::sim::*;
use xnat_sim::{Faults, Shape};

const STALL_MS: u64 = 12_000;

#[test]
fn a_stalled_download_blocks_nothing_else() {
    let sim = Sim::start(Shape {
        subjects: 2,
        sessions: 1,
        scans: 2,
        resources: vec!["DICOM".into()],
        files: 2,
        file_size: 10_000,
        big_file: Some(1_500_000),
        ..Default::default()
    });
    let expected = expected_files(sim.store(), None);
    let big = expected
        .keys()
        .find(|k| k.ends_with("BIG/big.bin"))
        .unwrap()
        .clone();
    let small: Vec<String> = expected
        .keys()
        .filter(|k| k.starts_with("SIM01/SIM01_S001/") && !k.contains("BIG"))
        .cloned()
        .collect();
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    let root = m.path().to_path_buf();

    // A cached file, and the first subject's tree listed; the second subject's session is not.
    let cached = &small[0];
    assert_eq!(md5_file(&root.join(cached)).unwrap(), expected[cached].md5);
    let other_session = root.join("SIM01/SIM01_S002/SIM01_S002_MR1");
    assert!(other_session.is_dir());

    sim.server.set_faults(Faults {
        latency_ms: 200,
        stall_after_bytes: Some(200_000),
        stall_ms: Some(STALL_MS),
        ..Default::default()
    });
    sim.server.reset_stats();

    // The slow one: a whole read of the big file, stalled after 200 KB for 12 s.
    let (done_tx, done_rx) = mpsc::channel();
    let big_path = root.join(&big);
    std::thread::spawn(move || {
        let _ = done_tx.send(md5_file(&big_path));
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sim
        .server
        .stats()
        .downloads
        .keys()
        .any(|p| p.ends_with("big.bin"))
    {
        assert!(Instant::now() < deadline, "the big download never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let it reach the stall.
    std::thread::sleep(Duration::from_millis(500));
    let still_pending = |what: &str| {
        assert!(
            done_rx.try_recv().is_err(),
            "the stalled read finished before {what}: the stall is too short for this machine"
        );
    };
    still_pending("the other requests started");

    // ls of a folder never listed: a listing request under latency.
    let dir = other_session.clone();
    let listed = within(Duration::from_secs(30), "ls of another folder", move || {
        let scans: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        let scan = scans
            .iter()
            .flatten()
            .find(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .unwrap()
            .path();
        std::fs::read_dir(scan.join("DICOM")).unwrap().count()
    });
    assert_eq!(listed, 2);
    still_pending("ls of another folder");

    // A read of the cached file.
    let p = root.join(cached);
    let md5 = within(
        Duration::from_secs(30),
        "a read of a cached file",
        move || md5_file(&p).unwrap(),
    );
    assert_eq!(md5, expected[cached].md5);
    still_pending("a read of a cached file");

    // Another file's download.
    let other = &small[1];
    let p = root.join(other);
    let md5 = within(
        Duration::from_secs(30),
        "another file's download",
        move || md5_file(&p).unwrap(),
    );
    assert_eq!(md5, expected[other].md5);
    still_pending("another file's download");

    // The bytes of the stalled file that did arrive, with O_DIRECT (no page cache locks).
    let p = root.join(&big);
    let head = within(
        Duration::from_secs(30),
        "a read of the arrived part",
        move || {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(&p)
                .unwrap();
            let mut buf = vec![0u8; 4096];
            let n = f.read_at(&mut buf, 0).unwrap();
            buf.truncate(n);
            buf
        },
    );
    assert!(
        head == expected[&big].bytes()[..4096],
        "the first 4 KiB of the big file"
    );
    still_pending("a read of the arrived part");

    // stat of the stalled file itself.
    let p = root.join(&big);
    let size = within(
        Duration::from_secs(30),
        "stat of the stalled file",
        move || std::fs::metadata(&p).unwrap().len(),
    );
    assert_eq!(size, expected[&big].size);
    still_pending("stat of the stalled file");

    // And the stalled read ends with the right bytes.
    let md5 = done_rx
        .recv_timeout(Duration::from_secs(STALL_MS / 1000 + 60))
        .expect("the stalled read never finished")
        .expect("the stalled read failed");
    assert_eq!(md5, expected[&big].md5);
}
