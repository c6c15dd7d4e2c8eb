//! Routing aliases, label/ID lookups, every listing (columns, CSV, paging,
//! filters, bulk rows), single objects and the site probes.

mod common;
use common::{fixture, start, E1, FILE_COLUMNS};
use serde_json::Value;

fn ids(rows: &[Value], key: &str) -> Vec<String> {
    rows.iter()
        .map(|r| r[key].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn aliases_and_id_shortcuts_reach_the_same_scan() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let want = a.rows(&format!("{E1}/scans?format=json"));
    assert_eq!(ids(&want, "ID"), vec!["1", "2"]);
    for path in [
        "/data/archive/projects/P/subjects/S1/experiments/E1/scans",
        "/REST/projects/P/subjects/S1/experiments/E1/scans",
        "/data/experiments/XNAT_E00001/scans",
        "/data/archive/experiments/XNAT_E00001/scans",
        "/data/projects/P/experiments/E1/scans",
        "/data/projects/P/experiments/XNAT_E00001/scans",
        "/data/projects/P/subjects/XNAT_S00001/experiments/XNAT_E00001/scans",
        "/data/subjects/XNAT_S00001/experiments/E1/scans",
    ] {
        assert_eq!(a.rows(&format!("{path}?format=json")), want, "{path}");
    }
    // a label only works inside its project
    assert_eq!(a.text("/data/experiments/E1?format=json").0, 404);
    assert_eq!(a.text("/data/projects/P/subjects/S9?format=json").0, 404);
    // resources by label or numeric id; scans by type (xnatpy's secondary lookup)
    let by_label = a.rows(&format!("{E1}/scans/1/resources/DICOM/files"));
    let rid = by_label[0]["cat_ID"].as_str().unwrap().to_string();
    assert_eq!(
        a.rows(&format!("{E1}/scans/1/resources/{rid}/files")),
        by_label
    );
    assert_eq!(
        a.rows(&format!("{E1}/scans/T1w/resources/DICOM/files")),
        by_label
    );
}

#[test]
fn listings_have_default_columns_and_string_cells() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let v = a.json("/data/projects?format=json");
    assert_eq!(v["ResultSet"]["totalRecords"], "1");
    assert_eq!(v["ResultSet"]["title"], "Projects");
    let p = &v["ResultSet"]["Result"][0];
    let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "ID",
            "secondary_ID",
            "name",
            "description",
            "pi_firstname",
            "pi_lastname",
            "URI"
        ]
    );
    assert_eq!(p["URI"], "/data/projects/P");

    let subs = a.rows("/data/projects/P/subjects");
    assert_eq!(ids(&subs, "label"), vec!["S1", "S2"]);
    assert_eq!(subs[0]["URI"], "/data/subjects/XNAT_S00001");
    assert_eq!(subs[0]["insert_user"], "alice");

    let exps = a.rows("/data/projects/P/experiments");
    // only subject assessors: the QC assessor is not listed here
    assert_eq!(ids(&exps, "ID"), vec!["XNAT_E00001", "XNAT_E00003"]);
    assert_eq!(exps[0]["date"], "2024-03-01");
    assert_eq!(exps[0]["xsiType"], "xnat:mrSessionData");
    assert_eq!(exps[0]["URI"], "/data/experiments/XNAT_E00001");
    assert_eq!(
        ids(&a.rows("/data/projects/P/subjects/S2/experiments"), "label"),
        vec!["E2"]
    );

    let scans = a.rows(&format!("{E1}/scans"));
    assert_eq!(scans[1]["type"], "rest fmri");
    assert_eq!(scans[1]["quality"], "questionable");
    assert_eq!(scans[0]["series_description"], "mprage");
    assert_eq!(scans[0]["URI"], "/data/experiments/XNAT_E00001/scans/1");
    assert!(scans[0]["xnat_imagescandata_id"].is_string());

    let res = a.rows(&format!("{E1}/scans/1/resources?columns=ID,URI,label"));
    assert_eq!(ids(&res, "label"), vec!["NIFTI", "DICOM"]);
    let r = res[1].as_object().unwrap();
    assert!(
        r.get("ID").is_none() && r.get("URI").is_none(),
        "resources have no ID/URI"
    );
    assert_eq!(r["file_count"], "3");
    assert_eq!(r["file_size"], (9 + 9 + 11).to_string());
    assert_eq!(r["element_name"], "xnat:resourceCatalog");
    assert_eq!(r["category"], "scans");
    assert_eq!(
        ids(&a.rows(&format!("{E1}/resources")), "label"),
        vec!["QC"]
    );
    assert_eq!(
        ids(&a.rows("/data/projects/P/resources"), "label"),
        vec!["DOCS"]
    );
    assert_eq!(
        ids(&a.rows(&format!("{E1}/assessors")), "label"),
        vec!["QC1"]
    );
    assert_eq!(
        ids(
            &a.rows(&format!("{E1}/assessors/QC1/out/resources")),
            "label"
        ),
        vec!["OUT"]
    );
}

#[test]
fn columns_csv_paging_and_filters() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let rows = a.rows("/data/projects/P/experiments?columns=label,xsiType");
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    // XNAT's query organizer: the root's key first (xnat:subjectAssessorData, the root of
    // project experiment listings), the asked columns, project (a generic root), URI last
    assert_eq!(
        keys,
        [
            "xnat:subjectassessordata/id",
            "label",
            "xsiType",
            "project",
            "URI"
        ]
    );

    let (code, csv) = a.text("/data/projects/P/subjects?format=csv&columns=ID,label");
    assert_eq!(code, 200);
    assert_eq!(csv, "ID,label,URI\nXNAT_S00001,S1,/data/subjects/XNAT_S00001\nXNAT_S00002,S2,/data/subjects/XNAT_S00002\n");
    // an empty CSV listing still has its header line
    assert_eq!(
        a.text(&format!(
            "{E1}/scans/2/resources/NIFTI/files/nothing*?format=csv"
        ))
        .1
        .lines()
        .count(),
        1
    );
    assert_eq!(
        a.text("/data/projects/P/subjects/S2/experiments/E2/scans?format=csv")
            .1
            .lines()
            .count(),
        1
    );

    let paged = a.json("/data/experiments?limit=1&offset=1");
    assert!(paged["ResultSet"].get("totalRecords").is_none());
    assert_eq!(paged["ResultSet"]["Result"].as_array().unwrap().len(), 1);
    // the site-wide listing's root is xnat:experimentData: image assessors are experiments too
    assert_eq!(paged["ResultSet"]["Result"][0]["ID"], "XNAT_E00002");
    assert_eq!(paged["ResultSet"]["Result"][0]["label"], "QC1");

    assert_eq!(
        ids(
            &a.rows("/data/experiments?xsiType=xnat:ctSessionData"),
            "label"
        ),
        vec!["E2"]
    );
    assert_eq!(
        a.rows("/data/experiments?xsiType=xnat:imageSessionData")
            .len(),
        2
    );
    assert_eq!(
        ids(&a.rows("/data/experiments?label=E*&project=P"), "label"),
        vec!["E1", "E2"]
    );
    assert_eq!(
        ids(&a.rows("/data/projects/P/experiments?label=*1"), "label"),
        vec!["E1"]
    );
    assert_eq!(a.rows("/data/experiments?date=03/01/2024").len(), 1);

    let (_, xml) = a.text("/data/projects?format=xml");
    assert!(xml.contains("<ResultSet") && xml.contains("<cell>P</cell>"));
}

#[test]
fn bulk_listings() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let rows = a.rows(
        "/data/experiments?project=P&xsiType=xnat:imageSessionData&columns=ID,URI,label,subject_label,xnat:imagescandata/id,xnat:imagescandata/type,xnat:imagescandata/quality,xnat:imagescandata/series_description,xnat:imagescandata/file/label",
    );
    let cells: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap().into(),
                r["xnat:imagescandata/id"].as_str().unwrap().into(),
                r["xnat:imagescandata/file/label"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("E1", "1", "NIFTI"),
        ("E1", "1", "DICOM"),
        ("E1", "2", "NIFTI"),
        ("E2", "", ""),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(cells, want);
    assert_eq!(rows[0]["subject_label"], "S1");
    assert_eq!(rows[2]["xnat:imagescandata/type"], "rest fmri");

    let all = a.rows("/data/experiments/XNAT_E00001/scans/ALL/files");
    assert_eq!(all.len(), 5);
    assert_eq!(
        a.rows("/data/experiments/XNAT_E00001/scans/1,2/files")
            .len(),
        5
    );
    assert_eq!(
        a.rows("/data/experiments/XNAT_E00001/scans/2/files").len(),
        1
    );
    assert_eq!(
        a.rows("/data/experiments/XNAT_E00001/scans/ALL/resources/DICOM/files")
            .len(),
        3
    );
    assert_eq!(
        ids(&a.rows("/data/experiments/XNAT_E00001/files"), "Name"),
        vec!["report.txt"]
    );
}

#[test]
fn file_listing_rows_and_folders() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let v = a.json(&format!("{E1}/scans/1/resources/DICOM/files?format=json"));
    assert_eq!(
        v["ResultSet"]["Columns"],
        serde_json::json!([{"key": "URI", "serverRoot": ""}])
    );
    assert!(v["ResultSet"].get("totalRecords").is_none());
    let rows = v["ResultSet"]["Result"].as_array().unwrap();
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, FILE_COLUMNS);
    let rid = rows[0]["cat_ID"].as_str().unwrap();
    assert_eq!(rows[0]["Name"], "001.dcm");
    assert_eq!(rows[0]["Size"], "9");
    assert_eq!(
        rows[0]["URI"],
        format!("/data/experiments/XNAT_E00001/scans/1/resources/{rid}/files/a/001.dcm")
    );
    assert_eq!(rows[0]["digest"], format!("{:x}", md5_of(b"dicom one")));
    assert_eq!(rows[0]["collection"], "DICOM");

    let folder = a.rows(&format!("{E1}/scans/1/resources/DICOM/files/a/"));
    assert_eq!(ids(&folder, "Name"), vec!["001.dcm", "002.dcm"]);
    assert_eq!(
        a.rows(&format!(
            "{E1}/scans/1/resources/DICOM/files/?recursive=false"
        ))
        .len(),
        0
    );
    assert_eq!(
        a.rows(&format!("{E1}/scans/1/resources/DICOM/files/"))
            .len(),
        3
    );
    assert_eq!(
        ids(
            &a.rows(&format!("{E1}/scans/1/resources/DICOM/files/b/00*")),
            "Name"
        ),
        vec!["003.dcm"]
    );
    let out = a.rows(&format!("{E1}/assessors/QC1/out/resources/OUT/files"));
    assert!(out[0]["URI"]
        .as_str()
        .unwrap()
        .starts_with("/data/experiments/XNAT_E00001/assessors/XNAT_E00002/out/resources/"));
}

fn md5_of(b: &[u8]) -> md5::digest::Output<md5::Md5> {
    use md5::Digest;
    md5::Md5::digest(b)
}

#[test]
fn single_objects_in_json_xml_and_html() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let v = a.json(&format!("{E1}?format=json"));
    let item = &v["items"][0];
    assert_eq!(item["meta"]["xsi:type"], "xnat:mrSessionData");
    assert_eq!(item["meta"]["isHistory"], false);
    assert_eq!(item["data_fields"]["label"], "E1");
    assert_eq!(item["data_fields"]["ID"], "XNAT_E00001");
    assert_eq!(item["data_fields"]["subject_ID"], "XNAT_S00001");
    assert_eq!(item["data_fields"]["date"], "2024-03-01");
    let scans = item["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "scans/scan")
        .unwrap();
    assert_eq!(scans["items"][0]["data_fields"]["type"], "T1w");
    let subj = a.json("/data/subjects/XNAT_S00001?format=json");
    assert_eq!(subj["items"][0]["data_fields"]["label"], "S1");
    let scan = a.json(&format!("{E1}/scans/1?format=json"));
    assert_eq!(scan["items"][0]["meta"]["xsi:type"], "xnat:mrScanData");
    let qc = a.json("/data/experiments/XNAT_E00001/assessors/QC1?format=json");
    assert_eq!(
        qc["items"][0]["data_fields"]["imageSession_ID"],
        "XNAT_E00001"
    );

    let (code, xml) = a.text(&format!("{E1}?format=xml"));
    assert_eq!(code, 200);
    assert!(
        xml.starts_with("<?xml") && xml.contains("<xnat:MRSession") && xml.contains("label=\"E1\"")
    );
    let (_, html) = a.text(E1);
    assert!(html.starts_with("<!DOCTYPE html>"));
    let (_, catalog) = a.text(&format!("{E1}/scans/1/resources/DICOM?format=json"));
    assert!(catalog.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cat:Catalog"));
}

#[test]
fn site_probes() {
    let sim = start();
    let a = sim.alice();
    assert_eq!(sim.anonymous().text("/").0, 200);
    assert_eq!(a.text("/data/version"), (200, "1.8.10".into()));
    assert_eq!(a.json("/xapi/siteConfig/buildInfo")["version"], "1.8.10");
    assert_eq!(
        a.json("/xapi/schemas?format=json"),
        serde_json::json!(["xnat"])
    );
    let (code, xsd) = a.text("/xapi/schemas/xnat");
    assert_eq!(code, 200);
    assert!(
        xsd.contains("targetNamespace=\"http://nrg.wustl.edu/xnat\"")
            && xsd.contains("name=\"mrSessionData\"")
    );
    let elems = a.rows("/data/search/elements?format=json");
    assert!(elems
        .iter()
        .any(|e| e["ELEMENT_NAME"] == "xnat:mrSessionData"));
    let fields = a.rows("/data/search/elements/xnat:mrSessionData?format=json");
    assert!(fields.iter().any(|f| f["FIELD_ID"] == "LABEL"));
}

/// The keys of the first row, sorted.
fn keys(rows: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = rows[0].as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn columns_as_xnat_names_them() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    assert_eq!(
        a.put("/data/projects/P/subjects/S1?xnat:subjectData/demographics[@xsi:type%3Dxnat:demographicData]/gender=female&xnat:subjectData/demographics[@xsi:type%3Dxnat:demographicData]/yob=1980")
            .0,
        200
    );
    // every asked shortcut is a column, empty where the subject lacks it; replaces the defaults
    let rows = a.rows("/data/subjects?columns=ID,project,handedness,age,gender");
    assert_eq!(
        keys(&rows),
        ["ID", "URI", "age", "gender", "handedness", "project"]
    );
    let s1 = rows.iter().find(|r| r["ID"] == "XNAT_S00001").unwrap();
    assert_eq!(
        (&s1["gender"], &s1["age"]),
        (&Value::from("female"), &Value::from(""))
    );
    // a path is headed by its shortcut when it has one, else by the lower-cased path
    let rows = a.rows(
        "/data/projects/P/experiments?columns=xnat:experimentData/date,xnat:subjectAssessorData/subject_ID,xnat:subjectData/label,xnat:mrSessionData/ID",
    );
    assert_eq!(
        keys(&rows),
        [
            "URI",
            "date",
            "subject_ID",
            "subject_label",
            "xnat:mrsessiondata/id"
        ]
    );
    assert_eq!(
        rows.len(),
        1,
        "a mrSessionData column makes it the root: MR sessions only"
    );
    assert_eq!(rows[0]["subject_label"], "S1");
    assert_eq!(rows[0]["date"], "2024-03-01");
    // a scan listing answers frames (empty) beside ID, type, quality
    let rows = a.rows(&format!("{E1}/scans?columns=ID,type,frames,quality"));
    assert_eq!(
        keys(&rows),
        [
            "ID",
            "URI",
            "frames",
            "quality",
            "type",
            "xnat_imagescandata_id"
        ]
    );
    assert_eq!(rows[0]["frames"], "");
    // a shortcut is matched by its exact name
    let rows = a.rows("/data/projects/P/subjects?columns=Label");
    assert_eq!(keys(&rows), ["ID", "URI"]);
}

#[test]
fn path_filters_and_scan_rows() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    assert_eq!(
        a.put("/data/projects/P/subjects/S1/experiments/E3?xsiType=xnat:mrSessionData")
            .0,
        201
    );
    // D2: a key with '/' is a criterion
    let rows = a.rows("/data/experiments?xsiType=xnat:mrSessionData&xnat:subjectData/label=S1");
    assert_eq!(ids(&rows, "label"), vec!["E1", "E3"]);
    assert!(a
        .rows("/data/experiments?xsiType=xnat:mrSessionData&xnat:subjectData/label=S2")
        .is_empty());
    // D5: scan columns give a row per scan (E1 has 2 scans over 4 resources), a session
    // without scans one row with empty scan columns (pyxnat's array.scans drops it)
    let rows = a.rows("/data/experiments?xsiType=xnat:imageSessionData&columns=ID,project,xnat:imageSessionData/subject_id,xnat:imageScanData/ID&format=json");
    let scans: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["ID"].as_str().unwrap().to_string(),
                r["xnat:imagescandata/id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        scans,
        [
            ("XNAT_E00001".to_string(), "1".to_string()),
            ("XNAT_E00001".into(), "2".into()),
            ("XNAT_E00003".into(), "".into()),
            ("XNAT_E00004".into(), "".into()),
        ]
    );
    assert_eq!(
        keys(&rows),
        [
            "ID",
            "URI",
            "project",
            "session_ID",
            "xnat:imagescandata/id",
            "xnat:imagesessiondata/subject_id",
            "xsiType"
        ]
    );
    // dax asks the session's own path to its scans: the same join
    let rows = a.rows("/data/projects/P/subjects/S1/experiments?columns=ID,label,xnat:imagesessiondata/scans/scan/id,xnat:imagesessiondata/scans/scan/type");
    let scans: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["xnat:imagesessiondata/scans/scan/id"].as_str().unwrap(),
                r["xnat:imagesessiondata/scans/scan/type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(scans, [("1", "T1w"), ("2", "rest fmri"), ("", "")]);
    // with a resource column: a row per scan and resource
    let rows = a.rows("/data/experiments?xsiType=xnat:mrSessionData&ID=XNAT_E00001&columns=ID,xnat:mrScanData/ID,xnat:imagescandata/file/label");
    assert_eq!(rows.len(), 3);
}
