//! The requests of xnatfs's write path, checked against what the listings show
//! afterwards: uploads at every level (by label and by numeric resource id,
//! empty multipart parts, nested paths, big multipart bodies), `Size` and
//! `digest` in `files` and `scans/ALL/files`, creation at every level and the
//! bulk listings that must show it, and deletion of files, folders and objects.

mod common;
use common::{fixture, start, Api, E1, FILE_COLUMNS};
use md5::{Digest, Md5};
use reqwest::blocking::multipart::{Form, Part};
use reqwest::Method;
use serde_json::Value;

fn md5_hex(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// The row of a files listing whose URI ends with `/files/{path}`.
fn file_row(rows: &[Value], path: &str) -> Option<Value> {
    let tail = format!("/files/{path}");
    rows.iter()
        .find(|r| r["URI"].as_str().unwrap().ends_with(&tail))
        .cloned()
}

fn multipart(a: &Api, url: &str, name: &str, bytes: Vec<u8>) -> (u16, String) {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
    let r = a.req(Method::POST, url).multipart(form).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn an_empty_multipart_part_stores_a_zero_byte_file() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let dir = format!("{E1}/scans/1/resources/NIFTI/files");
    // raw: refused (reference §2.5); multipart: accepted (§5 question 3: no size check there)
    assert_eq!(a.upload(&format!("{dir}/empty.txt"), b"").0, 500);
    assert_eq!(
        multipart(&a, &format!("{dir}/sub/empty.txt"), "empty.txt", Vec::new()),
        (200, String::new())
    );
    let rows = a.rows(&dir);
    let row = file_row(&rows, "sub/empty.txt").expect("listed");
    assert_eq!(row["Name"], "empty.txt");
    assert_eq!(row["Size"], "0");
    assert_eq!(row["digest"], "d41d8cd98f00b204e9800998ecf8427e");
    let r = a.get(&format!("{dir}/sub/empty.txt"));
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-length"], "0");
    assert!(r.bytes().unwrap().is_empty());
    // the same empty upload again is a duplicate; with overwrite=true it replaces
    assert_eq!(
        multipart(&a, &format!("{dir}/sub/empty.txt"), "empty.txt", Vec::new()),
        (200, r#"{"duplicates":["sub/empty.txt"]}"#.into())
    );
    assert_eq!(
        multipart(
            &a,
            &format!("{dir}/sub/empty.txt?overwrite=true"),
            "empty.txt",
            Vec::new()
        )
        .0,
        200
    );
    // an existing file can be emptied the same way
    assert_eq!(
        multipart(
            &a,
            &format!("{dir}/t1.nii.gz?overwrite=true"),
            "t1.nii.gz",
            Vec::new()
        )
        .0,
        200
    );
    assert_eq!(file_row(&a.rows(&dir), "t1.nii.gz").unwrap()["Size"], "0");
}

#[test]
fn big_multipart_bodies_are_accepted() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 5u32)
        .map(|i| (i % 253) as u8)
        .collect();
    let url = format!("{E1}/resources/BIGM/files/big.bin");
    assert_eq!(
        multipart(&a, &url, "big.bin", data.clone()),
        (200, String::new())
    );
    let row = file_row(&a.rows(&format!("{E1}/resources/BIGM/files")), "big.bin").unwrap();
    assert_eq!(row["Size"], data.len().to_string());
    assert_eq!(row["digest"], md5_hex(&data));
    assert_eq!(a.get(&url).bytes().unwrap().len(), data.len());
}

#[test]
fn a_numeric_resource_id_addresses_the_existing_resource() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let scan = format!("{E1}/scans/1/resources");
    let before = a.rows(&scan);
    let rid = before.iter().find(|r| r["label"] == "DICOM").unwrap()["xnat_abstractresource_id"]
        .as_str()
        .unwrap()
        .to_string();
    // pyxnat: POST, inbody=true, the label replaced by its numeric id
    let r = a
        .req(
            Method::POST,
            &format!(
                "{scan}/{rid}/files/c/004.dcm?format=U&content=U&tags=U&overwrite=false&inbody=true"
            ),
        )
        .body("dicom four")
        .send()
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().unwrap()),
        (200, String::new())
    );
    let after = a.rows(&scan);
    assert_eq!(after.len(), before.len(), "no resource labelled {rid}");
    assert!(!after.iter().any(|r| r["label"] == rid.as_str()));
    let dicom = a.rows(&format!("{scan}/DICOM/files"));
    assert_eq!(dicom.len(), 4);
    let row = file_row(&dicom, "c/004.dcm").unwrap();
    assert_eq!(row["cat_ID"], rid.as_str());
    assert_eq!(row["collection"], "DICOM");
    // a duplicate by numeric id is reported with its path
    let (code, body) = a.upload(&format!("{scan}/{rid}/files/a/001.dcm"), b"again");
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"duplicates":["a/001.dcm"]}"#)
    );
    assert_eq!(
        a.text(&format!("{scan}/DICOM/files/a/001.dcm")).1,
        "dicom one"
    );
    assert_eq!(
        a.upload(
            &format!("{scan}/{rid}/files/a/001.dcm?overwrite=true"),
            b"again"
        ),
        (200, String::new())
    );
    assert_eq!(a.text(&format!("{scan}/DICOM/files/a/001.dcm")).1, "again");
}

#[test]
fn uploads_at_every_level_show_size_and_md5_in_the_listings() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let levels = [
        "/data/projects/P/resources/OUT",
        "/data/projects/P/subjects/S1/resources/OUT",
        "/data/subjects/XNAT_S00001/resources/OUT2",
        &format!("{E1}/resources/OUT"),
        "/data/experiments/XNAT_E00001/scans/1/resources/NIFTI",
        &format!("{E1}/scans/T1w/resources/NEWRES"),
        &format!("{E1}/assessors/QC1/out/resources/OUT"),
        "/data/experiments/XNAT_E00001/assessors/XNAT_E00002/out/resources/OUT",
    ];
    for (i, level) in levels.iter().enumerate() {
        let body = format!("bytes for level {i}").repeat(i + 1);
        let path = format!("a/b/c{i}.nii");
        let url = format!("{level}/files/{path}");
        assert_eq!(
            a.upload(&url, body.as_bytes()),
            (200, String::new()),
            "{url}"
        );
        let rows = a.rows(&format!("{level}/files?format=json"));
        let row = file_row(&rows, &path).unwrap_or_else(|| panic!("{url} listed"));
        assert_eq!(row["Name"], format!("c{i}.nii"));
        assert_eq!(row["Size"], body.len().to_string(), "{url}");
        assert_eq!(row["digest"], md5_hex(body.as_bytes()), "{url}");
        // the listing URI downloads the bytes
        assert_eq!(a.text(row["URI"].as_str().unwrap()), (200, body.clone()));
        // a folder listing finds it
        assert!(file_row(&a.rows(&format!("{level}/files/a/")), &path).is_some());
    }
    // the session's bulk listing shows the scan uploads with their size and digest
    let bulk = a.rows("/data/experiments/XNAT_E00001/scans/ALL/files?format=json");
    let keys: Vec<&String> = bulk[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, FILE_COLUMNS);
    for (i, label) in [(4, "NIFTI"), (5, "NEWRES")] {
        let body = format!("bytes for level {i}").repeat(i + 1);
        let row = file_row(&bulk, &format!("a/b/c{i}.nii")).unwrap();
        assert_eq!(row["collection"], label);
        assert_eq!(row["Size"], body.len().to_string());
        assert_eq!(row["digest"], md5_hex(body.as_bytes()));
        assert!(row["URI"]
            .as_str()
            .unwrap()
            .starts_with("/data/experiments/XNAT_E00001/scans/1/resources/"));
    }
    // resource listings count the new files
    let res = a.rows("/data/projects/P/subjects/S1/resources");
    let labels: Vec<&str> = res.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["OUT", "OUT2"]);
    let nifti = a.rows(&format!("{E1}/scans/1/resources"));
    let nifti = nifti.iter().find(|r| r["label"] == "NIFTI").unwrap();
    assert_eq!(nifti["file_count"], "2");
    let want = "t1 volume".len() + "bytes for level 4".len() * 5;
    assert_eq!(nifti["file_size"], want.to_string());
}

#[test]
fn created_objects_appear_in_the_bulk_listings() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    // subject: 201 + new ID, then 200 + the same ID
    let (code, sid) = a.put("/data/projects/P/subjects/S7");
    assert_eq!(code, 201);
    assert_eq!(a.put("/data/projects/P/subjects/S7"), (200, sid.clone()));
    // experiment: needs xsiType (417), then 201 + ID / 200 + ID
    let exp = "/data/projects/P/subjects/S7/experiments/S7_MR1";
    assert_eq!(a.put(exp).0, 417);
    let (code, eid) = a.put(&format!("{exp}?xsiType=xnat:mrSessionData"));
    assert_eq!(code, 201);
    assert_eq!(
        a.put(&format!("{exp}?xsiType=xnat:mrSessionData")),
        (200, eid.clone())
    );
    // scans: the xpath form and the `type=` shortcut; a new scan needs xsiType (400)
    assert_eq!(a.put(&format!("/data/experiments/{eid}/scans/5")).0, 400);
    assert_eq!(
        a.put(&format!(
            "/data/experiments/{eid}/scans/5?xsiType=xnat:mrScanData&xnat:mrScanData/type=T1w"
        ))
        .0,
        200
    );
    assert_eq!(
        a.put(&format!("{exp}/scans/6?xsiType=xnat:mrScanData&type=T2w"))
            .0,
        200
    );
    // resources at every level: 200 + numeric id, then 409
    let levels = [
        "/data/projects/P/resources/NEWP".to_string(),
        "/data/projects/P/subjects/S7/resources/NEWS".to_string(),
        format!("{exp}/resources/NEWE"),
        format!("/data/experiments/{eid}/scans/5/resources/NIFTI"),
        format!("{E1}/assessors/QC1/out/resources/NEWA"),
    ];
    for level in &levels {
        let (code, id) = a.put(&format!("{level}?format=NIFTI"));
        assert_eq!(code, 200, "{level}");
        assert!(id.parse::<u64>().is_ok(), "{level}: {id}");
        let (code, body) = a.put(level);
        assert_eq!(code, 409, "{level}");
        assert!(body.contains("Specified resource already exists"));
        let parent = level.rsplit_once('/').unwrap().0;
        let row = a
            .rows(parent)
            .into_iter()
            .find(|r| r["label"] == level.rsplit('/').next().unwrap())
            .unwrap_or_else(|| panic!("{level} listed"));
        assert_eq!(row["xnat_abstractresource_id"], id.as_str());
        assert_eq!(row["format"], "NIFTI");
        assert_eq!(row["file_count"], "0");
    }
    // the listings the filesystem walks
    let subjects = a.rows("/data/projects/P/subjects?format=json");
    assert!(subjects
        .iter()
        .any(|s| s["label"] == "S7" && s["ID"] == sid.as_str()));
    let exps = a.rows(
        "/data/projects/P/experiments?format=json&columns=ID,label,subject_label,subject_ID,xsiType,date",
    );
    let row = exps.iter().find(|e| e["label"] == "S7_MR1").unwrap();
    assert_eq!(
        (&row["ID"], &row["subject_label"], &row["xsiType"]),
        (
            &Value::from(eid.as_str()),
            &Value::from("S7"),
            &Value::from("xnat:mrSessionData")
        )
    );
    let bulk = a.rows(
        "/data/experiments?project=P&xsiType=xnat:imageSessionData&format=json&columns=ID,URI,label,subject_label,project,xnat:imagesessiondata/subject_id,xnat:imagescandata/id,xnat:imagescandata/type,xnat:imagescandata/quality,xnat:imagescandata/series_description,xnat:imagescandata/file/label",
    );
    let mine: Vec<(String, String, String)> = bulk
        .iter()
        .filter(|r| r["ID"] == eid.as_str())
        .map(|r| {
            let cell = |k: &str| r[k].as_str().unwrap().to_string();
            (
                cell("xnat:imagescandata/id"),
                cell("xnat:imagescandata/type"),
                cell("xnat:imagescandata/file/label"),
            )
        })
        .collect();
    assert_eq!(
        mine,
        [
            ("5".into(), "T1w".into(), "NIFTI".into()),
            ("6".into(), "T2w".into(), String::new())
        ]
    );
    // a file uploaded into the new scan resource shows in scans/ALL/files
    assert_eq!(
        a.upload(
            &format!("/data/experiments/{eid}/scans/5/resources/NIFTI/files/x.nii"),
            b"new scan file"
        )
        .0,
        200
    );
    let files = a.rows(&format!("/data/experiments/{eid}/scans/ALL/files"));
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["Size"], "13");
    assert_eq!(files[0]["digest"], md5_hex(b"new scan file"));
}

#[test]
fn deletes_remove_files_folders_and_objects_from_the_listings() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let bulk = "/data/experiments/XNAT_E00001/scans/ALL/files";
    let dicom = format!("{E1}/scans/1/resources/DICOM/files");
    assert_eq!(a.rows(bulk).len(), 5);
    // a file, then a path that is not in the catalog (200, nothing changes)
    assert_eq!(
        a.delete(&format!("{dicom}/a/002.dcm")),
        (200, String::new())
    );
    assert_eq!(
        a.delete(&format!("{dicom}/a/002.dcm")),
        (200, String::new())
    );
    assert!(file_row(&a.rows(bulk), "a/002.dcm").is_none());
    assert_eq!(a.text(&format!("{dicom}/a/002.dcm")).0, 404);
    // a folder (trailing slash) takes everything below it
    assert_eq!(
        a.upload(&format!("{dicom}/b/deep/x.dcm"), b"x"),
        (200, String::new())
    );
    assert_eq!(a.delete(&format!("{dicom}/b/")), (200, String::new()));
    let left = a.file_paths(&dicom);
    assert_eq!(left, ["a/001.dcm"]);
    // the resource counters follow
    let res = a.rows(&format!("{E1}/scans/1/resources"));
    let row = res.iter().find(|r| r["label"] == "DICOM").unwrap();
    assert_eq!(
        (row["file_count"].as_str(), row["file_size"].as_str()),
        (Some("1"), Some("9"))
    );
    // a resource by its numeric id
    let rid = row["xnat_abstractresource_id"].as_str().unwrap();
    assert_eq!(
        a.delete(&format!("{E1}/scans/1/resources/{rid}")),
        (200, String::new())
    );
    assert_eq!(a.rows(&format!("{E1}/scans/1/resources")).len(), 1);
    // a scan, then the bulk scan rows
    assert_eq!(
        a.delete("/data/experiments/XNAT_E00001/scans/2?removeFiles=true"),
        (200, String::new())
    );
    assert_eq!(a.rows(bulk).len(), 1);
    let scans = a.rows(
        "/data/experiments?project=P&format=json&columns=ID,label,xnat:imagescandata/id,xnat:imagescandata/file/label",
    );
    let e1: Vec<&str> = scans
        .iter()
        .filter(|r| r["label"] == "E1")
        .map(|r| r["xnat:imagescandata/id"].as_str().unwrap())
        .collect();
    assert_eq!(e1, ["1"]);
    // an experiment, then a subject, with removeFiles=true
    assert_eq!(
        a.delete(&format!("{E1}?removeFiles=true")),
        (200, String::new())
    );
    assert_eq!(a.text(bulk).0, 404);
    assert!(!a
        .rows("/data/projects/P/experiments")
        .iter()
        .any(|e| e["label"] == "E1"));
    assert_eq!(
        a.delete("/data/projects/P/subjects/S1?removeFiles=true"),
        (200, String::new())
    );
    let subjects: Vec<String> = a
        .rows("/data/projects/P/subjects")
        .iter()
        .map(|s| s["label"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects, ["S2"]);
    // bytes of removed objects are gone from the store
    let blobs = std::fs::read_dir(sim.dir.path().join("blobs"))
        .unwrap()
        .count();
    assert_eq!(blobs, 1, "only P's readme.txt is left");
}
