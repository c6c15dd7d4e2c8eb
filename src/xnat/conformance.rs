//! One suite of [`Backend`] behaviour, run against the real client (over xnat-sim on
//! loopback, Range off and on) and against the fake the core's tests use, so that the fake
//! keeps to the answers the client really gives.
//!
//! Each run starts from an empty project `P` the user may write to, and makes everything
//! else through the backend itself.

use std::sync::Arc;

use super::address::{FileAddr, NewObject, Owner, Removal};
use super::backend::Backend;
use super::error::XnatError;
use super::fake::FakeXnat;
use super::{ClientConfig, RetryPolicy, XnatClient};

async fn body(
    backend: &dyn Backend,
    uri: &str,
    range: Option<std::ops::Range<u64>>,
) -> (bool, u64, Vec<u8>) {
    use futures::StreamExt;
    let mut d = backend.fetch(uri, range).await.expect("fetch");
    let mut out = Vec::new();
    while let Some(chunk) = d.body.next().await {
        out.extend_from_slice(&chunk.expect("body"));
    }
    (d.partial, d.offset, out)
}

/// The suite: objects made, listed, files uploaded, fetched, refused, replaced, deleted.
async fn suite(backend: &dyn Backend, ranges: bool) {
    let p = "P".to_string();
    let projects = backend.projects().await.unwrap();
    assert!(projects.iter().any(|x| x.id == p), "{projects:?}");

    // Objects.
    let new_subject = NewObject::Subject {
        project: p.clone(),
        label: "s1".into(),
    };
    let made = backend.create(&new_subject).await.unwrap();
    assert!(!made.existed && made.id.starts_with("XNAT_S"), "{made:?}");
    assert!(backend.create(&new_subject).await.unwrap().existed);
    let untyped = NewObject::Experiment {
        project: p.clone(),
        subject: "s1".into(),
        label: "s1_MR1".into(),
        xsi_type: String::new(),
    };
    let err = backend.create(&untyped).await.unwrap_err();
    assert_eq!(err.errno(), libc::EINVAL, "{err}");
    let session = NewObject::Experiment {
        project: p.clone(),
        subject: "s1".into(),
        label: "s1_MR1".into(),
        xsi_type: "xnat:mrSessionData".into(),
    };
    let made = backend.create(&session).await.unwrap();
    assert!(!made.existed, "{made:?}");
    let experiments = backend.experiments(&p).await.unwrap();
    let e = experiments
        .iter()
        .find(|e| e.label == "s1_MR1")
        .expect("listed");
    let subjects = backend.subjects(&p).await.unwrap();
    let s = subjects.iter().find(|s| s.label == "s1").expect("listed");
    assert_eq!(e.subject_id, s.id);
    let eid = e.id.clone();
    backend
        .create(&NewObject::Scan {
            experiment: eid.clone(),
            id: "3".into(),
            scan_type: "T1w".into(),
            xsi_type: "xnat:mrScanData".into(),
        })
        .await
        .unwrap();
    let scan = Owner::Scan {
        experiment: eid.clone(),
        scan: "3".into(),
    };
    let new_resource = NewObject::Resource {
        owner: scan.clone(),
        label: "NIFTI".into(),
    };
    backend.create(&new_resource).await.unwrap();
    let err = backend.create(&new_resource).await.unwrap_err();
    assert!(matches!(err, XnatError::Conflict { .. }), "{err}");
    assert_eq!(err.errno(), libc::EEXIST);

    // Files.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("stage");
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&local, &data).unwrap();
    let file = FileAddr {
        owner: scan.clone(),
        resource: "NIFTI".into(),
        path: "sub dir/a b#1.nii".into(),
    };
    let sent = backend.upload(&file, &local, false, None).await.unwrap();
    assert_eq!(sent.size, data.len() as u64);
    let files = backend.files(&scan, "NIFTI").await.unwrap();
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!(f.path, file.path);
    assert_eq!(f.size, Some(data.len() as u64));
    assert_eq!(f.digest.as_deref(), Some(sent.md5.as_str()));
    assert_eq!(f.collection, "NIFTI");
    let scans = backend.scans(&p).await.unwrap();
    let listed = scans
        .iter()
        .find(|x| x.experiment_id == eid && x.id == "3")
        .unwrap();
    assert_eq!(listed.scan_type, "T1w");
    assert_eq!(listed.resources, vec!["NIFTI".to_string()]);
    let resources = backend.resources(&scan).await.unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].label, "NIFTI");
    // A resource by its numeric ID, as listings name it.
    let by_id = backend.files(&scan, &resources[0].id).await.unwrap();
    assert_eq!(by_id.len(), 1);
    let session_files = backend.scan_files(&eid).await.unwrap();
    assert_eq!(session_files.len(), 1);
    assert_eq!(session_files[0].scan_id, "3");
    assert_eq!(session_files[0].resource_label(), "NIFTI");
    assert_eq!(session_files[0].file.uri, f.uri);

    let (partial, offset, got) = body(backend, &f.uri, None).await;
    assert!(!partial && offset == 0 && got == data);
    let (partial, offset, got) = body(backend, &f.uri, Some(1000..2000)).await;
    assert_eq!(partial, ranges);
    if ranges {
        assert_eq!((offset, got.as_slice()), (1000, &data[1000..2000]));
        let err = backend
            .fetch(&f.uri, Some(60_000..u64::MAX))
            .await
            .expect_err("a range past the end");
        match err {
            XnatError::RangeNotSatisfiable { size, .. } => assert_eq!(size, Some(50_000)),
            other => panic!("expected 416, got {other}"),
        }
    } else {
        assert_eq!((offset, got), (0, data.clone()));
    }

    // No replace: refused, the server keeps its file. Replace: replaced.
    std::fs::write(&local, b"second").unwrap();
    let err = backend
        .upload(&file, &local, false, None)
        .await
        .unwrap_err();
    assert!(matches!(err, XnatError::Duplicate { .. }), "{err}");
    assert_eq!(err.errno(), libc::EEXIST);
    assert!(!err.retryable());
    assert_eq!(body(backend, &f.uri, None).await.2, data);
    backend.upload(&file, &local, true, None).await.unwrap();
    let f = backend.files(&scan, "NIFTI").await.unwrap().remove(0);
    assert_eq!(f.size, Some(6));
    assert_eq!(body(backend, &f.uri, None).await.2, b"second");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let empty_file = FileAddr {
        path: "empty.txt".into(),
        ..file.clone()
    };
    let sent = backend
        .upload(&empty_file, &empty, false, None)
        .await
        .unwrap();
    assert_eq!(sent.md5, "d41d8cd98f00b204e9800998ecf8427e");

    // A resource made by an upload into it.
    let other = FileAddr {
        owner: Owner::Experiment {
            experiment: eid.clone(),
        },
        resource: "STATS".into(),
        path: "stats.txt".into(),
    };
    backend.upload(&other, &local, false, None).await.unwrap();
    let labels: Vec<String> = backend
        .resources(&other.owner)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.label)
        .collect();
    assert_eq!(labels, vec!["STATS".to_string()]);

    // What is not there.
    let missing = format!("{}x", f.uri);
    let err = backend.fetch(&missing, None).await.expect_err("404");
    assert!(err.is_not_found() && err.errno() == libc::ENOENT, "{err}");
    let ghost = Owner::Scan {
        experiment: eid.clone(),
        scan: "99".into(),
    };
    let err = backend.resources(&ghost).await.unwrap_err();
    assert_eq!(err.errno(), libc::ENOENT, "{err}");
    let err = backend.files(&scan, "NOPE").await.unwrap_err();
    assert_eq!(err.errno(), libc::ENOENT, "{err}");

    // Deletes: a file (twice: a path not in the catalog is a no-op), a scan, a subject.
    backend.delete(&Removal::File(file.clone())).await.unwrap();
    backend.delete(&Removal::File(file.clone())).await.unwrap();
    let left: Vec<String> = backend
        .files(&scan, "NIFTI")
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(left, vec!["empty.txt".to_string()]);
    backend
        .delete(&Removal::Scan {
            experiment: eid.clone(),
            scan: "3".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        backend.resources(&scan).await.unwrap_err().errno(),
        libc::ENOENT
    );
    backend
        .delete(&Removal::Subject {
            project: p.clone(),
            subject: "s1".into(),
        })
        .await
        .unwrap();
    assert!(backend
        .subjects(&p)
        .await
        .unwrap()
        .iter()
        .all(|s| s.label != "s1"));
    let err = backend
        .delete(&Removal::Experiment {
            experiment: "XNAT_E99999".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.errno(), libc::ENOENT, "{err}");
}

async fn against_the_sim(ranges: bool) {
    let dir = tempfile::tempdir().unwrap();
    let config = xnat_sim::SimConfig {
        root: dir.path().to_path_buf(),
        users: vec![("alice".into(), "secret".into())],
        ..Default::default()
    };
    let server = xnat_sim::SimServer::start(config).await.unwrap();
    server
        .store()
        .write(|a| {
            a.add_project("P", "alice");
        })
        .unwrap();
    server.set_faults(xnat_sim::Faults {
        range: ranges,
        ..Default::default()
    });
    let mut config = ClientConfig::new(server.url(), "alice", "secret");
    config.retry = RetryPolicy::never();
    let client = XnatClient::connect(config).await.unwrap();
    suite(&client, ranges).await;
    server.stop().await;
}

fn empty_fake(ranges: bool) -> Arc<FakeXnat> {
    let fake = FakeXnat::with_ranges(ranges);
    fake.add_project("P");
    fake
}

#[tokio::test]
async fn the_client_over_xnat_sim_range_off() {
    against_the_sim(false).await;
}

#[tokio::test]
async fn the_client_over_xnat_sim_range_on() {
    against_the_sim(true).await;
}

#[tokio::test]
async fn the_fake_range_off() {
    suite(empty_fake(false).as_ref(), false).await;
}

#[tokio::test]
async fn the_fake_range_on() {
    suite(empty_fake(true).as_ref(), true).await;
}
