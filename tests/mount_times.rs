//! File and folder times on a real FUSE mount of xnat-sim: a session (and what is in it) is
//! dated by its acquisition date, a subject by its `insert_date`, a folder is as new as its
//! newest dated child, a file read once takes the server's `Last-Modified`, and a file written
//! through the mount its write time (before and after its upload).

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::mount::Mount;
use common::sim::*;
use xnat_sim::Shape;

fn secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn mtime(path: &Path) -> i64 {
    secs(
        fs::metadata(path)
            .unwrap_or_else(|e| panic!("stat {path:?}: {e}"))
            .modified()
            .unwrap(),
    )
}

/// Seconds since the epoch of a date, as `date -u` reads it.
fn date_secs(date: &str) -> i64 {
    let out = Command::new("date")
        .args(["-u", "-d", date, "+%s"])
        .output()
        .expect("run date");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn times_come_from_the_server_and_from_writes() {
    let sim = Sim::start(Shape {
        subjects: 1,
        sessions: 1,
        scans: 1,
        files: 1,
        file_size: 4096,
        ..Default::default()
    });
    // Attributes are not cached, so each stat shows what the mount knows at that moment.
    let mount = Mount::start(&sim.url(), USER, PASS, &["--metadata-ttl", "0"]);
    let files = expected_files(sim.store(), None);
    let rel = files
        .keys()
        .find(|k| k.contains("/NIFTI/") && k.matches('/').count() == 5)
        .expect("a scan file")
        .clone();
    let parts: Vec<&str> = rel.split('/').collect();
    let (date, inserted) = sim.store().read(|a| {
        let e = a
            .experiments
            .values()
            .find(|e| e.label == parts[2])
            .expect("the session");
        let s = a
            .subjects
            .values()
            .find(|s| s.label == parts[1])
            .expect("the subject");
        (e.date.clone(), s.insert_date.clone())
    });
    assert!(!date.is_empty(), "the sim dates its sessions");
    let session_time = date_secs(&date);
    let root = mount.path();
    let at = |n: usize| root.join(parts[..n].join("/"));
    let now = secs(SystemTime::now());

    assert_eq!(
        mtime(&at(3)),
        session_time,
        "session folder: its date {date}"
    );
    assert_eq!(
        mtime(&at(4)),
        session_time,
        "scan folder: its session's date"
    );
    assert_eq!(
        mtime(&at(5)),
        session_time,
        "resource folder: its session's date"
    );
    let file = at(6);
    assert_eq!(
        mtime(&file),
        session_time,
        "a file not read yet: its session's date"
    );
    let subject_time = date_secs(inserted.split('.').next().unwrap());
    assert_eq!(
        mtime(&at(2)),
        subject_time,
        "subject: its insert_date {inserted}"
    );
    assert!(
        mtime(&at(1)) >= subject_time,
        "a project is as new as its newest subject"
    );

    // Read once: the server's Last-Modified (the sim's copy was written at its start).
    assert_eq!(fs::read(&file).unwrap(), files[&rel].bytes());
    let read = mtime(&file);
    assert_ne!(read, session_time, "Last-Modified not taken");
    assert!((read - now).abs() < 3600, "Last-Modified {read}, now {now}");

    // Written here: the write time, also once uploaded (close returns after the upload).
    let new = at(5).join("written.txt");
    let mut f = fs::File::create(&new).unwrap();
    f.write_all(b"new bytes").unwrap();
    let while_open = mtime(&new);
    drop(f);
    let written = mtime(&new);
    let now = secs(SystemTime::now());
    assert!(
        (now - while_open).abs() <= 60,
        "while written: {while_open}, now {now}"
    );
    assert!(
        (now - written).abs() <= 60,
        "once uploaded: {written}, now {now}"
    );
    assert!(
        mtime(&at(5)) >= written,
        "the resource folder is as new as the file"
    );
}
