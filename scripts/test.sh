#!/usr/bin/env bash
# The one test command (README.md names it; .ci/run calls it).
#
# It installs what the tests need on a fresh Debian machine (apt packages, a Python venv with the
# pinned XNAT clients (pyxnat, xnatpy, xnatutils, dax, bxl, xnat-browser), nibabel, fslpy,
# brainextractor and pybids, npm's bids-validator under
# .node/), then runs every check in turn, the end-to-end tool checks of scripts/e2e.sh (reads),
# scripts/e2e-write.sh (writes) and scripts/e2e-bids.sh (the views), a SLURM job array on
# mounts sharing a cache (scripts/slurm-array.sh), then a short chaos soak
# (scripts/soak.sh) last, and
# ends with a plain summary. A failing step does not stop the later ones, so one run shows
# everything that is wrong; the exit code is non-zero if any step failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
VENV="${XNATFS_VENV:-$ROOT/.venv}"
# fuse3 and attr (getfattr) for the mount tests; dcm2niix, mitools (miconv) and mricron-data (the
# Colin27 head) for the end-to-end tool checks of scripts/e2e.sh; curl and mricron-data for those
# of scripts/e2e-write.sh; nodejs (node and npm) for the BIDS validator of scripts/e2e-bids.sh;
# man-db (man, with groff) to render the pages scripts/install.sh installs (tests/install.rs);
# slurm-wlm and munge for the one-node cluster of scripts/slurm-array.sh.
APT_PACKAGES=(fuse3 curl attr dcm2niix mitools mricron-data nodejs man-db slurm-wlm munge)
# The BIDS validator scripts/e2e-bids.sh runs, from npm, pinned, installed under .node/.
BIDS_VALIDATOR_VERSION=1.15.0
NODE_PREFIX="$ROOT/.node"

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
    "$VENV/bin/python" -c 'import pyxnat, xnat, xnatutils, dax, bxl, xnat_browser, pytest, nibabel, fsl.data.image, brainextractor.main, bids' &&
        echo "venv ready: $VENV"
}

install_bids_validator() {
    local bin="$NODE_PREFIX/node_modules/.bin/bids-validator"
    if [ -x "$bin" ] && grep -q "\"version\": \"$BIDS_VALIDATOR_VERSION\"" \
        "$NODE_PREFIX/node_modules/bids-validator/package.json" 2>/dev/null; then
        echo "bids-validator $BIDS_VALIDATOR_VERSION present"
        return 0
    fi
    if ! command -v npm >/dev/null; then
        # Debian's nodejs leaves npm to its own package; NodeSource's bundles it.
        [ "$(id -u)" -eq 0 ] || { echo "npm is missing, and not root to install it" >&2; return 1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm || return 1
    fi
    # The whole tree pinned by scripts/bids-validator/package-lock.json: a fresh resolution
    # can ask the registry for versions it does not have.
    mkdir -p "$NODE_PREFIX" &&
        cp scripts/bids-validator/package.json scripts/bids-validator/package-lock.json "$NODE_PREFIX/" &&
        npm ci --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error >/dev/null &&
        [ -x "$bin" ] && echo "bids-validator $BIDS_VALIDATOR_VERSION in $NODE_PREFIX"
}

client_suite() {
    cargo build -q -p xnat-sim || return 1
    XNAT_SIM_BIN="$ROOT/target/debug/xnat-sim" "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/clients
}

run_step "install apt packages (${APT_PACKAGES[*]})" install_apt_packages
run_step "python venv with pinned XNAT clients and tools" install_python_venv
run_step "bids-validator $BIDS_VALIDATOR_VERSION from npm" install_bids_validator
run_step "cargo fmt --check" cargo fmt --all --check
run_step "cargo clippy --all-targets -- -D warnings" cargo clippy --workspace --all-targets -- -D warnings
run_step "cargo test --workspace" cargo test --workspace --no-fail-fast
run_step "client suite (pyxnat, xnatpy, xnatutils, dax, bxl, xnat-browser against xnat-sim)" client_suite
run_step "end-to-end tools on a mount (scripts/e2e.sh)" env XNATFS_VENV="$VENV" scripts/e2e.sh
run_step "end-to-end tools writing through a mount (scripts/e2e-write.sh)" env XNATFS_VENV="$VENV" scripts/e2e-write.sh
run_step "BIDS apps and tables on the views (scripts/e2e-bids.sh)" env XNATFS_VENV="$VENV" \
    BIDS_VALIDATOR="$NODE_PREFIX/node_modules/.bin/bids-validator" scripts/e2e-bids.sh
# A real SLURM job array (slurm-wlm and munge, started and stopped by the script) on mounts
# sharing a cache: debug binaries.
run_step "SLURM job array of 8 tasks on xnatfs mounts (scripts/slurm-array.sh --debug)" \
    env XNATFS_SLURM_RESULTS="$ROOT/target/slurm-array.json" scripts/slurm-array.sh --debug
# The chaos soak, short (its 10-minute run is `scripts/soak.sh`, by hand): debug binaries.
run_step "chaos soak, 30 s per Range mode (scripts/soak.sh --minutes 0.5)" \
    scripts/soak.sh --debug --minutes 0.5 --range both --kill-every 15

passed=0
failed=0
printf '\n==> summary\n'
for i in "${!step_names[@]}"; do
    printf '  %-7s %s\n' "${step_results[$i]}" "${step_names[$i]}"
    if [ "${step_results[$i]}" = ok ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "test.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
