#!/usr/bin/env bash
# The quickstart ("main job"): installs what is missing, builds dm-rs, starts an upstream MariaDB
# (binlog on, ROW) on 127.0.0.1:13306 and a downstream on 127.0.0.1:13307, starts
# `dm-master --with-worker` on 127.0.0.1:8261, writes rows upstream, creates the example
# source, starts the example task (examples/tasks/shop.yaml, task-mode all: the existing rows
# are dumped and loaded, then the binlog follows), writes more rows, waits until they are
# replicated and shows query-status and the downstream rows.
# Every process it starts is stopped by its PID when the script ends (or on Ctrl-C);
# pass --keep to leave them running (their PIDs are printed, with the command that stops them).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:/usr/sbin:$PATH"
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
WORK="${DM_QUICKSTART_DIR:-/tmp/dm-rs-quickstart}"

bash .ci/setup
cargo build --locked --bins
DMCTL=target/debug/dmctl

PIDS=()
cleanup() {
  if [ "$KEEP" -eq 0 ]; then
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; done
    [ ${#PIDS[@]} -gt 0 ] && echo "quickstart: stopped ${PIDS[*]}"
  else
    echo "quickstart: left running: ${PIDS[*]} (stop with: kill ${PIDS[*]})"
  fi
}
trap cleanup EXIT

start_mariadb() { # name port server_id binlog(0/1)
  local name=$1 port=$2 sid=$3 binlog=$4 d="$WORK/$1"
  rm -rf "$d" && mkdir -p "$d"
  {
    echo "[mariadbd]"
    echo "datadir=$d/data"; echo "port=$port"; echo "bind-address=127.0.0.1"
    echo "socket=$d/mariadb.sock"; echo "pid-file=$d/mariadb.pid"; echo "log_error=$d/error.log"
    echo "skip-name-resolve"; echo "server_id=$sid"; echo "init-file=$d/init.sql"
    echo "innodb_use_native_aio=0" # the kernel's AIO contexts are shared by the whole host
    [ "$(id -u)" -eq 0 ] && echo "user=root"
    if [ "$binlog" = 1 ]; then
      echo "log_bin=$d/data/mariadb-bin"; echo "binlog_format=ROW"
      echo "binlog_row_image=FULL"; echo "binlog_row_metadata=FULL"
    fi
  } > "$d/my.cnf"
  printf "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';\nGRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n" > "$d/init.sql"
  mariadb-install-db --defaults-file="$d/my.cnf" --auth-root-authentication-method=normal --skip-test-db >/dev/null
  mariadbd --defaults-file="$d/my.cnf" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 300); do
    mariadb -h127.0.0.1 -P"$port" -uroot -e 'SELECT 1' >/dev/null 2>&1 && { echo "quickstart: $name up on 127.0.0.1:$port (pid $!)"; return 0; }
    sleep 0.2
  done
  echo "quickstart: $name did not start; log:" >&2; tail -20 "$d/error.log" >&2; return 1
}

start_mariadb upstream 13306 1 1
start_mariadb downstream 13307 2 0

export DM_TARGET_PASSWORD="" DM_SOURCE_PASSWORD=""
echo "quickstart: validating examples/tasks"
$DMCTL check-task --offline examples/tasks/shop.yaml examples/tasks/source-mariadb-01.yaml

UP="mariadb -h127.0.0.1 -P13306 -uroot"
DOWN="mariadb -h127.0.0.1 -P13307 -uroot"
MASTER=127.0.0.1:8261
CTL="$DMCTL --master-addr $MASTER"

rm -rf "$WORK/dm-master"
target/debug/dm-master --master-addr "$MASTER" --data-dir "$WORK/dm-master" --with-worker \
  >"$WORK/dm-master.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/8261) 2>/dev/null && break; sleep 0.1; done
echo "quickstart: dm-master (with its worker) up on $MASTER (pid $!, log $WORK/dm-master.log)"

$UP -e "CREATE DATABASE shop;
CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(64), qty INT);
CREATE TABLE shop.orders_archive (id INT PRIMARY KEY, item VARCHAR(64), qty INT);
CREATE TABLE shop.audit_log (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT);
INSERT INTO shop.orders VALUES (1,'apple',3),(2,'pear',5),(3,'plum',7);
INSERT INTO shop.orders_archive VALUES (100,'fig',1);
INSERT INTO shop.audit_log (note) VALUES ('created');"
echo "quickstart: upstream rows written before the task starts (the dump brings them)"

echo "quickstart: \$ dmctl operate-source create examples/tasks/source-mariadb-01.yaml"
$CTL operate-source create examples/tasks/source-mariadb-01.yaml
echo "quickstart: \$ dmctl start-task examples/tasks/shop.yaml   (task-mode all: dump, load, then binlog)"
$CTL start-task examples/tasks/shop.yaml
for _ in $(seq 1 300); do
  $CTL query-status shop | grep -q '"unit": "Sync"' && break
  sleep 0.2
done
echo "quickstart: the dump and load are done; the task follows the binlog"

$UP -e "INSERT INTO shop.orders VALUES (4,'quince',2);
UPDATE shop.orders SET qty = qty + 1 WHERE id = 2;
DELETE FROM shop.orders WHERE id = 3;
INSERT INTO shop.orders_archive VALUES (101,'date',9);"
echo "quickstart: more upstream rows written (the binlog brings them)"

want=$($UP -N -e "SHOW MASTER STATUS" | awk '{print "(" $1 ", " $2 ")"}')
for _ in $(seq 1 100); do
  $CTL query-status shop | grep -q "\"syncerBinlog\": \"$want\"" && break
  sleep 0.2
done
echo "quickstart: \$ dmctl query-status shop"
$CTL query-status shop
echo "quickstart: downstream now holds (orders_archive is routed to orders_history; audit_log is not replicated):"
$DOWN -e "SELECT * FROM shop.orders; SELECT * FROM shop.orders_history; SHOW TABLES FROM shop;"
echo "quickstart: \$ dmctl plan examples/tasks   (the directory is the desired state: nothing to change)"
$CTL plan examples/tasks
echo "quickstart: try it: $CTL pause-task shop | resume-task shop | query-status | list-member"
echo "quickstart:         $CTL reconcile examples/tasks   (then edit examples/tasks/shop.yaml)"
