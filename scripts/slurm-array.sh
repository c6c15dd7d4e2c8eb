#!/usr/bin/env bash
# A real SLURM job array on xnatfs (issue 14): a one-node cluster (Debian's slurm-wlm and
# munge, started here and stopped at the end), an xnat-sim, and an `sbatch --array=1-8` job
# whose tasks each mount xnatfs as a node would (the job script of docs/CLUSTER.md), run a
# tool on one subject's images and on a template every task reads, and write their result back
# through the mount.
#
# The array runs twice: with the mounts sharing one --shared-cache folder and a cluster-wide
# budget of 4 connections, then with each mount on its own cache. After each run the script
# checks, from the server's side (the sim's REST API and counters), that every task's result is
# on the server with the right content; for the shared run also that every input was downloaded
# once and that the server never sent more than 4 downloads at once. It prints, for both runs,
# the downloads, the peaks of downloads and of TCP connections at once and the array's time,
# and writes them to
# $XNATFS_SLURM_RESULTS (default target/slurm-array.json).
#
# Needs root (slurmd, munged and the mounts); builds the release binaries (a no-op when built).
# Usage: scripts/slurm-array.sh [--keep]   (--keep leaves the work folder for a look)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
TASKS=8
BUDGET=4
RESULTS="${XNATFS_SLURM_RESULTS:-$ROOT/target/slurm-array.json}"

die() { echo "slurm-array: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (slurmd, munged and FUSE mounts)"
[ -e /dev/fuse ] || die "needs /dev/fuse"

missing=()
for pkg in slurm-wlm munge fuse3 curl python3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null || die "cannot install ${missing[*]}"
fi

cargo build --release --workspace --bins -q || die "build failed"

XNATFS="$ROOT/target/release/xnatfs"
SIM="$ROOT/target/release/xnat-sim"

W="$(mktemp -d /tmp/xnatfs-slurm.XXXXXX)"
chmod 755 "$W"
PIDS=()
cleanup() {
    local status=$?
    set +e
    if [ -n "${SLURM_CONF:-}" ]; then
        scancel --quiet --full -u root 2>/dev/null
    fi
    for m in "$W"/mnt/*/*; do
        mountpoint -q "$m" 2>/dev/null && { umount "$m" 2>/dev/null || umount -l "$m"; }
    done
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    [ -f "$W/sim.pid" ] && "$SIM" stop --pid-file "$W/sim.pid" >/dev/null 2>&1
    # Daemons of mounts a failed task left.
    pkill -f "$W/mnt" 2>/dev/null
    if [ $status -ne 0 ]; then
        echo "---- slurm-array failed; logs ----" >&2
        tail -n 20 "$W"/log/*.log "$W"/out/*/*.out "$W"/mount-logs/*/*.log 2>/dev/null >&2
    fi
    if [ $KEEP -eq 0 ]; then rm -rf "$W"; else echo "work folder kept: $W"; fi
    exit $status
}
trap cleanup EXIT INT TERM

mkdir -p "$W"/{log,state,spool,out,mnt,mount-logs,munge}
HOST="$(hostname)"

# --- munge, with its own key and socket ---
dd if=/dev/urandom of="$W/munge/munge.key" bs=1024 count=1 status=none
chmod 0700 "$W/munge"
chmod 0400 "$W/munge/munge.key"
munged --force --foreground --socket="$W/munge/munge.sock" --key-file="$W/munge/munge.key" \
    --log-file="$W/log/munged.log" --pid-file="$W/munge/munged.pid" \
    --seed-file="$W/munge/munged.seed" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$W/munge/munge.sock" ] && break; sleep 0.1; done
[ -S "$W/munge/munge.sock" ] || die "munged did not start: $(cat "$W/log/munged.log" 2>/dev/null)"

# --- a one-node SLURM cluster ---
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
cat >"$W/slurm.conf" <<EOF
ClusterName=xnatfs-test
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$W/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=5
NodeName=$HOST CPUs=$TASKS RealMemory=4000 State=UNKNOWN
PartitionName=batch Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$W/slurm.conf"
slurmctld -D -i -f "$SLURM_CONF" >"$W/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" >"$W/log/slurmd.out" 2>&1 &
PIDS+=($!)
ready=0
for _ in $(seq 150); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then ready=1; break; fi
    sleep 0.2
done
[ $ready -eq 1 ] || die "the SLURM node did not come up: $(sinfo 2>&1; tail -5 "$W/log/slurmctld.log" "$W/log/slurmd.log" 2>&1)"
echo "slurm: one node ($HOST), $TASKS CPUs, up"

# --- the server: 8 subjects, and a template every task reads ---
"$SIM" populate --root "$W/sim" --subjects $TASKS --sessions 1 --scans 2 --resources NIFTI \
    --files 2 --file-size 4000000 --big-file $((48 << 20)) \
    --user alice:secret --owner alice >/dev/null
URL="$("$SIM" start --root "$W/sim" --pid-file "$W/sim.pid" --log "$W/log/sim.log" --latency-ms 5)"
echo "sim: $URL"
# The job's credentials: a pyxnat-style config file, readable by its owner only (never argv
# or the environment).
umask 077
printf '{"server": "%s", "user": "alice", "password": "secret"}\n' "$URL" >"$W/xnat.cfg"
umask 022

sim_stats() { curl -fsS "$URL/__sim/stats"; }

# --- the job script, as docs/CLUSTER.md gives it ---
cat >"$W/job.sh" <<'EOF'
#!/bin/bash
# One task: mount xnatfs (as a node's job would), run a tool on one subject's images and on the
# project's template, and put the result back on the server through the mount.
set -euo pipefail
i=$SLURM_ARRAY_TASK_ID
date +%s.%N >"$RUN_DIR/started.$i"
MNT="$RUN_DIR/mnt/$i"
mkdir -p "$MNT"
"$XNATFS" mount --config "$XNAT_CONFIG" "$MNT" \
    --cache-dir "$RUN_DIR/cache/$i" --spool-dir "$RUN_DIR/spool/$i" \
    --log-file "$RUN_DIR/logs/$i.log" $XNATFS_CLUSTER_FLAGS
trap 'cd / && umount "$MNT"' EXIT
SUBJECT=$(printf 'SIM01_S%03d' "$i")
cd "$MNT/SIM01"
EXPERIMENT=$(ls "$SUBJECT" | head -n 1)
TEMPLATE=$(ls -d SIM01_S001/*/*/BIG/big.bin | head -n 1)
# The tool: checksums of the decompressed images and of the template.
{
    for f in $(ls "$SUBJECT/$EXPERIMENT"/*/NIFTI/*.nii.gz | sort); do
        echo "$(gzip -dc "$f" | md5sum | cut -d' ' -f1)  $f"
    done
    md5sum "$TEMPLATE"
} >"$RUN_DIR/result.$i"
mkdir -p "$SUBJECT/$EXPERIMENT/.resources/RESULTS"
cp "$RUN_DIR/result.$i" "$SUBJECT/$EXPERIMENT/.resources/RESULTS/checksums.txt"
cd / && umount "$MNT" && trap - EXIT
date +%s.%N >"$RUN_DIR/ended.$i"
EOF
chmod 755 "$W/job.sh"

# Checks a run from the server's side; prints one JSON line of figures.
check_run() {
    local name="$1" seconds="$2" shared="$3"
    W="$W" URL="$URL" TASKS=$TASKS NAME="$name" SECONDS_TAKEN="$seconds" SHARED="$shared" \
        BUDGET=$BUDGET python3 - <<'PY'
import base64, functools, gzip, hashlib, json, os, sys, urllib.request
url, w, tasks = os.environ["URL"], os.environ["W"], int(os.environ["TASKS"])
auth = "Basic " + base64.b64encode(b"alice:secret").decode()
def get(path):
    req = urllib.request.Request(url + path, headers={"Authorization": auth})
    with urllib.request.urlopen(req) as r:
        return r.read()
@functools.cache
def experiment_of(subject):
    rows = json.loads(get(f"/data/projects/SIM01/subjects/{subject}/experiments?format=json"))["ResultSet"]["Result"]
    return rows[0]["ID"]
stats = json.loads(get("/__sim/stats"))
problems = []
for i in range(1, tasks + 1):
    exp = experiment_of("SIM01_S%03d" % i)
    try:
        result = get(f"/data/experiments/{exp}/resources/RESULTS/files/checksums.txt").decode()
    except Exception as e:
        problems.append(f"task {i}: no result on the server ({e})")
        continue
    with open(os.path.join(w, "run", os.environ["NAME"], f"result.{i}")) as f:
        local = f.read()
    if result != local:
        problems.append(f"task {i}: the server's result differs from what the task wrote")
    # Every checksum in it is the server's own bytes.
    for line in result.splitlines():
        digest, path = line.split("  ", 1)
        parts = path.split("/")
        data = get("/data/experiments/%s/scans/%s/resources/%s/files/%s" % (
            experiment_of(parts[0]), parts[2].split("-")[0], parts[3], "/".join(parts[4:])))
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        if hashlib.md5(data).hexdigest() != digest:
            problems.append(f"task {i}: wrong checksum of {path}")
downloads = {p: n for p, n in stats["downloads"].items() if "/RESULTS/" not in p}
figures = {
    "run": os.environ["NAME"],
    "seconds": float(os.environ["SECONDS_TAKEN"]),
    "downloads": sum(downloads.values()),
    "distinct_files": len(downloads),
    "peak_downloads_in_flight": stats["peak_downloads_in_flight"],
    "peak_connections": stats["peak_connections"],
    "uploads": stats["by_kind"].get("upload", 0),
}
if os.environ["SHARED"] == "1":
    again = {p: n for p, n in downloads.items() if n > 1}
    if again:
        problems.append(f"downloaded more than once with the shared cache: {again}")
    budget = int(os.environ["BUDGET"])
    if stats["peak_downloads_in_flight"] > budget:
        problems.append(f"{stats['peak_downloads_in_flight']} downloads at once, over the budget of {budget}")
if figures["uploads"] < tasks:
    problems.append(f"{figures['uploads']} uploads for {tasks} tasks")
print(json.dumps(figures))
for p in problems:
    print("PROBLEM: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}

run_array() {
    local name="$1" flags="$2" shared="$3"
    local run="$W/run/$name"
    mkdir -p "$run"/{cache,spool,logs,mnt}
    ln -sfn "$run/mnt" "$W/mnt/$name"
    curl -fsS -X DELETE "$URL/__sim/stats" >/dev/null
    sbatch --wait --quiet --array=1-$TASKS --job-name="xnatfs-$name" \
        --output="$W/out/$name/task-%a.out" \
        --export=ALL,RUN_DIR="$run",XNATFS="$XNATFS",XNAT_CONFIG="$W/xnat.cfg",XNATFS_CLUSTER_FLAGS="$flags" \
        "$W/job.sh" || die "the $name array failed (see the task outputs)"
    mkdir -p "$W/mount-logs/$name"
    cp "$run"/logs/*.log "$W/mount-logs/$name/" 2>/dev/null || true
    # The array's time: from the first task's start to the last one's end (sbatch --wait
    # itself polls, every few seconds).
    local span
    span=$(cat "$run"/started.* "$run"/ended.* | sort -n | sed -n '1p;$p' | paste -sd' ' |
        awk '{printf "%.2f", $2 - $1}')
    check_run "$name" "$span" "$shared"
}

mkdir -p "$W/out/shared" "$W/out/private"
shared_line=$(run_array shared "--shared-cache $W/shared --cluster-connections $BUDGET" 1) ||
    die "the shared run's checks failed"
echo "shared cache:  $shared_line"
private_line=$(run_array private "" 0) || die "the private run's checks failed"
echo "own caches:    $private_line"
mkdir -p "$(dirname "$RESULTS")"
printf '{"tasks": %d, "budget": %d, "runs": [%s, %s]}\n' $TASKS $BUDGET "$shared_line" \
    "$private_line" >"$RESULTS"
echo "slurm-array: ok ($RESULTS)"
