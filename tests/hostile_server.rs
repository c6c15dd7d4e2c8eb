//! A hostile server: a raw TCP stand-in for XNAT that logs the client in and then answers
//! listings and downloads with each kind of misbehaviour a real server or the proxy in front of
//! it shows: truncated and malformed JSON, HTML with 200, a wrong `Content-Length`, redirects
//! to another origin, a slow drip, a held socket, a huge listing, names with every odd byte.
//! Each case asserts a clear error (or, for odd names, the right rows), within a bound on time,
//! and (huge listings) a bound on what is read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use xnatfs::xnat::{Backend, ClientConfig, RetryPolicy, XnatClient, XnatError};

/// What the server does with a data request.
#[derive(Clone)]
enum Answer {
    /// Status line, headers and body written as they are.
    Raw(Vec<u8>),
    /// These bytes (a whole HTTP response), one every `gap`.
    Drip(Vec<u8>, Duration),
    /// A response whose head and first bytes are sent, then the socket held open, silent.
    Hold(Vec<u8>),
    /// `Content-Length: size` and that many bytes, streamed (counts what was sent).
    Huge(u64),
}

fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn json(body: &str) -> Vec<u8> {
    http(
        "200 OK",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
}

struct Hostile {
    url: String,
    /// Bytes of `Huge` bodies written.
    sent: Arc<AtomicU64>,
}

/// Serve on loopback: `POST /data/JSESSION` logs in; every other request gets `answer(path)`.
async fn serve(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            let counter = counter.clone();
            tokio::spawn(async move { connection(socket, answer, counter).await });
        }
    });
    Hostile { url, sent }
}

async fn connection(
    mut socket: TcpStream,
    answer: Arc<dyn Fn(&str) -> Answer + Send + Sync>,
    sent: Arc<AtomicU64>,
) {
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match socket.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let target = head.split(' ').nth(1).unwrap_or("/").to_string();
        let path = target.split('?').next().unwrap_or("").to_string();
        if let Some(len) = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse::<usize>().ok())
        {
            let mut body = vec![0u8; len];
            if socket.read_exact(&mut body).await.is_err() {
                return;
            }
        }
        let reply = if path == "/data/JSESSION" {
            Answer::Raw(http(
                "200 OK",
                &[(
                    "set-cookie",
                    "JSESSIONID=0123456789ABCDEF0123456789ABCDEF; Path=/",
                )],
                b"0123456789ABCDEF0123456789ABCDEF",
            ))
        } else {
            answer(&path)
        };
        match reply {
            Answer::Raw(bytes) => {
                let close = String::from_utf8_lossy(&bytes[..bytes.len().min(512)])
                    .to_ascii_lowercase()
                    .contains("connection: close");
                if socket.write_all(&bytes).await.is_err() || close {
                    return;
                }
            }
            Answer::Drip(bytes, gap) => {
                for b in bytes {
                    if socket.write_all(&[b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(gap).await;
                }
            }
            Answer::Hold(bytes) => {
                let _ = socket.write_all(&bytes).await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Answer::Huge(size) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
                );
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b' '; 64 << 10];
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if socket.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                    left -= n as u64;
                }
            }
        }
    }
}

/// A client with short bounds, so each case shows its bound within seconds.
async fn client(url: &str) -> XnatClient {
    let mut config = ClientConfig::new(url, "alice", "secret");
    let quick = RetryPolicy {
        max_retries: 1,
        max_elapsed: Duration::from_secs(2),
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    config.retry = quick.clone();
    config.connect_retry = quick;
    config.read_timeout = Duration::from_secs(1);
    config.listing_deadline = Duration::from_secs(3);
    config.listing_max_bytes = 1 << 20;
    XnatClient::connect(config)
        .await
        .expect("log in to the hostile server")
}

/// The error of `f`, which must come within `limit`.
async fn fails_within<T: std::fmt::Debug>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, XnatError>>,
) -> XnatError {
    let start = Instant::now();
    let result = tokio::time::timeout(limit + Duration::from_secs(5), f)
        .await
        .unwrap_or_else(|_| panic!("no answer within {limit:?} and 5 s more"));
    let err = result.expect_err("a misbehaving answer was taken as good");
    assert!(
        start.elapsed() <= limit,
        "the error took {:?}, the bound is {limit:?}: {err}",
        start.elapsed()
    );
    err
}

const ROWS: &str = r#"{"ResultSet":{"Result":[{"ID":"P1","name":"one","URI":"/data/projects/P1"}],"totalRecords":"1"}}"#;

#[tokio::test]
async fn a_truncated_listing_is_a_protocol_error() {
    let body = &ROWS[..ROWS.len() / 2];
    let s = serve(move |_| Answer::Raw(json(body))).await;
    let err = fails_within(Duration::from_secs(3), client(&s.url).await.projects()).await;
    assert_eq!(err.errno(), libc::EIO, "{err}");
}

#[tokio::test]
async fn a_listing_of_garbage_or_html_is_a_protocol_error() {
    for body in [
        json("not json at all"),
        json(r#"{"ResultSet": 42}"#),
        http(
            "200 OK",
            &[("content-type", "text/html")],
            b"<html><body>Please log in</body></html>",
        ),
    ] {
        let s = serve(move |_| Answer::Raw(body.clone())).await;
        let err = fails_within(Duration::from_secs(3), client(&s.url).await.projects()).await;
        assert_eq!(err.errno(), libc::EIO, "{err}");
    }
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_an_error_not_short_data() {
    let s = serve(|path| {
        if path.contains("/files/") {
            // 1000 bytes promised, 10 sent, connection closed.
            let mut r =
                b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n".to_vec();
            r.extend_from_slice(b"0123456789");
            Answer::Raw(r)
        } else {
            Answer::Raw(json(ROWS))
        }
    })
    .await;
    let c = client(&s.url).await;
    let err = fails_within(Duration::from_secs(5), async {
        let d = c
            .fetch("/data/projects/P1/resources/R/files/f.nii", None)
            .await?;
        d.bytes().await
    })
    .await;
    assert_eq!(err.errno(), libc::EIO, "{err}");
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_refused() {
    let other = serve(|_| Answer::Raw(json(ROWS))).await;
    let to = other.url.clone();
    let s = serve(move |path| {
        Answer::Raw(http(
            "302 Found",
            &[("location", &format!("{to}{path}"))],
            b"",
        ))
    })
    .await;
    let err = fails_within(Duration::from_secs(3), client(&s.url).await.projects()).await;
    assert!(err.to_string().contains("refused"), "{err}");
}

#[tokio::test]
async fn a_listing_that_drips_is_cut_at_the_deadline() {
    let s = serve(|_| Answer::Drip(json(ROWS), Duration::from_millis(200))).await;
    let err = fails_within(Duration::from_secs(4), client(&s.url).await.projects()).await;
    assert_eq!(err.errno(), libc::ETIMEDOUT, "{err}");
}

#[tokio::test]
async fn a_download_whose_server_holds_the_socket_is_a_timeout() {
    let s = serve(|path| {
        if path.contains("/files/") {
            let mut r = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n".to_vec();
            r.extend_from_slice(&[7u8; 5000]);
            Answer::Hold(r)
        } else {
            Answer::Raw(json(ROWS))
        }
    })
    .await;
    let c = client(&s.url).await;
    let err = fails_within(Duration::from_secs(4), async {
        let d = c
            .fetch("/data/projects/P1/resources/R/files/f.nii", None)
            .await?;
        d.bytes().await
    })
    .await;
    assert!([libc::ETIMEDOUT, libc::EIO].contains(&err.errno()), "{err}");
}

#[tokio::test]
async fn a_huge_listing_is_refused_without_reading_it() {
    // Announced: refused before any byte of it is read.
    let s = serve(|_| Answer::Huge(10 << 30)).await;
    let err = fails_within(Duration::from_secs(3), client(&s.url).await.projects()).await;
    assert!(err.to_string().contains("limit"), "{err}");
    assert!(
        s.sent.load(Ordering::Relaxed) < 64 << 20,
        "read {} bytes of a refused listing",
        s.sent.load(Ordering::Relaxed)
    );
}

#[tokio::test]
async fn a_huge_chunked_listing_is_cut_at_the_limit() {
    let s = serve(|_| {
        let mut r = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        let chunk = vec![b' '; 256 << 10];
        for _ in 0..32 {
            r.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            r.extend_from_slice(&chunk);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
        Answer::Raw(r)
    })
    .await;
    let err = fails_within(Duration::from_secs(3), client(&s.url).await.projects()).await;
    assert!(err.to_string().contains("limit"), "{err}");
}

#[tokio::test]
async fn names_with_odd_bytes_come_back_as_the_server_wrote_them() {
    let odd = [
        "../../etc",
        "a/b",
        "new\nline",
        "tab\there",
        "quote\"and\\back",
        "nul\u{0}byte",
        "dot.",
        ".hidden",
        "%2F",
        "é",
    ];
    let rows: Vec<String> = odd
        .iter()
        .map(|n| {
            format!(
                r#"{{"ID":{id},"name":"x","URI":"/data/projects/x"}}"#,
                id = serde_json::to_string(n).unwrap()
            )
        })
        .collect();
    let body = format!(
        r#"{{"ResultSet":{{"Result":[{}],"totalRecords":"{}"}}}}"#,
        rows.join(","),
        odd.len()
    );
    let s = serve(move |_| Answer::Raw(json(&body))).await;
    let projects = client(&s.url).await.projects().await.unwrap();
    let ids: Vec<&str> = projects.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids, odd,
        "every name as the server wrote it (escaping is the mount's)"
    );
}

#[test]
fn hostile_ids_stay_one_path_segment() {
    let path = xnatfs::xnat::paths::project("../../etc/passwd?x=1#y");
    let sent = path.as_str();
    assert!(sent.starts_with("/data/projects/"), "{sent}");
    assert_eq!(sent.matches('/').count(), 3, "a new path segment in {sent}");
    assert!(!sent.contains(['?', '#']), "{sent}");
}
