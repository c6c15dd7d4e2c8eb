//! The knobs: latency, failures (Nth, rate), resets, stalls, bandwidth,
//! stale sizes, counters and the request log, set over HTTP and from Rust.

mod common;
use common::{fixture, start, start_with, E1};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};
use xnat_sim::Faults;

fn admin(
    sim: &common::Sim,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let c = reqwest::blocking::Client::new();
    let mut r = c.request(method, format!("{}{path}", sim.server.url()));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{path}");
    resp.json().unwrap()
}

const BIG: &str = "/data/projects/P/subjects/S1/experiments/E1/resources/BIG/files/big.bin";

fn with_big_file(sim: &common::Sim) -> Vec<u8> {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(sim.alice().upload(BIG, &data).0, 200);
    data
}

#[test]
fn faults_over_http_latency_and_failures() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let f = admin(
        &sim,
        reqwest::Method::POST,
        "/__sim/faults",
        Some(json!({"latency_ms": 150})),
    );
    assert_eq!(f["latency_ms"], 150);
    let t = Instant::now();
    assert_eq!(a.text("/data/projects").0, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        admin(&sim, reqwest::Method::GET, "/__sim/faults", None)["latency_ms"],
        150
    );
    admin(&sim, reqwest::Method::DELETE, "/__sim/faults", None);
    assert_eq!(sim.server.faults(), Faults::default());

    admin(
        &sim,
        reqwest::Method::POST,
        "/__sim/faults",
        Some(json!({"fail_nth": 2, "fail_status": 500})),
    );
    let codes: Vec<u16> = (0..3).map(|_| a.text("/data/projects").0).collect();
    assert_eq!(codes, vec![200, 500, 200]);
    assert!(a.text("/data/projects").1.contains("Result"));

    sim.server.set_faults(Faults {
        fail_rate: 1.0,
        ..Default::default()
    });
    let (code, body) = a.text("/data/projects");
    assert_eq!(code, 503);
    assert!(body.contains("<h3>"));
    sim.server.set_faults(Faults::default());
    assert_eq!(a.text("/data/projects").0, 200);
    assert_eq!(sim.server.stats().injected_failures, 2);
}

#[test]
fn resets_and_stalls_in_download_bodies() {
    let sim = start();
    fixture(&sim);
    let data = with_big_file(&sim);
    let a = sim.alice();
    sim.server.set_faults(Faults {
        reset_after_bytes: Some(1000),
        ..Default::default()
    });
    // The first 1000 bytes reach the client (headers included), then the connection breaks.
    let mut r = a
        .req(Method::GET, BIG)
        .send()
        .expect("the headers arrive before the reset");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-length"], data.len().to_string());
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let broke = loop {
        match std::io::Read::read(&mut r, &mut buf) {
            Ok(0) => break false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break true,
        }
    };
    assert!(broke, "the body must break off");
    assert_eq!(got.len(), 1000, "the bytes before the reset are delivered");
    assert_eq!(&got[..], &data[..1000]);
    // listings are not downloads: untouched (a new client: the broken connection may still sit
    // in the old one's pool, and reusing it is the client's problem, not the server's)
    assert_eq!(sim.alice().text("/data/projects").0, 200);

    sim.server.set_faults(Faults {
        stall_after_bytes: Some(1000),
        stall_ms: Some(400),
        ..Default::default()
    });
    let t = Instant::now();
    assert_eq!(sim.alice().get(BIG).bytes().unwrap().to_vec(), data);
    assert!(t.elapsed() >= Duration::from_millis(400));

    sim.server.set_faults(Faults {
        stall_after_bytes: Some(10),
        ..Default::default()
    });
    let quick = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let r = quick
        .get(format!("{}{BIG}", sim.server.url()))
        .basic_auth("alice", Some("pw"))
        .send();
    assert!(
        r.and_then(|r| r.bytes()).is_err(),
        "a stall without end times out"
    );
    sim.server.set_faults(Faults::default());
}

#[test]
fn bandwidth_cap_paces_bodies() {
    let sim = start_with(|c| c.faults.bandwidth = Some(1_000_000));
    fixture(&sim);
    let data = with_big_file(&sim); // 300 kB at 1 MB/s, both ways
    let t = Instant::now();
    assert_eq!(sim.alice().get(BIG).bytes().unwrap().len(), data.len());
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(250), "{took:?}");
}

#[test]
fn stale_sizes_in_file_listings() {
    let sim = start_with(|c| c.faults.stale_size = Some(-3));
    fixture(&sim);
    let a = sim.alice();
    let files = format!("{E1}/scans/1/resources/NIFTI/files");
    assert_eq!(a.rows(&files)[0]["Size"], "6");
    let (_, csv) = a.text(&format!("{files}?format=csv"));
    assert_eq!(csv.lines().nth(1).unwrap().split(',').nth(1), Some("6"));
    assert_eq!(a.text(&format!("{files}/t1.nii.gz")).1, "t1 volume");
    sim.server.set_faults(Faults::default());
    assert_eq!(a.rows(&files)[0]["Size"], "9");
}

#[test]
fn counters_and_request_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.log");
    let sim = start_with(|c| c.request_log = Some(log.clone()));
    fixture(&sim);
    let a = sim.alice();
    admin(&sim, reqwest::Method::POST, "/__sim/stats/reset", None);
    assert_eq!(sim.server.stats().requests, 0);
    let file = format!("{E1}/scans/1/resources/NIFTI/files/t1.nii.gz");
    a.text(&file);
    a.text(&file);
    a.text(&format!("{E1}/scans"));
    a.upload(&format!("{E1}/resources/R/files/x.txt"), b"12345");
    a.put("/data/projects/P/subjects/S7");
    a.delete("/data/projects/P/subjects/S7");
    a.text("/data/JSESSION");
    let s = admin(&sim, reqwest::Method::GET, "/__sim/stats", None);
    assert_eq!(s["requests"], 7);
    assert_eq!(s["by_kind"]["download"], 2);
    assert_eq!(s["by_kind"]["listing"], 1);
    assert_eq!(s["by_kind"]["upload"], 1);
    assert_eq!(s["by_kind"]["create"], 1);
    assert_eq!(s["by_kind"]["delete"], 1);
    assert_eq!(s["by_kind"]["auth"], 1);
    assert_eq!(s["by_method"]["GET"], 4);
    assert_eq!(s["downloads"][&file], 2);
    assert!(s["bytes_served"].as_u64().unwrap() >= 18);
    assert_eq!(s["bytes_received"], 5);
    admin(&sim, reqwest::Method::DELETE, "/__sim/stats", None);
    assert_eq!(sim.server.stats().requests, 0);

    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("GET") && l.contains("t1.nii.gz"))
        .unwrap();
    assert_eq!(line, format!("GET {file} 200 9"));
    assert!(!text.contains("__sim"), "admin calls are not logged");
}

#[test]
fn upload_and_write_failures_leave_reads_working() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let nifti = format!("{E1}/scans/1/resources/NIFTI/files");
    sim.server.set_faults(Faults {
        fail_uploads: Some(503),
        ..Default::default()
    });
    // a big body: the client reads the answer, not a reset
    let big = vec![7u8; 3 << 20];
    let (code, body) = a.upload(&format!("{nifti}/big.bin"), &big);
    assert_eq!(code, 503);
    assert!(body.contains("injected failure"));
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(Vec::new()).file_name("e.txt"),
    );
    let r = a
        .req(Method::POST, &format!("{nifti}/e.txt"))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    // reads, creates and deletes still work
    assert_eq!(a.rows(&nifti).len(), 1);
    assert_eq!(
        a.text(&format!("{nifti}/t1.nii.gz")),
        (200, "t1 volume".into())
    );
    assert_eq!(a.put("/data/projects/P/subjects/S5").0, 201);
    assert_eq!(
        a.delete(&format!("{E1}/resources/QC/files/report.txt")).0,
        200
    );
    assert_eq!(a.text("/data/JSESSION").0, 200);

    // over HTTP: uploads answered 403, then every change 503
    let f = admin(
        &sim,
        reqwest::Method::POST,
        "/__sim/faults",
        Some(json!({"fail_uploads": 403})),
    );
    assert_eq!(f["fail_uploads"], 403);
    assert_eq!(a.upload(&format!("{nifti}/x.nii"), b"x").0, 403);
    admin(
        &sim,
        reqwest::Method::POST,
        "/__sim/faults",
        Some(json!({"fail_uploads": null, "fail_writes": 503})),
    );
    assert_eq!(a.upload(&format!("{nifti}/x.nii"), b"x").0, 503);
    assert_eq!(a.put("/data/projects/P/subjects/S6").0, 503);
    assert_eq!(
        a.put(&format!("{E1}/scans/1/resources/NEW?format=NIFTI")).0,
        503
    );
    assert_eq!(a.delete(&format!("{nifti}/t1.nii.gz")).0, 503);
    assert_eq!(a.delete(&format!("{E1}?removeFiles=true")).0, 503);
    assert_eq!(a.rows("/data/projects/P/subjects").len(), 3);
    assert_eq!(a.rows(&nifti).len(), 1);
    // login still works: it changes no archive object
    let r = a
        .client
        .post(format!("{}/data/JSESSION", sim.server.url()))
        .basic_auth("alice", Some("pw"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(sim.server.stats().injected_failures, 8);
    // cleared: writes work again
    admin(&sim, reqwest::Method::DELETE, "/__sim/faults", None);
    assert_eq!(
        a.upload(&format!("{nifti}/x.nii"), b"x"),
        (200, String::new())
    );
}
