#!/usr/bin/env bash
# The one catalogue of finding codes (motofinai.finding_codes()) against
# what is derived from it or must agree with it: the README's code table,
# the codes the checks emit on a dataset with every defect injected, and the
# codes the command's tests expect. A new code is added to src/checks/finding.rs;
# this test says where else it must appear.
source "$(dirname "$0")/../lib.sh"
ROOT="$(cd "$TESTS/.." && pwd)"
DB=mfc_catalogue
fresh_db "$DB"
load_motofinai "$DB" 2000
q -d "$DB" -c "SELECT motofinai_gen.inject(1)" >/dev/null

# The README table, as the catalogue would write it.
table=$(mktemp); readme=$(mktemp)
val -d "$DB" -c "SELECT '| \`' || code || '\` | ' || family || ' | ' || severity || ' | ' || entity || ' | '
                        || CASE WHEN fixable THEN 'yes' ELSE '' END || ' | ' || CASE WHEN blocking THEN 'yes' ELSE '' END || ' |'
                   FROM motofinai.finding_codes()" > "$table"
sed -n '/^<!-- finding codes:/,/^<!-- end of finding codes -->/p' "$ROOT/README.md" | grep '^| `' > "$readme"
expect_same "README code table = motofinai.finding_codes()" "$readme" "$table"

# Every code the system check emits (every defect injected) is catalogued,
# with the catalogue's severity and entity.
stray=$(val -d "$DB" -c "SELECT DISTINCT f.severity || ' ' || f.code || ' ' || f.entity FROM check_system_consistency() f
                          WHERE NOT EXISTS (SELECT FROM motofinai.finding_codes() c
                                             WHERE c.code = f.code AND c.severity = f.severity AND c.entity = f.entity)")
expect_eq "emitted codes are catalogued" "$stray" ""

# The rules' codes (docs/consistency-rules.md) are all catalogued; beyond
# them, the catalogue names the rules' "duplicate_*" installment sequences
# and the project's own versioning_mismatch (both in the README).
rules=$(grep -oE '^\| [a-z_]+ \| (error|warning)' "$ROOT/docs/consistency-rules.md" | cut -d' ' -f2 | sort -u)
catalogue=$(val -d "$DB" -c "SELECT DISTINCT code FROM motofinai.finding_codes() ORDER BY 1")
expect_eq "rules' codes missing from the catalogue" "$(comm -23 <(echo "$rules") <(echo "$catalogue") | tr '\n' ' ')" ""
expect_eq "catalogue codes beyond the rules" "$(comm -13 <(echo "$rules") <(echo "$catalogue") | tr '\n' ' ')" \
    "duplicate_installment_sequence versioning_mismatch "

drop_db "$DB"
summary catalogue
