# shellcheck shell=bash
# Starts throwaway Postgres and Redis servers from the machine's packages.
# Sourced by scripts/dev, scripts/test and scripts/bench; nothing here needs Docker.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$dir" ] && command -v pg_config >/dev/null; then dir=$(pg_config --bindir); fi
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

# Installs what building and running need from the distribution when it is
# missing: Redis, Postgres and libjpeg-turbo (linked through pkg-config).
ensure_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  pg_bindir >/dev/null || missing+=(postgresql)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  { command -v pkg-config >/dev/null && pkg-config --exists libturbojpeg; } || missing+=(libturbojpeg0-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from the distribution"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# What only the tests need: headless Chromium and its WebDriver (browser
# tests), npm (s3rver, the S3 stand-in) and promtool (the alert rules).
# Running the product needs none of them.
ensure_test_packages() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  command -v npm >/dev/null || missing+=(npm)
  [ -x /usr/sbin/nginx ] || missing+=(nginx); command -v envsubst >/dev/null || missing+=(gettext-base)  # the proxy tests
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from the distribution (for the tests)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # promtool checks the alert rules; only the server's package has it (its
  # recommended exporters are not needed).
  if ! command -v promtool >/dev/null; then
    log "installing prometheus (promtool) from the distribution (for the tests)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  # The Compose validator (`docker-compose config` needs no engine; without recommends: no Docker daemon).
  command -v docker-compose >/dev/null || { log "installing docker-compose (the Compose validator, for the tests)"; as_root apt-get update -qq; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; }
}

# schemathesis (PyPI), the OpenAPI fuzzer a test runs against the api, in a
# virtualenv under target/ (pinned: its checks are part of the suite).
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  local venv="$ROOT/target/tools/schemathesis"
  if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
    command -v python3 >/dev/null || { as_root apt-get update -qq; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null; }
    log "installing schemathesis $SCHEMATHESIS_VERSION (for the tests)"
    python3 -m venv "$venv" 2>/dev/null || {
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$venv"
    }
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  export SCHEMATHESIS="$venv/bin/schemathesis"
}

# Builds <package>/benches/<name>.rs optimised (package: worker unless
# given) and prints the binary's path.
bench_bin() {
  cargo bench -p "${2:-worker}" --bench "$1" --no-run 2>&1 | grep -o "target/release/deps/$1-[0-9a-f]*" | tail -n 1
}

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local port
  while :; do
    port=$(shuf -i 20000-60000 -n 1)
    # Nothing answers on it: free (bash's /dev/tcp connects or fails at once).
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# initdb and postgres refuse to run as root; run them as `postgres` then.
pg_user_run() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_postgres DATA_DIR PORT [extra postgres -c options...]
# Leaves a server listening on 127.0.0.1:PORT with trust auth for user postgres.
start_postgres() {
  local data=$1 port=$2; shift 2
  local bin; bin=$(pg_bindir) || die "no Postgres server binaries found"
  mkdir -p "$data"
  data=$(readlink -f "$data") # absolute (the socket directory must be), links resolved
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$(dirname "$data")"; then
    # A checkout under /root (mode 700) is out of the postgres user's reach:
    # the data lives under /var/lib/acme-dev instead, linked from where it was asked for.
    local moved; moved="/var/lib/acme-dev/$(printf %s "$data" | sha1sum | cut -c1-16)"
    mkdir -p "$moved"
    rmdir "$data" 2>/dev/null || die "$data exists and postgres cannot reach it; remove it"
    ln -s "$moved" "$data"
    data=$moved
  fi
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$data"; chmod 700 "$data"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    pg_user_run "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-instructions >/dev/null
  fi
  if pg_user_run "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    return 0 # already running (a previous scripts/dev that was not stopped)
  fi
  local opts="-c listen_addresses=127.0.0.1 -p $port -k $data -c max_connections=200"
  for extra in "$@"; do opts+=" -c $extra"; done
  pg_user_run "$bin/pg_ctl" -D "$data" -o "$opts" -l "$data/server.log" -w -t 30 start >/dev/null \
    || { cat "$data/server.log" >&2; die "postgres did not start"; }
}

stop_postgres() {
  local data bin
  data=$(readlink -f "$1") || return 0
  bin=$(pg_bindir) || return 0
  [ -f "$data/postmaster.pid" ] && pg_user_run "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# start_redis DIR PORT [extra redis-server args...]
start_redis() {
  local dir=$1 port=$2; shift 2
  mkdir -p "$dir"
  if [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    return 0 # already running
  fi
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "$@"
  for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "redis did not start (see $dir/redis.log)"
}

stop_redis() {
  local dir=$1
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
}
