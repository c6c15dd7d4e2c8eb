"""B4: `find` over a project with 20 ms latency per request, against a pyxnat walk of the same
tree (every subject, session, scan, assessor and resource, one listing per object, as scripts do
today): requests and time.

B4 at scale: a project of the same shape with 1,000 subjects (quick: 100; `--walk-scale-subjects`)
through xnatfs only (a pyxnat walk of it would take about half an hour): the first `ls` of the
project folder on a new mount, then a `find` of the first 100 subjects' folders (the whole project
when it has no more), with the sim's requests per session walked. A `find` of all 1,000 subjects
took about 3 minutes on a 2-core machine, too long for the bench's budget, so the sample."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
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
    populate_walk(root, subjects)
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
        "scale": at_scale(work, opts),
        "shape": f"{subjects} subjects x 2 sessions x 6 scans x 2 resources x 3 files, 20 ms latency",
        "runs": runs,
        "seconds": {k: median(v["seconds"]) for k, v in res.items()},
        "requests": {k: median(v["requests"]) for k, v in res.items()},
        "cpu_seconds_split": {k: {"reader": median([a for a, _ in v["cpu"]]), "daemon": median([b for _, b in v["cpu"]])}
                              for k, v in res.items() if v["cpu"]},
    }


SCALE_SAMPLE = 100  # subjects whose folders the scale walk's `find` goes through
SESSIONS = 2  # per subject, in both walks


def populate_walk(root, subjects):
    populate(root, "--subjects", str(subjects), "--sessions", str(SESSIONS), "--scans", "6",
             "--resources", "NIFTI,DICOM", "--files", "3", "--file-size", "2048")


def at_scale(work, opts):
    """The big project through xnatfs only: per run, a new mount, the first `ls` of the project
    folder, then the `find` of the sample; time, requests and CPU of each. No warm-up round
    (each run starts from a new mount); 2 runs (quick: 1)."""
    subjects = opts.walk_scale_subjects
    sample = min(SCALE_SAMPLE, subjects)
    runs = 1 if opts.quick else min(opts.runs, 2)
    root = work / "walk-scale-archive"
    populate_walk(root, subjects)
    sim = Sim(root, "--latency-ms", "20")
    mnt = work / "mnt"
    res = {k: {"seconds": [], "requests": [], "cpu": []} for k in ("ls", "find")}
    try:
        for i in range(runs):
            cache = work / "cache-walk-scale"
            shutil.rmtree(cache, ignore_errors=True)
            m = Mount(sim.url, mnt, cache, work / "xnatfs.log")
            try:
                project = mnt / "SIM01"
                sim.reset()
                took = {"ls": timed_cpu(["ls", str(project)], m.proc.pid, stdout=subprocess.DEVNULL)}
                listed = sim.stats()["requests"]
                folders = sorted(p for p in project.iterdir() if p.name.startswith("SIM01_S"))[:sample]
                if len(folders) != sample:
                    sys.exit(f"bench: walk: the mount lists {len(folders)} subjects, not {sample} or more")
                sim.reset()
                took["find"] = timed_cpu(["find", *map(str, folders)], m.proc.pid, stdout=subprocess.DEVNULL)
                found = sim.stats()["requests"]
            finally:
                m.stop()
                shutil.rmtree(cache, ignore_errors=True)
            for key, n in (("ls", listed), ("find", found)):
                seconds, reader, daemon = took[key]
                res[key]["seconds"].append(seconds)
                res[key]["requests"].append(n)
                res[key]["cpu"].append((reader, daemon))
            print(f"  walk at scale run {i}: first ls {took['ls'][0]:.2f} s {listed} requests; find of "
                  f"{sample} subjects {took['find'][0]:.2f} s {found} requests "
                  f"({found / (sample * SESSIONS):.1f} a session)", flush=True)
    finally:
        sim.stop()
        shutil.rmtree(root, ignore_errors=True)
    return {
        "subjects": subjects,
        "sample_subjects": sample,
        "sessions_walked": sample * SESSIONS,
        "runs": runs,
        **{key: {"seconds": median(v["seconds"]), "requests": median(v["requests"]),
                 "cpu_seconds": {"reader": median([a for a, _ in v["cpu"]]),
                                 "daemon": median([b for _, b in v["cpu"]])}}
           for key, v in res.items()},
    }


def scale_rows(w):
    s = w.get("scale")
    if not s:
        return []
    n = s["subjects"]
    ls, find = s["ls"], s["find"]
    per_session = find["requests"] / s["sessions_walked"]
    walked = (f"the whole {n}-subject project" if s["sample_subjects"] >= n
              else f"the first {s['sample_subjects']} subjects' folders of the {n}-subject project (a sample: the whole `find` takes minutes)")
    subjects_b4 = re.match(r"(\d+) subjects", w.get("shape", ""))
    b4 = (w["requests"]["xnatfs"] / (int(subjects_b4.group(1)) * SESSIONS)) if subjects_b4 else None

    def cpu(v):
        return f"CPU s `{v['what']}` {v['reader']:.2f} + daemon {v['daemon']:.2f}"
    return [
        f"| B4 at scale: first `ls` of a project of {n} subjects, new mount, 20 ms latency (xnatfs only) | {ls['seconds']:.2f} s, {ls['requests']:.0f} requests ({cpu({**ls['cpu_seconds'], 'what': 'ls'})}) | — (pyxnat not run at this scale; B4's row gives its rate) | — | — |",
        f"| B4 at scale: `find` of {walked}, after that `ls` | {find['seconds']:.2f} s, {find['requests']:.0f} requests, {per_session:.1f} requests a session ({cpu({**find['cpu_seconds'], 'what': 'find'})}) | B4's walk: {b4:.1f} requests a session | {per_session / b4:.2f}× B4's requests a session | — |"
        if b4 else
        f"| B4 at scale: `find` of {walked}, after that `ls` | {find['seconds']:.2f} s, {find['requests']:.0f} requests, {per_session:.1f} requests a session | — | — | — |",
    ]


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
    return [
        f"| B4 project walk ({w['shape']}) | {w['seconds']['xnatfs']:.2f} s, {w['requests']['xnatfs']:.0f} requests | pyxnat walk of the same tree {w['seconds']['pyxnat']:.2f} s, {w['requests']['pyxnat']:.0f} requests | {w['requests']['pyxnat'] / w['requests']['xnatfs']:.1f}× fewer requests, {w['seconds']['pyxnat'] / w['seconds']['xnatfs']:.1f}× less time | ≥ 10× fewer requests, ≥ 5× less time |",
    ] + cpu_rows(w) + scale_rows(w)


def notes(w):
    s = w.get("scale")
    if not s:
        return []
    return [textwrap.fill(
        f"B4 at scale: a project of {s['subjects']} subjects of B4's shape, through xnatfs only: pyxnat "
        "is not run at this size (its walk of 100 subjects takes minutes; of 1,000 about half an "
        f"hour). {s['runs']} run(s), each on a new mount with an empty cache and no warm-up: the "
        "first `ls` of the project folder (time, requests), then one `find` over "
        + ("the whole project" if s["sample_subjects"] >= s["subjects"] else
           f"the folders of the first {s['sample_subjects']} subjects (a sample: a `find` of all 1,000 "
           "took about 3 minutes on the 2-core dev machine, beyond the bench's budget)")
        + f"; requests a session are the sim's requests during the `find` over the {s['sessions_walked']} "
        "sessions walked, set beside B4's own figure. CPU seconds: the `ls` or `find` and the "
        "mount's daemon, apart.", 100)]
