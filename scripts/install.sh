#!/usr/bin/env bash
# Build xnatfs in release mode and install it with its mount(8) helper name.
#
#   scripts/install.sh [PREFIX]      (default PREFIX=/usr/local; needs write access to it and /sbin)
#
# Installs PREFIX/bin/xnatfs and the symlink /sbin/mount.xnatfs -> PREFIX/bin/xnatfs, so that
# `mount -t xnatfs …`, fstab lines and `mount.xnatfs SERVER MOUNTPOINT` all work. Set SBIN to put
# the helper elsewhere (e.g. SBIN=$HOME/bin for a user install without mount(8) support).
set -euo pipefail
PREFIX="${1:-/usr/local}"
SBIN="${SBIN:-/sbin}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --bin xnatfs
install -D -m 0755 target/release/xnatfs "$PREFIX/bin/xnatfs"
mkdir -p "$SBIN"
ln -sf "$PREFIX/bin/xnatfs" "$SBIN/mount.xnatfs"
echo "installed $PREFIX/bin/xnatfs and $SBIN/mount.xnatfs"
