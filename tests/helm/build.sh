#!/usr/bin/env bash
# Prints the path of the pinned helm binary, built once from this folder's Go module.
#
# Stamped as helm's own Makefile stamps a release (its version, and the Kubernetes version of its
# client-go modules as the default for `helm template` and the deprecation lint), both read from
# go.mod. The commit is not known from a module download.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pin() { awk -v m="$1" '{ sub(/^[ \t]*require[ \t]+/, "") } $1 == m && $2 ~ /^v[0-9]/ { print $2; exit }' "$here/go.mod"; }
version="$(pin helm.sh/helm/v3)"
client_go="$(pin k8s.io/client-go)"
if [ -z "$version" ] || [[ ! "$client_go" =~ ^v0\.([0-9]+)\. ]]; then
  echo "$here/go.mod pins no helm.sh/helm/v3 ('$version') or k8s.io/client-go v0.x ('$client_go')" >&2
  exit 1
fi
kube_minor="${BASH_REMATCH[1]}"
ldflags=(
  "-X helm.sh/helm/v3/internal/version.version=$version"
  "-X helm.sh/helm/v3/internal/version.gitTreeState=clean"
)
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=("-X $pkg.k8sVersionMajor=1" "-X $pkg.k8sVersionMinor=$kube_minor")
done
dir="$(GOBUILD_LDFLAGS="${ldflags[*]}" bash "$here/../gobuild.sh" "$here" helm=helm.sh/helm/v3/cmd/helm)"
echo "$dir/helm"
