# Shared helpers for starting local PostgreSQL clusters (sourced by scripts/test-env and scripts/run).

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

# Puts Swift on PATH when it is installed under /opt/swift but not on PATH.
ensure_swift_on_path() {
  if ! command -v swift >/dev/null 2>&1; then
    for dir in /opt/swift/usr/bin /opt/swift/bin; do
      [ -x "$dir/swift" ] && export PATH="$dir:$PATH" && return 0
    done
    echo "swift is not installed (expected on PATH or in /opt/swift)" >&2
    return 1
  fi
}

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

# Installs the Debian packages the project needs when they are missing.
install_packages() {
  local missing=()
  [ -n "$(pg_bin || true)" ] || missing+=(postgresql postgresql-contrib)
  pkg-config --exists libpq 2>/dev/null || missing+=(libpq-dev pkg-config)
  command -v pgbouncer >/dev/null || missing+=(pgbouncer)
  [ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/aarch64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
  if [ "${KT_INSTALL_BROWSER:-0}" = 1 ]; then
    # The console's browser tests: Debian's chromium and its driver (nothing downloaded at run time).
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
  fi
}

# Creates (once) the virtualenv of the Qdrant-compatible local server and prints its python.
qdrant_local_python() {
  local root=$1 venv="$1/.kt-venv"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import qdrant_client, openapi_schema_validator' 2>/dev/null; then
    if ! python3 -m venv --help >/dev/null 2>&1; then
      as_root apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >&2
    fi
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/Tools/qdrant-local/requirements.txt" >&2
  fi
  echo "$venv/bin/python"
}

# Installs (once) Selenium, axe-core (selenium-axe-python) and schemathesis into the same virtualenv for the
# browser and API fuzzing tests and prints its python.
browser_test_python() {
  local root=$1 python
  python=$(qdrant_local_python "$root")
  if ! "$python" -c 'import selenium, selenium_axe_python, schemathesis' 2>/dev/null; then
    "$(dirname "$python")/pip" install -q --disable-pip-version-check -r "$root/Tests/Browser/requirements.txt" >&2
  fi
  echo "$python"
}

# start_qdrant_local ROOT PORT DATA_DIR LOG [extra args]: starts the server in the background, waits until it answers.
start_qdrant_local() {
  local root=$1 port=$2 dir=$3 log=$4 python
  shift 4
  python=$(qdrant_local_python "$root")
  mkdir -p "$dir"
  nohup "$python" "$root/Tools/qdrant-local/server.py" --host 127.0.0.1 --port "$port" --path "$dir" \
    --openapi "$root/Tools/qdrant-local/qdrant-openapi-v1.19.json" "$@" >"$log" 2>&1 &
  echo $! >"$dir.pid"
  for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the Qdrant-compatible server on port $port did not start; see $log" >&2
  return 1
}

stop_pidfile() { if [ -f "$1" ]; then kill "$(cat "$1")" 2>/dev/null || true; rm -f "$1"; fi; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# free_port_except PORT...: a free port that is none of PORT... (chosen but not yet bound).
free_port_except() {
  local port
  port=$(free_port)
  while printf '%s\n' "$@" | grep -qx "$port"; do port=$(free_port); done
  echo "$port"
}

# init_cluster DIR PORT PASSWORD DB...: a new cluster in DIR (owned by postgres) on 127.0.0.1:PORT,
# scram-sha-256 on TCP, a role `kt` with PASSWORD owning the databases DB...
init_cluster() {
  local dir=$1 port=$2 password=$3 bin sql
  shift 3
  bin=$(pg_bin)
  mkdir -p "$dir/socket"
  chown -R postgres:postgres "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/socket'
max_connections = 300
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
CONF
  start_cluster "$dir"
  sql=(-c "CREATE ROLE kt LOGIN CREATEDB PASSWORD '$password'")
  for db in "$@"; do sql+=(-c "CREATE DATABASE $db OWNER kt"); done
  as_pg "$bin/psql" -q -h "$dir/socket" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 "${sql[@]}" >/dev/null
}

start_cluster() { as_pg "$(pg_bin)/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 start >/dev/null; }

stop_cluster() {
  local bin
  bin=$(pg_bin || true)
  if [ -n "$bin" ] && [ -f "$1/data/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$1/data" -m "${2:-fast}" -w stop >/dev/null 2>&1 || true
  fi
}

# url_encode TEXT: percent-encodes everything but unreserved characters.
url_encode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
