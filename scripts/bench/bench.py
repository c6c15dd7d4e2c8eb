#!/usr/bin/env python3
"""xnatfs benchmarks: each scenario against its baselines in the same run, interleaved.

Every scenario runs its contenders in turn, run after run (after one warm-up round), and reports
medians and ratios; nothing here asserts a time. Scenarios so far:

  read  a large file: curl from the sim (the limit), xnatfs cold with Range off and on, xnatfs warm
        from its disk cache with the page cache dropped, the same bytes from local disk; the
        daemon's peak RSS while reading.
  walk  `find` over a project with 20 ms latency per request, against a pyxnat walk that lists
        every subject, session, scan and resource, as scripts do today: requests and time.
  upload  `cp` of a large local file (the read's size) into a scan resource folder of the mount,
        until cp returns (its close waits until the server has the file), against `curl -T` of
        the same file to the same resource and a local `cp` (with and without an fsync); the
        same upload written and closed by hand, to split the time between the writes into the
        stage and the close; the daemon's peak RSS. Each upload is checked in the server's
        listing (size and MD5).

Writes docs/BENCHMARKS.md and docs/benchmarks.json. `--only upload` (or any comma-separated list)
runs some scenarios and keeps the others' results from the JSON already there, each scenario
with the command and date that made it. Stdlib only; the pyxnat baseline runs in the venv that
scripts/test.sh makes.
"""

import argparse
import base64
import glob
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Where scripts/bench.sh's `cargo build --release` put the binaries (cargo reads CARGO_TARGET_DIR,
# relative to the repository, where bench.sh runs it).
BIN = REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "release"
USER, PASSWORD = "bench", "bench-pw"
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


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

    def api(self, method, path):
        """A REST call as the bench user; the JSON answer, if any."""
        req = urllib.request.Request(self.url + path, method=method, headers={"Authorization": AUTH})
        with urllib.request.urlopen(req, timeout=60) as r:
            body = r.read()
        return json.loads(body) if body.strip() else None

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
    auth = AUTH
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


UPLOAD_LABEL = "UPLOAD"


def cp_block(src, dst_folder):
    """cp's buffer size (coreutils 9: 128 KiB, or the larger st_blksize of source and target; the
    mount says 1 MiB), so write_then_close writes as cp does and its two parts add up to a cp."""
    return max(128 << 10, os.stat(src).st_blksize, os.stat(dst_folder).st_blksize)


def make_source(path, size):
    """`size` incompressible bytes at `path`; returns their MD5 (hex)."""
    digest = hashlib.md5()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(8 << 20, left))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def cpu_seconds(pid):
    """User + system CPU time a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def settle(src):
    """Before each upload contender: the previous one's dirty pages written out, the page cache
    dropped, and the source read back in, so every contender starts alike, with the source in
    memory and nothing of the others left to write back."""
    drop_caches()
    run(["cat", str(src)], stdout=subprocess.DEVNULL)


def write_then_close(src, dst, timeout):
    """cp's loop by hand, timing the writes (into the stage on the spool disk) apart from the
    close (the stage's fsync, the PUT, the check of the server's listing). Returns both."""
    buf = bytearray(cp_block(src, dst.parent))
    view = memoryview(buf)
    deadline = time.perf_counter() + timeout
    fi = os.open(src, os.O_RDONLY)
    try:
        start = time.perf_counter()
        fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            while n := os.readv(fi, [buf]):
                done = 0
                while done < n:
                    done += os.write(fo, view[done:n])
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"writing {dst} took more than {timeout:.0f} s")
        except BaseException:
            os.close(fo)
            raise
        written = time.perf_counter()
        os.close(fo)  # OSError here if the upload failed
        closed = time.perf_counter()
    finally:
        os.close(fi)
    return written - start, closed - written


def scenario_upload(work, size, runs):
    root = work / "upload-archive"
    populate(root, "--subjects", "1", "--sessions", "1", "--scans", "1", "--resources", UPLOAD_LABEL,
             "--files", "1", "--file-size", "1024")
    sim = Sim(root)
    src = work / "upload-source.bin"
    spool = work / "spool"  # beside the source: the same disk
    copies = work / "local-copies"
    copies.mkdir(exist_ok=True)
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    timeout = 120 + size / (2 << 20)  # far beyond any sane rate: a hang fails the run
    keys = ("curl", "xnatfs_cp", "xnatfs_write", "xnatfs_close", "xnatfs_write_close", "local_cp",
            "local_cp_fsync")
    times = {k: [] for k in keys}
    # CPU seconds per upload: the client (curl, cp), the mount daemon, the sim. On a small machine
    # they compete for the same cores, so these tell where the time goes.
    cpu_keys = ("curl", "sim_for_curl", "cp_into_mount", "xnatfs_daemon", "sim_for_xnatfs")
    cpu = {k: [] for k in cpu_keys}
    rss, puts = [], []
    try:
        digest = make_source(src, size)
        spool.mkdir()
        if os.stat(spool).st_dev != os.stat(src).st_dev:
            sys.exit("bench: upload: the spool and the source are not on the same disk")
        eid = sim.api("GET", "/data/projects/SIM01/experiments?format=json")["ResultSet"]["Result"][0]["ID"]
        files = f"/data/experiments/{eid}/scans/1/resources/{UPLOAD_LABEL}/files"

        def check(name):
            """The server lists `name` with the source's size and MD5, or the bench stops."""
            rows = sim.api("GET", files + "?format=json")["ResultSet"]["Result"]
            row = next((r for r in rows if r.get("Name") == name), None)
            if row is None or int(row.get("Size", -1)) != size or row.get("digest") != digest:
                sys.exit(f"bench: upload: the server's listing of {files} shows {row} for {name}, "
                         f"not {size} bytes with MD5 {digest}")

        def count_puts(what):
            st = sim.stats()
            n = st["by_kind"].get("upload", 0)
            if n != 1:
                print(f"  upload: {what} took {n} PUT requests ({st['bytes_received']} bytes received)",
                      flush=True)
            return n

        for i in range(runs + 1):
            sample, names = {}, []
            # curl -T: one streamed PUT of the file.
            name = f"round{i}-curl.bin"
            settle(src)
            sim.reset()
            c0, s0 = children_cpu(), cpu_seconds(sim.proc.pid)
            start = time.perf_counter()
            out = run(["curl", "-sSf", "-u", f"{USER}:{PASSWORD}", "-T", str(src),
                       "-H", "Content-Type: application/octet-stream", f"{sim.url}{files}/{name}?inbody=true"],
                      capture_output=True, text=True, timeout=timeout).stdout
            sample["curl"] = time.perf_counter() - start
            used = {"curl": children_cpu() - c0, "sim_for_curl": cpu_seconds(sim.proc.pid) - s0}
            names.append(name)
            if "duplicates" in out:
                sys.exit(f"bench: upload: the server did not take {name}: {out}")
            check(name)
            # xnatfs: cp into the resource folder, then the same bytes written by hand and closed.
            cache = work / "cache-upload"
            shutil.rmtree(cache, ignore_errors=True)
            m = Mount(sim.url, mnt, cache, work / "xnatfs.log", "--spool-dir", str(spool))
            try:
                found = [Path(p) for p in glob.glob(str(mnt / "SIM01" / "*" / "*" / "*" / UPLOAD_LABEL))]
                if len(found) != 1:
                    sys.exit(f"bench: upload: expected one {UPLOAD_LABEL} folder on the mount, found {found}")
                folder = found[0]
                os.listdir(folder)  # the folder's listing is loaded before the clock starts
                name = f"round{i}-xnatfs-cp.bin"
                settle(src)
                sim.reset()
                c0, d0, s0 = children_cpu(), cpu_seconds(m.proc.pid), cpu_seconds(sim.proc.pid)
                sample["xnatfs_cp"] = timed(["cp", str(src), str(folder / name)], timeout=timeout)
                used.update(cp_into_mount=children_cpu() - c0, xnatfs_daemon=cpu_seconds(m.proc.pid) - d0,
                            sim_for_xnatfs=cpu_seconds(sim.proc.pid) - s0)
                names.append(name)
                puts.append(count_puts(name))
                check(name)
                name = f"round{i}-xnatfs-write-close.bin"
                settle(src)
                sim.reset()
                w, c = write_then_close(src, folder / name, timeout)
                sample["xnatfs_write"], sample["xnatfs_close"], sample["xnatfs_write_close"] = w, c, w + c
                names.append(name)
                puts.append(count_puts(name))
                check(name)
                rss.append(m.peak_rss_mib())
            finally:
                m.stop()
            waiting = subprocess.run([str(BIN / "xnatfs"), "status", "--spool-dir", str(spool)],
                                     capture_output=True, text=True)
            if waiting.returncode != 0:
                sys.exit(f"bench: upload: uploads left in the spool after the unmount:\n{waiting.stdout}{waiting.stderr}")
            left = [p.name for p in spool.rglob("*.data")]  # <spool>/<server and user>/<id>.data
            if left:
                print(f"  upload: stages left in the spool after the unmount: {left}", flush=True)
            # The disk itself: cp to a local folder, and the fsync that makes it as durable as a stage.
            dst = copies / f"round{i}.bin"
            settle(src)
            sample["local_cp"] = timed(["cp", str(src), str(dst)], timeout=timeout)
            sample["local_cp_fsync"] = sample["local_cp"] + timed(["sync", str(dst)], timeout=timeout)
            if dst.stat().st_size != size:
                sys.exit(f"bench: upload: the local copy has {dst.stat().st_size} bytes, not {size}")
            dst.unlink()
            for name in names:  # the sim's disk does not fill up over the runs
                sim.api("DELETE", f"{files}/{name}")
            if i > 0:  # the first round is the warm-up
                for k, v in sample.items():
                    times[k].append(v)
                for k, v in used.items():
                    cpu[k].append(v)
            print("  upload round", i, {k: round(v, 3) for k, v in sample.items()},
                  "CPU s", {k: round(v, 2) for k, v in used.items()}, flush=True)
    finally:
        sim.stop()
    med = {k: median(v) for k, v in times.items()}
    return {
        "size_bytes": size,
        "runs": runs,
        "seconds": med,
        "mib_per_s": {k: size / (1 << 20) / v for k, v in med.items()},
        "mb_per_s": {k: size / 1e6 / v for k, v in med.items()},
        "cpu_seconds": {k: median(v) for k, v in cpu.items()},
        "peak_rss_mib": max(rss) if rss else None,
        "put_requests_per_xnatfs_upload": max(puts) if puts else None,
    }


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem = next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    return f"{os.cpu_count()} cores ({cpu}), {int(mem) // (1 << 20)} GiB RAM, Linux {platform.release()}"


SCENARIOS = ("read", "walk", "upload")
# What each scenario's result records about the run that made it, so results of separate runs
# (`--only`) can stand side by side.
PROVENANCE = ("machine", "date", "command", "quick")


def previous_results(path):
    """The scenarios of an earlier run's JSON, each with its provenance (older files kept the
    provenance once at the top)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    results = {}
    for name in SCENARIOS:
        if isinstance(old.get(name), dict):
            results[name] = dict(old[name])
            for key in PROVENANCE:
                results[name].setdefault(key, old.get(key))
    return results


def read_rows(r):
    s, rate = r["seconds"], r["mib_per_s"]
    size_mib = r["size_bytes"] / (1 << 20)
    return [
        f"| B1 cold read {size_mib:.0f} MiB, Range off | {s['cold_range_off']:.2f} s ({rate['cold_range_off']:.0f} MiB/s) | curl {s['curl']:.2f} s ({rate['curl']:.0f} MiB/s) | {s['curl'] / s['cold_range_off']:.2f}× curl | ≥ 0.6× curl |",
        f"| B1 cold read {size_mib:.0f} MiB, Range on | {s['cold_range_on']:.2f} s ({rate['cold_range_on']:.0f} MiB/s) | curl {s['curl']:.2f} s | {s['curl'] / s['cold_range_on']:.2f}× curl | ≥ 0.6× curl |",
        f"| B2 warm re-read (disk cache, page cache dropped) | {s['warm_disk_cache']:.2f} s ({rate['warm_disk_cache']:.0f} MiB/s) | local disk {s['local_disk']:.2f} s ({rate['local_disk']:.0f} MiB/s) | {s['local_disk'] / s['warm_disk_cache']:.2f}× local | ≥ 0.8× local disk |",
    ]


def walk_rows(w):
    return [
        f"| B4 project walk ({w['shape']}) | {w['seconds']['xnatfs']:.2f} s, {w['requests']['xnatfs']:.0f} requests | pyxnat walk {w['seconds']['pyxnat']:.2f} s, {w['requests']['pyxnat']:.0f} requests | {w['requests']['pyxnat'] / w['requests']['xnatfs']:.1f}× fewer requests, {w['seconds']['pyxnat'] / w['seconds']['xnatfs']:.1f}× less time | ≥ 10× fewer requests, ≥ 5× less time |",
    ]


def upload_rows(u):
    s, rate = u["seconds"], u["mib_per_s"]
    size_mib = u["size_bytes"] / (1 << 20)
    return [
        f"| B5 upload {size_mib:.0f} MiB: `cp` into a scan resource folder, until `cp` returns (the close waits for the server) | {s['xnatfs_cp']:.2f} s ({rate['xnatfs_cp']:.0f} MiB/s) | `curl -T` to the same resource {s['curl']:.2f} s ({rate['curl']:.0f} MiB/s) | {s['curl'] / s['xnatfs_cp']:.2f}× curl | — |",
        f"| B5 the same `cp` against local disk | {s['xnatfs_cp']:.2f} s | local `cp` {s['local_cp']:.2f} s ({rate['local_cp']:.0f} MiB/s); with an fsync {s['local_cp_fsync']:.2f} s ({rate['local_cp_fsync']:.0f} MiB/s) | {s['local_cp_fsync'] / s['xnatfs_cp']:.2f}× local cp + fsync | — |",
        f"| B5 where the time goes: writes into the stage, then the close (stage fsync, PUT, listing check) | writes {s['xnatfs_write']:.2f} s ({rate['xnatfs_write']:.0f} MiB/s), close {s['xnatfs_close']:.2f} s ({rate['xnatfs_close']:.0f} MiB/s) | — | — | — |",
    ] + ([
        f"| B5 CPU seconds per upload (client + mount daemon + sim) | cp {c['cp_into_mount']:.2f} + daemon {c['xnatfs_daemon']:.2f} + sim {c['sim_for_xnatfs']:.2f} | curl {c['curl']:.2f} + sim {c['sim_for_curl']:.2f} | — | — |",
    ] if (c := u.get("cpu_seconds")) else [])


def report(results, out_md, out_json):
    """Render every scenario in `results` (this run's and the ones kept from earlier runs)."""
    present = [n for n in SCENARIOS if n in results]
    runs = {}
    for name in present:
        r = results[name]
        runs.setdefault((r.get("machine"), r.get("command") or "a command not recorded", r.get("date")), []).append(name)
    machines = {m for m, _, _ in runs}
    lines = ["# Benchmarks", ""]
    if len(machines) == 1:
        lines.append(f"Machine: {next(iter(machines))}.")
    for (mach, command, date), names in runs.items():
        where = f" on {mach}" if len(machines) > 1 else ""
        lines.append(f"Run: `{command}` on {date}{where} ({', '.join(names)}).")
    lines += [
        "Medians of the runs after one warm-up round; contenders interleaved run by run.",
        "",
        "| scenario | xnatfs | baseline | ratio | target |",
        "|---|---|---|---|---|",
    ]
    rows = {"read": read_rows, "walk": walk_rows, "upload": upload_rows}
    for name in present:
        lines += rows[name](results[name])
    for name, what in (("read", "reading"), ("upload", "uploading")):
        if name in results and results[name].get("peak_rss_mib") is not None:
            lines.append(f"| B6 daemon peak RSS while {what} | {results[name]['peak_rss_mib']:.0f} MiB | — | — | ≤ 150 MiB |")
    lines.append("")
    if "upload" in results:
        lines += [textwrap.fill(
            "B5: each contender starts with the page cache dropped and the source file read back in. "
            "The spool (`--spool-dir`) is on the same disk as the source. Every run uploads a new name, "
            "checked afterwards in the server's listing (size and MD5). `curl -T` is one streamed "
            "`PUT …/files/NAME?inbody=true`. The mount fsyncs its stage before the upload; the sim "
            "does not fsync what it receives. Rates in MiB/s as elsewhere on this page; benchmarks.json "
            "has them in MB/s too.", 100), ""]
    missing = ["B0 (FUSE ceiling)", "B3 (DICOM series)"] + ([] if "upload" in results else ["B5 (upload)"]) + ["B7 (sim vs nginx)"]
    lines += [textwrap.fill(f"Not yet measured here: {', '.join(missing)}, the xnatpy and rclone "
                            "baselines; they come with the benchmark issue.", 100), ""]
    out_md.write_text("\n".join(lines))
    out_json.write_text(json.dumps({n: results[n] for n in present}, indent=2) + "\n")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 runs: a few minutes")
    ap.add_argument("--only", metavar="SCENARIOS",
                    help=f"comma-separated scenarios to run ({', '.join(SCENARIOS)}; default all); the "
                         "others keep their results from the earlier run in --out")
    ap.add_argument("--venv-python", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--out", default=str(REPO / "docs"))
    ap.add_argument("--size", type=int, help="bytes of the big file read and uploaded (default 1 GiB, quick 256 MiB)")
    ap.add_argument("--runs", type=int, help="measured runs after the warm-up (default 5, quick 2)")
    ap.add_argument("--walk-subjects", type=int, help="subjects in the walk project (default 100, quick 10)")
    args = ap.parse_args()
    only = [n.strip() for n in args.only.split(",")] if args.only else list(SCENARIOS)
    unknown = [n for n in only if n not in SCENARIOS]
    if unknown or not only:
        ap.error(f"--only: unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    if os.geteuid() != 0:
        sys.exit("bench: run as root (it mounts FUSE and drops the page cache)")
    size = args.size or ((256 << 20) if args.quick else (1 << 30))
    runs = args.runs or (2 if args.quick else 5)
    subjects = args.walk_subjects or (10 if args.quick else 100)
    out = Path(args.out)
    command = " ".join(["scripts/bench.sh"] + [a for a in sys.argv[1:] if not a.startswith("--venv-python") and a != args.venv_python])
    provenance = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "command": command, "quick": args.quick}
    work = Path(tempfile.mkdtemp(prefix="xnatfs-bench-"))
    try:
        print(f"bench: working in {work}", flush=True)
        results = previous_results(out / "benchmarks.json")
        for name in SCENARIOS:
            if name not in only:
                continue
            print(f"bench: {name}", flush=True)
            if name == "read":
                res = scenario_read(work, size, runs)
            elif name == "walk":
                res = scenario_walk(work, subjects, runs, args.venv_python)
            else:
                res = scenario_upload(work, size, runs)
            results[name] = {**res, **provenance}
        out.mkdir(parents=True, exist_ok=True)
        report(results, out / "BENCHMARKS.md", out / "benchmarks.json")
    finally:
        mnt = work / "mnt"
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
