//! The mount without its server, against xnat-sim stopped mid-use and started again on the same
//! port and archive: the last known tree stays listed past the metadata TTL, cached files read
//! with their bytes, uncached reads fail at once with EHOSTDOWN, a file written waits in the
//! spool and reaches the server once it is back, and `xnatfs status` says offline and since
//! when. A mount started while the server is down (or with `--offline`) works from what an
//! earlier mount kept; one with nothing kept refuses to start. `xnatfs status` also shows an
//! upload in flight with its bytes sent.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::mount::{xnatfs_bin, xnatfs_status, Mount};
use common::sim::*;
use common::wait_for;

/// `xnatfs status [--json] MOUNTPOINT`: exit code and standard output.
fn status(mountpoint: &Path, json: bool) -> (i32, String) {
    let args: &[&str] = if json { &["--json"] } else { &[] };
    let (code, out, err) = xnatfs_status(mountpoint, args);
    assert!(code != 2, "xnatfs status failed: {err}");
    (code, out)
}

fn status_json(mountpoint: &Path) -> serde_json::Value {
    let (_, text) = status(mountpoint, true);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("status --json: {e}: {text}"))
}

/// The errno of reading the file at `path` whole.
fn read_errno(path: &Path) -> Option<i32> {
    std::fs::read(path)
        .err()
        .map(|e| e.raw_os_error().unwrap_or(-1))
}

/// A mount without its server (`how`): the kept `tree`, the `cached` file's bytes, and
/// EHOSTDOWN at once for the `uncached` one.
fn serves_what_was_kept(
    root: &Path,
    tree: &BTreeMap<String, u64>,
    expected: &BTreeMap<String, Expected>,
    cached: &str,
    uncached: &str,
    how: &str,
) {
    assert_eq!(&walk_files(root), tree, "the kept tree, {how}");
    let again = std::fs::read(root.join(cached)).unwrap_or_else(|e| panic!("cached, {how}: {e}"));
    assert_eq!(md5_hex(&again), expected[cached].md5, "cached bytes, {how}");
    assert_eq!(
        read_errno(&root.join(uncached)),
        Some(libc::EHOSTDOWN),
        "an uncached file, {how}"
    );
}

/// Two files of the archive: one to read while online (cached), one never read.
fn two_files(expected: &BTreeMap<String, Expected>) -> (String, String) {
    let mut names = expected.keys().filter(|p| !p.contains("/.")).cloned();
    let cached = names.next().expect("a file");
    let uncached = names.next().expect("a second file");
    (cached, uncached)
}

/// A resource folder of the tree, for a file written offline.
fn a_resource_dir(file: &str) -> PathBuf {
    PathBuf::from(file)
        .parent()
        .expect("a folder")
        .to_path_buf()
}

#[test]
fn offline_mid_use_serves_what_was_kept_and_uploads_when_back() {
    let mut sim = Restartable::start(small_shape());
    let expected = expected_files(sim.server().store(), None);
    let (cached, uncached) = two_files(&expected);
    let mount = Mount::start(
        &sim.url(),
        USER,
        PASS,
        &["--metadata-ttl", "1", "--upload-retry-max", "2"],
    );
    let root = mount.path().to_path_buf();
    let tree = walk_files(&root);
    assert_eq!(tree.len(), expected.len(), "the tree online");
    let bytes = std::fs::read(root.join(&cached)).expect("read online");
    assert_eq!(md5_hex(&bytes), expected[&cached].md5);
    assert_eq!(status_json(&root)["state"], "online");

    sim.stop();
    std::thread::sleep(Duration::from_millis(1500));
    // The first look past the TTL finds the server gone (within its retries); after it, the
    // kept listings answer.
    let offline_tree = walk_files(&root);
    assert_eq!(
        offline_tree, tree,
        "the last known tree, past the TTL, offline"
    );
    let report = status_json(&root);
    assert_eq!(report["state"], "offline", "{report}");
    assert!(report["offline_since"].as_u64().is_some(), "{report}");
    let (_, text) = status(&root, false);
    assert!(text.contains("OFFLINE since"), "{text}");

    let again = std::fs::read(root.join(&cached)).expect("a cached file offline");
    assert_eq!(
        md5_hex(&again),
        expected[&cached].md5,
        "cached bytes offline"
    );
    std::thread::sleep(Duration::from_millis(1100));
    let started = Instant::now();
    assert_eq!(
        read_errno(&root.join(&uncached)),
        Some(libc::EHOSTDOWN),
        "an uncached file offline"
    );
    let took = started.elapsed();
    // Written offline: staged, uploaded once the server is back.
    let new_file = a_resource_dir(&cached).join("written-offline.txt");
    let payload = b"written while the server was down\n".repeat(100);
    let _ = std::fs::write(root.join(&new_file), &payload);
    let report = status_json(&root);
    let uploads = report["uploads"].as_array().expect("uploads").clone();
    assert!(
        uploads.iter().any(|u| u["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("written-offline.txt"))),
        "the file written offline waits: {report}"
    );
    assert_eq!(
        std::fs::read(root.join(&new_file)).expect("read back offline"),
        payload,
        "the staged file reads back offline"
    );

    sim.start_again();
    wait_for(Duration::from_secs(45), "the mount online again", || {
        status_json(&root)["state"] == "online"
    });
    wait_for(
        Duration::from_secs(60),
        "the offline write on the server",
        || status_json(&root)["uploads_total"] == 0,
    );
    let on_server = expected_files(sim.server().store(), None);
    let uploaded = on_server
        .get(new_file.to_str().unwrap())
        .unwrap_or_else(|| panic!("{} not on the server", new_file.display()));
    assert_eq!(uploaded.bytes(), payload);
    let bytes = std::fs::read(root.join(&uncached)).expect("the uncached file, back online");
    assert_eq!(md5_hex(&bytes), expected[&uncached].md5);
    eprintln!("an uncached read offline failed in {took:?}");
    drop(mount);
}

#[test]
fn a_mount_started_offline_serves_what_an_earlier_mount_kept() {
    let mut sim = Restartable::start(small_shape());
    let expected = expected_files(sim.server().store(), None);
    let (cached, uncached) = two_files(&expected);
    let first = Mount::start(&sim.url(), USER, PASS, &[]);
    let tree = walk_files(first.path());
    let bytes = std::fs::read(first.path().join(&cached)).expect("read online");
    assert_eq!(md5_hex(&bytes), expected[&cached].md5);
    let cache = first.into_cache();

    // `--offline` with the server up: nothing asked of it.
    sim.server().reset_stats();
    let offline = Mount::start_with_cache(&sim.url(), USER, PASS, &["--offline"], cache);
    serves_what_was_kept(
        offline.path(),
        &tree,
        &expected,
        &cached,
        &uncached,
        "--offline",
    );
    let report = status_json(offline.path());
    assert_eq!(report["state"], "offline", "{report}");
    assert!(
        report["offline_reason"]
            .as_str()
            .is_some_and(|r| r.contains("--offline")),
        "{report}"
    );
    assert_eq!(
        sim.server().stats().requests,
        0,
        "a mount with --offline sent requests"
    );
    let cache = offline.into_cache();

    // The server down at mount time: the kept tree, at once.
    sim.stop();
    let down = Mount::start_with_cache(&sim.url(), USER, PASS, &[], cache);
    serves_what_was_kept(
        down.path(),
        &tree,
        &expected,
        &cached,
        &uncached,
        "server down",
    );
    assert_eq!(status_json(down.path())["state"], "offline");
    // Back: the probe finds it, and the uncached file reads.
    sim.start_again();
    wait_for(Duration::from_secs(45), "the mount online", || {
        status_json(down.path())["state"] == "online"
    });
    let bytes = std::fs::read(down.path().join(&uncached)).expect("uncached, back online");
    assert_eq!(md5_hex(&bytes), expected[&uncached].md5);
    drop(down);
}

#[test]
fn a_mount_with_nothing_kept_refuses_to_start_without_its_server() {
    let mut sim = Restartable::start(small_shape());
    let url = sim.url();
    sim.stop();
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(xnatfs_bin())
        .arg("mount")
        .arg(&url)
        .arg(dir.path())
        .arg("--cache-dir")
        .arg(cache.path().join("blocks"))
        .arg("--spool-dir")
        .arg(cache.path().join("spool"))
        .env("XNAT_USER", USER)
        .env("XNAT_PASS", PASS)
        .env_remove("XNAT_HOST")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run xnatfs mount");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "mounted without a server: {stderr}");
    assert!(stderr.contains("cannot reach"), "{stderr}");
    assert!(!common::mount::is_mounted(dir.path()));
}

#[test]
fn status_shows_an_upload_in_flight_with_its_progress() {
    let sim = Sim::start_with(Some(small_shape()), |c| {
        // 2 MiB/s: a 12 MiB file takes some 6 s to send.
        c.faults.bandwidth = Some(2 << 20);
    });
    let expected = expected_files(sim.store(), None);
    let (file, _) = two_files(&expected);
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let target = mount
        .path()
        .join(a_resource_dir(&file))
        .join("big-upload.bin");
    let payload: Vec<u8> = (0..12u32 << 20).map(|i| (i % 251) as u8).collect();
    let writer = {
        let (target, payload) = (target.clone(), payload.clone());
        std::thread::spawn(move || std::fs::write(target, payload))
    };
    let mut seen = None;
    wait_for(Duration::from_secs(60), "an upload shown in flight", || {
        let report = status_json(mount.path());
        let uploading = report["uploads"].as_array().and_then(|list| {
            list.iter()
                .find(|u| u["state"] == "uploading" && u["sent"].as_u64() > Some(0))
                .cloned()
        });
        if let Some(u) = uploading {
            seen = Some(u);
            return true;
        }
        false
    });
    let upload = seen.unwrap();
    assert_eq!(
        upload["size"].as_u64(),
        Some(payload.len() as u64),
        "{upload}"
    );
    assert!(upload["rate"].as_u64() > Some(0), "{upload}");
    let (code, text) = status(mount.path(), false);
    assert!(code == 0 || code == 1, "{text}");
    writer.join().unwrap().expect("the write and close");
    let (code, text) = status(mount.path(), false);
    assert_eq!(code, 0, "nothing waits after the close: {text}");
    assert!(text.contains("online"), "{text}");
    assert!(text.contains("uploads    none waiting"), "{text}");
}

#[test]
fn after_a_remount_a_slow_server_shows_the_kept_tree_then_its_own() {
    let sim = Sim::start(small_shape());
    let expected = expected_files(sim.store(), None);
    let project = expected
        .keys()
        .next()
        .and_then(|p| p.split('/').next())
        .expect("a project")
        .to_string();
    let first = Mount::start(&sim.url(), USER, PASS, &[]);
    let resources = first.path().join(&project).join(".resources");
    let before: Vec<_> = std::fs::read_dir(&resources)
        .expect("ls .resources")
        .collect();
    assert!(
        !resources.join("NOTES").exists(),
        "no NOTES resource yet: {before:?}"
    );
    let cache = first.into_cache();

    // Changed on the server between the mounts, which then answers slowly (3 s a request,
    // past the 1 s a remount waits before showing what was kept).
    let notes = sim.add_resource(
        xnat_sim::model::ResourceOwner::Project(project.clone()),
        "NOTES",
    );
    sim.add_file(notes, "notes.txt", b"added between the mounts\n");
    let mut faults = sim.server.faults();
    faults.latency_ms = 3000;
    sim.server.set_faults(faults);
    let again = Mount::start_with_cache(&sim.url(), USER, PASS, &[], cache);
    let resources = again.path().join(&project).join(".resources");
    assert!(
        !resources.join("NOTES").exists(),
        "the first look shows the kept listing, not the slow server's"
    );
    // The server's answer, awaited in the background, replaces it within seconds (not the
    // 60 s metadata TTL).
    wait_for(
        Duration::from_secs(20),
        "the server's listing after the kept one",
        || resources.join("NOTES").exists(),
    );
    assert_eq!(
        std::fs::read(resources.join("NOTES").join("notes.txt")).expect("the new file"),
        b"added between the mounts\n"
    );
}
