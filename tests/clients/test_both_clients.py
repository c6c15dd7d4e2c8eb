"""What one client writes the other reads, byte for byte."""

import os

import pyxnat
import pytest
import xnat

from conftest import PASSWORD, USER, md5

PROJECT = "BOTH"


@pytest.fixture(scope="module")
def clients(sim):
    py = pyxnat.Interface(server=sim.url, user=USER, password=PASSWORD)
    xp = xnat.connect(sim.url, user=USER, password=PASSWORD, loglevel="ERROR")
    yield py, xp
    xp.disconnect()
    py.disconnect()


@pytest.fixture
def payload(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return path


def test_pyxnat_writes_xnatpy_reads(clients, payload, tmp_path):
    py, xp = clients
    scan = py.select.project(PROJECT).subject("s1").experiment("s1_MR1").scan("1")
    scan.create(projects="xnat:projectData", experiments="xnat:mrSessionData", scans="xnat:mrScanData")
    scan.resource("DATA").file("payload.bin").insert(str(payload))

    out = tmp_path / "via-xnatpy.bin"
    xp.clearcache()
    resource = xp.projects[PROJECT].subjects["s1"].experiments["s1_MR1"].scans["1"].resources["DATA"]
    resource.files["payload.bin"].download(str(out), verbose=False)
    assert md5(out) == md5(payload)


def test_xnatpy_writes_pyxnat_reads(clients, payload, tmp_path):
    py, xp = clients
    xp.clearcache()
    experiment = xp.projects[PROJECT].subjects["s1"].experiments["s1_MR1"]
    resource = experiment.create_resource("NOTES")
    resource.upload(str(payload), "nested/dir/payload.bin")

    out = tmp_path / "via-pyxnat.bin"
    py.select.project(PROJECT).subject("s1").experiment("s1_MR1").resource("NOTES").file(
        "nested/dir/payload.bin"
    ).get(str(out))
    assert md5(out) == md5(payload)
