//! Synthetic archives of a given shape, deterministic from a seed: valid
//! NIfTI-1 `.nii.gz` volumes in NIFTI resources, DICOM-sized Part-10 files
//! in DICOM resources, scan types from a realistic list, optional image
//! assessors with out-resources, and optionally one big file (generated fast
//! and streamed) for throughput benchmarks. Also [`add_file`], which
//! catalogues bytes under any path, hostile or not.

mod bytes;
mod dicom;
mod nifti;
mod study;

pub use study::{study, STUDY_PROJECT};

pub use bytes::PatternReader;
pub use dicom::{file as dicom_file, Series as DicomSeries};

use crate::model::{now_ms, CatalogFile, ResourceOwner, Scan};
use crate::store::Store;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{self, Read};

/// Scan types and the series descriptions that go with them.
pub const SCAN_TYPES: &[(&str, &str)] = &[
    ("localizer", "AAHead_Scout"),
    ("mprage", "T1w_MPRAGE_sag_1mm"),
    ("T2w", "T2w_SPC_sag_1mm"),
    ("FLAIR", "t2_flair_tra"),
    ("DWI", "dMRI_dir98_AP"),
    ("rest_fmri", "rfMRI_REST_AP"),
    ("field_map", "SpinEchoFieldMap_AP"),
];

/// The shape of a synthetic archive. Counts are per parent.
#[derive(Debug, Clone)]
pub struct Shape {
    pub seed: u64,
    pub projects: usize,
    pub subjects: usize,
    pub sessions: usize,
    pub scans: usize,
    /// Resource labels made on every scan (`NIFTI`, `DICOM`, anything else = plain bytes).
    pub resources: Vec<String>,
    /// Files per resource.
    pub files: usize,
    /// Size of DICOM and plain files; NIfTI volumes are about this size too.
    pub file_size: u64,
    /// QC assessors per session, each with a `QC` out-resource.
    pub assessors: usize,
    /// One extra file of this size in resource `BIG` of the first scan.
    pub big_file: Option<u64>,
    /// Users made members of every generated project (they create and edit).
    pub members: Vec<String>,
    /// Users made owners of every generated project (they also delete).
    pub owners: Vec<String>,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            seed: 1,
            projects: 1,
            subjects: 2,
            sessions: 1,
            scans: 3,
            resources: vec!["NIFTI".into(), "DICOM".into()],
            files: 2,
            file_size: 512 * 1024,
            assessors: 0,
            big_file: None,
            members: Vec::new(),
            owners: Vec::new(),
        }
    }
}

/// What `populate` made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub projects: Vec<String>,
    pub files: usize,
    pub bytes: u64,
    /// Listing URI of the big file, if one was made.
    pub big_file_uri: Option<String>,
}

/// Catalogues the bytes read from `data` as `path` in resource `resource`
/// (any path: nothing is checked). An existing entry moves to history.
pub fn add_file(store: &Store, resource: u64, path: &str, mut data: impl Read) -> io::Result<()> {
    let mut w = store.blob_writer()?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = data.read(&mut buf)?;
        if n == 0 {
            break;
        }
        w.write(&buf[..n])?;
    }
    let written = w.finish()?;
    store.write(|a| -> io::Result<()> {
        let blob = a.next_blob();
        let (size, digest) = (written.size, written.digest.clone());
        store.commit_blob(written, blob)?;
        a.put_file(
            resource,
            CatalogFile {
                path: path.to_string(),
                size,
                digest,
                blob,
                format: String::new(),
                content: String::new(),
                tags: Vec::new(),
                modified_ms: now_ms(),
            },
        );
        Ok(())
    })?
}

/// Plants a file whose name on the server's disk is `name`, bytes that need not be UTF-8, as
/// XNAT sees one after a catalog refresh: Java decodes the name with U+FFFD for each invalid
/// sequence, so the catalog lists the decoded name, and asking for that name finds no file
/// (404 "File missing"). A UTF-8 name is planted as [`add_file`] does. Returns the listed name.
pub fn add_file_named(
    store: &Store,
    resource: u64,
    name: &[u8],
    data: impl Read,
) -> io::Result<String> {
    let listed = String::from_utf8_lossy(name).into_owned();
    add_file(store, resource, &listed, data)?;
    if std::str::from_utf8(name).is_err() {
        let blob = store.read(|a| {
            a.resources
                .get(&resource)
                .and_then(|r| r.file(&listed))
                .map(|f| f.blob)
        });
        if let Some(blob) = blob {
            store.remove_blobs(&[blob]);
        }
    }
    Ok(listed)
}

/// Builds the archive into `store`. Project IDs are `SIM01`, `SIM02`, …;
/// an existing project of that ID is an error.
pub fn populate(store: &Store, shape: &Shape) -> io::Result<Summary> {
    store.batch(|| build(store, shape))
}

fn build(store: &Store, shape: &Shape) -> io::Result<Summary> {
    let mut rng = ChaCha8Rng::seed_from_u64(shape.seed);
    let mut summary = Summary::default();
    for p in 0..shape.projects {
        let pid = format!("SIM{:02}", p + 1);
        if store.read(|a| a.projects.contains_key(&pid)) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("project {pid} already exists"),
            ));
        }
        store.write(|a| {
            let proj = a.add_project(&pid, "");
            proj.name = format!("Simulated project {}", p + 1);
            proj.description = format!("xnat-sim populate --seed {}", shape.seed);
            proj.members.extend(shape.members.iter().cloned());
            proj.owners.extend(shape.owners.iter().cloned());
        })?;
        summary.projects.push(pid.clone());
        for s in 0..shape.subjects {
            let slabel = format!("{pid}_S{:03}", s + 1);
            let sid = store.write(|a| {
                let id = a.add_subject(&pid, &slabel, "xnat-sim");
                if let Some(subject) = a.subjects.get_mut(&id) {
                    demographics(subject, s);
                }
                id
            })?;
            for e in 0..shape.sessions {
                let elabel = format!("{slabel}_MR{}", e + 1);
                let day = rng.gen_range(1..=28);
                let month = rng.gen_range(1..=12);
                let date = format!("2024-{month:02}-{day:02}");
                let time = format!("{:02}:{:02}:00", 8 + (s + e) % 10, (s * 7 + e * 13) % 60);
                let eid = store.write(|a| {
                    let id = a.add_experiment(&sid, &elabel, "xnat:mrSessionData", "xnat-sim");
                    if let Some(x) = a.experiments.get_mut(&id) {
                        x.date = date.clone();
                        session_fields(x, &time);
                    }
                    id
                })?;
                for n in 0..shape.scans {
                    let (stype, desc) = SCAN_TYPES[rng.gen_range(0..SCAN_TYPES.len())];
                    let scan_id = (n + 1).to_string();
                    store.write(|a| {
                        a.add_scan(
                            &eid,
                            Scan {
                                id: scan_id.clone(),
                                xsi_type: "xnat:mrScanData".into(),
                                scan_type: stype.into(),
                                series_description: desc.into(),
                                quality: "usable".into(),
                                ..Default::default()
                            },
                        )
                    })?;
                    let owner = ResourceOwner::Scan {
                        experiment: eid.clone(),
                        scan: scan_id.clone(),
                    };
                    for label in &shape.resources {
                        let rid = store.write(|a| {
                            let id = a.add_resource(owner.clone(), label);
                            if let Some(r) = a.resources.get_mut(&id) {
                                r.format = label.clone();
                            }
                            id
                        })?;
                        for f in 0..shape.files {
                            let file_seed = rng.gen::<u64>();
                            let series = dicom::Series {
                                date: &date,
                                time: &time,
                                patient: &slabel,
                                series_description: desc,
                                series_number: &scan_id,
                                study_key: seed_key(&eid),
                                series_key: n as u64 + 1,
                            };
                            let (name, data) = synthetic_file(
                                label,
                                (&elabel, &series),
                                stype,
                                f,
                                shape.file_size,
                                file_seed,
                            )?;
                            summary.files += 1;
                            summary.bytes += data.len() as u64;
                            add_file(store, rid, &name, &data[..])?;
                        }
                    }
                    if let (Some(size), 0, 0, 0, 0) = (shape.big_file, p, s, e, n) {
                        let rid = store.write(|a| a.add_resource(owner.clone(), "BIG"))?;
                        add_file(store, rid, "big.bin", PatternReader::new(shape.seed, size))?;
                        summary.files += 1;
                        summary.bytes += size;
                        summary.big_file_uri = Some(format!(
                            "/data/experiments/{eid}/scans/{scan_id}/resources/{rid}/files/big.bin"
                        ));
                    }
                }
                for q in 0..shape.assessors {
                    let qlabel = format!("{elabel}_QC{}", q + 1);
                    let rid = store.write(|a| {
                        let aid =
                            a.add_assessor(&eid, &qlabel, "xnat:qcAssessmentData", "xnat-sim");
                        a.add_resource(ResourceOwner::Experiment(aid), "QC")
                    })?;
                    let report = format!(
                        "{{\"session\":\"{elabel}\",\"pass\":{}}}\n",
                        rng.gen::<bool>()
                    );
                    add_file(store, rid, "report.json", report.as_bytes())?;
                    add_file(
                        store,
                        rid,
                        "snapshots/axial.png",
                        &PatternReader::new(rng.gen(), 4096).bytes()[..],
                    )?;
                    summary.files += 2;
                }
            }
        }
    }
    Ok(summary)
}

/// A number from an accession ID (`SIM_E00012` → 12), for DICOM UIDs.
fn seed_key(id: &str) -> u64 {
    let digits: String = id.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or(0)
}

/// Demographics as XNAT keeps them (`xnat:demographicData`), varied by subject number.
fn demographics(subject: &mut crate::model::Subject, n: usize) {
    let f = &mut subject.fields;
    f.insert("gender".into(), ["male", "female"][n % 2].into());
    f.insert(
        "handedness".into(),
        ["right", "left", "right"][n % 3].into(),
    );
    f.insert("yob".into(), (1960 + (n * 7) % 40).to_string());
    f.insert("src".into(), "xnat-sim".into());
    f.insert("group".into(), ["control", "patient"][n % 2].into());
}

/// The session fields a scanner's import sets (`xnat:imageSessionData`).
fn session_fields(x: &mut crate::model::Experiment, time: &str) {
    let f = &mut x.fields;
    f.insert("time".into(), time.into());
    f.insert("scanner".into(), "xnat-sim MR".into());
    f.insert("acquisition_site".into(), "xnat-sim".into());
    f.insert("session_type".into(), "MR".into());
}

fn synthetic_file(
    label: &str,
    (session, series): (&str, &dicom::Series),
    stype: &str,
    index: usize,
    size: u64,
    seed: u64,
) -> io::Result<(String, Vec<u8>)> {
    let suffix = if index == 0 {
        String::new()
    } else {
        format!("_{index}")
    };
    Ok(match label {
        "NIFTI" => (
            format!("{session}_{}-{stype}{suffix}.nii.gz", series.series_number),
            nifti::volume(size, seed)?,
        ),
        "DICOM" => (
            format!("{:06}.dcm", index + 1),
            dicom::file(series, size, seed, index),
        ),
        _ => (
            format!("file{:03}.dat", index + 1),
            PatternReader::new(seed, size).bytes(),
        ),
    })
}
