#!/usr/bin/env bash
# The namespace half of tests/mount_fstab.rs: run by it as root, as PID 1 of a private mount and
# PID namespace, so that every mount made here and every process started here ends with it.
#
# In: WORK (the test's folder: fstab, bin/xnatfs, sbin/mount.xnatfs, root.netrc, rootmnt/,
# home/, usermnt/), URL (the sim), BIN (WORK's xnatfs binary), TEST_USER, FILE (a file's path in
# the mount). Out: `STEP …` lines saying what runs, `KEY value` lines the test checks, and
# `FAILED: …` with a non-zero exit at the first thing that goes wrong.
set -euo pipefail

step() { echo "STEP $*"; }
fail() {
    echo "FAILED: $*"
    exit 1
}
# The line of /proc/self/mounts for a mount point, or nothing.
mount_line() { grep " $1 " /proc/self/mounts || true; }
# Wait up to 20 s for the daemon that logs to $1 to log its unmount.
wait_unmounted() {
    for _ in $(seq 200); do
        if grep -q 'unmounted' "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    fail "no 'unmounted' in $1 20 s after umount: $(tail -5 "$1" 2>/dev/null)"
}

step "private /etc/fstab, /run (for mount(8)'s utab) and /sbin/mount.xnatfs"
mount --bind "$WORK/fstab" /etc/fstab
mount -t tmpfs -o size=1m,mode=755 xnatfs-test-run /run
sbin=$(readlink -f /sbin)
mount -t overlay -o "lowerdir=$WORK/sbin:$sbin" xnatfs-test-sbin "$sbin"
[ "$(readlink /sbin/mount.xnatfs)" = "$BIN" ] || fail "/sbin/mount.xnatfs is not $BIN"
if ! setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --init-groups test -x "$BIN"; then
    fail "$TEST_USER cannot run $BIN: every folder above it must be searchable by others"
fi

mode=$(stat -c %a /dev/fuse)
if [ "$mode" != 666 ]; then
    # A host's /dev/fuse is 0666 (the kernel's mode for it); some containers make it 0600, and
    # then no FUSE filesystem (libfuse's or fuser's) mounts as a user: both open /dev/fuse before
    # they turn to fusermount3. Here only, the same device as a 0666 node, as on a host.
    step "/dev/fuse is $mode here: a user's mount fails, and says why"
    denied=$(setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --init-groups \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin mount "$WORK/usermnt" 2>&1 || true)
    echo "USER_DENIED $(tr '\n' ' ' <<<"$denied")"
    # That refusal is logged as an error; the mount below must log none of its own.
    if [ -f "$WORK/home/xnatfs.log" ]; then : >"$WORK/home/xnatfs.log"; fi
    step "/dev/fuse is $mode here: a 0666 node of the same device over it, in this namespace"
    mkdir -p "$WORK/dev"
    mount -t tmpfs -o size=64k,mode=755 xnatfs-test-dev "$WORK/dev"
    mknod -m 666 "$WORK/dev/fuse" c "$((0x$(stat -c %t /dev/fuse)))" "$((0x$(stat -c %T /dev/fuse)))"
    mount --bind "$WORK/dev/fuse" /dev/fuse
fi

step "root: mount -t xnatfs $URL $WORK/rootmnt -o ro,…"
NETRC="$WORK/root.netrc" mount -t xnatfs "$URL" "$WORK/rootmnt" \
    -o "ro,cache_dir=$WORK/root/cache,spool_dir=$WORK/root/spool,log_file=$WORK/root/xnatfs.log"
echo "ROOT_MOUNT $(mount_line "$WORK/rootmnt")"
echo "ROOT_LS $(ls "$WORK/rootmnt" | tr '\n' ' ')"
echo "ROOT_MD5 $(md5sum <"$WORK/rootmnt/$FILE" | cut -d' ' -f1)"
step "root: umount $WORK/rootmnt"
umount "$WORK/rootmnt"
wait_unmounted "$WORK/root/xnatfs.log"
echo "ROOT_AFTER [$(mount_line "$WORK/rootmnt")]"

step "$TEST_USER: mount $WORK/usermnt (its fstab line says user), then umount it"
# Nothing of root's environment, and no HOME: xnatfs finds the home in the password database.
setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --init-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin USER="$TEST_USER" LOGNAME="$TEST_USER" \
    WORK="$WORK" FILE="$FILE" \
    bash -euo pipefail -c '
        mount_line() { grep " $1 " /proc/self/mounts || true; }
        echo "USER_ID $(id -u)"
        mount "$WORK/usermnt"
        echo "USER_MOUNT $(mount_line "$WORK/usermnt")"
        echo "USER_LS $(ls "$WORK/usermnt" | tr "\n" " ")"
        echo "USER_MD5 $(md5sum <"$WORK/usermnt/$FILE" | cut -d" " -f1)"
        echo "USER_CACHE $(ls "$WORK/home/.cache/xnatfs" | tr "\n" " ")"
        umount "$WORK/usermnt"
    ' || fail "as $TEST_USER (above)"
wait_unmounted "$WORK/home/xnatfs.log"
echo "USER_AFTER [$(mount_line "$WORK/usermnt")]"
step "done"
