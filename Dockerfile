# continust worker image: docker build -t continust:0.1.0 .
#
# The base is pinned to an exact patch release of Python 3.11 on Debian bookworm. Pin it further
# by digest (python:3.11.14-slim-bookworm@sha256:...) where a registry can be asked for it; the
# digest cannot be looked up offline, so it is not written here.

# Builder: a wheel of continust, then a virtualenv at /opt/continust holding it and its
# dependencies (binary wheels only: no compiler is needed), and tini from Debian. EXTRAS names
# continust's optional extras to install: by default `otel`, so that tracing can be turned on
# with OTEL_TRACES_EXPORTER=otlp; `--build-arg EXTRAS=` leaves it out.
FROM python:3.11.14-slim-bookworm AS builder
ARG EXTRAS=otel
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY windows windows
COPY streams streams
COPY agents agents
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/continust \
    && /opt/continust/bin/pip install --no-cache-dir --only-binary=:all: --find-links /wheels \
       "continust${EXTRAS:+[$EXTRAS]}" \
    && /opt/continust/bin/pip uninstall --yes pip

# Runtime: the virtualenv, tini and the example pipeline; no sources, compilers or package
# caches. A fixed non-root user (10001:10001) owns the state directory /data and nothing else
# is writable, so the root filesystem can be mounted read-only.
FROM python:3.11.14-slim-bookworm
RUN groupadd --system --gid 10001 continust \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin continust \
    && install -d -o 10001 -g 10001 -m 0750 /data
COPY --from=builder /usr/bin/tini /usr/bin/tini
COPY --from=builder /opt/continust /opt/continust
COPY examples/pipelines.toml /app/examples/pipelines.toml
ENV PATH=/opt/continust/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONTINUST_DATA_DIR=/data \
    CONTINUST_WEB_HOST=0.0.0.0 \
    CONTINUST_WEB_PORT=6066
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 6066
# Alive: the worker's /health answers 200 (continust health loads no runtime, so it is cheap).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["continust", "health"]
# tini is PID 1: it forwards SIGTERM and SIGINT to the worker (which stops cleanly on either,
# within its shutdown bound) and reaps any orphan. The worker spawns no processes and installs
# its own SIGTERM/SIGINT handlers, so it would also stop cleanly as PID 1 (a Kubernetes
# `command` replaces this entrypoint); tini keeps `docker run IMAGE continust ...` and
# compose's `command: [continust, ...]` right as well.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["continust", "worker", "-c", "/app/examples/pipelines.toml", "--port", "6066", "--data-dir", "/data"]
