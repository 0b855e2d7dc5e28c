#!/usr/bin/env bash
# Full-load throughput: dm-rs `task-mode: full` vs mydumper + myloader vs mariadb-dump | mariadb.
#
# Starts a throwaway upstream mariadbd (free 127.0.0.1 port), prepares TABLES sysbench tables of
# TABLE_SIZE rows, then for each contender starts a fresh, empty downstream mariadbd (same settings
# every time), copies sbtest into it and times the copy: (a) dm-rs, dm-master + a separate
# dm-worker, a full task timed from start-task to the subtask's stage Finished; (b) mydumper -t
# THREADS --rows ROWS, then myloader -t POOL; (c) mariadb-dump --single-transaction | mariadb.
# CHECKSUM TABLE of every sbtest table, upstream vs each downstream; a mismatch fails the run.
# Prints rows/s and seconds per contender, the ratios and the dm-worker's peak RSS (VmHWM).
#
# Usage: bench/full_load.sh [--no-dmrs]
# Knobs (env): TABLES=8 TABLE_SIZE=100000 THREADS=4 POOL=4 ROWS=20000 REPS=1 FLUSH_AT_COMMIT=2
#              KEEP=0 TIMEOUT=1200 DMRS_BIN=$ROOT/target/release WATCH_EVERY=20ms
#              ONLY_DMRS=1 (dm-rs alone: no ratios; for profiling the worker)
#              PERF_WORKER=FILE (perf record of the dm-worker over the timed run, into FILE)
#              PERF_ALL=FILE (perf record of every CPU over the timed run: `perf report --sort comm`)
# REPS>1 runs the contenders interleaved (the first one rotates) and prints medians.
# See bench/README.md.
set -euo pipefail

TABLES=${TABLES:-8}
TABLE_SIZE=${TABLE_SIZE:-100000}
THREADS=${THREADS:-4}
POOL=${POOL:-4}
ROWS=${ROWS:-20000}
REPS=${REPS:-1}
FLUSH_AT_COMMIT=${FLUSH_AT_COMMIT:-2}
KEEP=${KEEP:-0}
TIMEOUT=${TIMEOUT:-1200}
WATCH_EVERY=${WATCH_EVERY:-20ms}

NO_DMRS=0
for arg in "$@"; do
  case "$arg" in
    --no-dmrs) NO_DMRS=1 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

SYSBENCH=$(need sysbench)
MARIADBD=$(need mariadbd mysqld)
INSTALL_DB=$(need mariadb-install-db mysql_install_db)
CLIENT=$(need mariadb mysql)
DUMP=$(need mariadb-dump mysqldump)
MYDUMPER=$(need mydumper)
MYLOADER=$(need myloader)

if [ "$NO_DMRS" = 0 ]; then
  if [ ! -x "$DMRS_BIN/dm-master" ] || [ ! -x "$DMRS_BIN/dm-worker" ] || [ ! -x "$DMRS_BIN/dmctl" ]; then
    [ "$DMRS_BIN" = "$DMRS_BIN_DEFAULT" ] || die "dm-master, dm-worker or dmctl missing in DMRS_BIN=$DMRS_BIN"
    log "building release binaries"
    (cd "$ROOT" && cargo build --release --bins) >&2
  fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dmrs-full.XXXXXX")
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM


cpu_of() { # cpu_of PID: its user+system CPU seconds so far
  awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"
}
children_cpu() { # user+system CPU seconds of this shell's waited-for children so far
  times >"$WORK/times" # (not in a subshell: its children are not this shell's)
  tail -1 "$WORK/times" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.2f", s }'
}
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
settle() { # before a timed run: the writes of earlier runs (removed data dirs, dumps) reach the
  # disk now instead of during the next contender's run (whichever contender came next paid for
  # the kernel's writeback of the one before)
  sync
}
busy_cpu() { # CPU seconds the whole machine has been busy so far (all cores, /proc/stat)
  awk -v t="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / t }' /proc/stat
}
declare -A CPU_LINE=()
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 0.001; printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 0.001; printf "%.2f", a / b }'; }
median() { # median NUMBER...
  printf '%s\n' "$@" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

checksums() { # checksums PORT -> "table checksum" lines
  local port=$1 list="" i
  for i in $(seq 1 "$TABLES"); do list="$list${list:+, }sbtest.sbtest$i"; done
  sql "$port" "CHECKSUM TABLE $list"
}

# check_down NAME PORT LABEL: every sbtest table equal to the upstream's, or the run fails
check_down() {
  local name=$1 port=$2 label=$3
  checksums "$port" >"$WORK/sum.$name"
  if ! diff -u "$WORK/sum.up" "$WORK/sum.$name" >&2; then
    KEEP=1
    die "CHECKSUM MISMATCH: $label downstream ($name) differs from upstream"
  fi
  log "$label: checksums match on all $TABLES sbtest tables"
}

# ---------------------------------------------------------------- upstream and data
start_db up 1 1
PORT_UP=$DB_PORT
UP_PID=$DB_PID

log "sysbench prepare: $TABLES tables x $TABLE_SIZE rows"
sql "$PORT_UP" "CREATE DATABASE sbtest"
"$SYSBENCH" oltp_read_write --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$PORT_UP" \
  --mysql-user=root --mysql-password= --mysql-db=sbtest --tables="$TABLES" \
  --table-size="$TABLE_SIZE" --threads="$THREADS" prepare >"$WORK/prepare.log" 2>&1 ||
  { cat "$WORK/prepare.log" >&2; die "sysbench prepare failed"; }
TOTAL_ROWS=$((TABLES * TABLE_SIZE))
# Fresh statistics, so every contender's chunking sees the same row estimates (InnoDB updates them
# in the background some time after a bulk insert).
for i in $(seq 1 "$TABLES"); do sql "$PORT_UP" "ANALYZE TABLE sbtest.sbtest$i" >/dev/null; done
checksums "$PORT_UP" >"$WORK/sum.up"
DATA_MIB=$(sql "$PORT_UP" "SELECT ROUND(SUM(data_length + index_length) / 1048576) FROM information_schema.tables WHERE table_schema = 'sbtest'")

# ---------------------------------------------------------------- (a) dm-rs
DMRS_PEAKS=()
run_dmrs() { # run_dmrs REP -> RUN_S
  local rep=$1 name="down-dmrs-$rep" dir="$WORK/dmrs-$rep" port
  start_db "$name" 2 0
  port=$DB_PORT
  local db_pid=$DB_PID
  mkdir -p "$dir"

  local master_port worker_port master
  master_port=$(free_port)
  worker_port=$(free_port)
  master="127.0.0.1:$master_port"
  (cd "$dir" && exec "$DMRS_BIN/dm-master" --master-addr "$master" --data-dir "$dir/master-data") \
    >"$dir/dm-master.log" 2>&1 &
  local master_pid=$!
  PIDS+=("$master_pid")
  (cd "$dir" && exec "$DMRS_BIN/dm-worker" --name bench-worker --worker-addr "127.0.0.1:$worker_port" \
    --join "$master") >"$dir/dm-worker.log" 2>&1 &
  local worker_pid=$!
  PIDS+=("$worker_pid")
  local dmctl=("$DMRS_BIN/dmctl" --master-addr "$master")

  cat >"$dir/source.yaml" <<EOF
source-id: "bench-up"
enable-gtid: false
from:
  host: "127.0.0.1"
  port: $PORT_UP
  user: "root"
  password: ""
EOF
  cat >"$dir/task.yaml" <<EOF
name: "benchfull"
task-mode: "full"
target-database:
  host: "127.0.0.1"
  port: $port
  user: "root"
  password: ""
mysql-instances:
  - source-id: "bench-up"
    block-allow-list: "bench-bal"
    mydumper-config-name: "bench-dump"
    loader-config-name: "bench-load"
block-allow-list:
  bench-bal:
    do-dbs: ["sbtest"]
mydumpers:
  bench-dump:
    threads: $THREADS
    rows: $ROWS
loaders:
  bench-load:
    pool-size: $POOL
    dir: "$dir/dumped_data"
EOF

  log "dm-rs: dm-master pid $master_pid on $master, dm-worker pid $worker_pid; operate-source create"
  local deadline=$(( $(date +%s) + 60 ))
  until "${dmctl[@]}" operate-source create "$dir/source.yaml" >"$dir/operate-source.out" 2>&1 &&
        grep -q '"result": *true' "$dir/operate-source.out"; do
    kill -0 "$worker_pid" 2>/dev/null || { cat "$dir/dm-worker.log" >&2; die "dm-worker exited"; }
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$dir/operate-source.out" "$dir/dm-master.log" >&2; die "operate-source create failed"; }
    sleep 0.5
  done
  # the source must be bound to the separate worker before start-task
  until "${dmctl[@]}" list-member --worker >"$dir/list-member.out" 2>&1 &&
        grep -q '"stage": *"bound"' "$dir/list-member.out"; do
    kill -0 "$worker_pid" 2>/dev/null || { cat "$dir/dm-worker.log" >&2; die "dm-worker exited"; }
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$dir/list-member.out" "$dir/dm-master.log" "$dir/dm-worker.log" >&2; die "the source was not bound to bench-worker within 60 s"; }
    sleep 0.2
  done

  log "dm-rs: start-task (full, threads $THREADS, rows $ROWS, pool-size $POOL)"
  local t0 t1 out="$dir/query-status.out"
  local up0 down0 busy0
  settle
  up0=$(cpu_of "$UP_PID")
  down0=$(cpu_of "$db_pid")
  busy0=$(busy_cpu)
  local perf_pid="" perf_out="${PERF_WORKER:-${PERF_ALL:-}}" perf_what=(-p "$worker_pid")
  [ -n "${PERF_WORKER:-}" ] || perf_what=(-a)
  if [ -n "$perf_out" ]; then
    perf record -q -e cpu-clock -g "${perf_what[@]}" -o "$perf_out" >/dev/null 2>&1 &
    perf_pid=$!
    PIDS+=("$perf_pid")
    sleep 0.5 # perf attaches before the clock starts
  fi
  t0=$(now)
  "${dmctl[@]}" start-task "$dir/task.yaml" >"$dir/start-task.out" 2>&1 || true
  grep -q '"result": *true' "$dir/start-task.out" ||
    { cat "$dir/start-task.out" >&2; tail -50 "$dir/dm-worker.log" >&2; die "start-task failed"; }
  log "dm-rs: start-task returned after $(elapsed "$t0" "$(now)")s (precheck and unit start included)"
  # The wait: one long-lived `query-status --watch` reading the status every $WATCH_EVERY (one
  # RPC each, no process per poll, so it takes little of the 2 cores it shares); it exits 0
  # when every subtask is Finished (or Stopped), 1 when one is paused by an error.
  local watch_rc=0
  timeout "$TIMEOUT" "${dmctl[@]}" query-status benchfull --watch --interval "$WATCH_EVERY" \
    >"$dir/watch.out" 2>&1 || watch_rc=$?
  t1=$(now)
  RUN_S=$(elapsed "$t0" "$t1")
  "${dmctl[@]}" query-status benchfull >"$out" 2>&1 || true
  local text stage re='"stage": *"([A-Za-z]*)"'
  IFS= read -r -d "" text <"$out" || true
  # the subtasks' stages: every one Finished
  stages=" "
  while [[ $text =~ $re ]]; do
    stage=${BASH_REMATCH[1]}
    [[ $stages == *" $stage "* ]] || stages="$stages$stage "
    text=${text#*"${BASH_REMATCH[0]}"}
  done
  if [ "$watch_rc" != 0 ] || [ "$stages" != " Finished " ]; then
    cat "$dir/watch.out" "$out" >&2
    echo "---- dm-worker log (last 50 lines)" >&2
    tail -50 "$dir/dm-worker.log" >&2
    KEEP=1
    case $watch_rc in
      124) die "dm-rs task not Finished within ${TIMEOUT}s (stages:$stages)" ;;
      0) die "dm-rs task ended but not Finished (stages:$stages)" ;;
      *) die "dm-rs task paused (query-status --watch exit $watch_rc; stages:$stages)" ;;
    esac
  fi
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    forget_pid "$perf_pid"
    log "dm-rs: perf profile in $perf_out"
  fi

  local hwm
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$worker_pid/status")
  DMRS_PEAKS+=("$hwm")
  local cpu up_cpu down_cpu busy
  busy=$(sub "$busy0" "$(busy_cpu)")
  cpu=$(cpu_of "$worker_pid")
  up_cpu=$(sub "$up0" "$(cpu_of "$UP_PID")")
  down_cpu=$(sub "$down0" "$(cpu_of "$db_pid")")
  CPU_LINE[dmrs]="dm-worker ${cpu}s, dm-master $(cpu_of "$master_pid")s, upstream ${up_cpu}s, downstream ${down_cpu}s; machine busy ${busy}s"
  log "dm-rs: Finished in ${RUN_S}s; dm-worker VmHWM $hwm kB; CPU (user+system): ${CPU_LINE[dmrs]}"
  forget_pid "$worker_pid"
  forget_pid "$master_pid"

  check_down "$name" "$port" "dm-rs"
  stop_db "$name" "$db_pid"
  [ "$KEEP" = 1 ] || rm -rf "$dir"
}

# ---------------------------------------------------------------- (b) mydumper + myloader
MYD_DUMP_S=()
MYD_LOAD_S=()
run_mydumper() { # run_mydumper REP -> RUN_S
  local rep=$1 name="down-mydumper-$rep" out="$WORK/mydumper-$rep" port
  start_db "$name" 2 0
  port=$DB_PORT
  local db_pid=$DB_PID
  log "mydumper -t $THREADS --rows $ROWS, then myloader -t $POOL"
  local t0 tm t1 up0 down0 tool0 busy0
  settle
  busy0=$(busy_cpu)
  up0=$(cpu_of "$UP_PID")
  down0=$(cpu_of "$db_pid")
  children_cpu >"$WORK/tool0"
  tool0=$(cat "$WORK/tool0")
  t0=$(now)
  "$MYDUMPER" -h 127.0.0.1 -P "$PORT_UP" -u root -B sbtest -t "$THREADS" --rows "$ROWS" \
    -o "$out" -v 2 >"$WORK/mydumper-$rep.log" 2>&1 ||
    { cat "$WORK/mydumper-$rep.log" >&2; die "mydumper failed"; }
  tm=$(now)
  "$MYLOADER" -h 127.0.0.1 -P "$port" -u root -d "$out" -t "$POOL" -v 2 \
    >"$WORK/myloader-$rep.log" 2>&1 ||
    { cat "$WORK/myloader-$rep.log" >&2; die "myloader failed"; }
  t1=$(now)
  RUN_S=$(elapsed "$t0" "$t1")
  children_cpu >"$WORK/tool1"
  CPU_LINE[mydumper]="mydumper+myloader $(sub "$tool0" "$(cat "$WORK/tool1")")s, upstream $(sub "$up0" "$(cpu_of "$UP_PID")")s, downstream $(sub "$down0" "$(cpu_of "$db_pid")")s; machine busy $(sub "$busy0" "$(busy_cpu)")s"
  MYD_DUMP_S+=("$(elapsed "$t0" "$tm")")
  MYD_LOAD_S+=("$(elapsed "$tm" "$t1")")
  log "mydumper+myloader: CPU (user+system): ${CPU_LINE[mydumper]}"
  log "mydumper+myloader: ${RUN_S}s (dump ${MYD_DUMP_S[-1]}s, load ${MYD_LOAD_S[-1]}s, $(find "$out" -name '*.sql' | wc -l) files)"
  check_down "$name" "$port" "mydumper+myloader"
  stop_db "$name" "$db_pid"
  [ "$KEEP" = 1 ] || rm -rf "$out"
}

# ---------------------------------------------------------------- (c) mariadb-dump | mariadb
run_mariadb_dump() { # run_mariadb_dump REP -> RUN_S
  local rep=$1 name="down-mariadb-dump-$rep" port
  start_db "$name" 2 0
  port=$DB_PORT
  local db_pid=$DB_PID
  log "mariadb-dump --single-transaction | mariadb"
  local t0 t1
  settle
  t0=$(now)
  "$DUMP" -h127.0.0.1 -P"$PORT_UP" -uroot --single-transaction --databases sbtest |
    "$CLIENT" -h127.0.0.1 -P"$port" -uroot || die "mariadb-dump | mariadb failed"
  t1=$(now)
  RUN_S=$(elapsed "$t0" "$t1")
  log "mariadb-dump|mariadb: ${RUN_S}s"
  check_down "$name" "$port" "mariadb-dump|mariadb"
  stop_db "$name" "$db_pid"
}

# ---------------------------------------------------------------- the runs
CONTENDERS=()
[ "$NO_DMRS" = 1 ] || CONTENDERS+=(dmrs)
if [ "${ONLY_DMRS:-0}" = 1 ]; then
  [ "$NO_DMRS" = 0 ] || die "ONLY_DMRS=1 and --no-dmrs leave nothing to run"
else
  CONTENDERS+=(mydumper mariadb_dump)
fi
N=${#CONTENDERS[@]}
declare -A TIMES=()
for rep in $(seq 1 "$REPS"); do
  for ((k = 0; k < N; k++)); do
    c=${CONTENDERS[$(( (k + rep - 1) % N ))]}
    log "rep $rep/$REPS: $c"
    "run_$c" "$rep"
    TIMES[$c]="${TIMES[$c]:-} $RUN_S"
  done
done

# ---------------------------------------------------------------- report
label() { case "$1" in dmrs) echo "dm-rs full" ;; mydumper) echo "mydumper+myloader" ;; mariadb_dump) echo "mariadb-dump|mariadb" ;; esac; }
declare -A MED=()
echo "data: $TABLES tables x $TABLE_SIZE rows = $TOTAL_ROWS rows (~$DATA_MIB MiB on the upstream); THREADS=$THREADS POOL=$POOL ROWS=$ROWS FLUSH_AT_COMMIT=$FLUSH_AT_COMMIT"
[ "$REPS" = 1 ] || echo "medians of $REPS interleaved runs"
for c in "${CONTENDERS[@]}"; do
  # shellcheck disable=SC2086
  MED[$c]=$(median ${TIMES[$c]})
  extra=""
  if [ "$c" = mydumper ]; then
    extra=": dump $(median "${MYD_DUMP_S[@]}")s + load $(median "${MYD_LOAD_S[@]}")s"
  fi
  runs=""
  [ "$REPS" = 1 ] || runs="; runs:${TIMES[$c]}"
  echo "$(label "$c"): $(rate "$TOTAL_ROWS" "${MED[$c]}") rows/s (${MED[$c]}s$extra$runs)"
  [ -z "${CPU_LINE[$c]:-}" ] || echo "  CPU of the last run (user+system): ${CPU_LINE[$c]}"
done
if [ "$NO_DMRS" = 0 ] && [ "${ONLY_DMRS:-0}" != 1 ]; then
  # ratios of rates = inverse ratios of times
  per_rep() { # per_rep OTHER: the ratio within each repetition (its runs are closest in time)
    local -a d o
    local i out=""
    read -r -a d <<<"${TIMES[dmrs]}"
    read -r -a o <<<"${TIMES[$1]}"
    for i in "${!d[@]}"; do out="$out $(ratio "${o[$i]}" "${d[$i]}")"; done
    echo "$out"
  }
  for c in mydumper mariadb_dump; do
    line="ratio dm-rs / $(label "$c"): $(ratio "${MED[$c]}" "${MED[dmrs]}")"
    [ "$REPS" = 1 ] || line="$line (of the medians; per repetition:$(per_rep "$c"))"
    echo "$line"
  done
  peak=$(printf '%s\n' "${DMRS_PEAKS[@]}" | sort -n | tail -1)
  echo "dm-worker peak RSS: $(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }') MiB (VmHWM$([ "$REPS" = 1 ] || echo ", highest of $REPS runs"))"
fi
