# shellcheck shell=bash
# Shell helpers shared by the end-to-end scripts (scripts/e2e.sh, scripts/e2e-write.sh): messages,
# checks that run in their own process group, xnatfs mounts, and the cleanup that unmounts every
# mount and stops every process by PID on every exit path. Source this file, then:
#
#   E2E_NAME=e2e                 prefix of every message
#   e2e_workdir                  makes WORK (a temp folder) and installs the EXIT/INT/TERM traps
#   MOUNTS+=("$mp")              before mounting: the cleanup unmounts it and stops its process
#   check "what it shows" fn     runs fn in a subshell; a failing check does not stop the others
#   e2e_summary                  the closing lines; exits 1 if a check failed
#
# The cleanup also stops a check still running (with the tools it started), the xnat-sim of
# start_sim (with stop_sim: source scripts/lib/sim.sh first), and every PID in EXTRA_PIDS; it
# removes WORK unless a mount is still there.

E2E_NAME="${E2E_NAME:-e2e}"
WORK=""
CHECK_PID=""
MOUNTS=()
EXTRA_PIDS=()
passed=0
failed=()

say() { printf '%s: %s\n' "$E2E_NAME" "$*"; }

# In the set-up, `fail` ends the script; inside a check (a subshell) it ends that check only.
fail() {
    printf '%s: FAILED: %s\n' "$E2E_NAME" "$*" >&2
    exit 1
}

# Run one check (a function) in a subshell and record how it went; later checks still run.
# The subshell is a background job in its own process group (set -m), waited for with `wait`,
# so an INT or TERM reaches the traps at once, and the cleanup can stop the check's tools too.
check() {
    local what="$1"
    shift
    set -m
    ("$@") </dev/null &
    CHECK_PID=$!
    set +m
    if wait "$CHECK_PID"; then
        passed=$((passed + 1))
        printf '%s: ok   %s\n' "$E2E_NAME" "$what"
    else
        failed+=("$what")
        printf '%s: FAIL %s\n' "$E2E_NAME" "$what" >&2
    fi
    CHECK_PID=""
}

e2e_summary() {
    if [ ${#failed[@]} -gt 0 ]; then
        say "${#failed[@]} of $((passed + ${#failed[@]})) checks FAILED:"
        printf '%s:   %s\n' "$E2E_NAME" "${failed[@]}" >&2
        exit 1
    fi
    say "all $passed checks passed"
}

# require_tools TOOL… : every tool is on PATH, or the script ends naming the first one missing.
require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/test.sh installs what the end-to-end checks need)"
    done
}

# The background xnatfs process of a mount point: it re-ran itself with our mount point as an
# argument, so the exact path (unique to this run) finds it, and only it.
daemon_pids() {
    local mp="$1" dir pid args
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        mapfile -d '' -t args 2>/dev/null <"$dir/cmdline" || continue
        if [ "${#args[@]}" -gt 2 ] && [ "${args[0]}" = xnatfs ] && [ "${args[1]}" = mount ] &&
            printf '%s\n' "${args[@]}" | grep -qxF -- "$mp"; then
            echo "$pid"
        fi
    done
    return 0
}

unmount() {
    local mp="$1"
    if [ "$(id -u)" -eq 0 ]; then umount "$mp"; else fusermount3 -u "$mp"; fi
}

# unmount_and_wait MP : unmount MP and wait (10 s at most) for its background process to exit.
# Ends the check with a message if either does not happen.
unmount_and_wait() {
    local mp="$1" pids pid
    mountpoint -q "$mp" || return 0
    pids="$(daemon_pids "$mp")"
    unmount "$mp" || fail "unmounting $mp failed"
    for pid in $pids; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then fail "xnatfs (pid $pid) still runs 10 s after $mp was unmounted"; fi
    done
    if mountpoint -q "$mp"; then fail "$mp is still mounted after umount"; fi
}

# sim_env CMD… : run CMD with the sim's credentials in the environment (XNAT_USER, XNAT_PASS; never
# on a command line) and no standard input, so a missing credential fails instead of prompting.
sim_env() {
    # Default folders (a spool where none is given) in the work folder, not the home.
    env -u XNAT_HOST XNAT_USER="$SIM_USER" XNAT_PASS="$SIM_PASS" \
        XDG_DATA_HOME="$WORK/xdg-data" XDG_CACHE_HOME="$WORK/xdg-cache" "$@" </dev/null
}

e2e_cleanup() {
    local rc=$? mp pid pids log still_mounted=""
    set +e
    trap - EXIT INT TERM
    # A check still running (interrupted): stop it and the tools it runs, so nothing holds the mount.
    if [ -n "$CHECK_PID" ]; then
        kill -TERM -- "-$CHECK_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 -- "-$CHECK_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$CHECK_PID" 2>/dev/null || true
    fi
    for pid in "${EXTRA_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for mp in "${MOUNTS[@]}"; do
        pids="$(daemon_pids "$mp")"
        if mountpoint -q "$mp" 2>/dev/null; then
            unmount "$mp" 2>/dev/null || { sleep 1; unmount "$mp" 2>/dev/null; } ||
                umount -l "$mp" 2>/dev/null || fusermount3 -uz "$mp" 2>/dev/null || true
        fi
        for pid in $pids; do
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill "$pid" 2>/dev/null || true
        done
    done
    stop_sim
    if [ -n "$WORK" ]; then
        if [ "$rc" -ne 0 ]; then
            for log in "$WORK"/xnatfs*.log; do
                [ -s "$log" ] || continue
                echo "$E2E_NAME: last lines of ${log##*/}:" >&2
                tail -n 20 "$log" >&2
            done
        fi
        # Never remove a folder that is still a mount point (that would delete through it).
        for mp in "${MOUNTS[@]}"; do
            if mountpoint -q "$mp" 2>/dev/null; then still_mounted="$mp"; fi
        done
        if [ -z "$still_mounted" ]; then
            rm -rf "$WORK"
        else
            echo "$E2E_NAME: $still_mounted is still mounted; $WORK was left in place" >&2
        fi
    fi
    exit "$rc"
}

# e2e_workdir : make WORK and install the traps (call once, before starting anything).
e2e_workdir() {
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/xnatfs-$E2E_NAME.XXXXXX")"
    trap e2e_cleanup EXIT
    trap 'echo "$E2E_NAME: interrupted" >&2; exit 130' INT
    trap 'echo "$E2E_NAME: terminated" >&2; exit 143' TERM
}
