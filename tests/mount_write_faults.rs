//! Nothing written is lost: the server down during `close()`, the daemon killed during an
//! upload, a name taken on the server since the folder was listed, and a full spool disk, on
//! real mounts of xnat-sim.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::mount::{is_mounted, Mount};
use common::sim::*;
use common::wait_for;
use xnat_sim::model::ResourceOwner;
use xnat_sim::{Faults, Shape};

fn shape() -> Shape {
    Shape {
        subjects: 1,
        sessions: 1,
        scans: 1,
        files: 1,
        file_size: 4096,
        owners: vec![USER.into()],
        ..Default::default()
    }
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

/// The first scan resource folder under the mount, relative.
fn scan_resource(store: &xnat_sim::Store) -> String {
    let files = expected_files(store, None);
    let first = files
        .keys()
        .find(|k| k.matches('/').count() == 5 && !k.contains("/.resources/"))
        .expect("a scan file")
        .clone();
    first.rsplit_once('/').unwrap().0.to_string()
}

fn server_bytes(store: &xnat_sim::Store, rel: &str) -> Option<Vec<u8>> {
    expected_files(store, None).get(rel).map(Expected::bytes)
}

fn status(mountpoint: &Path) -> (i32, String) {
    let (code, out, _) = common::mount::xnatfs_status(mountpoint, &[]);
    (code, out)
}

#[test]
fn close_fails_while_the_server_is_down_and_the_upload_lands_when_it_is_back() {
    let mut sim = Restartable::start(shape());
    let url = sim.server().url();
    let mount = Mount::start(&url, USER, PASS, &["--upload-retry-max", "1"]);
    let dir = scan_resource(sim.server().store());
    fs::read_dir(mount.path().join(&dir)).unwrap().count();
    let rel = format!("{dir}/written_while_down.bin");
    let data = bytes(300_000, 3);

    sim.stop();
    let mut f = File::create(mount.path().join(&rel)).unwrap();
    f.write_all(&data).unwrap();
    let closed = nix_close(f);
    // EHOSTUNREACH: the connection was refused (this close's upload found the server down);
    // EHOSTDOWN: the mount already knew it was offline.
    let errno = closed.map_err(|e| e.raw_os_error());
    assert!(
        matches!(errno, Err(Some(libc::EHOSTUNREACH | libc::EHOSTDOWN))),
        "close() reports the failed upload as the server down: {errno:?}"
    );
    // Still there, from the spool.
    assert_eq!(fs::read(mount.path().join(&rel)).unwrap(), data);
    let (code, text) = status(mount.path());
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("pending") && text.contains("written_while_down.bin"),
        "{text}"
    );
    assert!(text.contains("last error"), "{text}");

    sim.start_again();
    wait_for(Duration::from_secs(30), "the background retry", || {
        server_bytes(sim.server().store(), &rel).is_some()
    });
    assert_eq!(server_bytes(sim.server().store(), &rel).unwrap(), data);
    wait_for(Duration::from_secs(10), "the spool to empty", || {
        status(mount.path()).0 == 0
    });
}

/// Close `f` and return what close(2) said (std's drop ignores it).
fn nix_close(f: File) -> std::io::Result<()> {
    use std::os::fd::IntoRawFd;
    let fd = f.into_raw_fd();
    // SAFETY: we own the descriptor and close it once.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Write a 6 MiB file into the mount, and kill the daemon (SIGKILL) while its upload runs,
/// slowed to 1 MiB/s. Returns the dead mount's cache folder (with its spool), the file's path
/// under the mount, and its bytes.
fn kill_during_an_upload(sim: &Sim) -> (tempfile::TempDir, String, Vec<u8>) {
    let mut mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let dir = scan_resource(sim.store());
    let rel = format!("{dir}/big_result.nii");
    let data = bytes(6 << 20, 9);
    sim.server.set_faults(Faults {
        bandwidth: Some(1 << 20),
        ..Faults::default()
    });
    let target = mount.path().join(&rel);
    let payload = data.clone();
    let puts = || {
        let stats = sim.server.stats();
        stats.started_by_method.get("PUT").copied().unwrap_or(0)
    };
    let puts_before = puts();
    let writer = std::thread::spawn(move || {
        let mut f = File::create(target)?;
        f.write_all(&payload)?;
        nix_close(f)
    });
    let spool = mount.spool_root();
    wait_for(Duration::from_secs(20), "the upload to start", || {
        journal_values(&spool, "state")
            .iter()
            .any(|s| s == "pending")
    });
    assert!(
        journal_values(&spool, "unsynced_boot")
            .iter()
            .any(|b| !b.is_empty()),
        "the record says the stage is not synced while it uploads"
    );
    wait_for(
        Duration::from_secs(20),
        "the upload's request to reach the server",
        || puts() > puts_before,
    );
    mount.kill();
    let closed = writer.join().unwrap();
    assert!(closed.is_err(), "the writer's close saw the daemon die");
    assert!(
        server_bytes(sim.store(), &rel).is_none(),
        "not uploaded yet"
    );
    sim.server.set_faults(Faults::default());
    (mount.into_cache(), rel, data)
}

#[test]
fn an_upload_cut_by_kill_9_finishes_at_the_next_mount() {
    let sim = Sim::start(shape());
    let (cache, rel, data) = kill_during_an_upload(&sim);
    let again = Mount::start_with_cache(&sim.url(), USER, PASS, &[], cache);
    wait_for(
        Duration::from_secs(30),
        "the upload after the remount",
        || server_bytes(sim.store(), &rel).is_some(),
    );
    assert_eq!(server_bytes(sim.store(), &rel).unwrap(), data);
    assert_eq!(fs::read(again.path().join(&rel)).unwrap(), data);
    wait_for(Duration::from_secs(10), "the spool to empty", || {
        status(again.path()).0 == 0
    });
}

#[test]
fn an_unsynced_upload_cut_by_a_machine_restart_is_kept_not_uploaded() {
    let sim = Sim::start(shape());
    let (cache, rel, data) = kill_during_an_upload(&sim);
    // As after a restart of the machine: the record names another boot.
    for record in journal_files(&cache.path().join("spool")) {
        let mut v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
        v["unsynced_boot"] = "an-earlier-boot".into();
        fs::write(&record, v.to_string()).unwrap();
    }
    let again = Mount::start_with_cache(&sim.url(), USER, PASS, &[], cache);
    // Recovery has run once the status lists the stage as left by a restart.
    wait_for(
        Duration::from_secs(20),
        "the recovered stage in the status",
        || status(again.path()).1.contains("restarted"),
    );
    assert!(
        server_bytes(sim.store(), &rel).is_none(),
        "a stage that may be incomplete is not uploaded; log:\n{}",
        again.log_text()
    );
    let (code, listed) = status(again.path());
    assert_eq!(code, 1, "{listed}");
    assert!(listed.contains("restarted"), "{listed}");
    // The person checks it (here the bytes are whole) and closes it to upload it.
    assert_eq!(fs::read(again.path().join(&rel)).unwrap(), data);
    let f = OpenOptions::new()
        .append(true)
        .open(again.path().join(&rel))
        .unwrap();
    nix_close(f).expect("the close uploads");
    assert_eq!(server_bytes(sim.store(), &rel).unwrap(), data);
    assert_eq!(status(again.path()).0, 0);
}

/// The journal records under a spool root.
fn journal_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in fs::read_dir(root).into_iter().flatten().flatten() {
        for entry in fs::read_dir(dir.path()).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "json") {
                out.push(entry.path());
            }
        }
    }
    out
}

/// The string value of `key` in every journal record under a spool root.
fn journal_values(root: &Path, key: &str) -> Vec<String> {
    journal_files(root)
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .filter_map(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .map(|v| v[key].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_name_taken_on_the_server_since_the_listing_is_not_overwritten() {
    let sim = Sim::start(shape());
    let (experiment, scan) = sim.store().read(|a| {
        let e = a
            .experiments
            .values()
            .find(|e| !e.scans.is_empty())
            .unwrap();
        (e.id.clone(), e.scans[0].id.clone())
    });
    let resource = sim.add_resource(ResourceOwner::Scan { experiment, scan }, "OUT");
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let dir = scan_resource(sim.store());
    let out_dir = format!("{}/OUT", dir.rsplit_once('/').unwrap().0);
    assert_eq!(
        fs::read_dir(mount.path().join(&out_dir)).unwrap().count(),
        0
    );
    // Someone else uploads clash.nii after this mount listed the folder.
    sim.add_file(resource, "clash.nii", b"theirs");
    let mut f = File::create(mount.path().join(&out_dir).join("clash.nii")).unwrap();
    f.write_all(b"ours").unwrap();
    let closed = nix_close(f);
    assert_eq!(
        closed.map_err(|e| e.raw_os_error()),
        Err(Some(libc::EEXIST))
    );
    assert_eq!(
        server_bytes(sim.store(), &format!("{out_dir}/clash.nii")).as_deref(),
        Some(&b"theirs"[..]),
        "the server's file is kept"
    );
    let (code, text) = status(mount.path());
    assert_eq!(code, 1);
    assert!(
        text.contains("failed") && text.contains("already on the server"),
        "{text}"
    );
}

/// A small tmpfs for the spool, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            ok.success(),
            "this test mounts a small tmpfs for the spool (needs root)"
        );
        SmallDisk {
            path: dir.path().to_path_buf(),
            _dir: dir,
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if is_mounted(&self.path) {
            let _ = Command::new("umount").arg(&self.path).status();
        }
    }
}

#[test]
fn a_full_spool_disk_fails_the_write_and_uploads_nothing_partial() {
    let sim = Sim::start(shape());
    let disk = SmallDisk::new("1m");
    let spool = disk.path.to_string_lossy().into_owned();
    let mount = Mount::start(&sim.url(), USER, PASS, &["--spool-dir", &spool]);
    let dir = scan_resource(sim.store());
    let rel = format!("{dir}/too_big.bin");
    let mut f = File::create(mount.path().join(&rel)).unwrap();
    let err = f.write_all(&bytes(4 << 20, 1)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
    assert!(nix_close(f).is_err(), "close fails too");
    // Nothing of what was written, not even an empty file: a test running beside this one may
    // fork while the file is open, but a close in another process uploads nothing.
    let landed = server_bytes(sim.store(), &rel).map(|b| b.len());
    assert_eq!(
        landed,
        None,
        "nothing on the server; log:\n{}",
        mount.log_text()
    );
    // The kernel releases the file just after close() returns; then it goes.
    wait_for(Duration::from_secs(5), "the incomplete file to go", || {
        !mount.path().join(&rel).exists()
    });
    assert_eq!(status(mount.path()).0, 0, "and not left in the spool");
    // Room again: a small file still goes up.
    fs::write(mount.path().join(&dir).join("small.txt"), b"fits").unwrap();
    assert_eq!(
        server_bytes(sim.store(), &format!("{dir}/small.txt")).as_deref(),
        Some(&b"fits"[..])
    );
    drop(mount);
}

#[test]
fn a_read_only_role_gets_eacces_at_mkdir_and_at_close() {
    // Collaborators read a project but may change nothing in it (403 from the server).
    let sim = Sim::start(shape());
    let project = sim
        .store()
        .read(|a| a.projects.keys().next().unwrap().clone());
    sim.store()
        .write(|a| {
            let p = a.projects.get_mut(&project).unwrap();
            p.members.remove(USER);
            p.owners.remove(USER);
            p.collaborators.insert(USER.to_string());
        })
        .unwrap();
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let err = fs::create_dir(mount.path().join(&project).join("NEWSUBJ")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    let dir = scan_resource(sim.store());
    let rel = format!("{dir}/refused.txt");
    let mut f = File::create(mount.path().join(&rel)).unwrap();
    f.write_all(b"not allowed").unwrap();
    assert_eq!(
        nix_close(f).map_err(|e| e.raw_os_error()),
        Err(Some(libc::EACCES))
    );
    assert!(server_bytes(sim.store(), &rel).is_none());
    // Kept, readable, and listed as failed with the server's reason.
    assert_eq!(fs::read(mount.path().join(&rel)).unwrap(), b"not allowed");
    let (code, text) = status(mount.path());
    assert_eq!(code, 1);
    assert!(text.contains("failed") && text.contains("403"), "{text}");
}

#[test]
fn a_member_writes_but_rm_of_a_server_file_is_eacces() {
    // XNAT's members create and edit but do not delete (owners do): 403 → EACCES, file kept.
    let sim = Sim::start(Shape {
        owners: Vec::new(),
        members: vec![USER.into()],
        ..shape()
    });
    let mount = Mount::start(&sim.url(), USER, PASS, &["--allow-delete"]);
    let dir = scan_resource(sim.store());
    let existing = expected_files(sim.store(), None)
        .keys()
        .find(|k| k.starts_with(&format!("{dir}/")))
        .expect("a server file")
        .clone();
    let before = server_bytes(sim.store(), &existing).unwrap();
    let err = fs::remove_file(mount.path().join(&existing)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
    assert_eq!(
        server_bytes(sim.store(), &existing).as_deref(),
        Some(&before[..])
    );
    assert_eq!(fs::read(mount.path().join(&existing)).unwrap(), before);
    // writing is a member's right
    let rel = format!("{dir}/by-a-member.txt");
    fs::write(mount.path().join(&rel), b"members write").unwrap();
    assert_eq!(
        server_bytes(sim.store(), &rel).as_deref(),
        Some(&b"members write"[..])
    );
}
