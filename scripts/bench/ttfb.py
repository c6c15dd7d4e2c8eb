"""B9: time to first byte. A sim with 20 ms latency per request holds 100 files of 8 MiB (quick:
20) in one scan resource; `head -c 352` (the size of a NIfTI-1 header) of each file, one after
the other, cold, through a new mount, against a keep-alive loop that asks the sim for the same
first 352 bytes of each URL. Run twice: the sim with `--range`, and without it (as real XNAT,
which ignores Range and sends the whole file).

The baseline is a Python `http.client` loop (stdlib) over one kept-alive connection with a
`Range: bytes=0-351` header per URL: an answer 206 is read whole and the connection reused; an
answer 200 (the server ignored Range) is read for its first 352 bytes and the connection closed
and opened again, as a careful client must, since draining the rest would download the file.
The mount's listing of the folder (an `ls`) comes before the clock. The sim's counters (requests,
downloads, bytes sent, downloads still in flight) are taken when the last header has been read,
to show whether the mount downloads whole files for a header. Every contender's 352-byte heads
are hashed together and must agree (a mismatch stops the bench)."""

import hashlib
import shutil
import subprocess
import sys
import textwrap
import time

from common import AUTH, Mount, Sim, children_cpu, cpu_seconds, cold, median, populate

PROJECT, SUBJECT, SESSION, RESOURCE = "SIM01", "SIM01_S001", "SIM01_S001_MR1", "RAW"
HEADER = 352  # bytes of a NIfTI-1 header
LATENCY_MS = 20

# The baseline, run as its own process: base URL, Authorization header, then the URIs. Prints
# its seconds, the MD5 of the heads, and how many connections it opened.
KEEPALIVE_LOOP = """
import hashlib, http.client, sys, time, urllib.parse
base, auth, uris = sys.argv[1], sys.argv[2], sys.argv[3:]
n = %d
host = urllib.parse.urlsplit(base).netloc
heads, connections = hashlib.md5(), 1
start = time.perf_counter()
conn = http.client.HTTPConnection(host)
for uri in uris:
    conn.request("GET", uri, headers={"Authorization": auth, "Range": "bytes=0-%%d" %% (n - 1)})
    resp = conn.getresponse()
    if resp.status == 206:
        heads.update(resp.read()[:n])
    elif resp.status == 200:  # Range ignored: the first bytes, then a new connection
        heads.update(resp.read(n))
        conn.close()
        conn = http.client.HTTPConnection(host)
        connections += 1
    else:
        sys.exit("GET %%s: %%d" %% (uri, resp.status))
took = time.perf_counter() - start
conn.close()
print(took, heads.hexdigest(), connections)
""" % HEADER


def listed_uris(sim):
    """The URIs of the resource's files, in name order."""
    eid = sim.api("GET", f"/data/projects/{PROJECT}/experiments?format=json")["ResultSet"]["Result"][0]["ID"]
    rows = sim.api("GET", f"/data/experiments/{eid}/scans/1/resources/{RESOURCE}/files?format=json")
    return [r["URI"] for r in sorted(rows["ResultSet"]["Result"], key=lambda r: r["Name"])]



def counters(sim):
    s = sim.stats()
    return {"requests": s["requests"], "downloads": s.get("by_kind", {}).get("download", 0),
            "bytes_served": s["bytes_served"], "downloads_in_flight": s["downloads_in_flight"]}


def heads_through_mount(sim, work, mnt, stored, count):
    """`head -c 352` of every file of the resource folder, in name order, one after the other,
    through a new mount: seconds, the heads' MD5, reader and daemon CPU seconds, sim counters."""
    cache = work / "cache-ttfb"
    shutil.rmtree(cache, ignore_errors=True)
    m = Mount(sim.url, mnt, cache, work / "xnatfs.log")
    try:
        folder = next(mnt.glob(f"{PROJECT}/{SUBJECT}/{SESSION}/1-*/{RESOURCE}"))
        files = sorted(p for p in folder.iterdir())  # the listing, before the clock
        if len(files) != count:
            sys.exit(f"bench: ttfb: the mount lists {len(files)} files, not {count}")
        cold(*stored)
        sim.reset()
        c0, d0 = children_cpu(), cpu_seconds(m.proc.pid)
        start = time.perf_counter()
        out = subprocess.run(["sh", "-c", f'for f do head -c {HEADER} "$f"; done', "sh", *map(str, files)],
                             check=True, capture_output=True).stdout
        seconds = time.perf_counter() - start
        used = (children_cpu() - c0, cpu_seconds(m.proc.pid) - d0)
        seen = counters(sim)
    finally:
        m.stop()
        shutil.rmtree(cache, ignore_errors=True)
    if len(out) != count * HEADER:
        sys.exit(f"bench: ttfb: the heads through the mount are {len(out)} bytes, not {count} x {HEADER}")
    return seconds, hashlib.md5(out).hexdigest(), used, seen


def heads_by_keepalive(sim, work, uris, stored):
    script = work / "ttfb_keepalive.py"
    script.write_text(KEEPALIVE_LOOP)
    cold(*stored)
    sim.reset()
    c0 = children_cpu()
    out = subprocess.run([sys.executable, str(script), sim.url, AUTH, *uris], check=True,
                         capture_output=True, text=True).stdout.split()
    used = (children_cpu() - c0, 0.0)
    return float(out[0]), out[1], used, {**counters(sim), "connections": int(out[2])}


def scenario(work, opts):
    count, size = (20 if opts.quick else 100), 8 << 20
    runs = opts.runs
    root = work / "ttfb-archive"
    populate(root, "--subjects", "1", "--sessions", "1", "--scans", "1", "--resources", RESOURCE,
             "--files", str(count), "--file-size", str(size))
    stored = [p for p in (root / "blobs").rglob("*") if p.is_file()]
    sims = {"range_on": Sim(root, "--range", "--latency-ms", str(LATENCY_MS)),
            "range_off": Sim(root, "--latency-ms", str(LATENCY_MS))}
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    keys = [f"{who}_{server}" for server in sims for who in ("xnatfs", "keepalive")]
    res = {k: {"seconds": [], "cpu": [], "counters": []} for k in keys}
    try:
        uris = listed_uris(sims["range_on"])
        if len(uris) != count:
            sys.exit(f"bench: ttfb: the sim lists {len(uris)} files, not {count}")
        for i in range(runs + 1):
            sample = {}
            for server, sim in sims.items():
                sample[f"xnatfs_{server}"] = heads_through_mount(sim, work, mnt, stored, count)
                sample[f"keepalive_{server}"] = heads_by_keepalive(sim, work, uris, stored)
            sums = {k: v[1] for k, v in sample.items()}
            if len(set(sums.values())) != 1:
                sys.exit(f"bench: ttfb: the heads differ between contenders (MD5 of each): {sums}")
            print(f"  ttfb round {i}: " + "; ".join(
                f"{k} {s:.2f} s, {c['requests']} requests, {c['downloads']} downloads, "
                f"{c['bytes_served'] / (1 << 20):.1f} MiB sent, {c['downloads_in_flight']} in flight"
                for k, (s, _, _, c) in sample.items()), flush=True)
            if i > 0:
                for k, (s, _, used, c) in sample.items():
                    res[k]["seconds"].append(s)
                    res[k]["cpu"].append(used)
                    res[k]["counters"].append(c)
    finally:
        for sim in sims.values():
            sim.stop()
        shutil.rmtree(root, ignore_errors=True)
    return {
        "files": count,
        "file_size_bytes": size,
        "header_bytes": HEADER,
        "latency_ms": LATENCY_MS,
        "runs": runs,
        "seconds": {k: median(v["seconds"]) for k, v in res.items()},
        "cpu_seconds": {k: {"reader": median([a for a, _ in v["cpu"]]), "daemon": median([b for _, b in v["cpu"]])}
                        for k, v in res.items() if v["cpu"]},
        # Counters of each contender's last measured run (they do not vary between runs).
        "sim_counters": {k: v["counters"][-1] for k, v in res.items() if v["counters"]},
    }


def amount(n):
    """Bytes for the table: KiB below a MiB, else MiB."""
    return f"{n / 1024:.1f} KiB" if n < (1 << 20) else f"{n / (1 << 20):.1f} MiB"


def rows(r):
    s, c = r.get("seconds", {}), r.get("sim_counters", {})
    if not s:
        return []
    n, size_mib = r["files"], r["file_size_bytes"] >> 20
    cpu = r.get("cpu_seconds", {})

    def sent(k):
        v = c.get(k)
        if not v:
            return ""
        return f", {v['requests']} requests, {v['downloads']} downloads, {amount(v['bytes_served'])} sent"

    def used(k):
        v = cpu.get(k)
        if not v:
            return "—"
        return f"{v['reader']:.2f} `head`s + {v['daemon']:.2f} daemon" if k.startswith("xnatfs") else f"{v['reader']:.2f}"
    out = []
    for server, what in (("range_on", "sim with Range"), ("range_off", "sim without Range, as real XNAT")):
        x, b = f"xnatfs_{server}", f"keepalive_{server}"
        if x not in s:
            continue
        out.append(
            f"| B9 time to first byte: `head -c {r['header_bytes']}` of {n} files of {size_mib} MiB one after the other, cold, {r['latency_ms']} ms latency, {what} | {s[x]:.2f} s ({s[x] / n * 1000:.0f} ms a file){sent(x)} | keep-alive `http.client` loop asking for bytes 0-{r['header_bytes'] - 1} {s[b]:.2f} s{sent(b)} | {s[x] / s[b]:.2f}× the loop's time | ≤ 1.3× the loop's time |")
        out.append(f"| B9 CPU seconds of the {n} headers, {what} | {used(x)} | loop {used(b)} | — | — |")
    return out


def notes(r):
    if not r.get("seconds"):
        return []
    c = r.get("sim_counters", {}).get("keepalive_range_off", {})
    return [textwrap.fill(
        f"B9: {r['files']} files of {r['file_size_bytes'] >> 20} MiB in one scan resource of a sim with "
        f"{r['latency_ms']} ms latency per request, once with `--range` and once without; {r['runs']} run(s) "
        "after a warm-up. xnatfs: a new mount with an empty cache; the folder listed (`ls`) before "
        f"the clock; then one shell runs `head -c {r['header_bytes']}` of each file in name order. The "
        "baseline is a Python `http.client` loop (not curl) over one kept-alive connection sending "
        f"`Range: bytes=0-{r['header_bytes'] - 1}`: a 206 answer is read and the connection reused; "
        f"a 200 answer (Range ignored) is read for its first {r['header_bytes']} bytes and the "
        "connection closed and opened again, since reading on would download the whole file "
        f"(without Range it opened {c.get('connections', '?')} connections). Before each contender the "
        "page cache is dropped and the sim's stored files are read back in. The sim's counters "
        "(requests, downloads, bytes sent) are read when the last header is in, so a download "
        "that goes on after its header shows in the bytes sent (and in the downloads still in "
        "flight, in benchmarks.json). Every contender's heads are hashed and must agree. CPU "
        "seconds: the readers (`sh` and its `head`s; the Python loop, its start included) and the "
        "mount's daemon, apart, over the clock.", 100)]
