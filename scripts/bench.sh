#!/usr/bin/env bash
# Benchmarks: builds in release mode and runs scripts/bench/bench.py (see its header; each
# scenario is a module beside it). `scripts/bench.sh --quick` runs a small version in a few
# minutes; `--only upload` runs one scenario and keeps the others' results. Writes
# docs/BENCHMARKS.md and docs/benchmarks.json. Needs root (FUSE mounts, dropping the page cache)
# and the venv that scripts/test.sh makes (for the pyxnat baseline).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -p xnatfs -p xnat-sim --bin xnatfs --bin xnat-sim
VENV="${XNATFS_VENV:-$PWD/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r tests/clients/requirements.txt
fi
exec python3 scripts/bench/bench.py --venv-python "$VENV/bin/python" "$@"
