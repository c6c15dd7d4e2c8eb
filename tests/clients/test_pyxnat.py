"""pyxnat 1.6.4 against xnat-sim: the calls lab scripts make, configured from a JSON config file."""

import pyxnat
import pytest
import requests

from conftest import OTHER_PASSWORD, OTHER_USER, md5

PROJECT = "PYX"


@pytest.fixture(scope="module")
def central(sim, tmp_path_factory):
    import json

    cfg = tmp_path_factory.mktemp("pyxnat") / "xnat.cfg"
    from conftest import PASSWORD, USER

    cfg.write_text(json.dumps({"server": sim.url, "user": USER, "password": PASSWORD}))
    interface = pyxnat.Interface(config=str(cfg))
    yield interface
    interface.disconnect()


@pytest.fixture(scope="module")
def tree(central, tmp_path_factory):
    """Two subjects, one MR session each, an MPRAGE and a DWI scan, each with a NIFTI resource."""
    project = central.select.project(PROJECT)
    project.create()
    for n in (1, 2):
        subject = project.subject(f"sub{n:02d}")
        subject.create()
        session = subject.experiment(f"sub{n:02d}_MR1")
        session.create(experiments="xnat:mrSessionData")
        for scan_id, scan_type in (("1", "mprage"), ("2", "DWI")):
            scan = session.scan(scan_id)
            scan.create(scans="xnat:mrScanData", **{"xnat:mrScanData/type": scan_type})
            scan.resource("NIFTI").create()
    return project


def test_lists_projects_subjects_and_experiments(central, tree):
    assert PROJECT in central.select.projects().get()
    subjects = list(central.select.project(PROJECT).subjects())
    assert sorted(s.label() for s in subjects) == ["sub01", "sub02"]
    assert all(s.id().startswith("XNAT_S") for s in subjects), [s.id() for s in subjects]
    sessions = [e.label() for e in central.select.project(PROJECT).subject("sub01").experiments()]
    assert sessions == ["sub01_MR1"]
    assert central.select.project(PROJECT).subject("sub01").experiment("sub01_MR1").datatype() == "xnat:mrSessionData"


def test_scans_have_types_and_select_by_type(central, tree):
    session = central.select.project(PROJECT).subject("sub02").experiment("sub02_MR1")
    scans = {scan.id(): scan.attrs.get("type") for scan in session.scans()}
    assert scans == {"1": "mprage", "2": "DWI"}
    dwi = [scan.id() for scan in session.scans() if scan.attrs.get("type") == "DWI"]
    assert dwi == ["2"]


def test_insert_then_download_a_scan_nifti(central, tree, nifti_file, tmp_path):
    resource = central.select.project(PROJECT).subject("sub01").experiment("sub01_MR1").scan("1").resource("NIFTI")
    resource.file("t1.nii.gz").insert(str(nifti_file), format="NIFTI", content="T1", tags="raw")
    assert resource.files().get() == ["t1.nii.gz"]
    out = tmp_path / "download.nii.gz"
    resource.file("t1.nii.gz").get(str(out))
    assert md5(out) == md5(nifti_file)


def test_creates_scan_resource_and_files(central, tree, nifti_file):
    session = central.select.project(PROJECT).subject("sub02").experiment("sub02_MR1")
    scan = session.scan("3")
    scan.create(scans="xnat:mrScanData", **{"xnat:mrScanData/type": "DWI"})
    assert scan.exists()
    assert scan.attrs.get("type") == "DWI"
    resource = scan.resource("BVALS")
    resource.create()
    assert resource.exists()
    resource.file("dwi.bval").insert(str(nifti_file), format="BVAL", content="gradients")
    assert resource.file("dwi.bval").exists()
    assert not resource.file("missing.bval").exists()


def test_exists_reports_missing_objects(central, tree):
    project = central.select.project(PROJECT)
    assert project.exists()
    assert project.subject("sub01").exists()
    assert not project.subject("nobody").exists()
    assert not central.select.project("NO_SUCH_PROJECT").exists()


def test_delete_file_and_experiment(central, tree, nifti_file):
    subject = central.select.project(PROJECT).subject("sub02")
    resource = subject.experiment("sub02_MR1").scan("1").resource("NIFTI")
    resource.file("gone.nii.gz").insert(str(nifti_file))
    assert resource.file("gone.nii.gz").exists()
    resource.file("gone.nii.gz").delete()
    assert not resource.file("gone.nii.gz").exists()

    doomed = subject.experiment("sub02_MR2")
    doomed.create(experiments="xnat:mrSessionData")
    assert doomed.exists()
    doomed.delete()
    assert not doomed.exists()
    assert subject.experiment("sub02_MR1").exists()


def test_non_member_cannot_read_the_project(sim, tree):
    reply = requests.get(
        f"{sim.url}/data/projects/{PROJECT}/subjects?format=json", auth=(OTHER_USER, OTHER_PASSWORD), timeout=10
    )
    assert reply.status_code in (403, 404)
    assert not reply.text.lstrip().startswith("{")
