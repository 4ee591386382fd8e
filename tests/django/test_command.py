"""``manage.py check_consistency``: the seed's output verbatim, the Rust
command's behaviour and expectations (cli/tests/cli.rs, cli/tests/expected),
every exit status. On run.sh's "command" database: 2,000 generated loans with
one injected case of every defect, as the Rust command's tests use."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from motofinai_consistency.management.commands import check_consistency as command_module
from motofinai_consistency.report import Report

HERE = Path(__file__).resolve().parent
CLI_EXPECTED = HERE.parent.parent / "cli" / "tests" / "expected"
RULE = "=" * 50
SEED_HINT = "Run with --fix flag to attempt automatic fixes (use with caution)"
CLEAN_LOAN = 1980  # a pending loan the generator made with no finding (as cli.rs)


def seed_format(rust_text):
    """The Rust command's expected text, in the seed's layout: the status lines
    indented by two spaces and the seed's --fix hint. Nothing else may differ."""
    lines = []
    for line in rust_text.splitlines():
        if line[:1] in ("✓", "✗", "⚠"):
            line = "  " + line
        lines.append(SEED_HINT if line == "Run with --fix to attempt automatic fixes" else line)
    return "\n".join(lines) + "\n"


def manage(*args, database="command"):
    """The command as cron runs it: a process of its own; stdin not a terminal."""
    return subprocess.run([sys.executable, "manage.py", "check_consistency", "--database", database, *args],
                          cwd=HERE, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=os.environ)


def run(*args, database="command"):
    """The command in this process: (stdout, errors found)."""
    out = io.StringIO()
    command = command_module.Command(stdout=out, stderr=io.StringIO())
    call_command(command, *args, "--database", database)
    return out.getvalue(), command.errors_found


def first_expected(code, database="command"):
    with connections[database].cursor() as cur:
        cur.execute("SELECT entity_id FROM motofinai_gen.expected WHERE code = %s ORDER BY entity_id LIMIT 1", [code])
        return cur.fetchone()[0]


def one_message(scope, entity_id, database="command"):
    with connections[database].cursor() as cur:
        cur.execute(f"SELECT message FROM motofinai.check_{scope}_consistency(%s)", [entity_id])
        return [m for (m,) in cur.fetchall()]


@pytest.mark.smoke
def test_quick_is_the_default_with_the_rust_commands_expected_text_in_the_seeds_layout():
    result = manage()
    assert result.stdout == seed_format((CLI_EXPECTED / "quick.txt").read_text())
    assert result.returncode == 1, result.stderr
    assert run("--quick")[0] == result.stdout


def test_seed_format_changes_only_indents_and_the_hint():
    rust = (CLI_EXPECTED / "quick.txt").read_text()
    ours = seed_format(rust)
    changed = [(a, b) for a, b in zip(rust.splitlines(), ours.splitlines()) if a != b]
    assert len(changed) == 3 and all(b.strip() == a.strip() or b == SEED_HINT for a, b in changed)


@pytest.mark.smoke
def test_a_clean_loan_verbatim_exits_0():
    result = manage("--loan", str(CLEAN_LOAN))
    assert result.stdout == (f"Starting consistency checks...\n\nChecking loan {CLEAN_LOAN}...\n  ✓ No issues found\n\n"
                             f"{RULE}\nConsistency check completed\nErrors found: 0\nWarnings found: 0\n")
    assert result.returncode == 0


@pytest.mark.smoke
def test_a_broken_loan_verbatim_exits_1():
    loan = first_expected("overpaid")
    [message] = one_message("loan", loan)
    assert message.startswith("Total paid (")
    result = manage("--loan", str(loan))
    assert result.stdout == (f"Starting consistency checks...\n\nChecking loan {loan}...\n  ✗ 1 error(s) found:\n"
                             f"    - {message}\n\n{RULE}\nConsistency check completed\nErrors found: 1\n"
                             f"Warnings found: 0\n\n{SEED_HINT}\n")
    assert result.returncode == 1


def test_payment_motor_and_missing_scopes():
    payment, motor = first_expected("future_payment_date"), first_expected("invalid_vin")
    text, errors = run("--payment", str(payment))
    assert f"Checking payment {payment}...\n  ✗ 1 error(s) found:\n    - Payment date is in the future\n" in text
    assert errors == 1
    text, errors = run("--motor", str(motor))
    assert f"Checking motor {motor}...\n  ⚠ 1 warning(s) found:\n    - VIN VIN-{motor} is not a valid 17-character VIN\n" in text
    assert errors == 0 and "--fix" not in text, "a warning alone: no error, no fix hint"
    text, errors = run("--loan", "99999999")
    assert "  ✗ 1 error(s) found:\n    - Loan 99999999 not found\n" in text and errors == 1


def test_all_runs_every_phase_and_limit_cuts_the_lists():
    text, errors = run("--all", "--limit", "2")
    for header in ("Checking system structure...", "Checking all loans...", "Checking all payments...",
                   "Checking inventory..."):
        assert f"\n{header}\n" in text
    with connections["command"].cursor() as cur:
        cur.execute("SELECT consistency_report('system')::text")
        report = json.loads(cur.fetchone()[0])
        cur.execute("SELECT count(*) FROM check_loan_consistency() WHERE severity = 'error'")
        loans = cur.fetchone()[0]
    assert f"Errors found: {len(report['errors'])}\nWarnings found: {len(report['warnings'])}\n" in text
    assert f"  ✗ {loans} error(s) found:\n    - " in text and f"    ... and {loans - 2} more\n" in text
    assert errors == len(report["errors"])


@pytest.mark.smoke
def test_json_is_one_document_in_the_seed_format_with_counts_and_codes():
    result = manage("--all", "--json")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    with connections["command"].cursor() as cur:
        cur.execute("SELECT consistency_report('system')::text")
        report = json.loads(cur.fetchone()[0])
    assert (doc["errors"], doc["warnings"]) == (report["errors"], report["warnings"])
    assert doc["counts"] == {"errors": len(report["errors"]), "warnings": len(report["warnings"])}
    assert doc["codes"]["duplicate_vin"] == 2 and doc["codes"]["future_payment_date"] == 1
    overpaid = next(f for f in doc["findings"] if f["code"] == "overpaid")
    assert overpaid["entity"] == "loan" and isinstance(overpaid["details"]["paid"], (int, float))
    # One statement (the system check) split by the codes' families: each phase has
    # what its family's own function finds, and the time is the statement's.
    assert len(doc["phases"]) == 4
    with connections["command"].cursor() as cur:
        for phase, function in zip(doc["phases"], ["motofinai.check_structural_consistency()",
                                                   "check_loan_consistency()", "check_payment_consistency()",
                                                   "check_inventory_consistency()"]):
            cur.execute(f"SELECT count(*) FROM {function}")
            assert (phase["findings"], phase["ms"]) == (cur.fetchone()[0], None), (phase, function)
    assert isinstance(doc["ms"], int)


def test_all_verbose_times_its_one_statement_once():
    text, _ = run("--all", "--verbose", "--limit", "1")
    assert " ms)\n" not in text, "no phase has a time of its own"
    assert text.count(" ms, the four phases in one statement)\n") == 1
    assert text.index(" ms, the four phases in one statement)\n") > text.index("\nChecking inventory...\n")


def test_verbose_shows_codes_details_and_timings():
    text, _ = run("--verbose")
    assert "    - [orphaned_rows] 1 orphaned row(s) in payments_payment" in text
    assert '"first_ids"' in text and " ms)\n" in text and "\x1b" not in text


@pytest.mark.smoke
@pytest.mark.parametrize("args", [["--loan", "1", "--all"], ["--payment", "abc"], ["--yes"], ["--nope"],
                                  ["--limit", "-1"]])
def test_usage_errors_exit_2(args):
    result = manage(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and result.stderr


@pytest.mark.smoke
def test_a_database_without_the_extension_exits_2():
    result = manage(database="noext")
    assert result.returncode == 2 and result.stdout == ""
    db = connections["noext"].settings_dict["NAME"]
    assert result.stderr == (f'CommandError: database "{db}" does not have the motofinai_consistency extension '
                             "(run CREATE EXTENSION motofinai_consistency)\n")


def test_an_unreachable_server_exits_2():
    result = manage(database="unreachable")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("CommandError: could not connect to the database:"), result.stderr


def test_an_older_extension_exits_2(monkeypatch):
    monkeypatch.setattr(command_module, "REQUIRED_EXTENSION_VERSION", "99.0.0")
    with pytest.raises(CommandError, match=r"the motofinai_consistency extension is version 0\.1\.0; this command "
                                           r"needs 99\.0\.0 or later") as caught:
        run()
    assert caught.value.returncode == 2


def fixable():
    with connections["fix"].cursor() as cur:
        cur.execute("SELECT code, entity_id FROM motofinai.fix_consistency('system') ORDER BY 1, 2")
        return cur.fetchall()


def test_fix_round_trip():
    before = fixable()
    assert len(before) == 3, before  # a stale overdue status, an unapplied payment, a paid loan left active
    result = manage("--all", "--fix", database="fix")
    planned = result.stdout.split("\nPlanned fixes:\n")[1].split("\n\n")[0]
    assert len(planned.splitlines()) == 3
    assert "\nFixes not applied: no terminal to confirm on; pass --yes to apply them.\n" in result.stdout
    assert SEED_HINT not in result.stdout
    assert fixable() == before, "a dry run changes nothing"

    result = manage("--all", "--fix", "--yes", database="fix")
    applied = result.stdout.split("\nApplied fixes:\n")[1].split("\n\n")[0]
    assert len(applied.splitlines()) == 3, result.stdout
    for code, entity_id in before:
        assert f"[{code}] " in applied and f" {entity_id}: " in applied
    assert "\nRe-checking after fixes...\n" in result.stdout
    assert fixable() == []
    assert "\nNo automatic fixes available.\n" in manage("--all", "--fix", "--yes", database="fix").stdout


def test_fix_rows_are_read_by_name_and_a_note_is_printed():
    """fix_consistency's `note` (why a loan's repairs were not applied): listed apart, as the Rust command."""
    lines = []
    report = Report(lambda line, style=None: lines.append(line), command_module.no_style())
    report.fixes("Applied fixes:", [
        {"code": "paid_not_completed", "entity": "loan", "entity_id": 7, "summary": "status: active → completed",
         "changes": {}, "applied": True, "note": None},
        {"code": "payment_not_applied", "entity": "schedule", "entity_id": 9, "summary": "status: due → paid",
         "changes": {}, "applied": False, "note": "loan 3 changed meanwhile; run the check again"}])
    assert lines == ["\nApplied fixes:", "    - [paid_not_completed] loan 7: status: active → completed",
                     "\nBlocked fixes (not applied):", "    - [payment_not_applied] schedule 9: status: due → paid",
                     "    ! loan 3 changed meanwhile; run the check again"]
    assert report.doc["applied_fixes"][1]["note"].startswith("loan 3")


def test_changed_since_last_and_accepted():
    """--changed, --since-last and accepted findings, as the Rust command
    (cli.rs: changed_since_last_and_accepted); on the --fix copy, put back after."""
    def sql(statement):
        with connections["fix"].cursor() as cur:
            cur.execute(statement)

    sql("SELECT motofinai.track_changes()")
    try:
        manage("--all", "--since-last", database="fix")
        again = manage("--all", "--since-last", database="fix")
        assert "\nNew since the last run:\n  ✓ No issues found\n" in again.stdout, again.stdout
        assert again.returncode == 0
        sql("UPDATE loans_loanapplication SET principal_amount = principal_amount + 7 WHERE id = 23")
        changed = manage("--changed", "--since-last", database="fix")
        assert changed.returncode == 1, changed.stdout
        new = changed.stdout.split("New since the last run:\n")[1].split("\n\n")[0]
        assert "does not equal loan amount" in new, changed.stdout
        assert "Resolved since the last run:\n" in changed.stdout
        sql("SELECT motofinai.accept_finding('principal_mismatch', 'loan', 23, 'promo rounding')")
        shown = manage("--loan", "23", database="fix")
        assert "(1 accepted finding(s) not counted; --all-findings lists them)" in shown.stdout, shown.stdout
        assert "Errors found: 0\n" in shown.stdout
        assert "◦ 1 accepted finding(s), not counted:" in manage("--loan", "23", "--all-findings", database="fix").stdout
        assert manage("--loan", "23", "--since-last", database="fix").returncode == 2
    finally:
        sql("SELECT motofinai.unaccept_finding('principal_mismatch', 'loan', 23)")
        sql("UPDATE loans_loanapplication SET principal_amount = principal_amount - 7 WHERE id = 23")
        sql("SELECT motofinai.track_changes(false)")
