//! `mv` (SEMANTICS "Moving files"): local for a file not on the server yet, upload then delete
//! for one that is (with `--allow-delete`), refused for folders and XNAT objects.

use super::*;
use crate::xnat::fake::Call;

#[tokio::test]
async fn a_file_not_uploaded_yet_moves_locally() {
    let rig = Rig::new(WriteConfig::default());
    let nifti = rig.ino(NIFTI).await.unwrap();
    let fh = rig.create(NIFTI, "out.tmp", b"result").await.unwrap();
    rig.core
        .rename(nifti, b"out.tmp", nifti, b"out.nii", false)
        .await
        .unwrap();
    assert_eq!(
        rig.fake.total_calls(),
        rig.fake.count(Call::Projects) + 3 + 1
    );
    rig.close(fh).await.unwrap();
    assert_eq!(rig.on_server("out.nii").as_deref(), Some(&b"result"[..]));
    assert!(rig.on_server("out.tmp").is_none());
    assert_eq!(rig.fake.count(Call::Delete), 0);
}

#[tokio::test]
async fn a_server_file_moves_by_upload_then_delete_with_allow_delete() {
    let rig = Rig::new(WriteConfig::default());
    let nifti = rig.ino(NIFTI).await.unwrap();
    let err = rig
        .core
        .rename(nifti, b"t1.nii", nifti, b"T1w.nii", false)
        .await
        .unwrap_err();
    assert_eq!(err.errno, libc::EPERM);
    assert!(rig.on_server("T1w.nii").is_none() && rig.on_server("t1.nii").is_some());

    let rig = Rig::deleting();
    let nifti = rig.ino(NIFTI).await.unwrap();
    let before = rig.ino(&format!("{NIFTI}/t1.nii")).await.unwrap();
    rig.core
        .rename(nifti, b"t1.nii", nifti, b"T1w.nii", false)
        .await
        .unwrap();
    assert_eq!(rig.on_server("T1w.nii").as_deref(), Some(T1));
    assert!(rig.on_server("t1.nii").is_none());
    assert_eq!(rig.ino(&format!("{NIFTI}/T1w.nii")).await.unwrap(), before);
    assert!(rig.records().is_empty());
}

#[tokio::test]
async fn renames_that_cannot_be_are_refused() {
    let rig = Rig::deleting();
    let nifti = rig.ino(NIFTI).await.unwrap();
    let folder = rig.core.mkdir(nifti, b"sub").await.unwrap();
    let err = rig
        .core
        .rename(nifti, b"sub", nifti, b"sub2", false)
        .await
        .unwrap_err();
    assert_eq!(err.errno, libc::EXDEV);
    let session = rig.ino("P/s1/s1_MR1").await.unwrap();
    let err = rig
        .core
        .rename(session, b"1-T1w", session, b"2-T1w", false)
        .await
        .unwrap_err();
    assert_eq!(err.errno, libc::EPERM);
    let fh = rig.create(NIFTI, "a.txt", b"a").await.unwrap();
    rig.close(fh).await.unwrap();
    let err = rig
        .core
        .rename(nifti, b"a.txt", nifti, b"t1.nii", true)
        .await
        .unwrap_err();
    assert_eq!(err.errno, libc::EEXIST);
    // Files go only into resources.
    let err = rig
        .core
        .rename(nifti, b"a.txt", session, b"a.txt", false)
        .await
        .unwrap_err();
    assert_eq!(err.errno, libc::EPERM);
    // Replacing a target replaces it on the server.
    rig.core
        .rename(nifti, b"a.txt", folder.ino, b"a.txt", false)
        .await
        .unwrap();
    rig.core
        .rename(folder.ino, b"a.txt", nifti, b"t1.nii", false)
        .await
        .unwrap();
    assert_eq!(rig.on_server("t1.nii").as_deref(), Some(&b"a"[..]));
    assert!(rig.on_server("a.txt").is_none() && rig.on_server("sub/a.txt").is_none());
}
