//! `<project>/.bids`: the project as a BIDS dataset, made from its listings.
//!
//! - Subjects and sessions are named from their XNAT labels with every character that is not an
//!   ASCII letter or digit removed (`P-001` → `sub-P001`); a label that comes out empty or taken
//!   by another subject (session of the subject) uses the accession ID the same way
//!   (`XNAT_S00002` → `sub-XNATS00002`), so names never collide.
//! - `ses-` folders appear only when some subject has more than one session with images.
//! - Each scan's name comes from `bids_map`; its image is the one `.nii`/`.nii.gz` of its `BIDS`
//!   resource (else `NIFTI`), with the resource's `.json`, `.bval`, `.bvec` and (func) `.tsv`
//!   beside it as sidecars. Scans of a session that map to the same name get `run-<n>` in scan
//!   ID order.
//! - Scans left out are listed with the reason in `sourcedata/xnatfs-skipped.tsv` (validators
//!   ignore `sourcedata`).
//! - `dataset_description.json`, `README`, `participants.tsv`/`.json` and, with sessions,
//!   `sub-<x>/sub-<x>_sessions.tsv` are written by the view.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;

use super::bids_map::{map_scan, BidsMap, BidsName, Mapping};
use super::{add, scan_order, Entry, Listings, ViewTree, BIDS_DIR};
use crate::xnat::{CatalogFile, Owner, SessionScan};

/// The resources a scan's images are taken from, in order of preference.
const IMAGE_RESOURCES: &[&str] = &["BIDS", "NIFTI"];

/// The sessions whose scan files the view needs: those with a scan that maps to a name and has
/// an image resource. Listing only these keeps `.bids` as cheap as a walk of those sessions.
pub fn sessions_to_list(l: &Listings<'_>, map: &BidsMap) -> Vec<String> {
    let mut sessions: Vec<String> = l
        .scans
        .iter()
        .filter(|s| image_resource(s).is_some())
        .filter(|s| {
            matches!(
                map_scan(map, &s.scan_type, &s.series_description),
                Mapping::Named(_)
            )
        })
        .map(|s| s.experiment_id.clone())
        .collect();
    sessions.sort();
    sessions.dedup();
    sessions
}

fn image_resource(scan: &SessionScan) -> Option<&'static str> {
    IMAGE_RESOURCES
        .iter()
        .find(|r| scan.resources.iter().any(|x| x == *r))
        .copied()
}

/// Only ASCII letters and digits.
pub fn bids_label(label: &str) -> String {
    label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Labels for `(id, label)` pairs: the cleaned label, or the cleaned ID where that is empty
/// or taken.
fn unique_labels<'a>(items: impl Iterator<Item = (&'a str, &'a str)>) -> HashMap<String, String> {
    let items: Vec<(&str, &str)> = items.collect();
    let mut count: HashMap<String, usize> = HashMap::new();
    for (_, label) in &items {
        *count.entry(bids_label(label)).or_default() += 1;
    }
    let mut out = HashMap::new();
    let mut used = HashSet::new();
    for (id, label) in items {
        let clean = bids_label(label);
        let name = if !clean.is_empty() && count[&clean] == 1 {
            clean
        } else {
            let mut by_id = bids_label(id);
            while by_id.is_empty() || used.contains(&by_id) || count.contains_key(&by_id) {
                by_id.push('x');
            }
            by_id
        };
        used.insert(name.clone());
        out.insert(id.to_string(), name);
    }
    out
}

/// A scan that made it into the view.
struct Placed<'a> {
    subject: String,
    session: String,
    scan: &'a SessionScan,
    name: BidsName,
    resource: &'static str,
    image: &'a CatalogFile,
    sidecars: Vec<&'a CatalogFile>,
}

fn is_image(path: &str) -> bool {
    path.ends_with(".nii") || path.ends_with(".nii.gz")
}

/// The extension a sidecar keeps, and the suffix it takes instead of the scan's (events).
fn sidecar_kind(path: &str, datatype: &str) -> Option<(&'static str, Option<&'static str>)> {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".json") {
        Some((".json", None))
    } else if lower.ends_with(".bval") {
        Some((".bval", None))
    } else if lower.ends_with(".bvec") {
        Some((".bvec", None))
    } else if lower.ends_with(".tsv") && datatype == "func" {
        Some((".tsv", Some("events")))
    } else {
        None
    }
}

/// The `.bids` tree of a project.
pub fn tree(l: &Listings<'_>, map: &BidsMap) -> ViewTree {
    let subject_names = unique_labels(l.subjects.iter().map(|s| (s.id.as_str(), s.label.as_str())));
    let mut sessions_of: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for e in l.experiments {
        sessions_of
            .entry(e.subject_id.as_str())
            .or_default()
            .push((e.id.as_str(), e.label.as_str()));
    }
    let mut session_names: HashMap<String, String> = HashMap::new();
    for sessions in sessions_of.values() {
        session_names.extend(unique_labels(sessions.iter().copied()));
    }
    let subject_of: HashMap<&str, &str> = l
        .experiments
        .iter()
        .map(|e| (e.id.as_str(), e.subject_id.as_str()))
        .collect();
    let session_label: HashMap<&str, &str> = l
        .experiments
        .iter()
        .map(|e| (e.id.as_str(), e.label.as_str()))
        .collect();

    let mut scans: Vec<&SessionScan> = l.scans.iter().collect();
    scans.sort_by_key(|s| (s.experiment_id.clone(), scan_order(&s.id)));
    let mut placed: Vec<Placed<'_>> = Vec::new();
    let mut skipped: Vec<(String, &SessionScan, String)> = Vec::new();
    for scan in scans {
        let Some(subject_id) = subject_of.get(scan.experiment_id.as_str()) else {
            continue;
        };
        let where_ = format!(
            "{}/{}",
            l.project,
            session_label
                .get(scan.experiment_id.as_str())
                .unwrap_or(&scan.experiment_id.as_str())
        );
        let name = match map_scan(map, &scan.scan_type, &scan.series_description) {
            Mapping::Named(name) => name,
            Mapping::Skipped(why) => {
                skipped.push((where_, scan, why));
                continue;
            }
        };
        let Some(resource) = image_resource(scan) else {
            skipped.push((where_, scan, "no NIFTI or BIDS resource".into()));
            continue;
        };
        let files: Vec<&CatalogFile> = l
            .scan_files
            .get(&scan.experiment_id)
            .map(|rows| {
                rows.iter()
                    .filter(|r| r.scan_id == scan.id && r.resource_label() == resource)
                    .map(|r| &r.file)
                    .collect()
            })
            .unwrap_or_default();
        let images: Vec<&CatalogFile> = files
            .iter()
            .copied()
            .filter(|f| is_image(&f.path))
            .collect();
        let image = match images.as_slice() {
            [one] => *one,
            [] => {
                skipped.push((where_, scan, format!("no NIfTI file in {resource}")));
                continue;
            }
            many => {
                skipped.push((
                    where_,
                    scan,
                    format!("{} NIfTI files in {resource}, one expected", many.len()),
                ));
                continue;
            }
        };
        let mut seen = HashSet::new();
        let mut sidecars: Vec<&CatalogFile> = files
            .iter()
            .copied()
            .filter(|f| sidecar_kind(&f.path, &name.datatype).is_some())
            .collect();
        sidecars.sort_by(|a, b| a.path.cmp(&b.path));
        sidecars.retain(|f| seen.insert(sidecar_kind(&f.path, &name.datatype)));
        placed.push(Placed {
            subject: subject_names[*subject_id].clone(),
            session: session_names
                .get(&scan.experiment_id)
                .cloned()
                .unwrap_or_else(|| bids_label(&scan.experiment_id)),
            scan,
            name,
            resource,
            image,
            sidecars,
        });
    }

    // Runs: scans of one session that map to the same name, numbered in scan order.
    let mut same: HashMap<(String, String, String), usize> = HashMap::new();
    for p in &placed {
        *same
            .entry((
                p.scan.experiment_id.clone(),
                p.name.datatype.clone(),
                p.name.stem(),
            ))
            .or_default() += 1;
    }
    let mut run: HashMap<(String, String, String), usize> = HashMap::new();
    for p in &mut placed {
        let key = (
            p.scan.experiment_id.clone(),
            p.name.datatype.clone(),
            p.name.stem(),
        );
        if same[&key] > 1 {
            let n = run.entry(key).or_default();
            *n += 1;
            p.name = p.name.with_run(*n);
        }
    }

    let mut sessions_per_subject: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for p in &placed {
        sessions_per_subject
            .entry(p.subject.as_str())
            .or_default()
            .insert(p.session.as_str());
    }
    let with_sessions = sessions_per_subject.values().any(|s| s.len() > 1);

    let mut tree = ViewTree::new();
    tree.insert(BIDS_DIR.to_string(), Vec::new());
    for p in &placed {
        let mut dir = format!("{BIDS_DIR}/sub-{}", p.subject);
        let mut prefix = format!("sub-{}", p.subject);
        if with_sessions {
            dir.push_str(&format!("/ses-{}", p.session));
            prefix.push_str(&format!("_ses-{}", p.session));
        }
        dir.push('/');
        dir.push_str(&p.name.datatype);
        let owner = Owner::Scan {
            experiment: p.scan.experiment_id.clone(),
            scan: p.scan.id.clone(),
        };
        let ext = if p.image.path.ends_with(".nii.gz") {
            ".nii.gz"
        } else {
            ".nii"
        };
        let stem = p.name.stem();
        let mut files = vec![(format!("{prefix}_{stem}{ext}"), p.image)];
        for side in &p.sidecars {
            let (ext, suffix) = sidecar_kind(&side.path, &p.name.datatype).expect("a sidecar");
            let stem = match suffix {
                Some(s) => BidsName {
                    suffix: s.to_string(),
                    ..p.name.clone()
                }
                .stem(),
                None => stem.clone(),
            };
            files.push((format!("{prefix}_{stem}{ext}"), side));
        }
        for (name, file) in files {
            let entry = Entry::Archive {
                owner: owner.clone(),
                resource: p.resource.to_string(),
                file: Box::new((*file).clone()),
            };
            add(&mut tree, &dir, name, entry);
        }
    }

    let made = |tree: &mut ViewTree, dir: &str, name: &str, bytes: String| {
        add(tree, dir, name.to_string(), Entry::Made(Bytes::from(bytes)));
    };
    made(
        &mut tree,
        BIDS_DIR,
        "dataset_description.json",
        description(l),
    );
    made(&mut tree, BIDS_DIR, "README", readme(l));
    let mut participants = String::from("participant_id\txnat_label\txnat_id\n");
    for s in l.subjects {
        let name = &subject_names[&s.id];
        if sessions_per_subject.contains_key(name.as_str()) {
            participants.push_str(&format!("sub-{name}\t{}\t{}\n", tsv(&s.label), tsv(&s.id)));
        }
    }
    made(&mut tree, BIDS_DIR, "participants.tsv", participants);
    made(
        &mut tree,
        BIDS_DIR,
        "participants.json",
        PARTICIPANTS_JSON.to_string(),
    );
    if with_sessions {
        for (subject, sessions) in &sessions_per_subject {
            let mut rows = String::from("session_id\txnat_label\txnat_id\n");
            let mut ids: Vec<(&String, &String)> = session_names
                .iter()
                .filter(|(id, name)| {
                    sessions.contains(name.as_str())
                        && subject_of.get(id.as_str()).is_some_and(|s| {
                            subject_names.get(*s).map(String::as_str) == Some(subject)
                        })
                })
                .collect();
            ids.sort_by(|a, b| a.1.cmp(b.1));
            for (id, name) in ids {
                let label = session_label.get(id.as_str()).copied().unwrap_or("");
                rows.push_str(&format!("ses-{name}\t{}\t{}\n", tsv(label), tsv(id)));
            }
            let dir = format!("{BIDS_DIR}/sub-{subject}");
            made(
                &mut tree,
                &dir,
                &format!("sub-{subject}_sessions.tsv"),
                rows,
            );
        }
    }
    let mut report = String::from("session\tscan\ttype\tseries_description\treason\n");
    for (where_, scan, why) in &skipped {
        report.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            tsv(where_),
            tsv(&scan.id),
            tsv(&scan.scan_type),
            tsv(&scan.series_description),
            tsv(why)
        ));
    }
    made(
        &mut tree,
        &format!("{BIDS_DIR}/sourcedata"),
        "xnatfs-skipped.tsv",
        report,
    );
    for entries in tree.values_mut() {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
    }
    tree
}

/// A TSV value: tabs and line breaks would split it, so they become spaces.
fn tsv(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

const PARTICIPANTS_JSON: &str = r#"{
  "participant_id": {"Description": "BIDS subject label, from the XNAT subject label"},
  "xnat_label": {"Description": "The subject's label in XNAT"},
  "xnat_id": {"Description": "The subject's accession ID in XNAT"}
}
"#;

fn description(l: &Listings<'_>) -> String {
    let value = serde_json::json!({
        "Name": l.name,
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "GeneratedBy": [{
            "Name": "xnatfs",
            "Version": env!("CARGO_PKG_VERSION"),
            "Description": format!("A view of XNAT project {} as BIDS, read in place", l.project),
        }],
    });
    let mut text = serde_json::to_string_pretty(&value).expect("JSON");
    text.push('\n');
    text
}

fn readme(l: &Listings<'_>) -> String {
    format!(
        "XNAT project {} ({}), shown as a BIDS dataset by xnatfs.\n\n\
         The images are the scans' NIfTI files, read from the server in place; this folder is\n\
         read-only. Scans that map to no BIDS name are listed, with the reason, in\n\
         sourcedata/xnatfs-skipped.tsv.\n",
        l.project, l.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xnat::{Experiment, ScanFile, Subject};

    fn subject(id: &str, label: &str) -> Subject {
        Subject {
            id: id.into(),
            label: label.into(),
            project: "P".into(),
            ..Default::default()
        }
    }

    fn session(id: &str, label: &str, subject: &str) -> Experiment {
        Experiment {
            id: id.into(),
            label: label.into(),
            project: "P".into(),
            subject_id: subject.into(),
            xsi_type: "xnat:mrSessionData".into(),
            ..Default::default()
        }
    }

    fn scan(e: &str, id: &str, t: &str, d: &str, resources: &[&str]) -> SessionScan {
        SessionScan {
            experiment_id: e.into(),
            id: id.into(),
            scan_type: t.into(),
            series_description: d.into(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        }
    }

    fn file(scan: &str, resource: &str, path: &str) -> ScanFile {
        ScanFile {
            scan_id: scan.into(),
            resource_id: "1".into(),
            file: CatalogFile {
                name: path.into(),
                path: path.into(),
                size: Some(10),
                collection: resource.into(),
                ..Default::default()
            },
        }
    }

    fn names(tree: &ViewTree) -> Vec<String> {
        tree.iter()
            .flat_map(|(dir, entries)| {
                entries.iter().map(move |(n, e)| match e {
                    Entry::Dir => format!("{dir}/{n}/"),
                    _ => format!("{dir}/{n}"),
                })
            })
            .collect()
    }

    #[test]
    fn one_session_each_no_ses_runs_numbered_sidecars_beside() {
        let subjects = [subject("S1", "P-001"), subject("S2", "P_001")];
        let experiments = [session("E1", "P-001_MR1", "S1"), session("E2", "x", "S2")];
        let scans = [
            scan("E1", "1", "localizer", "AAHead_Scout", &["NIFTI"]),
            scan("E1", "2", "MPRAGE", "anat-T1w", &["NIFTI", "DICOM"]),
            scan("E1", "10", "fMRI", "func-bold_task-rest", &["NIFTI"]),
            scan("E1", "3", "fMRI", "func-bold_task-rest", &["NIFTI"]),
            scan("E1", "4", "T2w", "anat-T2w", &["DICOM"]),
            scan("E2", "1", "MPRAGE", "anat-T1w", &["NIFTI"]),
        ];
        let mut scan_files = HashMap::new();
        scan_files.insert(
            "E1".to_string(),
            vec![
                file("1", "NIFTI", "loc.nii.gz"),
                file("2", "NIFTI", "t1.nii.gz"),
                file("2", "NIFTI", "t1.json"),
                file("2", "DICOM", "1.dcm"),
                file("3", "NIFTI", "r1.nii.gz"),
                file("3", "NIFTI", "r1.json"),
                file("3", "NIFTI", "r1_events.tsv"),
                file("10", "NIFTI", "r2.nii"),
            ],
        );
        scan_files.insert("E2".to_string(), vec![file("1", "NIFTI", "a.nii.gz")]);
        let l = Listings {
            project: "P",
            name: "Project",
            subjects: &subjects,
            experiments: &experiments,
            scans: &scans,
            scan_files: &scan_files,
        };
        assert_eq!(sessions_to_list(&l, &BidsMap::default()), vec!["E1", "E2"]);
        let tree = tree(&l, &BidsMap::default());
        let all = names(&tree);
        // Both labels clean to P001: both subjects fall back to their IDs.
        for want in [
            ".bids/sub-S1/",
            ".bids/sub-S1/anat/sub-S1_T1w.nii.gz",
            ".bids/sub-S1/anat/sub-S1_T1w.json",
            ".bids/sub-S1/func/sub-S1_task-rest_run-1_bold.nii.gz",
            ".bids/sub-S1/func/sub-S1_task-rest_run-1_bold.json",
            ".bids/sub-S1/func/sub-S1_task-rest_run-1_events.tsv",
            ".bids/sub-S1/func/sub-S1_task-rest_run-2_bold.nii",
            ".bids/sub-S2/anat/sub-S2_T1w.nii.gz",
            ".bids/dataset_description.json",
            ".bids/participants.tsv",
            ".bids/sourcedata/xnatfs-skipped.tsv",
        ] {
            assert!(all.contains(&want.to_string()), "{want} in {all:#?}");
        }
        assert!(!all.iter().any(|n| n.contains("ses-")), "{all:#?}");
        let Entry::Made(report) = &tree[".bids/sourcedata"][0].1 else {
            panic!("a made file")
        };
        let report = String::from_utf8_lossy(report);
        assert!(report.contains("AAHead_Scout\ta localizer"), "{report}");
        assert!(
            report.contains("anat-T2w\tno NIFTI or BIDS resource"),
            "{report}"
        );
    }

    #[test]
    fn two_sessions_make_ses_folders_and_sessions_tables() {
        let subjects = [subject("S1", "A")];
        let experiments = [session("E1", "A_1", "S1"), session("E2", "A_2", "S1")];
        let scans = [
            scan("E1", "1", "MPRAGE", "anat-T1w", &["NIFTI"]),
            scan("E2", "1", "MPRAGE", "anat-T1w", &["NIFTI"]),
        ];
        let mut scan_files = HashMap::new();
        scan_files.insert("E1".to_string(), vec![file("1", "NIFTI", "a.nii.gz")]);
        scan_files.insert("E2".to_string(), vec![file("1", "NIFTI", "b.nii.gz")]);
        let l = Listings {
            project: "P",
            name: "P",
            subjects: &subjects,
            experiments: &experiments,
            scans: &scans,
            scan_files: &scan_files,
        };
        let all = names(&tree(&l, &BidsMap::default()));
        assert!(all.contains(&".bids/sub-A/ses-A1/anat/sub-A_ses-A1_T1w.nii.gz".to_string()));
        assert!(all.contains(&".bids/sub-A/ses-A2/anat/sub-A_ses-A2_T1w.nii.gz".to_string()));
        assert!(all.contains(&".bids/sub-A/sub-A_sessions.tsv".to_string()));
    }
}
