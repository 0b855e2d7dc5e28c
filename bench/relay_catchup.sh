#!/usr/bin/env bash
# Relay log vs none: three incremental tasks of one source fall behind and catch up.
#
# One upstream and one downstream MariaDB (throwaway, loopback), dm-master and one dm-worker
# (release build). For each contender (relay on, relay off), in one run: the source is created
# (`enable-relay: true|false`), three tasks start (each its own copy of the table downstream),
# the tasks are paused, ROWS rows are written upstream (transactions of 100), and the tasks are
# resumed; the time from resume-task to all three caught up (every row downstream), and the
# upstream's Bytes_sent over the write and the catch-up, are measured. Prints both, and the
# ratios (no relay / relay). With the relay, the upstream serves its binlog once (to the relay,
# while the tasks are paused); without, once per task.
#
# Usage: bash bench/relay_catchup.sh     (knobs: ROWS, REPS, KEEP, DMRS_BIN)
set -euo pipefail

ROWS=${ROWS:-30000}
REPS=${REPS:-1}
KEEP=${KEEP:-0}
for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DMRS_BIN_DEFAULT="$ROOT/target/release"
DMRS_BIN=${DMRS_BIN:-$DMRS_BIN_DEFAULT}
# die, log, need, stop_pid, forget_pid, cleanup, free_port, sql, start_db, stop_db, now, elapsed
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer (got $REPS)"
MARIADBD=$(need mariadbd mysqld)
INSTALL_DB=$(need mariadb-install-db mysql_install_db)
CLIENT=$(need mariadb mysql)
if [ ! -x "$DMRS_BIN/dm-master" ] || [ ! -x "$DMRS_BIN/dm-worker" ] || [ ! -x "$DMRS_BIN/dmctl" ]; then
  [ "$DMRS_BIN" = "$DMRS_BIN_DEFAULT" ] || die "dm-master, dm-worker or dmctl missing in DMRS_BIN=$DMRS_BIN"
  log "building release binaries"
  (cd "$ROOT" && cargo build --release --bins) >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dmrs-relay.XXXXXX")
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM

start_db up 1 1
PORT_UP=$DB_PORT
start_db down 2 0
PORT_DOWN=$DB_PORT

bytes_sent() { sql "$PORT_UP" "SHOW GLOBAL STATUS LIKE 'Bytes_sent'" | awk '{print $2}'; }

wait_json() { # wait_json SECONDS PATTERN CMD...: until CMD's output matches PATTERN
  local until=$((SECONDS + $1)) pattern=$2 out
  shift 2
  while :; do
    out=$("$@" 2>&1 || true)
    if [[ $out =~ $pattern ]]; then return 0; fi
    [ "$SECONDS" -lt "$until" ] || { echo "$out" >&2; die "timed out waiting for /$pattern/"; }
    sleep 0.1
  done
}

# run_one RELAY REP -> CATCHUP_S BYTES
run_one() {
  local relay=$1 rep=$2 dir="$WORK/run-$relay-$rep" db="rc_${relay}_$rep"
  mkdir -p "$dir"
  local mport wport
  mport=$(free_port)
  wport=$(free_port)
  (cd "$dir" && exec "$DMRS_BIN/dm-master" --master-addr "127.0.0.1:$mport" --data-dir "$dir/master") \
    >"$dir/master.log" 2>&1 &
  local master_pid=$!
  PIDS+=("$master_pid")
  (cd "$dir" && exec "$DMRS_BIN/dm-worker" --name w --worker-addr "127.0.0.1:$wport" --join "127.0.0.1:$mport") \
    >"$dir/worker.log" 2>&1 &
  local worker_pid=$!
  PIDS+=("$worker_pid")
  local ctl=("$DMRS_BIN/dmctl" --master-addr "127.0.0.1:$mport")
  cat >"$dir/source.yaml" <<EOF
source-id: src
enable-relay: $relay
relay-dir: $dir/relay
from: {host: 127.0.0.1, port: $PORT_UP, user: root, password: ''}
EOF
  wait_json 60 '"result": true' "${ctl[@]}" operate-source create "$dir/source.yaml"
  wait_json 60 '"stage": "bound"' "${ctl[@]}" list-member --worker
  sql "$PORT_UP" "CREATE DATABASE $db; CREATE TABLE $db.t (id INT PRIMARY KEY, v VARCHAR(200))"
  local t file pos
  for t in a b c; do
    sql "$PORT_DOWN" "CREATE DATABASE ${t}_$db; CREATE TABLE ${t}_$db.t (id INT PRIMARY KEY, v VARCHAR(200))"
  done
  if [ "$relay" = true ]; then
    wait_json 60 '"relayCatchUpMaster": true' "${ctl[@]}" query-status -s src
  fi
  read -r file pos < <(sql "$PORT_UP" "SHOW MASTER STATUS" | awk '{print $1, $2}')
  for t in a b c; do
    cat >"$dir/$t.yaml" <<EOF
name: ${t}_$db
task-mode: incremental
meta-schema: dm_meta
target-database: {host: 127.0.0.1, port: $PORT_DOWN, user: root, password: ''}
mysql-instances:
  - source-id: src
    meta: {binlog-name: $file, binlog-pos: $pos}
    block-allow-list: bal
    route-rules: [r]
block-allow-list:
  bal: {do-dbs: [$db]}
routes:
  r: {schema-pattern: $db, target-schema: ${t}_$db}
EOF
    wait_json 60 '"result": true' "${ctl[@]}" start-task "$dir/$t.yaml"
  done
  for t in a b c; do
    wait_json 60 '"stage": "Running"' "${ctl[@]}" query-status "${t}_$db"
    wait_json 60 '"result": true' "${ctl[@]}" pause-task "${t}_$db"
  done
  local b0 b1 t0 t1
  b0=$(bytes_sent)
  log "relay=$relay: writing $ROWS rows while the tasks are paused"
  sql "$PORT_UP" "SET SESSION max_recursive_iterations = 10000000;
    INSERT INTO $db.t WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $ROWS)
    SELECT i, REPEAT(CHAR(97 + i % 26), 190) FROM s"
  if [ "$relay" = true ]; then
    wait_json 120 '"relayCatchUpMaster": true' "${ctl[@]}" query-status -s src
  fi
  t0=$(now)
  for t in a b c; do "${ctl[@]}" resume-task "${t}_$db" >/dev/null; done
  for t in a b c; do
    until [ "$(sql "$PORT_DOWN" "SELECT COUNT(*) FROM ${t}_$db.t")" = "$ROWS" ]; do
      kill -0 "$worker_pid" 2>/dev/null || { tail -30 "$dir/worker.log" >&2; die "dm-worker exited"; }
      sleep 0.05
    done
  done
  t1=$(now)
  b1=$(bytes_sent)
  local type
  type=$("${ctl[@]}" query-status "a_$db" | grep -o '"binlogType": "[a-z]*"' | head -1)
  CATCHUP_S=$(elapsed "$t0" "$t1")
  BYTES=$((b1 - b0))
  log "relay=$relay: catch-up ${CATCHUP_S}s, upstream sent $BYTES bytes ($type)"
  for t in a b c; do "${ctl[@]}" stop-task "${t}_$db" >/dev/null || true; done
  forget_pid "$worker_pid"
  forget_pid "$master_pid"
}

declare -A TIME BYTES_OF
for rep in $(seq 1 "$REPS"); do
  for relay in true false; do
    run_one "$relay" "$rep"
    TIME[$relay]="${TIME[$relay]:-} $CATCHUP_S"
    BYTES_OF[$relay]="${BYTES_OF[$relay]:-} $BYTES"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
tr_=$(echo "${TIME[true]}" | median)
tn=$(echo "${TIME[false]}" | median)
br=$(echo "${BYTES_OF[true]}" | median)
bn=$(echo "${BYTES_OF[false]}" | median)
echo "three tasks, $ROWS rows written while they were paused (medians of $REPS)"
echo "relay on:  catch-up ${tr_}s, upstream Bytes_sent $br (runs:${TIME[true]})"
echo "relay off: catch-up ${tn}s, upstream Bytes_sent $bn (runs:${TIME[false]})"
awk -v a="$tn" -v b="$tr_" -v c="$bn" -v d="$br" 'BEGIN { printf "ratios (off / on): catch-up time %.2f, upstream bytes %.2f\n", a / b, c / d }'
