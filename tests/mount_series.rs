//! Reading a folder of many files in name order through a real mount of xnat-sim with latency,
//! as `dcm2niix` reads a DICOM series: the bytes are the server's, every file is downloaded
//! exactly once, and the files after the ones being read are fetched before they are opened
//! (the sim's counters show downloads of files not opened yet). One file read alone fetches
//! nothing ahead.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::mount::Mount;
use common::sim::*;
use xnat_sim::{Faults, Shape};

const FILES: usize = 40;

fn series_sim() -> Sim {
    let sim = Sim::start(Shape {
        subjects: 1,
        sessions: 1,
        scans: 1,
        resources: vec!["DICOM".into()],
        files: FILES,
        file_size: 64 * 1024,
        ..Default::default()
    });
    sim.server.set_faults(Faults {
        latency_ms: 20,
        ..Default::default()
    });
    sim
}

/// The series folder (relative to the mount) and its files in name order.
fn series(sim: &Sim) -> (String, Vec<(String, Expected)>) {
    let expected: BTreeMap<String, Expected> = expected_files(sim.store(), None);
    assert_eq!(expected.len(), FILES);
    let folder = {
        let first = expected.keys().next().unwrap();
        first[..first.rfind('/').unwrap()].to_string()
    };
    (folder, expected.into_iter().collect())
}

fn file_downloads(sim: &Sim) -> BTreeMap<String, u64> {
    sim.server
        .stats()
        .downloads
        .into_iter()
        .filter(|(p, _)| p.contains("/files/"))
        .collect()
}

/// A mount of the series sim with the series folder listed, and the sim's counters reset after
/// it: only the files' own requests are counted.
fn mount_listed(sim: &Sim) -> (Mount, Vec<(String, Expected)>) {
    let (folder, files) = series(sim);
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    assert_eq!(
        std::fs::read_dir(m.path().join(&folder)).unwrap().count(),
        FILES
    );
    sim.server.reset_stats();
    (m, files)
}

fn read_checked(root: &Path, path: &str, want: &Expected) {
    let got = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
    assert_eq!(md5_hex(&got), want.md5, "bytes of {path}");
}

#[test]
fn a_series_read_in_order_is_fetched_ahead_and_downloaded_once() {
    let sim = series_sim();
    let (m, files) = mount_listed(&sim);
    let root = m.path().to_path_buf();

    // Two files in order start the run.
    for (path, want) in &files[..2] {
        read_checked(&root, path, want);
    }
    // Then files not opened yet are downloaded (waiting for their requests to be served, not
    // for a time).
    let deadline = Instant::now() + Duration::from_secs(30);
    while file_downloads(&sim).len() < 10 {
        assert!(
            Instant::now() < deadline,
            "no file after the second was fetched ahead: {:?}",
            file_downloads(&sim).keys()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for (path, want) in &files[2..] {
        read_checked(&root, path, want);
    }
    let downloads = file_downloads(&sim);
    assert_eq!(downloads.len(), FILES, "every file downloaded");
    assert!(
        downloads.values().all(|&n| n == 1),
        "a file downloaded twice: {downloads:?}"
    );
    assert_eq!(sim.downloads(), FILES as u64, "no other download");
}

#[test]
fn a_single_file_read_fetches_nothing_ahead() {
    let sim = series_sim();
    let (m, files) = mount_listed(&sim);
    let root = m.path().to_path_buf();
    let (path, want) = &files[3];
    read_checked(&root, path, want);
    // Reading it again, and a file far from it, is no run either.
    read_checked(&root, path, want);
    let (path, want) = &files[30];
    read_checked(&root, path, want);
    // Whatever would have been started ahead had time to reach the server.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sim.downloads(), 2, "{:?}", file_downloads(&sim).keys());
}
