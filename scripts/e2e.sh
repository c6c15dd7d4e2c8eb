#!/usr/bin/env bash
# End-to-end checks: real neuroimaging tools on a real xnatfs mount of an xnat-sim archive.
#
#   scripts/e2e.sh            (scripts/test.sh runs it as its own step)
#
# It lays out a small archive from real data (the Colin27 head of Debian's mricron-data as
# .nii.gz, as plain .nii, and as the 181-slice DICOM series miconv makes of it), imports it into
# xnat-sim, serves it on loopback, mounts it with xnatfs in the background mode, and checks that
# nibabel, dcm2niix, shell globs, getfattr, cmp and diff see exactly the local bytes. Everything
# it starts (the mounts, the sim, the temp folder) is stopped and removed on every exit path.
#
# Needs: /dev/fuse, the apt packages fuse3 attr dcm2niix mitools mricron-data, and the venv of
# scripts/test.sh ($XNATFS_VENV, default .venv) with nibabel and numpy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/sim.sh
source "$ROOT/scripts/lib/sim.sh"
E2E_NAME=e2e
# shellcheck source=scripts/lib/e2e.sh
source "$ROOT/scripts/lib/e2e.sh"
VENV="${XNATFS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
CH2=/usr/share/mricron/templates/ch2.nii.gz
PROJECT=E2E
SIM_USER=e2e
SIM_PASS=e2e-secret

# --- what the checks need ------------------------------------------------------------------
[ -e /dev/fuse ] || fail "/dev/fuse is missing: these checks mount a FUSE filesystem"
require_tools miconv dcm2niix getfattr md5sum cmp diff mountpoint
[ -r "$CH2" ] || fail "$CH2 is missing (apt-get install mricron-data)"
[ -x "$PY" ] || fail "no python venv at $VENV (run scripts/test.sh, or set XNATFS_VENV)"
"$PY" -c 'import nibabel, numpy' 2>/dev/null || fail "$PY cannot import nibabel and numpy (pip install -r tests/clients/requirements.txt)"

# --- everything this script starts (stopped and removed by e2e_cleanup) ---------------------
e2e_workdir
SRC="$WORK/src"           # the archive as a local tree: the reference copy of every byte
ARCHIVE="$WORK/archive"   # xnat-sim's storage
MNT="$WORK/mnt"
MNT2="$WORK/mnt-helper"   # the second mount, made through the mount.xnatfs name
OUT="$WORK/out"

# --- build -----------------------------------------------------------------------------------
say "building (debug)"
(cd "$ROOT" && cargo build -q --workspace --bins) || fail "cargo build failed"
XNATFS="$ROOT/target/debug/xnatfs"
SIM="$ROOT/target/debug/xnat-sim"

# --- the archive, laid out locally -----------------------------------------------------------
# E2E/<subject>/<session>/1-T1w/{NIFTI/ch2.nii.gz, NIFTI/ch2.nii, DICOM/00000000…00000180}
say "laying out the archive in $SRC"
mkdir -p "$WORK/dicom"
miconv -q "$CH2" "$WORK/dicom/ch2.dcm" >/dev/null || fail "miconv could not make the DICOM series"
rm -f "$WORK/dicom/ch2_dcm/DICOMDIR"
slices=$(find "$WORK/dicom/ch2_dcm" -type f | wc -l)
[ "$slices" -eq 181 ] || fail "miconv made $slices DICOM files, expected 181"
SESSIONS=(S01/S01_MR1 S02/S02_MR1 S02/S02_MR2)
for session in "${SESSIONS[@]}"; do
    scan="$SRC/$PROJECT/$session/1-T1w"
    mkdir -p "$scan/NIFTI" "$scan/DICOM"
    cp "$CH2" "$scan/NIFTI/ch2.nii.gz"
    gunzip -c "$CH2" >"$scan/NIFTI/ch2.nii"
    cp "$WORK/dicom/ch2_dcm/"* "$scan/DICOM/"
done
"$SIM" import --root "$ARCHIVE" "$SRC" --owner "$SIM_USER" >/dev/null || fail "xnat-sim import failed"

# --- the server ------------------------------------------------------------------------------
start_sim "$SIM" "$ARCHIVE" "$SIM_USER:$SIM_PASS" "$WORK" || fail "xnat-sim did not start"
say "xnat-sim (pid $SIM_PID) serves $URL"

# --- the mount (background mode: returns once mounted) ---------------------------------------
mkdir -p "$MNT" "$MNT2" "$OUT"
MOUNTS+=("$MNT")
sim_env "$XNATFS" mount "$URL" "$MNT" --cache-dir "$WORK/cache" --log-file "$WORK/xnatfs.log" ||
    fail "xnatfs mount $URL $MNT failed"
mountpoint -q "$MNT" || fail "xnatfs mount returned but $MNT is not a mount point"
[ -n "$(daemon_pids "$MNT")" ] || fail "no background xnatfs process serves $MNT"
say "xnatfs mount went to the background and returned with $MNT mounted"

# --- checks ----------------------------------------------------------------------------------
P="$MNT/$PROJECT"
SRC_FILES="$(cd "$SRC" && find . -type f | sed 's|^\./||' | sort)"
FILES_TOTAL=$(printf '%s\n' "$SRC_FILES" | wc -l)
shopt -s nullglob
GLOBBED=("$P"/*/*/*/NIFTI/*.nii*)
shopt -u nullglob
NIFTI_EXPECTED="$(cd "$SRC" && find "$PROJECT" -path '*/NIFTI/*.nii*' -type f | sort)"

# The tree shows labels, and stat gives the listing's sizes before any file is read.
check_tree_and_sizes() {
    [ "$(ls "$P")" = "$(ls "$SRC/$PROJECT")" ] ||
        fail "ls $P shows '$(ls "$P" | tr '\n' ' ')', expected '$(ls "$SRC/$PROJECT" | tr '\n' ' ')'"
    local rel want got
    while IFS= read -r rel; do
        want=$(stat -c %s "$SRC/$rel")
        got=$(stat -c %s "$MNT/$rel") || fail "stat $MNT/$rel failed"
        [ "$got" = "$want" ] || fail "size of $rel: $got on the mount, $want locally"
    done <<<"$SRC_FILES"
}

# A shell glob across the project finds every NIfTI file, and nothing else.
check_glob() {
    local count
    count=$(printf '%s\n' "$NIFTI_EXPECTED" | wc -l)
    [ "${#GLOBBED[@]}" -eq "$count" ] ||
        fail "the glob found ${#GLOBBED[@]} files, expected $count"
    [ "$(printf '%s\n' "${GLOBBED[@]#"$MNT/"}" | sort)" = "$NIFTI_EXPECTED" ] ||
        fail "the glob found other files than the archive holds"
}

# nibabel: the .nii.gz (gzip stream) and the plain .nii memory-mapped, equal to the local copies.
check_nibabel() {
    "$PY" - "$MNT" "$SRC" "${GLOBBED[@]#"$MNT/"}" <<'PYTHON' || fail "nibabel on the mount differs from the local copies"
import sys
import numpy as np
import nibabel as nib

mnt, src, rels = sys.argv[1], sys.argv[2], sys.argv[3:]
if not rels:
    sys.exit("no NIfTI files to load")
for rel in rels:
    mounted = nib.load(f"{mnt}/{rel}", mmap=True)
    local = nib.load(f"{src}/{rel}", mmap=False)
    data = np.asanyarray(mounted.dataobj)
    if rel.endswith(".nii") and not isinstance(data, np.memmap):
        sys.exit(f"{rel}: nibabel did not memory-map the mounted file ({type(data).__name__})")
    if not np.array_equal(data, np.asanyarray(local.dataobj)):
        sys.exit(f"{rel}: voxel data differ")
    if not np.array_equal(mounted.affine, local.affine) or mounted.header != local.header:
        sys.exit(f"{rel}: header or affine differ")
    mapped = " (memmap)" if isinstance(data, np.memmap) else ""
    print(f"    {rel}: {data.shape} {data.dtype}{mapped}")
PYTHON
}

# dcm2niix: the mounted DICOM series converts to the same volume as the local series.
check_dcm2niix() {
    local rel="$PROJECT/${SESSIONS[0]}/1-T1w/DICOM"
    rm -rf "$OUT/mounted" "$OUT/local"
    mkdir -p "$OUT/mounted" "$OUT/local"
    dcm2niix -z y -o "$OUT/mounted" "$MNT/$rel" >"$OUT/mounted.log" 2>&1 ||
        fail "dcm2niix on $MNT/$rel failed: $(tail -n 3 "$OUT/mounted.log")"
    dcm2niix -z y -o "$OUT/local" "$SRC/$rel" >"$OUT/local.log" 2>&1 ||
        fail "dcm2niix on the local series failed: $(tail -n 3 "$OUT/local.log")"
    "$PY" - "$OUT/mounted" "$OUT/local" <<'PYTHON' || fail "the conversion of the mounted series differs from the local one"
import glob, sys
import numpy as np
import nibabel as nib

def volume(folder):
    found = glob.glob(f"{folder}/*.nii.gz")
    if len(found) != 1:
        sys.exit(f"dcm2niix wrote {len(found)} .nii.gz files in {folder}, expected 1")
    return nib.load(found[0])

mounted, local = volume(sys.argv[1]), volume(sys.argv[2])
a, b = np.asanyarray(mounted.dataobj), np.asanyarray(local.dataobj)
if a.shape[:3] != (181, 217, 181):
    sys.exit(f"the converted volume is {a.shape}, expected 181x217x181")
if not np.array_equal(a, b) or not np.allclose(mounted.affine, local.affine):
    sys.exit("voxel data or affine differ")
print(f"    {a.shape} {a.dtype}")
PYTHON
}

# Every byte of every file, through diff -r (the reserved dot folders are not in the local tree).
check_diff() {
    diff -r -x .resources -x .assessors "$SRC/$PROJECT" "$P" >"$OUT/diff.txt" 2>&1 ||
        fail "diff -r of the project against the local tree: $(head -n 5 "$OUT/diff.txt")"
}

# Metadata as extended attributes: a file's URI and MD5, a scan folder's type.
check_xattrs() {
    local file="$P/S01/S01_MR1/1-T1w/NIFTI/ch2.nii.gz" scan="$P/S01/S01_MR1/1-T1w" value
    getfattr --absolute-names -d "$file" >"$OUT/xattrs.txt" 2>&1 || fail "getfattr -d $file failed: $(cat "$OUT/xattrs.txt")"
    grep -q '^user\.xnat\.uri=' "$OUT/xattrs.txt" || fail "getfattr -d shows no user.xnat.uri: $(cat "$OUT/xattrs.txt")"
    value="$(getfattr --absolute-names --only-values -n user.xnat.digest "$file" 2>&1)" || fail "no user.xnat.digest on $file: $value"
    [ "$value" = "$(md5sum <"$CH2" | cut -d' ' -f1)" ] || fail "user.xnat.digest $value is not the file's MD5"
    value="$(getfattr --absolute-names --only-values -n user.xnat.type "$scan" 2>&1)" ||
        fail "no user.xnat.type on the scan folder $scan: $value (getfattr -d shows: $(getfattr --absolute-names -d "$scan" 2>&1 | tr '\n' ' '))"
    [ "$value" = "T1w" ] || fail "user.xnat.type of the scan folder is '$value', expected T1w"
}

# The mount(8) helper name: the same binary as mount.xnatfs, with -o options; -o ro gives EROFS.
check_helper_name() {
    mkdir -p "$WORK/bin"
    ln -sf "$XNATFS" "$WORK/bin/mount.xnatfs"
    sim_env "$WORK/bin/mount.xnatfs" "$URL" "$MNT2" \
        -o "ro,noauto,_netdev,project=$PROJECT,cache_dir=$WORK/cache2,log_file=$WORK/xnatfs2.log" ||
        fail "mount.xnatfs $URL $MNT2 -o … failed"
    [ "$(ls "$MNT2")" = "$PROJECT" ] || fail "mount.xnatfs -o project=$PROJECT shows '$(ls "$MNT2")'"
    cmp "$CH2" "$MNT2/$PROJECT/S02/S02_MR2/1-T1w/NIFTI/ch2.nii.gz" || fail "cmp through the mount.xnatfs mount"
    if touch "$MNT2/$PROJECT/new-file" 2>"$OUT/touch.txt"; then fail "a -o ro mount accepted a new file"; fi
    grep -qi 'read-only' "$OUT/touch.txt" || fail "touch on a -o ro mount did not fail with EROFS: $(cat "$OUT/touch.txt")"
}

# umount unmounts, and the background process of each mount exits.
check_unmount() {
    unmount_and_wait "$MNT2"
    unmount_and_wait "$MNT"
}

MOUNTS+=("$MNT2")
check "ls shows the subjects; stat gives the listed size of all $FILES_TOTAL files before any read" check_tree_and_sizes
check "the glob $PROJECT/*/*/*/NIFTI/*.nii* finds exactly the ${#GLOBBED[@]} NIfTI files" check_glob
check "nibabel loads every .nii.gz and memory-mapped .nii from the mount, arrays equal to the local files" check_nibabel
check "dcm2niix converts the mounted 181-slice series to the same volume as the local series" check_dcm2niix
check "diff -r finds the mounted project byte-identical to the local tree ($FILES_TOTAL files)" check_diff
check "getfattr shows user.xnat.* (a file's uri and digest = its MD5, a scan folder's type)" check_xattrs
check "mount.xnatfs URL DIR -o ro,project=…: one project, same bytes, a new file refused with EROFS" check_helper_name
check "umount unmounts and the background xnatfs processes exit" check_unmount

e2e_summary
