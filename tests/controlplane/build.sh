#!/usr/bin/env bash
# Prints the directory holding kube-apiserver, kube-controller-manager and etcd for the test bed,
# building them from the pinned Go modules in this folder only when no cached build matches.
#
# - KUBEBUILDER_ASSETS pointing at a directory with all three binaries: used as is, nothing built
#   (the envtest convention).
# - Otherwise the binaries live in $OMS_CACHE_DIR/controlplane/<hash of go.mod, go.sum, this file>,
#   so a pin change rebuilds and nothing else does. Go's own build cache makes rebuilds incremental.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bins=(kube-apiserver kube-controller-manager etcd)

has_all() {
  local dir="$1" b
  for b in "${bins[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  if has_all "$KUBEBUILDER_ASSETS"; then
    echo "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS does not hold all of: ${bins[*]}" >&2
  exit 1
fi

cache="${OMS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oms-data-operator}"
key="$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -c1-16)"
out="$cache/controlplane/$key"
if has_all "$out"; then
  echo "$out"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "Go is not installed (no 'go' on PATH); it is needed once to build the test control plane." >&2
  echo "Install Go 1.25 or newer, or set KUBEBUILDER_ASSETS to a directory with: ${bins[*]}" >&2
  exit 1
fi

echo "building the test control plane into $out (cached afterwards)" >&2
mkdir -p "$out.tmp"
start=$(date +%s)
(
  cd "$here"
  go build -trimpath -ldflags="-s -w" -o "$out.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager
  go build -trimpath -ldflags="-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
) >&2
rm -rf "$out"
mv "$out.tmp" "$out"
echo "control plane built in $(( $(date +%s) - start ))s" >&2
echo "$out"
