//! Many mounts as a cluster's nodes (issue 14): separate xnatfs processes on one machine that
//! share one `--shared-cache` folder, as nodes share a folder of the cluster filesystem.
//!
//! - 4 mounts read the same 20 sessions at once: every file is downloaded from the sim once
//!   (its per-path counters), and every byte each mount read is the sim's.
//! - kill -9 of the mount that holds a file's fetch lease: another mount takes the lease over
//!   and finishes the fetch; its bytes are right.
//! - 8 mounts with a cluster-wide budget of 4, each reading other files: the sim never sees
//!   more than 4 downloads at once (it counts them).
//! - `xnatfs warm` fills the shared cache; a second run fetches nothing; a mount that then
//!   reads the files makes no download.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::mount::{xnatfs_bin, xnatfs_status, Mount};
use common::sim::*;
use common::wait_for;
use xnat_sim::{Faults, Shape};

fn twenty_sessions() -> Shape {
    Shape {
        subjects: 20,
        sessions: 1,
        scans: 2,
        resources: vec!["NIFTI".into(), "DICOM".into()],
        files: 2,
        file_size: 200_000,
        ..Default::default()
    }
}

/// One session, four DICOM files of 3 MB (fetched whole, checked before use).
fn four_files_of_3_mb() -> Shape {
    Shape {
        subjects: 1,
        scans: 2,
        resources: vec!["DICOM".into()],
        files: 2,
        file_size: 3_000_000,
        ..Default::default()
    }
}

fn mount_shared(sim: &Sim, shared: &Path, extra: &[&str]) -> Mount {
    let mut args = vec!["--shared-cache", shared.to_str().unwrap()];
    args.extend_from_slice(extra);
    Mount::start(&sim.url(), USER, PASS, &args)
}

/// Reads every expected file under `mount` and checks its MD5 against the sim's bytes.
fn read_all_and_check(mount: &Path, expected: &BTreeMap<String, Expected>) {
    for (rel, want) in expected {
        let got = md5_file(&mount.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"));
        assert_eq!(got, want.md5, "bytes of {rel} through {}", mount.display());
    }
}

fn sim_stats(sim: &Sim) -> xnat_sim::StatsSnapshot {
    sim.server.stats()
}

#[test]
fn four_mounts_reading_the_same_sessions_download_each_file_once() {
    let sim = Sim::start(twenty_sessions());
    let shared = tempfile::tempdir().unwrap();
    let expected = expected_files(sim.store(), None);
    assert!(expected.len() >= 20 * 8, "{} files", expected.len());
    let mounts: Vec<Mount> = (0..4)
        .map(|_| mount_shared(&sim, &shared.path().join("cache"), &[]))
        .collect();
    sim.server.reset_stats();
    let readers: Vec<_> = mounts
        .iter()
        .map(|m| {
            let (root, expected) = (m.path().to_path_buf(), expected.clone());
            std::thread::spawn(move || read_all_and_check(&root, &expected))
        })
        .collect();
    for r in readers {
        r.join().expect("a mount read wrong bytes or failed");
    }
    let stats = sim_stats(&sim);
    let over: Vec<_> = stats.downloads.iter().filter(|(_, n)| **n > 1).collect();
    assert!(over.is_empty(), "downloaded more than once: {over:?}");
    assert_eq!(
        stats.downloads.len(),
        expected.len(),
        "every file downloaded exactly once across the 4 mounts"
    );
    // Each mount's report shows the shared cache at work.
    let mut fills = 0;
    for m in &mounts {
        let (code, out, err) = xnatfs_status(m.path(), &["--json"]);
        assert_eq!(code, 0, "{err}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        fills += report["shared_cache"]["fills"].as_u64().unwrap();
    }
    assert_eq!(fills as usize, expected.len(), "one fill per file in all");
}

#[test]
fn kill_9_of_the_lease_holder_hands_the_fetch_to_another_mount() {
    // A file that takes seconds to send, so the first mount dies in the middle of it.
    let sim = Sim::start_with(
        Some(Shape {
            subjects: 1,
            scans: 1,
            resources: vec!["DICOM".into()],
            files: 1,
            file_size: 10_000,
            big_file: Some(24 << 20),
            ..Default::default()
        }),
        |c| {
            c.faults = Faults {
                bandwidth: Some(4 << 20),
                ..Default::default()
            }
        },
    );
    let expected = expected_files(sim.store(), None);
    let (big, want) = expected
        .iter()
        .find(|(k, _)| k.ends_with("BIG/big.bin"))
        .unwrap();
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("cache");
    let mut first = mount_shared(&sim, &dir, &[]);
    let second = mount_shared(&sim, &dir, &[]);
    let path = first.path().join(big);
    let reader = std::thread::spawn(move || md5_file(&path));
    // The first mount holds the lease and has written part of the file into the folder.
    let names = |sub: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.join(sub))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    wait_for(
        Duration::from_secs(30),
        "the first mount's fetch lease",
        || {
            let leased = names("leases")
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "lease"));
            let written = names("tmp")
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .max()
                .unwrap_or(0);
            leased && written > 2 << 20 && written < 20 << 20
        },
    );
    first.kill();
    let _ = reader.join();
    let got = within(Duration::from_secs(60), "the second mount's read", {
        let path = second.path().join(big);
        move || md5_file(&path)
    })
    .expect("the second mount reads the file");
    assert_eq!(&got, &want.md5);
    let (code, out, err) = xnatfs_status(second.path(), &["--json"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["shared_cache"]["takeovers"].as_u64().unwrap() >= 1,
        "the second mount took the dead mount's lease over: {out}"
    );
    assert_eq!(report["shared_cache"]["fills"].as_u64(), Some(1), "{out}");
    // The finished entry is in place; no lease or temp file is left behind.
    let leftover = |sub: &str| std::fs::read_dir(dir.join(sub)).unwrap().count();
    wait_for(Duration::from_secs(10), "the lease to go", || {
        leftover("leases") == 0
    });
    assert_eq!(
        leftover("tmp"),
        1,
        "the dead mount's temp file stays until it is old"
    );
}

#[test]
fn eight_mounts_with_a_cluster_budget_of_four_never_exceed_four_downloads() {
    let sim = Sim::start_with(
        Some(Shape {
            subjects: 8,
            sessions: 1,
            scans: 2,
            resources: vec!["DICOM".into()],
            files: 4,
            file_size: 300_000,
            ..Default::default()
        }),
        |c| {
            c.faults = Faults {
                latency_ms: 20,
                bandwidth: Some(3 << 20),
                ..Default::default()
            }
        },
    );
    let expected = expected_files(sim.store(), None);
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("cache");
    let mounts: Vec<Mount> = (0..8)
        .map(|_| mount_shared(&sim, &dir, &["--cluster-connections", "4"]))
        .collect();
    sim.server.reset_stats();
    // Mount i reads subject i's files: 8 readers, all different files.
    let readers: Vec<_> = mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let subject = format!("SIM01/SIM01_S{:03}/", i + 1);
            let mine: BTreeMap<String, Expected> = expected
                .iter()
                .filter(|(k, _)| k.starts_with(&subject))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert!(!mine.is_empty(), "no files under {subject}");
            let root = m.path().to_path_buf();
            std::thread::spawn(move || {
                // Several readers per mount, so each mount wants more than 4 at once.
                let parts: Vec<Vec<(String, Expected)>> = (0..4)
                    .map(|p| {
                        mine.iter()
                            .enumerate()
                            .filter(|(n, _)| n % 4 == p)
                            .map(|(_, (k, v))| (k.clone(), v.clone()))
                            .collect()
                    })
                    .collect();
                let threads: Vec<_> = parts
                    .into_iter()
                    .map(|part| {
                        let root = root.clone();
                        std::thread::spawn(move || {
                            read_all_and_check(&root, &part.into_iter().collect())
                        })
                    })
                    .collect();
                for t in threads {
                    t.join().expect("a read failed or was wrong");
                }
            })
        })
        .collect();
    for r in readers {
        r.join().expect("a mount's reads failed");
    }
    let stats = sim_stats(&sim);
    assert!(
        stats.peak_downloads_in_flight <= 4,
        "the sim saw {} downloads at once with a budget of 4",
        stats.peak_downloads_in_flight
    );
    assert!(
        stats.peak_downloads_in_flight >= 2,
        "the readers overlapped (peak {})",
        stats.peak_downloads_in_flight
    );
    let waits: u64 = mounts
        .iter()
        .map(|m| {
            let (_, out, _) = xnatfs_status(m.path(), &["--json"]);
            let r: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(r["connections"]["cluster_slots"].as_u64(), Some(4));
            r["connections"]["slot_waits"].as_u64().unwrap()
        })
        .sum();
    assert!(waits > 0, "some request waited for a cluster slot");
}

#[test]
fn warm_fills_the_shared_cache_once_and_the_jobs_then_download_nothing() {
    let sim = Sim::start(twenty_sessions());
    let expected = expected_files(sim.store(), Some("SIM01"));
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("cache");
    let warmer = mount_shared(&sim, &dir, &[]);
    let warm = |paths: &[&Path]| {
        Command::new(xnatfs_bin())
            .arg("warm")
            .args(paths)
            .output()
            .expect("run xnatfs warm")
    };
    let project = warmer.path().join("SIM01");
    // One zip per resource: every folder of files is a resource here.
    let resources = |only: &str| {
        expected
            .keys()
            .filter(|k| k.starts_with(only))
            .map(|k| Path::new(k).parent().unwrap().to_path_buf())
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64
    };
    sim.server.reset_stats();
    let out = warm(&[&project.join("SIM01_S001"), &project.join("SIM01_S002")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("0 file(s) were cached already"), "{err}");
    let stats = sim_stats(&sim);
    assert_eq!(
        sim.downloads(),
        resources("SIM01/SIM01_S001/") + resources("SIM01/SIM01_S002/"),
        "one request per resource: {:?}",
        stats.downloads
    );
    assert!(stats.downloads.keys().all(|p| p.ends_with("/files")));
    // Resumable: a second run over more paths fetches only the new ones.
    let out = warm(&[&project]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        sim.downloads(),
        resources("SIM01/"),
        "each resource of the project fetched once over both runs: {err}"
    );
    assert!(
        err.contains(&format!(
            "{} file(s) were cached already",
            expected.len() / 10
        )),
        "the second run found the first run's files: {err}"
    );
    // One entry per file, 0600 in a folder made 0700.
    let entries = walk_files(&dir.join("objects"));
    assert_eq!(entries.len(), expected.len());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&dir), 0o700);
    let (some, _) = entries.iter().next().unwrap();
    assert_eq!(mode(&dir.join("objects").join(some)), 0o600);
    // A resource with one file missing is fetched file by file.
    std::fs::remove_file(dir.join("objects").join(some)).unwrap();
    sim.server.reset_stats();
    let out = warm(&[&project]);
    assert!(out.status.success());
    let stats = sim_stats(&sim);
    assert_eq!(sim.downloads(), 1, "{:?}", stats.downloads);
    assert!(!stats.downloads.keys().next().unwrap().ends_with("/files"));
    // A job's mount (a node) reads everything from the shared cache.
    let job = mount_shared(&sim, &dir, &[]);
    sim.server.reset_stats();
    read_all_and_check(job.path(), &expected);
    assert_eq!(sim.downloads(), 0, "the job's mount downloaded nothing");
    // A path off any mount is refused; a file the server cannot send is named, exit 1.
    let off = tempfile::tempdir().unwrap();
    let out = warm(&[off.path()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not on an xnatfs mount"));
    let broken = sim.add_resource(
        xnat_sim::model::ResourceOwner::Experiment("XNAT_E00003".into()),
        "BROKEN",
    );
    sim.add_file(broken, "fine.txt", b"fine\n");
    xnat_sim::add_file_named(
        sim.store(),
        broken,
        b"bad\xffname.txt",
        &b"never served"[..],
    )
    .expect("plant a name the server cannot serve");
    // A resource whose files sit in two folders: one zip brings both.
    let nested = sim.add_resource(
        xnat_sim::model::ResourceOwner::Experiment("XNAT_E00004".into()),
        "NESTED",
    );
    for path in ["a/1.txt", "a/2.txt", "b/1.txt", "b/2.txt"] {
        sim.add_file(nested, path, path.as_bytes());
    }
    let late = mount_shared(&sim, &dir, &[]);
    sim.server.reset_stats();
    let out = warm(&[&late.path().join("SIM01/SIM01_S004")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = sim_stats(&sim);
    assert_eq!(sim.downloads(), 1, "{:?}", stats.downloads);
    assert!(stats
        .downloads
        .keys()
        .all(|p| p.ends_with(&format!("/resources/{nested}/files"))));
    let out = warm(&[&late.path().join("SIM01/SIM01_S003")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let failed: Vec<&str> = err.lines().filter(|l| l.starts_with("failed: ")).collect();
    assert_eq!(failed.len(), 1, "{err}");
    assert!(failed[0].contains("BROKEN/bad"), "{err}");
    assert!(err.contains("1 failed"), "{err}");
}

#[test]
fn a_damaged_shared_entry_is_never_served_and_is_fetched_again() {
    let sim = Sim::start(four_files_of_3_mb());
    let expected = expected_files(sim.store(), None);
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("cache");
    {
        let first = mount_shared(&sim, &dir, &[]);
        read_all_and_check(first.path(), &expected);
    }
    let entries = walk_files(&dir.join("objects"));
    assert_eq!(entries.len(), expected.len());
    // One byte of every entry's data flipped, as a failing disk would.
    for rel in entries.keys() {
        let path = dir.join("objects").join(rel);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[1_500_000] ^= 0x20;
        std::fs::write(&path, bytes).unwrap();
    }
    let second = mount_shared(&sim, &dir, &[]);
    sim.server.reset_stats();
    read_all_and_check(second.path(), &expected);
    assert_eq!(
        sim.downloads() as usize,
        expected.len(),
        "each damaged file fetched again"
    );
    let (_, out, _) = xnatfs_status(second.path(), &["--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["shared_cache"]["damaged"].as_u64(),
        Some(expected.len() as u64),
        "{out}"
    );
    // The entries in place now are whole again.
    drop(second);
    let third = mount_shared(&sim, &dir, &[]);
    sim.server.reset_stats();
    read_all_and_check(third.path(), &expected);
    assert_eq!(sim.downloads(), 0);
}

#[test]
fn a_full_shared_folder_costs_reads_nothing_but_the_cache() {
    // A 1 MiB tmpfs as the shared folder: the 3 MB files cannot be written there.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test mounts a small tmpfs and needs root"
    );
    let sim = Sim::start(four_files_of_3_mb());
    let expected = expected_files(sim.store(), None);
    let small = tempfile::tempdir().unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
        .arg(small.path())
        .status()
        .expect("run mount");
    assert!(status.success(), "mount -t tmpfs failed");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(small.path());
    let mount = mount_shared(&sim, &small.path().join("cache"), &[]);
    read_all_and_check(mount.path(), &expected);
    assert!(
        mount
            .log_text()
            .contains("the shared cache cannot be written"),
        "the bypass is logged"
    );
    drop(mount);
}
