"""B3: a DICOM series (200 files x 512 KiB, 20 ms latency per request) read file by file in name
order, cold, as `dcm2niix` does, against a `curl` loop over the same files, xnatpy's
`download_dir` of the resource (one zip request) and a pyxnat loop as users write it.

Each contender's clock covers the data only: the mount (and the listing of the folder), the
login and the navigation to the resource come before it. The mount is read by this process,
one file at a time: open, read it whole in 1 MiB reads, close. Requests are the sim's counters
over each contender's whole run, setup included. CPU seconds per GiB of the series: the reading
process (this one for the mount, `curl`s, the Python clients) and the mount's daemon, apart."""

import resource
import shutil
import subprocess
import textwrap
import time

from common import AUTH, PASSWORD, USER, Mount, Sim, children_cpu, cpu_seconds, drop_caches, median, populate

PROJECT, SUBJECT, SESSION, SCAN, RESOURCE = "SIM01", "SIM01_S001", "SIM01_S001_MR1", "1", "DICOM"

XNATPY_ZIP = """
import sys, time, xnat
url, user, password, dest = sys.argv[1:5]
with xnat.connect(url, user=user, password=password, loglevel="ERROR") as session:
    experiment = session.projects["%s"].subjects["%s"].experiments["%s"]
    resource = experiment.scans["%s"].resources["%s"]
    start = time.perf_counter()
    resource.download_dir(dest, verbose=False)
    print(time.perf_counter() - start)
""" % (PROJECT, SUBJECT, SESSION, SCAN, RESOURCE)

PYXNAT_LOOP = """
import os, sys, time, pyxnat
url, user, password, dest = sys.argv[1:5]
central = pyxnat.Interface(server=url, user=user, password=password)
resource = (central.select.project("%s").subject("%s").experiment("%s")
            .scan("%s").resource("%s"))
start = time.perf_counter()
for f in resource.files():
    f.get(os.path.join(dest, f.label()))
print(time.perf_counter() - start)
""" % (PROJECT, SUBJECT, SESSION, SCAN, RESOURCE)


def read_in_order(folder):
    """Reads every file of `folder` whole, in name order; seconds and bytes."""
    names = sorted(p.name for p in folder.iterdir())
    total = 0
    start = time.perf_counter()
    for name in names:
        with open(folder / name, "rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
    return time.perf_counter() - start, total


def python_timed(venv_python, script, url, dest):
    """Runs a baseline script; the seconds it timed itself."""
    out = subprocess.run([venv_python, str(script), url, USER, PASSWORD, str(dest)],
                         check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def counted(sim):
    s = sim.stats()
    return {"requests": s["requests"], "downloads": s.get("by_kind", {}).get("download", 0)}


def scenario(work, opts):
    files, runs = (50 if opts.quick else 200), opts.runs
    size = 512 << 10
    root = work / "series-archive"
    populate(root, "--subjects", "1", "--sessions", "1", "--scans", "1", "--resources", RESOURCE,
             "--files", str(files), "--file-size", str(size))
    sim = Sim(root, "--latency-ms", "20")
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    xnatpy, pyxnat = work / "xnatpy_zip.py", work / "pyxnat_loop.py"
    xnatpy.write_text(XNATPY_ZIP)
    pyxnat.write_text(PYXNAT_LOOP)
    contenders = ("xnatfs", "curl_loop", "xnatpy_zip", "pyxnat_loop")
    # "cpu": (reader, daemon) CPU seconds per run; the baselines have no daemon.
    res = {k: {"seconds": [], "requests": [], "downloads": [], "cpu": []} for k in contenders}

    def own_cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    rss = []
    try:
        listing = sim.api("GET", f"/data/experiments/XNAT_E00001/scans/{SCAN}/resources/{RESOURCE}/files?format=json")
        uris = sorted(r["URI"] for r in listing["ResultSet"]["Result"])
        assert len(uris) == files, f"expected {files} files, the sim lists {len(uris)}"
        for i in range(runs + 1):
            sample = {}
            # xnatfs: a fresh mount and cache; the folder listed before the clock starts.
            cache = work / "cache-series"
            shutil.rmtree(cache, ignore_errors=True)
            sim.reset()
            m = Mount(sim.url, mnt, cache, work / "xnatfs.log")
            try:
                folder = next(mnt.glob(f"{PROJECT}/{SUBJECT}/{SESSION}/{SCAN}-*/{RESOURCE}"))
                drop_caches()
                r0, d0 = own_cpu(), cpu_seconds(m.proc.pid)
                t, got = read_in_order(folder)
                used = {"xnatfs": (own_cpu() - r0, cpu_seconds(m.proc.pid) - d0)}
                assert got == files * size, f"xnatfs read {got} bytes, expected {files * size}"
                rss.append(m.peak_rss_mib())
            finally:
                m.stop()
            sample["xnatfs"] = (t, counted(sim))
            # A curl per file, one after the other.
            sim.reset()
            c0 = children_cpu()
            start = time.perf_counter()
            for uri in uris:
                subprocess.run(["curl", "-sf", "-H", f"Authorization: {AUTH}", "-o", "/dev/null", sim.url + uri],
                               check=True)
            sample["curl_loop"] = (time.perf_counter() - start, counted(sim))
            used["curl_loop"] = (children_cpu() - c0, 0.0)
            for key, script in (("xnatpy_zip", xnatpy), ("pyxnat_loop", pyxnat)):
                dest = work / f"dest-{key}"
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir()
                drop_caches()
                sim.reset()
                c0 = children_cpu()
                sample[key] = (python_timed(opts.venv_python, script, sim.url, dest), counted(sim))
                used[key] = (children_cpu() - c0, 0.0)
                shutil.rmtree(dest, ignore_errors=True)
            if i > 0:  # the first round is the warm-up
                for k, (t, c) in sample.items():
                    res[k]["cpu"].append(used[k])
                    res[k]["seconds"].append(t)
                    res[k]["requests"].append(c["requests"])
                    res[k]["downloads"].append(c["downloads"])
            print(f"  series round {i}: " + "; ".join(
                f"{k} {t:.2f} s {c['requests']} requests, CPU s (reader, daemon) {used[k][0]:.2f}, {used[k][1]:.2f}"
                for k, (t, c) in sample.items()), flush=True)
    finally:
        sim.stop()
    gib = files * size / (1 << 30)
    return {
        "shape": f"{files} files x {size >> 10} KiB, 20 ms latency",
        "files": files,
        "runs": runs,
        "seconds": {k: median(v["seconds"]) for k, v in res.items()},
        "requests": {k: median(v["requests"]) for k, v in res.items()},
        "downloads": {k: median(v["downloads"]) for k, v in res.items()},
        "cpu_seconds_per_gib": {k: {"reader": median([a for a, _ in v["cpu"]]) / gib,
                                    "daemon": median([b for _, b in v["cpu"]]) / gib}
                                for k, v in res.items() if v["cpu"]},
        "peak_rss_mib": max(rss) if rss else None,
    }


def rows(r):
    s, n = r["seconds"], r["requests"]
    x = s["xnatfs"]
    return [
        f"| B3 DICOM series ({r['shape']}), read in name order, cold | {x:.2f} s, {n['xnatfs']:.0f} requests | xnatpy `download_dir` (one zip) {s['xnatpy_zip']:.2f} s, {n['xnatpy_zip']:.0f} requests | {x / s['xnatpy_zip']:.2f}× the zip's time | ≤ 1.5× the zip |",
        f"| B3 the same against per-file loops | {x:.2f} s | `curl` loop {s['curl_loop']:.2f} s, {n['curl_loop']:.0f} requests; pyxnat loop {s['pyxnat_loop']:.2f} s, {n['pyxnat_loop']:.0f} requests | {s['curl_loop'] / x:.1f}× faster than curl, {s['pyxnat_loop'] / x:.1f}× faster than pyxnat | ≥ 10× faster |",
    ] + cpu_rows(r)


def cpu_rows(r):
    """CPU per GiB, reader and daemon apart; an older result has one combined figure per run."""
    if c := r.get("cpu_seconds_per_gib"):
        def each(k):
            v = c.get(k)
            return "—" if not v else f"{v['reader']:.2f}"
        x = c.get("xnatfs")
        return [
            f"| B3 CPU seconds per GiB of the series (reader: the reading process, each client with its start; the mount's daemon apart) | {x['reader']:.2f} reader + {x['daemon']:.2f} daemon | xnatpy zip {each('xnatpy_zip')}; `curl` loop {each('curl_loop')}; pyxnat loop {each('pyxnat_loop')} | — | — |",
        ]
    if c := r.get("cpu_seconds"):
        return [
            f"| B3 CPU seconds of the series (the reading process and the mount's daemon; each client, its start included) | {c['xnatfs']:.2f} | xnatpy zip {c['xnatpy_zip']:.2f}; `curl` loop {c['curl_loop']:.2f}; pyxnat loop {c['pyxnat_loop']:.2f} | — | — |",
        ]
    return []


def notes(r):
    return [textwrap.fill(
        "B3: each contender's clock covers the data only: the mount and the listing of the series "
        "folder, or the login and the navigation to the resource, come before it. The mount is read "
        "file by file in name order (open, 1 MiB reads to the end, close) by one process, the page "
        "cache dropped first; a new mount with an empty cache each run. Requests are the sim's "
        "counters over each contender's whole run, setup included; xnatpy's zip is one request "
        "(`…/resources/DICOM/files?format=zip`), saved and unpacked. CPU seconds per GiB of the "
        "series: user plus system time over each contender's clock of the reading process (this "
        "Python process for the mount, from its rusage; the `curl`s and the Python clients, from "
        "their rusage, their start included) and of the mount's daemon (/proc/PID/stat), apart.", 100),
    ]


RSS_WHILE = "reading a series"
