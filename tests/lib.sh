# Shared helpers for the standalone test scripts (tests/*/run.sh). Source it.
# Connection from the libpq environment (PGHOST, PGPORT; PGUSER defaults to postgres).
set -euo pipefail
TESTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PGUSER="${PGUSER:-postgres}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
failures=0
passes=0

q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }            # run quietly, stop at the first error
val() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }      # unaligned, tuples only

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# summary NAME [DETAIL]: the one-line result; the exit status of the script.
summary() { echo "$1: ${2:+$2, }$passes passed, $failures failed"; [ "$failures" = 0 ]; }
pass() { echo "ok: $*"; passes=$((passes + 1)); }
# expect_eq WHAT GOT WANT
expect_eq() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: got '$2', want '$3'"; fi; }
# expect_same WHAT FILE_A FILE_B: the two outputs are identical (and not empty)
expect_same() {
    if [ ! -s "$2" ]; then fail "$1: empty output"
    elif diff -u "$2" "$3" >"$2.diff"; then pass "$1 ($(wc -l <"$2") lines identical)"
    else fail "$1 differs:"; head -40 "$2.diff"; fi
}

# sqlstate DB SQL: "ok" if SQL succeeds, else the SQLSTATE of its error.
sqlstate() {
    local err
    if err=$(psql -X -q -At -v VERBOSITY=sqlstate -d "$1" -c "$2" 2>&1 >/dev/null); then echo ok
    else sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\)$/\1/p' <<<"$err" | head -1; fi
}

fresh_db() { # fresh_db NAME
    q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" \
      -c "CREATE DATABASE \"$1\""
}
drop_db() { q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)"; }

# The extension is reinstalled from time to time on shared machines: retry a few times.
create_extension() { # create_extension DB
    local i
    for i in 1 2 3 4 5; do
        q -d "$1" -c "CREATE EXTENSION IF NOT EXISTS motofinai_consistency" 2>/dev/null && return 0
        sleep 3
    done
    q -d "$1" -c "CREATE EXTENSION IF NOT EXISTS motofinai_consistency"
}

# load_motofinai DB [N]: the Motofinai tables, the generator, the extension, N generated loans.
load_motofinai() {
    q -d "$1" -f "$TESTS/fixtures/motofinai_schema.sql" -f "$TESTS/generator/generate.sql" >/dev/null
    create_extension "$1"
    [ -z "${2:-}" ] || q -d "$1" -c "SELECT motofinai_gen.generate($2)" >/dev/null
}

# The server log, for crash checks: $SERVER_LOG, else the logging collector's
# file, else server.log next to the data directory (scripts/common.sh's clusters).
server_log() {
    if [ -n "${SERVER_LOG:-}" ]; then echo "$SERVER_LOG"; return; fi
    local f dd
    f=$(val -d postgres -c "SELECT pg_current_logfile()" 2>/dev/null || true)
    dd=$(val -d postgres -c "SHOW data_directory" 2>/dev/null || true)
    if [ -n "$f" ]; then case "$f" in /*) echo "$f" ;; *) echo "$dd/$f" ;; esac
    elif [ -f "$(dirname "$dd")/server.log" ]; then echo "$(dirname "$dd")/server.log"; fi
}
log_size() { local f; f=$(server_log); if [ -n "$f" ] && [ -r "$f" ]; then stat -c %s "$f"; else echo 0; fi; }
# crashes_since OFFSET: the server log's crash lines written after byte OFFSET.
crashes_since() {
    local f; f=$(server_log)
    [ -n "$f" ] && [ -r "$f" ] || { echo "(server log not readable: set SERVER_LOG)" >&2; return 0; }
    tail -c +"$(($1 + 1))" "$f" | grep -E 'terminated by signal|was terminated|PANIC:|server process .* exited with' || true
}
