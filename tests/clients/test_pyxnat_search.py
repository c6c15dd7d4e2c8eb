"""pyxnat 1.6.4's array and search-backed calls against a populated xnat-sim: `interface.array.*`
(the experiments listing with xsiType, xpath filters and xpath columns), the objects' __repr__ (which
query the search engine and listing columns such as `frames`), `select(datatype, fields).where(...)`
(POST /data/search), and the DICOM derivative `Resource.scandate()`."""

import pyxnat
import pytest

from conftest import PASSWORD, POPULATED_PROJECT as PROJECT, USER, log_tail


@pytest.fixture(scope="module")
def central(populated_sim):
    interface = pyxnat.Interface(server=populated_sim.url, user=USER, password=PASSWORD)
    yield interface
    interface.disconnect()


def _why(sim):
    return "last requests:\n" + log_tail(sim)


def test_array_experiments_of_a_project(central, truth, populated_sim):
    rows = central.array.experiments(project_id=PROJECT).data
    sessions = truth.sessions()
    subjects = truth.subjects()
    assert sorted(r["ID"] for r in rows) == sorted(s["ID"] for s in sessions.values()), _why(populated_sim)
    for r in rows:
        assert r["project"] == PROJECT
    # columns=ID,project,xnat:subjectAssessorData/subject_id: XNAT names that column by its shortcut
    by_id = {s["ID"]: subjects[s["subject_label"]]["ID"] for s in sessions.values()}
    assert {r["ID"]: r["subject_ID"] for r in rows} == by_id, rows[:2]


def test_array_experiments_filtered_by_subject_label(central, truth, populated_sim):
    """`subject_label=` becomes `&xnat:subjectData/label=X`, a criterion in XNAT."""
    subject = sorted(truth.subjects())[1]
    rows = central.array.experiments(project_id=PROJECT, subject_label=subject).data
    expected = sorted(s["ID"] for s in truth.sessions().values() if s["subject_label"] == subject)
    assert sorted(r["ID"] for r in rows) == expected, _why(populated_sim)


def test_array_experiments_filtered_by_subject_id_and_label(central, truth, populated_sim):
    subject = sorted(truth.subjects())[2]
    sid = truth.subjects()[subject]["ID"]
    rows = central.array.experiments(subject_id=sid).data
    expected = sorted(s["ID"] for s in truth.sessions().values() if s["subject_label"] == subject)
    assert sorted(r["ID"] for r in rows) == expected, _why(populated_sim)
    label = sorted(truth.sessions())[0]
    rows = central.array.mrsessions(experiment_label=label).data
    assert [r["ID"] for r in rows] == [truth.sessions()[label]["ID"]]


def test_array_experiments_with_extra_columns(central, truth, populated_sim):
    """An xpath column that is not literally a shortcut's path comes back under its lower-cased path
    (XNAT's formatHeaders): `xnat:mrSessionData/date` -> `xnat:mrsessiondata/date`."""
    rows = central.array.mrsessions(project_id=PROJECT, columns=["label", "xnat:mrSessionData/date"]).data
    sessions = {s["ID"]: (label, s["date"]) for label, s in truth.sessions().items()}
    assert {r["ID"]: (r["label"], r["xnat:mrsessiondata/date"]) for r in rows} == sessions, (
        rows[:2], _why(populated_sim))


def _expected_scans(truth):
    return sorted((s["ID"], sid) for label, s in truth.sessions().items() for sid in truth.scans(label))


def test_array_scans(central, truth, populated_sim):
    """One row per scan (9), keyed 'xnat:imagescandata/id' (pyxnat: id_key=('%s/ID' % scan_type).lower())."""
    rows = central.array.scans(project_id=PROJECT).data
    assert sorted((r["ID"], r["xnat:imagescandata/id"]) for r in rows) == _expected_scans(truth), _why(populated_sim)


def test_array_mrscans_with_type_column(central, truth, populated_sim):
    rows = central.array.mrscans(project_id=PROJECT, columns=["xnat:mrScanData/type"]).data
    assert sorted((r["ID"], r["xnat:mrscandata/id"]) for r in rows) == _expected_scans(truth), _why(populated_sim)
    types = {(s["ID"], sid): scan["type"] for label, s in truth.sessions().items()
             for sid, scan in truth.scans(label).items()}
    assert {(r["ID"], r["xnat:mrscandata/id"]): r["xnat:mrscandata/type"] for r in rows} == types


def test_print_projects_and_subjects(central, truth, populated_sim):
    """Project.__repr__ and Subject.__repr__ read the search engine (select('xnat:projectData').all(),
    select('xnat:subjectData', columns).all(): POST /data/search)."""
    projects = [repr(p) for p in central.select.projects()]
    assert len(projects) == 1 and projects[0].startswith(f"<Project Object> {PROJECT} `Simulated project 1`"), (
        projects, _why(populated_sim))
    assert "3 subjects" in projects[0] and "3 MR experiments" in projects[0], projects[0]
    subjects = [repr(s) for s in central.select.project(PROJECT).subjects()]
    by_id = {s["ID"]: label for label, s in truth.subjects().items()}
    assert len(subjects) == 3
    for text in subjects:
        sid = text.split()[2]
        assert text.startswith(f"<Subject Object> {sid} `{by_id[sid]}` (project: {PROJECT})"), text
        assert "1 experiment " in text, text


def test_subject_label_and_attrs(central, truth, populated_sim):
    subject = sorted(truth.subjects())[0]
    obj = central.select.project(PROJECT).subject(subject)
    assert obj.label() == subject
    assert obj.id() == truth.subjects()[subject]["ID"]
    assert obj.attrs.get("label") == subject
    assert obj.attrs.get("project") == PROJECT
    single = truth.http.get(f"{truth.url}/data/subjects/{obj.id()}", params={"format": "json"}, timeout=30).json()
    gender = single["items"][0]["data_fields"].get("gender", "")
    assert obj.attrs.get("gender") == gender, _why(populated_sim)


def test_scan_repr(central, truth, populated_sim):
    """Scan.__repr__ lists the scans with columns=ID,type,frames,quality and formats `frames`."""
    session = sorted(truth.sessions())[0]
    subject = truth.sessions()[session]["subject_label"]
    scan = central.select.project(PROJECT).subject(subject).experiment(session).scan("1")
    want = truth.scans(session)["1"]
    text = repr(scan)
    assert text.startswith(f"<Scan Object> 1 (`{want['type']}` "), (text, _why(populated_sim))
    assert f"frames) {want['quality']} " in text


def test_select_subjects_where(central, truth, populated_sim):
    """interface.select('xnat:subjectData', fields).where(constraints): POST /data/search."""
    table = central.select("xnat:subjectData", ["xnat:subjectData/SUBJECT_ID", "xnat:subjectData/SUBJECT_LABEL",
                                                "xnat:subjectData/PROJECT"]).where(
        [("xnat:subjectData/PROJECT", "=", PROJECT), "AND"])
    rows = table.data
    expected = sorted((s["ID"], label) for label, s in truth.subjects().items())
    assert sorted((r["subject_id"], r["subject_label"]) for r in rows) == expected, (rows, _why(populated_sim))
    one = sorted(truth.subjects())[0]
    rows = central.select("xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL"]).where(
        [("xnat:subjectData/SUBJECT_LABEL", "=", one), "AND"]).data
    assert [r["subject_label"] for r in rows] == [one]


def test_select_mrsessions_where(central, truth, populated_sim):
    table = central.select("xnat:mrSessionData", ["xnat:mrSessionData/SESSION_ID", "xnat:mrSessionData/LABEL",
                                                  "xnat:mrSessionData/DATE"]).where(
        [("xnat:mrSessionData/PROJECT", "=", PROJECT), "AND"])
    got = sorted((r["session_id"], r["label"], r["date"]) for r in table.data)
    assert got == sorted((s["ID"], label, s["date"]) for label, s in truth.sessions().items()), _why(populated_sim)


def test_dicom_resource_scandate(central, truth, populated_sim):
    """pyxnat's DICOM derivative: Resource.scandate() reads AcquisitionDate (or AcquisitionDateTime)
    from the first DICOM file; the session date comes from it."""
    session = sorted(truth.sessions())[0]
    subject = truth.sessions()[session]["subject_label"]
    resource = central.select.project(PROJECT).subject(subject).experiment(session).scan("1").resource("DICOM")
    import pydicom

    if not hasattr(pydicom, "read_file"):
        pytest.fail(f"pyxnat 1.6.4's scandate() calls pydicom.read_file, removed in pydicom 3; installed "
                    f"pydicom {pydicom.__version__} (required by xnat 0.8.1). test_dicom_acquisition_date "
                    f"checks the same data with dcmread.")
    assert resource.scandate() == truth.sessions()[session]["date"]


def test_dicom_acquisition_date(central, truth, populated_sim, tmp_path):
    """What scandate() reads, with pydicom 3's dcmread: the first file of the scan's DICOM resource has
    AcquisitionDate (or AcquisitionDateTime) equal to the session date, as XNAT's archive (which takes
    the session date from the DICOM) has it."""
    import pydicom
    from datetime import datetime

    session = sorted(truth.sessions())[0]
    subject = truth.sessions()[session]["subject_label"]
    resource = central.select.project(PROJECT).subject(subject).experiment(session).scan("1").resource("DICOM")
    first = list(resource.files())[0]
    path = tmp_path / "first.dcm"
    first.get(dest=str(path))
    d = pydicom.dcmread(str(path))
    date = d.AcquisitionDate if hasattr(d, "AcquisitionDate") else d.AcquisitionDateTime[:8]
    assert datetime.strptime(date, "%Y%m%d").strftime("%Y-%m-%d") == truth.sessions()[session]["date"]
