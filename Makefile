# Quick start:  make serve   (proxy on :7004 with the bundled connectors)
#               make test    (lint, type-check and the whole test suite)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: serve test lint typecheck pytest bench clean k8s image test-packages e2e cluster-up cluster-down lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml sdk/pyproject.toml connectors/http/pyproject.toml connectors/postgres/pyproject.toml connectors/email/pyproject.toml
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -e sdk -e connectors/http -e connectors/postgres -e connectors/email -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/connector-proxy serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest's exit code 5 (no tests collected) is a failure, never a pass. The coverage gate
# (fail_under in pyproject.toml) holds for the whole suite: `make pytest PYTEST_ARGS=tests/proxy COV_ARGS=`.
COV_ARGS ?= --cov --cov-report=term
pytest: $(STAMP)
	$(BIN)/python -m pytest $(COV_ARGS) $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

test: lint typecheck k8s image test-packages pytest

# The real Kubernetes binaries the e2e tests run (built once from the Go module proxy into the user
# cache; tools/k8s/README.md). A missing Go toolchain fails here with what to install.
k8s:
	tools/k8s/build.sh --with kubectl,kubelet,kube-scheduler,kube-proxy

# Debian packages the tests use (root installs them): the PostgreSQL server binaries the PostgreSQL
# connector's tests start, curl, which the README's commands use (tests/docs runs them), and
# chromium, the headless browser that renders /docs and /redoc offline (tests/proxy/routers), and
# openssl, which the chart README's key example uses (tests/e2e/test_doc_commands.py), and
# prometheus: promtool checks the chart's alerts and a real Prometheus runs the dashboard's queries.
test-packages:
	tools/postgres/install.sh
	tools/apt-ensure.sh curl chromium openssl prometheus

# The project image from the Dockerfile (podman/buildah from Debian; a stand-in base image where no
# registry is reachable; tools/node/README.md). Needs root.
IMAGE ?= localhost/connector-proxy:dev
image:
	tools/node/image.sh --tag $(IMAGE)

# The image's pinned dependency versions (constraints.txt), resolved afresh in a clean virtualenv.
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/pip install --quiet --disable-pip-version-check ./sdk ./connectors/http ./connectors/postgres ./connectors/email .
	{ sed -n '1,2p' constraints.txt; build/lock-venv/bin/pip freeze --exclude spiff-connector-proxy \
	  --exclude spiff-connector-http --exclude spiff-connector-postgres --exclude spiff-connector-email \
	  --exclude spiff-connector-sdk; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf build/lock-venv

# Only the end-to-end install path: the image on a real node, helm install, Connectors in pods.
e2e: $(STAMP) k8s image
	$(BIN)/python -m pytest tests/e2e/node $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

# A control plane and a node for people, on 127.0.0.1 (kubeconfig: .cluster/kubeconfig), with the
# project image loaded: helm install the chart into it by hand.
cluster-up: $(STAMP) k8s image
	$(BIN)/python tools/k8s/controlplane.py up --state-dir .cluster
	$(BIN)/python tools/node/node.py up --controlplane-state .cluster --state-dir .cluster/node
	tools/node/image.sh --tag $(IMAGE) --no-verify --export .cluster/image.tar
	$(BIN)/python tools/node/node.py load-image .cluster/image.tar --state-dir .cluster/node

cluster-down: $(STAMP)
	-$(BIN)/python tools/node/node.py down --state-dir .cluster/node
	$(BIN)/python tools/k8s/controlplane.py down --state-dir .cluster

bench: $(STAMP)
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache build *.egg-info
