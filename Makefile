# oms-data-operator — build, lint and test entry points. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Expensive outputs live outside the checkout, so a fresh clone on the same machine reuses them:
# the cargo target dir, the control-plane binaries (keyed by their pins) and Go's build cache.
OMS_CACHE_DIR ?= $(HOME)/.cache/oms-data-operator
export OMS_CACHE_DIR
export CARGO_TARGET_DIR ?= $(OMS_CACHE_DIR)/target
PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed-$(shell sha256sum tests/emulator/requirements.txt | cut -c1-12)
# Bed tests wait on processes more than on CPU; run several at once.
BED_TEST_THREADS ?= 4

.PHONY: help
help:
	@echo "make demo          the operator end to end on a local bed: dev example to Ready, then PING"
	@echo "make test          fmt check, clippy, unit tests, cfn-lint, helm lint, hadolint, bed tests, the demo,"
	@echo "                   and the static release binary (what CI runs)"
	@echo "make crds          regenerate crds/ and the chart's CRDs from the Rust types"
	@echo "make static-binary the Dockerfile's static musl binary, checked and sized"
	@echo "make venv          project-local Python venv with the pinned AWS emulator and cfn-lint"
	@echo "make bench         operator figures on the bed (latency, AWS calls, RSS with 100 resources), then"
	@echo "                   1,000 resources against the bare-SDK floor, with a chart (docs/bench/)"
	@echo "make controlplane  build (once) the pinned kube-apiserver, kube-controller-manager, etcd"
	@echo "make lint-templates  cfn-lint the CloudFormation templates"

$(VENV_STAMP): tests/emulator/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ is needed for the AWS emulator: '$(PYTHON)' not found" >&2; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/emulator/requirements.txt
	touch $@

.PHONY: venv
venv: $(VENV_STAMP)

.PHONY: controlplane
controlplane:
	@bash tests/controlplane/build.sh

.PHONY: fmt-check
fmt-check:
	cargo fmt --all -- --check

.PHONY: clippy
clippy:
	cargo clippy --all-targets --locked -- -D warnings

.PHONY: unit
unit:
	cargo test --locked --lib --bins

.PHONY: lint-templates
# The shipped templates, and the ones the operator generates for the table examples (their indexes
# written in).
lint-templates: $(VENV_STAMP)
	$(VENV)/bin/cfn-lint --regions us-east-1 -- templates/data/*.json
	generated="$$(mktemp -d)"; trap 'rm -rf "$$generated"' EXIT; \
	for f in examples/dynamodb/*.yaml; do \
	  cargo run --locked --quiet -- template -f "$$f" > "$$generated/$$(basename "$$f" .yaml).json"; \
	done; \
	$(VENV)/bin/cfn-lint --regions us-east-1 -- "$$generated"/*.json

.PHONY: bed
# kubectl (from demo-tools) for the bed tests that run it, as a user would.
bed: $(VENV_STAMP) demo-tools
	assets="$$(bash tests/controlplane/build.sh)"; helm="$$(bash tests/helm/build.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" OMS_HELM="$$helm" OMS_EMULATOR_PYTHON="$(CURDIR)/$(VENV)/bin/python" \
	  cargo test --locked --test 'bed_*' -- --test-threads=$(BED_TEST_THREADS)

# helm lint in both RBAC modes, with the pinned helm (built once from its Go module).
.PHONY: chart-lint
chart-lint:
	helm="$$(bash tests/helm/build.sh)"; \
	"$$helm" lint --strict charts/oms-data-operator; \
	"$$helm" lint --strict charts/oms-data-operator --set 'watchNamespaces={team-a,team-b}' \
	  --set operator.clusterId=c1 --set metrics.serviceMonitor.enabled=true \
	  --set serviceAccount.irsaRoleArn=arn:aws:iam::123456789012:role/oms-data-operator

.PHONY: hadolint
hadolint: $(VENV_STAMP)
	$(VENV)/bin/hadolint Dockerfile

# The exact static binary the Dockerfile builds (same script, target and flags), checked and sized.
STATIC_TARGET := x86_64-unknown-linux-musl
.PHONY: static-binary
static-binary:
	@rustup target list --installed | grep -qx $(STATIC_TARGET) || rustup target add $(STATIC_TARGET)
	@command -v musl-gcc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null; }
	bin="$$(./hack/static-build.sh | tail -n 1)"; \
	if readelf -d "$$bin" | grep -q NEEDED; then echo "$$bin needs shared libraries" >&2; exit 1; fi; \
	"$$bin" --version; \
	"$$bin" crd | diff -u crds/oms-data-operator.yaml - >/dev/null || { echo "the static binary's CRDs differ from crds/" >&2; exit 1; }; \
	"$$bin" template | diff -q templates/data/elasticache-redis.json - >/dev/null; \
	echo "static binary: $$bin, $$(stat -c %s "$$bin") bytes"

.PHONY: crds
crds:
	cargo run --quiet -- crd > crds/oms-data-operator.yaml
	cp crds/oms-data-operator.yaml charts/oms-data-operator/crds/oms-data-operator.yaml

# The demo's tools, from Debian's packages when missing.
.PHONY: demo-tools
demo-tools:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null || missing="$$missing redis-tools"; \
	command -v kubectl >/dev/null || missing="$$missing kubectl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing from Debian's packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The product end to end on the bed; DEMO_EXIT=1 exits after the PONG instead of running on.
.PHONY: demo
demo: $(VENV_STAMP) demo-tools
	cargo build --locked
	assets="$$(bash tests/controlplane/build.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" OMS_EMULATOR_PYTHON="$(CURDIR)/$(VENV)/bin/python" \
	  cargo test --locked --test demo

# Figures for notes and reviews (printed, not asserted): latency, AWS calls, steady-state calls and
# RSS on the debug build; then 1,000 resources on the static release binary against the bare-SDK
# floor, written with a chart to docs/bench/ (BENCH_N to change the count).
BENCH_N ?= 1000
.PHONY: bench
bench: $(VENV_STAMP)
	cargo build --locked
	assets="$$(bash tests/controlplane/build.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" OMS_EMULATOR_PYTHON="$(CURDIR)/$(VENV)/bin/python" \
	  cargo test --locked --test bench_operator
	$(MAKE) bench-scale

.PHONY: bench-scale
bench-scale: $(VENV_STAMP)
	bin="$$(./hack/static-build.sh | tail -n 1)"; assets="$$(bash tests/controlplane/build.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" OMS_EMULATOR_PYTHON="$(CURDIR)/$(VENV)/bin/python" OMS_OPERATOR_BIN="$$bin" \
	  OMS_BENCH_N=$(BENCH_N) cargo test --locked --test bench_scale

.PHONY: demo-check
demo-check:
	DEMO_EXIT=1 $(MAKE) demo

.PHONY: test
test: fmt-check clippy unit lint-templates chart-lint hadolint bed demo-check static-binary
