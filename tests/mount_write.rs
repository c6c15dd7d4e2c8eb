//! Writing through a real FUSE mount of xnat-sim, checked against the sim's own store: new
//! files, `cp -r` of nested folders, replacing, appending to and patching existing files, empty
//! files, a file read while it is written, closes from duplicated descriptors and other
//! processes, `mkdir` at every level, and what `rm`, `rmdir` and `mv` do with and without
//! `--allow-delete`.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::mount::Mount;
use common::sim::*;
use xnat_sim::Shape;

fn shape() -> Shape {
    Shape {
        subjects: 1,
        sessions: 1,
        scans: 2,
        files: 2,
        file_size: 64 * 1024,
        ..Default::default()
    }
}

/// Deterministic bytes that do not compress to nothing.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The relative path of a scan's NIFTI resource folder, and the files it holds.
fn nifti_resource(sim: &Sim) -> (String, Vec<String>) {
    let files = expected_files(sim.store(), None);
    let first = files
        .keys()
        .find(|k| k.contains("/NIFTI/") && k.matches('/').count() == 5)
        .expect("a scan NIFTI file")
        .clone();
    let dir = first.rsplit_once('/').unwrap().0.to_string();
    let inside = files
        .keys()
        .filter(|k| k.starts_with(&format!("{dir}/")))
        .cloned()
        .collect();
    (dir, inside)
}

/// The bytes the sim holds for the file shown at `rel` under the mount, if it has one.
fn on_server(sim: &Sim, rel: &str) -> Option<Vec<u8>> {
    expected_files(sim.store(), None)
        .get(rel)
        .map(Expected::bytes)
}

fn status(mount: &Mount) -> (i32, String) {
    let (code, out, _) = common::mount::xnatfs_status(mount.path(), &[]);
    (code, out)
}

fn sh(script: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .output()
        .expect("run bash")
}

#[test]
fn a_new_file_is_on_the_server_when_close_returns() {
    let sim = Sim::start(shape());
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let (dir, _) = nifti_resource(&sim);
    let data = bytes(3 * 1024 * 1024 + 17, 1);
    let path = mount.path().join(&dir).join("T1w_brain.nii.gz");
    {
        let mut f = File::create(&path).expect("create");
        for chunk in data.chunks(100_000) {
            f.write_all(chunk).expect("write");
        }
        // Close: the upload happens here, and its error would be returned here.
        f.sync_all().expect("fsync uploads");
    }
    assert_eq!(
        on_server(&sim, &format!("{dir}/T1w_brain.nii.gz")).as_deref(),
        Some(&data[..]),
        "the server has the bytes written; log:\n{}",
        mount.log_text()
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), data.len() as u64);
    assert_eq!(
        fs::read(&path).unwrap(),
        data,
        "read back through the mount"
    );
    let names: Vec<_> = fs::read_dir(mount.path().join(&dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"T1w_brain.nii.gz".to_string()), "{names:?}");
    let (code, text) = status(&mount);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("uploads    none waiting"), "{text}");
    // A fresh mount (new listings) sees it with its size.
    drop(mount);
    let again = Mount::start(&sim.url(), USER, PASS, &[]);
    let path = again.path().join(&dir).join("T1w_brain.nii.gz");
    assert_eq!(fs::metadata(&path).unwrap().len(), data.len() as u64);
    assert_eq!(fs::read(&path).unwrap(), data);
}

#[test]
fn files_written_out_of_order_or_rewritten_upload_the_bytes_they_hold() {
    // An upload sends the MD5 followed as in-order writes landed; these files are not
    // written in order, so the digest that reaches the server's check must come from the
    // bytes sent, and the server must hold exactly the final bytes.
    use std::os::unix::fs::FileExt;
    let sim = Sim::start(shape());
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let (dir, _) = nifti_resource(&sim);
    let data = bytes(2 * 1024 * 1024 + 5, 7);
    let half = data.len() / 2;
    // The second half first, then the first.
    let backwards = mount.path().join(&dir).join("backwards.bin");
    {
        let f = File::create(&backwards).unwrap();
        f.write_all_at(&data[half..], half as u64).unwrap();
        f.write_all_at(&data[..half], 0).unwrap();
    }
    // In order, then a patch inside what was already written (and hashed), before the close.
    let patched = mount.path().join(&dir).join("patched.bin");
    let mut want = data.clone();
    want[1000..1010].copy_from_slice(b"0123456789");
    {
        let mut f = File::create(&patched).unwrap();
        f.write_all(&data).unwrap();
        f.write_all_at(b"0123456789", 1000).unwrap();
    }
    // In order and untouched: the digest followed as it was written is the one checked.
    let straight = mount.path().join(&dir).join("straight.bin");
    fs::write(&straight, &data).unwrap();
    for (name, bytes) in [
        ("backwards.bin", &data),
        ("patched.bin", &want),
        ("straight.bin", &data),
    ] {
        assert_eq!(
            on_server(&sim, &format!("{dir}/{name}")).as_deref(),
            Some(&bytes[..]),
            "{name}; log:\n{}",
            mount.log_text()
        );
    }
    let (code, text) = status(&mount);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("uploads    none waiting"), "{text}");
}

#[test]
fn cp_r_copies_nested_folders() {
    let sim = Sim::start(shape());
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let (dir, _) = nifti_resource(&sim);
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("derivatives");
    let files = [
        ("derivatives/a.txt", 10),
        ("derivatives/sub/b.bin", 200_000),
        ("derivatives/sub/deeper/c.bin", 1),
        ("derivatives/sub/deeper/empty", 0),
    ];
    for (i, (rel, len)) in files.iter().enumerate() {
        let p = local.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes(*len, i as u64 + 10)).unwrap();
    }
    let out = Command::new("cp")
        .arg("-r")
        .arg(&tree)
        .arg(mount.path().join(&dir))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cp -r: {}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        mount.log_text()
    );
    for (i, (rel, len)) in files.iter().enumerate() {
        let want = bytes(*len, i as u64 + 10);
        assert_eq!(
            on_server(&sim, &format!("{dir}/{rel}")).as_deref(),
            Some(&want[..]),
            "{rel} on the server"
        );
        assert_eq!(fs::read(mount.path().join(&dir).join(rel)).unwrap(), want);
    }
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(mount.path().join(&dir).join("derivatives"))
        .status()
        .unwrap();
    assert!(diff.success(), "diff -r of the copy");
}

#[test]
fn existing_files_are_replaced_appended_to_and_patched() {
    let sim = Sim::start(shape());
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let (dir, existing) = nifti_resource(&sim);
    let (a, b) = (&existing[0], &existing[1]);
    let old_a = on_server(&sim, a).unwrap();
    let old_b = on_server(&sim, b).unwrap();

    // O_TRUNC: replaced whole (overwrite=true on the server).
    let new_a = bytes(5000, 7);
    fs::write(mount.path().join(a), &new_a).unwrap();
    assert_eq!(on_server(&sim, a).unwrap(), new_a);
    assert_eq!(fs::metadata(mount.path().join(a)).unwrap().len(), 5000);
    assert_eq!(fs::read(mount.path().join(a)).unwrap(), new_a);

    // O_APPEND: the old bytes are fetched first, the new ones go after them.
    let mut f = OpenOptions::new()
        .append(true)
        .open(mount.path().join(b))
        .unwrap();
    f.write_all(b"appended").unwrap();
    drop(f);
    let mut want = old_b.clone();
    want.extend_from_slice(b"appended");
    assert_eq!(on_server(&sim, b).unwrap(), want);

    // A write in the middle, without truncation.
    let f = OpenOptions::new()
        .write(true)
        .open(mount.path().join(b))
        .unwrap();
    f.write_all_at(b"PATCH", 10).unwrap();
    drop(f);
    want[10..15].copy_from_slice(b"PATCH");
    assert_eq!(on_server(&sim, b).unwrap(), want);
    assert_eq!(fs::read(mount.path().join(b)).unwrap(), want);

    // truncate(2) by path goes up at once.
    let out = sh(&format!(
        "truncate -s 100 '{}'",
        mount.path().join(b).display()
    ));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(on_server(&sim, b).unwrap(), want[..100]);

    // Opening for writing and closing without a change uploads nothing.
    sim.server.reset_stats();
    drop(
        OpenOptions::new()
            .write(true)
            .open(mount.path().join(b))
            .unwrap(),
    );
    assert_eq!(
        sim.server
            .stats()
            .by_kind
            .get("upload")
            .copied()
            .unwrap_or(0),
        0,
        "an unchanged file is not uploaded"
    );
    assert_ne!(old_a, new_a);
    let _ = dir;
}

#[test]
fn an_empty_file_is_uploaded() {
    let sim = Sim::start(shape());
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let (dir, _) = nifti_resource(&sim);
    let path = mount.path().join(&dir).join("done.flag");
    File::create(&path).unwrap();
    assert_eq!(
        on_server(&sim, &format!("{dir}/done.flag")).as_deref(),
        Some(&b""[..]),
        "log:\n{}",
        mount.log_text()
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn a_file_reads_back_while_it_is_written_and_dup_closes_upload() {
    let sim = Sim::start(shape());
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let (dir, _) = nifti_resource(&sim);
    let rel = format!("{dir}/log.txt");
    let path = mount.path().join(&rel);
    let mut writer = File::create(&path).unwrap();
    writer.write_all(b"first line\n").unwrap();
    // Another descriptor reads what was written, before any close.
    let mut seen = String::new();
    File::open(&path)
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    assert_eq!(seen, "first line\n");
    assert_eq!(fs::metadata(&path).unwrap().len(), 11);
    // A duplicate's close uploads what is there so far; the original goes on writing.
    let dup = writer.try_clone().unwrap();
    drop(dup);
    assert_eq!(on_server(&sim, &rel).as_deref(), Some(&b"first line\n"[..]));
    writer.write_all(b"second line\n").unwrap();
    drop(writer);
    assert_eq!(
        on_server(&sim, &rel).as_deref(),
        Some(&b"first line\nsecond line\n"[..])
    );

    // Shell redirections: the file is opened, written and closed by other processes.
    let script = format!(
        "exec 3>'{p}'; echo one >&3; (echo two >&3); exec 3>&-; \
         echo three >> '{p}'; printf four | dd of='{p}' oflag=append conv=notrunc status=none",
        p = mount.path().join(&dir).join("shell.txt").display()
    );
    let out = sh(&script);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        on_server(&sim, &format!("{dir}/shell.txt")).as_deref(),
        Some(&b"one\ntwo\nthree\nfour"[..])
    );
}

#[test]
fn only_a_close_in_the_opening_process_uploads() {
    let sim = Sim::start(shape());
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let (dir, _) = nifti_resource(&sim);
    let rel = format!("{dir}/half.txt");
    let mut f = File::create(mount.path().join(&rel)).unwrap();
    f.write_all(b"half").unwrap();
    // A child process gets a copy of every descriptor, and its exec closes them: that close
    // must not upload the half-written file.
    let child = Command::new("true").status().expect("run true");
    assert!(child.success());
    assert_eq!(
        on_server(&sim, &rel),
        None,
        "a close in a child uploads nothing; log:\n{}",
        mount.log_text()
    );
    f.write_all(b" and whole").unwrap();
    drop(f);
    assert_eq!(
        on_server(&sim, &rel).as_deref(),
        Some(&b"half and whole"[..])
    );

    // The opener (the shell) closes first, a child it started writes on: once the child's
    // copy goes, the file goes up in the background.
    let late = format!("{dir}/late.txt");
    let script = format!(
        "exec 3>'{p}'; (sleep 0.3; echo late >&3) & exec 3>&-; wait",
        p = mount.path().join(&late).display()
    );
    let out = sh(&script);
    assert!(out.status.success(), "{out:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while on_server(&sim, &late).as_deref() != Some(&b"late\n"[..]) {
        assert!(
            std::time::Instant::now() < deadline,
            "the child's bytes reach the server after its close; server has {:?}; log:\n{}",
            on_server(&sim, &late),
            mount.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status(&mount).0, 0, "nothing waits once it is up");
}

#[test]
fn mkdir_makes_subjects_sessions_scans_and_resources() {
    let sim = Sim::start(shape());
    let mount = Mount::start(
        &sim.url(),
        USER,
        PASS,
        &["--session-type", "xnat:petSessionData"],
    );
    let project = sim
        .store()
        .read(|a| a.projects.keys().next().unwrap().clone());
    let subject = mount.path().join(&project).join("NEW01");
    fs::create_dir(&subject).expect("mkdir subject");
    let session = subject.join("NEW01_PET1");
    fs::create_dir(&session).expect("mkdir session");
    let scan = session.join("5-T2w");
    fs::create_dir(&scan).expect("mkdir scan");
    let resource = scan.join("NIFTI");
    fs::create_dir(&resource).expect("mkdir resource");
    let folder = resource.join("derived");
    fs::create_dir(&folder).expect("mkdir folder in a resource");
    assert!(fs::read_dir(&folder).unwrap().next().is_none());
    let session_resource = session.join(".resources").join("QC");
    fs::create_dir(&session_resource).expect("mkdir session resource");
    fs::write(folder.join("x.nii"), b"xyz").unwrap();

    sim.store().read(|a| {
        let s = a
            .subject_in_project(&project, "NEW01")
            .expect("subject on the server");
        let e = a
            .experiment_in_subject(&s.id, "NEW01_PET1")
            .expect("session on the server");
        assert_eq!(e.xsi_type, "xnat:petSessionData");
        let sc = e.scans.iter().find(|sc| sc.id == "5").expect("scan 5");
        assert_eq!(sc.scan_type, "T2w");
        assert_eq!(sc.xsi_type, "xnat:mrScanData");
    });
    let rel = format!("{project}/NEW01/NEW01_PET1/5-T2w/NIFTI/derived/x.nii");
    assert_eq!(on_server(&sim, &rel).as_deref(), Some(&b"xyz"[..]));
    assert!(
        expected_files(sim.store(), None)
            .keys()
            .all(|k| !k.contains("/QC/")),
        "an empty resource holds no files"
    );
    assert!(fs::metadata(&session_resource).unwrap().is_dir());

    // Errors map to errno.
    let again = fs::create_dir(&subject).unwrap_err();
    assert_eq!(again.raw_os_error(), Some(libc::EEXIST));
    let bad = fs::create_dir(session.join("7-T1 w")).unwrap_err();
    assert_eq!(bad.raw_os_error(), Some(libc::EINVAL));
    let project_dir = fs::create_dir(mount.path().join("NEWPROJECT")).unwrap_err();
    assert_eq!(project_dir.raw_os_error(), Some(libc::EPERM));
    let file_outside = File::create(subject.join("notes.txt")).unwrap_err();
    assert_eq!(file_outside.raw_os_error(), Some(libc::EPERM));
}

#[test]
fn deleting_server_data_needs_allow_delete() {
    let sim = Sim::start(shape());
    let (dir, existing) = nifti_resource(&sim);
    {
        let mount = Mount::start(&sim.url(), USER, PASS, &[]);
        let err = fs::remove_file(mount.path().join(&existing[0])).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        assert!(
            on_server(&sim, &existing[0]).is_some(),
            "still on the server"
        );
        assert!(
            mount.log_text().contains("--allow-delete"),
            "the log names the flag"
        );
        let err = fs::rename(
            mount.path().join(&existing[0]),
            mount.path().join(&dir).join("renamed"),
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        // A file that never reached the server is local: it goes without the flag.
        let local = mount.path().join(&dir).join("scratch");
        let f = File::create(&local).unwrap();
        fs::rename(&local, mount.path().join(&dir).join("scratch2")).unwrap();
        fs::remove_file(mount.path().join(&dir).join("scratch2")).unwrap();
        drop(f);
        assert!(on_server(&sim, &format!("{dir}/scratch")).is_none());
        assert!(on_server(&sim, &format!("{dir}/scratch2")).is_none());
        assert_eq!(status(&mount).0, 0);
    }
    let mount = Mount::start(&sim.url(), USER, PASS, &["--allow-delete"]);
    // mv within a resource and across resources: upload at the new place, then delete.
    let (other_dir, _) = {
        let files = expected_files(sim.store(), None);
        let other = files
            .keys()
            .find(|k| k.contains("/DICOM/") && k.matches('/').count() == 5)
            .unwrap()
            .clone();
        (other.rsplit_once('/').unwrap().0.to_string(), ())
    };
    let before = on_server(&sim, &existing[0]).unwrap();
    let moved = format!("{other_dir}/moved.nii.gz");
    fs::rename(mount.path().join(&existing[0]), mount.path().join(&moved)).unwrap();
    assert_eq!(on_server(&sim, &moved).unwrap(), before);
    assert!(on_server(&sim, &existing[0]).is_none());
    assert_eq!(fs::read(mount.path().join(&moved)).unwrap(), before);
    assert!(!mount.path().join(&existing[0]).exists());
    // A file this mount wrote (its stage kept for reads), then moved: nothing waits after.
    let fresh = mount.path().join(&other_dir).join("fresh.nii.gz");
    fs::write(&fresh, b"written, uploaded, then moved").unwrap();
    fs::rename(
        &fresh,
        mount.path().join(&other_dir).join("fresh_moved.nii.gz"),
    )
    .unwrap();
    assert_eq!(
        on_server(&sim, &format!("{other_dir}/fresh_moved.nii.gz")).as_deref(),
        Some(&b"written, uploaded, then moved"[..])
    );
    let (code, text) = status(&mount);
    assert_eq!(code, 0, "nothing waits after the move: {text}");

    fs::remove_file(mount.path().join(&existing[1])).unwrap();
    assert!(on_server(&sim, &existing[1]).is_none());
    // The resource is empty now: rmdir removes it; a full one is refused.
    fs::remove_dir(mount.path().join(&dir)).expect("rmdir of an empty resource");
    assert!(!mount.path().join(&dir).exists());
    let err = fs::remove_dir(mount.path().join(&other_dir)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTEMPTY));
}

#[test]
fn a_rename_before_the_first_close_stays_local() {
    // Tools write `out.tmp` and rename it to `out.nii.gz` while it is still open.
    let sim = Sim::start(shape());
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let (dir, _) = nifti_resource(&sim);
    let tmp: PathBuf = mount.path().join(&dir).join("out.tmp");
    let mut f = File::create(&tmp).unwrap();
    f.write_all(b"result").unwrap();
    fs::rename(&tmp, mount.path().join(&dir).join("out.nii.gz")).unwrap();
    f.write_all(b"!").unwrap();
    drop(f);
    assert_eq!(
        on_server(&sim, &format!("{dir}/out.nii.gz")).as_deref(),
        Some(&b"result!"[..])
    );
    assert!(on_server(&sim, &format!("{dir}/out.tmp")).is_none());
    assert!(!Path::new(&tmp).exists());
}

/// `statvfs` of `path`: (total, free, available) in bytes.
fn space(path: &Path) -> (u64, u64, u64) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed out-struct.
    assert_eq!(
        unsafe { libc::statvfs(c.as_ptr(), &mut st) },
        0,
        "statvfs {path:?}"
    );
    let f = st.f_frsize as u64;
    (
        st.f_blocks as u64 * f,
        st.f_bfree as u64 * f,
        st.f_bavail as u64 * f,
    )
}

#[test]
fn df_shows_the_spool_disk_with_free_and_available_apart() {
    let sim = Sim::start(shape());
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let (total, free, avail) = space(mount.path());
    let (s_total, s_free, s_avail) = space(&mount.spool_root());
    let near = |a: u64, b: u64| a.abs_diff(b) < 64 << 20;
    assert!(
        near(total, s_total),
        "total {total} vs the spool disk's {s_total}"
    );
    assert!(
        near(free, s_free),
        "free {free} vs the spool disk's {s_free}"
    );
    assert!(
        near(avail, s_avail),
        "available {avail} vs the spool disk's {s_avail}"
    );
    assert!(avail <= free, "available {avail} above free {free}");
}

/// The files under `prefix` (a shown path from the mount's root) that the sim holds.
fn server_files_under(sim: &Sim, prefix: &str) -> Vec<String> {
    let prefix = format!("{prefix}/");
    expected_files(sim.store(), None)
        .into_keys()
        .filter(|k| k.starts_with(&prefix))
        .collect()
}

/// The first entry of folder `dir` not starting with a dot.
fn first_child(dir: &Path) -> String {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {dir:?}: {e}"))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{dir:?} is empty"))
}

#[test]
fn rm_r_of_a_scan_a_session_and_a_subject_works_only_with_allow_delete() {
    let sim = Sim::start(Shape {
        subjects: 2,
        sessions: 2,
        scans: 2,
        files: 1,
        file_size: 4096,
        assessors: 1,
        ..Default::default()
    });
    let rm = |target: &Path| {
        Command::new("rm")
            .arg("-r")
            .arg(target)
            .output()
            .expect("run rm -r")
    };
    let before = expected_files(sim.store(), None).len();
    {
        let mount = Mount::start(&sim.url(), USER, PASS, &[]);
        let project = first_child(mount.path());
        let subject = first_child(&mount.path().join(&project));
        let out = rm(&mount.path().join(&project).join(&subject));
        assert!(
            !out.status.success(),
            "rm -r without --allow-delete succeeded"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Operation not permitted"), "{err}");
        assert_eq!(expected_files(sim.store(), None).len(), before);
    }
    let mount = Mount::start(&sim.url(), USER, PASS, &["--allow-delete"]);
    let project = first_child(mount.path());
    let subject = format!("{project}/{}", first_child(&mount.path().join(&project)));
    let session = format!("{subject}/{}", first_child(&mount.path().join(&subject)));
    let session_dir = mount.path().join(&session);
    assert!(
        session_dir
            .join(".assessors")
            .read_dir()
            .unwrap()
            .next()
            .is_some(),
        "the session has an assessor"
    );
    let scan = format!("{session}/{}", first_child(&session_dir));
    for target in [&scan, &session, &subject] {
        assert!(
            !server_files_under(&sim, target).is_empty(),
            "{target} has files"
        );
        let out = rm(&mount.path().join(target));
        assert!(
            out.status.success(),
            "rm -r {target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!mount.path().join(target).exists(), "{target} still shown");
        assert!(
            server_files_under(&sim, target).is_empty(),
            "{target} still on the server"
        );
    }
    // The other subject is untouched.
    let left = expected_files(sim.store(), None);
    assert!(!left.is_empty() && left.keys().all(|k| !k.starts_with(&format!("{subject}/"))));
}
