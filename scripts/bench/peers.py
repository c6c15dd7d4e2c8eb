"""The peers the read scenario is held against, each a process started here and stopped by PID:
nginx serving a folder (the plain HTTP limit, and the backend of the generic FUSE peer), an
`rclone mount :http:` over that nginx, and the FUSE ceiling (examples/fuse_ceiling.rs, a mount
that answers every read with zeros from memory)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import BIN


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, ready, proc, timeout=30):
    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"bench: {what} did not come up")
        time.sleep(0.02)


def stop(proc, mnt=None):
    if mnt is not None and os.path.ismount(mnt):
        subprocess.run(["umount", str(mnt)], check=False)
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Nginx:
    """nginx in the foreground serving `root` on a loopback port, as Debian's nginx-light does
    with `root …; autoindex on;` (Range and sendfile on)."""

    def __init__(self, work, root):
        prefix = work / "nginx"
        prefix.mkdir(exist_ok=True)
        self.port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(f"""
user root;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        root {root};
        autoindex on;
    }}
}}
""")
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def answers():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False
        try:
            wait_until("nginx", answers, self.proc)
        except RuntimeError:
            self.stop()
            sys.exit(f"bench: nginx did not start: {self.proc.stderr.read().decode(errors='replace')}")

    def stop(self):
        stop(self.proc)


class PeerMount:
    """A FUSE mount served by `command`, up once `mnt` is a mount point; unmounted and stopped by
    PID."""

    def __init__(self, what, command, mnt):
        self.mnt = mnt
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(what, lambda: os.path.ismount(mnt), self.proc)
        except RuntimeError as e:
            self.stop()
            sys.exit(str(e))

    def stop(self):
        stop(self.proc, self.mnt)


class RcloneMount(PeerMount):
    """`rclone mount :http:` of an HTTP folder, read-only, without a VFS cache (reads stream)."""

    def __init__(self, url, mnt):
        super().__init__("rclone mount", ["rclone", "mount", "--http-url", url + "/", ":http:", str(mnt),
                                          "--read-only", "--vfs-cache-mode", "off"], mnt)


class CeilingMount(PeerMount):
    """The FUSE ceiling: `zeros.bin` of `size` bytes, answered from memory."""

    def __init__(self, mnt, size):
        self.file = Path(mnt) / "zeros.bin"
        super().__init__("the FUSE ceiling mount",
                         [str(BIN / "examples" / "fuse_ceiling"), str(mnt), str(size)], mnt)


XNATPY_DOWNLOAD = """
import sys, time, xnat
url, user, password, uri, size = sys.argv[1:6]


class Sink:
    \"\"\"Counts the bytes xnatpy writes, as /dev/null would take them.\"\"\"
    n = 0

    def write(self, b):
        self.n += len(b)


with xnat.connect(url, user=user, password=password) as session:
    sink = Sink()
    start = time.perf_counter()
    session.download_stream(uri, sink, verbose=False)
    took = time.perf_counter() - start
if sink.n != int(size):
    sys.exit(f"xnatpy downloaded {sink.n} bytes, not {size}")
print(took)
"""


def xnatpy_download(venv_python, work, url, user, password, uri, size):
    """Seconds xnatpy takes to download `uri` (after its login), as `XNATFile.download` does,
    into a sink that counts the bytes (checked against `size`)."""
    script = work / "xnatpy_download.py"
    script.write_text(XNATPY_DOWNLOAD)
    out = subprocess.run([venv_python, str(script), url, user, password, uri, str(size)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])
