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
  lacking=()
  for b in "${bins[@]}"; do
    [ -x "$KUBEBUILDER_ASSETS/$b" ] || lacking+=("$b")
  done
  if [ "${#lacking[@]}" -gt 0 ]; then
    echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable ${lacking[*]} (it needs all of: ${bins[*]});" \
      "point it at a folder that has them, or unset it to build them here" >&2
    exit 1
  fi
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

# Stamped as Kubernetes' release build stamps them (hack/lib/version.sh, kube::version::ldflags), with
# the version pinned in go.mod, so the apiserver reports it (`kubectl version`, helm's kubeVersion
# checks). The commit is not known from a module download; the build date is SOURCE_DATE_EPOCH's,
# else the epoch, so that the build, and its cache key, do not change from one day to the next.
version="$(awk '{ sub(/^[ \t]*require[ \t]+/, "") } $1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "$here/go.mod")"
if [[ ! "$version" =~ ^v([0-9]+)\.([0-9]+)\. ]]; then
  echo "$here/go.mod pins no k8s.io/kubernetes release (found '$version')" >&2
  exit 1
fi
build_date="$(date -u -d "@${SOURCE_DATE_EPOCH:-0}" +%Y-%m-%dT%H:%M:%SZ)"
ldflags=()
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=(
    "-X $pkg.gitVersion=$version"
    "-X $pkg.gitMajor=${BASH_REMATCH[1]}"
    "-X $pkg.gitMinor=${BASH_REMATCH[2]}"
    "-X $pkg.gitTreeState=clean"
    "-X $pkg.gitCommit="
    "-X $pkg.buildDate=$build_date"
  )
done

GOBUILD_LDFLAGS="${ldflags[*]}" exec bash "$here/../gobuild.sh" "$here" \
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
  etcd=go.etcd.io/etcd/server/v3
