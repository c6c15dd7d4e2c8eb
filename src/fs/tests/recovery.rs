//! After a crash or an unmount with uploads pending (SEMANTICS "Crash or unmount with uploads
//! pending"): the next mount puts every staged file back, finishes what was pending, and keeps
//! what was still open for writing without uploading it.

use super::*;
use crate::xnat::fake::{errors, Call};

#[tokio::test(start_paused = true)]
async fn a_pending_upload_is_finished_by_the_next_mount() {
    let rig = Rig::new(WriteConfig::default());
    rig.fake.fail(Call::Upload, errors::network("PUT"), 1);
    let fh = rig.create(NIFTI, "pending.nii", b"waiting").await.unwrap();
    assert_eq!(rig.close(fh).await.unwrap_err().errno, libc::EIO);
    assert_eq!(
        state_of(&rig.records(), "pending.nii"),
        Some(UploadState::Pending)
    );
    // The mount dies before its retry.
    let rig = rig.remount().await;
    // Back in its folder at once, readable from its stage, and then uploaded.
    let listed = rig.ino(&format!("{NIFTI}/pending.nii")).await.unwrap();
    assert!(listed > 0);
    rig.wait_for("the upload the last mount left", |r| {
        r.on_server("pending.nii").as_deref() == Some(&b"waiting"[..])
    })
    .await;
    rig.wait_for("the spool to empty", |r| r.records().is_empty())
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_file_still_open_at_the_crash_comes_back_but_is_not_uploaded() {
    let rig = Rig::new(WriteConfig::default());
    let _never_closed = rig
        .create(NIFTI, "open.nii", b"half written")
        .await
        .unwrap();
    let rig = rig.remount().await;
    assert_eq!(
        rig.read(&format!("{NIFTI}/open.nii")).await.unwrap(),
        b"half written"
    );
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(rig.fake.count(Call::Upload), 0);
    assert_eq!(
        state_of(&rig.records(), "open.nii"),
        Some(UploadState::Writing)
    );
    // Opened and closed again, it goes up.
    let ino = rig.ino(&format!("{NIFTI}/open.nii")).await.unwrap();
    let fh = rig.core.open_write(ino, false, me()).await.unwrap();
    rig.write(fh, 12, b"!").await.unwrap();
    rig.close(fh).await.unwrap();
    assert_eq!(
        rig.on_server("open.nii").as_deref(),
        Some(&b"half written!"[..])
    );
    assert!(rig.records().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stage_unsynced_before_a_machine_restart_is_kept_and_not_uploaded() {
    let rig = Rig::new(WriteConfig::default());
    rig.fake.fail(Call::Upload, errors::network("PUT"), 1);
    let fh = rig.create(NIFTI, "torn.nii", b"maybe torn").await.unwrap();
    assert!(rig.close(fh).await.is_err());
    // What the record says after an upload that a restart cut short: the stage was unsynced
    // in another boot.
    let dir = rig.spool.join(spool_key("http://fake.invalid", "alice"));
    let mut record = rig.records().pop().unwrap();
    record.unsynced_boot = Some("an-earlier-boot".into());
    std::fs::write(
        dir.join(format!("{}.json", record.id)),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    let rig = rig.remount().await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        rig.fake.count(Call::Upload),
        1,
        "only the first, failed try"
    );
    let records = rig.records();
    assert_eq!(state_of(&records, "torn.nii"), Some(UploadState::Writing));
    assert!(records[0]
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("restarted")));
}

#[tokio::test(start_paused = true)]
async fn a_stage_replaced_by_a_link_is_not_uploaded_and_its_target_untouched() {
    let rig = Rig::new(WriteConfig::default());
    rig.fake.fail(Call::Upload, errors::network("PUT"), 1);
    let fh = rig.create(NIFTI, "linked.nii", b"staged").await.unwrap();
    assert!(rig.close(fh).await.is_err());
    let dir = rig.spool.join(spool_key("http://fake.invalid", "alice"));
    let record = rig.records().into_iter().next().unwrap();
    let data = dir.join(format!("{}.data", record.id));
    // Between mounts, the stage becomes a link to a private file.
    let secret = rig.spool.join("secret.txt");
    std::fs::write(&secret, b"not for the server").unwrap();
    std::fs::remove_file(&data).unwrap();
    std::os::unix::fs::symlink(&secret, &data).unwrap();
    let rig = rig.remount().await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        rig.on_server("linked.nii"),
        None,
        "the link's target was uploaded"
    );
    assert_eq!(std::fs::read(&secret).unwrap(), b"not for the server");
}
