"""Fixtures for the client suite: a fresh xnat-sim per test module, started with `xnat-sim start`
and stopped by PID with `xnat-sim stop` (through scripts/lib/xnat_sim.py, as the benchmarks do).

The server binary comes from XNAT_SIM_BIN or the workspace's target/debug/xnat-sim; a missing binary
fails the run with a message that says how to build it, never a silent skip.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "lib"))
import xnat_sim  # noqa: E402

USER, PASSWORD = "alice", "alice-pw"
OTHER_USER, OTHER_PASSWORD = "bob", "bob-pw"


def sim_binary():
    path = Path(os.environ.get("XNAT_SIM_BIN", REPO / "target" / "debug" / "xnat-sim"))
    if not path.is_file():
        pytest.fail(f"xnat-sim binary not found at {path}: run `cargo build -p xnat-sim` or set XNAT_SIM_BIN")
    return path


class Sim(xnat_sim.Sim):
    """One running xnat-sim server on a free loopback port, with the suite's two users."""

    def __init__(self, root, extra_args=()):
        self.root = root
        try:
            super().__init__(sim_binary(), root, "--listen", "127.0.0.1:0", *extra_args,
                             users=[(USER, PASSWORD), (OTHER_USER, OTHER_PASSWORD)])
        except xnat_sim.SimError as e:
            pytest.fail(f"xnat-sim did not start: {e}")


@pytest.fixture(scope="module")
def sim():
    root = Path(tempfile.mkdtemp(prefix="xnat-sim-clients-"))
    server = Sim(root / "archive")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pyxnat_config(sim, tmp_path):
    """A pyxnat JSON config file, as users keep them (~/.xnat.cfg)."""
    cfg = tmp_path / "xnat.cfg"
    cfg.write_text(json.dumps({"server": sim.url, "user": USER, "password": PASSWORD}))
    return cfg


@pytest.fixture
def nifti_file(tmp_path):
    """A small but valid gzipped NIfTI-1 volume, made here so the suite needs no data download."""
    import gzip
    import struct

    dims = (8, 9, 10)
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, *dims, 1, 1, 1, 1)
    struct.pack_into("<hh", header, 70, 2, 8)  # datatype uint8, bitpix 8
    struct.pack_into("<8f", header, 76, 1.0, 1.0, 1.0, 1.0, 0, 0, 0, 0)
    struct.pack_into("<f", header, 108, 352.0)  # vox_offset
    header[344:348] = b"n+1\0"
    voxels = bytes((x * 7 + y * 3 + z) % 251 for z in range(dims[2]) for y in range(dims[1]) for x in range(dims[0]))
    path = tmp_path / "t1.nii.gz"
    with gzip.open(path, "wb") as out:
        out.write(bytes(header) + b"\0\0\0\0" + voxels)
    return path


def md5(path):
    import hashlib

    digest = hashlib.md5()
    with open(path, "rb") as src:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- A populated archive, for the clients that only read (xnatutils, dax, bxl, xnat-browser, pyxnat
# search). `xnat-sim populate` makes project SIM01 with subjects SIM01_S001…, sessions
# SIM01_S00n_MR1, three scans each with NIFTI and DICOM resources of two files; alice owns it.

# alice owns the project (she also deletes: xnat-put's overwrite, bxl's delete), bob is a member
# (members create and edit, but do not delete or list the project's users).
POPULATE_ARGS = ("--projects", "1", "--subjects", "3", "--sessions", "1", "--scans", "3",
                 "--resources", "NIFTI,DICOM", "--files", "2", "--file-size", "4096",
                 "--owner", USER, "--member", OTHER_USER)
POPULATED_PROJECT = "SIM01"


def populate(root, *args):
    """Run `xnat-sim populate --root ROOT ARGS` (before the server starts on ROOT)."""
    done = subprocess.run([str(sim_binary()), "populate", "--root", str(root), *map(str, args)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"xnat-sim populate failed ({done.returncode}): {done.stderr.strip()}")


@pytest.fixture(scope="module")
def populated_sim(request):
    """A fresh sim per module on a populated archive (POPULATE_ARGS). Every request is logged with
    `--request-log`: to $XNAT_SIM_REQUEST_LOG_DIR/<module>.log when that is set (kept, for reports),
    else inside the temp root (removed). `server.request_log` is the path."""
    root = Path(tempfile.mkdtemp(prefix="xnat-sim-populated-"))
    log_dir = os.environ.get("XNAT_SIM_REQUEST_LOG_DIR")
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        log = Path(log_dir) / f"{request.module.__name__}.log"
        log.unlink(missing_ok=True)
    else:
        log = root / "requests.log"
    populate(root / "archive", *POPULATE_ARGS)
    server = Sim(root / "archive", extra_args=("--request-log", str(log)))
    server.request_log = log
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def truth(populated_sim):
    """The populated archive as plain listings say it is (see Truth)."""
    return Truth(populated_sim.url)


@pytest.fixture(scope="module")
def home(populated_sim, tmp_path_factory):
    """A HOME with a ~/.netrc for alice on the populated sim, for the clients' CLIs."""
    home = tmp_path_factory.mktemp("home")
    write_netrc(home, populated_sim.url)
    return home


def write_netrc(home, url):
    """A ~/.netrc (0600) in `home` for alice on the sim, as users keep them: one entry for host:port
    (xnatpy and xnatutils look up the netloc) and one for the bare host (dax looks up the hostname)."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    netrc = Path(home) / ".netrc"
    netrc.write_text(f"machine {parsed.netloc}\nlogin {USER}\npassword {PASSWORD}\n"
                     f"machine {parsed.hostname}\nlogin {USER}\npassword {PASSWORD}\n")
    netrc.chmod(0o600)
    return netrc


def venv_tool(name):
    """The installed entry point `name` next to this interpreter (the venv's bin), unchanged; a missing
    one fails the test with what to install."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed next to {sys.executable}: "
                    f"pip install -r tests/clients/requirements.txt")
    return path


def run_tool(name, *args, home, cwd=None, env=None, timeout=300):
    """Run an installed CLI as a subprocess with HOME=home (its ~/.netrc); returns CompletedProcess."""
    full_env = dict(os.environ, HOME=str(home), **(env or {}))
    return subprocess.run([str(venv_tool(name)), *map(str, args)], cwd=cwd, env=full_env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


class Truth:
    """What the archive holds, read with plain requests through the basic listings (the ground truth
    the clients' answers are compared with)."""

    def __init__(self, url, project=POPULATED_PROJECT):
        self.url = url
        self.http = requests.Session()
        self.http.auth = (USER, PASSWORD)
        self.project = project

    def rows(self, path, **params):
        reply = self.http.get(self.url + path, params={"format": "json", **params}, timeout=30)
        reply.raise_for_status()
        return reply.json()["ResultSet"]["Result"]

    def subjects(self):
        return {r["label"]: r for r in self.rows(f"/data/projects/{self.project}/subjects")}

    def sessions(self):
        """label -> row of /data/projects/P/subjects/S/experiments, plus 'subject_label'."""
        out = {}
        for subject in sorted(self.subjects()):
            for row in self.rows(f"/data/projects/{self.project}/subjects/{subject}/experiments"):
                out[row["label"]] = dict(row, subject_label=subject)
        return out

    def scans(self, session):
        """scan ID -> scan row, for the session label."""
        s = self.sessions()[session]
        return {r["ID"]: r for r in self.rows(
            f"/data/projects/{self.project}/subjects/{s['subject_label']}/experiments/{session}/scans")}

    def files(self, session, scan, resource):
        """file name -> md5 digest, for a scan resource."""
        s = self.sessions()[session]
        base = f"/data/projects/{self.project}/subjects/{s['subject_label']}/experiments/{session}"
        return {r["Name"]: r["digest"] for r in self.rows(f"{base}/scans/{scan}/resources/{resource}/files")}

    def download(self, path):
        reply = self.http.get(self.url + path, timeout=60)
        reply.raise_for_status()
        return reply.content


def log_tail(server, n=25):
    """The last `n` lines of the sim's request log (for assertion messages)."""
    log = getattr(server, "request_log", None)
    if log is None or not Path(log).is_file():
        return "(no request log)"
    return "\n".join(Path(log).read_text().splitlines()[-n:])
