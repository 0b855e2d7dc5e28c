#!/usr/bin/env bash
# `dmctl plan` at scale: N task files (default 1000) against a master that holds the same N
# tasks, started Paused (`start-task --paused`: no upstream or downstream connection), so the
# plan has nothing to change. The source names a throwaway MariaDB (operate-source create
# connects to it); the tasks' target is a closed port. Prints the wall time of `plan` (best and median of RUNS) and the
# number of master calls it made (one query-status for all tasks, one source listing, one
# get-config per task), for N/10 and N tasks, to show the status calls do not grow with N.
#
# Usage: bench/plan.sh            Knobs (env): TASKS=1000 RUNS=5 KEEP=0
set -euo pipefail
TASKS=${TASKS:-1000}
RUNS=${RUNS:-5}
KEEP=${KEEP:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/target/release"
if [ ! -x "$BIN/dm-master" ] || [ ! -x "$BIN/dmctl" ]; then
  (cd "$ROOT" && cargo build --release --bins >&2)
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dmrs-plan.XXXXXX")
PIDS=()
# die, log, need, cleanup, free_port, start_db (bench/lib.sh)
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
MARIADBD=$(need mariadbd mysqld)
INSTALL_DB=$(need mariadb-install-db mysql_install_db)
CLIENT=$(need mariadb mysql)

# operate-source create connects to the source's upstream (as DM's does): a throwaway one.
start_db up 1 1
UP_PORT=$DB_PORT

PORT=$(free_port)
MASTER=127.0.0.1:$PORT
"$BIN/dm-master" --master-addr "$MASTER" --data-dir "$WORK/master" --with-worker -L warn \
  >"$WORK/master.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
CTL=("$BIN/dmctl" --master-addr "$MASTER")

# The tasks' target is a closed port: paused tasks never connect.
DEAD=$(free_port)
mkdir -p "$WORK/tasks"
cat >"$WORK/tasks/source.yaml" <<YAML
source-id: bench-src
from: {host: 127.0.0.1, port: $UP_PORT, user: root, password: ''}
YAML
"${CTL[@]}" operate-source create "$WORK/tasks/source.yaml" >/dev/null
# The desired state says paused, as the master holds them: the plan has nothing to do.
printf 'tasks:\n  - name: "*"\n    stage: paused\n' >"$WORK/tasks/reconcile.yaml"

gen_task() { # name
  cat <<YAML
name: $1
task-mode: incremental
ignore-checking-items: [all]
target-database: {host: 127.0.0.1, port: $DEAD, user: root, password: secret}
mysql-instances:
  - source-id: bench-src
    meta: {binlog-name: mariadb-bin.000001, binlog-pos: 4}
    block-allow-list: only
    route-rules: [r]
block-allow-list:
  only: {do-dbs: [db_$1]}
routes:
  r: {schema-pattern: db_$1, table-pattern: "t*", target-schema: db_$1, target-table: t}
YAML
}

measure() { # dir label
  local dir=$1 label=$2 times=() out rc
  for _ in $(seq 1 "$RUNS"); do
    local t0 t1
    t0=$(date +%s%N)
    set +e
    out=$("${CTL[@]}" plan "$dir" --output json --detailed-exitcode 2>"$WORK/plan.err")
    rc=$?
    set -e
    t1=$(date +%s%N)
    [ "$rc" = 0 ] || { cat "$WORK/plan.err" >&2; echo "$out" | head -50 >&2; echo "plan exit $rc (expected 0: no changes)" >&2; exit 1; }
    times+=($(( (t1 - t0) / 1000000 )))
  done
  local sorted best median
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  best=$(echo "$sorted" | head -1)
  median=$(echo "$sorted" | sed -n "$(( (RUNS + 1) / 2 ))p")
  local calls
  calls=$(echo "$out" | python3 -c 'import json,sys; j=json.load(sys.stdin); s=j.get("live_stats") or {}; print("status_calls=%s source_calls=%s config_calls=%s" % (s.get("status_calls","?"), s.get("source_calls","?"), s.get("config_calls","?")))')
  echo "$label: plan best ${best} ms, median ${median} ms over $RUNS runs; $calls"
}

start_tasks() { # from to
  for i in $(seq "$1" "$2"); do
    gen_task "task$i" >"$WORK/tasks/task$i.yaml"
    "${CTL[@]}" start-task --paused "$WORK/tasks/task$i.yaml" >/dev/null \
      || { echo "start-task task$i failed" >&2; "${CTL[@]}" start-task --paused "$WORK/tasks/task$i.yaml" >&2; exit 1; }
  done
}

SMALL=$(( TASKS / 10 ))
log "starting $SMALL paused tasks"
start_tasks 1 "$SMALL"
measure "$WORK/tasks" "$SMALL tasks"
log "starting $(( TASKS - SMALL )) more paused tasks"
start_tasks $(( SMALL + 1 )) "$TASKS"
measure "$WORK/tasks" "$TASKS tasks"
