#!/usr/bin/env bash
# adapt.sh SUITE_COPY: make a copy of tests/ (as scripts/test.sh hands to
# pg_regress) right for PostgreSQL 16 and 18. The suites are written for 15;
# every difference between the majors that shows in them is here, and only here:
#   force_parallel_mode  renamed debug_parallel_query in PostgreSQL 16
# The extension's own behaviour is the same on both: no expected output
# changes otherwise.
set -euo pipefail
suite="$1"
for f in "$suite"/regress/sql/*.sql "$suite"/regress/expected/*.out \
         "$suite"/no_preload/sql/*.sql "$suite"/no_preload/expected/*.out "$suite"/isolation/specs/*.spec \
         "$suite"/isolation/expected/*.out; do
    [ -e "$f" ] || continue
    sed -i 's/\bforce_parallel_mode\b/debug_parallel_query/g' "$f"
done
