#!/usr/bin/env bash
# End-to-end checks of the views: BIDS tools on the `.bids` view of a real xnatfs mount, and the
# `.tables` CSV files read by pandas.
#
#   scripts/e2e-bids.sh       (scripts/test.sh runs it as its own step)
#
# It makes project STUDY in an xnat-sim archive (`xnat-sim populate --study`: ReproIn and
# site-named scans, NIfTI with sidecars, repeated runs, a localizer, a scan with only DICOM),
# serves it on loopback, mounts it with xnatfs in the background mode, and runs on the mount:
# the BIDS validator (npm's bids-validator, pinned in scripts/test.sh), pybids with validation
# on, nibabel against the archive path, and pandas on `.tables`. Everything it starts is stopped
# and removed on every exit path.
#
# Needs: /dev/fuse, fuse3, node with bids-validator at $BIDS_VALIDATOR (scripts/test.sh installs
# it), and the venv of scripts/test.sh ($XNATFS_VENV, default .venv) with pybids and nibabel.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/sim.sh
source "$ROOT/scripts/lib/sim.sh"
E2E_NAME=e2e-bids
# shellcheck source=scripts/lib/e2e.sh
source "$ROOT/scripts/lib/e2e.sh"
VENV="${XNATFS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
BIDS_VALIDATOR="${BIDS_VALIDATOR:-$ROOT/.node/node_modules/.bin/bids-validator}"
SIM_USER=bids
SIM_PASS=bids-secret

[ -e /dev/fuse ] || fail "/dev/fuse is missing: these checks mount a FUSE filesystem"
require_tools node mountpoint
[ -x "$PY" ] || fail "no python venv at $VENV (run scripts/test.sh, or set XNATFS_VENV)"
"$PY" -c 'import bids, nibabel, pandas' 2>/dev/null ||
    fail "$PY cannot import bids (pybids), nibabel and pandas (pip install -r tests/clients/requirements.txt)"
[ -x "$BIDS_VALIDATOR" ] || fail "no bids-validator at $BIDS_VALIDATOR (scripts/test.sh installs it with npm)"

e2e_workdir
ARCHIVE="$WORK/archive"
MNT="$WORK/mnt"

say "building (debug)"
(cd "$ROOT" && cargo build -q --workspace --bins) || fail "cargo build failed"
XNATFS="$ROOT/target/debug/xnatfs"
SIM="$ROOT/target/debug/xnat-sim"

"$SIM" populate --root "$ARCHIVE" --projects 0 --study --user "$SIM_USER:$SIM_PASS" \
    --member "$SIM_USER" >/dev/null || fail "xnat-sim populate --study failed"
start_sim "$SIM" "$ARCHIVE" "$SIM_USER:$SIM_PASS" "$WORK" || fail "xnat-sim did not start"
say "xnat-sim (pid $SIM_PID) serves $URL"
mkdir -p "$MNT"
MOUNTS+=("$MNT")
sim_env "$XNATFS" mount "$URL" "$MNT" --read-only --cache-dir "$WORK/cache" \
    --log-file "$WORK/xnatfs.log" || fail "xnatfs mount $URL $MNT failed"
mountpoint -q "$MNT" || fail "xnatfs mount returned but $MNT is not a mount point"

check_validator() {
    local out="$WORK/validator.txt"
    if ! "$BIDS_VALIDATOR" --verbose "$MNT/STUDY/.bids" >"$out" 2>&1; then
        cat "$out" >&2
        fail "bids-validator reports errors on $MNT/STUDY/.bids"
    fi
    grep -i -E "summary|files|subjects|sessions|tasks|modalities|warning|error" "$out" |
        sed 's/\x1b\[[0-9;]*m//g' | sed 's/^/    /' | head -20
}

check_tree() {
    (cd "$MNT/STUDY/.bids" && find . | sort | sed 's/^/    /')
}

check_tables() {
    "$PY" - "$MNT" <<'PY' || exit 1
import sys, pandas
root = sys.argv[1] + "/STUDY/.tables/"
e = pandas.read_csv(root + "experiments.csv")
assert sorted(e["date"]) == ["2024-03-04", "2024-03-11"], e
s = pandas.read_csv(root + "scans.csv")
assert len(s) == 14 and set(s["type"]) >= {"MPRAGE", "DWI", "localizer"}, s
f = pandas.read_csv(root + "files.csv")
assert f["size"].sum() > 0 and f["MD5"].str.len().eq(32).all(), f
print(f"    experiments.csv: {len(e)} rows, scans.csv: {len(s)}, files.csv: {len(f)}")
PY
}

check "the tree of STUDY/.bids" check_tree
check "bids-validator reports no error on STUDY/.bids" check_validator
check "pybids (validate=True) indexes .bids; get(), get_metadata(), get_bval() answer as the scans say" \
    "$PY" "$ROOT/scripts/lib/e2e_bids.py" pybids "$MNT"
check "nibabel reads a bold run through .bids equal to the same file through its archive path" \
    "$PY" "$ROOT/scripts/lib/e2e_bids.py" nibabel "$MNT"
check "pandas reads STUDY/.tables: session dates, scans, files with size and MD5" check_tables
check "umount unmounts and the background xnatfs process exits" unmount_and_wait "$MNT"

e2e_summary
