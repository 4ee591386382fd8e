#!/usr/bin/env bash
# The Django integration tests (docs/django.md): a virtual environment with
# Django 5.2 and psycopg 3 (requirements.txt), a fresh database with the
# project's Motofinai DDL, the generator and the extension, the test app's
# migration (enable_versioning), then
#   test_versioning.py   save(), conflicts, blind writes, strict, row locks
#   test_consistency.py  the deferred check at transaction.atomic() exit, checks
#   test_exporter.py     contrib/postgres_exporter/queries.yaml against the server
# Connection from the libpq environment (PGHOST, PGPORT, PGUSER); the server
# must preload motofinai_consistency (conflict statistics).
# MF_DJANGO_VENV: where the venv lives (default tests/django/.venv, git-ignored;
# rebuilt when requirements.txt changes). PYTHON: the interpreter (python3).
# POSTGRES_EXPORTER: a postgres_exporter binary (default: one on PATH, if any);
# with it the real exporter serves the metrics, else that one test is skipped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PGUSER="${PGUSER:-postgres}" MF_DJANGO_DB="${MF_DJANGO_DB:-motofinai_django}"
venv="${MF_DJANGO_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
POSTGRES_EXPORTER="${POSTGRES_EXPORTER:-$(command -v postgres_exporter || command -v prometheus-postgres-exporter || true)}"
export POSTGRES_EXPORTER
start=$(date +%s)

if ! cmp -s "$here/requirements.txt" "$venv/requirements.installed" 2>/dev/null; then
    echo "django: creating the virtual environment in $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv" || { echo "FAIL: '$python -m venv' failed (on Debian: apt-get install python3-venv)"; exit 1; }
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/requirements.installed"
fi

# Dropping a database does not free its conflict-statistics slots (64 per
# cluster, until restart): release them first.
release_slots() {
    psql -X -q -d "$MF_DJANGO_DB" -c "SELECT motofinai.conflict_stats_reset()" >/dev/null 2>&1 || true
}
release_slots
psql -X -q -d postgres -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS $MF_DJANGO_DB" -c "CREATE DATABASE $MF_DJANGO_DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$MF_DJANGO_DB" >/dev/null \
    -f "$root/tests/fixtures/motofinai_schema.sql" -f "$root/tests/generator/generate.sql" \
    -c "CREATE EXTENSION motofinai_consistency"

cd "$here"
"$venv/bin/python" manage.py migrate --verbosity 0 finance
set +e
"$venv/bin/python" runtests.py 2>&1
status=$?
set -e
if [ $status = 0 ]; then
    release_slots
    psql -X -q -d postgres -c "DROP DATABASE $MF_DJANGO_DB"
else
    echo "FAIL: Django tests failed; database $MF_DJANGO_DB kept for a look"
fi
echo "django: done in $(($(date +%s) - start)) s"
exit $status
