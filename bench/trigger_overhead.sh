#!/usr/bin/env bash
# Trigger overhead, where a row trigger's cost is visible.
#  (a) One UPDATE of every row of a ROWS-row table, VACUUM between runs,
#      ROUNDS paired runs in one session (table order rotated) after one
#      uncounted warm-up round; the backend's CPU time (median and least)
#      and wall-clock time, as ratios to the no-trigger table. Four tables with the same columns
#      and indexes: no trigger; contrib's C trigger moddatetime; a PL/pgSQL
#      trigger doing the version check, bump and timestamp; ours.
#      Then the variants users choose between, each on its own table: ours
#      with the version stated (SET version = version, the expected
#      protocol's checked path), the increment protocol (SET version =
#      version + 1), strict mode (must state the version), and ours with the
#      (version, last_modified_at) index enable_versioning creates by
#      default, which makes every update non-HOT; and observe mode with the
#      version stated, against enforcing (t_stated).
#  (b) pgbench updates by primary key, 2 clients, synchronous_commit = off:
#      ours against no trigger.
# Statistics on/off: the third argument starts the cluster with or without
# shared_preload_libraries (without it the trigger counts nothing).
#   bash bench/trigger_overhead.sh [rows=1000000] [rounds=5] [stats=on|off]
source "$(dirname "$0")/../scripts/common.sh"
ROWS="${1:-1000000}" ROUNDS="${2:-5}" STATS="${3:-on}"
DIR=/tmp/motofinai-bench-trigger PORT=55451

ensure_deps
install_extension --release
preload=()
[ "$STATS" = on ] && preload=("shared_preload_libraries = 'motofinai_consistency'")
cluster_start "$DIR" "$PORT" "shared_buffers = 2GB" "max_wal_size = 8GB" "checkpoint_timeout = 1h" \
    "synchronous_commit = off" "autovacuum = off" "${preload[@]}"
trap 'cluster_stop "$DIR"' EXIT
export PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

sql <<SQL >/dev/null
CREATE EXTENSION moddatetime;
CREATE EXTENSION motofinai_consistency;
CREATE FUNCTION bench_plpgsql_version() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    IF NEW.version <> OLD.version THEN
        RAISE EXCEPTION 'row % was modified by another transaction', OLD.id USING ERRCODE = '40001';
    END IF;
    NEW.version := OLD.version + 1;
    NEW.last_modified_at := now();
    RETURN NEW;
END \$\$;
SQL
tables=(t_none t_moddatetime t_plpgsql t_ours t_stated t_increment t_strict t_index t_observe)
for t in "${tables[@]}"; do
    sql -c "CREATE TABLE $t (id bigint PRIMARY KEY, payload integer NOT NULL, note text NOT NULL,
                             version integer NOT NULL DEFAULT 1, last_modified_at timestamptz NOT NULL DEFAULT now())" \
        -c "INSERT INTO $t (id, payload, note) SELECT g, g, 'row ' || g FROM generate_series(1, $ROWS) g" >/dev/null
done
sql -c "CREATE TRIGGER t BEFORE UPDATE ON t_moddatetime FOR EACH ROW EXECUTE FUNCTION moddatetime(last_modified_at)" \
    -c "CREATE TRIGGER t BEFORE UPDATE ON t_plpgsql FOR EACH ROW EXECUTE FUNCTION bench_plpgsql_version()" \
    -c "SELECT motofinai.enable_versioning('t_ours', create_index => false)" \
    -c "SELECT motofinai.enable_versioning('t_stated', create_index => false)" \
    -c "SELECT motofinai.enable_versioning('t_increment', protocol => 'increment', create_index => false)" \
    -c "SELECT motofinai.enable_versioning('t_strict', strict => true, create_index => false)" \
    -c "SELECT motofinai.enable_versioning('t_index')" \
    -c "SELECT motofinai.enable_versioning('t_observe', create_index => false, mode => 'observe')" \
    -c "VACUUM ANALYZE" >/dev/null

declare -A wall cpu set_list
for t in "${tables[@]}"; do set_list[$t]="payload = payload + 1"; done
set_list[t_stated]="payload = payload + 1, version = version"
set_list[t_strict]="payload = payload + 1, version = version"
set_list[t_increment]="payload = payload + 1, version = version + 1"
# Observe mode's path when nothing conflicts, level with t_stated (enforcing).
set_list[t_observe]="payload = payload + 1, version = version"
part_a() {
    n=${#tables[@]}
    # Round 0 warms the caches and is not counted (first rounds ran up to 30% slower).
    for r in $(seq 0 "$ROUNDS"); do
        # Rotate the order so no table always runs first or last.
        for i in $(seq 0 $((n - 1))); do
            t=${tables[$(( (i + r) % n ))]}
            # Wall-clock time, and the backend's own CPU time from the executor
            # statistics: other processes on two cores and the kernel's
            # writeback of a million updated rows spread wall-clock runs up to
            # 2x, CPU time far less.
            out=$( { echo "VACUUM $t;"; echo "SET client_min_messages = log;"; echo "SET log_executor_stats = on;"
                     echo '\timing on'; echo "UPDATE $t SET ${set_list[$t]};"; } | psql -X -q 2>&1)
            [ "$r" = 0 ] && continue
            wall[$t]="${wall[$t]:-} $(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | tail -1)"
            cpu[$t]="${cpu[$t]:-} $(sed -n 's/^!\s*\([0-9.]*\) s user, \([0-9.]*\) s system, .*elapsed$/\1 \2/p' <<<"$out" \
                                    | awk '{printf "%.1f", ($1 + $2) * 1000}')"
        done
    done
    median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
    least() { tr ' ' '\n' | grep -v '^$' | sort -n | head -1; }
    echo "(a) UPDATE of all $ROWS rows, $ROUNDS paired runs after a warm-up round, statistics $STATS"
    echo "    CPU time: the median, and the least (the run least disturbed by the rest of the machine)"
    echo "    table          CPU median  vs none   CPU least  vs none     wall median  vs none"
    c0=$(echo "${cpu[t_none]}" | median); l0=$(echo "${cpu[t_none]}" | least); w0=$(echo "${wall[t_none]}" | median)
    for t in "${tables[@]}"; do
        c=$(echo "${cpu[$t]}" | median); l=$(echo "${cpu[$t]}" | least); w=$(echo "${wall[$t]}" | median)
        python3 -c "print(f'    {\"$t\":14} {$c:10.1f} {$c0/$c:7.3f}x {$l:10.1f} {$l0/$l:7.3f}x {$w:14.1f} {$w0/$w:7.3f}x')"
    done
    echo "    CPU runs:"; for t in "${tables[@]}"; do echo "      $t:${cpu[$t]}"; done
    ratio() { python3 -c "print(f'{$(echo "${cpu[$1]}" | $3)/$(echo "${cpu[$2]}" | $3):.3f}')"; }
    echo "    ours vs moddatetime: $(ratio t_moddatetime t_ours median)x median, $(ratio t_moddatetime t_ours least)x least"
    echo "    ours vs PL/pgSQL:    $(ratio t_plpgsql t_ours median)x median, $(ratio t_plpgsql t_ours least)x least"
    echo "    observe vs enforce (version stated): $(ratio t_stated t_observe median)x median, $(ratio t_stated t_observe least)x least"
}
# ROUNDS = 0 runs (b) alone.
[ "$ROUNDS" -gt 0 ] && part_a

cat > "$DIR/pk_update.sql" <<'PGB'
\set id random(1, :rows)
UPDATE :table SET payload = payload + 1 WHERE id = :id;
PGB
pgb() { "$PG_BIN/pgbench" -n -c 2 -j 2 -T "${PGBENCH_SECONDS:-10}" -D rows="$ROWS" -D table="$1" -f "$DIR/pk_update.sql" 2>/dev/null \
        | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'; }
# Paired runs, the order alternating; the median of the pairs' ratios.
pairs=()
for i in $(seq 1 "${PGBENCH_PAIRS:-5}"); do
    if [ $((i % 2)) = 1 ]; then n=$(pgb t_none); o=$(pgb t_ours); else o=$(pgb t_ours); n=$(pgb t_none); fi
    pairs+=("$n $o")
done
echo "(b) pgbench UPDATE by primary key, 2 clients, synchronous_commit = off, ${#pairs[@]} paired runs of ${PGBENCH_SECONDS:-10} s"
printf '%s\n' "${pairs[@]}" | python3 -c '
import statistics, sys
pairs = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
for n, o in pairs:
    print(f"  no trigger {n:8.0f} tps, ours {o:8.0f} tps, ratio {o / n:.3f}")
print(f"  median ratio ours / no trigger: {statistics.median(o / n for n, o in pairs):.3f}")
'
