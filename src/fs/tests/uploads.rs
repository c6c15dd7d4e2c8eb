//! Files staged and uploaded on close (SEMANTICS "Files: staged, uploaded on close" and
//! "Nothing written is lost"): what the server gets, when, and what `close` returns.

use super::*;
use crate::xnat::fake::{errors, Call};

#[tokio::test]
async fn a_new_file_is_uploaded_at_its_close_and_checked_against_the_listing() {
    let rig = Rig::new(WriteConfig::default());
    let fh = rig.create(NIFTI, "out.nii", b"brain").await.unwrap();
    let ino = rig.ino(&format!("{NIFTI}/out.nii")).await.unwrap();
    assert_eq!(
        rig.fake.count(Call::Upload),
        0,
        "nothing goes up before the close"
    );
    assert_eq!(
        state_of(&rig.records(), "out.nii"),
        Some(UploadState::Writing)
    );
    rig.close(fh).await.unwrap();
    assert_eq!(rig.on_server("out.nii").as_deref(), Some(&b"brain"[..]));
    // Checked: the listing was read back after the upload.
    let calls = rig.fake.calls();
    let upload = calls.iter().position(|(c, _)| *c == Call::Upload).unwrap();
    assert!(calls[upload..].iter().any(|(c, _)| *c == Call::Files));
    // The same inode, now the server's version, with its digest; no record left.
    let inode = rig.core.namespace().inode(ino).unwrap();
    assert_eq!(rig.ino(&format!("{NIFTI}/out.nii")).await.unwrap(), ino);
    assert_eq!(inode.size(), 5);
    use md5::{Digest, Md5};
    let digest = format!("{:x}", Md5::digest(b"brain"));
    assert!(
        inode
            .xattrs
            .contains(&("user.xnat.digest".to_string(), digest)),
        "{:?}",
        inode.xattrs
    );
    assert!(rig.records().is_empty(), "{:?}", rig.records());
    assert_eq!(
        rig.read(&format!("{NIFTI}/out.nii")).await.unwrap(),
        b"brain"
    );
}

#[tokio::test]
async fn a_close_with_nothing_new_uploads_nothing() {
    let rig = Rig::new(WriteConfig::default());
    let fh = rig.create(NIFTI, "a.txt", b"x").await.unwrap();
    rig.core.flush(fh, me()).await.unwrap();
    rig.core.flush(fh, me()).await.unwrap();
    rig.core.fsync(fh).await.unwrap();
    assert_eq!(rig.fake.count(Call::Upload), 1);
    // A write after the upload goes up at the next close.
    rig.write(fh, 1, b"y").await.unwrap();
    rig.close(fh).await.unwrap();
    assert_eq!(rig.fake.count(Call::Upload), 2);
    assert_eq!(rig.on_server("a.txt").as_deref(), Some(&b"xy"[..]));
}

#[tokio::test]
async fn only_a_close_in_the_opening_process_uploads() {
    let rig = Rig::new(WriteConfig::default());
    let fh = rig.create(NIFTI, "half.txt", b"half").await.unwrap();
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let copy_closed = rig.core.flush(fh, other.id()).await;
    other.kill().unwrap();
    other.wait().unwrap();
    copy_closed.unwrap();
    assert_eq!(
        rig.fake.count(Call::Upload),
        0,
        "a copy's close uploads nothing"
    );
    rig.write(fh, 4, b" and the rest").await.unwrap();
    rig.close(fh).await.unwrap();
    assert_eq!(
        rig.on_server("half.txt").as_deref(),
        Some(&b"half and the rest"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn an_upload_the_listing_contradicts_fails_and_is_retried_in_the_background() {
    let rig = Rig::new(WriteConfig::default());
    rig.fake.damage_uploads(1);
    let fh = rig.create(NIFTI, "scan.nii", b"volume").await.unwrap();
    let err = rig.close(fh).await.unwrap_err();
    assert_eq!(err.errno, libc::EIO, "{err}");
    assert!(err.message.contains("retried"), "{err}");
    assert_eq!(
        state_of(&rig.records(), "scan.nii"),
        Some(UploadState::Pending)
    );
    // Readable from its stage while it waits.
    assert_eq!(
        rig.read(&format!("{NIFTI}/scan.nii")).await.unwrap(),
        b"volume"
    );
    rig.wait_for("the background retry", |r| {
        r.on_server("scan.nii").as_deref() == Some(&b"volume"[..]) && r.records().is_empty()
    })
    .await;
    assert_eq!(rig.fake.count(Call::Upload), 2);
}

#[tokio::test(start_paused = true)]
async fn an_upload_whose_answer_was_lost_counts_when_the_server_has_the_same_bytes() {
    let rig = Rig::new(WriteConfig::default());
    rig.fake.lose_upload_answers(1);
    let fh = rig
        .create(NIFTI, "lost.txt", b"stored anyway")
        .await
        .unwrap();
    let err = rig.close(fh).await.unwrap_err();
    assert_eq!(err.errno, libc::EIO, "{err}");
    // The retry meets the file its first attempt stored: XNAT answers "duplicates", the
    // listing shows this stage's size and digest, and that is success, not EEXIST.
    rig.wait_for("the retry", |r| r.records().is_empty()).await;
    assert_eq!(rig.fake.count(Call::Upload), 2);
    assert_eq!(
        rig.on_server("lost.txt").as_deref(),
        Some(&b"stored anyway"[..])
    );
}

#[tokio::test]
async fn a_name_taken_on_the_server_since_the_listing_is_eexist_and_the_server_file_stays() {
    let rig = Rig::new(WriteConfig::default());
    rig.ino(NIFTI).await.unwrap();
    let fh = rig.create(NIFTI, "clash.txt", b"mine").await.unwrap();
    rig.fake.add_file(
        &scan(&rig.session),
        "NIFTI",
        "clash.txt",
        b"theirs".to_vec(),
    );
    let err = rig.close(fh).await.unwrap_err();
    assert_eq!(err.errno, libc::EEXIST, "{err}");
    assert_eq!(rig.on_server("clash.txt").as_deref(), Some(&b"theirs"[..]));
    // Kept as failed, for a person: not retried in the background.
    assert_eq!(
        state_of(&rig.records(), "clash.txt"),
        Some(UploadState::Failed)
    );
}

#[tokio::test(start_paused = true)]
async fn a_refusal_waits_for_the_next_mount_and_a_network_failure_is_retried() {
    let rig = Rig::new(WriteConfig::default());
    rig.fake.fail(Call::Upload, errors::status("PUT", 403), 1);
    let fh = rig.create(NIFTI, "refused.txt", b"no").await.unwrap();
    let err = rig.close(fh).await.unwrap_err();
    assert_eq!(err.errno, libc::EACCES, "{err}");
    assert!(err.message.contains("next mount"), "{err}");
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(rig.fake.count(Call::Upload), 1, "a refusal is not retried");
    assert_eq!(
        state_of(&rig.records(), "refused.txt"),
        Some(UploadState::Failed)
    );

    rig.fake.fail(Call::Upload, errors::exhausted("PUT"), 2);
    let fh = rig.create(NIFTI, "flaky.txt", b"yes").await.unwrap();
    assert_eq!(rig.close(fh).await.unwrap_err().errno, libc::EIO);
    rig.wait_for("the retries", |r| r.on_server("flaky.txt").is_some())
        .await;
    assert_eq!(rig.on_server("flaky.txt").as_deref(), Some(&b"yes"[..]));
}

#[tokio::test]
async fn opening_an_existing_file_replaces_it_on_close() {
    let rig = Rig::new(WriteConfig::default());
    let ino = rig.ino(&format!("{NIFTI}/t1.nii")).await.unwrap();
    // O_TRUNC: an empty stage, nothing fetched.
    let fh = rig.core.open_write(ino, true, me()).await.unwrap();
    assert_eq!(rig.fake.count(Call::Fetch), 0);
    rig.write(fh, 0, b"new").await.unwrap();
    rig.close(fh).await.unwrap();
    assert_eq!(rig.on_server("t1.nii").as_deref(), Some(&b"new"[..]));
    // Without O_TRUNC: the server's bytes first, then the change (an append).
    let fh = rig.core.open_write(ino, false, me()).await.unwrap();
    rig.write(fh, 3, b" and more").await.unwrap();
    rig.close(fh).await.unwrap();
    assert_eq!(
        rig.on_server("t1.nii").as_deref(),
        Some(&b"new and more"[..])
    );
}

#[tokio::test]
async fn truncate_by_path_uploads_at_once_and_through_a_handle_at_the_close() {
    let rig = Rig::new(WriteConfig::default());
    let ino = rig.ino(&format!("{NIFTI}/t1.nii")).await.unwrap();
    let inode = rig.core.set_size(ino, None, 7).await.unwrap();
    assert_eq!(rig.core.size_of(&inode), 7);
    assert_eq!(rig.on_server("t1.nii").as_deref(), Some(&T1[..7]));
    let fh = rig.core.open_write(ino, false, me()).await.unwrap();
    rig.core.set_size(ino, Some(fh), 3).await.unwrap();
    assert_eq!(rig.on_server("t1.nii").as_deref(), Some(&T1[..7]));
    rig.close(fh).await.unwrap();
    assert_eq!(rig.on_server("t1.nii").as_deref(), Some(&T1[..3]));
}

#[tokio::test]
async fn a_file_being_written_reads_from_its_stage() {
    let rig = Rig::new(WriteConfig::default());
    let fh = rig.create(NIFTI, "live.txt", b"draft").await.unwrap();
    assert_eq!(
        rig.read(&format!("{NIFTI}/live.txt")).await.unwrap(),
        b"draft"
    );
    let ino = rig.ino(&format!("{NIFTI}/t1.nii")).await.unwrap();
    let reader = rig.core.open(ino).await.unwrap().0;
    let writer = rig.core.open_write(ino, true, me()).await.unwrap();
    rig.write(writer, 0, b"edited").await.unwrap();
    // A handle opened before the file was staged reads the newer bytes too.
    let got = rig.core.read(ino, reader, 0, 100).await.unwrap();
    assert_eq!(&got.data[..], b"edited");
    rig.core.release(reader).await;
    rig.close(writer).await.unwrap();
    rig.close(fh).await.unwrap();
}

#[tokio::test]
async fn names_outside_a_resource_or_reserved_by_xnat_are_refused() {
    let rig = Rig::new(WriteConfig::default());
    let err = rig.create("P/s1", "x.txt", b"").await.unwrap_err();
    assert_eq!(err.errno, libc::EPERM);
    let err = rig.create(NIFTI, "a_catalog.xml", b"").await.unwrap_err();
    assert_eq!(err.errno, libc::EINVAL);
    let err = rig.create(NIFTI, "t1.nii", b"").await.unwrap_err();
    assert_eq!(err.errno, libc::EEXIST);
    // A typed name maps back through the escaping.
    let fh = rig.create(NIFTI, "%2Ehidden", b"h").await.unwrap();
    rig.close(fh).await.unwrap();
    assert_eq!(rig.on_server(".hidden").as_deref(), Some(&b"h"[..]));
}

#[tokio::test]
async fn a_read_only_mount_refuses_every_change() {
    let rig = Rig::new(WriteConfig::default());
    let ro = rig.read_only();
    let root = crate::fs::inode::ROOT_INO;
    let p = ro.namespace().lookup(root, b"P").await.unwrap().ino;
    assert_eq!(ro.mkdir(p, b"s2").await.unwrap_err().errno, libc::EROFS);
    assert_eq!(
        ro.create(p, b"f", me()).await.unwrap_err().errno,
        libc::EROFS
    );
    assert_eq!(ro.unlink(p, b"s1").await.unwrap_err().errno, libc::EROFS);
    assert_eq!(ro.rmdir(p, b"s1").await.unwrap_err().errno, libc::EROFS);
    assert_eq!(
        ro.set_size(p, None, 0).await.unwrap_err().errno,
        libc::EROFS
    );
    assert!(ro.spool_space().is_none());
    assert_eq!(
        rig.fake.count(Call::Create) + rig.fake.count(Call::Delete),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn an_upload_the_server_holds_fails_at_its_deadline_and_is_retried() {
    let rig = Rig::new(WriteConfig::default());
    // The server takes the body and then holds its answer for an hour.
    rig.fake.set_upload_delay(Duration::from_secs(3600));
    let fh = rig.create(NIFTI, "held.nii", b"volume").await.unwrap();
    let started = tokio::time::Instant::now();
    let err = rig.close(fh).await.unwrap_err();
    assert_eq!(err.errno, libc::ETIMEDOUT, "{err}");
    assert!(err.message.contains("deadline"), "{err}");
    // The deadline (300 s, plus a second for the file's one started MiB), not the hour.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(301) && waited < Duration::from_secs(310),
        "{waited:?}"
    );
    assert_eq!(
        state_of(&rig.records(), "held.nii"),
        Some(UploadState::Pending)
    );
    rig.fake.set_upload_delay(Duration::ZERO);
    rig.wait_for("the background retry", |r| {
        r.on_server("held.nii").as_deref() == Some(&b"volume"[..]) && r.records().is_empty()
    })
    .await;
}
