"""B1, B2: a large file read cold through the mount (Range off and on) against curl from the
same sim, and re-read warm from the disk cache with the page cache dropped against local disk."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import AUTH, BIN, PASSWORD, USER, Mount, Sim, drop_caches, median, populate, run, timed


def scenario(work, opts):
    size, runs = opts.size, opts.runs
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


def rows(r):
    s, rate = r["seconds"], r["mib_per_s"]
    size_mib = r["size_bytes"] / (1 << 20)
    return [
        f"| B1 cold read {size_mib:.0f} MiB, Range off | {s['cold_range_off']:.2f} s ({rate['cold_range_off']:.0f} MiB/s) | curl {s['curl']:.2f} s ({rate['curl']:.0f} MiB/s) | {s['curl'] / s['cold_range_off']:.2f}× curl | ≥ 0.6× curl |",
        f"| B1 cold read {size_mib:.0f} MiB, Range on | {s['cold_range_on']:.2f} s ({rate['cold_range_on']:.0f} MiB/s) | curl {s['curl']:.2f} s | {s['curl'] / s['cold_range_on']:.2f}× curl | ≥ 0.6× curl |",
        f"| B2 warm re-read (disk cache, page cache dropped) | {s['warm_disk_cache']:.2f} s ({rate['warm_disk_cache']:.0f} MiB/s) | local disk {s['local_disk']:.2f} s ({rate['local_disk']:.0f} MiB/s) | {s['local_disk'] / s['warm_disk_cache']:.2f}× local | ≥ 0.8× local disk |",
    ]


RSS_WHILE = "reading"
