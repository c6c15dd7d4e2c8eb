//! Downloads (headers, HEAD, Range off and on), zip layouts, every upload
//! case, and the create/delete status codes.

mod common;
use common::{fixture, start, start_with, E1};
use reqwest::Method;
use std::io::Read;

#[test]
fn download_headers_and_head() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let url = format!("{E1}/scans/1/resources/DICOM/files/a/001.dcm");
    let r = a.get(&url);
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-length"], "9");
    assert_eq!(h["cache-control"], "must-revalidate");
    assert!(h.contains_key("last-modified"));
    assert!(h.get("etag").is_none());
    assert!(h.get("accept-ranges").is_none());
    assert_eq!(r.text().unwrap(), "dicom one");
    let head = a.req(Method::HEAD, &url).send().unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["content-length"], "9");
    assert_eq!(head.headers()["last-modified"], h["last-modified"]);
    assert_eq!(
        a.text(&format!("{E1}/scans/1/resources/DICOM/files/a/none.dcm"))
            .0,
        404
    );
    // the URI column of a listing downloads the file
    let row = &a.rows(&format!("{E1}/scans/2/resources/NIFTI/files"))[0];
    assert_eq!(
        a.text(row["URI"].as_str().unwrap()),
        (200, "rest volume".into())
    );
}

#[test]
fn range_is_ignored_by_default() {
    let sim = start();
    fixture(&sim);
    let r = sim
        .alice()
        .req(
            Method::GET,
            &format!("{E1}/scans/1/resources/NIFTI/files/t1.nii.gz"),
        )
        .header("Range", "bytes=0-1")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().unwrap(), "t1 volume");
}

#[test]
fn range_is_honoured_with_the_switch() {
    let sim = start_with(|c| c.faults.range = true);
    fixture(&sim);
    let a = sim.alice();
    let url = format!("{E1}/scans/1/resources/NIFTI/files/t1.nii.gz");
    let ranged = |spec: &str| {
        a.req(Method::GET, &url)
            .header("Range", spec)
            .send()
            .unwrap()
    };
    let r = ranged("bytes=3-8");
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 3-8/9");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.text().unwrap(), "volume");
    assert_eq!(ranged("bytes=-3").text().unwrap(), "ume");
    let r = ranged("bytes=9-");
    assert_eq!(r.status().as_u16(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */9");
}

fn zip_names(bytes: &[u8]) -> Vec<String> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut names: Vec<String> = (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().to_string())
        .collect();
    names.sort();
    names
}

/// Names and contents of a tar (gzipped or not), in order.
fn tar_entries(bytes: &[u8], gz: bool) -> Vec<(String, Vec<u8>)> {
    let reader: Box<dyn Read + '_> = if gz {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut archive = tar::Archive::new(reader);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

#[test]
fn tar_downloads_use_the_zip_layout() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    for (format, gz, content_type) in [
        ("tar", false, "application/x-tar"),
        ("tar.gz", true, "application/x-gzip"),
    ] {
        let r = a.get(&format!(
            "{E1}/scans/1/resources/DICOM/files?format={format}"
        ));
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-type"], content_type);
        let entries = tar_entries(&r.bytes().unwrap(), gz);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "E1/scans/1-T1w/resources/DICOM/files/a/001.dcm",
                "E1/scans/1-T1w/resources/DICOM/files/a/002.dcm",
                "E1/scans/1-T1w/resources/DICOM/files/b/003.dcm",
            ]
        );
        assert_eq!(entries[2].1, b"dicom three");
    }
}

#[test]
fn zip_downloads_use_the_session_layout() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let r = a.get("/data/experiments/XNAT_E00001/scans/ALL/files?format=zip");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let bytes = r.bytes().unwrap();
    assert_eq!(
        zip_names(&bytes),
        vec![
            "E1/scans/1-T1w/resources/DICOM/files/a/001.dcm",
            "E1/scans/1-T1w/resources/DICOM/files/a/002.dcm",
            "E1/scans/1-T1w/resources/DICOM/files/b/003.dcm",
            "E1/scans/1-T1w/resources/NIFTI/files/t1.nii.gz",
            "E1/scans/2-rest_fmri/resources/NIFTI/files/rest.nii.gz",
        ]
    );
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..])).unwrap();
    let mut s = String::new();
    z.by_name("E1/scans/1-T1w/resources/DICOM/files/b/003.dcm")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "dicom three");
    let one = a
        .get(&format!("{E1}/scans/1/resources/NIFTI/files?format=zip"))
        .bytes()
        .unwrap();
    assert_eq!(
        zip_names(&one),
        vec!["E1/scans/1-T1w/resources/NIFTI/files/t1.nii.gz"]
    );
    let scan = a
        .get(&format!(
            "{E1}/scans/2/files?format=zip&compression=deflate"
        ))
        .bytes()
        .unwrap();
    assert_eq!(
        zip_names(&scan),
        vec!["E1/scans/2-rest_fmri/resources/NIFTI/files/rest.nii.gz"]
    );
    assert_eq!(
        a.text("/data/projects/P/subjects/S2/experiments/E2/scans/ALL/files?format=zip")
            .0,
        404
    );
}

#[test]
fn upload_body_modes() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let base = format!("{E1}/scans/1/resources/NIFTI/files");
    // pyxnat: POST, inbody=true, no Content-Type
    let r = a
        .req(
            Method::POST,
            &format!("{base}/py.nii?inbody=true&format=NIFTI&content=T1&tags=x&overwrite=false"),
        )
        .body("pyxnat")
        .send()
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().unwrap()),
        (200, String::new())
    );
    // other supported raw types
    for (name, ct) in [
        ("p.png", "image/png"),
        ("t.txt", "text/plain"),
        ("z.bin", "application/zip"),
    ] {
        let r = a
            .req(Method::PUT, &format!("{base}/{name}"))
            .header("Content-Type", ct)
            .body("raw")
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{ct}");
    }
    // unsupported type without inbody: 400
    let r = a
        .req(Method::PUT, &format!("{base}/j.json"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("inbody=true"));
    // 0-byte raw body: 500; chunked (no Content-Length): 500, unless application/zip
    assert_eq!(a.upload(&format!("{base}/empty.nii"), b"").0, 500);
    let chunked = || reqwest::blocking::Body::new(std::io::Cursor::new(b"streamed".to_vec()));
    let r = a
        .req(Method::PUT, &format!("{base}/c.nii?inbody=true"))
        .body(chunked())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let r = a
        .req(Method::PUT, &format!("{base}/c.zip"))
        .header("Content-Type", "application/zip")
        .body(chunked())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // multipart (and multipart with inbody=true: 406)
    let form = reqwest::blocking::multipart::Form::new()
        .text("format", "DICOM")
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(b"multi".to_vec()).file_name("m.dcm"),
        );
    let r = a
        .req(Method::POST, &format!("{base}/sub/m.dcm"))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(b"x".to_vec()).file_name("n.dcm"),
    );
    let r = a
        .req(Method::POST, &format!("{base}/n.dcm?inbody=true"))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 406);
    // catalog names are refused
    assert_eq!(a.upload(&format!("{base}/x_catalog.xml"), b"<x/>").0, 400);

    let rows = a.rows(&base);
    let row = |name: &str| rows.iter().find(|r| r["Name"] == name).unwrap().clone();
    assert_eq!(row("py.nii")["file_format"], "NIFTI");
    assert_eq!(row("py.nii")["file_content"], "T1");
    assert_eq!(row("py.nii")["file_tags"], "x");
    assert_eq!(row("m.dcm")["file_format"], "DICOM");
    assert!(row("m.dcm")["URI"]
        .as_str()
        .unwrap()
        .ends_with("/files/sub/m.dcm"));
    assert_eq!(row("c.zip")["Size"], "8");
    assert!(!rows
        .iter()
        .any(|r| r["Name"] == "empty.nii" || r["Name"] == "j.json" || r["Name"] == "c.nii"));
}

#[test]
fn duplicates_overwrite_history_autocreate_and_extract() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let f = format!("{E1}/scans/1/resources/NIFTI/files/t1.nii.gz");
    let (code, body) = a.upload(&f, b"replacement");
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"duplicates":["t1.nii.gz"]}"#)
    );
    assert_eq!(a.text(&f).1, "t1 volume");
    assert_eq!(
        a.upload(&format!("{f}?overwrite=true"), b"replacement"),
        (200, String::new())
    );
    assert_eq!(a.text(&f).1, "replacement");
    let row = a.rows(&format!("{E1}/scans/1/resources/NIFTI/files"))[0].clone();
    assert_eq!(row["Size"], "11");
    let old_blob = sim.server.store().read(|ar| {
        let r = ar
            .resources
            .values()
            .find(|r| r.label == "NIFTI" && r.file("t1.nii.gz").is_some())
            .unwrap();
        assert_eq!(r.history.len(), 1);
        r.history[0].file.blob
    });
    let old = std::fs::read(sim.server.store().blob_path(old_blob)).unwrap();
    assert_eq!(old, b"t1 volume");

    // upload into a missing resource creates it
    assert_eq!(
        a.upload(&format!("{E1}/scans/2/resources/NEW/files/n.txt"), b"new")
            .0,
        200
    );
    let res = a.rows(&format!("{E1}/scans/2/resources"));
    assert!(res
        .iter()
        .any(|r| r["label"] == "NEW" && r["file_count"] == "1"));

    // extract=true unpacks a zip into the resource's root (the upload path's folders go)
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let o = zip::write::SimpleFileOptions::default();
        z.start_file("x/one.txt", o).unwrap();
        std::io::Write::write_all(&mut z, b"1").unwrap();
        z.start_file("two.txt", o).unwrap();
        std::io::Write::write_all(&mut z, b"22").unwrap();
        z.finish().unwrap();
    }
    let r = a
        .req(
            Method::PUT,
            &format!("{E1}/resources/ZIPPED/files/dir/bundle.zip?extract=true"),
        )
        .header("Content-Type", "application/zip")
        .body(buf.into_inner())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut names = a.file_paths(&format!("{E1}/resources/ZIPPED/files"));
    names.sort();
    assert_eq!(names, vec!["two.txt", "x/one.txt"]);

    // and a tgz, as xnatpy's upload_dir sends it
    let mut tgz = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut tgz, flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        for (name, data) in [("./sub/three.txt", &b"333"[..]), ("four.txt", b"4444")] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            t.append_data(&mut h, name, data).unwrap();
        }
        // a symbolic link, as xnatpy tars the links xnatutils makes: XNAT's TarUtils writes
        // every entry that is not a directory as a file of the entry's data (none here)
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        t.append_link(&mut h, "link.nii.gz", "/tmp/t1.nii.gz")
            .unwrap();
        t.into_inner().unwrap().finish().unwrap();
    }
    let r = a
        .req(
            Method::POST,
            &format!("{E1}/resources/TGZ/files/upload.tar.gz?extract=true&overwrite=true"),
        )
        .header("Content-Type", "application/x-gzip")
        .body(tgz)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut names = a.file_paths(&format!("{E1}/resources/TGZ/files"));
    names.sort();
    assert_eq!(names, vec!["four.txt", "link.nii.gz", "sub/three.txt"]);
    assert!(a
        .get(&format!("{E1}/resources/TGZ/files/link.nii.gz"))
        .bytes()
        .unwrap()
        .is_empty());
    // a single .gz is stored unpacked, under its name without .gz
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"55555").unwrap();
    let r = a
        .req(
            Method::PUT,
            &format!("{E1}/resources/TGZ/files/deep/five.txt.gz?extract=true"),
        )
        .header("Content-Type", "application/octet-stream")
        .body(gz.finish().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut names = a.file_paths(&format!("{E1}/resources/TGZ/files"));
    names.sort();
    assert_eq!(
        names,
        vec!["five.txt", "four.txt", "link.nii.gz", "sub/three.txt"]
    );
    assert_eq!(
        a.get(&format!("{E1}/resources/TGZ/files/sub/three.txt"))
            .bytes()
            .unwrap()
            .to_vec(),
        b"333"
    );
}

#[test]
fn create_codes() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    assert_eq!(
        a.put("/data/projects/P/subjects/S1"),
        (200, "XNAT_S00001".into())
    );
    assert_eq!(
        a.put("/data/projects/P/subjects/S3"),
        (201, "XNAT_S00003".into())
    );
    let (code, body) = a.put("/data/projects/P/subjects/S1/experiments/E9");
    assert_eq!(code, 417);
    assert!(body.starts_with(
        "<html><head><title>Status page</title></head><body><h3>Need PUT Contents</h3>"
    ));
    assert_eq!(
        a.put(&format!("{E1}?xsiType=xnat:mrSessionData")),
        (200, "XNAT_E00001".into())
    );
    assert_eq!(
        a.put("/data/projects/P/subjects/S1/experiments/bad.label?xsiType=xnat:mrSessionData")
            .0,
        417
    );
    // experiment PUT creates its subject
    assert_eq!(
        a.put("/data/projects/P/subjects/NEWSUB/experiments/NE?xsiType=xnat:petSessionData")
            .0,
        201
    );
    assert_eq!(a.rows("/data/projects/P/subjects?label=NEWSUB").len(), 1);
    let (code, body) = a.put(&format!("{E1}/scans/9"));
    assert_eq!(code, 400);
    assert!(body.contains("xsiType=xnat:mrScanData"));
    assert_eq!(
        a.put(&format!("{E1}/scans/1?xsiType=xnat:ctScanData")).0,
        409
    );
    assert_eq!(
        a.put(&format!(
            "{E1}/scans/1?xsiType=xnat:mrScanData&quality=unusable"
        ))
        .0,
        200
    );
    assert_eq!(
        a.rows(&format!("{E1}/scans?ID=1"))[0]["quality"],
        "unusable"
    );
    // xnatpy: scan created with its type in the URL
    assert_eq!(
        a.put(&format!(
            "{E1}/scans/T2w?xsiType=xnat:mrScanData&xnat:mrScanData/type=T2w"
        ))
        .0,
        200
    );
    let (code, rid) = a.put(&format!(
        "{E1}/scans/T2w/resources/NIFTI?format=NIFTI&content=T2"
    ));
    assert_eq!(code, 200);
    assert!(rid.parse::<u64>().is_ok());
    let (code, body) = a.put(&format!("{E1}/scans/T2w/resources/NIFTI"));
    assert_eq!(code, 409);
    assert!(body.contains("Specified resource already exists"));
    let res = a.rows(&format!("{E1}/scans/T2w/resources"));
    assert_eq!(
        (res[0]["format"].as_str(), res[0]["content"].as_str()),
        (Some("NIFTI"), Some("T2"))
    );
    assert_eq!(a.put("/data/projects/Q").0, 201);
    assert_eq!(a.put("/data/projects/bad%20id").0, 417);
}

#[test]
fn delete_codes() {
    let sim = start();
    fixture(&sim);
    let a = sim.alice();
    let dicom = format!("{E1}/scans/1/resources/DICOM/files");
    assert_eq!(
        a.delete(&format!("{dicom}/not/there.dcm")),
        (200, String::new())
    );
    assert_eq!(a.rows(&dicom).len(), 3);
    assert_eq!(a.delete(&format!("{dicom}/a/001.dcm")).0, 200);
    assert_eq!(a.rows(&dicom).len(), 2);
    assert_eq!(a.delete(&format!("{dicom}/a/")).0, 200);
    assert_eq!(a.rows(&dicom).len(), 1);
    assert_eq!(a.delete(&format!("{dicom}/b/*")).0, 200);
    assert_eq!(a.rows(&dicom).len(), 0);
    assert_eq!(a.delete(&format!("{E1}/scans/1/resources/DICOM")).0, 200);
    assert_eq!(a.rows(&format!("{E1}/scans/1/resources")).len(), 1);
    assert_eq!(a.delete(&format!("{E1}/scans/2?removeFiles=true")).0, 200);
    assert_eq!(a.rows(&format!("{E1}/scans")).len(), 1);
    assert_eq!(a.delete(&format!("{E1}?removeFiles=true")).0, 200);
    assert_eq!(a.text(&format!("{E1}?format=json")).0, 404);
    assert_eq!(
        a.text("/data/experiments/XNAT_E00002?format=json").0,
        404,
        "assessors go with their session"
    );
    assert_eq!(
        a.delete("/data/projects/P/subjects/S2?removeFiles=true").0,
        200
    );
    assert_eq!(a.rows("/data/projects/P/subjects").len(), 1);
    assert_eq!(a.delete("/data/projects/P/subjects/NOPE").0, 404);
    assert_eq!(a.delete("/data/projects/P?removeFiles=true").0, 200);
    assert_eq!(a.rows("/data/projects").len(), 0);
}

#[test]
fn a_name_that_is_not_utf8_is_listed_as_xnat_decodes_it_and_is_missing() {
    let sim = start();
    fixture(&sim);
    let rid = sim
        .server
        .store()
        .read(|a| a.resources.values().find(|r| r.label == "QC").map(|r| r.id))
        .unwrap();
    let listed =
        xnat_sim::add_file_named(sim.server.store(), rid, b"bad\xffname.txt", &b"x"[..]).unwrap();
    assert_eq!(listed, "bad\u{FFFD}name.txt");
    let a = sim.alice();
    let names = a.file_paths(&format!("{E1}/resources/QC/files"));
    assert!(names.contains(&listed), "{names:?}");
    let url = format!("{E1}/resources/QC/files/bad%EF%BF%BDname.txt");
    let (code, body) = a.text(&url);
    assert_eq!(code, 404);
    assert!(body.contains("File missing"), "{body}");
}
