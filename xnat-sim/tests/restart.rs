//! Stopping and starting again on the same address and root, as xnatfs's tests
//! do to take the server away under a mount: `stop()` closes the listener and
//! every connection (idle keep-alive ones and a stalled download alike), and a
//! new server binds the old address at once and serves the same archive.

mod common;
use common::{config, fixture, start, Api, E1};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use xnat_sim::{BlockingSimServer, Faults, SimConfig, SimServer};

const AUTH: &str = "Authorization: Basic YWxpY2U6cHc="; // alice:pw

/// A raw HTTP/1.1 connection that stays open between requests.
fn keep_alive(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends a GET and reads the head and `body_bytes` bytes of the body.
fn get_head(s: &mut TcpStream, path: &str, body_bytes: usize) -> String {
    write!(s, "GET {path} HTTP/1.1\r\nHost: sim\r\n{AUTH}\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        got.push(byte[0]);
    }
    let head = String::from_utf8(got).unwrap();
    let mut body = vec![0u8; body_bytes];
    s.read_exact(&mut body).unwrap();
    head
}

/// Reads until the server closes the connection; panics if it stays open.
fn assert_closed(s: &mut TcpStream, what: &str) {
    let t = Instant::now();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("{what}: still open after {:?} ({e})", t.elapsed()),
        }
    }
}

#[test]
fn stop_closes_everything_and_a_restart_on_the_same_address_keeps_the_archive() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 249) as u8).collect();
    let big_url = format!("{E1}/resources/BIG/files/big.bin");
    assert_eq!(a.upload(&big_url, &big), (200, String::new()));
    let addr = sim.server.addr();
    // a JSESSION and an alias token from before the restart
    let (code, jsession) = a.text("/data/JSESSION");
    assert_eq!(code, 200);
    let token = a.json("/data/services/tokens/issue");
    let (alias, secret) = (
        token["alias"].as_str().unwrap().to_string(),
        token["secret"].as_str().unwrap().to_string(),
    );

    // an idle keep-alive connection, a pooled client, and a download stalled mid-body
    let mut idle = keep_alive(addr);
    let head = get_head(&mut idle, "/data/version", "1.8.10".len());
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(a.text("/data/projects").0, 200);
    sim.server.set_faults(Faults {
        stall_after_bytes: Some(1000),
        ..Default::default()
    });
    let mut stalled = keep_alive(addr);
    let head = get_head(&mut stalled, &big_url, 1000);
    assert!(head.contains("content-length: 200000"), "{head}");

    let t = Instant::now();
    sim.server.stop();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    assert_closed(&mut idle, "idle keep-alive connection");
    assert_closed(&mut stalled, "stalled download");
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    assert!(
        a.req(reqwest::Method::GET, "/data/projects")
            .send()
            .is_err(),
        "a pooled client sees the server gone"
    );

    // the same address and root, at once
    let server = BlockingSimServer::start(SimConfig {
        listen: addr,
        ..config(&sim.dir)
    })
    .unwrap();
    assert_eq!(server.addr(), addr);
    let cookie = reqwest::blocking::Client::new()
        .get(format!("{}/data/projects", server.url()))
        .header("Cookie", format!("JSESSIONID={jsession}"))
        .send()
        .unwrap();
    assert_eq!(
        cookie.status().as_u16(),
        200,
        "the session outlives the restart"
    );
    let by_token = Api::new(&server.url(), Some((&alias, &secret)));
    assert_eq!(by_token.text("/data/projects").0, 200, "so does the token");
    assert_eq!(
        a.get(&big_url).bytes().unwrap().to_vec(),
        big,
        "same client, same URL"
    );
    assert_eq!(
        a.rows("/data/experiments/XNAT_E00001/scans/ALL/files")
            .len(),
        5
    );
    assert_eq!(
        a.put("/data/projects/P/subjects/S9"),
        (201, "XNAT_S00003".into()),
        "IDs keep counting"
    );
    // and again, several times in a row
    drop(server);
    for _ in 0..3 {
        let s = BlockingSimServer::start(SimConfig {
            listen: addr,
            ..config(&sim.dir)
        })
        .unwrap();
        let mut idle = keep_alive(addr);
        get_head(&mut idle, "/data/version", "1.8.10".len());
        assert_eq!(
            Api::new(&s.url(), Some(("alice", "pw")))
                .rows("/data/projects/P/subjects")
                .len(),
            3
        );
        s.stop();
        assert_closed(&mut idle, "idle keep-alive connection");
    }
}

/// In the caller's runtime, which lives on after `stop()`: connection tasks must not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_server_restarts_on_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let c = SimConfig {
        root: dir.path().into(),
        users: vec![("alice".into(), "pw".into())],
        ..Default::default()
    };
    let sim = SimServer::start(c.clone()).await.unwrap();
    let addr = sim.addr();
    let client = reqwest::Client::new();
    let put = |url: String| client.put(url).basic_auth("alice", Some("pw")).send();
    assert_eq!(
        put(format!("{}/data/projects/P", sim.url()))
            .await
            .unwrap()
            .status(),
        201
    );
    let url = format!("{}/data/projects/P/resources/R/files/f.bin", sim.url());
    let bytes = vec![1u8; 100_000];
    let r = client
        .put(&url)
        .basic_auth("alice", Some("pw"))
        .header("Content-Type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // a download stalled forever after 10 bytes, on a raw connection
    sim.set_faults(Faults {
        stall_after_bytes: Some(10),
        ..Default::default()
    });
    let mut stalled = tokio::task::spawn_blocking(move || {
        let mut s = keep_alive(addr);
        get_head(&mut s, "/data/projects/P/resources/R/files/f.bin", 10);
        s
    })
    .await
    .unwrap();
    // an idle pooled connection is held by `client`
    sim.stop().await;
    assert!(client.get(format!("http://{addr}/")).send().await.is_err());
    tokio::task::spawn_blocking(move || assert_closed(&mut stalled, "stalled download"))
        .await
        .unwrap();
    let sim = SimServer::start(SimConfig { listen: addr, ..c })
        .await
        .unwrap();
    assert_eq!(
        put(format!("{}/data/projects/P", sim.url()))
            .await
            .unwrap()
            .status(),
        200
    );
    sim.stop().await;
}
