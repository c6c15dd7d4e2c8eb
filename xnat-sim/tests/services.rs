//! The site services clients call at start-up (evidence D4): prearchive,
//! project roles, project users, user accounts, and the DICOM header dump.

mod common;
use common::{fixture, start, E1};
use serde_json::Value;

#[test]
fn prearchive_roles_users_and_accounts() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let pre = a.json("/data/prearchive/projects");
    assert_eq!(pre, serde_json::json!({"ResultSet": {"Result": []}}));
    let (code, csv) = a.text("/data/prearchive/projects?format=csv");
    assert_eq!(code, 200);
    assert!(
        csv.starts_with("project,timestamp,lastmod,uploaded,"),
        "{csv}"
    );
    assert_eq!(a.text("/data/prearchive/projects/NOPE").0, 404);

    let roles = a.json("/xapi/access/projects");
    assert_eq!(roles.as_array().unwrap().len(), 1);
    assert_eq!(roles[0]["ID"], "P");
    assert_eq!(roles[0]["role"], "Owners");
    assert_eq!(roles[0]["group_id"], "P_owner");
    assert_eq!(roles[0]["URI"], "/data/projects/P");
    assert_eq!(
        sim.api("bob", "pw2").json("/xapi/access/projects"),
        Value::Array(vec![])
    );

    let users = a.rows("/data/projects/P/users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["login"], "alice");
    assert_eq!(users[0]["GROUP_ID"], "P_owner");
    assert_eq!(users[0]["displayname"], "Owners");
    assert_eq!(sim.api("bob", "pw2").text("/data/projects/P/users").0, 403);
    assert_eq!(a.text("/data/projects/NOPE/users").0, 404);

    let me = a.json("/xapi/users/alice");
    assert_eq!(me["username"], "alice");
    assert_eq!(me["enabled"], true);
    assert!(me["password"].is_null(), "no secret in the account");
    assert_eq!(a.text("/xapi/users/bob").0, 403);
    assert_eq!(
        sim.api("root", "admin").json("/xapi/users/bob")["username"],
        "bob"
    );
    assert_eq!(sim.api("root", "admin").text("/xapi/users/nobody").0, 404);
}

#[test]
fn dicomdump_reads_a_header() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let series = xnat_sim::populate::DicomSeries {
        date: "2024-03-01",
        time: "09:30:00",
        patient: "S1",
        series_description: "mprage",
        series_number: "1",
        study_key: 1,
        series_key: 1,
    };
    let dcm = xnat_sim::populate::dicom_file(&series, 2048, 7, 0);
    assert_eq!(
        a.upload(
            &format!("{E1}/scans/1/resources/DICOM/files/a/001.dcm?overwrite=true"),
            &dcm
        )
        .0,
        200
    );
    for src in [
        "/archive/projects/P/subjects/S1/experiments/E1",
        "/archive/projects/P/subjects/S1/experiments/E1/scans/1",
        "/archive/projects/P/experiments/E1/scans/1/resources/DICOM/files/a/001.dcm",
    ] {
        let rows = a.rows(&format!("/REST/services/dicomdump?src={src}&format=json"));
        let date = rows
            .iter()
            .find(|r| r["tag1"] == "(0008,0022)")
            .unwrap_or_else(|| panic!("{src}: no AcquisitionDate in {rows:?}"));
        assert_eq!(date["value"], "20240301");
        assert_eq!(date["desc"], "Acquisition Date");
        assert_eq!(date["vr"], "DA");
        assert_eq!(date["tag2"], "");
    }
    let rows = a.rows(
        "/data/services/dicomdump?src=/archive/projects/P/experiments/E1&field=SeriesDescription&field=00200011",
    );
    let tags: Vec<&str> = rows.iter().map(|r| r["tag1"].as_str().unwrap()).collect();
    assert_eq!(tags, ["(0008,103E)", "(0020,0011)"]);
    assert_eq!(
        sim.api("bob", "pw2")
            .text("/data/services/dicomdump?src=/archive/projects/P/experiments/E1")
            .0,
        403
    );
}

fn search(sim: &common::Sim, user: (&str, &str), format: &str, doc: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/data/search?format={format}", sim.server.url()))
        .basic_auth(user.0, Some(user.1))
        .body(doc.to_string())
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

const DOC: &str = r#"<xdat:bundle xmlns:xdat="http://nrg.wustl.edu/security" ID="@xnat:mrSessionData" brief-description="" description="" allow-diff-columns="0" secure="false"><xdat:root_element_name>xnat:mrSessionData</xdat:root_element_name><xdat:search_field><xdat:element_name>xnat:mrSessionData</xdat:element_name><xdat:field_ID>SESSION_ID</xdat:field_ID><xdat:sequence>0</xdat:sequence><xdat:type>string</xdat:type><xdat:header>s</xdat:header></xdat:search_field><xdat:search_field><xdat:element_name>xnat:subjectData</xdat:element_name><xdat:field_ID>SUBJECT_LABEL</xdat:field_ID><xdat:sequence>1</xdat:sequence><xdat:type>string</xdat:type><xdat:header>l</xdat:header></xdat:search_field><xdat:search_where method="AND"><xdat:criteria override_value_formatting="0"><xdat:schema_field>xnat:mrSessionData/PROJECT</xdat:schema_field><xdat:comparison_type>=</xdat:comparison_type><xdat:value>P</xdat:value></xdat:criteria><xdat:child_set method="OR"><xdat:criteria override_value_formatting="0"><xdat:schema_field>xnat:subjectData/SUBJECT_LABEL</xdat:schema_field><xdat:comparison_type>LIKE</xdat:comparison_type><xdat:value>S%</xdat:value></xdat:criteria><xdat:criteria override_value_formatting="0"><xdat:schema_field>xnat:mrSessionData/ID</xdat:schema_field><xdat:comparison_type>=</xdat:comparison_type><xdat:value>none</xdat:value></xdat:criteria></xdat:child_set></xdat:search_where></xdat:bundle>"#;

#[test]
fn search_service_answers_pyxnat_documents() {
    let sim = start();
    fixture(&sim);
    let (code, csv) = search(&sim, ("alice", "pw"), "csv", DOC);
    assert_eq!(code, 200, "{csv}");
    // the CT session of S2 is not an MR session; the root type's field is lower-cased,
    // the subject's is prefixed by its SQL name
    assert_eq!(
        csv,
        "session_id,xnat_subjectdata_subject_label\nXNAT_E00001,S1\n"
    );
    let (_, json) = search(&sim, ("alice", "pw"), "json", DOC);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ResultSet"]["rootElementName"], "xnat:mrSessionData");
    assert_eq!(v["ResultSet"]["totalRecords"], "1");
    assert_eq!(
        v["ResultSet"]["Columns"][1]["key"],
        "xnat_subjectdata_subject_label"
    );
    // nothing of a project the user cannot read; an empty CSV keeps its header
    let (_, csv) = search(&sim, ("bob", "pw2"), "csv", DOC);
    assert_eq!(csv, "session_id,xnat_subjectdata_subject_label\n");
    assert_eq!(search(&sim, ("alice", "pw"), "csv", "<nope/>").0, 422);
    // xnatpy: no search field means the type's listing fields; a field_ID may be an XML path
    let bare = r#"<xdat:bundle xmlns:xdat="http://nrg.wustl.edu/security"><xdat:root_element_name>xnat:mrSessionData</xdat:root_element_name><xdat:search_field><xdat:element_name>xnat:mrSessionData</xdat:element_name><xdat:field_ID>xnat:mrSessionData/label</xdat:field_ID><xdat:sequence>0</xdat:sequence></xdat:search_field><xdat:search_where method="AND"><xdat:criteria override_value_formatting="0"><xdat:schema_field>xnat:mrSessionData/label</xdat:schema_field><xdat:comparison_type>=</xdat:comparison_type><xdat:value>E1</xdat:value></xdat:criteria></xdat:search_where></xdat:bundle>"#;
    assert_eq!(
        search(&sim, ("alice", "pw"), "csv", bare).1,
        "xnat_mrsessiondata_label\nE1\n"
    );
    let none = r#"<xdat:bundle xmlns:xdat="http://nrg.wustl.edu/security"><xdat:root_element_name>xnat:subjectData</xdat:root_element_name><xdat:search_where method="AND"/></xdat:bundle>"#;
    let (_, csv) = search(&sim, ("alice", "pw"), "csv", none);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("subject_id,subject_label,project"),
        "{csv}"
    );
    assert_eq!(lines.count(), 2);
    // the fields a type publishes are the ones a search answers
    let fields = sim.alice().rows("/data/search/elements/xnat:projectData");
    assert_eq!(fields.len(), 23);
    assert!(fields.iter().any(|f| f["FIELD_ID"] == "PROJ_MR_COUNT"));
}
