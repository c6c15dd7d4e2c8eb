"""B0, B1, B2, B7: a large file read cold through the mount (Range off and on) against curl from
the same sim, xnatpy downloading it, and an rclone mount `:http:` over nginx serving the same
bytes; re-read warm from the disk cache with the page cache dropped against local disk; the FUSE
ceiling (a mount answering from memory) as the limit of any FUSE read; the sim against nginx,
both by curl, to show the sim is not the bottleneck. Servers answer from memory (their files are
read back in after each page-cache drop); "cold" is about the client side."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from common import AUTH, PASSWORD, USER, Mount, Sim, cold, median, populate, run, timed, timed_cpu
from peers import CeilingMount, Nginx, RcloneMount, xnatpy_download


def scenario(work, opts):
    size, runs = opts.size, opts.runs
    root = work / "read-archive"
    out = populate(root, "--subjects", "1", "--sessions", "1", "--scans", "1", "--files", "1",
                   "--file-size", "1024", "--big-file", str(size))
    uri = re.search(r"big file: (\S+)", out).group(1)
    # The sim's copy of the file: the largest file in its archive.
    stored = max((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    off, on = Sim(root), Sim(root, "--range")
    local = work / "local.bin"
    run(["curl", "-sf", "-H", f"Authorization: {AUTH}", "-o", str(local), off.url + uri])
    www = work / "www"
    www.mkdir(exist_ok=True)
    os.link(local, www / "big.bin")
    web = Nginx(work, www)
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    rel = None
    keys = ("ceiling", "curl", "nginx_curl", "cold_range_off", "cold_range_on", "cold_md5_off",
            "warm_disk_cache", "local_disk", "rclone", "xnatpy")
    times = {k: [] for k in keys}
    # CPU seconds of each contender's reader and of its daemon (xnatfs, rclone), apart.
    cpu = {k: [] for k in keys}
    rss = []

    try:
        for i in range(runs + 1):
            sample = {}
            ceiling = CeilingMount(mnt, size)
            try:
                cold()
                sample["ceiling"] = timed(["cat", str(ceiling.file)], stdout=subprocess.DEVNULL)
            finally:
                ceiling.stop()
            used = {}
            cold(stored)
            sample["curl"], reader, _ = timed_cpu(
                ["curl", "-sf", "-H", f"Authorization: {AUTH}", "-o", "/dev/null", off.url + uri])
            used["curl"] = (reader, 0.0)
            cold(local)
            sample["nginx_curl"] = timed(["curl", "-sf", "-o", "/dev/null", web.url + "/big.bin"])
            # The MD5 check off: the read's cost apart from the check's.
            for key, sim, flags in (("cold_range_off", off, ()), ("cold_range_on", on, ()),
                                    ("cold_md5_off", off, ("--md5-check", "off"))):
                cache = work / f"cache-{key}"
                shutil.rmtree(cache, ignore_errors=True)
                m = Mount(sim.url, mnt, cache, work / "xnatfs.log", *flags)
                try:
                    if rel is None:
                        rel = next(p for p in mnt.rglob("big.bin")).relative_to(mnt)
                    (mnt / rel).stat()
                    cold(stored)
                    sample[key], reader, daemon = timed_cpu(
                        ["cat", str(mnt / rel)], m.proc.pid, stdout=subprocess.DEVNULL)
                    used[key] = (reader, daemon)
                    rss.append(m.peak_rss_mib())
                finally:
                    m.stop()
            m = Mount(off.url, mnt, work / "cache-cold_range_off", work / "xnatfs.log")
            try:
                (mnt / rel).stat()
                cold()
                sample["warm_disk_cache"], reader, daemon = timed_cpu(
                    ["cat", str(mnt / rel)], m.proc.pid, stdout=subprocess.DEVNULL)
                used["warm_disk_cache"] = (reader, daemon)
                rss.append(m.peak_rss_mib())
            finally:
                m.stop()
            cold()
            sample["local_disk"], reader, _ = timed_cpu(["cat", str(local)], stdout=subprocess.DEVNULL)
            used["local_disk"] = (reader, 0.0)
            rc = RcloneMount(web.url, mnt)
            try:
                (mnt / "big.bin").stat()
                cold(local)
                sample["rclone"], reader, daemon = timed_cpu(
                    ["cat", str(mnt / "big.bin")], rc.proc.pid, stdout=subprocess.DEVNULL)
                used["rclone"] = (reader, daemon)
            finally:
                rc.stop()
            cold(stored)
            sample["xnatpy"] = xnatpy_download(opts.venv_python, work, off.url, USER, PASSWORD, uri, size)
            if i > 0:  # the first round is the warm-up
                for k, v in sample.items():
                    times[k].append(v)
                for k, v in used.items():
                    cpu[k].append(v)
            print("  read round", i, {k: round(v, 3) for k, v in sample.items()},
                  "CPU s (reader, daemon)", {k: (round(a, 2), round(b, 2)) for k, (a, b) in used.items()},
                  flush=True)
        stats_off = off.stats()
    finally:
        off.stop()
        on.stop()
        web.stop()
    mib = size / (1 << 20)
    gib = size / (1 << 30)
    med = {k: median(v) for k, v in times.items()}
    cpu_per_gib = {k: {"reader": median([a for a, _ in v]) / gib, "daemon": median([b for _, b in v]) / gib}
                   for k, v in cpu.items() if v}
    return {
        "cpu_seconds_per_gib": cpu_per_gib,
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
    off = s["cold_range_off"]

    def t(key):
        return f"{s[key]:.2f} s ({rate[key]:.0f} MiB/s)"
    out = []
    if "ceiling" in s:
        out.append(f"| B0 FUSE ceiling: `cat` of {size_mib:.0f} MiB from a mount answering from memory (examples/fuse_ceiling.rs) | xnatfs cold (Range off) {t('cold_range_off')} | ceiling {t('ceiling')} | xnatfs at {s['ceiling'] / off:.2f}× the ceiling | the ceiling every row is read against |")
    out += [
        f"| B1 cold read {size_mib:.0f} MiB, Range off | {t('cold_range_off')} | curl {t('curl')} | {s['curl'] / off:.2f}× curl | ≥ 0.6× curl |",
        f"| B1 cold read {size_mib:.0f} MiB, Range on | {t('cold_range_on')} | curl {s['curl']:.2f} s | {s['curl'] / s['cold_range_on']:.2f}× curl | ≥ 0.6× curl |",
    ]
    if "rclone" in s:
        out += [
            f"| B1 against a generic FUSE peer: `rclone mount :http:` over nginx serving the same file, `cat` | {t('cold_range_off')} | rclone {t('rclone')} | {s['rclone'] / off:.2f}× rclone | ≥ 3× rclone |",
            f"| B1 against xnatpy `download_stream` of the same URL (after its login; bytes counted) | {t('cold_range_off')} | xnatpy {t('xnatpy')} | {s['xnatpy'] / off:.2f}× xnatpy | — |",
        ]
    out.append(f"| B2 warm re-read (disk cache, page cache dropped) | {t('warm_disk_cache')} | local disk {t('local_disk')} | {s['local_disk'] / s['warm_disk_cache']:.2f}× local | ≥ 0.8× local disk |")
    c = r.get("cpu_seconds_per_gib")
    if c:
        def cpu(key, daemon="daemon"):
            v = c.get(key)
            if not v:
                return "—"
            return f"{v['reader']:.2f} reader + {v['daemon']:.2f} {daemon}" if v["daemon"] else f"{v['reader']:.2f}"
        out += [
            f"| B1 CPU seconds per GiB read cold, Range off (Range on) | {cpu('cold_range_off')} ({cpu('cold_range_on')}) | curl {cpu('curl')}; rclone {cpu('rclone', 'rclone')} | — | daemon ≤ 1.0 s/GiB apart from MD5 |",
            f"| B2 CPU seconds per GiB re-read from the disk cache | {cpu('warm_disk_cache')} | local `cat` {cpu('local_disk')} | — | — |",
        ]
        on, off = c.get("cold_range_off"), c.get("cold_md5_off")
        if on and off:
            out.append(f"| B1 the MD5 check's share: cold read, Range off, `--md5-check off` | {s['cold_md5_off']:.2f} s; {cpu('cold_md5_off')} | the same with the check (default) {s['cold_range_off']:.2f} s; {cpu('cold_range_off')} | the check costs the daemon {on['daemon'] - off['daemon']:.2f} CPU s/GiB | daemon ≤ 1.0 s/GiB apart from MD5 |")
    if "nginx_curl" in s:
        out.append(f"| B7 the sim serving the {size_mib:.0f} MiB file to curl | sim {t('curl')} | nginx {t('nginx_curl')} | sim at {s['nginx_curl'] / s['curl']:.2f}× nginx | ≥ 0.7× nginx |")
    return out


def notes(r):
    return [textwrap.fill(
        "B0, B1, B2, B7: every contender reads the same bytes once per round. Before each, the page "
        "cache is dropped and the serving side's copy (the sim's stored file, nginx's file) is read "
        "back in, so servers answer from memory and \"cold\" means the client side: a new xnatfs "
        "cache folder, rclone without its VFS cache. xnatpy's time excludes its login. The xnatfs "
        "column of B0 and the peer rows is the Range-off cold read. CPU seconds per GiB: user plus "
        "system time of the reader (`cat`, `curl`; from its rusage) and of the mount's daemon "
        "(xnatfs, rclone; from /proc/PID/stat) over the read and until the daemon goes quiet (the "
        "mount's MD5 check catches up after `cat` returns), apart; the servers' are not counted. "
        "The read with `--md5-check off` shows the daemon's cost apart from the check.", 100)]


RSS_WHILE = "reading"
