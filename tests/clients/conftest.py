"""Fixtures for the client suite: a fresh xnat-sim per test module, started with `xnat-sim start`
and stopped by PID with `xnat-sim stop` (through scripts/lib/xnat_sim.py, as the benchmarks do).

The server binary comes from XNAT_SIM_BIN or the workspace's target/debug/xnat-sim; a missing binary
fails the run with a message that says how to build it, never a silent skip.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

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
