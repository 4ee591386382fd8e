#!/usr/bin/env bash
# pg_cron runs a scheduled check for real. Needs a cluster that preloads
# pg_cron (cron.database_name = postgres) and the extension installed;
# connection from PGHOST/PGPORT. Schedules motofinai.run_check() every
# minute in a database of its own and waits (at most 150 s) for the run to
# appear in motofinai.check_runs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PGUSER="${PGUSER:-postgres}"
DB=motofinai_cron
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q -d "$DB" -f "$here/../fixtures/motofinai_schema.sql" -f "$here/../fixtures/demo_data.sql" \
  -c "CREATE EXTENSION motofinai_consistency" >/dev/null
q -d postgres -c "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null
job=$(psql -X -At -d postgres -c \
  "SELECT cron.schedule_in_database('motofinai-daily-check-test', '* * * * *', 'SELECT motofinai.run_check()', '$DB')")
echo "scheduled pg_cron job $job: SELECT motofinai.run_check() every minute in $DB"
runs=0
for _ in $(seq 1 75); do
    runs=$(psql -X -At -d "$DB" -c "SELECT count(*) FROM motofinai.check_runs")
    [ "$runs" -gt 0 ] && break
    sleep 2
done
q -d postgres -c "SELECT cron.unschedule($job)" >/dev/null
if [ "$runs" -gt 0 ]; then
    psql -X -d "$DB" -c "SELECT id, scope, errors, warnings, finished_at >= started_at AS timed FROM motofinai.check_runs"
    status=$(psql -X -At -d postgres -c "SELECT status FROM cron.job_run_details WHERE jobid = $job ORDER BY runid LIMIT 1")
    echo "pg_cron job status: $status"
    [ "$status" = succeeded ] && { echo "pg_cron: ok"; exit 0; }
fi
echo "FAIL: pg_cron did not record a check run (runs: $runs)"
psql -X -d postgres -c "SELECT * FROM cron.job_run_details" || true
exit 1
