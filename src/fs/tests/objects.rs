//! `mkdir`, `rm` and `rmdir` (SEMANTICS "Making folders" and "Deleting"): which XNAT object
//! each makes or deletes, and what needs `--allow-delete`.

use super::*;
use crate::xnat::fake::Call;

#[tokio::test]
async fn mkdir_makes_the_object_its_level_implies() {
    let rig = Rig::new(WriteConfig::default());
    let p = rig.ino("P").await.unwrap();
    let s2 = rig.core.mkdir(p, b"s2").await.unwrap();
    assert_eq!(rig.fake.subject_labels("P"), vec!["s1", "s2"]);
    let session = rig.core.mkdir(s2.ino, b"s2_MR1").await.unwrap();
    assert!(
        session
            .xattrs
            .contains(&("user.xnat.xsitype".into(), "xnat:mrSessionData".into())),
        "{:?}",
        session.xattrs
    );
    let scan = rig.core.mkdir(session.ino, b"5-T2w").await.unwrap();
    assert!(scan
        .xattrs
        .contains(&("user.xnat.type".into(), "T2w".into())));
    assert_eq!(rig.ino("P/s2/s2_MR1/5-T2w").await.unwrap(), scan.ino);
    let resource = rig.core.mkdir(scan.ino, b"NIFTI").await.unwrap();
    let creates = rig.fake.count(Call::Create);
    assert_eq!(creates, 4);
    // Inside a resource: a local folder, no request, until a file lands in it.
    let folder = rig.core.mkdir(resource.ino, b"sub").await.unwrap();
    assert_eq!(rig.fake.count(Call::Create), creates);
    let (_, fh) = rig.core.create(folder.ino, b"f.txt", me()).await.unwrap();
    rig.write(fh, 0, b"deep").await.unwrap();
    rig.close(fh).await.unwrap();
    let session_id = session
        .xattrs
        .iter()
        .find(|(k, _)| k == "user.xnat.id")
        .map(|(_, v)| v.clone())
        .unwrap();
    let owner = crate::xnat::Owner::Scan {
        experiment: session_id,
        scan: "5".into(),
    };
    assert_eq!(
        rig.fake.file_bytes(&owner, "NIFTI", "sub/f.txt").as_deref(),
        Some(&b"deep"[..])
    );
}

#[tokio::test]
async fn mkdir_refuses_what_xnat_cannot_make() {
    let rig = Rig::new(WriteConfig::default());
    let root = crate::fs::inode::ROOT_INO;
    let err = rig.core.mkdir(root, b"P2").await.unwrap_err();
    assert_eq!(err.errno, libc::EPERM);
    let assessors = rig.ino("P/s1/s1_MR1/.assessors").await.unwrap();
    assert_eq!(
        rig.core.mkdir(assessors, b"QC").await.unwrap_err().errno,
        libc::EPERM
    );
    let session = rig.ino("P/s1/s1_MR1").await.unwrap();
    for bad in [&b"T2 w"[..], b"-T1", b"5-T2 w"] {
        let err = rig.core.mkdir(session, bad).await.unwrap_err();
        assert_eq!(
            err.errno,
            libc::EINVAL,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let p = rig.ino("P").await.unwrap();
    assert_eq!(
        rig.core.mkdir(p, b"s1").await.unwrap_err().errno,
        libc::EEXIST
    );
    // A subject someone else made since the listing: the server answers 200, not 201.
    rig.fake.add_subject("P", "late");
    assert_eq!(
        rig.core.mkdir(p, b"late").await.unwrap_err().errno,
        libc::EEXIST
    );
    assert_eq!(rig.fake.count(Call::Create), 1);
}

#[tokio::test]
async fn deleting_server_data_needs_allow_delete() {
    let rig = Rig::new(WriteConfig::default());
    let nifti = rig.ino(NIFTI).await.unwrap();
    let err = rig.core.unlink(nifti, b"t1.nii").await.unwrap_err();
    assert_eq!(err.errno, libc::EPERM);
    assert!(err.message.contains("--allow-delete"), "{err}");
    assert_eq!(err.level, tracing::Level::WARN);
    let session = rig.ino("P/s1/s1_MR1").await.unwrap();
    assert_eq!(
        rig.core.rmdir(session, b"1-T1w").await.unwrap_err().errno,
        libc::ENOTEMPTY
    );
    assert_eq!(rig.fake.count(Call::Delete), 0);
    assert!(rig.on_server("t1.nii").is_some());
    // A file that never reached the server is local: removed without the flag or a request.
    let fh = rig.create(NIFTI, "tmp.txt", b"scratch").await.unwrap();
    rig.core.unlink(nifti, b"tmp.txt").await.unwrap();
    // Still readable and writable through the open descriptor, and never uploaded.
    rig.write(fh, 0, b"S").await.unwrap();
    rig.close(fh).await.unwrap();
    assert_eq!(rig.fake.count(Call::Upload), 0);
    assert!(rig.records().is_empty());
    assert_eq!(
        rig.ino(&format!("{NIFTI}/tmp.txt"))
            .await
            .unwrap_err()
            .errno,
        libc::ENOENT
    );
}

#[tokio::test]
async fn with_allow_delete_rm_and_rmdir_delete_on_the_server() {
    let rig = Rig::deleting();
    let nifti = rig.ino(NIFTI).await.unwrap();
    rig.core.unlink(nifti, b"t1.nii").await.unwrap();
    assert!(rig.on_server("t1.nii").is_none());
    // The resource is empty now; the scan then holds nothing either.
    let scan = rig.ino("P/s1/s1_MR1/1-T1w").await.unwrap();
    rig.core.rmdir(scan, b"NIFTI").await.unwrap();
    let session = rig.ino("P/s1/s1_MR1").await.unwrap();
    rig.core.rmdir(session, b"1-T1w").await.unwrap();
    let s1 = rig.ino("P/s1").await.unwrap();
    rig.core.rmdir(s1, b"s1_MR1").await.unwrap();
    let p = rig.ino("P").await.unwrap();
    rig.core.rmdir(p, b"s1").await.unwrap();
    assert!(rig.fake.subject_labels("P").is_empty());
    assert_eq!(rig.fake.count(Call::Delete), 5);
    // Projects are not removed through the mount.
    let root = crate::fs::inode::ROOT_INO;
    assert_eq!(
        rig.core.rmdir(root, b"P").await.unwrap_err().errno,
        libc::EPERM
    );
}

#[tokio::test]
async fn a_file_already_gone_on_the_server_counts_as_deleted() {
    let rig = Rig::deleting();
    let nifti = rig.ino(NIFTI).await.unwrap();
    rig.fake.fail(
        Call::Delete,
        crate::xnat::fake::errors::status("DELETE", 404),
        1,
    );
    rig.core.unlink(nifti, b"t1.nii").await.unwrap();
    assert_eq!(
        rig.ino(&format!("{NIFTI}/t1.nii")).await.unwrap_err().errno,
        libc::ENOENT
    );
}
