#!/usr/bin/env bash
# Prints the directory holding kube-apiserver, kube-controller-manager and etcd for the test bed.
#
# - KUBEBUILDER_ASSETS pointing at a directory with all three binaries: used as is, nothing built
#   (the envtest convention).
# - Otherwise they are built once from the pinned Go modules in this folder (see ../gobuild.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bins=(kube-apiserver kube-controller-manager etcd)

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  for b in "${bins[@]}"; do
    if [ ! -x "$KUBEBUILDER_ASSETS/$b" ]; then
      echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS does not hold all of: ${bins[*]}" >&2
      exit 1
    fi
  done
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

exec bash "$here/../gobuild.sh" "$here" \
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
  etcd=go.etcd.io/etcd/server/v3
