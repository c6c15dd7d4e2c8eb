"""What every benchmark scenario shares: the sim and mount processes (stopped by PID), timing,
the page-cache drop, the release binaries, the bench user."""

import base64
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "lib"))
import xnat_sim  # noqa: E402  (scripts/lib: the start and stop the client suite uses too)
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


def cold(*server_files):
    """The page cache dropped, then the servers' files (the sim's stored files, nginx's) read
    back in: "cold" is about the client side; every server answers from memory, as a busy one
    would."""
    drop_caches()
    for f in server_files:
        run(["cat", str(f)], stdout=subprocess.DEVNULL)


def timed(cmd, **kw):
    start = time.perf_counter()
    run(cmd, **kw)
    return time.perf_counter() - start


def cpu_seconds(pid):
    """User + system CPU time a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    """User + system CPU time of this process's finished children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def settled_cpu(pid, quiet=0.3, limit=30.0):
    """The CPU seconds the live process `pid` has used once it has gone quiet (used under 1%
    of a core for `quiet` seconds, or after `limit` seconds): work a read leaves behind (the
    mount's MD5 check catching up after `cat` returned) is counted with the read."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < 0.01 * quiet:
            return now
        last = now
    return last


def timed_cpu(cmd, server=None, **kw):
    """Run `cmd`: its seconds, the CPU seconds it used (the reader: `cat`, `curl`), and those the
    live process `server` (a mount's daemon) used meanwhile and until it went quiet, apart."""
    c0 = children_cpu()
    s0 = cpu_seconds(server) if server else 0.0
    seconds = timed(cmd, **kw)
    return seconds, children_cpu() - c0, (settled_cpu(server) - s0) if server else 0.0


class Sim(xnat_sim.Sim):
    """An xnat-sim server with the bench user (`xnat-sim start`, stopped by PID with `stop()`),
    and the calls the scenarios make to it."""

    def __init__(self, root, *flags):
        try:
            super().__init__(BIN / "xnat-sim", root, *flags, users=[(USER, PASSWORD)])
        except xnat_sim.SimError as e:
            sys.exit(f"bench: xnat-sim did not start: {e}")

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


class Mount:
    """An xnatfs mount in the foreground mode, unmounted and stopped by PID."""

    def __init__(self, url, mnt, cache, log, *flags):
        # The default spool (for a scenario that gives none) in the run's folder, not the home.
        env = dict(os.environ, XNAT_USER=USER, XNAT_PASS=PASSWORD,
                   XDG_DATA_HOME=str(Path(cache).parent / "xdg-data"))
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
               "--owner", USER, *flags], capture_output=True, text=True).stdout
    return out


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem = next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    return f"{os.cpu_count()} cores ({cpu}), {int(mem) // (1 << 20)} GiB RAM, Linux {platform.release()}"


