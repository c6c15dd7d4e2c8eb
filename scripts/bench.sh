#!/usr/bin/env bash
# Benchmarks: builds in release mode and runs scripts/bench/bench.py (see its header; each
# scenario is a module beside it). `scripts/bench.sh --quick` runs a small version in a few
# minutes; `--only upload` runs one scenario and keeps the others' results. Writes
# docs/BENCHMARKS.md and docs/benchmarks.json. Needs root (FUSE mounts, dropping the page cache)
# and the venv that scripts/test.sh makes (for the pyxnat baseline).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The peers of the read scenario (nginx, rclone) and the tools the scenarios run (fio: the fio
# scenario).
missing=()
for tool in nginx:nginx-light rclone:rclone curl:curl fusermount3:fuse3 fio:fio; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get install -y --no-install-recommends "${missing[@]}" ||
        { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
fi
cargo build --release -p xnatfs -p xnat-sim --bin xnatfs --bin xnat-sim --example fuse_ceiling
VENV="${XNATFS_VENV:-$PWD/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r tests/clients/requirements.txt
fi
exec python3 scripts/bench/bench.py --venv-python "$VENV/bin/python" "$@"
