#!/usr/bin/env bash
# Lost-update test. N clients run read-modify-write increments of one counter
# concurrently with pgbench, retrying on SQLSTATE 40001 (--max-tries).
#   versioned counter: the final value equals the number of committed
#                      increments, and conflicts really happened (retries > 0).
#   plain counter:     the same workload loses updates (final < committed),
#                      which shows the check above can fail.
# Connection from the libpq environment (PGHOST, PGPORT, PGUSER).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PGUSER="${PGUSER:-postgres}" PGDATABASE=motofinai_lost_update
CLIENTS="${CLIENTS:-8}"
TRANSACTIONS="${TRANSACTIONS:-150}"
PGBENCH="${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}"

psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $PGDATABASE" -c "CREATE DATABASE $PGDATABASE"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION motofinai_consistency;
CREATE TABLE counter_versioned (id int PRIMARY KEY, val int NOT NULL);
CREATE TABLE counter_plain (id int PRIMARY KEY, val int NOT NULL, version int NOT NULL DEFAULT 1);
INSERT INTO counter_versioned VALUES (1, 0);
INSERT INTO counter_plain VALUES (1, 0);
SELECT motofinai.enable_versioning('counter_versioned');
SQL

# run TABLE: prints "committed retried final"
run() {
    local out
    out=$("$PGBENCH" -n -c "$CLIENTS" -j 2 -t "$TRANSACTIONS" --max-tries=10000 \
        -D table="$1" -f "$here/read_modify_write.sql" 2>&1) || { echo "$out" >&2; return 1; }
    local committed retried final
    committed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    retried=$(sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' <<<"$out")
    final=$(psql -X -At -c "SELECT val FROM $1 WHERE id = 1")
    echo "${committed:-0} ${retried:-0} $final"
}

read -r v_committed v_retried v_final < <(run counter_versioned)
read -r p_committed p_retried p_final < <(run counter_plain)
echo "versioned: $v_committed increments committed, $v_retried retried after a conflict, counter = $v_final"
echo "plain:     $p_committed increments committed, counter = $p_final (lost $((p_committed - p_final)))"

status=0
if [ "$v_final" != "$v_committed" ]; then
    echo "FAIL: versioned counter lost updates ($v_final != $v_committed)"; status=1
fi
if [ "$v_committed" != $((CLIENTS * TRANSACTIONS)) ]; then
    echo "FAIL: not every increment committed ($v_committed of $((CLIENTS * TRANSACTIONS)))"; status=1
fi
if [ "$v_retried" -eq 0 ]; then
    echo "FAIL: no conflict happened, so the test proved nothing"; status=1
fi
if [ "$p_final" -ge "$p_committed" ]; then
    echo "FAIL: the unversioned control lost no update, so the workload is not racy enough"; status=1
fi
psql -X -q -d postgres -c "DROP DATABASE $PGDATABASE"
[ $status = 0 ] && echo "lost_update: ok"
exit $status
