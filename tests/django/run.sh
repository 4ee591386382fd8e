#!/usr/bin/env bash
# The Django package (python/, docs/django.md) against a real server, with
# pytest and pytest-django, over a matrix of virtual environments
# (requirements/*.txt, all pinned):
#   dj52-psycopg2   the Motofinai app's stack: the whole suite
#   dj52-psycopg3, dj42-psycopg2, dj42-psycopg3: the tests marked "smoke"
# The package is built once as a wheel and installed into each environment.
# For each environment, fresh databases: $MF_DJANGO_DB (the project's
# Motofinai DDL, the generator, the extension, migrated), ${MF_DJANGO_DB}_cmd
# (2,000 generated loans with one injected case of every defect, as the Rust
# command's tests), its copy ${MF_DJANGO_DB}_fix, and ${MF_DJANGO_DB}_noext
# (the tables, no extension).
# Connection from the libpq environment (PGHOST, PGPORT, PGUSER); the server
# must preload motofinai_consistency (conflict statistics).
# MF_DJANGO_VENV: where the environments live (default tests/django/.venv,
# git-ignored; each rebuilt when its requirements file changes).
# MF_DJANGO_MATRIX: the environments to run (default: all four), e.g. "dj52-psycopg2".
# PYTHON: the interpreter (python3). POSTGRES_EXPORTER: a postgres_exporter
# binary (default: one on PATH); SQL_EXPORTER: a sql_exporter 0.4 binary
# (justwatchcom's, Debian's prometheus-sql-exporter; default: one on PATH);
# without one, that exporter's test is skipped.
# Extra arguments go to pytest (e.g. -k stale -x).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PGUSER="${PGUSER:-postgres}" MF_DJANGO_DB="${MF_DJANGO_DB:-motofinai_django}"
python="${PYTHON:-python3}"
matrix="${MF_DJANGO_MATRIX:-dj52-psycopg2 dj52-psycopg3 dj42-psycopg2 dj42-psycopg3}"
FULL=dj52-psycopg2
POSTGRES_EXPORTER="${POSTGRES_EXPORTER:-$(command -v postgres_exporter || command -v prometheus-postgres-exporter || true)}"
SQL_EXPORTER="${SQL_EXPORTER:-$(command -v prometheus-sql-exporter || true)}"
export POSTGRES_EXPORTER SQL_EXPORTER
start=$(date +%s)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

source "$here/venv.sh"

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# Dropping a database does not free its conflict-statistics slots (64 per
# cluster, until restart): release them first.
drop_db() {
    psql -X -q -d "$1" -c "SELECT motofinai.conflict_stats_reset()" >/dev/null 2>&1 || true
    psql_q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1"
}

build_databases() {
    local db
    drop_db "${MF_DJANGO_DB}_fix"
    for db in "$MF_DJANGO_DB" "${MF_DJANGO_DB}_cmd" "${MF_DJANGO_DB}_noext"; do
        drop_db "$db"
        psql_q -d postgres -c "CREATE DATABASE $db"
        psql_q -d "$db" -f "$root/tests/fixtures/motofinai_schema.sql" >/dev/null
    done
    psql_q -d "$MF_DJANGO_DB" -f "$root/tests/generator/generate.sql" -c "CREATE EXTENSION motofinai_consistency" >/dev/null
    psql_q -d "${MF_DJANGO_DB}_cmd" -c "CREATE EXTENSION motofinai_consistency" \
        -f "$root/tests/generator/generate.sql" \
        -c "SELECT motofinai_gen.generate(2000)" -c "SELECT motofinai_gen.inject(1)" -c "ANALYZE" >/dev/null
    psql_q -d postgres -c "CREATE DATABASE ${MF_DJANGO_DB}_fix TEMPLATE ${MF_DJANGO_DB}_cmd"
}

# The wheel, built once (setuptools from the first environment, no download).
build_venv="$(venv_for "${matrix%% *}")"
"$build_venv/bin/pip" wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$work/dist" "$root/python" >/dev/null
wheel="$(ls "$work"/dist/motofinai_consistency-*.whl)"
echo "django: built $(basename "$wheel")"

status=0 passed=0 failed=0
for name in $matrix; do
    venv="$(venv_for "$name")"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel"
    build_databases
    (cd "$here" && "$venv/bin/python" manage.py migrate --verbosity 0)
    selection=()
    [ "$name" = "$FULL" ] || selection=(-m smoke)
    set +e
    (cd "$here" && MF_DJANGO_ENV="$name" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
        --junitxml="$work/$name.xml" "${selection[@]}" "$@" 2>&1)
    result=$?
    set -e
    read -r p f < <("$python" - "$work/$name.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot()
s = s if s.tag == "testsuite" else s[0]
t, f, e, k = (int(s.get(a, 0)) for a in ("tests", "failures", "errors", "skipped"))
print(t - f - e - k, f + e)
PY
)
    echo "django[$name]: $p passed, $f failed"
    passed=$((passed + p)) failed=$((failed + f))
    [ $result = 0 ] || status=1
done

if [ $status = 0 ]; then
    for db in "$MF_DJANGO_DB" "${MF_DJANGO_DB}_cmd" "${MF_DJANGO_DB}_fix" "${MF_DJANGO_DB}_noext"; do drop_db "$db"; done
else
    echo "FAIL: Django tests failed; databases $MF_DJANGO_DB* kept for a look"
fi
echo "django: $passed passed, $failed failed ($matrix) in $(($(date +%s) - start)) s"
exit $status
