"""bxl 0.3.4 (the Boring XNAT Library) against a populated xnat-sim: its README's connection (basic
credentials -> JSESSIONID cookie, or a JSON config through bxl.utils.setup_xnat) and its query, dump,
upload and download calls."""

import hashlib
import io
import json
import zipfile

import pytest

from conftest import OTHER_PASSWORD, OTHER_USER, PASSWORD, POPULATED_PROJECT as PROJECT, USER, log_tail

try:
    from bxl import xnat as bxl_xnat
    from bxl import utils as bxl_utils
except ImportError as e:
    bxl_xnat = None
    BXL_IMPORT_ERROR = e


@pytest.fixture(scope="module")
def conn(populated_sim):
    if bxl_xnat is None:
        pytest.fail(f"bxl is not installed ({BXL_IMPORT_ERROR}): pip install -r tests/clients/requirements.txt")
    c = bxl_xnat.Connection(hostname=populated_sim.url, credentials=(USER, PASSWORD))
    assert c.jsession_id, "bxl went offline: HEAD on the server root did not answer 200\n" + log_tail(populated_sim)
    yield c
    if c.jsession_id:
        c.close_jsession()


@pytest.fixture(scope="module")
def session_ids(truth):
    return {label: s["ID"] for label, s in truth.sessions().items()}


def _why(sim):
    return "last requests:\n" + log_tail(sim)


def test_setup_from_config_file(populated_sim, tmp_path):
    if bxl_xnat is None:
        pytest.fail(f"bxl is not installed ({BXL_IMPORT_ERROR})")
    cfg = tmp_path / "xnat.cfg"
    cfg.write_text(json.dumps({"server": populated_sim.url, "user": USER, "password": PASSWORD}))
    with bxl_utils.setup_xnat(str(cfg)) as c:
        assert c.jsession_id
        assert list(c.get_projects()) == [PROJECT]


def test_get_projects(conn):
    projects = conn.get_projects()
    assert list(projects) == [PROJECT]
    assert projects[PROJECT]["name"] == "Simulated project 1"
    assert projects[PROJECT]["URI"] == f"/data/projects/{PROJECT}"


def test_get_project_users(conn, populated_sim):
    """GET /data/projects/P/users (XNAT's ProjectUserListResource): one row per user, keyed by login,
    for the project's owner (alice); a plain member (bob) is refused (403)."""
    users = conn.get_project_users(PROJECT)
    assert sorted(users) == sorted([USER, OTHER_USER]), (users, _why(populated_sim))
    assert users[USER]["login"] == USER
    member = bxl_xnat.Connection(hostname=populated_sim.url, credentials=(OTHER_USER, OTHER_PASSWORD))
    try:
        with pytest.raises(bxl_xnat.XNATException, match="#403"):
            member.get_project_users(PROJECT)
    finally:
        member.close_jsession()
    conn._put_resource(conn.host + "/data/projects/BXLOWN")  # alice creates it, so owns it
    assert list(conn.get_project_users("BXLOWN")) == [USER], _why(populated_sim)


def test_get_project_aliases(conn, populated_sim):
    """GET /data/projects?ID=P&columns=alias: the alias column is there (empty: no aliases)."""
    assert conn.get_project_aliases(PROJECT) == [], _why(populated_sim)


def test_get_subjects(conn, truth):
    subjects = conn.get_subjects(PROJECT)
    expected = truth.subjects()
    assert sorted(subjects) == sorted(s["ID"] for s in expected.values())
    assert sorted(s["label"] for s in subjects.values()) == sorted(expected)
    everywhere = conn.get_subjects()
    assert sorted(everywhere) == sorted(subjects)


def test_get_subjects_with_columns(conn, truth, populated_sim):
    subjects = conn.get_subjects(PROJECT, options={"columns": "label,gender,handedness,yob"})
    assert sorted(s["label"] for s in subjects.values()) == sorted(truth.subjects())
    for s in subjects.values():
        for column in ("gender", "handedness", "yob"):
            assert column in s, (column, s, _why(populated_sim))


def test_get_experiments_and_mrsessions(conn, truth, session_ids):
    assert sorted(conn.get_experiments(PROJECT)) == sorted(session_ids.values())
    sessions = conn.get_mrsessions(PROJECT, options={"columns": "label,date"})
    expected = truth.sessions()
    assert sorted((s["label"], s["date"]) for s in sessions.values()) == sorted(
        (label, s["date"]) for label, s in expected.items())
    assert conn.get_petsessions(PROJECT) == {}


def test_get_subject_experiments(conn, truth, session_ids):
    subject = sorted(truth.subjects())[1]
    expected = sorted(session_ids[l] for l, s in truth.sessions().items() if s["subject_label"] == subject)
    assert sorted(conn.get_subject_experiments(PROJECT, subject)) == expected


def test_get_scans_with_columns(conn, truth, session_ids, populated_sim):
    session = sorted(session_ids)[0]
    scans = conn.get_scans(session_ids[session], options={"columns": "ID,type,series_description,frames,quality"})
    expected = truth.scans(session)
    assert sorted(scans) == sorted(expected)
    for sid, s in scans.items():
        assert (s["type"], s["series_description"], s["quality"]) == (
            expected[sid]["type"], expected[sid]["series_description"], expected[sid]["quality"])
        assert "frames" in s, (s, _why(populated_sim))


def test_get_mrscans(conn, truth, session_ids):
    session = sorted(session_ids)[1]
    assert sorted(conn.get_mrscans(session_ids[session])) == sorted(truth.scans(session))
    assert conn.get_petscans(session_ids[session]) == {}


def test_get_experiment_labels(conn, truth, session_ids):
    session = sorted(session_ids)[2]
    subject = truth.sessions()[session]["subject_label"]
    assert conn.get_experiment_labels(session_ids[session]) == {
        "project": PROJECT, "session": session, "sessionID": session_ids[session],
        "subjectID": truth.subjects()[subject]["ID"], "subject": subject}


def test_get_dicom_dump(conn, truth, session_ids, populated_sim):
    """GET /REST/services/dicomdump?src=/archive/projects/P/experiments/E/scans/1&format=json: the
    header of one DICOM file of the scan as rows tag1, tag2, vr, value, desc."""
    session = sorted(session_ids)[0]
    dump = conn.get_dicom_dump(PROJECT, session_ids[session], scanID="1")
    assert dump, _why(populated_sim)
    by_tag = {row["tag1"]: row for row in dump}
    assert by_tag["(0008,0060)"]["value"] == "MR", dump[:5]
    assert {"tag1", "tag2", "vr", "value", "desc"} <= set(dump[0])


def test_scan_resources_and_files(conn, truth, session_ids):
    session = sorted(session_ids)[0]
    eid = session_ids[session]
    resources = conn.get_scan_resources(eid)  # scans/ALL
    assert sorted(r["label"] for r in resources.values()) == sorted(["NIFTI", "DICOM"] * len(truth.scans(session)))
    nifti = conn.get_scan_resource_files(eid, "1", "NIFTI")
    assert sorted(f["Name"] for f in nifti.values()) == sorted(truth.files(session, "1", "NIFTI"))
    every = conn.get_scan_resource_files(eid, "1")
    expected = {**truth.files(session, "1", "NIFTI"), **truth.files(session, "1", "DICOM")}
    assert sorted(f["Name"] for f in every.values()) == sorted(expected)
    for uri, f in nifti.items():
        data = conn.download_resource(conn.host + uri)
        assert hashlib.md5(data).hexdigest() == f["digest"] == expected[f["Name"]]


def test_create_collection_upload_and_delete(conn, truth, session_ids, tmp_path):
    session = sorted(session_ids)[1]
    eid = session_ids[session]
    rid = conn.create_resource_collection("experiments", eid, "NOTES", meta_rcFormat="txt", meta_rcContent="notes")
    assert rid
    note = tmp_path / "note.txt"
    note.write_bytes(b"bxl was here\n")
    conn.add_resource_file("experiments", eid, str(note), resource_collection="NOTES")
    files = conn.get_experiment_resource_files(eid, "NOTES")
    assert [f["Name"] for f in files.values()] == ["note.txt"]
    assert list(files.values())[0]["digest"] == hashlib.md5(b"bxl was here\n").hexdigest()

    # extract_dir: a zip goes up with extract=true and lands as its members
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", b"alpha")
        z.writestr("sub/b.txt", b"beta")
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(buf.getvalue())
    conn.add_resource_file("experiments", eid, str(archive), resource_collection="NOTES", extract_dir=True)
    names = sorted(f["Name"] for f in conn.get_experiment_resource_files(eid, "NOTES").values())
    assert names == ["a.txt", "b.txt", "note.txt"]

    conn.delete_resource(conn.host + f"/data/experiments/{eid}/resources/NOTES")
    assert "NOTES" not in [r["label"] for r in conn.get_experiment_resources(eid).values()]
