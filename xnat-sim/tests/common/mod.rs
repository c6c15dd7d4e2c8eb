//! Shared test fixture: an in-process server on a free port with three
//! users (alice owns project P, bob is a member of nothing, root is admin),
//! a small HTTP helper, and a fixture archive built through the REST API.
#![allow(dead_code)]

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;
use xnat_sim::{BlockingSimServer, SimConfig};

pub struct Sim {
    pub server: BlockingSimServer,
    pub dir: tempfile::TempDir,
}

pub fn config(dir: &tempfile::TempDir) -> SimConfig {
    SimConfig {
        root: dir.path().to_path_buf(),
        users: vec![
            ("alice".into(), "pw".into()),
            ("bob".into(), "pw2".into()),
            ("root".into(), "admin".into()),
        ],
        admins: vec!["root".into()],
        ..Default::default()
    }
}

pub fn start_with(f: impl FnOnce(&mut SimConfig)) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir);
    f(&mut c);
    let server = BlockingSimServer::start(c).unwrap();
    Sim { server, dir }
}

pub fn start() -> Sim {
    start_with(|_| {})
}

impl Sim {
    pub fn api(&self, user: &str, password: &str) -> Api {
        Api::new(&self.server.url(), Some((user, password)))
    }
    pub fn alice(&self) -> Api {
        self.api("alice", "pw")
    }
    pub fn anonymous(&self) -> Api {
        Api::new(&self.server.url(), None)
    }
}

pub struct Api {
    pub base: String,
    pub client: Client,
    pub creds: Option<(String, String)>,
}

impl Api {
    pub fn new(base: &str, creds: Option<(&str, &str)>) -> Api {
        Api {
            base: base.to_string(),
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
        }
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self
            .client
            .request(method, format!("{}{}", self.base, path));
        match &self.creds {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().unwrap()
    }

    /// (status, body)
    pub fn text(&self, path: &str) -> (u16, String) {
        let r = self.get(path);
        (r.status().as_u16(), r.text().unwrap())
    }

    pub fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status().as_u16(), 200, "GET {path}");
        r.json().unwrap()
    }

    /// The `ResultSet.Result` rows of a JSON listing.
    pub fn rows(&self, path: &str) -> Vec<Value> {
        self.json(path)["ResultSet"]["Result"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The paths inside their resource of the files a file listing shows, in its order.
    pub fn file_paths(&self, listing: &str) -> Vec<String> {
        self.rows(listing)
            .iter()
            .map(|r| {
                let uri = r["URI"].as_str().unwrap();
                uri.rsplit("/files/").next().unwrap().to_string()
            })
            .collect()
    }

    pub fn put(&self, path: &str) -> (u16, String) {
        let r = self.req(Method::PUT, path).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    pub fn delete(&self, path: &str) -> (u16, String) {
        let r = self.req(Method::DELETE, path).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// Raw `PUT` with `Content-Type: application/octet-stream`, as xnatpy uploads.
    pub fn upload(&self, path: &str, bytes: &[u8]) -> (u16, String) {
        let r = self
            .req(Method::PUT, path)
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }
}

/// The columns of a file listing row, in XNAT's order.
pub const FILE_COLUMNS: [&str; 9] = [
    "Name",
    "Size",
    "URI",
    "collection",
    "file_tags",
    "file_format",
    "file_content",
    "cat_ID",
    "digest",
];

pub const E1: &str = "/data/projects/P/subjects/S1/experiments/E1";

/// Builds, as alice:
/// P / S1 / E1 (MR, XNAT_E00001) scans 1 (T1w: NIFTI t1.nii.gz, DICOM a/001.dcm a/002.dcm b/003.dcm)
///                               and 2 (rest fmri: NIFTI rest.nii.gz), session resource QC report.txt,
///                               assessor QC1 (XNAT_E00002) with out-resource OUT qc.json
/// P / S2 / E2 (CT, XNAT_E00003), P resource DOCS readme.txt.
pub fn fixture(sim: &Sim) {
    let a = sim.alice();
    assert_eq!(a.put("/data/projects/P?xsiType=xnat:projectData").0, 201);
    assert_eq!(a.put("/data/projects/P/subjects/S1").1, "XNAT_S00001");
    let (code, id) = a.put(&format!(
        "{E1}?xsiType=xnat:mrSessionData&xnat:mrSessionData/date=2024-03-01"
    ));
    assert_eq!((code, id.as_str()), (201, "XNAT_E00001"));
    assert_eq!(
        a.put(&format!(
            "{E1}/scans/1?xsiType=xnat:mrScanData&type=T1w&series_description=mprage&quality=usable"
        ))
        .0,
        200
    );
    assert_eq!(
        a.put(&format!(
            "{E1}/scans/2?xsiType=xnat:mrScanData&req_format=qs&xnat:mrScanData/type=rest%20fmri&xnat:mrScanData/quality=questionable"
        ))
        .0,
        200
    );
    for (path, body) in [
        ("scans/1/resources/NIFTI/files/t1.nii.gz", "t1 volume"),
        ("scans/1/resources/DICOM/files/a/001.dcm", "dicom one"),
        ("scans/1/resources/DICOM/files/a/002.dcm", "dicom two"),
        ("scans/1/resources/DICOM/files/b/003.dcm", "dicom three"),
        ("scans/2/resources/NIFTI/files/rest.nii.gz", "rest volume"),
        ("resources/QC/files/report.txt", "qc report"),
    ] {
        assert_eq!(
            a.upload(&format!("{E1}/{path}"), body.as_bytes()),
            (200, String::new()),
            "{path}"
        );
    }
    let (code, qc) = a.put(&format!("{E1}/assessors/QC1?xsiType=xnat:qcAssessmentData"));
    assert_eq!((code, qc.as_str()), (201, "XNAT_E00002"));
    assert_eq!(
        a.upload(
            &format!("{E1}/assessors/QC1/out/resources/OUT/files/qc.json"),
            b"{}"
        )
        .0,
        200
    );
    assert_eq!(
        a.put("/data/projects/P/subjects/S2/experiments/E2?xsiType=xnat:ctSessionData")
            .1,
        "XNAT_E00003"
    );
    assert_eq!(
        a.upload(
            "/data/projects/P/resources/DOCS/files/readme.txt",
            b"read me"
        )
        .0,
        200
    );
}
