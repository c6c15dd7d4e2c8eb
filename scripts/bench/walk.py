"""B4: `find` over a project with 20 ms latency per request, against a pyxnat walk of the same
tree (every subject, session, scan, assessor and resource, one listing per object, as scripts do
today): requests and time."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import AUTH, BIN, PASSWORD, USER, Mount, Sim, drop_caches, median, populate, run, timed, timed_cpu


# The tree the mount shows, walked as users write it with pyxnat: one listing per object, the
# subjects' and sessions' own resources and the sessions' assessors included, as `find` lists
# them (`.resources`, `.assessors`).
PYXNAT_WALK = """
import sys, pyxnat
url, user, password, project = sys.argv[1:5]
central = pyxnat.Interface(server=url, user=user, password=password)
files = 0


def resource_files(resources):
    global files
    for resource in resources:
        files += len(resource.files().get())


for subject in central.select.project(project).subjects():
    resource_files(subject.resources())
    for experiment in subject.experiments():
        resource_files(experiment.resources())
        for scan in experiment.scans():
            resource_files(scan.resources())
        for assessor in experiment.assessors():
            resource_files(assessor.out_resources())
print(files)
"""


def scenario(work, opts):
    subjects, runs, venv_python = opts.walk_subjects, opts.runs, opts.venv_python
    root = work / "walk-archive"
    populate(root, "--subjects", str(subjects), "--sessions", "2", "--scans", "6",
             "--resources", "NIFTI,DICOM", "--files", "3", "--file-size", "2048")
    sim = Sim(root, "--latency-ms", "20")
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    script = work / "pyxnat_walk.py"
    script.write_text(PYXNAT_WALK)
    # "cpu": (reader, daemon) CPU seconds per run: `find` and the mount's daemon; the pyxnat script.
    res = {k: {"seconds": [], "requests": [], "cpu": []} for k in ("xnatfs", "pyxnat")}
    try:
        for i in range(runs + 1):
            cache = work / "cache-walk"
            shutil.rmtree(cache, ignore_errors=True)
            m = Mount(sim.url, mnt, cache, work / "xnatfs.log")
            try:
                sim.reset()
                t, reader, daemon = timed_cpu(["find", str(mnt / "SIM01")], m.proc.pid, stdout=subprocess.DEVNULL)
                n = sim.stats()["requests"]
            finally:
                m.stop()
            sim.reset()
            t2, walker, _ = timed_cpu([venv_python, str(script), sim.url, USER, PASSWORD, "SIM01"],
                                      stdout=subprocess.DEVNULL)
            n2 = sim.stats()["requests"]
            if i > 0:
                res["xnatfs"]["seconds"].append(t)
                res["xnatfs"]["requests"].append(n)
                res["pyxnat"]["seconds"].append(t2)
                res["pyxnat"]["requests"].append(n2)
                res["xnatfs"]["cpu"].append((reader, daemon))
                res["pyxnat"]["cpu"].append((walker, 0.0))
            print(f"  walk round {i}: xnatfs {t:.2f} s {n} requests, CPU s find {reader:.2f} daemon {daemon:.2f}; "
                  f"pyxnat {t2:.2f} s {n2} requests, CPU s {walker:.2f}", flush=True)
    finally:
        sim.stop()
    return {
        "shape": f"{subjects} subjects x 2 sessions x 6 scans x 2 resources x 3 files, 20 ms latency",
        "runs": runs,
        "seconds": {k: median(v["seconds"]) for k, v in res.items()},
        "requests": {k: median(v["requests"]) for k, v in res.items()},
        "cpu_seconds_split": {k: {"reader": median([a for a, _ in v["cpu"]]), "daemon": median([b for _, b in v["cpu"]])}
                              for k, v in res.items() if v["cpu"]},
    }


def cpu_rows(w):
    """The walk's CPU seconds (no bytes to divide by), reader and daemon apart; an older result
    has one combined figure."""
    if c := w.get("cpu_seconds_split"):
        x = c["xnatfs"]
        return [
            f"| B4 CPU seconds of the walk (`find`, the mount's daemon apart; the pyxnat script, its start included) | {x['reader']:.2f} `find` + {x['daemon']:.2f} daemon | pyxnat {c['pyxnat']['reader']:.2f} | — | — |",
        ]
    if c := w.get("cpu_seconds"):
        return [
            f"| B4 CPU seconds of the walk (`find` and the mount's daemon; the pyxnat script, its start included) | {c['xnatfs']:.2f} | pyxnat {c['pyxnat']:.2f} | — | — |",
        ]
    return []


def rows(w):
    return cpu_rows(w) + [
        f"| B4 project walk ({w['shape']}) | {w['seconds']['xnatfs']:.2f} s, {w['requests']['xnatfs']:.0f} requests | pyxnat walk of the same tree {w['seconds']['pyxnat']:.2f} s, {w['requests']['pyxnat']:.0f} requests | {w['requests']['pyxnat'] / w['requests']['xnatfs']:.1f}× fewer requests, {w['seconds']['pyxnat'] / w['seconds']['xnatfs']:.1f}× less time | ≥ 10× fewer requests, ≥ 5× less time |",
    ]
