"""B8: many readers at once through one mount, against as many `curl`s, on a sim with Range off
(as real XNAT).

(a) 8 `cat`s started together, each reading a different file (256 MiB; quick 64 MiB) cold through
one mount (a new cache folder), against 8 concurrent `curl -o /dev/null` of the same URLs: the wall
time until the last is done, the aggregate MiB/s, and the CPU seconds per GiB of the readers and
of the mount's daemon apart.

(b) 8 `cat`s started together reading the *same* file cold through one new mount, against 8
`curl`s of that URL: the time, and how often the sim sent that file (from `/__sim/stats`, reset
before; one download is the aim: the mount should share one download between its readers).

Bytes are checked in the warm-up round, which is also the verification round: there every reader
is an `md5sum` of its file, under the same concurrency and just as cold, and every sum must equal
the sim's listed MD5 or the bench stops. The measured rounds use `cat > /dev/null`, so hashing
costs neither time nor CPU there. Before each contender the page cache is dropped and the sim's
stored files are read back in, so the sim answers from memory."""

import shutil
import subprocess
import sys
import textwrap
import time

from common import AUTH, Mount, Sim, children_cpu, cpu_seconds, cold, median, populate, settled_cpu

PROJECT, SUBJECT, SESSION, RESOURCE = "SIM01", "SIM01_S001", "SIM01_S001_MR1", "RAW"
READERS = 8


def archive(root, size):
    """A sim archive with READERS different files of `size` bytes in one scan resource."""
    populate(root, "--subjects", "1", "--sessions", "1", "--scans", "1", "--resources", RESOURCE,
             "--files", str(READERS), "--file-size", str(size))


def listed_files(sim):
    """(name, URI, MD5) of each file of the resource, in name order, from the sim's listing."""
    eid = sim.api("GET", f"/data/projects/{PROJECT}/experiments?format=json")["ResultSet"]["Result"][0]["ID"]
    rows = sim.api("GET", f"/data/experiments/{eid}/scans/1/resources/{RESOURCE}/files?format=json")
    files = sorted((r["Name"], r["URI"], r["digest"]) for r in rows["ResultSet"]["Result"])
    if len(files) != READERS:
        sys.exit(f"bench: many: expected {READERS} files in the sim's listing, found {len(files)}")
    return files



def together(commands, verify, daemon=None):
    """Starts every command at once and waits for all: wall seconds, the readers' CPU seconds,
    the daemon's CPU seconds meanwhile (until it went quiet), and each command's standard output when `verify` (the
    `md5sum`s; else it goes to /dev/null)."""
    out = subprocess.PIPE if verify else subprocess.DEVNULL
    c0, d0 = children_cpu(), cpu_seconds(daemon) if daemon else 0.0
    start = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=out, stdin=subprocess.DEVNULL) for c in commands]
    outs = [p.communicate()[0] for p in procs]
    seconds = time.perf_counter() - start
    failed = [(c, p.returncode) for c, p in zip(commands, procs) if p.returncode != 0]
    if failed:
        sys.exit(f"bench: many: readers failed: {failed}")
    return seconds, children_cpu() - c0, (settled_cpu(daemon) - d0) if daemon else 0.0, outs


def readers(paths, verify):
    """One reader per path: `md5sum` in the verification round, else `cat` (into /dev/null)."""
    return [["md5sum" if verify else "cat", str(p)] for p in paths]


def curls(urls, verify):
    if verify:
        return [["sh", "-c", f'curl -sf -H "Authorization: {AUTH}" "$1" | md5sum', "sh", u] for u in urls]
    return [["curl", "-sf", "-H", f"Authorization: {AUTH}", "-o", "/dev/null", u] for u in urls]


def check_sums(what, outs, digests):
    """Each reader's `md5sum` output against its file's listed MD5; a mismatch stops the bench."""
    for out, want in zip(outs, digests):
        got = out.decode().split()[0] if out.strip() else "(no output)"
        if got != want:
            sys.exit(f"bench: many: {what}: a reader got MD5 {got}, the sim lists {want}")


def through_mount(sim, work, mnt, names, stored, verify, rss):
    """One new mount (a new cache folder); the readers of `names` (files of the resource folder)
    started together, cold. Returns (seconds, reader CPU, daemon CPU, outputs, sim stats); the
    daemon's peak RSS goes to `rss`."""
    cache = work / "cache-many"
    shutil.rmtree(cache, ignore_errors=True)
    m = Mount(sim.url, mnt, cache, work / "xnatfs.log")
    try:
        folder = next(mnt.glob(f"{PROJECT}/{SUBJECT}/{SESSION}/1-*/{RESOURCE}"))
        for name in set(names):  # looked up before the clock, as the other scenarios do
            (folder / name).stat()
        cold(*stored)
        sim.reset()
        seconds, reader, daemon, outs = together(readers([folder / n for n in names], verify), verify, m.proc.pid)
        rss.append(m.peak_rss_mib())
        return seconds, reader, daemon, outs, sim.stats()
    finally:
        m.stop()
        shutil.rmtree(cache, ignore_errors=True)


def by_curl(sim, urls, stored, verify):
    cold(*stored)
    sim.reset()
    seconds, reader, _, outs = together(curls(urls, verify), verify)
    return seconds, reader, 0.0, outs, sim.stats()


def scenario(work, opts):
    size = (64 << 20) if opts.quick else (256 << 20)
    runs = min(opts.runs, 3)  # 8 x 256 MiB per contender: three runs are enough
    root = work / "many-archive"
    archive(root, size)
    stored = [p for p in (root / "blobs").rglob("*") if p.is_file()]
    sim = Sim(root)
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    keys = ("xnatfs_different", "curl_different", "xnatfs_same", "curl_same")
    times = {k: [] for k in keys}
    cpu = {k: [] for k in keys}
    downloads_same, peak_in_flight, rss = [], [], []
    try:
        files = listed_files(sim)
        names = [n for n, _, _ in files]
        urls = [sim.url + u for _, u, _ in files]
        digests = [d for _, _, d in files]
        for i in range(runs + 1):
            verify = i == 0  # the warm-up round checks every reader's bytes
            sample = {
                "xnatfs_different": through_mount(sim, work, mnt, names, stored, verify, rss),
                "curl_different": by_curl(sim, urls, stored, verify),
                "xnatfs_same": through_mount(sim, work, mnt, [names[0]] * READERS, stored, verify, rss),
                "curl_same": by_curl(sim, [urls[0]] * READERS, stored, verify),
            }
            if verify:
                for key, (_, _, _, outs, _) in sample.items():
                    check_sums(key, outs, [digests[0]] * READERS if key.endswith("same") else digests)
            same_stats = sample["xnatfs_same"][4]
            diff_stats = sample["xnatfs_different"][4]
            print(f"  many round {i}{' (verification: md5sum readers)' if verify else ''}: "
                  + "; ".join(f"{k} {s:.2f} s CPU s readers {r:.2f} daemon {d:.2f}"
                              for k, (s, r, d, _, _) in sample.items())
                  + f"; same file sent {same_stats['downloads'].get(files[0][1], 0)} times"
                  + f"; peak downloads in flight {diff_stats['peak_downloads_in_flight']}", flush=True)
            if i > 0:
                for k, (s, r, d, _, _) in sample.items():
                    times[k].append(s)
                    cpu[k].append((r, d))
                downloads_same.append(same_stats["downloads"].get(files[0][1], 0))
                peak_in_flight.append(diff_stats["peak_downloads_in_flight"])
    finally:
        sim.stop()
        shutil.rmtree(root, ignore_errors=True)
    gib = READERS * size / (1 << 30)
    med = {k: median(v) for k, v in times.items()}
    return {
        "readers": READERS,
        "size_bytes": size,
        "runs": runs,
        "seconds": med,
        "mib_per_s": {k: READERS * size / (1 << 20) / v for k, v in med.items()},
        "cpu_seconds_per_gib": {k: {"reader": median([a for a, _ in v]) / gib,
                                    "daemon": median([b for _, b in v]) / gib} for k, v in cpu.items() if v},
        "downloads_of_the_same_file": max(downloads_same) if downloads_same else None,
        "peak_downloads_in_flight_different": median(peak_in_flight),
        "bytes_verified": True,
        "peak_rss_mib": max(rss) if rss else None,
    }


def rows(r):
    s, rate, n = r.get("seconds", {}), r.get("mib_per_s", {}), r.get("readers", READERS)
    if not s:
        return []
    size_mib = r["size_bytes"] / (1 << 20)
    c = r.get("cpu_seconds_per_gib", {})

    def cpu(k):
        v = c.get(k)
        if not v:
            return "—"
        return f"{v['reader']:.2f} readers + {v['daemon']:.2f} daemon" if k.startswith("xnatfs") else f"{v['reader']:.2f}"
    out = [
        f"| B8 {n} `cat`s at once, each a different {size_mib:.0f} MiB file, cold, one mount (Range off) | {s['xnatfs_different']:.2f} s ({rate['xnatfs_different']:.0f} MiB/s in all) | {n} `curl`s at once {s['curl_different']:.2f} s ({rate['curl_different']:.0f} MiB/s) | {s['curl_different'] / s['xnatfs_different']:.2f}× the curls | ≥ 0.6× the curls |",
    ]
    downloads = r.get("downloads_of_the_same_file")
    out.append(
        f"| B8 {n} `cat`s at once of the same {size_mib:.0f} MiB file, cold, one mount (Range off) | {s['xnatfs_same']:.2f} s ({rate['xnatfs_same']:.0f} MiB/s delivered), the sim sent the file {downloads if downloads is not None else '?'}× | {n} `curl`s of the URL {s['curl_same']:.2f} s ({n} downloads) | {s['curl_same'] / s['xnatfs_same']:.2f}× the curls | 1 download |")
    if c:
        out.append(
            f"| B8 CPU seconds per GiB read, {n} different files (same file) | {cpu('xnatfs_different')} ({cpu('xnatfs_same')}) | `curl`s {cpu('curl_different')} ({cpu('curl_same')}) | — | — |")
    return out


def notes(r):
    if not r.get("seconds"):
        return []
    return [textwrap.fill(
        f"B8: a sim with Range off holding {r.get('readers', READERS)} different files of "
        f"{r['size_bytes'] >> 20} MiB in one scan resource; {r['runs']} run(s) after a verification "
        "round (the first, not counted) in which every reader is an `md5sum` and every sum must "
        "equal the sim's listed MD5, for the mount and the curls alike. In the measured rounds the "
        "readers are `cat > /dev/null` and `curl -o /dev/null`, all started at once; the time is "
        "until the last is done. Each mount is new, with an empty cache folder; the files are "
        "looked up before the clock. Before each contender the page cache is dropped and the sim's "
        "stored files are read back in. The same-file row counts the sim's downloads of that URI "
        "(its stats reset before). CPU seconds per GiB delivered to the readers: the readers' user "
        "plus system time (rusage) and the mount's daemon's (/proc/PID/stat), apart.", 100)]


RSS_WHILE = f"{READERS} readers read at once"
