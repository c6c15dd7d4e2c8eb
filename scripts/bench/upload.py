"""B5: `cp` of a large local file into a scan resource folder of the mount, until cp returns (its
close waits until the server has the file), against `curl -T` of the same file to the same
resource and a local `cp` (with and without an fsync); the same upload written and closed by
hand, to split the time between the writes into the stage and the close; the daemon's peak RSS.
Each upload is checked in the server's listing (size and MD5)."""

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from common import (AUTH, BIN, PASSWORD, USER, Mount, Sim, children_cpu, cpu_seconds, drop_caches, median,
                    populate, run, timed)


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


def settle(src):
    """Before each upload contender: the previous one's dirty pages written out, the page cache
    dropped, and the source read back in, so every contender starts alike, with the source in
    memory and nothing of the others left to write back."""
    drop_caches()
    run(["cat", str(src)], stdout=subprocess.DEVNULL)


def write_then_close(src, dst, timeout):
    """cp's loop by hand, timing the writes (into the stage on the spool disk) apart from the
    close (the PUT, the check of the server's listing). Returns both."""
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


def scenario(work, opts):
    size, runs = opts.size, opts.runs
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
            c0, s0 = children_cpu(), cpu_seconds(sim.pid)
            start = time.perf_counter()
            out = run(["curl", "-sSf", "-u", f"{USER}:{PASSWORD}", "-T", str(src),
                       "-H", "Content-Type: application/octet-stream", f"{sim.url}{files}/{name}?inbody=true"],
                      capture_output=True, text=True, timeout=timeout).stdout
            sample["curl"] = time.perf_counter() - start
            used = {"curl": children_cpu() - c0, "sim_for_curl": cpu_seconds(sim.pid) - s0}
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
                c0, d0, s0 = children_cpu(), cpu_seconds(m.proc.pid), cpu_seconds(sim.pid)
                sample["xnatfs_cp"] = timed(["cp", str(src), str(folder / name)], timeout=timeout)
                used.update(cp_into_mount=children_cpu() - c0, xnatfs_daemon=cpu_seconds(m.proc.pid) - d0,
                            sim_for_xnatfs=cpu_seconds(sim.pid) - s0)
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
            # The disk itself: cp to a local folder, with and without an fsync.
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


def rows(u):
    s, rate = u["seconds"], u["mib_per_s"]
    size_mib = u["size_bytes"] / (1 << 20)
    return [
        f"| B5 upload {size_mib:.0f} MiB: `cp` into a scan resource folder, until `cp` returns (the close waits for the server) | {s['xnatfs_cp']:.2f} s ({rate['xnatfs_cp']:.0f} MiB/s) | `curl -T` to the same resource {s['curl']:.2f} s ({rate['curl']:.0f} MiB/s) | {s['curl'] / s['xnatfs_cp']:.2f}× curl | ≥ 0.8× curl |",
        f"| B5 the same `cp` against local disk | {s['xnatfs_cp']:.2f} s | local `cp` {s['local_cp']:.2f} s ({rate['local_cp']:.0f} MiB/s); with an fsync {s['local_cp_fsync']:.2f} s ({rate['local_cp_fsync']:.0f} MiB/s) | {s['local_cp_fsync'] / s['xnatfs_cp']:.2f}× local cp + fsync | — |",
        f"| B5 where the time goes: writes into the stage, then the close (PUT, listing check) | writes {s['xnatfs_write']:.2f} s ({rate['xnatfs_write']:.0f} MiB/s), close {s['xnatfs_close']:.2f} s ({rate['xnatfs_close']:.0f} MiB/s) | — | — | — |",
    ] + cpu_rows(u)


def cpu_rows(u):
    """CPU seconds per GiB uploaded: the client (`cp`, `curl`), the mount's daemon and the sim
    apart (older results kept the same per-upload figures, so they render too)."""
    c = u.get("cpu_seconds")
    if not c:
        return []
    gib = u["size_bytes"] / (1 << 30)
    g = {k: v / gib for k, v in c.items()}
    return [
        f"| B5 CPU seconds per GiB uploaded (client, mount daemon, sim apart) | `cp` {g['cp_into_mount']:.2f} + daemon {g['xnatfs_daemon']:.2f} (+ sim {g['sim_for_xnatfs']:.2f}) | `curl -T` {g['curl']:.2f} (+ sim {g['sim_for_curl']:.2f}) | daemon at {g['xnatfs_daemon'] / g['curl']:.1f}× curl's CPU | — |",
    ]


RSS_WHILE = "uploading"


def notes(u):
    return [textwrap.fill(
        "B5: each contender starts with the page cache dropped and the source file read back in. "
        "The spool (`--spool-dir`) is on the same disk as the source. Every run uploads a new name, "
        "checked afterwards in the server's listing (size and MD5). `curl -T` is one streamed "
        "`PUT …/files/NAME?inbody=true`. The mount does not fsync its stage before the upload "
        "(only a failed upload's stage is synced); the sim does not fsync what it receives. Rates in MiB/s as elsewhere on this page; benchmarks.json "
        "has them in MB/s too. CPU seconds per GiB uploaded: user plus system time over the upload of "
        "the client (`cp`, `curl`; from their rusage), the mount's daemon and the sim (from "
        "/proc/PID/stat), apart.", 100)]
