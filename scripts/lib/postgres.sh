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
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

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
