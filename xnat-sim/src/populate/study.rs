//! `populate --study`: a small project shaped like a real MR study, for the BIDS and table
//! views: scan types and series descriptions as sites name them (ReproIn and not), NIfTI
//! resources with the sidecars dcm2niix writes (`.json`, `.bval`, `.bvec`), repeated runs, a
//! localizer, and a scan converted to nothing but DICOM.

use super::{add_file, dicom, nifti};
use crate::model::{ResourceOwner, Scan};
use crate::store::Store;
use std::io;

/// The project `populate --study` makes.
pub const STUDY_PROJECT: &str = "STUDY";

/// One scan of the study: ID, type, series description, and what its NIFTI resource holds.
struct StudyScan {
    id: &'static str,
    scan_type: &'static str,
    description: &'static str,
    image: Option<Image>,
}

/// A NIfTI image and its sidecars.
struct Image {
    volumes: u16,
    sidecar: &'static str,
    diffusion: bool,
}

const SCANS: &[StudyScan] = &[
    StudyScan {
        id: "1",
        scan_type: "localizer",
        description: "AAHead_Scout",
        image: Some(Image {
            volumes: 1,
            sidecar: r#"{"SeriesDescription": "AAHead_Scout"}"#,
            diffusion: false,
        }),
    },
    StudyScan {
        id: "2",
        scan_type: "MPRAGE",
        description: "anat-T1w",
        image: Some(Image {
            volumes: 1,
            sidecar: r#"{"SeriesDescription": "anat-T1w", "RepetitionTime": 2.3, "EchoTime": 0.00298, "FlipAngle": 9}"#,
            diffusion: false,
        }),
    },
    StudyScan {
        id: "3",
        scan_type: "rest_fmri",
        description: "func-bold_task-rest",
        image: Some(Image {
            volumes: 6,
            sidecar: r#"{"SeriesDescription": "func-bold_task-rest", "TaskName": "rest", "RepetitionTime": 2.0, "EchoTime": 0.03}"#,
            diffusion: false,
        }),
    },
    StudyScan {
        id: "4",
        scan_type: "rest_fmri",
        description: "func-bold_task-rest",
        image: Some(Image {
            volumes: 6,
            sidecar: r#"{"SeriesDescription": "func-bold_task-rest", "TaskName": "rest", "RepetitionTime": 2.0, "EchoTime": 0.03}"#,
            diffusion: false,
        }),
    },
    StudyScan {
        id: "5",
        scan_type: "DWI",
        description: "dMRI_dir6_AP",
        image: Some(Image {
            volumes: 4,
            sidecar: r#"{"SeriesDescription": "dMRI_dir6_AP", "PhaseEncodingDirection": "j-", "TotalReadoutTime": 0.05, "RepetitionTime": 3.2, "EchoTime": 0.08}"#,
            diffusion: true,
        }),
    },
    StudyScan {
        id: "6",
        scan_type: "field_map",
        description: "SpinEchoFieldMap_PA",
        image: Some(Image {
            volumes: 1,
            sidecar: r#"{"SeriesDescription": "SpinEchoFieldMap_PA", "PhaseEncodingDirection": "j", "TotalReadoutTime": 0.05, "RepetitionTime": 7.0, "EchoTime": 0.06}"#,
            diffusion: false,
        }),
    },
    StudyScan {
        id: "7",
        scan_type: "T2w",
        description: "T2w_SPC_sag",
        image: None,
    },
];

/// Subjects (label, session label, session date) of the study.
const SUBJECTS: &[(&str, &str, &str)] = &[
    ("S-01", "S-01_MR1", "2024-03-04"),
    ("S-02", "S-02_MR1", "2024-03-11"),
];

/// Build project `STUDY` into `store`, with `members` as its members.
pub fn study(store: &Store, members: &[String]) -> io::Result<()> {
    store.batch(|| build(store, members))
}

fn build(store: &Store, members: &[String]) -> io::Result<()> {
    if store.read(|a| a.projects.contains_key(STUDY_PROJECT)) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("project {STUDY_PROJECT} already exists"),
        ));
    }
    store.write(|a| {
        let p = a.add_project(STUDY_PROJECT, "");
        p.name = "A study with BIDS-like scans".into();
        p.members.extend(members.iter().cloned());
    })?;
    for (n, (subject, session, date)) in SUBJECTS.iter().enumerate() {
        let sid = store.write(|a| a.add_subject(STUDY_PROJECT, subject, "xnat-sim"))?;
        let eid = store.write(|a| {
            let id = a.add_experiment(&sid, session, "xnat:mrSessionData", "xnat-sim");
            if let Some(x) = a.experiments.get_mut(&id) {
                x.date = date.to_string();
            }
            id
        })?;
        for scan in SCANS {
            store.write(|a| {
                a.add_scan(
                    &eid,
                    Scan {
                        id: scan.id.into(),
                        xsi_type: "xnat:mrScanData".into(),
                        scan_type: scan.scan_type.into(),
                        series_description: scan.description.into(),
                        quality: "usable".into(),
                        ..Default::default()
                    },
                )
            })?;
            let owner = ResourceOwner::Scan {
                experiment: eid.clone(),
                scan: scan.id.into(),
            };
            let seed = (n as u64 + 1) * 100 + scan.id.parse::<u64>().unwrap_or(0);
            let series = dicom::Series {
                date,
                time: "09:30:00",
                patient: subject,
                series_description: scan.description,
                series_number: scan.id,
                study_key: n as u64 + 1,
                series_key: scan.id.parse().unwrap_or(0),
            };
            let dicom_id = store.write(|a| {
                let id = a.add_resource(owner.clone(), "DICOM");
                if let Some(r) = a.resources.get_mut(&id) {
                    r.format = "DICOM".into();
                }
                id
            })?;
            add_file(
                store,
                dicom_id,
                "000001.dcm",
                &dicom::file(&series, 4096, seed, 0)[..],
            )?;
            let Some(image) = &scan.image else {
                continue;
            };
            let nifti_id = store.write(|a| {
                let id = a.add_resource(owner.clone(), "NIFTI");
                if let Some(r) = a.resources.get_mut(&id) {
                    r.format = "NIFTI".into();
                }
                id
            })?;
            let stem = format!("{session}_{}_{}", scan.id, scan.description);
            let tr = if image.volumes > 1 { 2.0 } else { 0.0 };
            let tr = if image.diffusion { 3.2 } else { tr };
            let volume = nifti::series([16, 16, 8], image.volumes, tr, seed)?;
            add_file(store, nifti_id, &format!("{stem}.nii.gz"), &volume[..])?;
            add_file(
                store,
                nifti_id,
                &format!("{stem}.json"),
                format!("{}\n", image.sidecar).as_bytes(),
            )?;
            if image.diffusion {
                let bvals: Vec<&str> = (0..image.volumes)
                    .map(|v| if v == 0 { "0" } else { "1000" })
                    .collect();
                add_file(
                    store,
                    nifti_id,
                    &format!("{stem}.bval"),
                    format!("{}\n", bvals.join(" ")).as_bytes(),
                )?;
                let axis = |i: usize| -> String {
                    (0..image.volumes as usize)
                        .map(|v| if v > 0 && (v - 1) % 3 == i { "1" } else { "0" })
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let bvec = format!("{}\n{}\n{}\n", axis(0), axis(1), axis(2));
                add_file(store, nifti_id, &format!("{stem}.bvec"), bvec.as_bytes())?;
            }
        }
    }
    Ok(())
}
