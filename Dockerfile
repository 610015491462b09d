# venue-operator image: `docker build -t venue-operator:0.1.0 .`
# Builder: wheels of the project and its dependencies, installed into a venv.
# Runtime: the same slim Python base with only that venv copied in; no compilers,
# no pip, runs as uid 10001 (manifests/deployment.yaml: Pod Security "restricted").

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# pyproject.toml names README.md as the readme: setuptools needs it to build.
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN python -m venv /opt/venv \
 && python -m pip wheel --no-cache-dir --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels venue-operator \
 && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim
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
