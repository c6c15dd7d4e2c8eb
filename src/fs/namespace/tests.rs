//! Unit tests of the namespace over the fake backend: the tree, names and request counts.

use std::sync::Arc;
use std::time::Duration;

use super::Namespace;
use crate::fs::inode::{Ino, ROOT_INO};
use crate::fs::node::Node;
use crate::xnat::fake::FakeXnat;
use crate::xnat::Owner;

/// The accession IDs of the archive made by [`archive`].
struct Ids {
    subjects: Vec<String>,
    sessions: Vec<String>,
}

/// Project P: `subjects` subjects with two sessions each, two scans per session with NIFTI and
/// DICOM resources of two files each.
fn archive(subjects: usize) -> (Arc<FakeXnat>, Ids) {
    let fake = FakeXnat::new();
    fake.add_project("P");
    let mut ids = Ids {
        subjects: Vec::new(),
        sessions: Vec::new(),
    };
    for s in 0..subjects {
        let label = format!("sub{s:02}");
        ids.subjects.push(fake.add_subject("P", &label));
        for e in 0..2 {
            let eid = fake.add_session("P", &label, &format!("{label}_MR{e}"));
            for (scan, scan_type) in [("1", "mprage"), ("2", "DWI b1000")] {
                fake.add_scan(&eid, scan, scan_type);
                let owner = Owner::Scan {
                    experiment: eid.clone(),
                    scan: scan.into(),
                };
                fake.add_file(&owner, "NIFTI", "a.nii.gz", vec![0; 10]);
                fake.add_file(&owner, "NIFTI", "deep/er/b.json", vec![1; 3]);
                fake.add_file(&owner, "DICOM", "1.dcm", vec![2; 5]);
                fake.add_file(&owner, "DICOM", "2.dcm", vec![3; 5]);
            }
            ids.sessions.push(eid);
        }
    }
    (fake, ids)
}

fn ns(fake: &Arc<FakeXnat>) -> Namespace {
    Namespace::new(fake.clone(), Duration::from_secs(60), None)
}

async fn walk(ns: &Namespace, dir: Ino, out: &mut Vec<String>, prefix: &str) {
    let listing = ns.list(dir).await.unwrap();
    for (name, ino) in &listing.entries {
        let path = format!("{prefix}/{name}");
        out.push(path.clone());
        if ns.inode(*ino).unwrap().is_dir() {
            Box::pin(walk(ns, *ino, out, &path)).await;
        }
    }
}

async fn resolve(ns: &Namespace, path: &str) -> Result<Ino, i32> {
    let mut ino = ROOT_INO;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        ino = ns
            .lookup(ino, part.as_bytes())
            .await
            .map_err(|e| e.errno)?
            .ino;
    }
    Ok(ino)
}

#[tokio::test]
async fn tree_has_every_level_with_xnat_names() {
    let (fake, _) = archive(2);
    let ns = ns(&fake);
    let ino = resolve(&ns, "/P/sub01/sub01_MR1/2-DWI_b1000/NIFTI/deep/er/b.json")
        .await
        .unwrap();
    let inode = ns.inode(ino).unwrap();
    assert_eq!(inode.size(), 3);
    assert!(matches!(inode.node, Node::File { .. }));
    // The bare scan ID also resolves, to the same folder.
    let by_id = resolve(&ns, "/P/sub01/sub01_MR1/2").await.unwrap();
    let by_name = resolve(&ns, "/P/sub01/sub01_MR1/2-DWI_b1000")
        .await
        .unwrap();
    assert_eq!(by_id, by_name);
    let listing = ns
        .list(resolve(&ns, "/P/sub01/sub01_MR1").await.unwrap())
        .await
        .unwrap();
    let names: Vec<_> = listing.entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [".resources", ".assessors", "1-mprage", "2-DWI_b1000"]
    );
    let scan = ns.inode(by_name).unwrap();
    assert!(
        scan.xattrs
            .contains(&("user.xnat.type".into(), "DWI b1000".into())),
        "{:?}",
        scan.xattrs
    );
    let subject = ns.inode(resolve(&ns, "/P/sub01").await.unwrap()).unwrap();
    assert!(
        subject
            .xattrs
            .contains(&("user.xnat.label".into(), "sub01".into())),
        "{:?}",
        subject.xattrs
    );
    let session = ns
        .inode(resolve(&ns, "/P/sub01/sub01_MR1").await.unwrap())
        .unwrap();
    assert!(
        session.xattrs.iter().any(|(k, _)| k == "user.xnat.xsitype"),
        "{:?}",
        session.xattrs
    );
    assert_eq!(resolve(&ns, "/P/nobody").await, Err(libc::ENOENT));
    assert_eq!(
        resolve(&ns, "/P/sub00/sub00_MR0/1/NIFTI/a.nii.gz/x").await,
        Err(libc::ENOTDIR)
    );
}

#[tokio::test]
async fn a_project_walk_costs_a_few_requests_per_session() {
    let subjects = 10;
    let (fake, _) = archive(subjects);
    let ns = ns(&fake);
    let mut paths = Vec::new();
    walk(&ns, ROOT_INO, &mut paths, "").await;
    let sessions = subjects * 2;
    assert_eq!(
        paths.iter().filter(|p| p.ends_with(".dcm")).count(),
        sessions * 2 * 2
    );
    // projects + 3 for the project + project .resources, then per subject .resources, and per
    // session scan files + .resources + .assessors.
    let expected = 1 + 3 + 1 + subjects + sessions * 3;
    assert_eq!(fake.total_calls(), expected, "{:?}", fake.calls());
    // Negative and positive lookups come from the cached listings: no new requests.
    let before = fake.total_calls();
    assert!(resolve(&ns, "/P/sub03/missing").await.is_err());
    resolve(&ns, "/P/sub03/sub03_MR1/1-mprage/DICOM/2.dcm")
        .await
        .unwrap();
    assert_eq!(fake.total_calls(), before);
}

#[tokio::test]
async fn hostile_names_neither_escape_nor_collide() {
    let (fake, ids) = archive(1);
    let owner = Owner::Scan {
        experiment: ids.sessions[0].clone(),
        scan: "1".into(),
    };
    for (path, size) in [
        ("..", 1),
        ("../../etc/passwd", 2),
        ("", 3),
        (&"x".repeat(300) as &str, 4),
        ("dup", 5),
        (".hidden", 7),
    ] {
        fake.add_file(&owner, "NIFTI", path, vec![0; size]);
    }
    fake.add_duplicate_entry(&owner, "NIFTI", "dup", vec![0; 6]);
    let ns = ns(&fake);
    let dir = resolve(&ns, "/P/sub00/sub00_MR0/1/NIFTI").await.unwrap();
    let listing = ns.list(dir).await.unwrap();
    let names: Vec<_> = listing.entries.iter().map(|(n, _)| n.clone()).collect();
    for name in &names {
        assert!(
            !name.is_empty() && !name.contains('/') && !name.starts_with('.') && name.len() <= 255,
            "{name:?}"
        );
    }
    assert!(names.contains(&"%2E.".to_string()));
    assert!(names.contains(&"dup".to_string()) && names.contains(&"dup~2".to_string()));
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
    // The folder `..` of `../../etc/passwd` shows as `%2E.~2` (the file `..` took `%2E.`), never the parent.
    let inner = resolve(&ns, "/P/sub00/sub00_MR0/1/NIFTI/%2E.~2/%2E./etc/passwd")
        .await
        .unwrap();
    assert_eq!(ns.inode(inner).unwrap().size(), 2);
}

#[tokio::test]
async fn folders_filled_before_their_parent_keep_their_attributes() {
    let (fake, ids) = archive(1);
    let ns = ns(&fake);
    let attr = |ino: Ino, key: &str| {
        ns.inode(ino)
            .unwrap()
            .xattrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let subject = resolve(&ns, "/P/sub00").await.unwrap();
    assert_eq!(
        attr(subject, "user.xnat.id").as_deref(),
        Some(ids.subjects[0].as_str())
    );
    let session = resolve(&ns, "/P/sub00/sub00_MR0").await.unwrap();
    assert_eq!(
        attr(session, "user.xnat.id").as_deref(),
        Some(ids.sessions[0].as_str())
    );
    let scan = resolve(&ns, "/P/sub00/sub00_MR0/2-DWI_b1000")
        .await
        .unwrap();
    assert_eq!(attr(scan, "user.xnat.type").as_deref(), Some("DWI b1000"));
}

#[tokio::test]
async fn only_the_reserved_folders_keep_a_leading_dot() {
    let fake = FakeXnat::new();
    fake.add_project("P");
    fake.add_subject("P", "sub00");
    let eid = fake.add_session("P", "sub00", "sub00_MR0");
    fake.add_scan(&eid, "1", "");
    let owner = Owner::Scan {
        experiment: eid,
        scan: "1".into(),
    };
    fake.add_file(&owner, "NIFTI", ".resources", vec![0; 1]);
    fake.add_file(&owner, "NIFTI", ".assessors", vec![0; 2]);
    let ns = ns(&fake);
    let dir = resolve(&ns, "/P/sub00/sub00_MR0/1/NIFTI").await.unwrap();
    let listing = ns.list(dir).await.unwrap();
    let names: Vec<_> = listing.entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["%2Eresources", "%2Eassessors"]);
}

#[tokio::test]
async fn a_zero_ttl_still_lists() {
    let (fake, _) = archive(1);
    let ns = Namespace::new(fake, Duration::ZERO, None);
    let dir = resolve(&ns, "/P/sub00/sub00_MR0/1-mprage/NIFTI")
        .await
        .unwrap();
    let listing = ns.list(dir).await.unwrap();
    assert_eq!(listing.entries.len(), 2, "{:?}", listing.entries);
}
