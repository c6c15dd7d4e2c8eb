"""xnatpy (xnat 0.8.1) against xnat-sim: connect, walk, download_dir, upload, create, delete."""

import zipfile

import pytest
import xnat

from conftest import PASSWORD, USER, md5

PROJECT = "XPY"


@pytest.fixture(scope="module")
def session(sim):
    connection = xnat.connect(sim.url, user=USER, password=PASSWORD, loglevel="ERROR")
    yield connection
    connection.disconnect()


@pytest.fixture(scope="module")
def tree(session):
    """Project XPY with one subject, an MR session, a T1w scan and a NIFTI resource, created by xnatpy."""
    project = session.classes.ProjectData(parent=session, id_=PROJECT, name=PROJECT)
    session.clearcache()
    project = session.projects[PROJECT]
    subject = session.classes.SubjectData(parent=project, label="subA")
    experiment = session.classes.MrSessionData(parent=subject, label="subA_MR1")
    # xnatpy puts the scan type in the URL when it creates a scan, so XNAT gives the scan that ID.
    scan = session.classes.MrScanData(parent=experiment, id_="1", type="T1w", series_description="MPRAGE")
    scan.create_resource("NIFTI")
    return project


def test_connect_reports_the_logged_in_user(session):
    assert session.logged_in_user == USER


def test_walks_the_tree(session, tree):
    project = session.projects[PROJECT]
    assert [s.label for s in project.subjects.values()] == ["subA"]
    experiment = project.subjects["subA"].experiments["subA_MR1"]
    assert experiment.__xsi_type__ == "xnat:mrSessionData"
    scan = experiment.scans["T1w"]
    assert scan.type == "T1w"
    assert scan.series_description == "MPRAGE"
    assert [r.label for r in scan.resources.values()] == ["NIFTI"]


def test_upload_then_download_a_file(session, tree, nifti_file, tmp_path):
    resource = session.projects[PROJECT].subjects["subA"].experiments["subA_MR1"].scans["T1w"].resources["NIFTI"]
    resource.upload(str(nifti_file), "anat/t1.nii.gz")
    resource.clearcache()
    assert "anat/t1.nii.gz" in [f.path for f in resource.files.values()]
    out = tmp_path / "copy.nii.gz"
    resource.files["anat/t1.nii.gz"].download(str(out), verbose=False)
    assert md5(out) == md5(nifti_file)


def test_download_dir_of_an_experiment_is_a_zip_with_xnat_layout(session, tree, nifti_file, tmp_path):
    experiment = session.projects[PROJECT].subjects["subA"].experiments["subA_MR1"]
    resource = experiment.scans["T1w"].resources["NIFTI"]
    resource.upload(str(nifti_file), "zipped.nii.gz")
    experiment.download_dir(str(tmp_path), verbose=False)
    unpacked = tmp_path / "subA_MR1" / "scans" / "T1w-T1w" / "resources" / "NIFTI" / "files" / "zipped.nii.gz"
    assert unpacked.is_file(), sorted(str(p) for p in tmp_path.rglob("*"))
    assert md5(unpacked) == md5(nifti_file)

    zip_path = tmp_path / "session.zip"
    experiment.download(str(zip_path), verbose=False)
    with zipfile.ZipFile(zip_path) as archive:
        assert "subA_MR1/scans/T1w-T1w/resources/NIFTI/files/zipped.nii.gz" in archive.namelist()


def test_creates_and_deletes_objects(session, tree):
    project = session.projects[PROJECT]
    subject = session.classes.SubjectData(parent=project, label="subB")
    assert subject.id.startswith("XNAT_S")
    experiment = session.classes.MrSessionData(parent=subject, label="subB_MR1")
    assert experiment.id.startswith("XNAT_E")
    session.clearcache()
    assert "subB_MR1" in [e.label for e in session.projects[PROJECT].subjects["subB"].experiments.values()]
    session.projects[PROJECT].subjects["subB"].experiments["subB_MR1"].delete()
    session.clearcache()
    assert "subB_MR1" not in [e.label for e in session.projects[PROJECT].subjects["subB"].experiments.values()]


def test_deletes_a_file(session, tree, nifti_file):
    resource = session.projects[PROJECT].subjects["subA"].experiments["subA_MR1"].scans["T1w"].resources["NIFTI"]
    resource.upload(str(nifti_file), "temporary.nii.gz")
    resource.clearcache()
    resource.files["temporary.nii.gz"].delete()
    resource.clearcache()
    assert "temporary.nii.gz" not in [f.path for f in resource.files.values()]
