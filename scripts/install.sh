#!/usr/bin/env bash
# Install xnatfs with its mount(8) helper name, man pages and shell completions, or remove them.
#
#   scripts/install.sh [PREFIX]              (default PREFIX=/usr/local)
#   scripts/install.sh --uninstall [PREFIX]
#
# Builds a release binary (`cargo build --release`; set XNATFS_BIN=FILE to install that binary
# instead, with no build) and installs:
#   PREFIX/bin/xnatfs
#   SBIN/mount.xnatfs -> PREFIX/bin/xnatfs              (SBIN defaults to /sbin)
#   PREFIX/share/man/man1/xnatfs.1, xnatfs-mount.1, xnatfs-status.1, xnatfs-token.1,
#   xnatfs-warm.1 and
#   man8/mount.xnatfs.8
#   PREFIX/share/bash-completion/completions/xnatfs
#   PREFIX/share/zsh/site-functions/_xnatfs
#   PREFIX/share/fish/vendor_completions.d/xnatfs.fish
# so that `mount -t xnatfs …`, fstab lines, `mount.xnatfs SERVER MOUNTPOINT`, `man xnatfs-mount`
# and tab completion all work. The pages and completions are made by the installed binary
# (`xnatfs generate man DIR`, `xnatfs generate completions SHELL`). Set SBIN to put the helper
# elsewhere (e.g. SBIN=$HOME/bin for a user install without mount(8) support). Needs write access
# to PREFIX and SBIN.
#
# --uninstall removes those files again (the man pages the installed binary names, or, if it is
# gone already, xnatfs.1, xnatfs-*.1 and mount.xnatfs.8), and SBIN/mount.xnatfs only if it is a
# symlink to PREFIX/bin/xnatfs. Folders are left in place.
set -euo pipefail

uninstall=false
if [ "${1:-}" = --uninstall ]; then
    uninstall=true
    shift
fi
if [ $# -gt 1 ] || [[ "${1:-}" == -* ]]; then
    echo "usage: scripts/install.sh [--uninstall] [PREFIX]" >&2
    exit 2
fi
# Absolute before the cd below, so a relative PREFIX means the caller's folder and the helper
# symlink does not dangle.
PREFIX="$(realpath -m -- "${1:-/usr/local}")"
SBIN="$(realpath -m -- "${SBIN:-/sbin}")"
BIN="$PREFIX/bin/xnatfs"
HELPER="$SBIN/mount.xnatfs"
MAN="$PREFIX/share/man"
BASH_COMPLETION="$PREFIX/share/bash-completion/completions/xnatfs"
ZSH_COMPLETION="$PREFIX/share/zsh/site-functions/_xnatfs"
FISH_COMPLETION="$PREFIX/share/fish/vendor_completions.d/xnatfs.fish"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The man pages, as the installed binary makes them into $work/man: their names (FILE.SECTION).
page_names() {
    "$BIN" generate man "$work/man" && ls "$work/man"
}

if $uninstall; then
    removed=()
    names=""
    if [ -x "$BIN" ]; then
        names=$(page_names)
    else
        for file in "$MAN"/man1/xnatfs.1 "$MAN"/man1/xnatfs-*.1 "$MAN"/man8/mount.xnatfs.8; do
            if [ -e "$file" ]; then names+=" ${file##*/}"; fi
        done
    fi
    for page in $names; do
        file="$MAN/man${page##*.}/$page"
        if [ -e "$file" ]; then rm -f "$file" && removed+=("$file"); fi
    done
    for file in "$BASH_COMPLETION" "$ZSH_COMPLETION" "$FISH_COMPLETION" "$BIN"; do
        if [ -e "$file" ]; then rm -f "$file" && removed+=("$file"); fi
    done
    if [ -L "$HELPER" ] && [ "$(readlink "$HELPER")" = "$BIN" ]; then
        rm -f "$HELPER" && removed+=("$HELPER")
    elif [ -e "$HELPER" ] || [ -L "$HELPER" ]; then
        echo "left $HELPER in place: it is not a symlink to $BIN" >&2
    fi
    echo "removed ${#removed[@]} files"
    for file in "${removed[@]}"; do echo "  $file"; done
    exit 0
fi

if [ -n "${XNATFS_BIN:-}" ]; then
    built="$(realpath -- "$XNATFS_BIN")"
    [ -x "$built" ] || { echo "XNATFS_BIN=$XNATFS_BIN is not an executable file" >&2; exit 1; }
else
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    cargo build --release --bin xnatfs
    built="$(realpath -- "${CARGO_TARGET_DIR:-target}/release/xnatfs")"
fi
install -D -m 0755 "$built" "$BIN"
mkdir -p "$SBIN"
ln -sfn "$BIN" "$HELPER"
for page in $(page_names); do
    install -D -m 0644 "$work/man/$page" "$MAN/man${page##*.}/$page"
done
for shell in bash zsh fish; do
    "$BIN" generate completions "$shell" >"$work/$shell"
done
install -D -m 0644 "$work/bash" "$BASH_COMPLETION"
install -D -m 0644 "$work/zsh" "$ZSH_COMPLETION"
install -D -m 0644 "$work/fish" "$FISH_COMPLETION"
echo "installed $BIN, $HELPER, man pages under $MAN and completions for bash, zsh and fish"
