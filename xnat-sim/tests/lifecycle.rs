//! Persistence across restarts, populate determinism, import, hostile names
//! stored through the library, the async constructor, and the binary's
//! command line.

mod common;
use common::{config, fixture, start, Api, E1};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use xnat_sim::{populate, BlockingSimServer, Shape, SimConfig, SimServer, Store};

#[test]
fn archive_survives_a_restart() {
    let sim = start();
    fixture(&sim);
    let before = sim
        .alice()
        .rows("/data/experiments/XNAT_E00001/scans/ALL/files");
    let dir = sim.dir;
    drop(sim.server);
    assert!(dir.path().join("archive.json").exists());
    let server = BlockingSimServer::start(config(&dir)).unwrap();
    let a = Api::new(&server.url(), Some(("alice", "pw")));
    assert_eq!(
        a.rows("/data/experiments/XNAT_E00001/scans/ALL/files"),
        before
    );
    assert_eq!(
        a.text(&format!("{E1}/scans/1/resources/DICOM/files/b/003.dcm"))
            .1,
        "dicom three"
    );
    // IDs keep counting from where they were
    assert_eq!(
        a.put("/data/projects/P/subjects/S9"),
        (201, "XNAT_S00003".into())
    );
}

fn digests(root: &std::path::Path) -> Vec<(String, String, u64)> {
    let store = Store::open(root).unwrap();
    store.read(|a| {
        a.resources
            .values()
            .flat_map(|r| {
                r.files
                    .iter()
                    .map(|f| (f.path.clone(), f.digest.clone(), f.size))
            })
            .collect()
    })
}

#[test]
fn populate_is_deterministic_and_realistic() {
    let shape = Shape {
        seed: 42,
        subjects: 2,
        scans: 2,
        files: 1,
        file_size: 64 * 1024,
        assessors: 1,
        big_file: Some(3 * 1024 * 1024 + 7),
        members: vec!["alice".into()],
        ..Default::default()
    };
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s1 = populate(&Store::open(d1.path()).unwrap(), &shape).unwrap();
    let s2 = populate(&Store::open(d2.path()).unwrap(), &shape).unwrap();
    assert_eq!(s1, s2);
    assert_eq!(digests(d1.path()), digests(d2.path()));
    let other = tempfile::tempdir().unwrap();
    populate(
        &Store::open(other.path()).unwrap(),
        &Shape {
            seed: 43,
            ..shape.clone()
        },
    )
    .unwrap();
    assert_ne!(digests(d1.path()), digests(other.path()));
    // populating the same root twice is refused
    assert!(populate(&Store::open(d1.path()).unwrap(), &shape).is_err());

    let server = BlockingSimServer::start(SimConfig {
        root: d1.path().into(),
        users: vec![("alice".into(), "pw".into())],
        ..Default::default()
    })
    .unwrap();
    let a = Api::new(&server.url(), Some(("alice", "pw")));
    let scans = a.rows("/data/projects/SIM01/subjects/SIM01_S001/experiments/SIM01_S001_MR1/scans");
    assert_eq!(scans.len(), 2);
    let types = [
        "localizer",
        "mprage",
        "T2w",
        "FLAIR",
        "DWI",
        "rest_fmri",
        "field_map",
    ];
    assert!(scans
        .iter()
        .all(|s| types.contains(&s["type"].as_str().unwrap())));
    let files = a.rows("/data/experiments/XNAT_E00001/scans/1/files");
    let nii = files
        .iter()
        .find(|f| f["Name"].as_str().unwrap().ends_with(".nii.gz"))
        .unwrap();
    let bytes = a.get(nii["URI"].as_str().unwrap()).bytes().unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw).unwrap();
    assert_eq!(i32::from_le_bytes(raw[0..4].try_into().unwrap()), 348);
    assert_eq!(&raw[344..348], b"n+1\0");
    let dcm = files
        .iter()
        .find(|f| f["Name"].as_str().unwrap().ends_with(".dcm"))
        .unwrap();
    assert_eq!(dcm["Size"], (64 * 1024).to_string());
    let dcm = a.get(dcm["URI"].as_str().unwrap()).bytes().unwrap();
    assert_eq!(&dcm[128..132], b"DICM");
    let big = a.get(s1.big_file_uri.as_deref().unwrap());
    assert_eq!(
        big.headers()["content-length"],
        (3 * 1024 * 1024 + 7).to_string()
    );
    assert_eq!(big.bytes().unwrap().len(), 3 * 1024 * 1024 + 7);
    let qc =
        a.rows("/data/experiments/XNAT_E00001/assessors/SIM01_S001_MR1_QC1/out/resources/QC/files");
    assert_eq!(qc.len(), 2);
}

#[test]
fn import_a_directory_tree() {
    let src = tempfile::tempdir().unwrap();
    let p = src.path();
    for (path, body) in [
        ("PRJ/SUB1/SESS1/1-T1w/NIFTI/t1.nii.gz", "t1"),
        ("PRJ/SUB1/SESS1/1-T1w/DICOM/dir/a.dcm", "a"),
        ("PRJ/SUB1/SESS1/2/DICOM/b.dcm", "b"),
        ("PRJ/SUB2/SESS2/3-rest fmri/NIFTI/..odd name", "odd"),
    ] {
        let full = p.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, body).unwrap();
    }
    let root = tempfile::tempdir().unwrap();
    let n = xnat_sim::import(
        &Store::open(root.path()).unwrap(),
        p,
        &xnat_sim::ImportOptions {
            owner: Some("alice".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(n, 4);
    let server = BlockingSimServer::start(config(&root)).unwrap();
    let a = Api::new(&server.url(), Some(("alice", "pw")));
    let scans = a.rows("/data/projects/PRJ/subjects/SUB1/experiments/SESS1/scans");
    let got: Vec<(&str, &str)> = scans
        .iter()
        .map(|s| (s["ID"].as_str().unwrap(), s["type"].as_str().unwrap()))
        .collect();
    assert_eq!(got, vec![("1", "T1w"), ("2", "")]);
    let files =
        a.rows("/data/projects/PRJ/subjects/SUB1/experiments/SESS1/scans/1/resources/DICOM/files");
    assert!(files[0]["URI"]
        .as_str()
        .unwrap()
        .ends_with("/files/dir/a.dcm"));
    let odd = a.rows("/data/projects/PRJ/subjects/SUB2/experiments/SESS2/scans/3/files");
    assert_eq!(odd[0]["Name"], "..odd name");
}

#[test]
fn the_library_stores_hostile_names() {
    let sim = start();
    fixture(&sim);
    let store = sim.server.store();
    let long = "x".repeat(300);
    let rid = store
        .write(|a| {
            let e = a.experiments.get_mut("XNAT_E00001").unwrap();
            e.label = "E1".into();
            a.add_resource(
                xnat_sim::model::ResourceOwner::Experiment("XNAT_E00001".into()),
                "we/ird",
            )
        })
        .unwrap();
    for name in ["..", "", long.as_str(), "a%2Fb", "dup", "dup", "sp ace?#"] {
        xnat_sim::add_file(store, rid, name, name.as_bytes()).unwrap();
    }
    let a = sim.alice();
    let rows = a.rows(&format!(
        "/data/experiments/XNAT_E00001/resources/{rid}/files"
    ));
    let names: Vec<&str> = rows.iter().map(|r| r["Name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        vec!["..", "", long.as_str(), "a%2Fb", "dup", "sp ace?#"],
        "a repeated path replaces its entry"
    );
    assert_eq!(
        a.rows("/data/experiments/XNAT_E00001/resources/we%2Fird/files")
            .len(),
        6
    );
    // blobs are named by number: nothing lands outside the root
    let blobs = std::fs::read_dir(sim.dir.path().join("blobs"))
        .unwrap()
        .count();
    assert!(blobs >= 6);
    // the REST create path still validates labels
    assert_eq!(a.put("/data/projects/P/subjects/a.b").0, 417);
    assert_eq!(a.put("/data/projects/P/subjects/a%20b").0, 417);
}

#[tokio::test]
async fn async_server_starts_on_a_free_port_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimServer::start(SimConfig {
        root: dir.path().into(),
        users: vec![("u".into(), "p".into())],
        ..Default::default()
    })
    .await
    .unwrap();
    let url = sim.url();
    let body = reqwest::Client::new()
        .get(format!("{url}/data/auth"))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "User 'u' is logged in");
    sim.stop().await;
    assert!(reqwest::Client::new()
        .get(format!("{url}/"))
        .send()
        .await
        .is_err());
}

#[test]
fn the_binary_prints_its_url_and_stops_on_sigterm() {
    let root = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_xnat-sim");
    let out = Command::new(exe)
        .args(["populate", "--root"])
        .arg(root.path())
        .args([
            "--files",
            "1",
            "--file-size",
            "4096",
            "--scans",
            "1",
            "--subjects",
            "1",
            "--member",
            "alice",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = Command::new(exe)
        .args(["serve", "--root"])
        .arg(root.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--user",
            "alice:pw",
            "--stale-size",
            "--latency-ms",
            "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("xnat-sim listening on ")
        .expect(&line)
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"));
    let a = Api::new(&url, Some(("alice", "pw")));
    assert_eq!(a.rows("/data/projects")[0]["ID"], "SIM01");
    let faults: serde_json::Value = reqwest::blocking::get(format!("{url}/__sim/faults"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(faults["stale_size"], -1);
    unsafe_kill_term(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    // again on the same address, with a read-only collaborator and failing uploads
    let addr = url.strip_prefix("http://").unwrap().to_string();
    let mut child = Command::new(exe)
        .args(["serve", "--root"])
        .arg(root.path())
        .args(["--listen", &addr, "--user", "carol:pw3"])
        .args(["--collaborator", "carol:SIM01", "--fail-uploads", "507"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("xnat-sim listening on {url}"));
    let carol = Api::new(&url, Some(("carol", "pw3")));
    assert_eq!(carol.rows("/data/projects")[0]["ID"], "SIM01");
    assert_eq!(carol.put("/data/projects/SIM01/subjects/NEW").0, 403);
    assert_eq!(
        a.upload("/data/projects/SIM01/resources/R/files/f", b"f").0,
        507
    );
    unsafe_kill_term(child.id());
    assert!(child.wait().unwrap().success());
}

fn unsafe_kill_term(pid: u32) {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
}
