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
  dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  [ -d "$dir" ] || dir=
  if [ -z "$dir" ] && command -v pg_config >/dev/null; then dir=$(pg_config --bindir); fi
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

# Packages come from the distribution through install_packages only: one
# `apt-get update` per run, nothing recommended, no prompt, and no system
# daemon: a package's install neither starts its service (a temporary
# policy-rc.d refuses every start) nor leaves it enabled at boot, and
# Postgres creates no 'main' cluster. The scripts start their own servers.
APT_UPDATED=
# A package counts as there when dpkg has it, or when its command already is
# on PATH from elsewhere: NodeSource's nodejs carries npm, and Debian's npm
# conflicts with it, so asking apt for npm there would fail the whole run.
is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ] && return 0
  local command=$1
  case $1 in
    chromium-driver) command=chromedriver ;;
    prometheus) command=promtool ;;
    gettext-base) command=envsubst ;;
    postgresql | postgresql-common | lib* | ca-certificates | procps | python3-venv) return 1 ;;
  esac
  command -v "$command" >/dev/null
}
install_packages() {
  local wanted=() pkg
  if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    log "not a Debian system: make sure the equivalents of $* are installed"
    return 0
  fi
  for pkg in "$@"; do is_installed "$pkg" || wanted+=("$pkg"); done
  [ ${#wanted[@]} -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null || die "missing ${wanted[*]}: run as root, or install sudo"
  log "installing ${wanted[*]} from the distribution"
  if [ -z "$APT_UPDATED" ]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  # In a subshell, so its trap removes the policy-rc.d on every way out.
  (
    local policy=/usr/sbin/policy-rc.d ours=
    # One left by a run that was killed mid-install (its marker line) is
    # ours to replace and remove, not the system's to keep.
    if [ ! -e "$policy" ] || grep -q '^# scripts/services.sh:' "$policy" 2>/dev/null; then
      trap 'as_root rm -f "$policy"' EXIT
      trap 'exit 130' INT TERM
      # shellcheck disable=SC2016 # $1 is the inner shell's
      as_root sh -c 'printf "#!/bin/sh\n# scripts/services.sh: no service starts while it installs packages\nexit 101\n" > "$1" && chmod 755 "$1"' sh "$policy"
      ours=1
    fi
    [ -n "$ours" ] || log "$policy exists; left as it is"
    local before after
    before=$(dpkg-query -W -f='${binary:Package} ${db:Status-Status}\n' | awk '$2 == "installed" { print $1 }' | sort)
    # Units enabled for boot, by link: a template's instance (systemd's own
    # getty@tty1, when Chromium's dependencies bring systemd into a root
    # that had none) is enabled under a name no package file has.
    wants() { find /etc/systemd/system -path '*.wants/*' \( -name '*.service' -o -name '*.socket' \) 2>/dev/null | sort; }
    local wanted_before; wanted_before=$(wants)
    apt() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
    local p
    for p in "${wanted[@]}"; do
      # The server's install would create and start a 'main' cluster on 5432:
      # its cluster manager goes first, told not to.
      # (Also when postgresql-common came earlier, with the client.)
      if [ "$p" = postgresql ]; then
        is_installed postgresql-common || apt postgresql-common
        as_root sed -i -E 's/^#? *create_main_cluster *=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
        grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf \
          || die "could not turn off Postgres's main cluster in /etc/postgresql-common/createcluster.conf"
      fi
    done
    apt "${wanted[@]}"
    after=$(dpkg-query -W -f='${binary:Package} ${db:Status-Status}\n' | awk '$2 == "installed" { print $1 }' | sort)
    # What was just installed stays off at boot too: every service or socket
    # of a new package (nginx's is in nginx-common, dbus comes with Chromium)
    # that runs on (oneshot services, like timers, start nothing that stays).
    local unit file
    for p in $(comm -13 <(echo "$before") <(echo "$after")); do
      for file in $(dpkg -L "$p" 2>/dev/null | grep -E '^(/usr)?/lib/systemd/system/[^@/]+\.(service|socket)$'); do
        grep -q '^Type=oneshot' "$file" && continue
        unit=$(basename "$file")
        if command -v systemctl >/dev/null; then as_root systemctl disable --quiet "$unit" >/dev/null 2>&1 || true; fi
      done
      for unit in $(dpkg -L "$p" 2>/dev/null | grep -E '^/etc/init\.d/[^/]+$' | xargs -r -n1 basename); do
        as_root update-rc.d "$unit" disable >/dev/null 2>&1 || true
      done
    done
    local link
    for link in $(comm -13 <(echo "$wanted_before") <(wants)); do
      grep -q '^Type=oneshot' "$link" 2>/dev/null || as_root rm -f "$link"
    done
  )
}

# What building and running need: a C compiler and the C library's headers
# (the linker and `ring`), pkg-config and libjpeg-turbo (linked), Postgres
# and Redis (started by the scripts), CA certificates (cargo, npm and pip
# fetch over HTTPS), curl (scripts/dev waits for the api with it), procps
# (`ps` and `kill`).
BUILD_PACKAGES=(gcc libc6-dev pkg-config libturbojpeg0-dev postgresql redis-server ca-certificates curl procps)
ensure_packages() {
  install_packages "${BUILD_PACKAGES[@]}"
}

# What only the tests need: headless Chromium and its WebDriver (browser
# tests), npm (s3rver, the S3 stand-in, which testkit installs into
# target/testkit-s3rver), prometheus (its promtool checks the alert rules;
# the server itself never runs), nginx and gettext-base's envsubst (the
# proxy test renders and runs the shipped template), docker-compose 1.29
# (`config` validates docker-compose.yml; no engine, no daemon), python3-venv
# (schemathesis), iptables (a test makes a client vanish by dropping its
# packets). Running the product needs none of them.
TEST_PACKAGES=(chromium chromium-driver npm prometheus nginx gettext-base docker-compose python3 python3-venv iptables)
ensure_test_packages() {
  # Ubuntu's chromium packages only install snapd and a wrapper that asks for
  # the chromium snap: no browser for the tests, and a daemon.
  if grep -qx 'ID=ubuntu' /etc/os-release 2>/dev/null && ! is_installed chromium; then
    die "the tests need Chromium and chromedriver from .deb packages, and Ubuntu ships them only as snaps: run scripts/test on Debian 12 (scripts/dev works on Ubuntu; see the README)"
  fi
  install_packages "${TEST_PACKAGES[@]}"
}

# schemathesis (PyPI), the OpenAPI fuzzer a test runs against the api, in a
# virtualenv under target/ (pinned: its checks are part of the suite).
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  local venv="$ROOT/target/tools/schemathesis"
  if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
    install_packages python3 python3-venv
    log "installing schemathesis $SCHEMATHESIS_VERSION into target/tools/schemathesis (for the tests)"
    python3 -m venv "$venv"
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
  if [ -f "$data/postmaster.pid" ]; then
    pg_user_run "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
  fi
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
  if [ -f "$dir/redis.pid" ]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
}
