"""The chaos soak: 16 readers at random offsets and 4 writers on one read-write mount, while the
faults of the sim change every few seconds (5-10 % of requests answered 5xx, connections cut
mid-body, stalls up to 150 s, windows where every upload fails) and the daemon is killed with
SIGKILL now and then (mid-write, mid-close) and mounted again on the same cache and spool.

Every byte a reader gets is compared with the file as the server holds it (fetched over REST
before the faults start); every file a writer wrote is looked for on the server at the end
(after the faults are cleared and the spool drained): a close that returned 0, or an upload that
failed and waits in the spool, must be there with the bytes written, once; a write cut by a kill
may be missing but never partial. Prints the figures (bytes verified, wrong bytes, EIO and
timeouts, max latency of a read, uploads lost, duplicated or partial, peak RSS of the daemon)
and exits non-zero if a byte was wrong, an upload was lost or partial, or a read waited longer
than the read deadline.

Run by scripts/soak.sh (which builds the binaries): `--minutes`, `--range on|off|both`.
"""

import argparse
import base64
import errno
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import xnat_sim  # noqa: E402

USER, PASSWORD = "soak", "soak-pw"
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
# docs/CONFIGURATION.md: --read-timeout (300 s by default) bounds how long one read waits for its bytes.
READ_DEADLINE = 300.0
# Errors a read or a write may meet while the daemon is killed and mounted again.
RESTART_ERRNOS = {errno.ENOTCONN, errno.ENOENT, errno.ECONNABORTED, errno.EBADF}


class Figures:
    def __init__(self):
        self.lock = threading.Lock()
        self.reads = 0
        self.bytes_verified = 0
        self.wrong_bytes = 0
        self.wrong_reads = []
        self.eio = 0
        self.timeouts = 0
        self.other_errors = {}
        self.restart_errors = 0
        self.max_latency = 0.0
        self.writes_closed = 0
        self.writes_failed_close = 0
        self.writes_cut = 0
        self.kills = 0
        self.peak_rss_mib = 0.0

    def error(self, e, restarted):
        with self.lock:
            if restarted or e.errno in RESTART_ERRNOS:
                self.restart_errors += 1
            elif e.errno == errno.EIO:
                self.eio += 1
            elif e.errno == errno.ETIMEDOUT:
                self.timeouts += 1
            else:
                name = errno.errorcode.get(e.errno, str(e.errno))
                self.other_errors[name] = self.other_errors.get(name, 0) + 1


class Daemon:
    """The xnatfs daemon in the foreground, killed with SIGKILL by `kill()`, stopped by `stop()`;
    `generation` counts the mounts, so an operation can tell that a restart happened under it."""

    def __init__(self, binary, url, mnt, cache, log, figures):
        self.binary, self.url, self.mnt, self.cache, self.log = binary, url, mnt, cache, log
        self.figures = figures
        self.generation = 0
        self.proc = None
        self.up = threading.Event()
        self.start()

    def start(self):
        env = dict(os.environ, XNAT_USER=USER, XNAT_PASS=PASSWORD)
        self.proc = subprocess.Popen(
            [self.binary, "mount", self.url, str(self.mnt), "-f", "--cache-dir", str(self.cache),
             "--cache-size", "64M", "--spool-dir", str(self.cache.parent / "spool"),
             "--log-file", str(self.log), "--log-level", "info"],
            env=env, stdin=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                sys.exit(f"soak: xnatfs did not mount; see {self.log}")
            time.sleep(0.05)
        self.generation += 1
        self.up.set()

    def sample_rss(self):
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    mib = int(line.split()[1]) / 1024
                    with self.figures.lock:
                        self.figures.peak_rss_mib = max(self.figures.peak_rss_mib, mib)
        except OSError:
            pass

    def kill(self):
        """SIGKILL, detach the dead mount, mount again."""
        self.sample_rss()
        self.up.clear()
        self.proc.kill()
        self.proc.wait()
        subprocess.run(["umount", "-l", str(self.mnt)], check=False, stderr=subprocess.DEVNULL)
        self.figures.kills += 1
        self.start()

    def stop(self):
        if self.proc is None:
            return
        self.sample_rss()
        if os.path.ismount(self.mnt):
            subprocess.run(["umount", str(self.mnt)], check=False)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            subprocess.run(["umount", "-l", str(self.mnt)], check=False, stderr=subprocess.DEVNULL)
        self.proc = None


def rest(url, path, method="GET"):
    req = urllib.request.Request(url + path, method=method, headers={"Authorization": AUTH})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read()


def admin(url, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, method="POST" if data else "GET", data=data,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def reader(mnt, files, daemon, figures, stop, rng):
    while not stop.is_set():
        daemon.up.wait()
        generation = daemon.generation
        rel, ref = rng.choice(files)
        offset = rng.randrange(len(ref))
        length = min(rng.choice([4096, 65536, 1 << 20, 4 << 20]), len(ref) - offset)
        start = time.monotonic()
        try:
            fd = os.open(mnt / rel, os.O_RDONLY)
            try:
                # not from the page cache: every read goes to the daemon
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                got = b""
                while len(got) < length:
                    chunk = os.pread(fd, length - len(got), offset + len(got))
                    if not chunk:
                        break
                    got += chunk
            finally:
                os.close(fd)
        except OSError as e:
            figures.error(e, daemon.generation != generation or not daemon.up.is_set())
            continue
        latency = time.monotonic() - start
        want = ref[offset:offset + length]
        with figures.lock:
            figures.reads += 1
            figures.max_latency = max(figures.max_latency, latency)
            if got == want:
                figures.bytes_verified += len(got)
            else:
                wrong = sum(a != b for a, b in zip(got, want)) + abs(len(got) - len(want))
                figures.wrong_bytes += wrong
                figures.bytes_verified += len(got) - wrong
                figures.wrong_reads.append(f"{rel} @{offset}+{length}: got {len(got)} bytes, {wrong} wrong")


def writer(index, folder, daemon, figures, stop, rng, written):
    n = 0
    while not stop.is_set():
        daemon.up.wait()
        generation = daemon.generation
        n += 1
        name = f"w{index}-{n:05d}.bin"
        size = rng.choice([1, 4096, 100_000, 1 << 20, 3 << 20, 9 << 20])
        data = rng.randbytes(size)
        md5 = hashlib.md5(data).hexdigest()
        outcome = "closed"
        try:
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                done = 0
                while done < size:
                    done += os.write(fd, view[done:done + (1 << 20)])
            except OSError:
                os.close(fd)
                raise
            try:
                os.close(fd)
            except OSError as e:
                # the upload failed: the file waits in the spool and must still arrive
                outcome = "cut" if (daemon.generation != generation or e.errno in RESTART_ERRNOS) else "spooled"
        except OSError as e:
            restarted = daemon.generation != generation or e.errno in RESTART_ERRNOS
            outcome = "cut"
            if not restarted:
                figures.error(e, False)
        with figures.lock:
            if outcome == "closed":
                figures.writes_closed += 1
            elif outcome == "spooled":
                figures.writes_failed_close += 1
            else:
                figures.writes_cut += 1
        written.append((name, size, md5, outcome))


def chaos(url, rng, stop, log):
    """A new fault every 3-8 s."""
    while not stop.is_set():
        kind = rng.choice(["calm", "5xx", "reset", "stall", "uploads", "mixed"])
        faults = {"fail_rate": 0.0, "reset_after_bytes": None, "stall_after_bytes": None,
                  "stall_ms": None, "fail_uploads": None}
        if kind in ("5xx", "mixed"):
            faults["fail_rate"] = rng.uniform(0.05, 0.10)
            faults["fail_status"] = rng.choice([500, 502, 503])
        if kind in ("reset", "mixed"):
            faults["reset_after_bytes"] = rng.randrange(64 << 10, 8 << 20)
        if kind == "stall":
            faults["stall_after_bytes"] = rng.randrange(0, 4 << 20)
            faults["stall_ms"] = rng.choice([500, 2_000, 10_000, 30_000, 150_000])
        if kind == "uploads":
            faults["fail_uploads"] = rng.choice([500, 503])
        admin(url, "/__sim/faults", faults)
        log.append(kind)
        stop.wait(rng.uniform(3, 8))
    admin(url, "/__sim/faults", {"fail_rate": 0.0, "reset_after_bytes": None, "stall_after_bytes": None,
                                 "stall_ms": None, "fail_uploads": None})


def killer(daemon, stop, rng, every):
    while not stop.wait(rng.uniform(every * 0.5, every * 1.5)):
        daemon.kill()


def reference_files(url, mnt):
    """Every populated file under the mount, with its bytes as the server holds them."""
    files = []
    for dirpath, dirnames, filenames in os.walk(mnt):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            uri = os.getxattr(path, "user.xnat.uri").decode()
            files.append((path.relative_to(mnt), rest(url, uri)))
    return files


def check_uploads(url, folder_uri, written, mnt, binary):
    """After the faults: every upload that must arrive is on the server, once, with its bytes."""
    # Files a kill cut while they were written stay in the spool as `writing` (never uploaded
    # without a close: docs/SEMANTICS.md); every other record must drain.
    deadline = time.time() + 300
    while True:
        lines = subprocess.run([binary, "status", str(mnt)], capture_output=True, text=True).stdout.splitlines()
        waiting = [l for l in lines if l.split() and l.split()[0] in ("pending", "failed")]
        if not waiting:
            break
        if time.time() > deadline:
            print("soak: uploads still waiting after 300 s:\n  " + "\n  ".join(waiting))
            break
        time.sleep(2)
    rows = json.loads(rest(url, folder_uri + "/files?format=json"))["ResultSet"]["Result"]
    names = [r["Name"] for r in rows]
    on_server = {r["Name"]: r for r in rows}
    lost, partial, duplicated, checked = [], [], [], 0
    for name, size, md5, outcome in written:
        if names.count(name) > 1:
            duplicated.append(name)
        row = on_server.get(name)
        if row is None:
            if outcome != "cut":
                lost.append(f"{name} ({outcome})")
            continue
        body = rest(url, row["URI"])
        checked += 1
        if hashlib.md5(body).hexdigest() != md5 or len(body) != size:
            partial.append(f"{name}: {len(body)} bytes of {size} ({outcome})")
    return lost, partial, duplicated, checked


def soak(args, binary, sim_binary, range_on):
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="xnatfs-soak-"))
    root, mnt, cache = work / "archive", work / "mnt", work / "cache"
    mnt.mkdir()
    subprocess.run([sim_binary, "populate", "--root", str(root), "--user", f"{USER}:{PASSWORD}",
                    "--member", USER, "--subjects", "2", "--scans", "2", "--files", "2",
                    "--file-size", str(args.file_size)], check=True, capture_output=True)
    flags = ["--range"] if range_on else []
    sim = xnat_sim.Sim(sim_binary, root, *flags, users=[(USER, PASSWORD)])
    figures = Figures()
    daemon = None
    stop = threading.Event()
    threads = []
    try:
        daemon = Daemon(binary, sim.url, mnt, cache, work / "xnatfs.log", figures)
        files = reference_files(sim.url, mnt)
        first = files[0][0]
        scan = mnt / first.parents[1]
        folder = scan / "SOAK"
        folder.mkdir()
        folder_uri = os.getxattr(scan, "user.xnat.uri").decode() + "/resources/SOAK"
        print(f"soak: Range {'on' if range_on else 'off'}, {len(files)} files "
              f"({sum(len(b) for _, b in files) >> 20} MiB), {args.readers} readers, {args.writers} writers, "
              f"{args.minutes} min", flush=True)
        written, kinds = [], []
        for i in range(args.readers):
            threads.append(threading.Thread(target=reader, daemon=True, args=(
                mnt, files, daemon, figures, stop, random.Random(rng.random()))))
        for i in range(args.writers):
            threads.append(threading.Thread(target=writer, daemon=True, args=(
                i, folder, daemon, figures, stop, random.Random(rng.random()), written)))
        threads.append(threading.Thread(target=chaos, daemon=True, args=(
            sim.url, random.Random(rng.random()), stop, kinds)))
        threads.append(threading.Thread(target=killer, daemon=True, args=(
            daemon, stop, random.Random(rng.random()), args.kill_every)))
        for t in threads:
            t.start()
        end = time.time() + args.minutes * 60
        while time.time() < end:
            time.sleep(min(5, max(0, end - time.time())))
            daemon.sample_rss()
        stop.set()
        daemon.up.set()
        for t in threads:
            # a reader in a stall waits at most the read deadline
            t.join(timeout=READ_DEADLINE + 60)
        stuck = sum(t.is_alive() for t in threads)
        lost, partial, duplicated, checked = check_uploads(sim.url, folder_uri, written, mnt, binary)
        daemon.sample_rss()
    finally:
        stop.set()
        if daemon is not None:
            daemon.stop()
        sim.stop()
    f = figures
    report = {
        "range": range_on,
        "readers": args.readers,
        "writers": args.writers,
        "minutes": args.minutes,
        "reads": f.reads,
        "bytes_verified": f.bytes_verified,
        "wrong_bytes": f.wrong_bytes,
        "eio": f.eio,
        "etimedout": f.timeouts,
        "other_errors": f.other_errors,
        "errors_across_a_kill": f.restart_errors,
        "max_read_latency_s": round(f.max_latency, 1),
        "uploads_closed": f.writes_closed,
        "uploads_failed_at_close_then_spooled": f.writes_failed_close,
        "writes_cut_by_a_kill": f.writes_cut,
        "uploads_checked_on_server": checked,
        "uploads_lost": len(lost),
        "uploads_partial": len(partial),
        "uploads_duplicated": len(duplicated),
        "kills": f.kills,
        "peak_rss_mib": round(f.peak_rss_mib, 1),
        "threads_stuck": stuck,
        "fault_windows": len(kinds),
    }
    print(json.dumps(report, indent=1), flush=True)
    for line in f.wrong_reads[:10] + lost[:10] + partial[:10] + duplicated[:10]:
        print("  " + line)
    failed = (f.wrong_bytes or lost or partial or duplicated or stuck
              or f.max_latency > READ_DEADLINE + 30 or f.reads == 0)
    if failed:
        print(f"soak: FAILED; the mount's log and the archive are in {work}")
    elif args.keep:
        print(f"soak: passed; the mount's log and the archive are kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return report, not failed


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", required=True, help="folder with the xnatfs and xnat-sim binaries")
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--range", choices=["on", "off", "both"], default="both")
    p.add_argument("--readers", type=int, default=16)
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--kill-every", type=float, default=60, help="seconds between kills, on average")
    p.add_argument("--file-size", type=int, default=24 << 20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--keep", action="store_true", help="keep the work folder (the archive, the mount's log)")
    args = p.parse_args()
    binary, sim_binary = str(Path(args.bin) / "xnatfs"), str(Path(args.bin) / "xnat-sim")
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.range]
    reports, ok = [], True
    for range_on in modes:
        report, passed = soak(args, binary, sim_binary, range_on)
        reports.append(report)
        ok &= passed
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1) + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
