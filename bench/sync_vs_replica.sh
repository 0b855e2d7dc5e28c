#!/usr/bin/env bash
# Incremental-sync throughput: dm-rs vs a native MariaDB replica, on the same binlog.
#
# Starts three throwaway mariadbd on free 127.0.0.1 ports (upstream with ROW binlog, a plain
# downstream, a plain native replica), prepares sysbench tables on the upstream and copies them to
# both, records the binlog position P, runs `sysbench oltp_write_only` (EVENTS transactions),
# records the end position E, then times how long (a) a native replica and (b) dm-rs (dm-master
# --with-worker, incremental task from P) take to apply P..E. Checksums every table on all three.
#
# Usage: bench/sync_vs_replica.sh [--native-only]
# Knobs (env): TABLES=4 TABLE_SIZE=10000 EVENTS=20000 THREADS=4 WORKER_COUNT=16 BATCH=100
#              REPLICA_PARALLEL_THREADS=0 FLUSH_AT_COMMIT=2 KEEP=0 TIMEOUT=600
# See bench/README.md.
set -euo pipefail

TABLES=${TABLES:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
EVENTS=${EVENTS:-20000}
THREADS=${THREADS:-4}
WORKER_COUNT=${WORKER_COUNT:-16}
BATCH=${BATCH:-100}
REPLICA_PARALLEL_THREADS=${REPLICA_PARALLEL_THREADS:-0}
FLUSH_AT_COMMIT=${FLUSH_AT_COMMIT:-2}
KEEP=${KEEP:-0}
TIMEOUT=${TIMEOUT:-600}

NATIVE_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --native-only) NATIVE_ONLY=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)

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
  [ -n "$found" ] || die "none of [$*] found; install it (Debian: apt-get install -y sysbench mariadb-server mariadb-client)"
  echo "$found"
}

SYSBENCH=$(need sysbench)
MARIADBD=$(need mariadbd mysqld)
INSTALL_DB=$(need mariadb-install-db mysql_install_db)
CLIENT=$(need mariadb mysql)
DUMP=$(need mariadb-dump mysqldump)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dmrs-bench.XXXXXX")
PIDS=()

cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ]; then
    echo "kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

# start_db NAME SERVER_ID BINLOG(0|1) -> sets PORT_<NAME>
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
    echo "innodb_buffer_pool_size=256M"
    echo "innodb_log_file_size=256M"
    echo "innodb_flush_log_at_trx_commit=$FLUSH_AT_COMMIT"
    echo "max_connections=500"
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
      printf -v "PORT_${name^^}" '%s' "$port"
      log "$name: mariadbd pid $pid on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  tail -20 "$dir/error.log" >&2
  die "$name: mariadbd not ready after 60 s"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 0.001; printf "%.0f", n / s }'; }

# binlog position "file pos" as a sortable comparison: pos_reached FILE POS TARGET_FILE TARGET_POS
pos_reached() {
  local f=$1 p=$2 tf=$3 tp=$4
  [ -n "$f" ] || return 1
  if [ "$f" = "$tf" ]; then [ "$p" -ge "$tp" ]; else [[ "$f" > "$tf" ]]; fi
}

# SHOW SLAVE STATUS on the replica, picked by column name: file, pos, io errno, sql errno, errors
slave_status() {
  "$CLIENT" -h127.0.0.1 -P"$PORT_REPLICA" -uroot --batch -e "SHOW SLAVE STATUS" |
    awk -F'\t' 'function v(x) { return x == "" ? "-" : x }
      NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
      { printf "%s\t%s\t%s\t%s\t%s %s\n", v($c["Relay_Master_Log_File"]), v($c["Exec_Master_Log_Pos"]),
          v($c["Last_IO_Errno"]), v($c["Last_SQL_Errno"]), $c["Last_IO_Error"], $c["Last_SQL_Error"] }'
}

checksums() { # checksums PORT -> "table checksum" lines
  local port=$1 list="" i
  for i in $(seq 1 "$TABLES"); do list="$list${list:+, }sbtest.sbtest$i"; done
  sql "$port" "CHECKSUM TABLE $list"
}

# ---------------------------------------------------------------- servers and data
start_db up 1 1
start_db down 2 0
start_db replica 3 0
if [ "$REPLICA_PARALLEL_THREADS" != 0 ]; then
  sql "$PORT_REPLICA" "SET GLOBAL slave_parallel_threads = $REPLICA_PARALLEL_THREADS"
fi

SB=("$SYSBENCH" oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$PORT_UP"
    --mysql-user=root --mysql-password= --mysql-db=sbtest --tables="$TABLES" --table-size="$TABLE_SIZE")

log "sysbench prepare: $TABLES tables x $TABLE_SIZE rows"
sql "$PORT_UP" "CREATE DATABASE sbtest"
"${SB[@]}" --threads="$THREADS" prepare >"$WORK/prepare.log" 2>&1 || { cat "$WORK/prepare.log" >&2; die "sysbench prepare failed"; }

read -r P_FILE P_POS _ < <(sql "$PORT_UP" "SHOW MASTER STATUS")
log "start position P = ($P_FILE, $P_POS)"

log "copying sbtest to downstream and replica"
for port in "$PORT_DOWN" "$PORT_REPLICA"; do
  "$DUMP" -h127.0.0.1 -P"$PORT_UP" -uroot --single-transaction --databases sbtest |
    "$CLIENT" -h127.0.0.1 -P"$port" -uroot
done

log "sysbench run: $EVENTS events, $THREADS threads"
"${SB[@]}" --threads="$THREADS" --events="$EVENTS" --time=0 run >"$WORK/run.log" 2>&1 || { cat "$WORK/run.log" >&2; die "sysbench run failed"; }
grep -E 'transactions:|queries:' "$WORK/run.log" | sed 's/^ */  upstream /' >&2

read -r E_FILE E_POS _ < <(sql "$PORT_UP" "SHOW MASTER STATUS")
log "end position E = ($E_FILE, $E_POS)"
TRX=$(awk '/transactions:/ { print $2; exit }' "$WORK/run.log")
TRX=${TRX:-$EVENTS}
# oltp_write_only: 2 updates + 1 delete + 1 insert per transaction
ROWS=$((TRX * 4))

# ---------------------------------------------------------------- (a) native replica
log "native replica: CHANGE MASTER TO ($P_FILE, $P_POS)"
sql "$PORT_REPLICA" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$PORT_UP, MASTER_USER='root', MASTER_PASSWORD='', MASTER_LOG_FILE='$P_FILE', MASTER_LOG_POS=$P_POS"
T0=$(now)
sql "$PORT_REPLICA" "START SLAVE"
DEADLINE=$(( $(date +%s) + TIMEOUT ))
while :; do
  IFS=$'\t' read -r R_FILE R_POS IO_ERRNO SQL_ERRNO ERRORS < <(slave_status) || true
  if pos_reached "${R_FILE:-}" "${R_POS:-0}" "$E_FILE" "$E_POS"; then break; fi
  if [[ "${IO_ERRNO:-0}" =~ ^[1-9] || "${SQL_ERRNO:-0}" =~ ^[1-9] ]]; then
    echo "$ERRORS" >&2
    die "native replica stopped with an error"
  fi
  [ "$(date +%s)" -lt "$DEADLINE" ] || die "native replica did not reach E within ${TIMEOUT}s (at $R_FILE:$R_POS)"
  sleep 0.05
done
T1=$(now)
NATIVE_S=$(elapsed "$T0" "$T1")
NATIVE_RATE=$(rate "$TRX" "$NATIVE_S")
log "native replica applied $TRX trx in ${NATIVE_S}s"

# ---------------------------------------------------------------- (b) dm-rs
DMRS_RATE=""
if [ "$NATIVE_ONLY" = 0 ]; then
  BIN="$ROOT/target/release"
  if [ ! -x "$BIN/dm-master" ] || [ ! -x "$BIN/dmctl" ]; then
    log "building release binaries"
    (cd "$ROOT" && cargo build --release --bins) >&2
  fi
  MASTER_PORT=$(free_port)
  MASTER="127.0.0.1:$MASTER_PORT"
  mkdir -p "$WORK/dm-master"
  "$BIN/dm-master" --master-addr "$MASTER" --data-dir "$WORK/dm-master/data" --with-worker \
    >"$WORK/dm-master/out.log" 2>&1 &
  PIDS+=("$!")
  DMCTL=("$BIN/dmctl" --master-addr "$MASTER")

  cat >"$WORK/source.yaml" <<EOF
source-id: "bench-up"
enable-gtid: false
from:
  host: "127.0.0.1"
  port: $PORT_UP
  user: "root"
  password: ""
EOF
  cat >"$WORK/task.yaml" <<EOF
name: "bench"
task-mode: "incremental"
target-database:
  host: "127.0.0.1"
  port: $PORT_DOWN
  user: "root"
  password: ""
mysql-instances:
  - source-id: "bench-up"
    meta:
      binlog-name: "$P_FILE"
      binlog-pos: $P_POS
    block-allow-list: "bench-bal"
    syncer-config-name: "bench-syncer"
block-allow-list:
  bench-bal:
    do-dbs: ["sbtest"]
syncers:
  bench-syncer:
    worker-count: $WORKER_COUNT
    batch: $BATCH
    compact: true
    multiple-rows: true
EOF

  log "dm-master on $MASTER: operate-source create"
  DEADLINE=$(( $(date +%s) + 60 ))
  until "${DMCTL[@]}" operate-source create "$WORK/source.yaml" >"$WORK/operate-source.out" 2>&1 &&
        grep -q '"result": *true' "$WORK/operate-source.out"; do
    [ "$(date +%s)" -lt "$DEADLINE" ] || { cat "$WORK/operate-source.out" "$WORK/dm-master/out.log" >&2; die "operate-source create failed"; }
    sleep 0.5
  done

  log "dm-rs: start-task from ($P_FILE, $P_POS)"
  T0=$(now)
  "${DMCTL[@]}" start-task "$WORK/task.yaml" >"$WORK/start-task.out" 2>&1 || true
  grep -q '"result": *true' "$WORK/start-task.out" || { cat "$WORK/start-task.out" >&2; die "start-task failed"; }
  DEADLINE=$(( $(date +%s) + TIMEOUT ))
  while :; do
    "${DMCTL[@]}" query-status bench >"$WORK/query-status.out" 2>&1 || true
    # "syncerBinlog": "(mariadb-bin.000001, 12345)"
    SB_POS=$(grep -o '"syncerBinlog": *"([^"]*)"' "$WORK/query-status.out" | head -1 |
             sed -E 's/.*"\(([^,]*), *([0-9]+)\)"/\1 \2/' || true)
    read -r S_FILE S_POS <<<"${SB_POS:-} " || true
    if pos_reached "${S_FILE:-}" "${S_POS:-0}" "$E_FILE" "$E_POS"; then break; fi
    if grep -q '"stage": *"Paused"' "$WORK/query-status.out"; then
      cat "$WORK/query-status.out" >&2
      die "dm-rs task paused"
    fi
    [ "$(date +%s)" -lt "$DEADLINE" ] || { cat "$WORK/query-status.out" >&2; die "dm-rs did not reach E within ${TIMEOUT}s"; }
    sleep 0.1
  done
  T1=$(now)
  DMRS_S=$(elapsed "$T0" "$T1")
  DMRS_RATE=$(rate "$TRX" "$DMRS_S")
  log "dm-rs applied $TRX trx in ${DMRS_S}s"
fi

# ---------------------------------------------------------------- consistency
log "checksums"
checksums "$PORT_UP" >"$WORK/sum.up"
checksums "$PORT_REPLICA" >"$WORK/sum.replica"
if ! diff -u "$WORK/sum.up" "$WORK/sum.replica" >&2; then
  KEEP=1
  die "CHECKSUM MISMATCH: native replica differs from upstream"
fi
if [ "$NATIVE_ONLY" = 0 ]; then
  checksums "$PORT_DOWN" >"$WORK/sum.down"
  if ! diff -u "$WORK/sum.up" "$WORK/sum.down" >&2; then
    KEEP=1
    die "CHECKSUM MISMATCH: dm-rs downstream differs from upstream"
  fi
fi
log "checksums match on every sbtest table"

# ---------------------------------------------------------------- report
echo "binlog: ($P_FILE, $P_POS) .. ($E_FILE, $E_POS), $TRX transactions, ~$ROWS row changes"
echo "native replica: $NATIVE_RATE trx/s ($(rate "$ROWS" "$NATIVE_S") rows/s, ${NATIVE_S}s)"
if [ "$NATIVE_ONLY" = 0 ]; then
  echo "dm-rs: $DMRS_RATE trx/s ($(rate "$ROWS" "$DMRS_S") rows/s, ${DMRS_S}s)"
  echo "ratio: $(awk -v a="$DMRS_RATE" -v b="$NATIVE_RATE" 'BEGIN { if (b <= 0) b = 1; printf "%.2f", a / b }')"
fi
