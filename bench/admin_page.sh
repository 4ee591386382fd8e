#!/usr/bin/env bash
# The admin's Consistency page on a large dataset: 100,000 generated loans
# (5 injections of every defect) with a few thousand findings (the generator's
# natural overdue warnings plus the injected defects), and 30 days of check
# history: a recorded full check 29 days ago, one copy of it per day after
# (the same findings, dated day by day), then the injections and today's
# recorded full check (so the last run has new and resolved findings).
# Each view is timed through Django's test client, in process (URL routing,
# middleware, every query, the templates): median of 5 after a warm-up, and
# the part of it spent in SQL (the queries as Django timed them);
# bench/admin_page.py. The dry run (on demand) and the report are timed apart.
# Django 5.2 and psycopg2 (tests/django/requirements/dj52-psycopg2.txt), the
# package from the working tree.
#   bash bench/admin_page.sh [loans=100000] [days=30]
LOANS="${1:-100000}" DAYS="${2:-30}"
DIR=/tmp/motofinai-bench-admin PORT=55472
source "$(dirname "$0")/../scripts/common.sh"
source "$ROOT/tests/django/venv.sh"

if [ -z "${MFC_USE_INSTALLED:-}" ]; then ensure_deps; fi
install_extension --release
cluster_start "$DIR" "$PORT" "shared_preload_libraries = 'motofinai_consistency'" \
    "shared_buffers = 2GB" "work_mem = 64MB" "max_wal_size = 8GB" "autovacuum = off"
trap 'cluster_stop "$DIR"' EXIT
export PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres MF_DJANGO_DB=bench_admin
venv="$(venv_for dj52-psycopg2)"
sql() { psql -X -q -v ON_ERROR_STOP=1 -d "$MF_DJANGO_DB" "$@"; }

started=$(date +%s)
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $MF_DJANGO_DB"
sql -f "$ROOT/tests/fixtures/motofinai_schema.sql" -f "$ROOT/tests/generator/generate.sql" \
    -c "CREATE EXTENSION motofinai_consistency" -c "SELECT motofinai_gen.generate($LOANS)" \
    -c "SELECT motofinai.create_check_indexes()" -c "VACUUM ANALYZE" >/dev/null
cd "$ROOT/tests/django"
export PYTHONPATH="$ROOT/python:$ROOT/tests/django"
"$venv/bin/python" manage.py migrate --verbosity 0      # EnableVersioning on the four tables, the page's permissions
# The history: day -(DAYS-1) recorded, copied to each following day, then today's after the injections.
sql -c "SELECT motofinai.run_check('system')" >/dev/null
sql >/dev/null <<SQL
UPDATE motofinai.check_runs SET started_at = started_at - interval '$((DAYS - 1)) days',
       finished_at = finished_at - interval '$((DAYS - 1)) days';
INSERT INTO motofinai.check_runs (started_at, finished_at, scope, errors, warnings, findings)
SELECT r.started_at + make_interval(days => d), r.finished_at + make_interval(days => d), r.scope, r.errors,
       r.warnings, r.findings
  FROM motofinai.check_runs r, generate_series(1, $DAYS - 2) d ORDER BY d;
SELECT motofinai_gen.inject(CASE WHEN $LOANS >= 10000 THEN 5 ELSE 1 END);
SELECT motofinai.run_check('system');
VACUUM ANALYZE;
SQL
echo "dataset ready in $(($(date +%s) - started)) s"
"$venv/bin/python" "$ROOT/bench/admin_page.py" 5
