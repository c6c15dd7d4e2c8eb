#!/usr/bin/env python3
"""xnatfs benchmarks: each scenario against its baselines in the same run, interleaved.

Every scenario runs its contenders in turn, run after run (after one warm-up round), and reports
medians and ratios; nothing here asserts a time. Each scenario is a module beside this one (its
docstring says what it measures) with `scenario(work, opts)` returning a JSON-able result,
`rows(result)` giving its lines of the table, and optionally `notes(result)` and `RSS_WHILE`
(the daemon's peak RSS is reported as B6):

  read    B0, B1, B2, B7: a large file cold through the mount, Range off and on, and warm from
          the disk cache, against curl, xnatpy, rclone over nginx and local disk; the FUSE
          ceiling; the sim against nginx.
  many    B8: 8 readers at once through one mount, 8 different files and then one same file,
          cold, Range off, against 8 `curl`s at once: time, CPU per GiB, downloads of the
          shared file; every reader's bytes checked by MD5 in the warm-up round.
  fio     the read jobs mountpoint-s3 and hf-mount publish (sequential, 4 files at once, random
          1 MiB and 4 KiB; each with a time limit) with fio, against xnatfs with Range on and off
          and local disk, cold: MiB/s, IOPS, bytes the sim sent, CPU per GiB.
  series  B3: a DICOM series (200 files x 512 KiB, 20 ms latency) read file by file, cold,
          against a curl loop, xnatpy's `download_dir` (one zip) and a pyxnat loop.
  ttfb    B9: `head -c 352` of 100 files of 8 MiB one after the other, cold, 20 ms latency, the
          sim with and without Range, against a keep-alive loop asking for the same bytes: time,
          requests and bytes the sim sent.
  walk    B4: `find` over a project against a pyxnat walk, 20 ms latency: requests and time; and
          at scale (1,000 subjects, xnatfs only): the first `ls` of the project and a `find` of
          100 subjects' folders, requests per session.
  upload  B5: `cp` into the mount against `curl -T` and local `cp`.

Beside its time every scenario reports the CPU seconds (user + system) of each contender, the
reading process and the mount's daemon apart, per GiB where there are bytes. The big scenarios
run fewer times than `--runs`: many at most 3, fio at most 2 (quick 1), walk's big project 2
(quick 1), so the whole run stays within about 40 minutes (quick: about 5).

Writes docs/BENCHMARKS.md and docs/benchmarks.json. `--only upload` (or any comma-separated list)
runs some scenarios and keeps the others' results from the JSON already there, each scenario
with the command and date that made it. Stdlib only; the Python baselines run in the venv that
scripts/test.sh makes.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fio  # noqa: E402
import many  # noqa: E402
import read  # noqa: E402
import series  # noqa: E402
import ttfb  # noqa: E402
import upload  # noqa: E402
import walk  # noqa: E402
from common import REPO, machine  # noqa: E402

# In the order they run and are reported.
SCENARIOS = {"read": read, "many": many, "fio": fio, "series": series, "ttfb": ttfb, "walk": walk, "upload": upload}
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
    for name in present:
        lines += SCENARIOS[name].rows(results[name])
    for name in present:
        what = getattr(SCENARIOS[name], "RSS_WHILE", None)
        if what and results[name].get("peak_rss_mib") is not None:
            lines.append(f"| B6 daemon peak RSS while {what} | {results[name]['peak_rss_mib']:.0f} MiB | — | — | ≤ 150 MiB |")
    lines.append("")
    for name in present:
        notes = getattr(SCENARIOS[name], "notes", None)
        for note in notes(results[name]) if notes else []:
            lines += [note, ""]
    missing = [name for name in SCENARIOS if name not in present]
    if missing:
        lines += [textwrap.fill(f"Not measured yet: {', '.join(missing)}.", 100), ""]
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
    ap.add_argument("--walk-scale-subjects", type=int,
                    help="subjects in the walk's big project, walked by xnatfs only (default 1000, quick 100)")
    ap.add_argument("--report", action="store_true",
                    help="run nothing: rewrite BENCHMARKS.md from the benchmarks.json in --out")
    args = ap.parse_args()
    out = Path(args.out)
    if args.report:
        report(previous_results(out / "benchmarks.json"), out / "BENCHMARKS.md", out / "benchmarks.json")
        return
    only = [n.strip() for n in args.only.split(",")] if args.only else list(SCENARIOS)
    unknown = [n for n in only if n not in SCENARIOS]
    if unknown or not only:
        ap.error(f"--only: unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    if os.geteuid() != 0:
        sys.exit("bench: run as root (it mounts FUSE and drops the page cache)")
    opts = argparse.Namespace(
        quick=args.quick,
        venv_python=args.venv_python,
        size=args.size or ((256 << 20) if args.quick else (1 << 30)),
        runs=args.runs or (2 if args.quick else 5),
        walk_subjects=args.walk_subjects or (10 if args.quick else 100),
        walk_scale_subjects=args.walk_scale_subjects or (100 if args.quick else 1000),
    )
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
            start = time.perf_counter()
            results[name] = {**SCENARIOS[name].scenario(work, opts), **provenance}
            print(f"bench: {name} took {time.perf_counter() - start:.0f} s", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        report(results, out / "BENCHMARKS.md", out / "benchmarks.json")
    finally:
        mnt = work / "mnt"
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
