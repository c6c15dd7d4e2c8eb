//! The client against the scripted loopback server of `test_server.rs`: login once, cookie
//! only, re-login once, no retry of bad credentials, retries, ranges, uploads.

use std::time::{Duration, Instant};

use super::test_server::{self, Shared};
use super::*;

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        max_elapsed: Duration::from_secs(5),
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
    }
}

fn config(base: &str, password: &str) -> ClientConfig {
    let mut c = ClientConfig::new(base, "alice", password);
    c.retry = fast_retry();
    c.connect_retry = fast_retry();
    c
}

async fn connected() -> (XnatClient, Shared) {
    let (base, knobs) = test_server::start().await;
    let client = XnatClient::connect(config(&base, "secret")).await.unwrap();
    (client, knobs)
}

fn requests(knobs: &Shared, path: &str) -> u32 {
    knobs
        .lock()
        .unwrap()
        .requests
        .get(path)
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn logs_in_once_then_sends_only_the_cookie() {
    let (client, knobs) = connected().await;
    for _ in 0..3 {
        let projects = client.projects().await.unwrap();
        assert_eq!(projects[0].id, "P1");
    }
    let k = knobs.lock().unwrap();
    assert_eq!(k.logins, 1);
    assert_eq!(k.basic_on_data, 0);
    assert_eq!(k.unauthorized, 0);
    assert_eq!(k.requests["/data/projects"], 3);
}

#[tokio::test]
async fn wrong_password_fails_after_exactly_one_attempt() {
    let (base, knobs) = test_server::start().await;
    let err = XnatClient::connect(config(&base, "wrong"))
        .await
        .unwrap_err();
    assert!(matches!(err, XnatError::BadCredentials { .. }), "{err}");
    assert_eq!(err.errno(), libc::EACCES);
    assert!(!err.to_string().contains("wrong"));
    assert_eq!(knobs.lock().unwrap().logins, 1);
}

#[tokio::test]
async fn unreachable_server_is_a_quick_unreachable_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let started = Instant::now();
    let err = XnatClient::connect(config(&format!("http://127.0.0.1:{port}"), "secret"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, XnatError::Unreachable { attempts: 4, .. }),
        "{err}"
    );
    assert_eq!(err.errno(), libc::EHOSTUNREACH);
    assert!(err.says_server_down());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_client_allowed_to_start_offline_fails_every_call_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut cfg = config(&format!("http://127.0.0.1:{port}"), "secret");
    cfg.offline = crate::xnat::OfflineStart::Allow;
    let client = XnatClient::connect(cfg).await.expect("starts offline");
    let health = client.health();
    let (_, reason) = health.offline_since.expect("offline");
    assert!(reason.contains("cannot reach"), "{reason}");
    let err = client
        .get_listing(&crate::xnat::paths::projects(), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, XnatError::Offline { .. }), "{err}");
    assert_eq!(err.errno(), libc::EHOSTDOWN);
    // At once: not a single attempt, so no retries to wait through.
    assert_eq!(client.health().requests, 0, "nothing was sent");
}

#[tokio::test]
async fn expired_session_is_renewed_once_and_replayed() {
    let (client, knobs) = connected().await;
    knobs.lock().unwrap().sessions.clear();
    client.projects().await.unwrap();
    {
        let k = knobs.lock().unwrap();
        assert_eq!((k.logins, k.unauthorized), (2, 1));
    }
    // The password changed on the server: the re-login fails once, and is never retried.
    {
        let mut k = knobs.lock().unwrap();
        k.sessions.clear();
        k.accepted_auth = "Basic other".into();
    }
    let err = client.projects().await.unwrap_err();
    assert!(matches!(err, XnatError::BadCredentials { .. }), "{err}");
    let err = client.projects().await.unwrap_err();
    assert!(matches!(err, XnatError::BadCredentials { .. }), "{err}");
    assert_eq!(knobs.lock().unwrap().logins, 3);
}

#[tokio::test]
async fn concurrent_401s_share_one_relogin() {
    let (client, knobs) = connected().await;
    knobs.lock().unwrap().sessions.clear();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.projects().await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(knobs.lock().unwrap().logins, 2);
}

#[tokio::test]
async fn idle_session_is_renewed_before_it_expires() {
    let (base, knobs) = test_server::start().await;
    knobs.lock().unwrap().expiration_ms = Some(300);
    let client = XnatClient::connect(config(&base, "secret")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    client.projects().await.unwrap();
    let k = knobs.lock().unwrap();
    assert_eq!((k.logins, k.unauthorized), (2, 0));
}

#[tokio::test]
async fn server_errors_are_retried_within_bounds() {
    let (client, knobs) = connected().await;
    knobs.lock().unwrap().fail_503 = 2;
    client.projects().await.unwrap();
    assert_eq!(requests(&knobs, "/data/projects"), 3);

    knobs.lock().unwrap().fail_503 = 100;
    let err = client.projects().await.unwrap_err();
    assert!(
        matches!(
            err,
            XnatError::RetriesExhausted {
                attempts: 4,
                status: 503,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.errno(), libc::EIO);
    assert_eq!(requests(&knobs, "/data/projects"), 7);
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let (client, knobs) = connected().await;
    let err = client
        .files(
            &Owner::Project {
                project: "NOPE".into(),
            },
            "R",
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string().contains("Unable to identify object"),
        "{err}"
    );
    assert_eq!(requests(&knobs, "/data/projects/NOPE/resources/R/files"), 1);
}

#[tokio::test]
async fn downloads_with_and_without_range_support() {
    let (client, knobs) = connected().await;
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let file = paths::experiment("E1")
        .scan("1")
        .resource("NIFTI")
        .file("a b#.nii");
    knobs.lock().unwrap().files.insert(
        "/data/experiments/E1/scans/1/resources/NIFTI/files/a b#.nii".into(),
        data.clone(),
    );
    assert_eq!(client.range_support(), RangeSupport::Unknown);

    let d = client.download(&file, Some(100..200)).await.unwrap();
    assert!(!d.partial);
    assert_eq!((d.offset, d.total_size), (0, Some(10_000)));
    assert!(d.last_modified.is_some());
    assert_eq!(d.bytes().await.unwrap(), data);
    assert_eq!(client.range_support(), RangeSupport::No);

    knobs.lock().unwrap().honour_range = true;
    let d = client.download(&file, Some(100..200)).await.unwrap();
    assert!(d.partial);
    assert_eq!(
        (d.offset, d.length, d.total_size),
        (100, Some(100), Some(10_000))
    );
    assert_eq!(d.bytes().await.unwrap(), &data[100..200]);
    assert_eq!(client.range_support(), RangeSupport::Yes);

    let d = client.download(&file, Some(9_990..u64::MAX)).await.unwrap();
    assert_eq!(d.bytes().await.unwrap(), &data[9_990..]);
    assert_eq!(client.probe_range(&file).await.unwrap(), RangeSupport::Yes);

    let head = client.head(&file).await.unwrap();
    assert_eq!(head.size, Some(10_000));
    assert!(head.last_modified.is_some());
}

#[tokio::test]
async fn uploads_send_length_and_detect_duplicates() {
    let (client, knobs) = connected().await;
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("out.nii");
    std::fs::write(&local, b"first version").unwrap();
    let target = paths::subject("P1", "S1")
        .resource("OUT")
        .file("sub dir/out.nii");
    let stored = "/data/projects/P1/subjects/S1/resources/OUT/files/sub dir/out.nii";

    client
        .upload(&target, &local, false, &[("format", "NIFTI")])
        .await
        .unwrap();
    assert_eq!(knobs.lock().unwrap().files[stored], b"first version");

    std::fs::write(&local, b"second version!").unwrap();
    let err = client
        .upload(&target, &local, false, &[])
        .await
        .unwrap_err();
    match &err {
        XnatError::Duplicate {
            paths, ambiguous, ..
        } => {
            assert_eq!(paths, &vec!["sub dir/out.nii".to_string()]);
            assert!(!ambiguous);
        }
        other => panic!("expected Duplicate, got {other}"),
    }
    assert_eq!(err.errno(), libc::EEXIST);
    assert_eq!(knobs.lock().unwrap().files[stored], b"first version");

    client.upload(&target, &local, true, &[]).await.unwrap();
    let k = knobs.lock().unwrap();
    assert_eq!(k.files[stored], b"second version!");
    assert_eq!(k.upload_lengths, vec![Some(13), Some(15), Some(15)]);
}

#[tokio::test]
async fn upload_is_reread_for_a_retry_and_reports_the_digest_sent() {
    let (client, knobs) = connected().await;
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("x.txt");
    std::fs::write(&local, b"payload").unwrap();
    let target = paths::project("P1").resource("R").file("x.txt");
    knobs.lock().unwrap().fail_503 = 1;
    let sent = client.upload(&target, &local, false, &[]).await.unwrap();
    assert_eq!(sent.size, 7);
    // md5("payload")
    assert_eq!(sent.md5, "321c3cf486ed509164edec1e1981fec8");
    assert_eq!(
        knobs.lock().unwrap().files["/data/projects/P1/resources/R/files/x.txt"],
        b"payload"
    );
    // Two attempts (503, then stored).
    assert_eq!(
        requests(&knobs, "/data/projects/P1/resources/R/files/x.txt"),
        2
    );
}

#[tokio::test]
async fn create_delete_and_logout() {
    let (client, knobs) = connected().await;
    let created = client.put(&paths::subject("P1", "S1"), &[]).await.unwrap();
    assert_eq!(created.status.as_u16(), 201);
    assert_eq!(created.body, "XNAT_S00001");
    client
        .delete(&paths::subject("P1", "S1"), &[("removeFiles", "true")])
        .await
        .unwrap();
    client.logout().await.unwrap();
    assert_eq!(knobs.lock().unwrap().logouts, 1);
    // A request after logout logs in again.
    client.projects().await.unwrap();
    assert_eq!(knobs.lock().unwrap().logins, 2);
}

#[tokio::test]
async fn dot_names_never_reach_the_server() {
    let (client, knobs) = connected().await;
    let err = client
        .files(
            &Owner::Project {
                project: "..".into(),
            },
            "R",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, XnatError::InvalidPath { .. }), "{err}");
    assert!(knobs.lock().unwrap().requests.is_empty());
}

fn plant(knobs: &Shared, name: &str, data: &[u8]) -> ApiPath {
    knobs.lock().unwrap().files.insert(
        format!("/data/experiments/E1/scans/1/resources/NIFTI/files/{name}"),
        data.to_vec(),
    );
    paths::experiment("E1")
        .scan("1")
        .resource("NIFTI")
        .file(name)
}

#[tokio::test]
async fn an_html_page_answered_for_a_file_is_an_error_not_its_content() {
    let (client, knobs) = connected().await;
    let file = plant(&knobs, "t1.nii.gz", b"the real bytes");
    knobs.lock().unwrap().html_for_files = true;
    let err = client.download(&file, None).await.unwrap_err();
    assert!(err.to_string().contains("HTML page"), "{err}");
    assert_eq!(err.errno(), libc::EIO);
    // A file named .html is served as HTML by XNAT: its answer is its content.
    let page = plant(&knobs, "report.html", b"<html></html>");
    let d = client.download(&page, None).await.unwrap();
    assert!(d.bytes().await.unwrap().starts_with(b"<html>"));
}

#[tokio::test]
async fn a_redirect_to_another_server_is_refused_and_sends_it_nothing() {
    let (client, knobs) = connected().await;
    let (elsewhere, other) = test_server::start().await;
    let file = plant(&knobs, "t1.nii.gz", b"the real bytes");
    plant(&other, "t1.nii.gz", b"someone else's bytes");
    knobs.lock().unwrap().redirect_files_to = Some(elsewhere);
    let err = client.download(&file, None).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let o = other.lock().unwrap();
    assert!(
        o.requests.is_empty(),
        "the other server was asked: {:?}",
        o.requests
    );
    assert_eq!(o.basic_on_data, 0);
}
