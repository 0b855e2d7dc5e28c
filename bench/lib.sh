# Shell helpers of the bench scripts (sourced): messages, tools, processes by PID, free
# loopback ports, throwaway MariaDB servers. The sourcing script sets WORK (a temporary
# directory), PIDS=() and KEEP, and installs `trap cleanup EXIT`.
# shellcheck shell=bash

FLUSH_AT_COMMIT=${FLUSH_AT_COMMIT:-2}

die() { echo "error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

need() {
  local found=""
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then found=$(command -v "$name"); break; fi
    for dir in /usr/sbin /usr/local/sbin; do
      if [ -x "$dir/$name" ]; then found="$dir/$name"; break 2; fi
    done
  done
  [ -n "$found" ] || die "none of [$*] found; install it (Debian: apt-get install -y sysbench mariadb-server mariadb-client mydumper)"
  echo "$found"
}


stop_pid() { # stop_pid PID: TERM, up to 20 s, then KILL; reaps it
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

forget_pid() { # forget_pid PID: stop it and drop it from PIDS
  local pid=$1 rest=() p
  stop_pid "$pid"
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || rest+=("$p"); done
  PIDS=("${rest[@]}")
}

cleanup() {
  local status=$?
  local i
  # newest first: dm-worker before dm-master, downstreams before the upstream
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${PIDS[$i]}"
  done
  if [ "$KEEP" = 1 ]; then
    echo "kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}

# A free port on 127.0.0.1: nothing answers on it and we have not handed it out yet.
USED_PORTS=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % 22000)) # below the ephemeral range (32768+), where outgoing connections take ports
    case "$USED_PORTS" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS="$USED_PORTS$p "
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

sql() { # sql PORT STATEMENT... (tab-separated, no headers)
  local port=$1; shift
  "$CLIENT" -h127.0.0.1 -P"$port" -uroot --batch --skip-column-names -e "$*"
}

# start_db NAME SERVER_ID BINLOG(0|1) -> sets DB_PORT, DB_PID (data under $WORK/NAME)
start_db() {
  local name=$1 server_id=$2 binlog=$3
  local dir="$WORK/$name" port
  port=$(free_port)
  mkdir -p "$dir"
  {
    echo "[mariadbd]"
    echo "datadir=$dir/data"
    echo "port=$port"
    echo "bind-address=127.0.0.1"
    echo "socket=$dir/mariadb.sock"
    echo "pid-file=$dir/mariadb.pid"
    echo "log_error=$dir/error.log"
    echo "skip-name-resolve"
    echo "innodb_buffer_pool_size=512M"
    echo "innodb_log_file_size=512M"
    echo "innodb_flush_log_at_trx_commit=$FLUSH_AT_COMMIT"
    echo "max_connections=500"
    echo "max_allowed_packet=64M"
    echo "init-file=$dir/init.sql"
    echo "server_id=$server_id"
    if [ "$binlog" = 1 ]; then
      echo "log_bin=$dir/data/mariadb-bin"
      echo "binlog_format=ROW"
      echo "binlog_row_image=FULL"
      echo "binlog_row_metadata=FULL"
    fi
    if [ "$(id -u)" = 0 ]; then echo "user=root"; fi
  } >"$dir/my.cnf"
  cat >"$dir/init.sql" <<'EOF'
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
EOF
  local attempt
  for attempt in 1 2 3; do
    rm -rf "$dir/data"
    if "$INSTALL_DB" --defaults-file="$dir/my.cnf" --auth-root-authentication-method=normal \
        --skip-test-db >"$dir/install.log" 2>&1; then
      break
    fi
    [ "$attempt" -lt 3 ] || { cat "$dir/install.log" >&2; die "$name: mariadb-install-db failed 3 times"; }
    log "$name: mariadb-install-db failed, retrying"
  done
  "$MARIADBD" --defaults-file="$dir/my.cnf" >/dev/null 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$dir/error.log" >&2; die "$name: mariadbd exited"; }
    if sql "$port" "SELECT 1" >/dev/null 2>&1; then
      DB_PORT=$port
      DB_PID=$pid
      log "$name: mariadbd pid $pid on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  tail -20 "$dir/error.log" >&2
  die "$name: mariadbd not ready after 60 s"
}

# stop_db NAME PID: stops a downstream and, unless KEEP=1, removes its data
stop_db() {
  forget_pid "$2"
  [ "$KEEP" = 1 ] || rm -rf "${WORK:?}/$1"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
