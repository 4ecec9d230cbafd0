#!/bin/sh
# The one recipe for the release binary: a static (musl) build, used by the Dockerfile and by
# `make static-binary`, so the binary tested here is the binary shipped.
#   hack/static-build.sh [output path]
set -eu
target=x86_64-unknown-linux-musl
cargo build --release --locked --target "$target" --bin oms-data-operator
built="${CARGO_TARGET_DIR:-target}/$target/release/oms-data-operator"
if [ -n "${1:-}" ]; then
  mkdir -p "$(dirname "$1")"
  cp "$built" "$1"
fi
echo "$built"
