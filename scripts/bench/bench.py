#!/usr/bin/env python3
"""xnatfs benchmarks: each scenario against its baselines in the same run, interleaved.

Every scenario runs its contenders in turn, run after run (after one warm-up round), and reports
medians and ratios; nothing here asserts a time. Scenarios so far:

  read  a large file: curl from the sim (the limit), xnatfs cold with Range off and on, xnatfs warm
        from its disk cache with the page cache dropped, the same bytes from local disk; the
        daemon's peak RSS while reading.
  walk  `find` over a project with 20 ms latency per request, against a pyxnat walk that lists
        every subject, session, scan and resource, as scripts do today: requests and time.

Writes docs/BENCHMARKS.md and docs/benchmarks.json. Stdlib only; the pyxnat baseline runs in the
venv that scripts/test.sh makes.
"""

import argparse
import base64
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Where scripts/bench.sh's `cargo build --release` put the binaries (cargo reads CARGO_TARGET_DIR,
# relative to the repository, where bench.sh runs it).
BIN = REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "release"
USER, PASSWORD = "bench", "bench-pw"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def drop_caches():
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as e:
        sys.exit(f"bench: cannot drop the page cache ({e}); run as root")


def timed(cmd, **kw):
    start = time.perf_counter()
    run(cmd, **kw)
    return time.perf_counter() - start


class Sim:
    """An xnat-sim process, stopped by PID."""

    def __init__(self, root, *flags):
        self.proc = subprocess.Popen(
            [str(BIN / "xnat-sim"), "serve", "--root", str(root), "--user", f"{USER}:{PASSWORD}", *flags],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"xnat-sim listening on (\S+)", line)
        if not m:
            self.stop()
            sys.exit(f"bench: xnat-sim did not start: {line!r}")
        self.url = m.group(1)

    def admin(self, method, path):
        req = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def stats(self):
        return self.admin("GET", "/__sim/stats")

    def reset(self):
        self.admin("POST", "/__sim/stats/reset")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Mount:
    """An xnatfs mount in the foreground mode, unmounted and stopped by PID."""

    def __init__(self, url, mnt, cache, log, *flags):
        env = dict(os.environ, XNAT_USER=USER, XNAT_PASS=PASSWORD)
        self.mnt = mnt
        self.proc = subprocess.Popen(
            [str(BIN / "xnatfs"), "mount", url, str(mnt), "-f", "--cache-dir", str(cache),
             "--log-file", str(log), "--log-level", "warn", *flags], env=env, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not os.path.ismount(mnt):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                sys.exit(f"bench: xnatfs did not mount; see {log}")
            time.sleep(0.02)

    def peak_rss_mib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        if os.path.ismount(self.mnt):
            subprocess.run(["umount", str(self.mnt)], check=False)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def populate(root, *flags):
    out = run([str(BIN / "xnat-sim"), "populate", "--root", str(root), "--user", f"{USER}:{PASSWORD}",
               "--member", USER, *flags], capture_output=True, text=True).stdout
    return out


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def scenario_read(work, size, runs):
    root = work / "read-archive"
    out = populate(root, "--subjects", "1", "--sessions", "1", "--scans", "1", "--files", "1",
                   "--file-size", "1024", "--big-file", str(size))
    uri = re.search(r"big file: (\S+)", out).group(1)
    off, on = Sim(root), Sim(root, "--range")
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    local = work / "local.bin"
    run(["curl", "-sf", "-H", f"Authorization: {auth}", "-o", str(local), off.url + uri])
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    rel = None
    times = {k: [] for k in ("curl", "cold_range_off", "cold_range_on", "warm_disk_cache", "local_disk")}
    rss = []
    try:
        for i in range(runs + 1):
            sample = {}
            sample["curl"] = timed(["curl", "-sf", "-H", f"Authorization: {auth}", "-o", "/dev/null", off.url + uri])
            for key, sim in (("cold_range_off", off), ("cold_range_on", on)):
                cache = work / f"cache-{key}"
                shutil.rmtree(cache, ignore_errors=True)
                m = Mount(sim.url, mnt, cache, work / "xnatfs.log")
                try:
                    if rel is None:
                        rel = next(p for p in mnt.rglob("big.bin")).relative_to(mnt)
                    drop_caches()
                    sample[key] = timed(["cat", str(mnt / rel)], stdout=subprocess.DEVNULL)
                    rss.append(m.peak_rss_mib())
                finally:
                    m.stop()
            m = Mount(off.url, mnt, work / "cache-cold_range_off", work / "xnatfs.log")
            try:
                (mnt / rel).stat()
                drop_caches()
                sample["warm_disk_cache"] = timed(["cat", str(mnt / rel)], stdout=subprocess.DEVNULL)
                rss.append(m.peak_rss_mib())
            finally:
                m.stop()
            drop_caches()
            sample["local_disk"] = timed(["cat", str(local)], stdout=subprocess.DEVNULL)
            if i > 0:  # the first round is the warm-up
                for k, v in sample.items():
                    times[k].append(v)
            print("  read round", i, {k: round(v, 3) for k, v in sample.items()}, flush=True)
        stats_off = off.stats()
    finally:
        off.stop()
        on.stop()
    mib = size / (1 << 20)
    med = {k: median(v) for k, v in times.items()}
    return {
        "size_bytes": size,
        "runs": runs,
        "seconds": med,
        "mib_per_s": {k: mib / v for k, v in med.items()},
        "peak_rss_mib": max(rss) if rss else None,
        "downloads_of_the_file_range_off": stats_off.get("downloads", {}).get(uri),
    }


PYXNAT_WALK = """
import sys, pyxnat
url, user, password, project = sys.argv[1:5]
central = pyxnat.Interface(server=url, user=user, password=password)
files = 0
for subject in central.select.project(project).subjects():
    for experiment in subject.experiments():
        for scan in experiment.scans():
            for resource in scan.resources():
                files += len(resource.files().get())
print(files)
"""


def scenario_walk(work, subjects, runs, venv_python):
    root = work / "walk-archive"
    populate(root, "--subjects", str(subjects), "--sessions", "2", "--scans", "6",
             "--resources", "NIFTI,DICOM", "--files", "3", "--file-size", "2048")
    sim = Sim(root, "--latency-ms", "20")
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    script = work / "pyxnat_walk.py"
    script.write_text(PYXNAT_WALK)
    res = {"xnatfs": {"seconds": [], "requests": []}, "pyxnat": {"seconds": [], "requests": []}}
    try:
        for i in range(runs + 1):
            cache = work / "cache-walk"
            shutil.rmtree(cache, ignore_errors=True)
            m = Mount(sim.url, mnt, cache, work / "xnatfs.log")
            try:
                sim.reset()
                t = timed(["find", str(mnt / "SIM01")], stdout=subprocess.DEVNULL)
                n = sim.stats()["requests"]
            finally:
                m.stop()
            sim.reset()
            t2 = timed([venv_python, str(script), sim.url, USER, PASSWORD, "SIM01"], stdout=subprocess.DEVNULL)
            n2 = sim.stats()["requests"]
            if i > 0:
                res["xnatfs"]["seconds"].append(t)
                res["xnatfs"]["requests"].append(n)
                res["pyxnat"]["seconds"].append(t2)
                res["pyxnat"]["requests"].append(n2)
            print(f"  walk round {i}: xnatfs {t:.2f} s {n} requests; pyxnat {t2:.2f} s {n2} requests", flush=True)
    finally:
        sim.stop()
    return {
        "shape": f"{subjects} subjects x 2 sessions x 6 scans x 2 resources x 3 files, 20 ms latency",
        "runs": runs,
        "seconds": {k: median(v["seconds"]) for k, v in res.items()},
        "requests": {k: median(v["requests"]) for k, v in res.items()},
    }


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem = next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    return f"{os.cpu_count()} cores ({cpu}), {int(mem) // (1 << 20)} GiB RAM, Linux {platform.release()}"


def report(results, out_md, out_json, command):
    r, w = results["read"], results["walk"]
    s, rate = r["seconds"], r["mib_per_s"]
    size_mib = r["size_bytes"] / (1 << 20)
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {results['machine']}. Run: `{command}` on {results['date']}.",
        "Medians of the runs after one warm-up round; contenders interleaved run by run.",
        "",
        "| scenario | xnatfs | baseline | ratio | target |",
        "|---|---|---|---|---|",
        f"| B1 cold read {size_mib:.0f} MiB, Range off | {s['cold_range_off']:.2f} s ({rate['cold_range_off']:.0f} MiB/s) | curl {s['curl']:.2f} s ({rate['curl']:.0f} MiB/s) | {s['curl'] / s['cold_range_off']:.2f}× curl | ≥ 0.6× curl |",
        f"| B1 cold read {size_mib:.0f} MiB, Range on | {s['cold_range_on']:.2f} s ({rate['cold_range_on']:.0f} MiB/s) | curl {s['curl']:.2f} s | {s['curl'] / s['cold_range_on']:.2f}× curl | ≥ 0.6× curl |",
        f"| B2 warm re-read (disk cache, page cache dropped) | {s['warm_disk_cache']:.2f} s ({rate['warm_disk_cache']:.0f} MiB/s) | local disk {s['local_disk']:.2f} s ({rate['local_disk']:.0f} MiB/s) | {s['local_disk'] / s['warm_disk_cache']:.2f}× local | ≥ 0.8× local disk |",
        f"| B4 project walk ({w['shape']}) | {w['seconds']['xnatfs']:.2f} s, {w['requests']['xnatfs']:.0f} requests | pyxnat walk {w['seconds']['pyxnat']:.2f} s, {w['requests']['pyxnat']:.0f} requests | {w['requests']['pyxnat'] / w['requests']['xnatfs']:.1f}× fewer requests, {w['seconds']['pyxnat'] / w['seconds']['xnatfs']:.1f}× less time | ≥ 10× fewer requests, ≥ 5× less time |",
        f"| B6 daemon peak RSS while reading | {r['peak_rss_mib']:.0f} MiB | — | — | ≤ 150 MiB |",
        "",
        "Not yet measured here: B0 (FUSE ceiling), B3 (DICOM series), B5 (upload), B7 (sim vs nginx), the",
        "xnatpy and rclone baselines; they come with the benchmark issue.",
        "",
    ]
    out_md.write_text("\n".join(lines))
    out_json.write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 runs: a few minutes")
    ap.add_argument("--venv-python", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--out", default=str(REPO / "docs"))
    ap.add_argument("--size", type=int, help="bytes of the big file (default 1 GiB, quick 256 MiB)")
    ap.add_argument("--runs", type=int, help="measured runs after the warm-up (default 5, quick 2)")
    ap.add_argument("--walk-subjects", type=int, help="subjects in the walk project (default 100, quick 10)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (it mounts FUSE and drops the page cache)")
    size = args.size or ((256 << 20) if args.quick else (1 << 30))
    runs = args.runs or (2 if args.quick else 5)
    subjects = args.walk_subjects or (10 if args.quick else 100)
    work = Path(tempfile.mkdtemp(prefix="xnatfs-bench-"))
    try:
        print(f"bench: working in {work}", flush=True)
        results = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "quick": args.quick}
        results["read"] = scenario_read(work, size, runs)
        results["walk"] = scenario_walk(work, subjects, runs, args.venv_python)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        command = " ".join(["scripts/bench.sh"] + [a for a in sys.argv[1:] if not a.startswith("--venv-python") and a != args.venv_python])
        report(results, out / "BENCHMARKS.md", out / "benchmarks.json", command)
    finally:
        mnt = work / "mnt"
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
