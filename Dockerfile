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
# ca-certificates for TLS to SMTP/Postgres/Redis; curl for container health
# checks; libturbojpeg0 for photos.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libturbojpeg0 \
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
# Liveness of the default command, the api (port 3000). The worker serves
# /healthz on WORKER_HTTP_PORT (3001); docker-compose.yml probes that instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/healthz" || exit 1
CMD ["api"]
