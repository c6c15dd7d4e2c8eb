#!/usr/bin/env bash
# Try xnatfs in one command: a made-up XNAT archive, served by xnat-sim on loopback, mounted.
#
#   scripts/demo.sh MOUNTPOINT [--timeout SECS] [--release]   mount, and stay until Ctrl-C,
#                                                            --stop, or SECS seconds
#   scripts/demo.sh --stop MOUNTPOINT                        end a demo running at MOUNTPOINT
#
# It builds xnatfs and xnat-sim (debug, or --release), populates an archive in a temp folder
# (2 projects × 3 subjects × 2 sessions × 3 scans with NIFTI and DICOM resources, a QC assessor
# per session, and, if Debian's mricron-data is installed, a project COLIN with the real Colin27
# head), starts xnat-sim on 127.0.0.1, mounts it at MOUNTPOINT in the background, and prints what
# to try. On the way out (Ctrl-C, TERM, --stop, the timeout, or a failure) it unmounts, stops the
# sim and removes the temp folder. MOUNTPOINT must be an empty directory, or not exist yet (it is
# then made, and removed again at the end). Nothing is written outside the temp folder and
# MOUNTPOINT; the block cache lives in the temp folder too.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/sim.sh
source "$ROOT/scripts/lib/sim.sh"
CH2=/usr/share/mricron/templates/ch2.nii.gz
CH2BET=/usr/share/mricron/templates/ch2bet.nii.gz
DEMO_USER=demo
DEMO_PASS=demo

usage() {
    # --help asked for it: stdout and success; a wrong command line: stderr and 2.
    if [ "${1:-}" = ok ]; then
        sed -n '4,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
    fi
    sed -n '4,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
say() { printf 'demo: %s\n' "$*"; }
die() {
    printf 'demo: %s\n' "$*" >&2
    exit 1
}

mountpoint_arg=""
stop=0
timeout=0
profile=debug
while [ $# -gt 0 ]; do
    case "$1" in
    --stop) stop=1 ;;
    --timeout)
        [ $# -ge 2 ] || usage
        timeout="$2"
        shift
        ;;
    --timeout=*) timeout="${1#--timeout=}" ;;
    --release) profile=release ;;
    -h | --help) usage ok ;;
    -*) die "unknown option $1 (see $0 --help)" ;;
    *)
        [ -z "$mountpoint_arg" ] || usage
        mountpoint_arg="$1"
        ;;
    esac
    shift
done
[ -n "$mountpoint_arg" ] || usage
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout wants a number of seconds, not '$timeout'"

# The absolute mount point (its parent must exist), and the file naming the demo that runs there.
parent="$(cd "$(dirname "$mountpoint_arg")" 2>/dev/null && pwd)" ||
    die "the folder $(dirname "$mountpoint_arg") (parent of the mount point) does not exist"
MNT="$parent/$(basename "$mountpoint_arg")"
STATE="${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/xnatfs-demo-$(id -u)-$(printf '%s' "$MNT" | md5sum | cut -c1-12).pid"

unmount() {
    if [ "$(id -u)" -eq 0 ]; then umount "$1"; else fusermount3 -u "$1"; fi
}

if [ "$stop" -eq 1 ]; then
    pid="$(cat "$STATE" 2>/dev/null)" || die "no demo is running at $MNT (no $STATE)"
    # Only signal the process if it still is a demo (a stale file may name a reused PID).
    if ! tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'demo\.sh$'; then
        rm -f "$STATE"
        die "no demo is running at $MNT (process $pid is gone)"
    fi
    kill -TERM "$pid"
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && die "the demo (pid $pid) did not stop within 30 s"
    say "stopped the demo at $MNT"
    exit 0
fi

# --- checks before starting anything ---------------------------------------------------------
[ -e /dev/fuse ] || die "/dev/fuse is missing: FUSE is not available here"
if [ "$(id -u)" -ne 0 ]; then
    command -v fusermount3 >/dev/null || die "fusermount3 is missing (apt-get install fuse3)"
fi
command -v cargo >/dev/null || die "cargo is missing (https://rustup.rs)"
created_mnt=0
if [ -e "$MNT" ] || [ -L "$MNT" ]; then
    [ -d "$MNT" ] && [ ! -L "$MNT" ] || die "$MNT is not a directory"
    mountpoint -q "$MNT" && die "$MNT is already a mount point (scripts/demo.sh --stop $MNT ends a demo there)"
    [ -z "$(ls -A "$MNT")" ] || die "$MNT is not empty: give an empty directory (or a new name) as the mount point"
else
    mkdir "$MNT" || die "cannot make $MNT"
    created_mnt=1
fi
if [ -e "$STATE" ]; then
    old="$(cat "$STATE" 2>/dev/null || true)"
    if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then die "a demo (pid $old) already runs at $MNT"; fi
    rm -f "$STATE"
fi

# --- everything started from here on is stopped by the trap ---------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/xnatfs-demo.XXXXXX")"
SLEEP_PID=""
mounted=0

cleanup() {
    local rc=$? pid
    set +e
    trap - EXIT INT TERM
    [ -n "$SLEEP_PID" ] && kill "$SLEEP_PID" 2>/dev/null
    if [ "$mounted" -eq 1 ] && mountpoint -q "$MNT"; then
        say "unmounting $MNT"
        for _ in 1 2 3 4 5; do
            unmount "$MNT" 2>/dev/null && break
            sleep 1
        done
        if mountpoint -q "$MNT"; then
            echo "demo: $MNT is busy (a shell or program still uses it); detaching it lazily" >&2
            umount -l "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
        fi
    fi
    if [ -n "$SIM_PID_FILE" ]; then
        stop_sim && say "stopped xnat-sim"
    fi
    if mountpoint -q "$MNT" 2>/dev/null; then
        echo "demo: $MNT is still mounted; left $WORK in place" >&2
    else
        [ "$rc" -ne 0 ] && [ -s "$WORK/xnatfs.log" ] && {
            echo "demo: the last lines of the xnatfs log:" >&2
            tail -n 15 "$WORK/xnatfs.log" >&2
        }
        rm -rf "$WORK"
        [ "$created_mnt" -eq 1 ] && rmdir "$MNT" 2>/dev/null
    fi
    rm -f "$STATE"
    exit "$rc"
}
trap cleanup EXIT
# Once mounted, Ctrl-C and TERM are the normal way out (exit 0); before, they abort (130/143).
ready=0
trap 'echo; [ "$ready" -eq 1 ] && exit 0; exit 130' INT
trap '[ "$ready" -eq 1 ] && exit 0; exit 143' TERM
echo $$ >"$STATE"

say "building xnatfs and xnat-sim ($profile; the first build takes a few minutes)"
build_flags=(-q --workspace --bins)
[ "$profile" = release ] && build_flags+=(--release)
(cd "$ROOT" && cargo build "${build_flags[@]}") || die "cargo build failed"
XNATFS="$ROOT/target/$profile/xnatfs"
SIM="$ROOT/target/$profile/xnat-sim"

say "populating an archive in $WORK/archive"
"$SIM" populate --root "$WORK/archive" --seed 1 --projects 2 --subjects 3 --sessions 2 --scans 3 \
    --resources NIFTI,DICOM --files 2 --file-size 262144 --assessors 1 \
    --user "$DEMO_USER:$DEMO_PASS" --member "$DEMO_USER" >/dev/null || die "xnat-sim populate failed"
colin=0
if [ -r "$CH2" ]; then
    # A real head: COLIN/colin27/colin27_MR1/1-T1w/{NIFTI,DICOM}, 2-T1w_brain/NIFTI.
    session="$WORK/import/COLIN/colin27/colin27_MR1"
    mkdir -p "$session/1-T1w/NIFTI" "$session/2-T1w_brain/NIFTI"
    cp "$CH2" "$session/1-T1w/NIFTI/ch2.nii.gz"
    [ -r "$CH2BET" ] && cp "$CH2BET" "$session/2-T1w_brain/NIFTI/ch2bet.nii.gz"
    if command -v miconv >/dev/null && miconv -q "$CH2" "$WORK/ch2.dcm" >/dev/null 2>&1; then
        rm -f "$WORK/ch2_dcm/DICOMDIR"
        mkdir -p "$session/1-T1w/DICOM"
        mv "$WORK/ch2_dcm/"* "$session/1-T1w/DICOM/"
    fi
    "$SIM" import --root "$WORK/archive" "$WORK/import" --owner "$DEMO_USER" >/dev/null ||
        die "xnat-sim import failed"
    colin=1
fi

start_sim "$SIM" "$WORK/archive" "$DEMO_USER:$DEMO_PASS" "$WORK" || die "xnat-sim did not start"
say "xnat-sim serves $URL (pid $SIM_PID; user $DEMO_USER, password $DEMO_PASS)"

env -u XNAT_HOST XNAT_USER="$DEMO_USER" XNAT_PASS="$DEMO_PASS" \
    "$XNATFS" mount "$URL" "$MNT" --cache-dir "$WORK/cache" --spool-dir "$WORK/spool" \
        --log-file "$WORK/xnatfs.log" \
    </dev/null || die "xnatfs mount failed"
mounted=1

nifti="$(ls -d "$MNT"/SIM01/*/*/*/NIFTI/*.nii.gz 2>/dev/null | head -n 1 || true)"
[ "$colin" -eq 1 ] && nifti="$MNT/COLIN/colin27/colin27_MR1/1-T1w/NIFTI/ch2.nii.gz"
cat <<EOF

xnatfs is mounted at $MNT (log: $WORK/xnatfs.log). Try, in another terminal:

  ls $MNT
  ls $MNT/SIM01/SIM01_S001/SIM01_S001_MR1
  find $MNT/SIM01 -name '*.nii.gz'
  ls $MNT/SIM01/*/*/*/NIFTI/
  ls $MNT/SIM01/SIM01_S001/SIM01_S001_MR1/.assessors
  getfattr -d $MNT/SIM01/SIM01_S001/SIM01_S001_MR1/1-*/NIFTI/*
  python3 -c 'import nibabel as nib; i = nib.load("$nifti"); print(i.shape, i.get_fdata().mean())'
EOF
if [ "$colin" -eq 1 ] && command -v dcm2niix >/dev/null && [ -d "$MNT/COLIN/colin27/colin27_MR1/1-T1w/DICOM" ]; then
    echo "  mkdir -p /tmp/colin && dcm2niix -z y -o /tmp/colin $MNT/COLIN/colin27/colin27_MR1/1-T1w/DICOM"
fi
stop_hint="Ctrl-C here, or: scripts/demo.sh --stop $mountpoint_arg"
[ "$timeout" -gt 0 ] && stop_hint="$stop_hint (it also stops by itself in $timeout s)"
cat <<EOF

(nibabel: pip install nibabel, or use scripts/test.sh's venv: .venv/bin/python)
To stop: $stop_hint.
EOF

ready=1
# Wait in `wait` (not a plain sleep) so INT and TERM reach the traps at once.
if [ "$timeout" -gt 0 ]; then
    sleep "$timeout" &
    SLEEP_PID=$!
    wait "$SLEEP_PID" || true
    say "$timeout s are up"
else
    while true; do
        sleep 3600 &
        SLEEP_PID=$!
        wait "$SLEEP_PID" || true
    done
fi
