#!/usr/bin/env bash
# Builds Go commands from a pinned module folder once and prints the folder holding them.
#
#   [GOBUILD_LDFLAGS='-X pkg.name=value ...'] gobuild.sh <module dir> <name>=<package> ...
#
# The binaries live in $OMS_CACHE_DIR/gobuild/<module>-<hash of go.mod, go.sum, this script, the
# arguments and GOBUILD_LDFLAGS>, so a pin change rebuilds and nothing else does; Go's own build
# cache makes a rebuild incremental. GOBUILD_LDFLAGS is added to "-s -w" (e.g. version stamps).
#
# Builders of the same folder may run at once (two clones' `make test`): one holds <folder>.lock
# (flock) while it builds and the others wait, then use its result. Each build goes to a temp dir
# of its own, published with one rename, so a published folder is always complete and is never
# removed or replaced while someone may be using it.
set -euo pipefail

mod="$(cd "$1" && pwd)"
shift
names=()
pkgs=()
for spec in "$@"; do
  names+=("${spec%%=*}")
  pkgs+=("${spec#*=}")
done
ldflags="-s -w${GOBUILD_LDFLAGS:+ $GOBUILD_LDFLAGS}"

# The names of the commands not (yet) in folder $1.
missing() {
  local dir="$1" n out=()
  for n in "${names[@]}"; do [ -x "$dir/$n" ] || out+=("$n"); done
  echo "${out[*]}"
}
has_all() { [ -d "$1" ] && [ -z "$(missing "$1")" ]; }

cache="${OMS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oms-data-operator}"
key="$( (cat "$mod/go.mod" "${BASH_SOURCE[0]}"; cat "$mod/go.sum" 2>/dev/null || true; printf '%s\n' "$@" "ldflags=$ldflags") | sha256sum | cut -c1-16)"
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

mkdir -p "$(dirname "$out")"
if command -v flock >/dev/null 2>&1; then
  exec {lock}>>"$out.lock"
  if ! flock -n "$lock"; then
    echo "waiting for another build of ${names[*]} into $out to finish" >&2
    flock "$lock"
  fi
  if has_all "$out"; then
    echo "$out"
    exit 0
  fi
  # Builders hold the lock while they build: temp dirs left now are those of builders that died.
  rm -rf "$out".tmp.*
fi

tmp="$(mktemp -d "$out.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "building ${names[*]} into $out (cached afterwards)" >&2
start=$(date +%s)
for i in "${!names[@]}"; do
  (cd "$mod" && go build -trimpath -ldflags="$ldflags" -o "$tmp/${names[$i]}" "${pkgs[$i]}") >&2
done
lacking="$(missing "$tmp")"
if [ -n "$lacking" ]; then
  echo "go build exited 0 but did not write: $lacking (into $tmp)" >&2
  exit 1
fi
chmod 755 "$tmp"

# A folder that lacks commands was never published by this script (it publishes complete folders
# only), so nobody uses it: move it aside before publishing over it.
if [ -e "$out" ] && ! has_all "$out"; then
  stale="$(mktemp -d "$out.stale.XXXXXX")"
  mv -T "$out" "$stale/old" 2>/dev/null || true
  rm -rf "$stale"
fi
# rename(2) of a directory: atomic, and it fails rather than replace a folder another builder
# (one without flock) published first; theirs is as good as ours.
if ! mv -T "$tmp" "$out" 2>/dev/null; then
  if ! has_all "$out"; then
    echo "cannot publish the build into $out, which lacks: $(missing "$out")" >&2
    exit 1
  fi
fi
echo "built ${names[*]} in $(( $(date +%s) - start ))s" >&2
echo "$out"
