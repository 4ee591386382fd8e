#!/usr/bin/env python3
"""Part B of tests/random/run.sh: seeded random walks of versioning operations.

On a small test table and on a Motofinai table (payments_payment), in a
database run.sh prepared, each step is one of: enable_versioning (default or
random options, sometimes other columns than the registered ones, sometimes a
column name that needs quoting), disable_versioning, ALTER TABLE (add, drop,
rename an unrelated column; DISABLE/ENABLE TRIGGER motofinai_versioning), a
manual CREATE OR REPLACE TRIGGER drifting from the registration or a DROP
TRIGGER, and now and then a pg_dump / pg_restore round trip into a fresh
database. After each step
the catalog, motofinai.versioned_tables, the system and quick checks and the
trigger's behaviour must agree with a model of what the step should have done.

Prints "ok: ..." and "FAIL: ..." lines (one per assertion, with counts) for
run.sh to count; psql runs as a subprocess, connection from libpq variables.

    versioning_walk.py --seed 42 --steps 120 --db mfc_random_walk
"""
import argparse
import json
import os
import random
import re
import subprocess
import tempfile

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
TRIGGER = "motofinai_versioning"
VERSION_COLUMNS = ["version", "row_version", "version2"]   # plain identifiers
QUOTED_COLUMNS = ["no such col", "Version"]                # need quoting: 42602 unless they exist
MODIFIED_COLUMNS = ["last_modified_at", "changed_at"]
DRIFT_COLUMN = "alt_version"                                # an integer column run.sh adds to both tables


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def literal(value):
    return "'" + str(value).replace("'", "''") + "'"


def needs_quoting(name):
    return not re.fullmatch(r"[a-z_][a-z0-9_]*", name)


class Result:
    """A psql run: its output lines, and the messages it printed (level, SQLSTATE, text)."""

    MESSAGE = re.compile(r"\b(ERROR|WARNING|NOTICE):  ([0-9A-Z]{5}): (.*)$")

    def __init__(self, proc):
        self.rc = proc.returncode
        self.lines = [l for l in proc.stdout.splitlines() if l != ""]
        self.stderr = proc.stderr
        self.messages = [m.groups() for m in map(self.MESSAGE.search, proc.stderr.splitlines()) if m]

    def notices(self):
        return [text for level, _, text in self.messages if level == "NOTICE"]

    def sqlstate(self):
        errors = [state for level, state, _ in self.messages if level == "ERROR"]
        return errors[0] if errors else ("ok" if self.rc == 0 else "psql exit %d" % self.rc)


def psql(db, sql):
    cmd = ["psql", "-X", "-q", "-At", "-v", "VERBOSITY=verbose", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-"]
    return Result(subprocess.run(cmd, input="SET client_min_messages = notice;\n" + sql,
                                 capture_output=True, text=True))


class Table:
    """What a table should look like: registered options, drifted trigger arguments, unrelated columns."""

    def __init__(self, name, probe_column):
        self.name = name
        self.probe_column = probe_column
        self.registered = None   # [version_column, modified_column, protocol, strict] as the trigger takes them
        self.drift = None        # the arguments a manual CREATE OR REPLACE TRIGGER gave the trigger
        self.extras = []
        self.refused_from = None  # its state before an enable_versioning that must be refused


# One query for the state of every table: registration, versioned_tables,
# the trigger as pg_trigger has it, columns, indexes, the checks' versioning
# findings, and the probe (mfc_walk.probe, PROBE_SQL) of an enabled trigger.
STATE_SQL = r"""
WITH f AS MATERIALIZED (
    SELECT 'system' AS chk, code, details FROM motofinai.check_system_consistency() WHERE code LIKE 'versioning%%'
    UNION ALL
    SELECT 'quick', code, details FROM motofinai.check_quick_consistency() WHERE code LIKE 'versioning%%'
)
SELECT json_object_agg(t.name, json_build_object(
  'config', (SELECT json_build_object('args', ARRAY[version_column::text, modified_column::text, protocol, strict::text],
                                      'row', to_jsonb(c))
               FROM motofinai.versioning_config c WHERE c.tbl = t.name::regclass),
  'view', (SELECT to_jsonb(v) FROM motofinai.versioned_tables v WHERE v.table_name = t.name::regclass),
  'trigger', (SELECT json_build_object('oid', oid, 'enabled', tgenabled::text, 'args', mfc_walk.args(tgargs, tgnargs))
                FROM pg_trigger WHERE tgrelid = t.name::regclass AND tgname = 'motofinai_versioning'),
  'columns', (SELECT json_agg(attname ORDER BY attnum) FROM pg_attribute
               WHERE attrelid = t.name::regclass AND attnum > 0 AND NOT attisdropped),
  'indexes', (SELECT json_agg(pg_get_indexdef(indexrelid) ORDER BY pg_get_indexdef(indexrelid)) FROM pg_index
               WHERE indrelid = t.name::regclass),
  'findings', (SELECT coalesce(json_agg(json_build_object('check', f.chk, 'code', f.code) ORDER BY f.chk, f.code), '[]')
                 FROM f WHERE (f.details ->> 'table')::regclass = t.name::regclass),
  'probe', mfc_walk.probe(t.name::regclass, t.probe_column)))
  FROM (VALUES %s) t(name, probe_column);
"""

# The probe runs in the database: an UPDATE stating a stale version (its
# SQLSTATE and constraint name caught), then one stating the current version
# (the version it leaves), on the column and protocol of the trigger's own
# arguments (a drifted trigger too: its cached options must follow). NULL
# when there is no enabled trigger.
PROBE_SQL = r"""
CREATE SCHEMA IF NOT EXISTS mfc_walk;
CREATE OR REPLACE FUNCTION mfc_walk.args(args bytea, nargs smallint) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT (string_to_array(encode(args, 'escape'), '\000'))[1:nargs]   -- each argument ends with a NUL byte
$$;
CREATE OR REPLACE FUNCTION mfc_walk.probe(t regclass, probe_column text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    a text[];
    id bigint;
    stored bigint;
    after bigint;
    stale_state text := 'ok';
    stale_constraint text;
    current_state text := 'ok';
BEGIN
    SELECT mfc_walk.args(tgargs, tgnargs) INTO a FROM pg_trigger
     WHERE tgrelid = t AND tgname = 'motofinai_versioning' AND tgenabled <> 'D';
    IF a IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT min(id) FROM %s', t) INTO id;
    EXECUTE format('SELECT %I FROM %s WHERE id = $1', a[1], t) INTO stored USING id;
    BEGIN
        EXECUTE format('UPDATE %s SET %I = %I, %I = $1 WHERE id = $2', t, probe_column, probe_column, a[1])
          USING CASE a[3] WHEN 'expected' THEN stored - 1 ELSE stored END, id;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS stale_state = RETURNED_SQLSTATE, stale_constraint = CONSTRAINT_NAME;
    END;
    BEGIN
        EXECUTE format('UPDATE %s SET %I = %I, %I = $1 WHERE id = $2 RETURNING %I', t, probe_column, probe_column,
                       a[1], a[1])
          USING CASE a[3] WHEN 'expected' THEN stored ELSE stored + 1 END, id INTO after;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS current_state = RETURNED_SQLSTATE;
    END;
    RETURN jsonb_build_object('args', a, 'stored', stored, 'after', after, 'stale_state', stale_state,
                              'stale_constraint', stale_constraint, 'current_state', current_state);
END
$$;
"""


class Walk:
    def __init__(self, seed, steps, db):
        self.rng = random.Random(seed)
        self.steps = steps
        self.db = db
        self.dbs = [db, db + "_b"]   # a restore goes into the other one
        self.tables = [Table("walk_items", "label"), Table("payments_payment", "notes")]
        self.results = {}            # assertion -> [passes, [failure details]]
        self.step = 0
        self.op = "setup"
        self.restores = 0
        self.now = {}                # each table's state after the last step
        self.restored_from = None    # the snapshots before a dump / restore

    # -- bookkeeping ---------------------------------------------------------
    def check(self, assertion, ok, detail=""):
        entry = self.results.setdefault(assertion, [0, []])
        if ok:
            entry[0] += 1
        else:
            entry[1].append("step %d (%s): %s" % (self.step, self.op, detail))

    def report(self):
        for assertion, (passes, failures) in self.results.items():
            if failures:
                for f in failures[:3]:
                    print("   ", f)
                print("FAIL: %s: %d of %d steps" % (assertion, len(failures), passes + len(failures)))
            else:
                print("ok: %s (%d times)" % (assertion, passes))

    def states(self):
        values = ", ".join("(%s, %s)" % (literal(t.name), literal(t.probe_column)) for t in self.tables)
        r = psql(self.db, STATE_SQL % values)
        if r.rc != 0:
            raise RuntimeError("reading the state: %s" % r.stderr)
        return json.loads(r.lines[-1])

    # -- steps ---------------------------------------------------------------
    def run(self):
        r = psql(self.db, PROBE_SQL)
        if r.rc != 0:
            raise RuntimeError("setup: %s" % r.stderr)
        self.op = "start"
        self.verify()
        # A fixed prologue on the test table, so that every run sees the name rules.
        t = self.tables[0]
        prologue = [lambda: self.do_enable(t, ("no such col", "last_modified_at")),   # refused: 42602
                    lambda: self.do_quoted_column(t, "Version"),                     # now it exists
                    lambda: self.do_enable(t, ("Version", "changed_at")),            # accepted, NOTICE changed_at
                    lambda: self.do_disable(t)]
        # Then random steps, one of them (at least) a dump / restore.
        weights = {"enable": 4, "disable": 1.5, "add_column": 1, "drop_column": 1, "rename_column": 1,
                   "quoted_column": 0.5, "disable_trigger": 1, "enable_trigger": 1, "drop_trigger": 0.4,
                   "drift": 1.2, "dump_restore": 0.1}
        names = list(weights)
        restore_at = len(prologue) + self.rng.randrange(self.steps // 3, 2 * self.steps // 3 + 1)
        for self.step in range(1, len(prologue) + self.steps + 1):
            kind = "dump_restore" if self.step == restore_at else self.rng.choices(names, list(weights.values()))[0]
            if self.step <= len(prologue):
                prologue[self.step - 1]()
            elif kind == "dump_restore" and self.restores < 3:
                self.do_dump_restore()
            else:
                getattr(self, "do_" + kind.replace("dump_restore", "enable"))(self.rng.choice(self.tables))
            self.verify()

    def do_enable(self, t, columns=None):
        before = self.now[t.name]
        exists = set(before["columns"])
        # Default options, or random ones; the registered columns mostly, other ones sometimes.
        if columns is None and self.rng.random() < 0.3:
            args = {}
            vc, mc = "version", "last_modified_at"
        else:
            if columns:
                vc, mc = columns
            elif t.registered and self.rng.random() < 0.7:
                vc, mc = t.registered[0], t.registered[1]
            else:
                vc = self.rng.choice(VERSION_COLUMNS + (QUOTED_COLUMNS if not t.registered else []))
                mc = self.rng.choice(MODIFIED_COLUMNS)
            args = {"version_column": vc, "modified_column": mc,
                    "protocol": self.rng.choice(["expected", "increment"]),
                    "strict": self.rng.choice(["true", "false"]),
                    "create_index": self.rng.choice(["true", "false"])}
        self.op = "enable_versioning(%s%s)" % (t.name, "".join(", %s => %s" % kv for kv in args.items()))
        r = psql(self.db, "SELECT motofinai.enable_versioning(%s%s);" % (
            literal(t.name), "".join(", %s => %s" % (k, v if k in ("strict", "create_index") else literal(v))
                                     for k, v in args.items())))
        if t.registered and [vc, mc] != t.registered[:2]:
            want = "55000"      # other columns on a versioned table: refused, nothing changes
        elif needs_quoting(vc) and vc not in exists:
            want = "42602"      # a new column whose name would need quoting: refused
        else:
            want = "ok"
        label = {"55000": "enable_versioning with other columns on a versioned table is refused with 55000",
                 "42602": "enable_versioning refuses a new version column whose name needs quoting (42602)",
                 "ok": "enable_versioning succeeds"}[want]
        self.check(label, r.sqlstate() == want, "got %s: %s" % (r.sqlstate(), r.stderr.strip()[:300]))
        if want != "ok":
            t.refused_from = before
        elif r.rc == 0:
            added = [c for c in (vc, mc) if c not in exists]
            missing = [c for c in added if not any(c in n for n in r.notices())]
            if added:
                self.check("enable_versioning NOTICEs each column it adds", not missing,
                           "added %s, NOTICEs %s" % (added, r.notices()))
            t.registered = [vc, mc, args.get("protocol", "expected"), args.get("strict", "false")]
            t.drift = None

    def do_disable(self, t):
        self.op = "disable_versioning(%s)" % t.name
        r = psql(self.db, "SELECT motofinai.disable_versioning(%s);" % literal(t.name))
        self.check("disable_versioning succeeds", r.rc == 0, r.stderr.strip())
        t.registered = None
        t.drift = None

    def do_add_column(self, t):
        name = "extra_%d" % self.step
        self.alter(t, "ALTER TABLE %s ADD COLUMN %s text DEFAULT 'x'" % (t.name, name))
        t.extras.append(name)

    def do_drop_column(self, t):
        if not t.extras:
            return self.do_add_column(t)
        name = t.extras.pop(self.rng.randrange(len(t.extras)))
        self.alter(t, "ALTER TABLE %s DROP COLUMN %s" % (t.name, name))

    def do_rename_column(self, t):
        if not t.extras:
            return self.do_add_column(t)
        i = self.rng.randrange(len(t.extras))
        new = "extra_r%d" % self.step
        self.alter(t, "ALTER TABLE %s RENAME COLUMN %s TO %s" % (t.name, t.extras[i], new))
        t.extras[i] = new

    def do_quoted_column(self, t, name=None):
        # Add (or drop, when unused) a column whose name needs quoting, so
        # that enable_versioning may find it already there.
        name = name or self.rng.choice(QUOTED_COLUMNS)
        present = name in self.now[t.name]["columns"]
        if present and not (t.registered and name == t.registered[0]):
            self.alter(t, "ALTER TABLE %s DROP COLUMN %s" % (t.name, ident(name)))
        elif not present:
            self.alter(t, "ALTER TABLE %s ADD COLUMN %s integer NOT NULL DEFAULT 1" % (t.name, ident(name)))

    def do_disable_trigger(self, t, action="DISABLE"):
        if self.now[t.name]["trigger"] is None:
            return self.do_enable(t)
        self.alter(t, "ALTER TABLE %s %s TRIGGER %s" % (t.name, action, TRIGGER))

    def do_enable_trigger(self, t):
        self.do_disable_trigger(t, "ENABLE")

    def do_drop_trigger(self, t):
        # By hand: the table stays registered, its trigger is missing.
        if self.now[t.name]["trigger"] is None:
            return self.do_enable(t)
        self.alter(t, "DROP TRIGGER %s ON %s" % (TRIGGER, t.name))

    def do_drift(self, t):
        if not t.registered or self.now[t.name]["trigger"] is None:
            return self.do_enable(t)
        args = list(t.registered)
        which = self.rng.randrange(3)
        if which == 0:
            args[0] = DRIFT_COLUMN
        elif which == 1:
            args[2] = "increment" if args[2] == "expected" else "expected"
        else:
            args[3] = "true" if args[3] == "false" else "false"
        self.alter(t, "CREATE OR REPLACE TRIGGER %s BEFORE INSERT OR UPDATE ON %s FOR EACH ROW "
                      "EXECUTE FUNCTION motofinai.version_trigger(%s)"
                   % (TRIGGER, t.name, ", ".join(literal(a) for a in args)))
        t.drift = args

    def do_dump_restore(self):
        self.restores += 1
        src, dst = self.db, self.dbs[1] if self.db == self.dbs[0] else self.dbs[0]
        self.op = "pg_dump %s | pg_restore into %s" % (src, dst)
        with tempfile.TemporaryDirectory() as tmp:
            dump = os.path.join(tmp, "walk.dump")
            for cmd in ([PG_BIN + "/pg_dump", "-Fc", "-d", src, "-f", dump],
                        ["psql", "-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % dst,
                         "-c", "CREATE DATABASE %s" % dst],
                        [PG_BIN + "/pg_restore", "--exit-on-error", "-d", dst, dump]):
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode != 0:
                    self.check("pg_dump / pg_restore round trip succeeds", False, "%s: %s" % (cmd[0], p.stderr.strip()))
                    return
        self.db = dst
        subprocess.run(["psql", "-X", "-q", "-d", "postgres", "-c", "DROP DATABASE %s WITH (FORCE)" % src],
                       capture_output=True)
        self.restored_from = {x.name: self.snapshot(self.now[x.name]) for x in self.tables}

    def alter(self, t, sql):
        self.op = sql
        r = psql(self.db, sql + ";")
        self.check("ALTER TABLE / CREATE TRIGGER statements succeed", r.rc == 0, r.stderr.strip())

    @staticmethod
    def snapshot(s):
        """What a refused call must leave as it was (and a restore must keep, OIDs aside)."""
        trig = s["trigger"] and {k: v for k, v in s["trigger"].items() if k != "oid"}
        config = s["config"] and {k: v for k, v in s["config"]["row"].items() if k != "tbl"}
        return {"config": config, "trigger": trig, "columns": s["columns"], "indexes": s["indexes"]}

    # -- invariants after every step -------------------------------------------
    def verify(self):
        self.now = self.states()
        if self.restored_from is not None:
            got = {x.name: self.snapshot(self.now[x.name]) for x in self.tables}
            self.check("pg_dump / pg_restore keeps registration, trigger, columns and indexes",
                       got == self.restored_from, "before %s, after %s" % (self.restored_from, got))
            self.restored_from = None
        for t in self.tables:
            s = self.now[t.name]
            if t.refused_from is not None:
                self.check("a refused enable_versioning leaves everything as it was",
                           self.snapshot(s) == self.snapshot(t.refused_from),
                           "%s: before %s, after %s" % (t.name, self.snapshot(t.refused_from), self.snapshot(s)))
                t.refused_from = None
            self.verify_table(t, s)

    def verify_table(self, t, s):
        config, view, trig = s["config"], s["view"], s["trigger"]
        registered = config and config["args"]
        self.check("the registration is what the steps made it", registered == t.registered,
                   "%s: registered %s, expected %s" % (t.name, registered, t.registered))
        t.registered = registered   # follow the database from here on: one failure, not a cascade
        if not registered:
            self.check("an unversioned table has no versioning trigger", trig is None, "%s: %s" % (t.name, trig))
            self.check("versioned_tables lists only registered tables", view is None, "%s: %s" % (t.name, view))
            t.drift = None
            return
        args = trig and trig["args"]
        enabled = bool(trig) and trig["enabled"] != "D"
        self.check("the trigger's arguments are the registration unless a drift step changed them",
                   trig is None or args == (t.drift or registered),
                   "%s: trigger %s, registered %s, drift %s" % (t.name, args, registered, t.drift))
        t.drift = None if args == registered else args
        self.check("versioned_tables agrees with pg_trigger (present, enabled)",
                   view is not None and view["trigger_present"] == (trig is not None)
                   and view["trigger_enabled"] == enabled, "%s: view %s, trigger %s" % (t.name, view, trig))
        if view is not None and "trigger_matches" in view and "trigger_arguments" in view:
            self.check("versioned_tables.trigger_arguments and trigger_matches agree with pg_trigger.tgargs",
                       view["trigger_arguments"] == args and view["trigger_matches"] == (args == registered),
                       "%s: view %s/%s, tgargs %s, registered %s" % (
                           t.name, view["trigger_arguments"], view["trigger_matches"], args, registered))
        else:
            self.check("versioned_tables has columns trigger_arguments and trigger_matches", False,
                       "columns: %s" % sorted(view or {}))
        want = set()
        if trig is not None and args != registered:
            want.add("versioning_mismatch")
        if not enabled:
            want.add("versioning_disabled")
        for check in ("system", "quick"):
            got = {f["code"] for f in s["findings"] if f["check"] == check}
            self.check("the %s check reports versioning_mismatch / versioning_disabled as the catalog says" % check,
                       got == want, "%s: got %s, want %s" % (t.name, sorted(got), sorted(want)))
        if enabled:
            # The registered options, or a drifted trigger's own (its cached options follow the drift).
            what = "" if args == registered else "a drifted trigger's own column and protocol: "
            probe = s["probe"]
            where = "%s (trigger %s, registered %s): %s" % (t.name, args, registered, probe)
            self.check(what + "a stale stated version is rejected with 40001 and constraint motofinai_version_check",
                       probe is not None and probe["args"] == args and probe["stale_state"] == "40001"
                       and probe["stale_constraint"] == "motofinai_version_check", where)
            self.check(what + "a current stated version is accepted and bumped",
                       probe is not None and probe["current_state"] == "ok"
                       and probe["after"] == probe["stored"] + 1, where)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--db", required=True)
    a = ap.parse_args()
    walk = Walk(a.seed, a.steps, a.db)
    try:
        walk.run()
    except Exception as e:   # a harness error is a failure too, with where it happened
        print("FAIL: versioning walk stopped at step %d (%s): %s" % (walk.step, walk.op, e))
    walk.report()


if __name__ == "__main__":
    main()
