"""An xnat-sim server in the background, for Python callers: the client suite
(tests/clients/conftest.py) and the benchmarks (scripts/bench/common.py).

The binary does the work (`xnat-sim start` waits until the server listens and prints its URL;
`xnat-sim stop` ends it by PID: xnat-sim/README.md), so the shell scripts and these callers start
and stop a server in one way. Stdlib only: the benchmarks run outside the venv.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path


class SimError(RuntimeError):
    """`xnat-sim start` or `stop` failed; the message is xnat-sim's own (for a server that did not
    come up, with the last lines it wrote)."""


class Sim:
    """One xnat-sim server on a free loopback port: `url` and `pid` once constructed, `stop()` to
    end it. `flags` are `serve` flags; `users` are (name, password) pairs. The PID file and the
    server's log (`log`) live in a temp folder of their own, removed by `stop()` (and kept when
    the server did not start, for its log)."""

    def __init__(self, binary, root, *flags, users=()):
        self.binary = str(binary)
        self.workdir = Path(tempfile.mkdtemp(prefix="xnat-sim-"))
        self.pid_file = self.workdir / "sim.pid"
        self.log = self.workdir / "sim.log"
        command = [self.binary, "start", "--pid-file", str(self.pid_file), "--log", str(self.log),
                   "--root", str(root)]
        for name, password in users:
            command += ["--user", f"{name}:{password}"]
        started = subprocess.run([*command, *map(str, flags)], stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True)
        if started.returncode != 0:
            # start left no server behind; the folder stays for the log its message names
            self.workdir = None
            raise SimError(started.stderr.strip() or f"xnat-sim start exited with {started.returncode}")
        self.url = started.stdout.strip()
        self.pid = int(self.pid_file.read_text())

    def stop(self):
        """Stop the server and wait until it is gone (SIGTERM, SIGKILL after 10 s). A second call
        does nothing."""
        if self.workdir is None:
            return
        stopped = subprocess.run([self.binary, "stop", "--pid-file", str(self.pid_file)],
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if stopped.returncode != 0:
            raise SimError(stopped.stderr.strip())
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None
