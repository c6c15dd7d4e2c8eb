//! Project roles: a collaborator reads (listings, downloads, zips) but every
//! upload, create and delete gets 403 and changes nothing; a member writes but
//! does not delete (403); an owner deletes;
//! a user without a role gets 403 on reads too.

mod common;
use common::{config, fixture, start, Api, E1};
use reqwest::blocking::multipart::{Form, Part};
use reqwest::Method;
use xnat_sim::BlockingSimServer;

/// The fixture archive served again with carol as collaborator and dave as member of P.
fn with_roles() -> (tempfile::TempDir, BlockingSimServer) {
    let sim = start();
    fixture(&sim);
    let dir = sim.dir;
    drop(sim.server);
    let mut c = config(&dir);
    c.users.push(("carol".into(), "pw3".into()));
    c.users.push(("dave".into(), "pw4".into()));
    c.collaborators = vec![("carol".into(), "P".into())];
    c.members = vec![("dave".into(), "P".into())];
    let server = BlockingSimServer::start(c).unwrap();
    (dir, server)
}

#[test]
fn a_collaborator_reads_but_every_write_is_forbidden() {
    let (_dir, server) = with_roles();
    let carol = Api::new(&server.url(), Some(("carol", "pw3")));
    let alice = Api::new(&server.url(), Some(("alice", "pw")));
    // reads
    assert_eq!(carol.rows("/data/projects")[0]["ID"], "P");
    assert_eq!(carol.rows("/data/projects/P/subjects").len(), 2);
    let files = carol.rows("/data/experiments/XNAT_E00001/scans/ALL/files");
    assert_eq!(files.len(), 5);
    assert_eq!(
        carol.text(&format!("{E1}/scans/1/resources/DICOM/files/a/001.dcm")),
        (200, "dicom one".into())
    );
    let zip = carol.get(&format!("{E1}/scans/1/resources/NIFTI/files?format=zip"));
    assert_eq!(zip.status().as_u16(), 200);
    let before = std::fs::read(server.store().root().join("archive.json")).unwrap();

    // uploads: raw (new file, overwrite, into a new resource, by numeric id) and multipart
    let rid = files[0]["cat_ID"].as_str().unwrap().to_string();
    for url in [
        format!("{E1}/scans/1/resources/DICOM/files/new.dcm"),
        format!("{E1}/scans/1/resources/DICOM/files/a/001.dcm?overwrite=true"),
        format!("{E1}/resources/NEWRES/files/x.txt"),
        format!("{E1}/scans/1/resources/{rid}/files/y.dcm"),
        "/data/projects/P/resources/DOCS/files/more.txt".to_string(),
    ] {
        let (code, body) = carol.upload(&url, b"not allowed");
        assert_eq!(code, 403, "{url}");
        assert!(body.contains("<h3>"), "{url}: a Restlet status page");
    }
    let form = Form::new().part("file", Part::bytes(Vec::new()).file_name("e.txt"));
    let r = carol
        .req(
            Method::POST,
            &format!("{E1}/scans/1/resources/NIFTI/files/e.txt"),
        )
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // creates, new or existing
    for url in [
        "/data/projects/P/subjects/S9".to_string(),
        "/data/projects/P/subjects/S1".to_string(),
        "/data/projects/P/subjects/S9/experiments/X?xsiType=xnat:mrSessionData".to_string(),
        format!("{E1}?xsiType=xnat:mrSessionData"),
        format!("{E1}/scans/7?xsiType=xnat:mrScanData&type=T1w"),
        format!("{E1}/scans/1/resources/NEW?format=NIFTI"),
        format!("{E1}/resources/QC"),
        format!("{E1}/assessors/QC1/out/resources/NEW"),
        "/data/projects/P/resources/NEW".to_string(),
        "/data/projects/P?xsiType=xnat:projectData".to_string(),
    ] {
        assert_eq!(carol.put(&url).0, 403, "{url}");
    }
    // deletes: file, folder, resource, scan, experiment, subject, project
    for url in [
        format!("{E1}/scans/1/resources/DICOM/files/a/001.dcm"),
        format!("{E1}/scans/1/resources/DICOM/files/a/"),
        format!("{E1}/scans/1/resources/DICOM"),
        format!("{E1}/scans/2?removeFiles=true"),
        format!("{E1}?removeFiles=true"),
        "/data/projects/P/subjects/S2?removeFiles=true".to_string(),
        "/data/projects/P?removeFiles=true".to_string(),
    ] {
        assert_eq!(carol.delete(&url).0, 403, "{url}");
    }
    // nothing changed
    let after = std::fs::read(server.store().root().join("archive.json")).unwrap();
    assert!(before == after, "a refused write changed the archive");
    assert_eq!(
        alice.rows("/data/experiments/XNAT_E00001/scans/ALL/files"),
        files
    );
    // a collaborator may still create a project of its own (and owns it)
    assert_eq!(carol.put("/data/projects/CAROL").0, 201);
    assert_eq!(
        carol.upload("/data/projects/CAROL/resources/R/files/f.txt", b"mine"),
        (200, String::new())
    );
}

#[test]
fn a_member_writes_but_does_not_delete_and_a_stranger_reads_nothing() {
    let (_dir, server) = with_roles();
    let dave = Api::new(&server.url(), Some(("dave", "pw4")));
    assert_eq!(
        dave.upload(&format!("{E1}/scans/1/resources/NIFTI/files/d.nii"), b"d"),
        (200, String::new())
    );
    assert_eq!(dave.put("/data/projects/P/subjects/S8").0, 201);
    // members create and edit; only owners (and admins) delete
    let (code, body) = dave.delete(&format!("{E1}/scans/1/resources/NIFTI/files/d.nii"));
    assert_eq!(code, 403);
    assert!(body.contains("permission"), "{body}");
    assert_eq!(dave.delete("/data/projects/P/subjects/S8").0, 403);
    let alice = Api::new(&server.url(), Some(("alice", "pw")));
    assert_eq!(
        alice.text(&format!("{E1}/scans/1/resources/NIFTI/files/d.nii")),
        (200, "d".into()),
        "the refused delete changed nothing"
    );
    assert_eq!(
        alice
            .delete(&format!("{E1}/scans/1/resources/NIFTI/files/d.nii"))
            .0,
        200,
        "the owner deletes"
    );
    let bob = Api::new(&server.url(), Some(("bob", "pw2")));
    assert!(bob.rows("/data/projects").is_empty());
    assert_eq!(bob.text("/data/projects/P/subjects").0, 403);
    assert_eq!(
        bob.upload(&format!("{E1}/scans/1/resources/NIFTI/files/b.nii"), b"b")
            .0,
        403
    );
}

#[test]
fn a_new_role_replaces_the_old_one() {
    let (dir, server) = with_roles();
    drop(server);
    // dave becomes a collaborator, carol a member
    let mut c = config(&dir);
    c.collaborators = vec![("dave".into(), "P".into())];
    c.members = vec![("carol".into(), "P".into())];
    let server = BlockingSimServer::start(c).unwrap();
    let dave = Api::new(&server.url(), Some(("dave", "pw4")));
    let carol = Api::new(&server.url(), Some(("carol", "pw3")));
    let url = format!("{E1}/resources/QC/files/r.txt");
    assert_eq!(dave.upload(&url, b"x").0, 403);
    assert_eq!(carol.upload(&url, b"x"), (200, String::new()));
}
