# kpimon: the stream worker (default command) and the other `kpimon` commands (simulate, replay,
# check, schema, docs). Slim, runs as an unprivileged user, settings from KPIMON_* variables.
#
#   docker build -t kpimon .
#   docker run --rm kpimon --help
#   docker run --rm -e KPIMON_BOOTSTRAP_SERVERS=kafka:9092 -v "$PWD/deploy/examples:/etc/kpimon:ro" \
#     -e KPIMON_CONFIG_FILE=/etc/kpimon/kpimon.yaml -e KPIMON_WEB_AUTH_TOKEN_FILE=/etc/kpimon/token \
#     -p 127.0.0.1:6066:6066 kpimon worker
#
# The Python version matches requires-python and the development venv (3.11); the base image is
# pinned to an exact release tag (bump it deliberately, e.g. with a digest: python:3.11.13-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: install kpimon and its pinned dependencies into a virtualenv ----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/kpimon
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY streams ./streams
COPY alerts ./alerts
RUN /opt/kpimon/bin/pip install --no-cache-dir . \
    && /opt/kpimon/bin/kpimon --help >/dev/null

# --- runtime: the virtualenv only, no build tools, no source tree -----------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="kpimon" \
      org.opencontainers.image.description="Real-time sales and marketing KPIs from Kafka events, on a Prometheus /metrics endpoint" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 kpimon \
    && useradd --system --uid 10001 --gid kpimon --home-dir /var/lib/kpimon --create-home \
       --shell /usr/sbin/nologin kpimon
COPY --from=build /opt/kpimon /opt/kpimon
# The worker's HTTP server (/metrics) must listen on every interface inside a container (set here
# explicitly: kpimon's own default is 127.0.0.1); protect it with KPIMON_WEB_AUTH_* and publish it
# on the host's loopback only, or not at all (docs/security.md). Faust's local data
# (KPIMON_DATA_DIR) goes to the kpimon user's home (mount a volume there to keep it).
ENV PATH=/opt/kpimon/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KPIMON_WEB_HOST=0.0.0.0 \
    KPIMON_WEB_PORT=6066 \
    KPIMON_DATA_DIR=/var/lib/kpimon/data
WORKDIR /var/lib/kpimon
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
EXPOSE 6066
ENTRYPOINT ["kpimon"]
CMD ["worker"]
