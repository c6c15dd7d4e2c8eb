//! Unit tests of the namespace over the fake catalog: the tree, names and request counts.

use std::sync::Arc;
use std::time::Duration;

use super::catalog::*;
use super::fake::FakeCatalog;
use super::inode::{Ino, ROOT_INO};
use super::namespace::Namespace;
use super::node::{Node, Owner};

fn file(path: &str, size: u64) -> FileRow {
    FileRow {
        path: path.into(),
        size: Some(size),
        digest: None,
        uri: String::new(),
        ..FileRow::default()
    }
}

/// Project P: `subjects` subjects with two sessions each, two scans per session with NIFTI and
/// DICOM resources of two files each.
fn archive(subjects: usize) -> FakeCatalog {
    let mut cat = FakeCatalog {
        projects: vec![ProjectRow {
            id: "P".into(),
            name: "Project P".into(),
        }],
        ..FakeCatalog::default()
    };
    let mut subject_rows = Vec::new();
    let mut experiments = Vec::new();
    let mut scans = Vec::new();
    for s in 0..subjects {
        let sid = format!("XNAT_S{s:05}");
        subject_rows.push(SubjectRow {
            id: sid.clone(),
            label: format!("sub{s:02}"),
        });
        for e in 0..2 {
            let eid = format!("XNAT_E{s:03}{e:02}");
            experiments.push(ExperimentRow {
                id: eid.clone(),
                label: format!("sub{s:02}_MR{e}"),
                subject_id: sid.clone(),
                xsi_type: "xnat:mrSessionData".into(),
                date: String::new(),
            });
            for (scan, scan_type) in [("1", "mprage"), ("2", "DWI b1000")] {
                scans.push(ScanRow {
                    experiment_id: eid.clone(),
                    id: scan.into(),
                    scan_type: scan_type.into(),
                    resources: vec!["NIFTI".into(), "DICOM".into()],
                    ..ScanRow::default()
                });
                let owner = Owner::Scan {
                    experiment: eid.clone(),
                    scan: scan.into(),
                };
                cat.files.insert(
                    (owner.clone(), "NIFTI".into()),
                    vec![file("a.nii.gz", 10), file("deep/er/b.json", 3)],
                );
                cat.files.insert(
                    (owner, "DICOM".into()),
                    vec![file("1.dcm", 5), file("2.dcm", 5)],
                );
            }
        }
    }
    cat.subjects.insert("P".into(), subject_rows);
    cat.experiments.insert("P".into(), experiments);
    cat.scans.insert("P".into(), scans);
    cat
}

fn ns(cat: FakeCatalog) -> Namespace<FakeCatalog> {
    Namespace::new(Arc::new(cat), Duration::from_secs(60), None)
}

async fn walk(ns: &Namespace<FakeCatalog>, dir: Ino, out: &mut Vec<String>, prefix: &str) {
    let listing = ns.list(dir).await.unwrap();
    for (name, ino) in &listing.entries {
        let path = format!("{prefix}/{name}");
        out.push(path.clone());
        if ns.inode(*ino).unwrap().is_dir() {
            Box::pin(walk(ns, *ino, out, &path)).await;
        }
    }
}

async fn resolve(ns: &Namespace<FakeCatalog>, path: &str) -> Result<Ino, i32> {
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
    let ns = ns(archive(2));
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
    let ns = ns(archive(subjects));
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
    assert_eq!(
        ns.catalog().calls(),
        expected,
        "{:?}",
        ns.catalog().log.lock().unwrap()
    );
    // Negative and positive lookups come from the cached listings: no new requests.
    let before = ns.catalog().calls();
    assert!(resolve(&ns, "/P/sub03/missing").await.is_err());
    resolve(&ns, "/P/sub03/sub03_MR1/1-mprage/DICOM/2.dcm")
        .await
        .unwrap();
    assert_eq!(ns.catalog().calls(), before);
}

#[tokio::test]
async fn hostile_names_neither_escape_nor_collide() {
    let mut cat = archive(1);
    let owner = Owner::Scan {
        experiment: "XNAT_E00000".into(),
        scan: "1".into(),
    };
    cat.files.insert(
        (owner, "NIFTI".into()),
        vec![
            file("..", 1),
            file("../../etc/passwd", 2),
            file("", 3),
            file(&"x".repeat(300), 4),
            file("dup", 5),
            file("dup", 6),
            file(".hidden", 7),
        ],
    );
    let ns = ns(cat);
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
    let ns = ns(archive(1));
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
        Some("XNAT_S00000")
    );
    let session = resolve(&ns, "/P/sub00/sub00_MR0").await.unwrap();
    assert_eq!(
        attr(session, "user.xnat.id").as_deref(),
        Some("XNAT_E00000")
    );
    let scan = resolve(&ns, "/P/sub00/sub00_MR0/2-DWI_b1000")
        .await
        .unwrap();
    assert_eq!(attr(scan, "user.xnat.type").as_deref(), Some("DWI b1000"));
}

#[tokio::test]
async fn only_the_reserved_folders_keep_a_leading_dot() {
    let mut cat = archive(1);
    cat.files.insert(
        (
            Owner::Scan {
                experiment: "XNAT_E00000".into(),
                scan: "1".into(),
            },
            "NIFTI".into(),
        ),
        vec![file(".resources", 1), file(".assessors", 2)],
    );
    let ns = ns(cat);
    let dir = resolve(&ns, "/P/sub00/sub00_MR0/1/NIFTI").await.unwrap();
    let listing = ns.list(dir).await.unwrap();
    let names: Vec<_> = listing.entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["%2Eresources", "%2Eassessors"]);
}

#[tokio::test]
async fn a_zero_ttl_still_lists() {
    let ns = Namespace::new(Arc::new(archive(1)), Duration::ZERO, None);
    let dir = resolve(&ns, "/P/sub00/sub00_MR0/1-mprage/NIFTI")
        .await
        .unwrap();
    let listing = ns.list(dir).await.unwrap();
    assert_eq!(listing.entries.len(), 2, "{:?}", listing.entries);
}
