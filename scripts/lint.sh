#!/usr/bin/env bash
# House rules, checked (the test command runs this first):
#  - cargo fmt --check and cargo clippy -D warnings, both crates;
#  - every `unsafe` in src/ carries a `SAFETY:` note (or a `# Safety` doc
#    section) on its line or in the five lines above;
#  - no SQLSTATE literal in src/ outside the registry (src/errors.rs) and the
#    ports' own tests (src/pg/ereport.rs).
source "$(dirname "$0")/common.sh"
cd "$ROOT"
status=0
fail() { echo "lint: $*"; status=1; }

cargo fmt --all -- --check >/dev/null || fail "cargo fmt --check: run cargo fmt --all"
cargo clippy -q --workspace --all-targets --features "pg$PG_MAJOR pg_test" -- -D warnings || fail "cargo clippy"

unsafe_without_note=$(awk '
    FNR == 1 { delete prev }
    /(^|[^_a-z])unsafe([^_a-z]|$)/ && !/^[[:space:]]*\/\// {
        noted = /SAFETY|# Safety/
        for (i = 1; i <= 5; i++) if (prev[i] ~ /SAFETY|# Safety/) noted = 1
        if (!noted) print FILENAME ":" FNR ": " $0
    }
    { for (i = 5; i > 1; i--) prev[i] = prev[i - 1]; prev[1] = $0 }
' $(find src -name '*.rs'))
[ -z "$unsafe_without_note" ] || fail "unsafe without a SAFETY note:"$'\n'"$unsafe_without_note"

literals=$(grep -rnE '"[0-9A-Z]{2}[0-9A-Z]{3}"' src --include='*.rs' | grep -v '^src/errors.rs:' | grep -v '^src/pg/ereport.rs:' \
           | grep -E '"(0[0-9A-Z]|2[0-9A-Z]|3[0-9A-Z]|4[0-9A-Z]|5[0-9A-Z]|XX|MF|P0)[0-9A-Z]{3}"' || true)
[ -z "$literals" ] || fail "SQLSTATE literals outside src/errors.rs:"$'\n'"$literals"

[ "$status" = 0 ] && echo "lint: ok"
exit $status
