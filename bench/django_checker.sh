#!/usr/bin/env bash
# The Django package's system check against the seed's own algorithm, on the
# same generated dataset: ConsistencyChecker.check_system_consistency() (one
# query to the extension; median of 3 after a warm-up) versus the seed's
# check_system_consistency, a per-loan ORM loop of 5-6 queries per loan (field
# names corrected for the real schema; bench/django_checker.py), run once.
# Django 5.2 and psycopg2 (tests/django/requirements/dj52-psycopg2.txt), the
# package from the working tree. Prints the ratio.
#   bash bench/django_checker.sh [loans=10000]
LOANS="${1:-10000}"
DIR=/tmp/motofinai-bench-django PORT=55462
source "$(dirname "$0")/../scripts/common.sh"
source "$ROOT/tests/django/venv.sh"

if [ -z "${MFC_USE_INSTALLED:-}" ]; then ensure_deps; fi
install_extension --release
cluster_start "$DIR" "$PORT" "shared_buffers = 1GB" "work_mem = 64MB" "autovacuum = off"
trap 'cluster_stop "$DIR"' EXIT
export PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres MF_DJANGO_DB=bench_django
venv="$(venv_for dj52-psycopg2)"

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $MF_DJANGO_DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$MF_DJANGO_DB" -f "$ROOT/tests/fixtures/motofinai_schema.sql" \
    -f "$ROOT/tests/generator/generate.sql" -c "CREATE EXTENSION motofinai_consistency" \
    -c "SELECT motofinai_gen.generate($LOANS)" -c "SELECT motofinai_gen.inject(1)" -c "VACUUM ANALYZE" >/dev/null
cd "$ROOT/tests/django"
export PYTHONPATH="$ROOT/python:$ROOT/tests/django"
"$venv/bin/python" manage.py migrate --verbosity 0 finance   # EnableVersioning on the four tables
"$venv/bin/python" "$ROOT/bench/django_checker.py" 3
