//! Hostile names in a real mount of xnat-sim: file paths `..`, `.`, `../../…` (folders named
//! `..`), empty, 300 and 400 bytes long, a leading `.`, `%`, backslashes, control characters,
//! duplicate files (two resources with one label), and subject, session and scan-type labels
//! holding `/` and dots. Readdir works everywhere, every name shown is a valid name that decodes
//! back as `src/fs/names.rs` documents, the bytes are the right ones, and nothing outside the
//! mount is touched. A name that is not UTF-8 on the server's disk shows as XNAT lists it (U+FFFD
//! for each invalid sequence) and reads as an error, since XNAT finds no file by that name.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::mount::Mount;
use common::sim::*;
use xnat_sim::model::{ResourceOwner, Scan};
use xnat_sim::Shape;
use xnatfs::fs::names;

const CANARY: &str = "xnatfs-escape-canary";

fn hostile_paths() -> Vec<String> {
    vec![
        "..".into(),
        ".".into(),
        format!("../../../../../../../../tmp/{CANARY}"),
        "./dot-folder/x".into(),
        String::new(),
        "x".repeat(300),
        "é".repeat(200),
        ".hidden".into(),
        "100%".into(),
        "%2E%2E".into(),
        "back\\slash".into(),
        "new\nline\ttab".into(),
        "sp ace".into(),
        "dup.txt".into(),
        "folder//double".into(),
        "/absolute".into(),
    ]
}

/// Every entry under `root` (relative path → is_dir), read with readdir and lstat only.
fn walk_all(root: &Path) -> BTreeMap<PathBuf, bool> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("readdir {rel:?}: {e}")) {
            let entry = entry.unwrap_or_else(|e| panic!("readdir entry in {rel:?}: {e}"));
            let child = rel.join(entry.file_name());
            let meta = std::fs::symlink_metadata(root.join(&child))
                .unwrap_or_else(|e| panic!("lstat {child:?}: {e}"));
            assert!(!meta.file_type().is_symlink(), "{child:?} is a symlink");
            out.insert(child.clone(), meta.is_dir());
            if meta.is_dir() {
                stack.push(child);
            }
        }
    }
    out
}

/// Whether a file path can be put in a URL unchanged (no empty, `.` or `..` segment).
fn addressable(path: &str) -> bool {
    path.split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

fn valid_shown_name(name: &str, reserved_ok: bool) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && name.len() <= 255
        && (!name.starts_with('.')
            || (reserved_ok && (name == ".resources" || name == ".assessors")))
}

#[test]
fn hostile_names_neither_escape_nor_break_the_tree() {
    let sim = Sim::start(Shape {
        subjects: 1,
        scans: 1,
        resources: vec!["NIFTI".into()],
        files: 1,
        file_size: 2000,
        ..Default::default()
    });
    let (session, subject) = sim.store().read(|a| {
        let e = a.experiments.values().next().unwrap();
        (e.id.clone(), e.subject_id.clone())
    });
    let owner = ResourceOwner::Scan {
        experiment: session.clone(),
        scan: "1".into(),
    };
    let first = sim.add_resource(owner.clone(), "HOSTILE");
    let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (i, path) in hostile_paths().into_iter().enumerate() {
        let bytes = format!("file {i}: {path:?}\n").into_bytes();
        sim.add_file(first, &path, &bytes);
        contents.insert(path, bytes);
    }
    // A name that is not UTF-8 on the server's disk: listed with U+FFFD, not downloadable.
    let missing =
        xnat_sim::add_file_named(sim.store(), first, b"bad\xffname.txt", &b"never served"[..])
            .expect("plant a non-UTF-8 name");
    assert_eq!(missing, "bad\u{FFFD}name.txt");
    // A second resource with the same label, holding another `dup.txt`.
    let second = sim.add_resource(owner, "HOSTILE");
    sim.add_file(second, "dup.txt", b"the other dup\n");
    sim.add_file(second, "only-in-second.txt", b"second\n");
    // Labels with slashes and dots, and a scan type with odd characters.
    let (evil_subject, dot_session) = sim
        .store()
        .write(|a| {
            let s = a.add_subject("SIM01", "../evil", "alice");
            let e = a.add_experiment(&s, ".", "xnat:mrSessionData", "alice");
            a.add_scan(
                &e,
                Scan {
                    id: "7".into(),
                    xsi_type: "xnat:mrScanData".into(),
                    scan_type: "T1/T2 ../x".into(),
                    ..Default::default()
                },
            );
            (s, e)
        })
        .unwrap();
    let r = sim.add_resource(
        ResourceOwner::Scan {
            experiment: dot_session.clone(),
            scan: "7".into(),
        },
        "NIFTI",
    );
    sim.add_file(r, "in-evil.nii", b"evil subject's file\n");
    let r = sim.add_resource(ResourceOwner::Subject(subject), ".resources");
    sim.add_file(r, "x", b"a resource labelled .resources\n");
    let _ = evil_subject;

    // Somewhere outside the mount that an escape would touch.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep"), b"untouched").unwrap();
    let canary = Path::new("/tmp").join(CANARY);
    let _ = std::fs::remove_file(&canary);

    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    let root = m.path().to_path_buf();
    let tree = within(
        Duration::from_secs(60),
        "walking hostile names",
        move || walk_all(&root),
    );
    for rel in tree.keys() {
        let mut inside_reserved = false;
        for (depth, part) in rel.iter().enumerate() {
            let name = part
                .to_str()
                .unwrap_or_else(|| panic!("{rel:?}: not UTF-8"));
            // The reserved folders only where they belong: `.resources` in a project, subject
            // or session, `.assessors` in a session; never inside one of them.
            let reserved_here = !inside_reserved
                && match name {
                    ".resources" => (1..=3).contains(&depth),
                    ".assessors" => depth == 3,
                    _ => false,
                };
            inside_reserved |= reserved_here;
            assert!(
                valid_shown_name(name, reserved_here),
                "{rel:?}: bad name {name:?}"
            );
        }
    }

    // The HOSTILE folder of scan 1: each shown name decodes to the server name.
    let scan_dir = tree
        .keys()
        .find(|p| p.ends_with("HOSTILE"))
        .expect("HOSTILE shown")
        .clone();
    let hostile = m.path().join(&scan_dir);
    let mut top_level: BTreeSet<String> = BTreeSet::new();
    let mut unreadable: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(&hostile).unwrap() {
        let entry = entry.unwrap();
        let shown = entry.file_name().into_string().unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            top_level.insert(format!("{shown}/"));
            continue;
        }
        top_level.insert(shown.clone());
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                // A name no URL can carry (`..`, `.`, empty) cannot be downloaded: an error,
                // never some other file's bytes.
                let server = names::decode_str(shown.as_bytes()).unwrap_or_default();
                if server == missing {
                    // The server lists it and answers 404 "File missing" for it.
                    assert!(
                        matches!(e.raw_os_error(), Some(libc::EIO | libc::ENOENT)),
                        "read {shown:?}: {e}"
                    );
                    unreadable.insert(shown.clone());
                    continue;
                }
                // (`/absolute` shows as `absolute` at the top: its leading empty folder is the
                // resource itself.)
                let unaddressable =
                    !addressable(&server) || contents.contains_key(&format!("/{server}"));
                assert!(
                    unaddressable && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)),
                    "read {shown:?} ({server:?}): {e}"
                );
                unreadable.insert(shown.clone());
                continue;
            }
        };
        if shown.contains('~') {
            // Cut (hash suffix) or deduplicated: found through the listing, not by decoding.
            let known = contents.values().any(|c| *c == bytes) || bytes == b"the other dup\n";
            assert!(known, "{shown:?}: unknown bytes {bytes:?}");
            continue;
        }
        let server = names::decode_str(shown.as_bytes())
            .unwrap_or_else(|| panic!("{shown:?} does not decode"));
        assert_eq!(names::encode(&server), shown, "encode(decode({shown:?}))");
        let want = if server == "only-in-second.txt" {
            b"second\n".to_vec()
        } else {
            contents
                .get(&server)
                .unwrap_or_else(|| panic!("{shown:?} decodes to {server:?}, not a planted name"))
                .clone()
        };
        assert_eq!(bytes, want, "bytes of {shown:?} ({server:?})");
    }
    println!("HOSTILE shows: {top_level:?}; unreadable: {unreadable:?}");
    assert!(
        unreadable.contains(&names::encode(&missing)),
        "the non-UTF-8 name is listed and unreadable: {top_level:?}"
    );
    // The documented escapes.
    for shown in [
        "%2E.",
        "%2E",
        "%",
        "%2Ehidden",
        "100%25",
        "%252E%252E",
        "back\\slash",
        "sp ace",
    ] {
        assert!(
            top_level.contains(shown),
            "{shown:?} missing from {top_level:?}"
        );
    }
    assert!(
        top_level.contains("dup.txt") && top_level.contains("dup.txt~2"),
        "{top_level:?}"
    );
    assert!(
        top_level.iter().any(|n| n.len() == 255),
        "the 300-char name cut to 255: {top_level:?}"
    );
    // `../../…/tmp/canary` is a chain of folders inside the resource, never a way out.
    let chain: PathBuf = std::iter::repeat_n("%2E.~2", 1)
        .chain(std::iter::repeat_n("%2E.", 7))
        .chain(["tmp", CANARY])
        .collect();
    let inside = hostile.join(&chain);
    let err = std::fs::read(&inside).expect_err("a path with `..` in it cannot be downloaded");
    assert!(
        matches!(err.raw_os_error(), Some(libc::EIO | libc::EINVAL)),
        "{err}"
    );
    assert!(
        std::fs::metadata(&inside).unwrap().is_file(),
        "the canary is a file inside the resource"
    );

    // The odd labels.
    let project = m.path().join("SIM01");
    let subjects: BTreeSet<String> = std::fs::read_dir(&project)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(subjects.contains("%2E.%2Fevil"), "{subjects:?}");
    let evil = project.join("%2E.%2Fevil");
    let sessions: Vec<String> = std::fs::read_dir(&evil)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(sessions.contains(&"%2E".to_string()), "{sessions:?}");
    let scan = evil.join("%2E/7-T1_T2____x");
    assert_eq!(
        std::fs::read(scan.join("NIFTI/in-evil.nii")).unwrap(),
        b"evil subject's file\n"
    );

    // Nothing outside the mount was touched.
    assert!(!canary.exists(), "{} was created", canary.display());
    let outside_names: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside_names, vec!["keep"]);
    assert_eq!(
        std::fs::read(outside.path().join("keep")).unwrap(),
        b"untouched"
    );
    for entry in std::fs::read_dir(m.cache.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name == "blocks" || name == "xnatfs.log" || name == "spool",
            "cache dir holds {name:?}"
        );
    }
}

#[test]
fn resources_with_hostile_labels_list_and_read() {
    let sim = Sim::start(Shape {
        subjects: 1,
        scans: 1,
        resources: vec!["NIFTI".into()],
        files: 1,
        file_size: 500,
        ..Default::default()
    });
    let (session, subject) = sim.store().read(|a| {
        let e = a.experiments.values().next().unwrap();
        (e.id.clone(), e.subject_id.clone())
    });
    let labels = ["a/b", "..", ".", "sp ace", "%41", "1", ".resources"];
    for owner in [
        ResourceOwner::Experiment(session.clone()),
        ResourceOwner::Subject(subject),
        ResourceOwner::Project("SIM01".into()),
    ] {
        for label in labels {
            let r = sim.add_resource(owner.clone(), label);
            sim.add_file(r, "f.txt", format!("{label}\n").as_bytes());
        }
    }
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    for dir in [
        "SIM01/.resources",
        "SIM01/SIM01_S001/.resources",
        "SIM01/SIM01_S001/SIM01_S001_MR1/.resources",
    ] {
        let dir = m.path().join(dir);
        let mut seen = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let shown = entry.file_name().into_string().unwrap();
            assert!(valid_shown_name(&shown, false), "{shown:?}");
            let label = names::decode_str(shown.as_bytes()).unwrap();
            let inside: Vec<_> = std::fs::read_dir(entry.path())
                .unwrap_or_else(|e| panic!("ls {shown:?}: {e}"))
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(inside, vec!["f.txt"], "{shown:?}");
            let text = std::fs::read_to_string(entry.path().join("f.txt"))
                .unwrap_or_else(|e| panic!("read {shown:?}/f.txt: {e}"));
            assert_eq!(text, format!("{label}\n"), "{shown:?}");
            seen.insert(label);
        }
        let want: BTreeSet<String> = labels.iter().map(|l| l.to_string()).collect();
        assert_eq!(seen, want, "{}", dir.display());
    }
}
