# shellcheck shell=bash
# Shell helpers shared by the scripts that run an xnat-sim (source this file).

# start_sim BIN ROOT USER:PASS WORKDIR [extra serve flags…]
# Starts `BIN serve` on a free loopback port in the background and waits for its first line.
# Sets SIM_PID and URL (for the caller). Returns non-zero with a message on standard error if it
# did not start.
start_sim() {
    local bin="$1" root="$2" creds="$3" work="$4"
    shift 4
    "$bin" serve --root "$root" --listen 127.0.0.1:0 --user "$creds" "$@" \
        >"$work/sim.out" 2>"$work/sim.err" &
    SIM_PID=$!
    URL=""
    local line
    for _ in $(seq 300); do
        line="$(head -n 1 "$work/sim.out" 2>/dev/null || true)"
        if [[ "$line" == "xnat-sim listening on "* ]]; then
            # shellcheck disable=SC2034 # the caller reads URL
            URL="${line#xnat-sim listening on }"
            return 0
        fi
        if ! kill -0 "$SIM_PID" 2>/dev/null; then
            echo "xnat-sim exited at start: $(cat "$work/sim.err")" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "xnat-sim did not say where it listens within 30 s" >&2
    return 1
}
