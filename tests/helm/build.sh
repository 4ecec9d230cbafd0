#!/usr/bin/env bash
# Prints the path of the pinned helm binary, built once from this folder's Go module.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$(bash "$here/../gobuild.sh" "$here" helm=helm.sh/helm/v3/cmd/helm)"
echo "$dir/helm"
