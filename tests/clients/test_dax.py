"""dax 2.21.0 against a populated xnat-sim: the dax.XnatUtils helpers (InterfaceTemp over pyxnat) and
the installed CLIs Xnatquery, Xnatdownload and Xnatupload, as dax's docs use them: the host from
$XNAT_HOST (or an argument), the login from ~/.netrc (dax's DAX_Netrc looks up the bare hostname)."""

import csv
import os

import pytest

from conftest import PASSWORD, POPULATED_PROJECT as PROJECT, USER, log_tail, md5, run_tool

try:
    from dax import XnatUtils
except ImportError as e:  # never a silent skip
    XnatUtils = None
    DAX_IMPORT_ERROR = e


@pytest.fixture(scope="module")
def intf(populated_sim, home):
    """`XnatUtils.get_interface()` with nothing passed: XNAT_HOST from the environment, the login from
    ~/.netrc, as dax's tools call it."""
    if XnatUtils is None:
        pytest.fail(f"dax is not installed ({DAX_IMPORT_ERROR}): pip install -r tests/clients/requirements.txt")
    saved = {k: os.environ.get(k) for k in ("HOME", "XNAT_HOST")}
    os.environ["HOME"], os.environ["XNAT_HOST"] = str(home), populated_sim.url
    try:
        interface = XnatUtils.get_interface()
        yield interface
        interface.disconnect()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _why(sim):
    return "last requests:\n" + log_tail(sim)


# --- dax.XnatUtils ---------------------------------------------------------------------------------

def test_get_interface_with_arguments(populated_sim):
    if XnatUtils is None:
        pytest.fail(f"dax is not installed ({DAX_IMPORT_ERROR})")
    with XnatUtils.get_interface(host=populated_sim.url, user=USER, pwd=PASSWORD) as xnat:
        assert [p["ID"] for p in xnat.get_projects()] == [PROJECT]


def test_get_projects(intf, populated_sim):
    projects = intf.get_projects()
    assert [p["ID"] for p in projects] == [PROJECT]
    assert projects[0]["name"] == "Simulated project 1"


def test_get_subjects(intf, truth, populated_sim):
    subjects = intf.get_subjects(PROJECT)
    expected = truth.subjects()
    assert [s["subject_label"] for s in subjects] == sorted(expected), _why(populated_sim)
    for s in subjects:
        assert s["subject_id"] == expected[s["label"]]["ID"]
        # SUBJECT_POST_URI asks columns=ID,project,label,URI,last_modified,src,handedness,gender,yob,dob;
        # XNAT answers every one of them (empty when unset), and get_subjects reads subj['src'].
        for column in ("src", "handedness", "gender", "yob", "dob", "last_modified"):
            assert column in s, (column, sorted(s))


def test_get_sessions_of_a_project(intf, truth, populated_sim):
    sessions = intf.get_sessions(PROJECT)
    expected = truth.sessions()
    assert [s["session_label"] for s in sessions] == sorted(expected), _why(populated_sim)
    subjects = truth.subjects()
    for s in sessions:
        want = expected[s["label"]]
        assert s["session_id"] == want["ID"]
        assert s["subject_id"] == subjects[want["subject_label"]]["ID"]
        assert s["subject_label"] == want["subject_label"]
        assert s["date"] == want["date"]
        assert s["session_type"] == "MR" and s["xsiType"] == "xnat:mrSessionData"
        assert s["project"] == PROJECT


def test_get_sessions_of_a_subject(intf, truth, populated_sim):
    subject = sorted(truth.subjects())[2]
    sessions = intf.get_sessions(PROJECT, subject)
    expected = sorted(label for label, s in truth.sessions().items() if s["subject_label"] == subject)
    assert [s["label"] for s in sessions] == expected, _why(populated_sim)


def test_get_sessions_minimal(intf, truth, populated_sim):
    sessions = intf.get_sessions_minimal(PROJECT)
    assert sorted(s["label"] for s in sessions) == sorted(truth.sessions()), _why(populated_sim)
    assert {s["session_type"] for s in sessions} == {"MR"}


def test_get_scans_of_a_session(intf, truth, populated_sim):
    session = sorted(truth.sessions())[0]
    subject = truth.sessions()[session]["subject_label"]
    scans = intf.get_scans(PROJECT, subject, session)
    expected = truth.scans(session)
    assert [s["ID"] for s in scans] == sorted(expected), _why(populated_sim)
    for s in scans:
        want = expected[s["ID"]]
        assert (s["type"], s["series_description"], s["quality"]) == (
            want["type"], want["series_description"], want["quality"])
        assert s["session_label"] == session and s["subject_label"] == subject


def test_get_project_scans(intf, truth, populated_sim):
    """One entry per scan of the project, with its resources (the scan-column experiment listing,
    one row per scan x resource; the shared-project query adds nothing: nothing is shared)."""
    scans = intf.get_project_scans(PROJECT)
    expected = {(label, sid): s for label in truth.sessions() for sid, s in truth.scans(label).items()}
    got = {(s["session_label"], s["scan_id"]): s for s in scans}
    assert sorted(got) == sorted(expected), _why(populated_sim)
    assert len(scans) == len(expected)
    for key, s in got.items():
        assert s["type"] == expected[key]["type"]
        assert s["series_description"] == expected[key]["series_description"]
        assert s["resources"] == ["NIFTI", "DICOM"] or sorted(s["resources"]) == ["DICOM", "NIFTI"], s["resources"]
        assert len(s["resources"]) == 2, s["resources"]
        assert s["session_type"] == "MR"


def test_get_scan_resources(intf, truth, populated_sim):
    session = sorted(truth.sessions())[1]
    subject = truth.sessions()[session]["subject_label"]
    scan = sorted(truth.scans(session))[0]
    resources = intf.get_scan_resources(PROJECT, subject, session, scan)
    assert sorted(r["label"] for r in resources) == ["DICOM", "NIFTI"]


def test_load_scan_data(intf, truth, populated_sim):
    """XnatUtils.load_scan_data: the SCAN_URI query (session columns + xnat:imagescandata/id,type,quality,
    filtered by project=) as a DataFrame with dax's renamed columns."""
    frame = XnatUtils.load_scan_data(intf, [PROJECT])
    sessions = truth.sessions()
    expected = sorted((label, sid, s["type"]) for label in sessions for sid, s in truth.scans(label).items())
    got = sorted(zip(frame["SESSION"], frame["SCANID"], frame["SCANTYPE"]))
    assert got == expected, _why(populated_sim)
    for _, row in frame.iterrows():
        assert row["PROJECT"] == PROJECT
        assert row["SUBJECT"] == sessions[row["SESSION"]]["subject_label"]
        assert row["DATE"] == sessions[row["SESSION"]]["date"]
        assert row["SESSTYPE"] == "MR"
        assert row["QUALITY"] == "usable"
        assert row["full_path"] == (f"/projects/{PROJECT}/subjects/{row['SUBJECT']}/experiments/"
                                    f"{row['SESSION']}/scans/{row['SCANID']}")


# --- CLIs -------------------------------------------------------------------------------------------

def run(sim, home, name, *args, cwd=None):
    done = run_tool(name, *args, home=home, cwd=cwd, env={"XNAT_HOST": sim.url})
    assert done.returncode == 0 and "Traceback" not in done.stderr, (
        f"{name} {' '.join(map(str, args))} exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\n"
        f"stderr:\n{done.stderr[-3000:]}\n{_why(sim)}")
    return done


def test_xnatquery_project_lists_subjects(populated_sim, home, truth):
    done = run(populated_sim, home, "Xnatquery", "-p", PROJECT)
    subjects = [line.split("+ Subject: ", 1)[1].strip() for line in done.stdout.splitlines() if "+ Subject: " in line]
    assert subjects == sorted(truth.subjects())


def test_xnatquery_me_lists_projects(populated_sim, home):
    done = run(populated_sim, home, "Xnatquery", "--me")
    rows = [line.split(":")[0].strip() for line in done.stdout.splitlines() if line.strip().startswith(PROJECT)]
    assert rows == [PROJECT], done.stdout


def test_xnatquery_session_lists_scans_and_resources(populated_sim, home, truth):
    session = sorted(truth.sessions())[0]
    subject = truth.sessions()[session]["subject_label"]
    # -e: the session's scans (dax get_scans, the xnat:imagesessiondata/scans/scan/* columns)
    done = run(populated_sim, home, "Xnatquery", "-p", PROJECT, "-s", subject, "-e", session)
    scans = [line.strip()[2:] for line in done.stdout.splitlines() if line.startswith("       - ")]
    assert scans == [f"{sid} -- {s['type']}" for sid, s in sorted(truth.scans(session).items())], done.stdout
    # --all: every project's subjects, sessions, scans, and each scan's resources
    done = run(populated_sim, home, "Xnatquery", "--all")
    scans = [line.strip()[2:] for line in done.stdout.splitlines() if line.startswith("       - ")]
    want = [f"{sid} -- {s['type']}" for e in sorted(truth.sessions()) for sid, s in sorted(truth.scans(e).items())]
    assert scans == want, done.stdout
    resources = [line.strip()[3:] for line in done.stdout.splitlines() if line.startswith("         -> ")]
    assert sorted(resources) == sorted(["NIFTI", "DICOM"] * len(want))


def test_xnatquery_subject_lists_sessions(populated_sim, home, truth):
    subject = sorted(truth.subjects())[0]
    done = run(populated_sim, home, "Xnatquery", "-p", PROJECT, "-s", subject)
    sessions = [line.split("* Session: ", 1)[1].strip() for line in done.stdout.splitlines() if "* Session: " in line]
    assert sessions == sorted(l for l, s in truth.sessions().items() if s["subject_label"] == subject)


def test_xnatdownload_scan_type_and_resource(populated_sim, home, truth, tmp_path):
    """`Xnatdownload -p PID -d DIR -s TYPE --rs NIFTI`: DIR/PID/SUBJECT/SESSION/<ID>-x-<type>-x-<desc>/NIFTI/…"""
    session = sorted(truth.sessions())[0]
    sid, scan = sorted(truth.scans(session).items())[0]
    out = tmp_path / "dl"
    run(populated_sim, home, "Xnatdownload", "-p", PROJECT, "-d", out, "-s", scan["type"], "--rs", "NIFTI")
    subject = truth.sessions()[session]["subject_label"]
    folder = out / PROJECT / subject / session / f"{sid}-x-{scan['type']}-x-{scan['series_description']}" / "NIFTI"
    expected = truth.files(session, sid, "NIFTI")
    got = {p.name: md5(p) for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else {}
    assert got == expected, (sorted(str(p.relative_to(out)) for p in out.rglob("*")), _why(populated_sim))
    with open(out / "download_report.csv") as report:
        rows = list(csv.reader(report))
    assert rows[0][:5] == ["object_type", "project_id", "subject_label", "session_type", "session_label"]
    assert any(r[:2] == ["scan", PROJECT] and session in r for r in rows[1:]), rows


def test_xnatdownload_all_scans_one_session(populated_sim, home, truth, tmp_path):
    session = sorted(truth.sessions())[2]
    out = tmp_path / "dl"
    run(populated_sim, home, "Xnatdownload", "-p", PROJECT, "-d", out, "--sess", session, "-s", "all", "--rs", "DICOM")
    subject = truth.sessions()[session]["subject_label"]
    for sid, scan in truth.scans(session).items():
        folder = out / PROJECT / subject / session / f"{sid}-x-{scan['type']}-x-{scan['series_description']}" / "DICOM"
        got = {p.name: md5(p) for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else {}
        assert got == truth.files(session, sid, "DICOM"), sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    others = [d.name for d in (out / PROJECT).iterdir() if d.is_dir()]
    assert others == [subject]


def test_xnatupload_csv_scan_resource(populated_sim, home, truth, tmp_path, nifti_file):
    session = sorted(truth.sessions())[1]
    subject = truth.sessions()[session]["subject_label"]
    sheet = tmp_path / "upload.csv"
    with open(sheet, "w", newline="") as out:
        csv.writer(out).writerow(["scan", PROJECT, subject, "MR", session, "901", "T1w_dax", "dax upload",
                                  "usable", "NIFTI", str(nifti_file)])
    run(populated_sim, home, "Xnatupload", "-c", sheet)
    scan = truth.scans(session)["901"]
    assert (scan["type"], scan["series_description"], scan["quality"]) == ("T1w_dax", "dax upload", "usable")
    assert truth.files(session, "901", "NIFTI") == {nifti_file.name: md5(nifti_file)}
