#!/usr/bin/env bash
# Prints the folder holding `health`, the pinned kstatus + Argo CD Lua helper that
# tests/bed_health.rs runs, built once from this folder's Go module.
#
# gobuild.sh keys its cache on go.mod, go.sum and its arguments. This module has source of its own
# (main.go), so its hash goes into the arguments, as the name of a second copy of the command: an
# edit of main.go rebuilds (incrementally), and nothing else does.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(sha256sum "$here/main.go" | cut -c1-12)"
bash "$here/../gobuild.sh" "$here" health=. "health-$src=."
