"""What the admin's Consistency page and the HTML report show, read from the
extension: check history, trends, current findings, planned repairs,
accepted findings and conflict statistics.

Every piece is found by name in the database first (``Features``), so the
page works on any extension version and leaves out, with a note, what the
installed one lacks:

- ``motofinai.check_runs`` (the runs, and the fallback for the two views below);
- ``motofinai.finding_trends`` (findings, new and resolved per day, scope and
  code); without it, counts per day and code from the day's last run in
  ``check_runs``;
- ``motofinai.current_findings`` (the open findings, ``new``, ``accepted``);
  without it, the latest run's findings, new = not in the run before;
- ``motofinai.accepted_findings`` with ``accept_finding`` / ``unaccept_finding``;
- ``motofinai.fix_consistency`` (the dry run and the repairs);
- ``motofinai.conflict_stats``, ``hot_rows``, ``recent_conflicts``,
  ``conflicts_by_statement``, ``statement_text``.

Columns are read by name, and a column a view lacks is NULL.
"""
import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from .db import fetch_dicts, from_jsonb

NOT_AVAILABLE = "history not available in this extension version"
SEVERITIES = ("error", "warning")
TREND_DAYS = 30
# fix_consistency's repairs, when the extension has no finding_codes() to say so.
FIXABLE_CODES = ("payment_not_applied", "overdue_status_stale", "paid_not_completed")
PLAN_LOANS_PER_PAGE = 100
FUNCTIONS = ("accept_finding", "unaccept_finding", "fix_consistency", "run_check", "hot_rows",
             "statement_text", "finding_codes")
RELATIONS = ("check_runs", "finding_trends", "current_findings", "accepted_findings", "conflict_stats",
             "recent_conflicts", "conflicts_by_statement")


@dataclass
class Features:
    """What the installed extension offers, and what this database role may do with it."""
    version: str = None
    relations: dict = field(default_factory=dict)   # name -> [column names], for those that exist
    functions: frozenset = frozenset()
    may_accept: bool = False      # INSERT and UPDATE on accepted_findings (accept_finding upserts)
    may_unaccept: bool = False    # DELETE on accepted_findings
    may_record: bool = False      # INSERT on check_runs (run_check)

    def has(self, name):
        return name in self.relations or name in self.functions

    def columns(self, relation):
        return self.relations.get(relation, [])

    @property
    def history(self):
        return "check_runs" in self.relations

    @property
    def accepting(self):
        return "accepted_findings" in self.relations and "accept_finding" in self.functions


def features(using=DEFAULT_DB_ALIAS):
    names = ", ".join(f"'{n}'" for n in RELATIONS)
    rows = fetch_dicts(f"""
        SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'motofinai_consistency') AS version,
               (SELECT coalesce(jsonb_object_agg(c.relname, (
                        SELECT jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)), '{{}}')
                  FROM pg_catalog.pg_class c
                 WHERE c.relnamespace = to_regnamespace('motofinai') AND c.relname IN ({names})) AS relations,
               (SELECT array_agg(DISTINCT p.proname::text) FROM pg_catalog.pg_proc p
                 WHERE p.pronamespace = to_regnamespace('motofinai')
                   AND p.proname IN ({", ".join(f"'{n}'" for n in FUNCTIONS)})) AS functions,
               coalesce(has_table_privilege(to_regclass('motofinai.accepted_findings'), 'INSERT')
                        AND has_table_privilege(to_regclass('motofinai.accepted_findings'), 'UPDATE'), false)
                   AS may_accept,
               coalesce(has_table_privilege(to_regclass('motofinai.accepted_findings'), 'DELETE'), false)
                   AS may_unaccept,
               coalesce(has_table_privilege(to_regclass('motofinai.check_runs'), 'INSERT'), false) AS may_record
    """, using=using, json_columns=("relations",))
    row = rows[0]
    return Features(version=row["version"], relations=row["relations"] or {},
                    functions=frozenset(row["functions"] or ()), may_accept=row["may_accept"],
                    may_unaccept=row["may_unaccept"], may_record=row["may_record"])


class Panel:
    """One part of the page: its data, or why it is left out (``note``) or failed
    (``error``: the server's message, e.g. a privilege this role lacks)."""

    def __init__(self, data=None, note=None, error=None):
        self.data, self.note, self.error = data, note, error

    def __bool__(self):
        return self.data is not None


def panel(using, build, *args):
    """build(*args) in a savepoint: a server error leaves this panel out, not the page
    (and, under ATOMIC_REQUESTS, not the request's transaction)."""
    try:
        with transaction.atomic(using=using):
            result = build(*args)
    except DatabaseError as exc:
        return Panel(error=str(exc).strip().splitlines()[0])
    return result if isinstance(result, Panel) else Panel(result)


def select_list(feats, relation, wanted):
    """``wanted`` columns of a relation, NULL for those it lacks (as ``NULL::type AS name``)."""
    have = set(feats.columns(relation))
    return ", ".join(name if name in have else f"NULL::{kind} AS {name}" for name, kind in wanted)


# --- runs ------------------------------------------------------------------

def runs(using, feats, limit=10):
    """The last runs, newest first, with their duration in seconds."""
    if not feats.history:
        return Panel(note=NOT_AVAILABLE)
    cols = select_list(feats, "check_runs", [("new_errors", "integer"), ("new_warnings", "integer"),
                                             ("resolved", "integer")])
    return fetch_dicts(f"""
        SELECT id, scope, started_at, finished_at, errors, warnings, {cols},
               extract(epoch FROM finished_at - started_at)::float8 AS seconds
          FROM motofinai.check_runs ORDER BY id DESC LIMIT %s""", [limit], using)


def history_scope(scope):
    """The scope a run's findings belong to: an incremental run ('changed') is part of 'system'."""
    return "system" if scope == "changed" else scope


def latest_by_scope(using, feats):
    """{history scope: its latest run (id, run_scope, finished_at, errors, warnings)}."""
    if not feats.history:
        return {}
    rows = fetch_dicts("""
        SELECT r.id, r.scope AS run_scope, CASE r.scope WHEN 'changed' THEN 'system' ELSE r.scope END AS scope,
               r.finished_at, r.errors, r.warnings
          FROM motofinai.check_runs r
         WHERE r.id IN (SELECT max(id) FROM motofinai.check_runs GROUP BY scope)""", using=using)
    latest = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        latest[row["scope"]] = row
    return latest


def full_check_status(using, feats, max_age_hours):
    """The last full ('system') run: when, and whether it is older than max_age_hours."""
    if not feats.history:
        return {"state": "unknown", "run": None, "max_age_hours": max_age_hours}
    rows = fetch_dicts("""
        SELECT id, scope, started_at, finished_at, errors, warnings,
               extract(epoch FROM now() - finished_at)::float8 / 3600 AS age_hours
          FROM motofinai.check_runs WHERE scope = 'system' ORDER BY id DESC LIMIT 1""", using=using)
    if not rows:
        return {"state": "missing", "run": None, "max_age_hours": max_age_hours}
    run = rows[0]
    return {"state": "stale" if run["age_hours"] > max_age_hours else "fresh", "run": run,
            "max_age_hours": max_age_hours}


# --- trends ----------------------------------------------------------------

@dataclass
class Trend:
    days: list            # TREND_DAYS dates, oldest first, ending today (database date)
    run_days: set         # days with at least one run of the scope
    counts: dict          # (code, severity) -> {day: findings at the day's last run}
    new: dict = None      # (code, severity) -> new over the days (finding_trends only)
    resolved: dict = None


def trends(using, feats, scope):
    if not feats.history:
        return Panel(note=NOT_AVAILABLE)
    today = fetch_dicts("SELECT current_date AS today", using=using)[0]["today"]
    days = [today - timedelta(days=TREND_DAYS - 1 - i) for i in range(TREND_DAYS)]
    # With the history view, an incremental run ('changed') is part of 'system';
    # without it, only full runs tell what was open (an incremental run's
    # findings are those of the loans it checked).
    of_scope = ("CASE scope WHEN 'changed' THEN 'system' ELSE scope END" if "finding_trends" in feats.relations
                else "scope")
    run_days = {r["day"] for r in fetch_dicts(f"""
        SELECT DISTINCT finished_at::date AS day FROM motofinai.check_runs
         WHERE {of_scope} = %s AND finished_at >= %s::date AND finished_at < %s::date + 1""",
                                              [scope, days[0], today], using)}
    counts, new, resolved = {}, None, None
    if "finding_trends" in feats.relations:
        cols = select_list(feats, "finding_trends", [("new", "bigint"), ("resolved", "bigint")])
        rows = fetch_dicts(f"""
            SELECT day, code, severity, findings, {cols} FROM motofinai.finding_trends
             WHERE scope = %s AND day BETWEEN %s AND %s""", [scope, days[0], today], using)
        new, resolved = {}, {}
        for r in rows:
            key = (r["code"], r["severity"])
            counts.setdefault(key, {})[r["day"]] = r["findings"]
            new[key] = new.get(key, 0) + (r["new"] or 0)
            resolved[key] = resolved.get(key, 0) + (r["resolved"] or 0)
    else:
        # The last run of each day: its findings per code (ids first, so only
        # those runs' findings are read).
        rows = fetch_dicts("""
            WITH last AS (
                SELECT DISTINCT ON (finished_at::date) id, finished_at::date AS day FROM motofinai.check_runs
                 WHERE scope = %s
                   AND finished_at >= %s::date AND finished_at < %s::date + 1
                 ORDER BY finished_at::date, id DESC)
            SELECT last.day, e ->> 'code' AS code, e ->> 'severity' AS severity, count(*) AS findings
              FROM last JOIN motofinai.check_runs r ON r.id = last.id
             CROSS JOIN LATERAL jsonb_array_elements(r.findings) e
             WHERE NOT coalesce((e -> 'details') ? 'accepted', false)
             GROUP BY 1, 2, 3""", [scope, days[0], today], using)
        for r in rows:
            counts.setdefault((r["code"], r["severity"]), {})[r["day"]] = r["findings"]
    return Trend(days, run_days, counts, new, resolved)


# --- findings --------------------------------------------------------------

FINDING_COLUMNS = [("severity", "text"), ("code", "text"), ("entity", "text"), ("entity_id", "bigint"),
                   ("subject", "text"), ("message", "text"), ("details", "jsonb"),
                   ("first_seen_at", "timestamptz"), ("new", "boolean"), ("accepted", "boolean")]


def findings_source(feats, scope):
    """(SQL, params) of the open findings of a scope, with FINDING_COLUMNS."""
    if "current_findings" in feats.relations:
        return (f"SELECT {select_list(feats, 'current_findings', FINDING_COLUMNS)} "
                "FROM motofinai.current_findings WHERE scope = %s", [scope])
    # The latest full run's findings ('system' or 'quick': an incremental run
    # has only its loans'); new: not in the run before (same scope, by code,
    # entity and id); accepted: what the check said (details.accepted),
    # or a matching row of accepted_findings.
    accepted = "coalesce((f.details ? 'accepted'), false)"
    if "accepted_findings" in feats.relations:
        accepted += (" OR EXISTS (SELECT FROM motofinai.accepted_findings a WHERE a.code = f.code "
                     "AND a.entity = f.entity AND (a.entity_id IS NULL OR a.entity_id = f.entity_id) "
                     "AND (a.until IS NULL OR a.until > now()))")
    return (f"""
        WITH runs AS (SELECT id FROM motofinai.check_runs WHERE scope = %s
                       ORDER BY id DESC LIMIT 2),
             last AS (SELECT r.id, r.findings FROM motofinai.check_runs r WHERE r.id = (SELECT max(id) FROM runs)),
             prev AS (SELECT r.id, r.findings FROM motofinai.check_runs r
                       WHERE r.id = (SELECT min(id) FROM runs) AND (SELECT count(*) FROM runs) = 2),
             seen AS (SELECT concat_ws('|', e ->> 'code', e ->> 'entity', e ->> 'entity_id') AS finding
                        FROM prev CROSS JOIN LATERAL jsonb_array_elements(prev.findings) e),
             f AS (SELECT e ->> 'severity' AS severity, e ->> 'code' AS code, e ->> 'entity' AS entity,
                          (e ->> 'entity_id')::bigint AS entity_id, e ->> 'message' AS message, e -> 'details' AS details
                     FROM last CROSS JOIN LATERAL jsonb_array_elements(last.findings) e)
        SELECT f.severity, f.code, f.entity, f.entity_id, NULL::text AS subject, f.message, f.details,
               NULL::timestamptz AS first_seen_at,
               EXISTS (SELECT FROM prev) AND concat_ws('|', f.code, f.entity, f.entity_id::text)
                   NOT IN (SELECT finding FROM seen) AS new,   -- a hashed subplan, whatever the estimates
               {accepted} AS accepted
          FROM f""", [scope])


@dataclass
class Filters:
    severity: str = ""
    code: str = ""
    entity: str = ""
    new: bool = False
    accepted: str = "hide"     # hide, show, only

    @classmethod
    def from_query(cls, query):
        accepted = query.get("accepted", "hide")
        severity = query.get("severity", "")
        return cls(severity=severity if severity in SEVERITIES else "", code=query.get("code", "")[:100],
                   entity=query.get("entity", "")[:100], new=query.get("new") in ("1", "on", "true"),
                   accepted=accepted if accepted in ("hide", "show", "only") else "hide")

    def where(self):
        conditions, params = [], []
        for name in ("severity", "code", "entity"):
            if getattr(self, name):
                conditions.append(f"{name} = %s")
                params.append(getattr(self, name))
        if self.new:
            conditions.append("new")
        if self.accepted == "hide":
            conditions.append("NOT coalesce(accepted, false)")
        elif self.accepted == "only":
            conditions.append("coalesce(accepted, false)")
        return (" AND ".join(conditions) or "true"), params


@dataclass
class FindingsPage:
    rows: list
    total: int            # matching the filters
    counts: dict          # over all open findings of the scope: errors, warnings, new, accepted
    codes: list           # [(code, severity, count)] for the filter
    entities: list        # [(entity, count)]
    page: int
    pages: int
    size: int


def findings_page(using, feats, scope, filters, page=1, size=50):
    if not feats.history:
        return Panel(note=NOT_AVAILABLE)
    source, params = findings_source(feats, scope)
    groups = fetch_dicts(f"""
        SELECT severity, code, entity, coalesce(new, false) AS new, coalesce(accepted, false) AS accepted,
               count(*) AS n
          FROM ({source}) src GROUP BY 1, 2, 3, 4, 5""", params, using)
    where, where_params = filters.where()
    total = sum(g["n"] for g in groups if _matches(g, filters))
    pages = max(1, math.ceil(total / size))
    page = min(max(1, page), pages)
    rows = fetch_dicts(f"""
        SELECT * FROM ({source}) src WHERE {where}
         ORDER BY severity <> 'error', code, entity, entity_id NULLS FIRST, subject NULLS FIRST, message
         LIMIT %s OFFSET %s""", params + where_params + [size, (page - 1) * size], using)
    open_ = [g for g in groups if not g["accepted"]]
    counts = {"errors": sum(g["n"] for g in open_ if g["severity"] == "error"),
              "warnings": sum(g["n"] for g in open_ if g["severity"] == "warning"),
              "new": sum(g["n"] for g in open_ if g["new"]),
              "accepted": sum(g["n"] for g in groups if g["accepted"])}
    codes, entities = {}, {}
    for g in groups:
        codes[(g["code"], g["severity"])] = codes.get((g["code"], g["severity"]), 0) + g["n"]
        entities[g["entity"]] = entities.get(g["entity"], 0) + g["n"]
    return FindingsPage(rows=rows, total=total, counts=counts,
                        codes=sorted(((c, s, n) for (c, s), n in codes.items()), key=lambda x: (x[1] != "error", x[0])),
                        entities=sorted(entities.items()), page=page, pages=pages, size=size)


def _matches(group, filters):
    if filters.severity and group["severity"] != filters.severity:
        return False
    if filters.code and group["code"] != filters.code:
        return False
    if filters.entity and group["entity"] != filters.entity:
        return False
    if filters.new and not group["new"]:
        return False
    if filters.accepted == "hide" and group["accepted"]:
        return False
    return not (filters.accepted == "only" and not group["accepted"])


def all_findings(using, feats, scope):
    """Every open finding of a scope (the report), in the page's order."""
    source, params = findings_source(feats, scope)
    return fetch_dicts(f"SELECT * FROM ({source}) src ORDER BY severity <> 'error', code, entity, "
                       "entity_id NULLS FIRST, subject NULLS FIRST, message", params, using)


def mark_new(using, feats, scope, found):
    """For the command's report: mark each finding of this run ``new`` when the
    latest recorded full run of ``scope`` ('system' or 'quick') did not have it (by code, entity and id), and
    ``accepted`` when the check says so (details.accepted). Returns the id of the
    run compared with, or None."""
    last = None
    if feats.history and scope:
        last = fetch_dicts("SELECT max(id) AS id FROM motofinai.check_runs "
                           "WHERE scope = %s", [scope], using)[0]["id"]
    previous = set()
    if last is not None:
        previous = {(r["code"], r["entity"], r["entity_id"]) for r in fetch_dicts("""
            SELECT e ->> 'code' AS code, e ->> 'entity' AS entity, (e ->> 'entity_id')::bigint AS entity_id
              FROM motofinai.check_runs r CROSS JOIN LATERAL jsonb_array_elements(r.findings) e
             WHERE r.id = %s""", [last], using)}
    for f in found:
        f["new"] = last is not None and (f["code"], f["entity"], f["entity_id"]) not in previous
        f["accepted"] = isinstance(f.get("details"), dict) and "accepted" in f["details"]
    return last


# --- repairs ---------------------------------------------------------------

def fixable_codes(using, feats):
    if "finding_codes" in feats.functions:
        rows = fetch_dicts("SELECT DISTINCT code FROM motofinai.finding_codes() WHERE fixable", using=using)
        return sorted(r["code"] for r in rows)
    return list(FIXABLE_CODES)


def fixable_loans(using, feats, scope):
    """The loans with a repairable open finding (not accepted) among the scope's
    findings: those the repairs panel plans for. A finding on an installment names
    its loan in details.loan_id, or is looked up in the installments table."""
    if not feats.history or "fix_consistency" not in feats.functions:
        return []
    source, params = findings_source(feats, scope)
    schedule = connections[using].ops.quote_name(tables_schema(using)) + ".loans_paymentschedule"
    rows = fetch_dicts(f"""
        SELECT DISTINCT coalesce(CASE WHEN src.entity = 'loan' THEN src.entity_id END,
                                 (src.details ->> 'loan_id')::bigint, s.loan_application_id) AS loan
          FROM ({source}) src
          LEFT JOIN {schedule} s ON src.entity = 'schedule' AND s.id = src.entity_id
         WHERE src.code = ANY (%s) AND NOT coalesce(src.accepted, false)""",
                       params + [fixable_codes(using, feats)], using)
    return sorted(r["loan"] for r in rows if r["loan"] is not None)


def loans_of_installments(using, ids):
    """{installment id: its loan id}."""
    schedule = connections[using].ops.quote_name(tables_schema(using)) + ".loans_paymentschedule"
    return {r["id"]: r["loan"] for r in fetch_dicts(
        f"SELECT id, loan_application_id AS loan FROM {schedule} WHERE id = ANY (%s)", [list(ids)], using)}


def plan(using, loans):
    """fix_consistency's dry run for these loans, in order."""
    return _fix(using, loans, apply=False)


def _fix(using, loans, apply):
    if not loans:
        return []
    return fetch_dicts("""
        SELECT l.id AS loan, f.* FROM unnest(%s::bigint[]) WITH ORDINALITY AS l(id, n)
         CROSS JOIN LATERAL motofinai.fix_consistency('loan', l.id, %s) f
         ORDER BY l.n""", [list(loans), apply], using)


def plan_digest(rows):
    """What a plan will change, as a digest: each repair's code, row, the columns it
    changes and their values now, and whether the loan is blocked. The new values are
    left out: a repair's time stamp (completed_at = now()) differs from run to run."""
    items = sorted(
        json.dumps([r["code"], r["entity"], r["entity_id"],
                    {col: (chg or {}).get("from") for col, chg in sorted((r["changes"] or {}).items())},
                    r["note"] is None], sort_keys=True, default=str)
        for r in rows)
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:32]


class PlanChanged(Exception):
    """The repairs would not be the ones planned: nothing was applied."""

    def __init__(self, rows):
        super().__init__("the plan changed")
        self.rows = rows


def apply_plan(using, loans, digest):
    """Apply the repairs of these loans, in one transaction, only if they are
    exactly the ones planned (same digest); else roll back and raise PlanChanged
    with what the repairs would be now."""
    with transaction.atomic(using=using):
        rows = _fix(using, loans, apply=True)
        if plan_digest(rows) != digest:
            transaction.set_rollback(True, using=using)
            raise PlanChanged(rows)
    return rows


# --- accepted findings -----------------------------------------------------

def accepted_findings(using, feats):
    if "accepted_findings" not in feats.relations:
        return Panel(note="accepted findings are not available in this extension version")
    cols = select_list(feats, "accepted_findings", [
        ("code", "text"), ("entity", "text"), ("entity_id", "bigint"), ("reason", "text"),
        ("accepted_by", "text"), ("accepted_at", "timestamptz"), ("until", "timestamptz")])
    return fetch_dicts(f"SELECT {cols}, (until IS NOT NULL AND until <= now()) AS expired "
                       "FROM motofinai.accepted_findings ORDER BY code, entity, entity_id NULLS FIRST", using=using)


def accept(using, code, entity, entity_id, reason, until):
    with transaction.atomic(using=using):
        fetch_dicts("SELECT 1 AS done FROM motofinai.accept_finding(%s, %s, %s::bigint, %s, %s::timestamptz)",
                    [code, entity, entity_id, reason, until], using)


def unaccept(using, code, entity, entity_id):
    with transaction.atomic(using=using):
        rows = fetch_dicts("SELECT motofinai.unaccept_finding(%s, %s, %s::bigint) AS gone",
                           [code, entity, entity_id], using)
    return rows[0]["gone"]


def record_run(using, scope):
    with transaction.atomic(using=using):
        return fetch_dicts("SELECT id, errors, warnings FROM motofinai.run_check(%s)", [scope], using)[0]


# --- conflicts -------------------------------------------------------------

@dataclass
class Conflicts:
    statistics: str            # 'on', or the view's 'off: ...' text
    tables: list
    hot_rows: dict             # table -> rows (tables this role may read)
    hidden_hot_rows: list      # tables whose hot rows this role may not see
    recent: list
    statements: list


def conflicts(using, feats, hot_minutes=60, hot_limit=5, recent_limit=20, statement_limit=10):
    if "conflict_stats" not in feats.relations:
        return Panel(note="conflict statistics are not available in this extension version")
    stats = fetch_dicts("SELECT *, table_name::text AS table_text FROM motofinai.conflict_stats "
                        "ORDER BY coalesce(conflicts, 0) + coalesce(observed_conflicts, 0) DESC, table_name::text",
                        using=using)
    off = [s for s in stats if s.get("statistics") and s["statistics"] != "on"]
    if off:
        return Conflicts(statistics=off[0]["statistics"], tables=[], hot_rows={}, hidden_hot_rows=[], recent=[],
                         statements=[])
    hot, hidden = {}, []
    if "hot_rows" in feats.functions:
        for s in stats:
            readable = fetch_dicts("SELECT has_table_privilege(%s::regclass, 'SELECT') AS ok", [s["table_text"]],
                                   using)[0]["ok"]
            if not readable:
                hidden.append(s["table_text"])
                continue
            rows = fetch_dicts("SELECT * FROM motofinai.hot_rows(%s::regclass, %s) ORDER BY modifications DESC, id "
                               "LIMIT %s", [s["table_text"], hot_minutes, hot_limit], using)
            if rows:
                hot[s["table_text"]] = rows
    recent = []
    if "recent_conflicts" in feats.relations:
        text = "statement_text" in feats.functions
        recent = fetch_dicts(f"""
            SELECT c.*, c.table_name::text AS table_text,
                   {"motofinai.statement_text(c.query_id)" if text else "NULL::text"} AS query,
                   {"motofinai.statement_text(c.winner_query_id)" if text else "NULL::text"} AS winner_query
              FROM (SELECT * FROM motofinai.recent_conflicts LIMIT %s) c""", [recent_limit], using)
    statements = []
    if "conflicts_by_statement" in feats.relations:
        statements = fetch_dicts("SELECT *, table_name::text AS table_text FROM motofinai.conflicts_by_statement "
                                 "LIMIT %s", [statement_limit], using)
    return Conflicts(statistics="on", tables=stats, hot_rows=hot, hidden_hot_rows=hidden, recent=recent,
                     statements=statements)


def tables_schema(using):
    return fetch_dicts("SELECT coalesce(nullif(current_setting('motofinai.tables_schema', true), ''), 'public') AS s",
                       using=using)[0]["s"]


def compact_json(value):
    value = from_jsonb(value)
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
