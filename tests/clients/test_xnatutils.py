"""xnatutils 0.10.0 (xnat-ls, xnat-get, xnat-put: the installed entry points, run as subprocesses)
against a populated xnat-sim, with credentials in ~/.netrc as its README documents."""

import hashlib
from pathlib import Path

import pytest

from conftest import POPULATED_PROJECT as PROJECT, log_tail, md5, run_tool


def lines(done):
    return [line for line in done.stdout.splitlines() if line.strip()]


def run(sim, name, *args, home, **kw):
    done = run_tool(name, *args, home=home, **kw)
    assert "ERROR" not in done.stdout and "Traceback" not in done.stderr, (
        f"{name} {' '.join(map(str, args))} failed (exit {done.returncode}):\nstdout:\n{done.stdout}\n"
        f"stderr:\n{done.stderr[-3000:]}\nlast requests:\n{log_tail(sim)}")
    assert done.returncode == 0, done.stderr
    return done


# --- xnat-ls ----------------------------------------------------------------------------------------

def test_ls_projects(populated_sim, home):
    assert lines(run(populated_sim, "xnat-ls", home=home)) == [PROJECT]


def test_ls_subjects_of_a_project(populated_sim, home, truth):
    assert lines(run(populated_sim, "xnat-ls", "-p", PROJECT, home=home)) == sorted(truth.subjects())


def test_ls_subjects_by_regex(populated_sim, home, truth):
    expected = sorted(s for s in truth.subjects() if s.endswith(("S001", "S002")))
    got = lines(run(populated_sim, "xnat-ls", "-d", "subject", "-p", PROJECT, f"{PROJECT}_S00[12]", home=home))
    assert got == expected and len(expected) == 2


def test_ls_sessions_of_a_project(populated_sim, home, truth):
    got = lines(run(populated_sim, "xnat-ls", "-p", PROJECT, "-d", "session", home=home))
    assert got == sorted(truth.sessions())


def test_ls_sessions_of_a_subject(populated_sim, home, truth):
    subject = sorted(truth.subjects())[1]
    expected = sorted(label for label, s in truth.sessions().items() if s["subject_label"] == subject)
    assert lines(run(populated_sim, "xnat-ls", "-p", PROJECT, "-j", subject, home=home)) == expected


def test_ls_sessions_by_regex(populated_sim, home, truth):
    expected = sorted(truth.sessions())
    got = lines(run(populated_sim, "xnat-ls", "-d", "session", "-p", PROJECT, f"{PROJECT}_.*_MR1", home=home))
    assert got == expected


def test_ls_sessions_with_and_without_scans(populated_sim, home, truth):
    types = {label: {s["type"] for s in truth.scans(label).values()} for label in truth.sessions()}
    # a scan type that only some sessions have
    all_types = sorted(set().union(*types.values()))
    pick = next(t for t in all_types if 0 < sum(t in v for v in types.values()) < len(types))
    with_ = sorted(label for label, v in types.items() if pick in v)
    without = sorted(label for label, v in types.items() if pick not in v)
    got = lines(run(populated_sim, "xnat-ls", "-p", PROJECT, "-d", "session", "-w", pick, home=home))
    assert got == with_
    got = lines(run(populated_sim, "xnat-ls", "-p", PROJECT, "-d", "session", "-o", pick, home=home))
    assert got == without


def test_ls_sessions_before_and_after_a_date(populated_sim, home, truth):
    dates = {label: s["date"] for label, s in truth.sessions().items()}
    middle = sorted(dates.values())[1]
    after = sorted(label for label, d in dates.items() if d >= middle)
    before = sorted(label for label, d in dates.items() if d <= middle)
    assert lines(run(populated_sim, "xnat-ls", "-p", PROJECT, "-d", "session", "-a", middle, home=home)) == after
    assert lines(run(populated_sim, "xnat-ls", "-p", PROJECT, "-d", "session", "-b", middle, home=home)) == before


def test_ls_scans_of_a_session(populated_sim, home, truth):
    session = sorted(truth.sessions())[0]
    expected = sorted(s["type"] for s in truth.scans(session).values())
    assert lines(run(populated_sim, "xnat-ls", "-d", "scan", session, home=home)) == expected
    # Not checked: the documented guess without -d (`xnat-ls SESSION`) fails in xnatutils 0.10.0 itself
    # (ls_.py L147 `xnat_id.split('_')` on the CLI's list), before any request.


def test_ls_scan_ids_with_return_attr(populated_sim, home, truth):
    session = sorted(truth.sessions())[0]
    expected = sorted(truth.scans(session))
    assert lines(run(populated_sim, "xnat-ls", "-d", "scan", "-t", "id", session, home=home)) == expected


# --- xnat-get ---------------------------------------------------------------------------------------

def _check_download(folder, expected, truth):
    """`folder` holds exactly the files `expected` (name -> md5)."""
    assert folder.is_dir(), f"missing {folder}: " + str(sorted(str(p) for p in folder.parent.rglob("*")))
    got = {p.relative_to(folder).as_posix(): md5(p) for p in folder.rglob("*") if p.is_file()}
    assert got == expected


# Only the default method, zip: `-m per_file` fails in xnatutils 0.10.0 with xnatpy 0.8.1 on the client
# side (get_.py `Path(tmp_dir) / file` where iterating `resource.files` yields FileData objects).
@pytest.mark.parametrize("method", ["zip"])
def test_get_by_scan_type_and_resource(populated_sim, home, truth, tmp_path, method):
    session = sorted(truth.sessions())[0]
    scan_id, scan = sorted(truth.scans(session).items())[0]
    run(populated_sim, "xnat-get", session, "-t", tmp_path, "-x", scan["type"], "-r", "NIFTI", "-m", method,
        home=home)
    sanitized = "".join(c if c.isalnum() or c == "_" else "_" for c in scan["type"])
    _check_download(tmp_path / session / f"{scan_id}-{sanitized}", truth.files(session, scan_id, "NIFTI"), truth)
    assert sorted(p.name for p in (tmp_path / session).iterdir()) == [f"{scan_id}-{sanitized}"]


def test_get_all_resources_of_a_scan(populated_sim, home, truth, tmp_path):
    """Without --resource_name every resource is fetched, each to <scan>-<resource>."""
    session = sorted(truth.sessions())[1]
    scan_id, scan = sorted(truth.scans(session).items())[-1]
    run(populated_sim, "xnat-get", session, "-t", tmp_path, "-x", scan["type"], home=home)
    sanitized = "".join(c if c.isalnum() or c == "_" else "_" for c in scan["type"])
    for resource in ("NIFTI", "DICOM"):
        _check_download(tmp_path / session / f"{scan_id}-{sanitized}-{resource}",
                        truth.files(session, scan_id, resource), truth)


def test_get_project_sessions_into_subject_dirs(populated_sim, home, truth, tmp_path):
    """`-p PROJECT` with no session: every session; `-d` groups them by subject."""
    sessions = truth.sessions()
    types = {label: {s["type"]: i for i, s in truth.scans(label).items()} for label in sessions}
    pick = sorted(types[sorted(sessions)[0]])[0]
    run(populated_sim, "xnat-get", "-p", PROJECT, "-t", tmp_path, "-x", pick, "-r", "DICOM", "-d", home=home)
    sanitized = "".join(c if c.isalnum() or c == "_" else "_" for c in pick)
    for label, scans in types.items():
        folder = tmp_path / sessions[label]["subject_label"] / f"{scans[pick]}-{sanitized}" if pick in scans else None
        if folder is not None:
            _check_download(folder, truth.files(label, scans[pick], "DICOM"), truth)


# --- xnat-put ---------------------------------------------------------------------------------------

def _server_files(truth, session, scan, resource):
    return truth.files(session, scan, resource)


def test_put_default_method_single_file_is_caught_by_the_digest_check(populated_sim, home, truth, nifti_file):
    """The default method is xnatpy's upload_dir default, tgz_file: one upload.tar.gz with
    extract=true. For files named one by one, xnatutils symlinks them into a temporary folder and
    xnatpy tars that folder without dereferencing (`tarfile.add`), so the tgz holds a symbolic link,
    not the bytes. XNAT's FileExtractor hands tgz to TarUtils, which writes every entry that is not a
    directory as a file with the entry's data: an empty t1.nii.gz. xnat-put's digest check sees it
    and says so (exit status 0 all the same), as it would on XNAT; `--method per_file` (below) is
    the way for single files."""
    session = sorted(truth.sessions())[0]
    done = run_tool("xnat-put", session, "t1_upload", nifti_file, home=home)
    assert "Remote digest does not match local (d41d8cd98f00b204e9800998ecf8427e vs " + md5(nifti_file) in done.stdout, (
        done.stdout + done.stderr[-2000:])
    files = _server_files(truth, session, "t1_upload", "NIFTI_GZ")
    assert files == {"t1.nii.gz": hashlib.md5(b"").hexdigest()}, log_tail(populated_sim)
    scan = truth.scans(session)["t1_upload"]
    assert scan["type"] == "t1_upload" and scan["xsiType"] == "xnat:mrScanData"


def test_put_default_method_creates_session_from_a_directory(populated_sim, home, truth, tmp_path):
    """`--create_session` with <project>_<subject>_<visit>: subject and session are created; a
    folder of several files goes up as one tgz (default) and lands file by file."""
    folder = tmp_path / "dwi"
    folder.mkdir()
    payload = {}
    for n in range(3):
        data = hashlib.sha256(str(n).encode()).digest() * (200 + n)
        (folder / f"dwi_{n}.bin").write_bytes(data)
        payload[f"dwi_{n}.bin"] = hashlib.md5(data).hexdigest()
    session = f"{PROJECT}_NEWSUBJ_MR1"
    done = run(populated_sim, "xnat-put", session, "dwi", folder, "-c", "-r", "DATA", home=home)
    assert "session successfully created" in done.stdout
    assert session in truth.sessions()
    assert truth.sessions()[session]["subject_label"] == "NEWSUBJ"
    assert _server_files(truth, session, "dwi", "DATA") == payload, log_tail(populated_sim)


def test_put_per_file_method(populated_sim, home, truth, nifti_file):
    session = sorted(truth.sessions())[2]
    done = run(populated_sim, "xnat-put", session, "t1_perfile", nifti_file, "--method", "per_file", home=home)
    assert f"Successfully checked digest for {session}:t1_perfile" in done.stdout, done.stdout
    assert _server_files(truth, session, "t1_perfile", "NIFTI_GZ") == {"t1.nii.gz": md5(nifti_file)}


def test_put_overwrite_replaces_the_resource(populated_sim, home, truth, nifti_file, tmp_path):
    session = sorted(truth.sessions())[1]
    run(populated_sim, "xnat-put", session, "t1_over", nifti_file, "--method", "per_file", home=home)
    other = tmp_path / "other" / "t1.nii.gz"
    other.parent.mkdir()
    other.write_bytes(Path(nifti_file).read_bytes()[::-1])
    run(populated_sim, "xnat-put", session, "t1_over", other, "--overwrite", "--method", "per_file", home=home)
    assert _server_files(truth, session, "t1_over", "NIFTI_GZ") == {"t1.nii.gz": md5(other)}
