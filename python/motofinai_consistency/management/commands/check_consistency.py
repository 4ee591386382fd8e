"""``manage.py check_consistency``: the seed's command, run by the extension.

Same flags and output as the seed (and as the Rust ``check_consistency``),
plus ``--json``, ``--yes``, ``--limit``, ``--html FILE`` (the findings,
with the check history's summary and trend chart, as one self-contained
HTML file), ``--changed`` (an incremental, recorded run), ``--since-last``
(record a run; print what is new and what was resolved) and
``--all-findings`` (accepted findings too; they never count). Exit status: 0 no errors
(warnings allowed), 1 errors found, 2 usage error, unreachable server,
a database without the extension (or an older one), or a server error.
"""
import os
import sys
import tempfile

from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from ... import REQUIRED_EXTENSION_VERSION
from ...checker import findings
from ...checks import version_tuple
from ...db import fetch_dicts
from ...report import Phase, Report, timed_phase

# The check history's scope a command scope's findings compare with.
HISTORY_SCOPES = {"all": "system", "quick": "quick", "changed": "system"}
# run_check's scope for a recorded run.
RECORDED = {"all": "system", "quick": "quick", "changed": "changed"}
CHANGED_SQL = ("SELECT f.* FROM jsonb_to_recordset((SELECT findings FROM motofinai.run_check('changed'))) "
               "AS f(severity text, code text, entity text, entity_id bigint, message text, details jsonb)")

ANSWERS_YES = ("y", "yes")


# --all's phases: the family of codes each lists (motofinai.finding_codes()), and its header.
ALL_PHASES = [("system", "Checking system structure..."), ("loan", "Checking all loans..."),
              ("payment", "Checking all payments..."), ("inventory", "Checking inventory...")]
FAMILIES_SQL = "SELECT code, entity, family FROM motofinai.finding_codes()"


def phases(scope, entity_id):
    """(header, check scope, id) of each phase but --all's, as the Rust command runs them."""
    if scope == "quick":
        return [("Running quick consistency check...", "quick", None)]
    return [(f"Checking {scope} {entity_id}...", scope, entity_id)]


class Command(BaseCommand):
    help = "Run the Motofinai consistency checks (the motofinai_consistency extension's rules)"
    # A database without the extension must exit 2 with this command's own
    # message, not be stopped by the system checks first.
    requires_system_checks = []
    errors_found = 0

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--loan", type=int, metavar="ID", help="Check consistency of a specific loan")
        scope.add_argument("--payment", type=int, metavar="ID", help="Check consistency of a specific payment")
        scope.add_argument("--motor", type=int, metavar="ID", help="Check consistency of a specific motor")
        scope.add_argument("--all", action="store_true", help="Run full system consistency check")
        scope.add_argument("--quick", action="store_true", help="Quick check (the default without a scope)")
        scope.add_argument("--changed", action="store_true",
                           help="An incremental run: the loans changed since the last run (recorded)")
        parser.add_argument("--since-last", action="store_true",
                            help="Record the run; print only what is new and what was resolved (--all, --quick, --changed)")
        parser.add_argument("--all-findings", action="store_true", help="List accepted findings too (never counted)")
        parser.add_argument("--verbose", action="store_true",
                            help="Show every finding with its code and details, and timings")
        parser.add_argument("--fix", action="store_true",
                            help="Show the safe repairs and apply them (asks first on a terminal)")
        parser.add_argument("--yes", "-y", action="store_true", help="With --fix: apply without asking (cron)")
        parser.add_argument("--json", action="store_true", help="One JSON document instead of text")
        parser.add_argument("--limit", type=int, default=20, metavar="N",
                            help="Findings listed per severity and phase (default 20)")
        parser.add_argument("--html", metavar="FILE",
                            help="Also write the findings, the check history's summary and trend chart as one "
                                 "self-contained HTML file")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="The database alias (default: default)")

    def run_from_argv(self, argv):
        super().run_from_argv(argv)
        sys.exit(1 if self.errors_found else 0)

    def handle(self, *args, **options):
        if options["yes"] and not options["fix"]:
            raise CommandError("--yes only goes with --fix", returncode=2)
        if options["limit"] < 0:
            raise CommandError("--limit must not be negative", returncode=2)
        if os.environ.get("NO_COLOR"):
            self.style = no_style()
        self.database = options["database"]
        if self.database not in connections:
            raise CommandError(f"no database alias {self.database!r} in settings.DATABASES", returncode=2)
        self.last_phases, self.last_fixes = [], None
        try:
            self.errors_found = self.run(options)
            if options.get("html"):
                self.write_html(options)
        except DatabaseError as exc:
            raise CommandError(f"server error: {str(exc).strip()}", returncode=2) from exc

    def run(self, options):
        self.require_extension()
        scope, entity_id = self.scope_of(options)
        out = Report(self.stdout.write, self.style, options["verbose"], options["limit"], options["json"],
                     options["all_findings"])
        out.start()
        if options["since_last"]:
            if scope not in RECORDED:
                raise CommandError("--since-last needs --all, --quick or --changed", returncode=2)
            return self.since_last(RECORDED[scope], out)
        checked = self.check(scope, entity_id, out)
        if not options["fix"]:
            return out.finish(checked, hint=True)
        fix_scope = {"all": "system", "changed": "system"}.get(scope, scope)
        planned = self.fixes(fix_scope, entity_id, apply=False)
        applicable = out.fixes("Planned fixes:", planned)
        if not applicable:
            return out.finish(checked, hint=False)
        if not (options["yes"] or (not options["json"] and self.confirm(applicable))):
            out.note("Fixes not applied." if sys.stdin.isatty() and not options["json"]
                     else "Fixes not applied: no terminal to confirm on; pass --yes to apply them.")
            return out.finish(checked, hint=False)
        out.fixes("Applied fixes:", self.fixes(fix_scope, entity_id, apply=True))
        out.note("Re-checking after fixes...")
        return out.finish(self.check(scope, entity_id, out), hint=False)

    def require_extension(self):
        connection = connections[self.database]
        try:
            connection.ensure_connection()
        except DatabaseError as exc:
            raise CommandError(f"could not connect to the database: {str(exc).strip()}", returncode=2) from exc
        rows = fetch_dicts("SELECT current_database() AS db, (SELECT extversion FROM pg_extension "
                           "WHERE extname = 'motofinai_consistency') AS version", using=self.database)
        db, version = rows[0]["db"], rows[0]["version"]
        if version is None:
            raise CommandError(f'database "{db}" does not have the motofinai_consistency extension '
                               "(run CREATE EXTENSION motofinai_consistency)", returncode=2)
        if version_tuple(version) < version_tuple(REQUIRED_EXTENSION_VERSION):
            raise CommandError(f"the motofinai_consistency extension is version {version}; this command needs "
                               f"{REQUIRED_EXTENSION_VERSION} or later (run ALTER EXTENSION motofinai_consistency "
                               "UPDATE)", returncode=2)

    @staticmethod
    def scope_of(options):
        return next(((s, options[s]) for s in ("loan", "payment", "motor") if options[s] is not None),
                    ("all" if options["all"] else "changed" if options["changed"] else "quick", None))

    def since_last(self, recorded, out):
        """Record a run; its new findings as the phase, then what it found resolved."""
        with transaction.atomic(using=self.database):
            run = fetch_dicts("SELECT id FROM motofinai.run_check(%s)", [recorded], self.database)[0]["id"]
            new = timed_phase("New since the last run:", lambda: fetch_dicts(
                "SELECT f.severity, f.code, f.entity, f.entity_id, f.message, f.details "
                "FROM motofinai.check_runs r, jsonb_to_recordset(r.findings) "
                "AS f(severity text, code text, entity text, entity_id bigint, message text, details jsonb) "
                "WHERE r.id = %s AND EXISTS (SELECT FROM motofinai.finding_history h WHERE h.first_run = r.id "
                "AND h.code = f.code AND h.entity = f.entity AND h.entity_id IS NOT DISTINCT FROM f.entity_id)",
                [run], self.database))
            resolved = fetch_dicts("SELECT severity, code, entity, entity_id, message, coalesce(details, '{}'::jsonb) AS details "
                                   "FROM motofinai.finding_history WHERE resolved_run = %s "
                                   "ORDER BY severity, code, entity_id", [run], self.database)
        out.phase(new)
        out.resolved("Resolved since the last run:", resolved)
        return out.finish([new], hint=False)

    def check(self, scope, entity_id, out):
        done = []
        if scope == "changed":
            done.append(timed_phase("Checking changed loans...", lambda: fetch_dicts(CHANGED_SQL, [], self.database)))
            out.phase(done[-1])
            self.last_phases = done
            return done
        if scope == "all":
            done = self.check_all(out)
        else:
            for header, check_scope, check_id in phases(scope, entity_id):
                done.append(timed_phase(header, lambda: findings(check_scope, check_id, self.database)))
                out.phase(done[-1])
        self.last_phases = done
        return done

    def check_all(self, out):
        """--all: the system check as one statement (its pass over the installments and
        payments is shared by the loan, payment and reference rules), its findings, in
        their order, split into the phases by their code's family (as the Rust command)."""
        whole = timed_phase("", lambda: findings("system", None, self.database))
        families = {(f["code"], f["entity"]): f["family"] for f in fetch_dicts(FAMILIES_SQL, [], self.database)}
        done = [Phase(header, [], None) for _, header in ALL_PHASES]
        at = {name: i for i, (name, _) in enumerate(ALL_PHASES)}
        for f in whole.findings:
            # A code the catalogue does not know is the system section's.
            done[at.get(families.get((f["code"], f["entity"])), 0)].findings.append(f)
        for phase in done:
            out.phase(phase)
        out.shared_time(whole.ms, "the four phases in one statement")
        return done

    def fixes(self, scope, entity_id, apply):
        """fix_consistency's rows by column name. Applying, the extension repairs loan by
        loan and re-checks each; a loan whose repairs did not hold is rolled back alone
        and its rows say so (``applied`` false, ``note``)."""
        with transaction.atomic(using=self.database):
            rows = fetch_dicts("SELECT * FROM motofinai.fix_consistency(%s, %s, %s)", [scope, entity_id, apply],
                               using=self.database)
        self.last_fixes = ("Applied repairs" if apply else "Planned repairs (not applied)", rows)
        return rows

    def write_html(self, options):
        """The report of this run (after the fixes, if applied): its findings, new
        against the latest recorded run of the same scope, with the history's
        summary and chart (docs/django.md, "The HTML report")."""
        from ... import dashboard, html_report

        scope, entity_id = self.scope_of(options)
        history = HISTORY_SCOPES.get(scope)
        feats = dashboard.features(self.database)
        found = [dict(f) for p in self.last_phases for f in p.findings]
        found.sort(key=lambda f: (f["severity"] != "error", f["code"], f["entity"], f["entity_id"] is not None,
                                  f["entity_id"] or 0, f["message"]))
        compared = dashboard.mark_new(self.database, feats, history, found) if history else None
        what = {"all": "full", "quick": "quick"}.get(scope, f"{scope} {entity_id}")
        context = {**html_report.base_context(self.database, feats),
                   **html_report.status_context(self.database, feats),
                   **html_report.trend_context(self.database, feats, history or "system"),
                   "title": f"Motofinai consistency report: {what} check", "scope": history,
                   "source": f"this {what} check (manage.py check_consistency)"
                             + (f", compared with recorded run {compared}" if compared else ""),
                   "findings": found, "counts": html_report.counts_of(found), "compared": compared is not None}
        if self.last_fixes is not None:
            context["fixes_title"], context["fixes"] = self.last_fixes
            context["fixes"] = [dict(r, loan=r["entity_id"] if r["entity"] == "loan" else None)
                                for r in context["fixes"]]
        html = html_report.render(context)
        target = os.path.abspath(options["html"])
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".check_consistency-", suffix=".html", dir=os.path.dirname(target))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(html)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except OSError as exc:
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)
            raise CommandError(f"could not write the HTML report {options['html']}: {exc}", returncode=2) from exc

    def confirm(self, count):
        if not sys.stdin.isatty():
            return False
        self.stdout.write(f"Apply {count} fix(es)? [y/N] ", ending="")
        self.stdout.flush()
        return sys.stdin.readline().strip().lower() in ANSWERS_YES
