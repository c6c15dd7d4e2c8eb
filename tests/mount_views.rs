//! Real FUSE mounts of an in-process xnat-sim holding project STUDY (`populate --study`): the
//! `.bids` view (names from ReproIn and built-in rules, runs, sidecars, skipped scans and why,
//! dataset files), its bytes equal to the archive's with one download for both paths, a
//! mapping file that renames, EROFS on every change, the views not listed in a walk, and the
//! `.tables` CSV files against the sim's own rows.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::mount::Mount;
use common::sim::*;
use xnat_sim::model::ResourceOwner;

fn study_sim() -> Sim {
    let sim = Sim::start_with(None, |_| {});
    xnat_sim::study(sim.store(), &[USER.to_string()]).expect("populate the study");
    sim
}

/// Every path under `root`, folders ending in `/`.
fn tree(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if entry.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"));
                stack.push(entry.path());
            } else {
                out.insert(rel);
            }
        }
    }
    out
}

#[test]
fn the_bids_view_names_scans_and_reads_the_archive_bytes_once() {
    let sim = study_sim();
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    let bids = m.path().join("STUDY/.bids");
    let got = tree(&bids);
    for want in [
        "dataset_description.json",
        "README",
        "participants.tsv",
        "participants.json",
        "sourcedata/xnatfs-skipped.tsv",
        "sub-S01/anat/sub-S01_T1w.nii.gz",
        "sub-S01/anat/sub-S01_T1w.json",
        "sub-S01/func/sub-S01_task-rest_run-1_bold.nii.gz",
        "sub-S01/func/sub-S01_task-rest_run-1_bold.json",
        "sub-S01/func/sub-S01_task-rest_run-2_bold.nii.gz",
        "sub-S01/dwi/sub-S01_dir-AP_dwi.nii.gz",
        "sub-S01/dwi/sub-S01_dir-AP_dwi.bval",
        "sub-S01/dwi/sub-S01_dir-AP_dwi.bvec",
        "sub-S01/fmap/sub-S01_dir-PA_epi.nii.gz",
        "sub-S02/anat/sub-S02_T1w.nii.gz",
    ] {
        assert!(got.contains(want), "{want} missing from {got:#?}");
    }
    assert!(
        !got.iter().any(|p| p.contains("ses-")),
        "one session each: {got:#?}"
    );
    let skipped = fs::read_to_string(bids.join("sourcedata/xnatfs-skipped.tsv")).unwrap();
    assert!(skipped.contains("AAHead_Scout\ta localizer"), "{skipped}");
    assert!(
        skipped.contains("T2w_SPC_sag\tno NIFTI or BIDS resource"),
        "{skipped}"
    );
    let participants = fs::read_to_string(bids.join("participants.tsv")).unwrap();
    assert_eq!(
        participants.lines().next(),
        Some("participant_id\txnat_label\txnat_id")
    );
    assert!(participants.contains("sub-S01\tS-01\t"), "{participants}");
    let description: serde_json::Value =
        serde_json::from_slice(&fs::read(bids.join("dataset_description.json")).unwrap()).unwrap();
    assert_eq!(description["Name"], "A study with BIDS-like scans");
    assert_eq!(description["DatasetType"], "raw");

    // Sizes exact at stat, bytes equal to the archive's, one download for both paths.
    let expected = expected_files(sim.store(), Some("STUDY"));
    let (archive_path, exp) = expected
        .iter()
        .find(|(p, _)| p.starts_with("STUDY/S-01/") && p.ends_with("_3_func-bold_task-rest.nii.gz"))
        .expect("the first rest run in the archive");
    let through_bids = bids.join("sub-S01/func/sub-S01_task-rest_run-1_bold.nii.gz");
    assert_eq!(fs::metadata(&through_bids).unwrap().len(), exp.size);
    sim.server.reset_stats();
    assert_eq!(md5_file(&through_bids).unwrap(), exp.md5);
    assert_eq!(md5_file(&m.path().join(archive_path)).unwrap(), exp.md5);
    assert_eq!(sim.downloads(), 1, "one download for the two paths");

    // A walk of the project does not enter the views; they are found by name.
    let project = tree(&m.path().join("STUDY"));
    assert!(!project
        .iter()
        .any(|p| p.starts_with(".bids") || p.starts_with(".tables")));
    assert!(m.path().join("STUDY/.tables").is_dir());
}

#[test]
fn the_views_refuse_every_change_with_erofs() {
    let sim = study_sim();
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    let bids = m.path().join("STUDY/.bids");
    let t1 = bids.join("sub-S01/anat/sub-S01_T1w.nii.gz");
    let erofs = |r: std::io::Result<()>, what: &str| {
        assert_eq!(
            r.unwrap_err().raw_os_error(),
            Some(libc::EROFS),
            "{what} in a view"
        );
    };
    erofs(fs::write(bids.join("new.txt"), b"x"), "create");
    erofs(
        fs::OpenOptions::new().append(true).open(&t1).map(drop),
        "open for writing",
    );
    erofs(fs::remove_file(&t1), "unlink");
    erofs(fs::create_dir(bids.join("sub-S09")), "mkdir");
    erofs(
        fs::remove_dir(m.path().join("STUDY/.tables")),
        "rmdir of the view",
    );
    erofs(
        fs::rename(&t1, bids.join("sub-S01/anat/other.nii.gz")),
        "rename",
    );
    let mode = fs::metadata(&t1).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o444
    );
}

#[test]
fn a_mapping_file_renames_and_excludes() {
    let sim = study_sim();
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("map.json");
    fs::write(
        &map,
        br#"{"anat-T1w": ["anat", "acq-mprage_T1w"], "dMRI_dir6_AP": ["exclude", ""]}"#,
    )
    .unwrap();
    let m = Mount::start(
        &sim.url(),
        USER,
        PASS,
        &["--bids-map", map.to_str().unwrap()],
    );
    let got = tree(&m.path().join("STUDY/.bids"));
    assert!(
        got.contains("sub-S01/anat/sub-S01_acq-mprage_T1w.nii.gz"),
        "{got:#?}"
    );
    assert!(!got.iter().any(|p| p.contains("/dwi/")), "{got:#?}");
    let skipped =
        fs::read_to_string(m.path().join("STUDY/.bids/sourcedata/xnatfs-skipped.tsv")).unwrap();
    assert!(
        skipped.contains("excluded by the mapping file"),
        "{skipped}"
    );
}

/// One CSV line into its values (quotes as RFC 4180 has them).
fn csv_values(line: &str) -> Vec<String> {
    let mut values = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                values.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => values.push(String::new()),
            (c, _) => values.last_mut().unwrap().push(c),
        }
    }
    values
}

#[test]
fn the_tables_hold_the_rows_the_server_lists() {
    let sim = study_sim();
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    let tables = m.path().join("STUDY/.tables");
    let names: BTreeSet<String> = fs::read_dir(&tables)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["experiments.csv", "files.csv", "scans.csv", "subjects.csv"]
            .map(String::from)
            .into()
    );
    let (subjects, sessions, scans) = sim.store().read(|a| {
        let subjects: BTreeSet<(String, String)> = a
            .subjects
            .values()
            .filter(|s| s.project == "STUDY")
            .map(|s| (s.label.clone(), s.id.clone()))
            .collect();
        let sessions: BTreeSet<(String, String, String)> = a
            .experiments
            .values()
            .filter(|e| e.project == "STUDY")
            .map(|e| (e.label.clone(), e.id.clone(), e.date.clone()))
            .collect();
        let scans: usize = a
            .experiments
            .values()
            .filter(|e| e.project == "STUDY")
            .map(|e| e.scans.len())
            .sum();
        (subjects, sessions, scans)
    });
    let read = |name: &str| fs::read_to_string(tables.join(name)).unwrap();
    let rows = |text: &str| -> Vec<Vec<String>> { text.lines().skip(1).map(csv_values).collect() };
    let got: BTreeSet<(String, String)> = rows(&read("subjects.csv"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(got, subjects);
    let experiments = read("experiments.csv");
    assert!(experiments.starts_with("label,ID,subject_label,subject_ID,xsiType,date,"));
    let got: BTreeSet<(String, String, String)> = rows(&experiments)
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[5].clone()))
        .collect();
    assert_eq!(got, sessions);
    let scan_rows = rows(&read("scans.csv"));
    assert_eq!(scan_rows.len(), scans);
    assert!(scan_rows.iter().any(|r| r[3] == "DWI"
        && r[4] == "dMRI_dir6_AP"
        && r[6] == "DICOM;NIFTI"
        || r[3] == "DWI" && r[6] == "NIFTI;DICOM"));
    // Every file row names a file of the mount with that size and MD5.
    let expected = expected_files(sim.store(), Some("STUDY"));
    let file_rows = rows(&read("files.csv"));
    assert_eq!(file_rows.len(), expected.len());
    for r in &file_rows {
        let exp = &expected[&format!("STUDY/{}", r[0])];
        assert_eq!(r[1], exp.size.to_string(), "{}", r[0]);
        assert_eq!(r[2], exp.md5, "{}", r[0]);
    }
}

#[test]
fn a_dax_bids_datatype_resource_of_the_project_is_read() {
    let sim = study_sim();
    let r = sim.add_resource(ResourceOwner::Project("STUDY".into()), "BIDS_datatype");
    // dax's shape: per project, scan type → datatype. A field map said to be anat is no T1w.
    sim.add_file(
        r,
        "BIDS_datatype.json",
        br#"{"STUDY": {"field_map": "anat"}, "OTHER": {"MPRAGE": "func"}}"#,
    );
    let m = Mount::start(&sim.url(), USER, PASS, &[]);
    let got = tree(&m.path().join("STUDY/.bids"));
    assert!(!got.iter().any(|p| p.contains("/fmap/")), "{got:#?}");
    assert!(got.contains("sub-S01/anat/sub-S01_T1w.nii.gz"), "{got:#?}");
    let skipped =
        fs::read_to_string(m.path().join("STUDY/.bids/sourcedata/xnatfs-skipped.tsv")).unwrap();
    assert!(
        skipped.contains("SpinEchoFieldMap_PA\tthe mapping file says anat"),
        "{skipped}"
    );
}

#[test]
fn the_bids_view_costs_no_more_listings_than_a_walk_and_follows_the_server() {
    let sim = study_sim();
    let walk = {
        let m = Mount::start(&sim.url(), USER, PASS, &[]);
        sim.server.reset_stats();
        tree(&m.path().join("STUDY"));
        sim.listings()
    };
    let m = Mount::start(&sim.url(), USER, PASS, &["--metadata-ttl", "1"]);
    sim.server.reset_stats();
    let before = tree(&m.path().join("STUDY/.bids"));
    let bids = sim.listings();
    println!("listings: walk of STUDY {walk}, .bids {bids}");
    assert!(bids <= walk, ".bids cost {bids} listings, a walk {walk}");
    // A scan added on the server shows once the listings' TTL has run out.
    let session = sim.store().read(|a| {
        a.experiments
            .values()
            .find(|e| e.label == "S-02_MR1")
            .unwrap()
            .id
            .clone()
    });
    sim.store()
        .write(|a| {
            a.add_scan(
                &session,
                xnat_sim::model::Scan {
                    id: "8".into(),
                    xsi_type: "xnat:mrScanData".into(),
                    scan_type: "FLAIR".into(),
                    series_description: "t2_flair_tra".into(),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    let r = sim.add_resource(
        ResourceOwner::Scan {
            experiment: session,
            scan: "8".into(),
        },
        "NIFTI",
    );
    sim.add_file(r, "flair.nii.gz", &[1u8; 500]);
    let flair = m
        .path()
        .join("STUDY/.bids/sub-S02/anat/sub-S02_FLAIR.nii.gz");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !flair.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the new scan never showed in .bids: {before:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(fs::read(&flair).unwrap(), vec![1u8; 500]);
}
