//! Real FUSE mounts of an in-process xnat-sim: the tree of an archive with every level
//! (projects, subjects, experiments, scans as `<ID>-<type>` and `<ID>`, resources, nested
//! folders, `.resources` at project, subject and experiment level, `.assessors` with their
//! out-resources), file sizes and bytes (MD5 against the sim's blobs), the `user.xnat.*`
//! extended attributes (libc and `getfattr`, from the apt package `attr`), `--project`, and the
//! number of requests a `find` over a whole project costs compared with a per-object walk.

mod common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::mount::Mount;
use common::sim::*;
use xnat_sim::model::ResourceOwner;
use xnat_sim::Shape;

/// The small archive plus resources at every level, nested folders, and a project alice may
/// not read.
fn rich_sim() -> Sim {
    let sim = Sim::start(small_shape());
    let (s1, e1) = sim.store().read(|a| {
        let s = a
            .subjects
            .values()
            .find(|s| s.label == "SIM01_S001")
            .unwrap();
        let e = a
            .experiments
            .values()
            .find(|e| e.subject_id == s.id && !e.is_assessor())
            .unwrap();
        (s.id.clone(), e.id.clone())
    });
    let r = sim.add_resource(ResourceOwner::Project("SIM01".into()), "PROTOCOLS");
    sim.add_file(r, "readme.txt", b"project protocol\n");
    sim.add_file(r, "nested/deeper/a.txt", b"deep in a project resource\n");
    let r = sim.add_resource(ResourceOwner::Subject(s1), "CONSENT");
    sim.add_file(r, "form.txt", b"consent form\n");
    let r = sim.add_resource(ResourceOwner::Experiment(e1.clone()), "RAW");
    sim.add_file(r, "sub/dir/x.bin", &[7u8; 3000]);
    let r = sim.add_resource(
        ResourceOwner::Scan {
            experiment: e1,
            scan: "1".into(),
        },
        "EXTRA",
    );
    sim.add_file(r, "a/b/c.dat", &[1u8; 100]);
    sim.add_file(r, "top.dat", &[2u8; 10]);
    sim.store()
        .write(|a| {
            a.add_project("HIDDEN", "bob");
            a.add_subject("HIDDEN", "H_S001", "bob");
        })
        .unwrap();
    sim
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("readdir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn tree_sizes_and_bytes_match_the_archive() {
    let sim = rich_sim();
    let expected = expected_files(sim.store(), None);
    assert!(expected.len() > 20, "archive too small: {}", expected.len());
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    let root = m.path().to_path_buf();

    assert_eq!(
        names(&root),
        vec!["SIM01"],
        "only readable projects at the top"
    );
    let shown = within(Duration::from_secs(60), "walking the mount", move || {
        walk_files(&root)
    });
    let shown_paths: Vec<&String> = shown.keys().collect();
    let expected_paths: Vec<&String> = expected.keys().collect();
    assert_eq!(shown_paths, expected_paths, "the files of the tree");
    for (path, exp) in &expected {
        assert_eq!(shown[path], exp.size, "stat size of {path}");
        let got = md5_file(&m.path().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
        assert_eq!(got, exp.md5, "bytes of {path}");
    }

    // Every level has its reserved folders; nested folders are folders.
    let p = m.path().join("SIM01");
    assert_eq!(names(&p), vec![".resources", "SIM01_S001", "SIM01_S002"]);
    assert_eq!(names(&p.join(".resources")), vec!["PROTOCOLS"]);
    assert!(p.join(".resources/PROTOCOLS/nested/deeper").is_dir());
    let s = p.join("SIM01_S001");
    assert_eq!(names(&s), vec![".resources", "SIM01_S001_MR1"]);
    assert_eq!(names(&s.join(".resources")), vec!["CONSENT"]);
    assert!(names(&p.join("SIM01_S002/.resources")).is_empty());
    let e = s.join("SIM01_S001_MR1");
    let scans = sim.store().read(|a| {
        let e = a
            .experiments
            .values()
            .find(|x| x.label == "SIM01_S001_MR1")
            .unwrap();
        e.scans
            .iter()
            .map(|s| (s.id.clone(), scan_folder(&s.id, &s.scan_type)))
            .collect::<Vec<_>>()
    });
    let mut want = vec![".assessors".to_string(), ".resources".to_string()];
    want.extend(scans.iter().map(|(_, f)| f.clone()));
    want.sort();
    assert_eq!(names(&e), want, "a session shows scans as <ID>-<type>");
    assert_eq!(names(&e.join(".assessors")), vec!["SIM01_S001_MR1_QC1"]);
    assert_eq!(names(&e.join(".assessors/SIM01_S001_MR1_QC1")), vec!["QC"]);
    assert!(e
        .join(".assessors/SIM01_S001_MR1_QC1/QC/snapshots")
        .is_dir());
    assert_eq!(names(&e.join(".resources")), vec!["RAW"]);
    let scan1 = &scans.iter().find(|(id, _)| id == "1").unwrap().1;
    assert_eq!(
        names(&e.join(scan1)),
        vec!["DICOM", "EXTRA", "NIFTI"],
        "scan resources"
    );
    assert!(e.join(scan1).join("EXTRA/a/b").is_dir());

    // A scan is also reachable by its bare ID: the same inode, not listed twice.
    for (id, folder) in &scans {
        let by_id = std::fs::metadata(e.join(id)).expect("scan by bare ID");
        let by_name = std::fs::metadata(e.join(folder)).unwrap();
        assert!(by_id.is_dir());
        assert_eq!(by_id.ino(), by_name.ino(), "{id} and {folder}");
        assert_eq!(names(&e.join(id)), names(&e.join(folder)));
    }

    // Misses are ENOENT, and the hidden project is not reachable either.
    for missing in [
        "SIM01/NOPE",
        "HIDDEN",
        "SIM01/SIM01_S001/.resources/NONE",
        "SIM01/.x",
    ] {
        let err = std::fs::metadata(m.path().join(missing)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{missing}: {err}");
    }
    // A file is not a directory.
    let a_file = m.path().join(expected.keys().next().unwrap());
    assert_eq!(
        std::fs::read_dir(&a_file).unwrap_err().raw_os_error(),
        Some(libc::ENOTDIR)
    );
}

/// The `user.xnat.*` attributes of `path` through listxattr/getxattr.
fn xattrs(path: &Path) -> BTreeMap<String, String> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: the path is NUL-terminated and the buffer is ours, of the length passed.
    let n = unsafe { libc::listxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(
        n >= 0,
        "listxattr {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    let mut out = BTreeMap::new();
    for name in buf[..n as usize]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        let cname = CString::new(name).unwrap();
        let mut value = vec![0u8; 64 * 1024];
        // SAFETY: as above.
        let len = unsafe {
            libc::getxattr(
                c.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert!(
            len >= 0,
            "getxattr {:?}: {}",
            cname,
            std::io::Error::last_os_error()
        );
        out.insert(
            String::from_utf8(name.to_vec()).unwrap(),
            String::from_utf8(value[..len as usize].to_vec()).unwrap(),
        );
    }
    out
}

#[test]
fn extended_attributes_carry_xnat_metadata() {
    let sim = rich_sim();
    let expected = expected_files(sim.store(), None);
    let (subject, session, assessor, scan) = sim.store().read(|a| {
        let s = a
            .subjects
            .values()
            .find(|s| s.label == "SIM01_S001")
            .unwrap()
            .clone();
        let e = a
            .experiments
            .values()
            .find(|e| e.label == "SIM01_S001_MR1")
            .unwrap()
            .clone();
        let q = a.assessors_of(&e.id).next().unwrap().clone();
        let scan = e.scans[0].clone();
        (s, e, q, scan)
    });
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    let p = m.path().join("SIM01");
    let x = xattrs(&p);
    assert_eq!(
        x.get("user.xnat.id").map(String::as_str),
        Some("SIM01"),
        "{x:?}"
    );
    assert_eq!(x["user.xnat.uri"], "/data/projects/SIM01");

    let s = p.join(&subject.label);
    let x = xattrs(&s);
    assert_eq!(x.get("user.xnat.id"), Some(&subject.id), "{x:?}");
    assert_eq!(x.get("user.xnat.label"), Some(&subject.label));

    let e = s.join(&session.label);
    let x = xattrs(&e);
    assert_eq!(x.get("user.xnat.id"), Some(&session.id), "{x:?}");
    assert_eq!(
        x.get("user.xnat.xsitype").map(String::as_str),
        Some("xnat:mrSessionData")
    );
    assert_eq!(x.get("user.xnat.date"), Some(&session.date));
    assert_eq!(
        x["user.xnat.uri"],
        format!("/data/experiments/{}", session.id)
    );

    let sc = e.join(scan_folder(&scan.id, &scan.scan_type));
    let x = xattrs(&sc);
    assert_eq!(x.get("user.xnat.id"), Some(&scan.id), "{x:?}");
    assert_eq!(x.get("user.xnat.type"), Some(&scan.scan_type));
    assert_eq!(
        x.get("user.xnat.series_description"),
        Some(&scan.series_description)
    );
    assert_eq!(
        x.get("user.xnat.quality").map(String::as_str),
        Some("usable")
    );
    // No user.xnat.xsitype on scans: the project-wide scan listing (the DAX bulk query) that
    // fills scan folders has no scan xsiType column.

    let q = e.join(".assessors").join(&assessor.label);
    let x = xattrs(&q);
    assert_eq!(x.get("user.xnat.id"), Some(&assessor.id), "{x:?}");
    assert_eq!(
        x.get("user.xnat.xsitype").map(String::as_str),
        Some("xnat:qcAssessmentData")
    );

    // Every file: its MD5 digest and a download URI ending in its path.
    for (path, exp) in &expected {
        let x = xattrs(&m.path().join(path));
        assert_eq!(
            x.get("user.xnat.digest"),
            Some(&exp.digest),
            "{path}: {x:?}"
        );
        let uri = x
            .get("user.xnat.uri")
            .unwrap_or_else(|| panic!("{path}: no uri: {x:?}"));
        let file_part = path.split_once("/files/").map(|(_, f)| f);
        assert!(
            uri.starts_with("/data/") && uri.contains("/files/"),
            "{path}: {uri}"
        );
        if let Some(f) = file_part {
            assert!(uri.ends_with(f), "{path}: {uri}");
        }
        assert!(x.keys().all(|k| k.starts_with("user.xnat.")), "{x:?}");
    }
    // A missing attribute is ENODATA.
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let name = CString::new("user.xnat.nope").unwrap();
    // SAFETY: size 0 probes the length; no buffer is written.
    let r = unsafe { libc::getxattr(c.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    assert_eq!(r, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ENODATA)
    );

    // And `getfattr -d` (what users run) shows them.
    let out = Command::new("getfattr")
        .args(["-d", "-m", "user.xnat"])
        .arg(&e)
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "getfattr not found ({err}): install the apt package `attr` (apt-get install attr)"
            )
        });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "getfattr failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("user.xnat.id=\"{}\"", session.id)),
        "getfattr -d output:\n{text}"
    );
}

#[test]
fn project_option_shows_only_that_project() {
    let sim = Sim::start(Shape {
        projects: 2,
        subjects: 1,
        scans: 1,
        files: 1,
        file_size: 1024,
        ..Default::default()
    });
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    assert_eq!(names(m.path()), vec!["SIM01", "SIM02"]);
    drop(m);
    let m = Mount::start(&sim.url(), USER, PASS, &["--project", "SIM02"]);
    assert_eq!(names(m.path()), vec!["SIM02"]);
    assert_eq!(
        std::fs::metadata(m.path().join("SIM01"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOENT)
    );
    let files = walk_files(&m.path().join("SIM02"));
    assert!(!files.is_empty());
    let expected = expected_files(sim.store(), Some("SIM02"));
    assert_eq!(files.len(), expected.len());
    drop(m);
    let m = Mount::start(&sim.url(), USER, PASS, &["-o", "ro,project=SIM01"]);
    assert_eq!(names(m.path()), vec!["SIM01"]);
}

#[test]
fn walking_a_project_costs_a_few_requests_per_session() {
    let (subjects, sessions, scans, resources, assessors) =
        (4usize, 2usize, 3usize, 2usize, 1usize);
    let sim = Sim::start(Shape {
        subjects,
        sessions,
        scans,
        files: 2,
        file_size: 512,
        assessors,
        ..Default::default()
    });
    let expected = expected_files(sim.store(), None);
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    sim.server.reset_stats();
    let dir = m.path().to_path_buf();
    let out = within(Duration::from_secs(60), "find", move || {
        Command::new("find")
            .arg(&dir)
            .arg("-type")
            .arg("f")
            .output()
            .expect("run find")
    });
    assert!(
        out.status.success(),
        "find: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(found, expected.len(), "find saw every file");
    let stats = sim.server.stats();

    let s = subjects;
    let e = subjects * sessions;
    let a = e * assessors;
    // xnatfs: projects; the project's subjects, experiments and scan rows (3); its .resources;
    // each subject's .resources; per session its .resources, .assessors and one files listing
    // of all its scan resources; per assessor its resources and its one resource's files.
    let bound = (5 + s + 3 * e + 2 * a) as u64;
    // A per-object walk: projects, the project's subjects and resources, per subject its
    // experiments and resources, per session its scans, resources and assessors, per scan its
    // resources, per scan resource its files, per assessor its resources and files.
    let per_object = 1 + 2 + 2 * s + 3 * e + e * scans + e * scans * resources + 2 * a;
    println!(
        "find over {s} subjects, {e} sessions, {} scans, {a} assessors: {} requests \
         ({} listings, by kind {:?}); bound {bound}; a per-object walk would cost {per_object}",
        e * scans,
        stats.requests,
        stats.by_kind.get("listing").copied().unwrap_or(0),
        stats.by_kind,
    );
    assert!(
        stats.requests <= bound,
        "a project walk cost {} requests, more than {bound}: {:?}",
        stats.requests,
        stats.by_kind
    );
    assert_eq!(
        stats.by_kind.get("download"),
        None,
        "find downloads nothing"
    );

    // A second walk within the metadata TTL costs nothing.
    sim.server.reset_stats();
    let dir = m.path().to_path_buf();
    within(Duration::from_secs(60), "second find", move || {
        walk_files(&dir)
    });
    assert_eq!(
        sim.server.stats().requests,
        0,
        "cached listings answer a second walk"
    );
}

#[test]
fn a_folder_of_many_files_lists_whole() {
    let sim = Sim::start(Shape {
        subjects: 1,
        scans: 1,
        resources: vec!["DICOM".into()],
        files: 1,
        file_size: 100,
        ..Default::default()
    });
    let e = sim
        .store()
        .read(|a| a.experiments.keys().next().unwrap().clone());
    let r = sim.add_resource(ResourceOwner::Experiment(e), "MANY");
    let count = 1500;
    sim.store()
        .batch(|| {
            for i in 0..count {
                let name = format!("slice_{i:05}_with_a_fairly_long_name_to_fill_pages.dcm");
                xnat_sim::add_file(sim.store(), r, &name, format!("{i}").as_bytes())?;
            }
            Ok(())
        })
        .unwrap();
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    let dir = m
        .path()
        .join("SIM01/SIM01_S001/SIM01_S001_MR1/.resources/MANY");
    let listed = names(&dir);
    assert_eq!(listed.len(), count, "every entry, once");
    let mut unique = listed.clone();
    unique.dedup();
    assert_eq!(unique.len(), count);
    // ls -l goes through readdirplus and stat of each entry.
    let out = Command::new("ls").arg("-l").arg(&dir).output().unwrap();
    assert!(out.status.success());
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('-'))
        .count();
    assert_eq!(lines, count);
    assert_eq!(
        std::fs::read(dir.join("slice_01234_with_a_fairly_long_name_to_fill_pages.dcm")).unwrap(),
        b"1234"
    );
}

#[test]
fn a_zero_metadata_ttl_lists_and_reads() {
    let sim = Sim::start(small_shape());
    let expected = expected_files(sim.store(), None);
    let m = Mount::start(&sim.url(), USER, PASS, &["-o", "metadata_ttl=0"]);
    let root = m.path().to_path_buf();
    let shown = within(Duration::from_secs(60), "walk with TTL 0", move || {
        walk_files(&root)
    });
    assert_eq!(shown.len(), expected.len());
    let (path, exp) = expected.iter().next().unwrap();
    assert_eq!(md5_file(&m.path().join(path)).unwrap(), exp.md5);
}
