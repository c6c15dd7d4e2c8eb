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
