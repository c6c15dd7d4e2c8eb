"""xnat-browser 0.0.8 (a Textual TUI over xnatpy) against a populated xnat-sim, run headless with
Textual's test pilot (`App.run_test()`): what its start-up loads (the archive tree's projects through
/xapi/access/projects, the pre-archive tree through /data/prearchive/projects), what expanding a node
loads, the DICOM tab (scan.read_dicom), and the query app's search (xnatpy's POST /data/search)."""

import asyncio

import pytest

from conftest import PASSWORD, POPULATED_PROJECT as PROJECT, USER, Truth, log_tail

try:
    from xnat_browser.browse_app import XnatBrowser
    from xnat_browser.xnat_tree import XnatTree
except ImportError as e:
    XnatBrowser = None
    IMPORT_ERROR = e


BROWSE = "BRW"


@pytest.fixture(scope="module")
def browse_project(populated_sim):
    """Project BRW whose name is its ID, with subject B01, session B01_MR1 and scan 1 (T1w), made with
    plain REST. xnat-browser's archive tree keeps a project only when its *name* is one of the IDs
    /xapi/access/projects returns (xnat_archive_tree.py `_add_projects`: `name = project.name; if name
    not in allowed_projects: continue`), so on XNAT too SIM01 ("Simulated project 1") is left out."""
    import requests

    http = requests.Session()
    http.auth = (USER, PASSWORD)
    base = f"{populated_sim.url}/data/projects/{BROWSE}"
    for path, params in ((base, {"xsiType": "xnat:projectData", "xnat:projectData/name": BROWSE}),
                         (f"{base}/subjects/B01", {}),
                         (f"{base}/subjects/B01/experiments/B01_MR1", {"xsiType": "xnat:mrSessionData"}),
                         (f"{base}/subjects/B01/experiments/B01_MR1/scans/1",
                          {"xsiType": "xnat:mrScanData", "xnat:mrScanData/type": "T1w"})):
        reply = http.put(path, params=params, timeout=30)
        assert reply.status_code in (200, 201), (path, reply.status_code, reply.text[:300])
    projects = {r["ID"]: r["name"] for r in Truth(populated_sim.url, BROWSE).rows("/data/projects")}
    assert projects[BROWSE] == BROWSE, projects
    return BROWSE


def _need():
    if XnatBrowser is None:
        pytest.fail(f"xnat-browser is not installed ({IMPORT_ERROR}): pip install -r tests/clients/requirements.txt")


def _why(sim):
    return "last requests:\n" + log_tail(sim)


async def _settle(app, pilot):
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


async def _tree(app, pilot, selector, children=True, timeout=30.0):
    """The tree widget `selector` once the app has composed it and (with `children`) its start-up
    worker has filled it: the pilot's headless start-up takes its time on a loaded machine."""
    from textual.css.query import NoMatches

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            tree = app.query_one(selector, XnatTree)
            if not children or tree.root.children or loop.time() > deadline:
                return tree
        except NoMatches:
            if loop.time() > deadline:
                raise
        await _settle(app, pilot)
        await pilot.pause(0.1)


def _worker_errors(app):
    return [f"{w.name}: {w.error!r}" for w in app.workers if w.error is not None]


def run_browser(sim, check):
    """Start XnatBrowser(server, user, password) headless, let its start-up workers finish, then call
    `check(app)` (async) inside the pilot. Returns plain data only (`result`, with "crash" holding the
    traceback text when the app or the check raised): no xnatpy object may outlive the test, because
    xnatpy keeps a process-wide list of listings that a later delete (in another module) walks."""
    _need()
    import atexit
    import gc
    import traceback

    result = {"errors": []}

    async def main():
        app = XnatBrowser(sim.url, USER, PASSWORD)
        atexit.unregister(app.disconnect)
        try:
            if app.session is None:
                result["crash"] = "xnat-browser could not log in"
                return
            async with app.run_test(size=(160, 50)) as pilot:
                await _settle(app, pilot)
                result["errors"] = _worker_errors(app)
                await check(app, pilot, result)
                # let what the check started finish before the app shuts down, or a worker still
                # running meets an app that is gone
                await _settle(app, pilot)
        finally:
            app.disconnect()

    try:
        asyncio.run(main())
    except BaseException:  # noqa: B036 - reported as text, see above
        result["crash"] = traceback.format_exc()[-4000:]
    gc.collect()
    return result


def _no_crash(result, sim):
    assert "crash" not in result and result["errors"] == [], (
        result.get("crash", "") + "\n".join(result["errors"]) + "\n" + _why(sim))


def test_startup_loads_the_archive_projects(populated_sim, browse_project):
    async def check(app, pilot, result):
        tree = await _tree(app, pilot, "#xnat_tree")
        result["labels"] = [str(node.label) for node in tree.root.children]
        result["root"] = str(tree.root.label)

    result = run_browser(populated_sim, check)
    _no_crash(result, populated_sim)
    # the tree lists the projects whose name is an ID the user has a role in (/xapi/access/projects)
    assert result["labels"] == [BROWSE], _why(populated_sim)
    assert result["root"] == "[ 1] Archive"


def test_startup_loads_an_empty_prearchive(populated_sim):
    async def check(app, pilot, result):
        # nothing waits in the prearchive: the tree stays empty
        tree = await _tree(app, pilot, "#xnat_tree_pre_archive", children=False)
        result["labels"] = [str(node.label) for node in tree.root.children]

    result = run_browser(populated_sim, check)
    _no_crash(result, populated_sim)
    assert result["labels"] == []


def test_expanding_project_subject_and_session_nodes(populated_sim, browse_project):
    """What the tree's `_process_node` loads for a project, a subject and a session node."""
    subject, session = "B01", "B01_MR1"

    async def check(app, pilot, result):
        tree = await _tree(app, pilot, "#xnat_tree")
        assert tree.root.children, "no project node at start-up\n" + _why(populated_sim)
        # as a user does: highlighting a node (cursor keys) runs update_output_pane -> _process_node
        project_node = tree.root.children[0]
        tree.move_cursor(project_node)
        await _settle(app, pilot)
        result["subjects"] = [str(n.label) for n in project_node.children]
        subject_node = next(n for n in project_node.children if str(n.label) == subject)
        # a collapsed node's children are not on screen: open it as the user does (Enter)
        project_node.expand()
        await _settle(app, pilot)
        tree.move_cursor(subject_node)
        await _settle(app, pilot)
        result["sessions"] = [str(n.label) for n in subject_node.children]
        session_node = subject_node.children[0]
        subject_node.expand()
        await _settle(app, pilot)
        tree.move_cursor(session_node)
        await _settle(app, pilot)
        result["scans"] = [str(n.label) for n in session_node.children]
        result["session_label"] = str(session_node.label)
        result["errors"] += _worker_errors(app)

    result = run_browser(populated_sim, check)
    _no_crash(result, populated_sim)
    assert result["subjects"] == [subject]
    assert result["sessions"] == [session]
    assert result["scans"] == ["T1w"]
    assert result["session_label"] == f"[  1 SCN] {session}"


def test_dicom_tab_reads_the_scan_header(populated_sim, truth):
    """The DICOM and Image tabs call ImageViewer.set_xnat_data(scan), which does (image_viewer.py L34-40):
    `self.dicom_data = data.read_dicom(read_pixel_data=True)` (xnatpy downloads the first file of the
    scan's DICOM resource, pydicom reads it) then `_create_image(self.dicom_data, LUT if
    self.dicom_data.Modality == 'US' else WINDOW_LEVEL)`. Called here without the app, so a start-up
    failure does not hide this one."""
    _need()
    import xnat
    from xnat_browser.image_viewer import ImageProcessing, _create_image

    session = sorted(truth.sessions())[0]

    def work():
        with xnat.connect(populated_sim.url, user=USER, password=PASSWORD, loglevel="ERROR") as connection:
            scan = connection.projects[PROJECT].experiments[session].scans["1"]
            dicom_data = scan.read_dicom(read_pixel_data=True)
            out = {"modality": getattr(dicom_data, "Modality", None), "pixels": "PixelData" in dicom_data}
            image = _create_image(dicom_data, ImageProcessing.WINDOW_LEVEL)
            out["image_size"] = None if image is None else image.size
            out["want_size"] = (dicom_data.Columns, dicom_data.Rows)
            return out

    result = _plain(work)
    assert "crash" not in result, result.get("crash", "") + "\n" + _why(populated_sim)
    assert result["modality"] == "MR" and result["pixels"]
    assert result["image_size"] == result["want_size"]


def _plain(work):
    """Run `work()` (which returns plain data); an exception becomes {"crash": traceback text}, so no
    xnatpy object survives in a stored traceback (see run_browser)."""
    import gc
    import traceback

    try:
        out = work()
    except Exception:
        out = {"crash": traceback.format_exc()[-4000:]}
    gc.collect()
    return out


def test_query_app_search_of_subjects_and_sessions(populated_sim, truth):
    """XnatQuery's _run_query: `<Root>Data.query()` (+ constraints) `.tabulate_pandas()`, xnatpy's
    search (POST /data/search with a search XML)."""
    _need()
    import xnat

    first = sorted(truth.sessions())[0]

    def work():
        with xnat.connect(populated_sim.url, user=USER, password=PASSWORD, loglevel="ERROR") as session:
            frame = session.classes.SubjectData.query().tabulate_pandas().dropna(axis="columns", how="all")
            # other tests of this module add project BRW: only the populated project's subjects
            frame = frame[frame.astype(str).isin([PROJECT]).any(axis="columns")]
            out = {"subject_cells": set(frame.astype(str).values.ravel()), "subject_rows": len(frame),
                   "subject_table": frame.to_string()}
            mr = session.classes.MrSessionData
            frame = mr.query().filter(mr.label == first).tabulate_pandas()
            out.update(session_rows=len(frame), session_cells=set(frame.astype(str).values.ravel()),
                       session_table=frame.to_string())
            return out

    result = _plain(work)
    assert "crash" not in result, result.get("crash", "") + "\n" + _why(populated_sim)
    assert set(truth.subjects()) <= result["subject_cells"], result["subject_table"]
    assert result["subject_rows"] == len(truth.subjects()), result["subject_table"]
    # xnatpy asks MrSessionData's default search fields (ID, project, subject_ID): the one session
    # whose label matched, by its accession ID
    assert result["session_rows"] == 1, result["session_table"]
    assert truth.sessions()[first]["ID"] in result["session_cells"], result["session_table"]
