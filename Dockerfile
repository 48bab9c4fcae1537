# syntax=docker/dockerfile:1
# One image, both services: the command picks `api` or `worker`.

FROM rust:1.95-slim-bookworm AS build
# libjpeg-turbo, linked through pkg-config, for photo decoding and encoding.
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libturbojpeg0-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Queries are checked against .sqlx/ at compile time: no database needed here.
ENV SQLX_OFFLINE=true
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin api --bin worker \
    && cp target/release/api target/release/worker /usr/local/bin/

FROM debian:bookworm-slim AS runtime
# ca-certificates for TLS to SMTP/Postgres/Redis; libturbojpeg0 for photos.
# (No curl: the health check is the binaries' own `healthcheck` command.)
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libturbojpeg0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /app app \
    && install -d -o app -g app /app/mailbox /app/storage
COPY --from=build /usr/local/bin/api /usr/local/bin/worker /usr/local/bin/
USER app
WORKDIR /app
# Configuration and secrets come from the environment at run time; none are
# baked in (.dockerignore keeps .env and .dev/ out of the build context).
ENV HOST=0.0.0.0 PORT=3000 LOG_FORMAT=json
EXPOSE 3000 3001
# Right for both commands: each binary's `healthcheck` asks its own port
# (`api`: PORT, `worker`: WORKER_HTTP_PORT) for /healthz and wants a 200.
# In a container running one of them, the other's port has no listener, so
# its check fails and the result is the running one's. Start period: the
# api migrates before it listens. docker-compose.yml names the role's own.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD api healthcheck || worker healthcheck
CMD ["api"]
