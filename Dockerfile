# venue-operator image: `docker build -t venue-operator:0.1.0 .` where a registry is reachable;
# `scripts/image` builds it with podman where none is (docs/image.md).
# Builder: the locked dependencies (requirements/runtime.txt, hash-checked) in a venv, then
# the operator's wheel built by the locked setuptools (requirements/build.txt) on top.
# Runtime: the same base with only that venv copied in; no compilers, no pip, runs as uid
# 10001 (manifests/deployment.yaml: Pod Security "restricted").

# Both stages' base. The default is the upstream slim Python pinned by digest, so a rebuild
# gets the same base (docs/image.md says how to move it); scripts/image passes one built
# from Debian's packages instead.
ARG BASE=docker.io/library/python:3.11.16-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${BASE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The dependencies' layer comes first and changes only with the lock: a change to the code
# rebuilds the layers below it, without a download.
COPY requirements/runtime.txt requirements/build.txt requirements/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
      -r requirements/runtime.txt \
 && python3 -m venv /opt/build \
 && /opt/build/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
      -r requirements/build.txt
# pyproject.toml names README.md as the readme: setuptools needs it to build.
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps --no-index --find-links /wheels \
      venue-operator \
 && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM ${BASE}
LABEL org.opencontainers.image.title="venue-operator" \
      org.opencontainers.image.description="Kubernetes operator that automates the Venue Service runbook" \
      org.opencontainers.image.version="0.1.0"
RUN groupadd --system --gid 10001 venue \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
      --shell /usr/sbin/nologin venue
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["venue-operator"]
CMD ["--log-json", "run", "--bind-address=0.0.0.0"]
