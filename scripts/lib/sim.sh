# shellcheck shell=bash
# Shell helpers shared by the scripts that run an xnat-sim (source this file). The waiting and
# stopping is `xnat-sim start` and `xnat-sim stop` (xnat-sim/README.md); these only remember
# which binary and PID file to use.

SIM_BIN=""      # the xnat-sim of start_sim, for stop_sim
SIM_PID_FILE="" # set before the server runs, so stop_sim also stops one whose start was interrupted
SIM_PID=""
URL=""

# start_sim BIN ROOT USER:PASS WORKDIR [extra serve flags…]
# Starts BIN on a free loopback port in the background (PID file WORKDIR/sim.pid, output in
# WORKDIR/sim.log) and waits until it listens. Sets SIM_PID and URL (for the caller). Returns
# non-zero, with xnat-sim's message on standard error, if it did not start.
start_sim() {
    local bin="$1" root="$2" creds="$3" work="$4"
    shift 4
    SIM_BIN="$bin"
    SIM_PID_FILE="$work/sim.pid"
    # shellcheck disable=SC2034 # the caller reads URL
    URL="$("$bin" start --pid-file "$SIM_PID_FILE" --log "$work/sim.log" \
        --root "$root" --listen 127.0.0.1:0 --user "$creds" "$@")" || return 1
    # shellcheck disable=SC2034 # the caller reads SIM_PID
    SIM_PID="$(cat "$SIM_PID_FILE")"
}

# stop_sim : stop the xnat-sim of start_sim (SIGTERM, then SIGKILL after 10 s) and wait until
# it is gone. Does nothing if none was started; a second call does nothing either.
stop_sim() {
    [ -n "$SIM_PID_FILE" ] || return 0
    "$SIM_BIN" stop --pid-file "$SIM_PID_FILE" || return 1
    SIM_PID_FILE=""
    SIM_PID=""
}
