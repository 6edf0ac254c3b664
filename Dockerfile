# syntax=docker/dockerfile:1
#
# The one image of the project: the proxy (`connector-proxy serve`, the default), the operator
# (`connector-proxy operator`) and the runtime the operator runs connector workloads with
# (`connector-proxy serve`, with pip-installed connector packages). It holds the typed SDK, the
# first-party HTTP, PostgreSQL and email connectors and the proxy/operator package, installed
# non-editable into /opt/venv.
#
#   docker build -t connector-proxy .
#   docker run --rm -p 7004:7004 connector-proxy            # embedded mode, the HTTP connector
#
# Pin the base image by digest in your build (--build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: install the packages and their dependencies into a virtualenv.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY sdk/ sdk/
COPY connectors/http/ connectors/http/
COPY connectors/postgres/ connectors/postgres/
COPY connectors/email/ connectors/email/
COPY pyproject.toml README.md constraints.txt ./
COPY proxy/ proxy/
COPY operator/ operator/
# Non-editable installs (real wheels built from the copied source), then a consistency check and
# byte-code compiled ahead of time (the root file system is read-only at run time).
# Pinned (constraints.txt): two builds of one commit install the same versions.
RUN pip install --constraint constraints.txt ./sdk ./connectors/http ./connectors/postgres ./connectors/email . \
 && pip check \
 && python -m compileall -q /opt/venv/lib
# What a pip Connector's init container installs beside (connector_operator.manifests): the SDK as a
# wheel (no index serves it) and the runtime's exact versions as constraints.
RUN mkdir -p /opt/connector-runtime \
 && pip wheel --no-deps --wheel-dir /opt/connector-runtime/wheels ./sdk \
 && pip freeze --exclude spiff-connector-proxy --exclude spiff-connector-http --exclude spiff-connector-postgres \
    --exclude spiff-connector-email --exclude spiff-connector-sdk \
    > /opt/connector-runtime/constraints.txt \
 && python -c "import importlib.metadata as m; print('spiff-connector-sdk==' + m.version('spiff-connector-sdk'))" \
    >> /opt/connector-runtime/constraints.txt

# ---- final: the interpreter, the virtualenv and nothing else; no compilers, no source tree.
FROM ${PYTHON_IMAGE} AS final
LABEL org.opencontainers.image.title="connector-proxy" \
      org.opencontainers.image.description="Kubernetes-native connector proxy for spiff-arena: proxy, operator and connector runtime" \
      org.opencontainers.image.licenses="MIT"
# git: pip Connectors may name "pkg @ git+https://..." requirements.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 connector \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin connector
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/connector-runtime /opt/connector-runtime
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
WORKDIR /tmp
EXPOSE 7004
# For docker / docker compose (Kubernetes uses the chart's probes): the proxy's liveness, or the
# operator's /healthz when the container runs `operator`.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request as u\nfor url in ('http://127.0.0.1:%s/v1/liveness' % os.environ.get('CONNECTOR_PROXY_PORT', '7004'), 'http://127.0.0.1:%s/healthz' % os.environ.get('CONNECTOR_OPERATOR_HEALTH_PORT', '8080')):\n    try:\n        u.urlopen(url, timeout=4)\n        sys.exit(0)\n    except Exception:\n        pass\nsys.exit(1)"]
ENTRYPOINT ["connector-proxy"]
CMD ["serve"]
