"""fio: the read jobs mountpoint-s3 and hf-mount publish (mountpoint-s3's scripts/fio: `bs=256k`,
`ioengine=sync`, a time limit), run with fio against xnatfs on the sim with Range on, with Range
off (as real XNAT), and against the same files on local disk:

  seq_read        one large file read from start to end, 256 KiB reads;
  seq_read_4files 4 files read at once, one fio job each (aggregate bandwidth);
  rand_read_1m    random 1 MiB reads over the large file;
  rand_read_4k    random 4 KiB reads over the large file (IOPS too).

Files of 512 MiB (quick: 64 MiB). Every job has a time limit (5 s, quick 2 s; `--runtime`, not
`--time_based`: a job ends at the limit or once it has read every block of its file once, so
nothing is read twice from the page cache). Reads are buffered (`--direct=1` is not what FUSE users do and the
mount may refuse it), with `--invalidate=1`. Cold for each job and target: the page cache
dropped (the sim's stored files read back in, so it answers from memory), and for xnatfs a new
mount with an empty cache folder; the sim's bytes sent during each job are recorded, and a job
through the mount for which the sim sent nothing stops the bench (it would have read a cache)."""

import json
import shutil
import sys
import textwrap

from common import AUTH, Mount, Sim, children_cpu, cpu_seconds, cold, median, populate, run

PROJECT, SUBJECT, SESSION, RESOURCE = "SIM01", "SIM01_S001", "SIM01_S001_MR1", "RAW"
FILES = 4
# job name -> (fio options, how many of the files it reads)
JOBS = {
    "seq_read": (["--rw=read", "--bs=256k"], 1),
    "seq_read_4files": (["--rw=read", "--bs=256k"], FILES),
    "rand_read_1m": (["--rw=randread", "--bs=1m"], 1),
    "rand_read_4k": (["--rw=randread", "--bs=4k"], 1),
}
TARGETS = ("xnatfs_range_on", "xnatfs_range_off", "local_disk")


def fio_command(paths, options, runtime):
    """One fio run: a job per path (reported together), buffered reads, a time limit."""
    cmd = ["fio", "--output-format=json", "--group_reporting", "--ioengine=sync", "--readonly",
           "--invalidate=1", f"--runtime={runtime}", *options]
    for i, path in enumerate(paths):
        cmd += [f"--name=job{i}", f"--filename={path}"]
    return cmd


def fio(paths, options, runtime, daemon=None):
    """Runs fio: its summary (MiB/s, IOPS, bytes read) and the CPU seconds of fio and of the
    daemon (if any) meanwhile."""
    c0, d0 = children_cpu(), cpu_seconds(daemon) if daemon else 0.0
    out = run(fio_command(paths, options, runtime), capture_output=True, text=True).stdout
    used = (children_cpu() - c0, (cpu_seconds(daemon) - d0) if daemon else 0.0)
    report = json.loads(out[out.index("{"):])
    read = report["jobs"][0]["read"]
    if read["io_bytes"] == 0:
        sys.exit(f"bench: fio read nothing from {paths}: {report['jobs'][0].get('error')}")
    return {"mib_per_s": read["bw_bytes"] / (1 << 20), "iops": read["iops"], "bytes": read["io_bytes"],
            "reader_cpu": used[0], "daemon_cpu": used[1]}



def through_mount(sim, work, mnt, names, options, runtime, stored):
    """A job through a new mount on `sim`, cold; the sim's bytes sent are added to the summary."""
    cache = work / "cache-fio"
    shutil.rmtree(cache, ignore_errors=True)
    m = Mount(sim.url, mnt, cache, work / "xnatfs.log")
    try:
        folder = next(mnt.glob(f"{PROJECT}/{SUBJECT}/{SESSION}/1-*/{RESOURCE}"))
        paths = [folder / n for n in names]
        for p in paths:
            p.stat()
        cold(*stored)
        sim.reset()
        result = fio(paths, options, runtime, m.proc.pid)
        result["sim_bytes_sent"] = sim.stats()["bytes_served"]
    finally:
        m.stop()
        shutil.rmtree(cache, ignore_errors=True)
    if result["sim_bytes_sent"] == 0:
        sys.exit(f"bench: fio: {names} read {result['bytes']} bytes through the mount and the sim sent "
                 "none: the job read a cache, not the mount")
    return result


def scenario(work, opts):
    size = (64 << 20) if opts.quick else (512 << 20)
    runtime = 2 if opts.quick else 5
    # 4 jobs x 3 targets a round, each cold: two runs are enough (quick: one)
    runs = min(opts.runs, 1 if opts.quick else 2)
    root = work / "fio-archive"
    populate(root, "--subjects", "1", "--sessions", "1", "--scans", "1", "--resources", RESOURCE,
             "--files", str(FILES), "--file-size", str(size))
    stored = [p for p in (root / "blobs").rglob("*") if p.is_file()]
    sims = {"xnatfs_range_on": Sim(root, "--range"), "xnatfs_range_off": Sim(root)}
    local = work / "fio-local"
    local.mkdir(exist_ok=True)
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    res = {job: {t: [] for t in TARGETS} for job in JOBS}
    try:
        sim = sims["xnatfs_range_off"]
        eid = sim.api("GET", f"/data/projects/{PROJECT}/experiments?format=json")["ResultSet"]["Result"][0]["ID"]
        listing = sim.api("GET", f"/data/experiments/{eid}/scans/1/resources/{RESOURCE}/files?format=json")
        files = sorted((r["Name"], r["URI"]) for r in listing["ResultSet"]["Result"])
        names = [n for n, _ in files]
        for name, uri in files:
            run(["curl", "-sf", "-H", f"Authorization: {AUTH}", "-o", str(local / name), sim.url + uri])
        for i in range(runs + 1):
            for job, (options, count) in JOBS.items():
                sample = {}
                for target in TARGETS:
                    if target == "local_disk":
                        cold()
                        sample[target] = fio([local / n for n in names[:count]], options, runtime)
                    else:
                        sample[target] = through_mount(sims[target], work, mnt, names[:count], options, runtime, stored)
                print(f"  fio round {i} {job}: " + "; ".join(
                    f"{t} {v['mib_per_s']:.0f} MiB/s {v['iops']:.0f} IOPS"
                    + (f" (sim sent {v['sim_bytes_sent'] >> 20} MiB for {v['bytes'] >> 20} MiB read)" if "sim_bytes_sent" in v else "")
                    for t, v in sample.items()), flush=True)
                if i > 0:
                    for t, v in sample.items():
                        res[job][t].append(v)
    finally:
        for sim in sims.values():
            sim.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(local, ignore_errors=True)

    def summary(samples):
        gib = median([s["bytes"] for s in samples]) / (1 << 30)
        out = {k: median([s[k] for s in samples]) for k in ("mib_per_s", "iops", "bytes")}
        out["cpu_seconds_per_gib"] = {"reader": median([s["reader_cpu"] for s in samples]) / gib,
                                      "daemon": median([s["daemon_cpu"] for s in samples]) / gib}
        if "sim_bytes_sent" in samples[0]:
            out["sim_bytes_sent"] = median([s["sim_bytes_sent"] for s in samples])
        return out
    return {
        "file_size_bytes": size,
        "files": FILES,
        "runtime_s": runtime,
        "runs": runs,
        "jobs": {job: {t: summary(v) for t, v in by.items() if v} for job, by in res.items()},
    }


WHAT = {
    "seq_read": "sequential read of one file, 256 KiB reads",
    "seq_read_4files": f"{FILES} files read at once (one job each), 256 KiB reads",
    "rand_read_1m": "random 1 MiB reads over one file",
    "rand_read_4k": "random 4 KiB reads over one file",
}


def rows(r):
    jobs = r.get("jobs")
    if not jobs:
        return []
    size_mib = r["file_size_bytes"] >> 20
    out = []
    for job, by in jobs.items():
        on, off, disk = by.get("xnatfs_range_on"), by.get("xnatfs_range_off"), by.get("local_disk")
        if not (on and off and disk):
            continue
        iops = job.endswith("4k")

        def cell(v, label):
            c = v["cpu_seconds_per_gib"]
            rate = f"{v['mib_per_s']:.0f} MiB/s" + (f", {v['iops']:.0f} IOPS" if iops else "")
            cpu = f"CPU s/GiB fio {c['reader']:.2f}" + (f" + daemon {c['daemon']:.2f}" if "sim_bytes_sent" in v else "")
            sent = f"; sim sent {v['sim_bytes_sent'] / (1 << 20):.0f} MiB for {v['bytes'] / (1 << 20):.0f} MiB read" if "sim_bytes_sent" in v else ""
            return f"{label} {rate} ({cpu}{sent})"
        out.append(
            f"| fio {job}: {WHAT.get(job, job)}, {size_mib} MiB files, cold, ≤ {r['runtime_s']} s | "
            f"{cell(on, 'Range on')}; {cell(off, 'Range off')} | {cell(disk, 'local disk')} | "
            f"{on['mib_per_s'] / disk['mib_per_s']:.2f}× (Range on), {off['mib_per_s'] / disk['mib_per_s']:.2f}× (off) local disk | — |")
    return out


def notes(r):
    if not r.get("jobs"):
        return []
    return [textwrap.fill(
        f"fio: the jobs of mountpoint-s3's scripts/fio (and hf-mount's fio bench) on files of "
        f"{r['file_size_bytes'] >> 20} MiB: `fio --ioengine=sync --readonly --invalidate=1 "
        f"--runtime={r['runtime_s']} --group_reporting`, buffered; a job ends at the time limit or "
        "when it has read each block of its file(s) once. MiB/s and IOPS are fio's (its JSON "
        f"output). {r['runs']} run(s) after a warm-up round; jobs and targets interleaved. Before each "
        "job and target the page cache is dropped (the sim's stored files read back in) and each "
        "xnatfs job gets a new mount with an empty cache folder; \"sim sent\" is what the sim sent "
        "during the job (a job through the mount for which it sent nothing stops the bench). The "
        "sims have no added latency. CPU seconds per GiB read: fio's (rusage) and the mount's "
        "daemon's (/proc/PID/stat), apart.", 100)]
