#!/usr/bin/env bash
# Builds Go commands from a pinned module folder once and prints the folder holding them.
#
#   gobuild.sh <module dir> <name>=<package> ...
#
# The binaries live in $OMS_CACHE_DIR/gobuild/<module>-<hash of go.mod, go.sum, this script and the
# arguments>, so a pin change rebuilds and nothing else does; Go's own build cache makes a rebuild
# incremental.
set -euo pipefail

mod="$(cd "$1" && pwd)"
shift
names=()
pkgs=()
for spec in "$@"; do
  names+=("${spec%%=*}")
  pkgs+=("${spec#*=}")
done

has_all() {
  local dir="$1" n
  for n in "${names[@]}"; do [ -x "$dir/$n" ] || return 1; done
}

cache="${OMS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oms-data-operator}"
key="$( (cat "$mod/go.mod" "$mod/go.sum" "${BASH_SOURCE[0]}"; echo "$@") | sha256sum | cut -c1-16)"
out="$cache/gobuild/$(basename "$mod")-$key"
if has_all "$out"; then
  echo "$out"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "Go is not installed (no 'go' on PATH); it is needed once to build: ${names[*]}." >&2
  echo "Install Go 1.25 or newer (or, for the control plane, set KUBEBUILDER_ASSETS to a directory with its binaries)." >&2
  exit 1
fi

echo "building ${names[*]} into $out (cached afterwards)" >&2
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
start=$(date +%s)
for i in "${!names[@]}"; do
  (cd "$mod" && go build -trimpath -ldflags="-s -w" -o "$out.tmp/${names[$i]}" "${pkgs[$i]}") >&2
done
rm -rf "$out"
mv "$out.tmp" "$out"
echo "built ${names[*]} in $(( $(date +%s) - start ))s" >&2
echo "$out"
