#!/usr/bin/env bash
# The one test command (README.md names it; .ci/run calls it).
#
# It installs what the tests need on a fresh Debian machine (apt packages, a Python venv with the
# pinned XNAT clients, nibabel, fslpy and brainextractor), then runs every check in turn, the
# end-to-end tool checks of scripts/e2e.sh (reads) and scripts/e2e-write.sh (writes) last, and
# ends with a plain summary. A failing step does not stop the later ones, so one run shows
# everything that is wrong; the exit code is non-zero if any step failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
VENV="${XNATFS_VENV:-$ROOT/.venv}"
# fuse3 and attr (getfattr) for the mount tests; dcm2niix, mitools (miconv) and mricron-data (the
# Colin27 head) for the end-to-end tool checks of scripts/e2e.sh; curl and mricron-data for those
# of scripts/e2e-write.sh.
APT_PACKAGES=(fuse3 curl attr dcm2niix mitools mricron-data)

step_names=()
step_results=()

log() { printf '\n==> %s\n' "$*"; }

run_step() {
    local name="$1"
    shift
    log "$name"
    local started=$SECONDS
    if "$@"; then
        step_results+=("ok")
    else
        step_results+=("FAILED")
    fi
    step_names+=("$name ($((SECONDS - started)) s)")
}

install_apt_packages() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "apt packages present: ${APT_PACKAGES[*]}"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing apt packages ${missing[*]}, and not root to install them" >&2
        return 1
    fi
    echo "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_python_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" || return 1
    fi
    local stamp="$VENV/.requirements"
    if ! cmp -s tests/clients/requirements.txt "$stamp"; then
        "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/clients/requirements.txt || return 1
        cp tests/clients/requirements.txt "$stamp"
    fi
    "$VENV/bin/python" -c 'import pyxnat, xnat, pytest, nibabel, fsl.data.image, brainextractor.main' &&
        echo "venv ready: $VENV"
}

client_suite() {
    cargo build -q -p xnat-sim || return 1
    XNAT_SIM_BIN="$ROOT/target/debug/xnat-sim" "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/clients
}

run_step "install apt packages (${APT_PACKAGES[*]})" install_apt_packages
run_step "python venv with pinned XNAT clients and tools" install_python_venv
run_step "cargo fmt --check" cargo fmt --all --check
run_step "cargo clippy --all-targets -- -D warnings" cargo clippy --workspace --all-targets -- -D warnings
run_step "cargo test --workspace" cargo test --workspace
run_step "client suite (pyxnat, xnatpy against xnat-sim)" client_suite
run_step "end-to-end tools on a mount (scripts/e2e.sh)" env XNATFS_VENV="$VENV" scripts/e2e.sh
run_step "end-to-end tools writing through a mount (scripts/e2e-write.sh)" env XNATFS_VENV="$VENV" scripts/e2e-write.sh

passed=0
failed=0
printf '\n==> summary\n'
for i in "${!step_names[@]}"; do
    printf '  %-7s %s\n' "${step_results[$i]}" "${step_names[$i]}"
    if [ "${step_results[$i]}" = ok ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "test.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
