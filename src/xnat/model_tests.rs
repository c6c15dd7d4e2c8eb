//! Typed rows parsed from listings shaped like real XNAT answers (reference §2.2).

use super::*;
use crate::xnat::listing::parse_listing;

fn rows(body: &str) -> Vec<Row> {
    parse_listing(body.as_bytes(), "test").unwrap().rows
}

#[test]
fn counts_and_digests() {
    assert_eq!(parse_count("12"), Some(12));
    assert_eq!(parse_count(" 12 "), Some(12));
    assert_eq!(parse_count("12.0"), Some(12));
    assert_eq!(parse_count(""), None);
    assert_eq!(parse_count("-1"), None);
    assert_eq!(parse_count("1.5"), None);
    assert_eq!(parse_count("NaN"), None);
    let md5 = "0123456789ABCDEF0123456789abcdef";
    assert_eq!(
        parse_md5(md5).as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(parse_md5(""), None);
    assert_eq!(parse_md5("0123456789abcdef"), None);
    assert_eq!(parse_md5("g123456789abcdef0123456789abcdef"), None);
}

#[test]
fn relpaths_from_uris() {
    let f = |u| relpath_from_uri(u);
    assert_eq!(
        f("/data/experiments/XNAT_E00001/scans/1/resources/123/files/mri/aseg.mgz"),
        Some("mri/aseg.mgz")
    );
    assert_eq!(f("/data/projects/P/resources/7/files/a.txt"), Some("a.txt"));
    // The first `/resources/<x>/files/` counts, even if the path inside repeats it.
    assert_eq!(
        f("/data/projects/P/resources/7/files/x/resources/8/files/y"),
        Some("x/resources/8/files/y")
    );
    // A project called "resources" does not confuse it.
    assert_eq!(
        f("/data/projects/resources/resources/12/files/z"),
        Some("z")
    );
    assert_eq!(f("/data/projects/P"), None);
    assert_eq!(f("/data/projects/P/resources//files/x"), None);
}

#[test]
fn projects() {
    let body = r#"{"ResultSet":{"Result":[{"pi_firstname":"Ann","secondary_ID":"T","pi_lastname":"Lee","name":"Test project","description":"d","ID":"TEST","URI":"/data/projects/TEST"}],"totalRecords":"1","title":"Projects"}}"#;
    let p = Project::from(&rows(body)[0]);
    assert_eq!(p.id, "TEST");
    assert_eq!(p.name, "Test project");
    assert_eq!(p.secondary_id, "T");
    assert_eq!(p.pi_lastname, "Lee");
    assert_eq!(p.uri, "/data/projects/TEST");
}

#[test]
fn subjects_and_experiments() {
    let body = r#"{"ResultSet":{"Result":[{"project":"P1","insert_user":"admin","ID":"XNAT_S00001","label":"sub-01","insert_date":"2024-01-02 10:11:12.0","URI":"/data/subjects/XNAT_S00001"}],"totalRecords":"1","title":"Project Subjects"}}"#;
    let s = Subject::from(&rows(body)[0]);
    assert_eq!((s.id.as_str(), s.label.as_str()), ("XNAT_S00001", "sub-01"));
    assert_eq!(s.project, "P1");
    assert_eq!(s.insert_date, "2024-01-02 10:11:12.0");

    let body = r#"{"ResultSet":{"Result":[{"date":"2024-01-02","xsiType":"xnat:mrSessionData","project":"P1","subject_label":"sub-01","subject_ID":"XNAT_S00001","ID":"XNAT_E00001","label":"sub-01_MR1","insert_date":"2024-01-02 10:11:12.0","URI":"/data/experiments/XNAT_E00001"}],"totalRecords":"1"}}"#;
    let e = Experiment::from(&rows(body)[0]);
    assert_eq!(e.id, "XNAT_E00001");
    assert_eq!(e.label, "sub-01_MR1");
    assert_eq!(e.subject_id, "XNAT_S00001");
    assert_eq!(e.subject_label, "sub-01");
    assert_eq!(e.xsi_type, "xnat:mrSessionData");
    assert_eq!(e.date, "2024-01-02");
}

#[test]
fn scans() {
    let body = r#"{"ResultSet":{"Result":[{"xnat_imagescandata_id":"12","note":"","series_description":"t1_mprage sag","xsiType":"xnat:mrScanData","quality":"usable","ID":"1","type":"T1w","URI":"/data/experiments/XNAT_E00001/scans/1"}],"totalRecords":"1"}}"#;
    let s = Scan::from(&rows(body)[0]);
    assert_eq!(s.id, "1");
    assert_eq!(s.scan_type, "T1w");
    assert_eq!(s.series_description, "t1_mprage sag");
    assert_eq!(s.quality, "usable");
    assert_eq!(s.xsi_type, "xnat:mrScanData");
    assert_eq!(s.uri, "/data/experiments/XNAT_E00001/scans/1");
}

#[test]
fn resources_without_uri_and_with_empty_fields() {
    let body = r#"{"ResultSet":{"Result":[
      {"xnat_abstractresource_id":"123","label":"NIFTI","element_name":"xnat:resourceCatalog","category":"scans","cat_id":"1","cat_desc":"","format":"NIFTI","content":"RAW","tags":"","file_count":"2","file_size":"1048576"},
      {"xnat_abstractresource_id":"124","label":"","element_name":"xnat:resourceCatalog","category":"scans","cat_id":"1","cat_desc":"","format":"","content":"","tags":"","file_count":"","file_size":""}
    ],"title":"Resources"}}"#;
    let r = rows(body);
    let a = Resource::from(&r[0]);
    assert_eq!(a.id, "123");
    assert_eq!(a.label, "NIFTI");
    assert_eq!(a.format, "NIFTI");
    assert_eq!(a.content, "RAW");
    assert_eq!(a.cat_id, "1");
    assert_eq!(a.file_count, Some(2));
    assert_eq!(a.file_size, Some(1_048_576));
    let b = Resource::from(&r[1]);
    assert_eq!(b.label, "124");
    assert_eq!(b.file_count, None);
    assert_eq!(b.file_size, None);
}

#[test]
fn files_with_nested_paths() {
    let body = r#"{"ResultSet":{"Result":[
      {"Name":"aseg.mgz","Size":"5120","URI":"/data/experiments/XNAT_E00001/resources/55/files/mri/aseg.mgz","collection":"FS","file_tags":"","file_format":"MGZ","file_content":"","cat_ID":"55","digest":"d41d8cd98f00b204e9800998ecf8427e"},
      {"Name":"odd name.txt","Size":"","URI":"/data/experiments/XNAT_E00001/resources/55/files/odd name.txt","collection":"FS","file_tags":"a=b,c","file_format":"","file_content":"","cat_ID":"55","digest":""}
    ],"title":"Files","Columns":[{"key":"URI","serverRoot":""}]}}"#;
    let r = rows(body);
    let a = CatalogFile::from(&r[0]);
    assert_eq!(a.name, "aseg.mgz");
    assert_eq!(a.path, "mri/aseg.mgz");
    assert_eq!(a.size, Some(5120));
    assert_eq!(
        a.digest.as_deref(),
        Some("d41d8cd98f00b204e9800998ecf8427e")
    );
    assert_eq!(a.format, "MGZ");
    assert_eq!(a.collection, "FS");
    assert_eq!(a.cat_id, "55");
    let b = CatalogFile::from(&r[1]);
    assert_eq!(b.path, "odd name.txt");
    assert_eq!(b.size, None);
    assert_eq!(b.digest, None);
    assert_eq!(b.tags, "a=b,c");
}

#[test]
fn file_without_files_part_in_uri_uses_its_name() {
    let r = Row::from_pairs([("Name", "x.dcm"), ("URI", "/weird/x.dcm"), ("Size", "1")]);
    assert_eq!(CatalogFile::from(&r).path, "x.dcm");
}

#[test]
fn session_scan_files_carry_scan_and_resource() {
    let body = r#"{"ResultSet":{"Result":[
      {"Name":"1.dcm","Size":"10","URI":"/data/experiments/XNAT_E00001/scans/2/resources/99/files/1.dcm","collection":"DICOM","file_tags":"","file_format":"DICOM","file_content":"RAW","cat_ID":"99","digest":""}
    ],"title":"Files"}}"#;
    let f = ScanFile::from(&rows(body)[0]);
    assert_eq!(f.scan_id, "2");
    assert_eq!(f.resource_id, "99");
    assert_eq!(f.file.collection, "DICOM");
    assert_eq!(f.file.path, "1.dcm");
}

#[test]
fn project_scan_rows() {
    let body = r#"{"ResultSet":{"Result":[
      {"ID":"XNAT_E00001","URI":"/data/experiments/XNAT_E00001","label":"s1_MR1","subject_label":"s1","project":"P","xsiType":"xnat:mrSessionData","xnat:imagesessiondata/subject_id":"XNAT_S00001","xnat:imagescandata/id":"1","xnat:imagescandata/type":"T1w","xnat:imagescandata/quality":"usable","xnat:imagescandata/series_description":"mprage","xnat:imagescandata/file/label":"NIFTI"},
      {"ID":"XNAT_E00002","URI":"/data/experiments/XNAT_E00002","label":"s2_MR1","subject_label":"s2","project":"P","xsiType":"xnat:mrSessionData","xnat:imagesessiondata/subject_id":"XNAT_S00002","xnat:imagescandata/id":"","xnat:imagescandata/type":"","xnat:imagescandata/quality":"","xnat:imagescandata/series_description":"","xnat:imagescandata/file/label":""}
    ],"totalRecords":"2"}}"#;
    let r = rows(body);
    let a = ProjectScanRow::from(&r[0]);
    assert_eq!(a.session_id, "XNAT_E00001");
    assert_eq!(a.session_label, "s1_MR1");
    assert_eq!(a.subject_id, "XNAT_S00001");
    assert_eq!(a.subject_label, "s1");
    assert_eq!(a.scan_id, "1");
    assert_eq!(a.scan_type, "T1w");
    assert_eq!(a.quality, "usable");
    assert_eq!(a.series_description, "mprage");
    assert_eq!(a.resource_label, "NIFTI");
    let b = ProjectScanRow::from(&r[1]);
    assert_eq!(b.scan_id, "");
    assert_eq!(b.resource_label, "");
}

#[test]
fn upper_case_column_keys_are_found() {
    let r = Row::from_pairs([("XNAT:IMAGESCANDATA/ID", "5"), ("ID", "E")]);
    assert_eq!(ProjectScanRow::from(&r).scan_id, "5");
}

#[test]
fn scan_rows_fold_into_scans_with_their_resources() {
    let row = |session: &str, scan: &str, resource: &str| ProjectScanRow {
        session_id: session.into(),
        scan_id: scan.into(),
        scan_type: format!("type{scan}"),
        resource_label: resource.into(),
        ..ProjectScanRow::default()
    };
    let scans = fold_scans(vec![
        row("E1", "1", "NIFTI"),
        row("E1", "1", "DICOM"),
        row("E1", "2", ""),
        row("E2", "", ""),
        row("E1", "1", "NIFTI"),
        row("E3", "1", "DICOM"),
    ]);
    assert_eq!(scans.len(), 3);
    assert_eq!(
        (scans[0].experiment_id.as_str(), scans[0].id.as_str()),
        ("E1", "1")
    );
    assert_eq!(scans[0].resources, vec!["NIFTI", "DICOM"]);
    assert!(scans[1].resources.is_empty());
    assert_eq!(scans[2].experiment_id, "E3");
    assert_eq!(scans[1].scan_type, "type2");
}
