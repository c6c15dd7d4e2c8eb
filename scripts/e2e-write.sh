#!/usr/bin/env bash
# End-to-end write checks: real tools writing through a real xnatfs mount of an xnat-sim archive.
#
#   scripts/e2e-write.sh                (scripts/test.sh runs it as its own step, after e2e.sh)
#   scripts/e2e-write.sh --setup-only   everything but the mounts: build, data, the local bet run,
#                                       import, server, and the check of the server-side helpers
#
# It imports a small archive (project WRITE: subjects sub-01…03, each with one session whose scan
# 2-mprage holds NIFTI/mprage.nii.gz, a real head: Colin27 at 2 mm; a scratch subject) into
# xnat-sim, mounts it read-write twice (`xnatfs mount --allow-delete`, and `mount.xnatfs -o …`
# without it), and checks what the server holds afterwards, through its REST API (curl), pyxnat
# and nibabel: cp and cp -r into resources, nibabel.save into the mount, fslpy's imcp/immv/imtest,
# the `for t1 in …/*-mprage/NIFTI/mprage.nii.gz; do bet …; done` loop users run today with
# pyxnat scripts, mkdir of a subject/session/scan/resource, EPERM for rm and mv without
# --allow-delete, `xnatfs status`, and the unmount. `bet` is brainextractor (FSL BET in Python)
# through a shim on PATH. Everything it starts (the mounts, the sim, the local bet run, the temp
# folder) is stopped and removed on every exit path.
#
# Needs: /dev/fuse, the apt packages fuse3 curl mricron-data, and the venv of scripts/test.sh
# ($XNATFS_VENV, default .venv) with nibabel, pyxnat, fslpy and brainextractor. numba's JIT cache
# is kept in $NUMBA_CACHE_DIR (default $VENV/numba-cache), so only a new venv's first run compiles.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/sim.sh
source "$ROOT/scripts/lib/sim.sh"
E2E_NAME=e2e-write
# shellcheck source=scripts/lib/e2e.sh
source "$ROOT/scripts/lib/e2e.sh"
VENV="$(realpath -m "${XNATFS_VENV:-$ROOT/.venv}")"   # absolute: the bet shim links into it
PY="$VENV/bin/python"
HELPER="$ROOT/scripts/lib/e2e_write.py"
CH2=/usr/share/mricron/templates/ch2.nii.gz
PROJECT=WRITE
SUBJECTS=(sub-01 sub-02 sub-03)
SIM_USER=writer
SIM_PASS=writer-secret
export LC_ALL=C   # the error messages of rm and mv are matched below

SETUP_ONLY=0
case "${1:-}" in
    "") ;;
    --setup-only) SETUP_ONLY=1 ;;
    *)
        echo "usage: $0 [--setup-only]" >&2
        exit 2
        ;;
esac

# --- what the checks need ------------------------------------------------------------------
[ -e /dev/fuse ] || fail "/dev/fuse is missing: these checks mount a FUSE filesystem"
require_tools curl cmp diff md5sum mountpoint find stat
[ -r "$CH2" ] || fail "$CH2 is missing (apt-get install mricron-data)"
[ -x "$PY" ] || fail "no python venv at $VENV (run scripts/test.sh, or set XNATFS_VENV)"
"$PY" -c 'import nibabel, numpy, requests, pyxnat, fsl.data.image, brainextractor.main' 2>/dev/null ||
    fail "$PY cannot import nibabel, pyxnat, fslpy and brainextractor (pip install -r tests/clients/requirements.txt)"
for tool in brainextractor imcp immv imtest; do
    [ -x "$VENV/bin/$tool" ] || fail "$VENV/bin/$tool is missing (pip install -r tests/clients/requirements.txt)"
done
NIBDATA="$("$PY" -c 'import nibabel, os; print(os.path.dirname(nibabel.__file__))')/tests/data"
for f in anatomical.nii functional.nii example4d.nii.gz; do
    [ -r "$NIBDATA/$f" ] || fail "nibabel's test file $NIBDATA/$f is missing"
done

# --- everything this script starts (stopped and removed by e2e_cleanup) ---------------------
e2e_workdir
DATA="$WORK/data"         # the local inputs: the reference copy of every byte written
SRC="$WORK/src"           # the archive as a local tree, for `xnat-sim import`
ARCHIVE="$WORK/archive"   # xnat-sim's storage
MNT="$WORK/mnt"           # xnatfs mount URL MNT --allow-delete
MNT2="$WORK/mnt-helper"   # mount.xnatfs URL MNT2 -o … (no allow_delete)
OUT="$WORK/out"
mkdir -p "$DATA" "$OUT" "$WORK/bin"

# `bet` is brainextractor: same argument order (bet IN OUT), and it writes the brain mask.
ln -s "$VENV/bin/brainextractor" "$WORK/bin/bet"
export PATH="$WORK/bin:$VENV/bin:$PATH"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$VENV/numba-cache}"

# --- build -----------------------------------------------------------------------------------
say "building (debug)"
(cd "$ROOT" && cargo build -q --workspace --bins) || fail "cargo build failed"
XNATFS="$ROOT/target/debug/xnatfs"
SIM="$ROOT/target/debug/xnat-sim"
if [ "$SETUP_ONLY" -eq 0 ]; then
    grep -q -- --allow-delete <<<"$("$XNATFS" mount --help 2>&1)" ||
        fail "this xnatfs has no write path yet (no --allow-delete in 'xnatfs mount --help'); --setup-only runs the rest"
fi

# --- the data --------------------------------------------------------------------------------
# One real head per subject: Colin27 at 2 mm (90x108x90), the same voxels for each, the origin
# moved 10 mm per subject, so a mask uploaded next to the wrong input shows in its affine.
say "making the test data in $DATA"
for i in "${!SUBJECTS[@]}"; do
    "$PY" "$HELPER" downsample "$CH2" "$DATA/mprage-${SUBJECTS[$i]}.nii.gz" 2 "$((i * 10))" ||
        fail "could not downsample $CH2"
done
REF_INPUT="$DATA/mprage-${SUBJECTS[0]}.nii.gz"
REF_MASK="$DATA/ref_brain.nii.gz"

# The local bet run every mounted run is compared with. It runs in the background during the
# set-up and the first checks (the workflow check waits for it); it also fills numba's cache.
bet "$REF_INPUT" "$REF_MASK" >"$WORK/ref-bet.log" 2>&1 &
REF_PID=$!
EXTRA_PIDS+=("$REF_PID")
REF_STARTED=$SECONDS
REF_OK=""
wait_for_reference() {
    if wait "$REF_PID"; then REF_OK=1; else REF_OK=0; fi
    EXTRA_PIDS=()   # reaped: never signal that PID again
    say "the local bet run took $((SECONDS - REF_STARTED)) s (started with the set-up)"
}

# A folder tree for cp -r: nested folders, a NIfTI, text, binary, JSON.
TREE="$DATA/deriv"
mkdir -p "$TREE/sub/deeper" "$TREE/other"
echo "derived files copied with cp -r" >"$TREE/README.txt"
cp "$NIBDATA/functional.nii" "$TREE/sub/func.nii"
seq -f 'line %g' 100 >"$TREE/sub/deeper/notes.txt"
head -c 300000 /dev/urandom >"$TREE/sub/deeper/blob.bin"
echo '{"threshold": 0.5}' >"$TREE/other/params.json"
TREE_FILES="$(cd "$TREE" && find . -type f | sed 's|^\./||' | sort)"

# --- the archive -------------------------------------------------------------------------------
# WRITE/sub-0N/sub-0N_MR1/{1-localizer/NIFTI/localizer.nii, 2-mprage/NIFTI/mprage.nii.gz,
#                          3-rest_fmri/NIFTI/rest.nii.gz}
# WRITE/scratch/scratch_MR1/1-T1w/{NIFTI/t1.nii.gz, NIFTI/anatomical.nii, DERIV/README.txt}
say "laying out the archive in $SRC"
for subject in "${SUBJECTS[@]}"; do
    session="$SRC/$PROJECT/$subject/${subject}_MR1"
    mkdir -p "$session/1-localizer/NIFTI" "$session/2-mprage/NIFTI" "$session/3-rest_fmri/NIFTI"
    cp "$NIBDATA/anatomical.nii" "$session/1-localizer/NIFTI/localizer.nii"
    cp "$DATA/mprage-$subject.nii.gz" "$session/2-mprage/NIFTI/mprage.nii.gz"
    cp "$NIBDATA/example4d.nii.gz" "$session/3-rest_fmri/NIFTI/rest.nii.gz"
done
SCRATCH="$PROJECT/scratch/scratch_MR1/1-T1w"
mkdir -p "$SRC/$SCRATCH/NIFTI" "$SRC/$SCRATCH/DERIV"
cp "$REF_INPUT" "$SRC/$SCRATCH/NIFTI/t1.nii.gz"
cp "$NIBDATA/anatomical.nii" "$SRC/$SCRATCH/NIFTI/anatomical.nii"
echo "derived data of scratch_MR1" >"$SRC/$SCRATCH/DERIV/README.txt"
"$SIM" import --root "$ARCHIVE" "$SRC" --owner "$SIM_USER" >/dev/null || fail "xnat-sim import failed"

# --- the server ------------------------------------------------------------------------------
start_sim "$SIM" "$ARCHIVE" "$SIM_USER:$SIM_PASS" "$WORK" || fail "xnat-sim did not start"
say "xnat-sim (pid $SIM_PID) serves $URL"
# curl reads the credentials from a netrc file, never from its command line.
(umask 077 && printf 'machine 127.0.0.1 login %s password %s\n' "$SIM_USER" "$SIM_PASS" >"$WORK/netrc")

# --- what the server holds, seen by curl, the REST listings and pyxnat -------------------------
# Paths below are relative to the mount (and to the archive): P/S/E/<ID>-<type>/RES[/path…].

# rest_path REL : the REST path of a project, subject, session, scan, resource or file.
rest_path() {
    local p s e scan res rest path
    IFS=/ read -r p s e scan res rest <<<"$1"
    path="/data/projects/$p"
    if [ -n "$s" ]; then path+="/subjects/$s"; fi
    if [ -n "$e" ]; then path+="/experiments/$e"; fi
    if [ -n "$scan" ]; then path+="/scans/${scan%%-*}"; fi
    if [ -n "$res" ]; then path+="/resources/$res"; fi
    if [ -n "$rest" ]; then path+="/files/$rest"; fi
    echo "$path"
}

# curl_get REL DEST : download a file over the REST API.
curl_get() {
    curl -sS -f --netrc-file "$WORK/netrc" -o "$2" "$URL$(rest_path "$1")" 2>"$OUT/curl.err" ||
        fail "curl GET $(rest_path "$1") failed: $(cat "$OUT/curl.err")"
}

# server_files RES : the resource's REST file listing, "path size md5" per file, sorted.
server_files() {
    sim_env "$PY" "$HELPER" files "$URL" "$(rest_path "$1")" || fail "the REST file listing of $1 failed"
}

# server_object REL : "xsiType=…" and the fields of a subject, session or scan (fails if missing).
server_object() {
    sim_env "$PY" "$HELPER" object "$URL" "$(rest_path "$1")"
}

md5_of() { md5sum <"$1" | cut -d' ' -f1; }

# has_lines FILE LINE… : FILE has each LINE (whole lines).
has_lines() {
    local file="$1" line
    shift
    for line in "$@"; do grep -qxF -- "$line" "$file" || return 1; done
}

# server_has RES PATH LOCAL : the server lists RES/PATH with LOCAL's size and MD5, and curl
# downloads exactly LOCAL's bytes.
server_has() {
    local res="$1" path="$2" local_file="$3" want listing
    want="$path $(stat -c %s "$local_file") $(md5_of "$local_file")"
    listing="$(server_files "$res")" || exit 1
    grep -qxF -- "$want" <<<"$listing" ||
        fail "the server does not list '$want' in $res; it lists: $(tr '\n' ';' <<<"$listing")"
    curl_get "$res/$path" "$OUT/curl.bin"
    cmp -s "$local_file" "$OUT/curl.bin" || fail "curl GET $res/$path gave other bytes than $local_file"
}

# server_lacks RES PATH : the server does not list RES/PATH.
server_lacks() {
    local listing
    listing="$(server_files "$1")" || exit 1
    if grep -qxF -- "$2" <<<"$(cut -d' ' -f1 <<<"$listing")"; then fail "the server still lists $2 in $1"; fi
}

# pyxnat_files RES : the file names pyxnat lists in a scan resource.
pyxnat_files() {
    local p s e scan res
    IFS=/ read -r p s e scan res <<<"$1"
    sim_env "$PY" "$HELPER" pyxnat-files "$URL" "$p" "$s" "$e" "${scan%%-*}" "$res" ||
        fail "pyxnat could not list $1"
}

# pyxnat_get RES NAME DEST : download RES/NAME with pyxnat.
pyxnat_get() {
    local p s e scan res
    IFS=/ read -r p s e scan res <<<"$1"
    sim_env "$PY" "$HELPER" pyxnat-get "$URL" "$p" "$s" "$e" "${scan%%-*}" "$res" "$2" "$3" ||
        fail "pyxnat could not download $1/$2"
}

# The helpers above, on what the import put on the server (no mount involved): if this fails,
# so will every check below, for a reason that is not xnatfs.
check_server_side() {
    local res="$PROJECT/${SUBJECTS[0]}/${SUBJECTS[0]}_MR1/2-mprage/NIFTI"
    server_has "$res" mprage.nii.gz "$REF_INPUT"
    [ "$(pyxnat_files "$res")" = mprage.nii.gz ] || fail "pyxnat lists '$(pyxnat_files "$res")' in $res"
    pyxnat_get "$res" mprage.nii.gz "$OUT/pyxnat.bin"
    cmp -s "$REF_INPUT" "$OUT/pyxnat.bin" || fail "pyxnat downloaded other bytes than $REF_INPUT"
    server_object "${res%/*}" >"$OUT/scan.txt" || fail "no scan ${res%/*} on the server"
    grep -qx 'type=mprage' "$OUT/scan.txt" || fail "scan ${res%/*}: $(tr '\n' ' ' <"$OUT/scan.txt")"
    server_files "$SCRATCH/DERIV" >"$OUT/deriv.txt"
    [ "$(cut -d' ' -f1 "$OUT/deriv.txt")" = README.txt ] || fail "DERIV lists $(cat "$OUT/deriv.txt")"
}
check "the server side as the checks see it: curl, REST listings (size, MD5) and pyxnat on imported files" check_server_side

if [ "$SETUP_ONLY" -eq 1 ]; then
    wait_for_reference
    [ "$REF_OK" = 1 ] || fail "the local bet run failed: $(tail -n 5 "$WORK/ref-bet.log")"
    say "--setup-only: the set-up works; no mount was made"
    e2e_summary
    exit 0
fi

# --- the mounts (background mode: the command returns once mounted) ---------------------------
mkdir -p "$MNT" "$MNT2"
MOUNTS+=("$MNT" "$MNT2")
sim_env "$XNATFS" mount "$URL" "$MNT" --allow-delete --spool-dir "$WORK/spool" \
    --cache-dir "$WORK/cache" --log-file "$WORK/xnatfs.log" ||
    fail "xnatfs mount $URL $MNT --allow-delete failed"
mountpoint -q "$MNT" || fail "xnatfs mount returned but $MNT is not a mount point"
[ -n "$(daemon_pids "$MNT")" ] || fail "no background xnatfs process serves $MNT"
say "xnatfs mount --allow-delete went to the background and returned with $MNT mounted"

# mount_options MP : the options column of MP in /proc/mounts.
mount_options() { awk -v mp="$1" '$2 == mp { print $4 }' /proc/mounts; }

# --- checks ----------------------------------------------------------------------------------
P="$MNT/$PROJECT"

# (a) cp of a real NIfTI into a resource: read back from the mount, by curl and by pyxnat.
check_cp() {
    local res="$SCRATCH/NIFTI"
    case "$(mount_options "$MNT")" in
        rw,* | rw) ;;
        *) fail "$MNT is not mounted read-write: $(mount_options "$MNT")" ;;
    esac
    cp "$CH2" "$MNT/$res/" || fail "cp $CH2 $MNT/$res/ failed"
    cmp "$CH2" "$MNT/$res/ch2.nii.gz" || fail "the mount reads back other bytes"
    server_has "$res" ch2.nii.gz "$CH2"
    pyxnat_get "$res" ch2.nii.gz "$OUT/ch2.pyxnat"
    [ "$(md5_of "$OUT/ch2.pyxnat")" = "$(md5_of "$CH2")" ] || fail "pyxnat downloaded other bytes"
}

# (a) cp -r of a folder tree into a resource: diff -r on the mount, every file on the server at
# its relative path, and nothing else there (no temp or partial names).
check_cp_tree() {
    local res="$SCRATCH/DERIV" rel want
    cp -r "$TREE" "$MNT/$res/" || fail "cp -r $TREE $MNT/$res/ failed"
    diff -r "$TREE" "$MNT/$res/deriv" >"$OUT/diff.txt" 2>&1 || fail "diff -r: $(head -n 5 "$OUT/diff.txt")"
    while IFS= read -r rel; do
        server_has "$res" "deriv/$rel" "$TREE/$rel"
    done <<<"$TREE_FILES"
    want="$({ echo README.txt; cd "$DATA" && find deriv -type f; } | sort)"
    [ "$(server_files "$res" | cut -d' ' -f1)" = "$want" ] ||
        fail "the server lists other files in $res: $(server_files "$res" | cut -d' ' -f1 | tr '\n' ' ')"
}

# (b) nibabel.save straight into the mount (.nii.gz and .nii), loaded back from the mount and
# downloaded from the server: the same bytes and arrays as the same save to a local folder.
check_nibabel_save() {
    local res="$SCRATCH/NIFTI" name
    mkdir -p "$OUT/local"
    "$PY" "$HELPER" save-images "$REF_INPUT" "$MNT/$res" "$OUT/local" || fail "nibabel.save into $MNT/$res failed"
    for name in saved.nii.gz saved.nii; do
        "$PY" "$HELPER" same-image "$MNT/$res/$name" "$OUT/local/$name" || fail "$name on the mount"
        server_has "$res" "$name" "$OUT/local/$name"
        curl_get "$res/$name" "$OUT/server-$name"
        "$PY" "$HELPER" same-image "$OUT/server-$name" "$OUT/local/$name" || fail "$name from the server"
    done
}

# (c) fslpy's imtest, imcp (a plain copy, and a .nii converted to .nii.gz through nibabel) and
# immv (the source is on the server, so the move deletes it there: --allow-delete).
check_fslpy() {
    local res="$SCRATCH/NIFTI" d="$MNT/$SCRATCH/NIFTI" t1="$SRC/$SCRATCH/NIFTI/t1.nii.gz" got name
    for name in t1 t1.nii.gz anatomical; do
        got="$(imtest "$d/$name")" || fail "imtest $d/$name failed"
        [ "$got" = 1 ] || fail "imtest $d/$name printed '$got', expected 1"
    done
    got="$(imtest "$d/missing")" || fail "imtest $d/missing failed"
    [ "$got" = 0 ] || fail "imtest $d/missing printed '$got', expected 0"

    imcp "$d/t1" "$d/t1_copy" >"$OUT/imcp.txt" 2>&1 || fail "imcp $d/t1 $d/t1_copy: $(cat "$OUT/imcp.txt")"
    [ "$(imtest "$d/t1_copy")" = 1 ] || fail "imtest does not find t1_copy after imcp"
    cmp "$t1" "$d/t1_copy.nii.gz" || fail "t1_copy.nii.gz on the mount differs from t1.nii.gz"
    server_has "$res" t1_copy.nii.gz "$t1"

    imcp "$d/anatomical" "$d/anat_gz" >"$OUT/imcp2.txt" 2>&1 ||
        fail "imcp $d/anatomical $d/anat_gz: $(cat "$OUT/imcp2.txt")"
    "$PY" "$HELPER" same-image "$d/anat_gz.nii.gz" "$NIBDATA/anatomical.nii" || fail "imcp's .nii.gz conversion"
    server_has "$res" anat_gz.nii.gz "$d/anat_gz.nii.gz"

    immv "$d/t1_copy" "$d/t1_moved" >"$OUT/immv.txt" 2>&1 || fail "immv $d/t1_copy $d/t1_moved: $(cat "$OUT/immv.txt")"
    [ "$(imtest "$d/t1_copy")" = 0 ] || fail "imtest still finds t1_copy after immv"
    [ "$(imtest "$d/t1_moved")" = 1 ] || fail "imtest does not find t1_moved after immv"
    cmp "$t1" "$d/t1_moved.nii.gz" || fail "t1_moved.nii.gz on the mount differs from t1.nii.gz"
    server_has "$res" t1_moved.nii.gz "$t1"
    server_lacks "$res" t1_copy.nii.gz
}

# (d) The workflow done today with pyxnat download/upload loops, on the mount: bet on every
# subject's mprage, the mask written beside it; then pyxnat sees each mask in its subject's
# NIFTI resource, equal (voxels) to the local run and with its own input's affine.
check_bet_workflow() {
    [ "$REF_OK" = 1 ] || fail "the local bet run failed: $(tail -n 5 "$WORK/ref-bet.log")"
    local t1 n=0 started=$SECONDS subject res inputs
    shopt -s nullglob
    inputs=("$P"/*/*/*-mprage/NIFTI/mprage.nii.gz)
    shopt -u nullglob
    [ "${#inputs[@]}" -eq "${#SUBJECTS[@]}" ] ||
        fail "the glob $P/*/*/*-mprage/NIFTI/mprage.nii.gz found ${#inputs[@]} files, expected ${#SUBJECTS[@]}"
    for t1 in "${inputs[@]}"; do
        n=$((n + 1))
        bet "$t1" "$(dirname "$t1")/mprage_brain.nii.gz" >"$OUT/bet-$n.log" 2>&1 ||
            fail "bet $t1 failed: $(tail -n 5 "$OUT/bet-$n.log")"
    done
    say "    bet ran on the $n mounted inputs in $((SECONDS - started)) s"
    for subject in "${SUBJECTS[@]}"; do
        res="$PROJECT/$subject/${subject}_MR1/2-mprage/NIFTI"
        pyxnat_files "$res" >"$OUT/names.txt"
        grep -qxF mprage_brain.nii.gz "$OUT/names.txt" ||
            fail "pyxnat does not list mprage_brain.nii.gz in $res: $(tr '\n' ' ' <"$OUT/names.txt")"
        pyxnat_get "$res" mprage_brain.nii.gz "$OUT/$subject-brain.nii.gz"
        cmp -s "$OUT/$subject-brain.nii.gz" "$MNT/$res/mprage_brain.nii.gz" ||
            fail "$res/mprage_brain.nii.gz: the mount and the server have other bytes"
        "$PY" "$HELPER" check-mask "$OUT/$subject-brain.nii.gz" "$REF_MASK" "$DATA/mprage-$subject.nii.gz" ||
            fail "$subject's mask"
    done
}

# (e) mkdir of a subject, a session, a scan and a resource, each on the server once mkdir
# returns; then a file copied into the new resource.
check_mkdir() {
    local subject="$PROJECT/sub-new" session="$PROJECT/sub-new/sub-new_MR1"
    local scan="$PROJECT/sub-new/sub-new_MR1/5-T2w" res="$PROJECT/sub-new/sub-new_MR1/5-T2w/NIFTI"
    mkdir "$MNT/$subject" || fail "mkdir $MNT/$subject failed"
    server_object "$subject" >"$OUT/subject.txt" || fail "no subject sub-new on the server after mkdir"
    has_lines "$OUT/subject.txt" xsiType=xnat:subjectData label=sub-new ||
        fail "subject sub-new: $(tr '\n' ' ' <"$OUT/subject.txt")"

    mkdir "$MNT/$session" || fail "mkdir $MNT/$session failed"
    server_object "$session" >"$OUT/session.txt" || fail "no session sub-new_MR1 on the server after mkdir"
    has_lines "$OUT/session.txt" xsiType=xnat:mrSessionData label=sub-new_MR1 ||
        fail "session sub-new_MR1 (expected the default xnat:mrSessionData): $(tr '\n' ' ' <"$OUT/session.txt")"

    mkdir "$MNT/$scan" || fail "mkdir $MNT/$scan failed"
    server_object "$scan" >"$OUT/scan.txt" || fail "no scan 5 on the server after mkdir 5-T2w"
    has_lines "$OUT/scan.txt" xsiType=xnat:mrScanData ID=5 type=T2w || fail "scan 5: $(tr '\n' ' ' <"$OUT/scan.txt")"
    [ "$(ls "$MNT/$session")" = 5-T2w ] || fail "ls $MNT/$session shows '$(ls "$MNT/$session")', expected 5-T2w"

    mkdir "$MNT/$res" || fail "mkdir $MNT/$res failed"
    sim_env "$PY" "$HELPER" labels "$URL" "$(rest_path "$scan")/resources" >"$OUT/resources.txt" ||
        fail "the resource listing of scan 5 failed"
    [ "$(cat "$OUT/resources.txt")" = NIFTI ] || fail "scan 5 has resources '$(cat "$OUT/resources.txt")', expected NIFTI"

    cp "$REF_INPUT" "$MNT/$res/t2w.nii.gz" || fail "cp into the new resource failed"
    server_has "$res" t2w.nii.gz "$REF_INPUT"
}

# Without --allow-delete (mount.xnatfs -o …, read-write by default): new files are uploaded,
# but rm and mv of a file the server has fail with EPERM, and the server keeps it.
check_no_delete() {
    local res="$PROJECT/${SUBJECTS[0]}/${SUBJECTS[0]}_MR1/1-localizer/NIFTI" d
    d="$MNT2/$res"
    ln -sf "$XNATFS" "$WORK/bin/mount.xnatfs"
    sim_env "$WORK/bin/mount.xnatfs" "$URL" "$MNT2" \
        -o "noauto,project=$PROJECT,spool_dir=$WORK/spool2,cache_dir=$WORK/cache2,log_file=$WORK/xnatfs2.log" ||
        fail "mount.xnatfs $URL $MNT2 -o … failed"
    case "$(mount_options "$MNT2")" in
        rw,* | rw) ;;
        *) fail "mount.xnatfs without ro did not mount read-write: $(mount_options "$MNT2")" ;;
    esac
    cp "$NIBDATA/functional.nii" "$d/func.nii" || fail "cp into $d failed"
    server_has "$res" func.nii "$NIBDATA/functional.nii"
    if rm "$d/localizer.nii" 2>"$OUT/rm.txt"; then fail "rm of a server file worked without allow_delete"; fi
    grep -q 'Operation not permitted' "$OUT/rm.txt" || fail "rm failed, but not with EPERM: $(cat "$OUT/rm.txt")"
    if mv "$d/localizer.nii" "$d/moved.nii" 2>"$OUT/mv.txt"; then fail "mv of a server file worked without allow_delete"; fi
    grep -q 'Operation not permitted' "$OUT/mv.txt" || fail "mv failed, but not with EPERM: $(cat "$OUT/mv.txt")"
    [ -f "$d/localizer.nii" ] || fail "localizer.nii is gone from the mount after the refused rm and mv"
    server_has "$res" localizer.nii "$NIBDATA/anatomical.nii"
    server_lacks "$res" moved.nii
    unmount_and_wait "$MNT2"
}

# xnatfs status: nothing waits for upload once every close has returned (exit 0).
check_status() {
    local rc=0
    "$XNATFS" status "$MNT" >"$OUT/status.txt" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || fail "xnatfs status $MNT exited $rc: $(cat "$OUT/status.txt")"
    sed 's/^/    /' "$OUT/status.txt"
}

# umount unmounts, and the background process of each mount exits.
check_unmount() {
    unmount_and_wait "$MNT2"
    unmount_and_wait "$MNT"
}

check "(a) cp of ch2.nii.gz into a resource of a read-write mount: the mount, curl and pyxnat read the same bytes" check_cp
check "(a) cp -r of a tree ($(wc -l <<<"$TREE_FILES") files, nested folders): diff -r clean, each file on the server at its path" check_cp_tree
check "(b) nibabel.save of a .nii.gz and a .nii into the mount: the same arrays and bytes on the mount and the server" check_nibabel_save
check "(c) fslpy imtest, imcp (copy and .nii -> .nii.gz), immv with --allow-delete: results on the server" check_fslpy
wait_for_reference
check "(d) for t1 in P/*/*/*-mprage/NIFTI/mprage.nii.gz; do bet \$t1 …/mprage_brain.nii.gz: each mask on the server, equal to a local run" check_bet_workflow
check "(e) mkdir of a subject, a session, a scan 5-T2w and a resource NIFTI: each on the server; cp into it" check_mkdir
check "mount.xnatfs -o … (no allow_delete): cp uploads; rm and mv of a server file fail with EPERM, the server keeps it" check_no_delete
check "xnatfs status MOUNTPOINT: no upload waiting (exit 0)" check_status
check "umount unmounts and the background xnatfs processes exit" check_unmount

say "finished in $SECONDS s"
e2e_summary
