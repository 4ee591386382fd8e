#!/usr/bin/env bash
# The whole test suite, from nothing: installs what is missing, then runs
#   1. cargo pgrx test          (#[pg_test] unit tests, in pgrx's own cluster)
#   2. pg_regress               (SQL behaviour, tests/regress)
#   3. pg_isolation_regress     (concurrency, tests/isolation)
#   4. the check_consistency command's tests, pg_cron, the lost-update
#      workload, the Django integration, dump/restore, upgrades and DROP
#      EXTENSION, hostile calls, sqlsmith, a hot standby (tests/*/run.sh)
#   5. each benchmark once at a tiny size
# on throwaway clusters that it starts and stops itself.
source "$(dirname "$0")/common.sh"

WORK="${MFC_TEST_DIR:-/tmp/motofinai-test}"
PORT="${MFC_TEST_PORT:-55439}"
passed=0
failed=0
failures=()

record() { # record NAME STATUS
    if [ "$2" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

ensure_deps

log "cargo pgrx test"
as_root mkdir -p "$WORK"
as_root rm -rf "$WORK/pgrx-data"
as_root install -d -o postgres "$WORK/pgrx-data"
set +e
(cd "$ROOT" && cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$WORK/pgrx-data")
record "cargo pgrx test" $?
set -e

install_extension
log "starting a throwaway cluster in $WORK/cluster"
cluster_start "$WORK/cluster" "$PORT" "shared_preload_libraries = 'motofinai_consistency,pg_cron'" \
    "cron.database_name = 'postgres'" "cron.use_background_workers = on"
trap 'cluster_stop "$WORK/cluster"' EXIT

# pg_regress writes its results next to the expected files' copy we hand it.
as_root rm -rf "$WORK/suite"
as_root cp -r "$ROOT/tests" "$WORK/suite"
as_root chown -R postgres: "$WORK/suite"

run_suite() { # run_suite DIR RUNNER [RUNNER ARGS...] (CONN: the cluster's --host/--port)
    local suite="$1" dir="$WORK/suite/$1" runner="$2" tests status
    shift 2
    if [ -d "$dir/specs" ]; then
        tests=$(cd "$dir/specs" && ls -- *.spec | sed 's/\.spec$//')
    else
        tests=$(cd "$dir/sql" && ls -- *.sql | sed 's/\.sql$//')
    fi
    log "$suite: $(echo $tests | wc -w) tests"
    set +e
    (cd "$dir" && as_pg "$runner" --host="${CONN_HOST:-$WORK/cluster}" --port="${CONN_PORT:-$PORT}" "$@" --inputdir=. --outputdir=. $tests) 2>&1 | tee "$dir/runner.log"
    status=${PIPESTATUS[0]}
    set -e
    [ "$status" = 0 ] || cat "$dir/regression.diffs" 2>/dev/null || true
    # Runner lines read "test NAME ... ok" (or "FAILED").
    for t in $tests; do
        if grep -qE "^test $t +\.\.\. ok" "$dir/runner.log"; then record "$suite/$t" 0; else record "$suite/$t" 1; fi
    done
    [ "$status" = 0 ] || record "$suite (runner exit $status)" 1
}

run_suite regress "$PGXS_TEST/regress/pg_regress"
# The isolation specs that need the Motofinai tables share one prepared
# database (each spec's setup and teardown leave it as they found it).
as_pg psql -X -q -h "$WORK/cluster" -p "$PORT" -d postgres \
    -c "DROP DATABASE IF EXISTS isolation_mfc" -c "CREATE DATABASE isolation_mfc"
as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$WORK/cluster" -p "$PORT" -d isolation_mfc \
    -f "$WORK/suite/fixtures/motofinai_schema.sql" -f "$WORK/suite/generator/generate.sql" \
    -c "CREATE EXTENSION motofinai_consistency" >/dev/null
run_suite isolation "$PGXS_TEST/isolation/pg_isolation_regress" --use-existing --dbname=isolation_mfc

# A second cluster without shared_preload_libraries: statistics off, the rest on.
cluster_start "$WORK/plain" "$((PORT + 1))"
trap 'cluster_stop "$WORK/cluster"; cluster_stop "$WORK/plain"' EXIT
CONN_HOST="$WORK/plain" CONN_PORT="$((PORT + 1))" run_suite no_preload "$PGXS_TEST/regress/pg_regress"
cluster_stop "$WORK/plain"

log "check_consistency command"
set +e
(cd "$ROOT" && PGHOST="$WORK/cluster" PGPORT="$PORT" PGUSER=postgres cargo test -p check_consistency)
record "check_consistency" $?
set -e

log "tests/tls/run.sh (check_consistency over TLS; its own cluster)"
set +e
TLS_DIR="$WORK/tls" TLS_PORT="$((PORT + 4))" bash "$ROOT/tests/tls/run.sh"
record "tls" $?
set -e

log "pg_cron runs a scheduled check"
set +e
PGHOST="$WORK/cluster" PGPORT="$PORT" bash "$ROOT/tests/pg_cron/run.sh"
record "pg_cron" $?
set -e

# The standalone test scripts against the main cluster: each prints its
# result line and fails with a non-zero status.
postgres_exporter_binary() { # the Debian package's binary, unpacked (its service is not wanted)
    local dir="$WORK/exporter"
    if [ ! -x "$dir/usr/bin/prometheus-postgres-exporter" ]; then
        as_root rm -rf "$dir" && mkdir -p "$dir"
        (cd "$dir" && apt-get download -qq prometheus-postgres-exporter >/dev/null 2>&1 \
            && dpkg-deb -x prometheus-postgres-exporter_*.deb .) || true
    fi
    [ -x "$dir/usr/bin/prometheus-postgres-exporter" ] && echo "$dir/usr/bin/prometheus-postgres-exporter"
}
export POSTGRES_EXPORTER="${POSTGRES_EXPORTER:-$(postgres_exporter_binary || true)}"
for t in lost_update/run.sh django/run.sh dump_restore/run.sh upgrade/run.sh fuzz/hostile_calls.sh fuzz/sqlsmith.sh; do
    log "tests/$t"
    set +e
    PGHOST="$WORK/cluster" PGPORT="$PORT" SERVER_LOG="$WORK/cluster/server.log" MF_DJANGO_VENV="$WORK/django-venv" \
        bash "$ROOT/tests/$t"
    record "${t%/run.sh}" $?
    set -e
done
log "tests/standby/run.sh (its own primary and standby)"
set +e
STANDBY_DIR="$WORK/standby" STANDBY_PORT="$((PORT + 2))" bash "$ROOT/tests/standby/run.sh"
record "standby" $?
set -e

# Each benchmark once at a tiny size, on the build installed above: they
# must keep working (their figures at full size are in BENCHMARKS.md).
cluster_stop "$WORK/cluster"
for bench in "trigger_overhead.sh 2000 1 on" "enforcement.sh 2000 2 2" "system_check.sh 2000 50" \
             "growth.sh 1000 2000" "entity_latency.sh 2000 200" "soak.sh 5 4 300"; do
    log "bench/$bench (tiny)"
    set +e
    MFC_USE_INSTALLED=1 PGBENCH_SECONDS=2 PGBENCH_PAIRS=1 bash "$ROOT/bench/"$bench
    record "bench/${bench%% *}" $?
    set -e
done

echo
[ ${#failures[@]} = 0 ] || printf 'FAILED: %s\n' "${failures[@]}"
echo "motofinai: $passed passed, $failed failed"
[ "$failed" = 0 ]
