#!/usr/bin/env bash
# The chaos soak (scripts/soak/soak.py: readers and writers on a mount under changing faults and
# kill -9s of the daemon, every byte and upload verified). Not part of scripts/test.sh's default
# run except as a short version (`--minutes 1`). Needs root (FUSE mounts).
#   scripts/soak.sh [--minutes 10] [--range on|off|both] [--debug] [--json FILE]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
profile=release
args=()
for a in "$@"; do
    if [ "$a" = --debug ]; then profile=debug; else args+=("$a"); fi
done
if [ "$profile" = release ]; then
    cargo build --release -p xnatfs -p xnat-sim --bin xnatfs --bin xnat-sim
else
    cargo build -p xnatfs -p xnat-sim --bin xnatfs --bin xnat-sim
fi
exec python3 scripts/soak/soak.py --bin "${CARGO_TARGET_DIR:-target}/$profile" "${args[@]}"
