# syntax=docker/dockerfile:1
# The harness image: the package with its locked dependencies (requirements/lock.txt) and the embedded PostgreSQL
# that the reference stack runs on. One image plays every role: `harness run … --master`, `harness worker`,
# `harness target up --only PIECE`, `harness gate`. See docs/compose.md and docs/kubernetes.md.
#
#   docker build -t harness:dev --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
#   docker run --rm harness:dev smoke            # the embedded reference stack, then the smoke checklist

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the package and exactly the tested versions -------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/harness
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/lock.txt requirements/lock.txt
COPY harness/ harness/
COPY profiles/ profiles/
COPY netem/ netem/
COPY locustfiles/ locustfiles/
COPY supabase/migrations/ supabase/migrations/
# The lock pins every runtime dependency; a non-editable install ships profiles/, netem/, locustfiles/ and the
# migrations inside the package (harness.profiles, …), so the runtime stage needs no checkout.
RUN /opt/harness/bin/pip install -c requirements/lock.txt . \
 && /opt/harness/bin/harness --version

# --- runtime: slim, non-root ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="harness" \
      org.opencontainers.image.description="Load, China-network and failover test harness for a Supabase + LiveKit chat product" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/harness-project/harness" \
      org.opencontainers.image.documentation="https://github.com/harness-project/harness/blob/main/docs/compose.md"
# gnupg: encrypted backups (harness backup); iproute2 + nftables: kernel shaping (`--kernel`, needs NET_ADMIN);
# curl: healthchecks of the compose file. No compiler, no pip cache.
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends gnupg iproute2 nftables curl \
 && rm -rf /var/lib/apt/lists/*
# uid 10001, not root: PostgreSQL refuses to run as root, and a load generator needs no privilege.
RUN groupadd --system --gid 10001 harness \
 && useradd --system --uid 10001 --gid harness --home-dir /app --shell /usr/sbin/nologin harness \
 && mkdir -p /app/reports \
 && chown -R harness:harness /app
COPY --from=build /opt/harness /opt/harness
ENV PATH=/opt/harness/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HARNESS_STATE_DIR=/app/state
WORKDIR /app
USER 10001:10001
# 5557 Locust master/worker channel, 9646 /metrics; the reference stack's ports (54320 edge, 54321 Singapore,
# 54322 Japan, 7880 LiveKit) are opened by `harness target up`.
EXPOSE 5557 9646 54320 54321 54322 7880
# No HEALTHCHECK: the image has no one long-running command (the default prints --help); each service of
# docker-compose.yml and each Kubernetes container has the check that fits what it runs.
ENTRYPOINT ["harness"]
CMD ["--help"]
