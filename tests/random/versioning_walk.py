#!/usr/bin/env python3
"""Part B of tests/random/run.sh: seeded random walks of versioning operations.

On a small test table and on a Motofinai table (payments_payment), in a
database run.sh prepared, each step is one of: enable_versioning (default or
random options, sometimes other columns than the registered ones, sometimes a
column name that needs quoting), disable_versioning, ALTER TABLE (add, drop,
rename an unrelated column; DISABLE/ENABLE TRIGGER motofinai_versioning), a
manual CREATE OR REPLACE TRIGGER drifting from the registration, and now and
then a pg_dump / pg_restore round trip into a fresh database. After each step
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
import sys
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
    """A psql run: its output lines, and the messages it printed (level, SQLSTATE, text, fields)."""

    MESSAGE = re.compile(r"\b(ERROR|WARNING|NOTICE):  ([0-9A-Z]{5}): (.*)$")
    FIELD = re.compile(r"^(?:psql:[^:]*:\d+: )?([A-Z ]+ NAME):  (.*)$")

    def __init__(self, proc):
        self.rc = proc.returncode
        self.lines = [l for l in proc.stdout.splitlines() if l != ""]
        self.messages = []
        for line in proc.stderr.splitlines():
            m = self.MESSAGE.search(line)
            if m:
                self.messages.append({"level": m.group(1), "state": m.group(2), "text": m.group(3)})
            f = self.FIELD.match(line)
            if f and self.messages:
                self.messages[-1][f.group(1).lower()] = f.group(2)
        self.stderr = proc.stderr

    def errors(self):
        return [m for m in self.messages if m["level"] == "ERROR"]

    def notices(self):
        return [m["text"] for m in self.messages if m["level"] == "NOTICE"]

    def sqlstate(self):
        errs = self.errors()
        return errs[0]["state"] if errs else ("ok" if self.rc == 0 else "psql exit %d" % self.rc)


def psql(db, sql, stop=True):
    cmd = ["psql", "-X", "-q", "-At", "-v", "VERBOSITY=verbose", "-v", "ON_ERROR_STOP=%d" % stop, "-d", db, "-f", "-"]
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
        self.probe_id = None


STATE_SQL = r"""
SELECT json_build_object(
  'config', (SELECT json_build_object('args', ARRAY[version_column::text, modified_column::text, protocol, strict::text],
                                      'row', to_jsonb(c))
               FROM motofinai.versioning_config c WHERE c.tbl = {t}::regclass),
  'view', (SELECT to_jsonb(v) FROM motofinai.versioned_tables v WHERE v.table_name = {t}::regclass),
  'trigger', (SELECT json_build_object('oid', oid, 'enabled', tgenabled::text,
                                       'args', (string_to_array(encode(tgargs, 'escape'), '\000'))[1:tgnargs])
                FROM pg_trigger WHERE tgrelid = {t}::regclass AND tgname = 'motofinai_versioning'),
  'columns', (SELECT json_agg(attname ORDER BY attnum) FROM pg_attribute
               WHERE attrelid = {t}::regclass AND attnum > 0 AND NOT attisdropped),
  'indexes', (SELECT json_agg(pg_get_indexdef(indexrelid) ORDER BY pg_get_indexdef(indexrelid)) FROM pg_index
               WHERE indrelid = {t}::regclass),
  'findings', (SELECT coalesce(json_agg(json_build_object('check', f.chk, 'code', f.code) ORDER BY f.chk, f.code), '[]')
                 FROM (SELECT 'system' AS chk, code, details FROM motofinai.check_system_consistency()
                       UNION ALL
                       SELECT 'quick', code, details FROM motofinai.check_quick_consistency()) f
                WHERE f.code LIKE 'versioning%' AND (f.details ->> 'table')::regclass = {t}::regclass));
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
        return not any(f for _, f in self.results.values())

    def state(self, table):
        r = psql(self.db, STATE_SQL.format(t=literal(table.name)))
        if r.rc != 0:
            raise RuntimeError("state of %s: %s" % (table.name, r.stderr))
        return json.loads(r.lines[-1])

    # -- steps ---------------------------------------------------------------
    def run(self):
        for t in self.tables:
            t.probe_id = int(psql(self.db, "SELECT min(id) FROM %s;" % t.name).lines[0])
        self.op = "start"
        self.verify()
        weights = {"enable": 4, "disable": 1.5, "add_column": 1, "drop_column": 1, "rename_column": 1,
                   "quoted_column": 0.5, "disable_trigger": 1, "enable_trigger": 1, "drift": 1.2,
                   "dump_restore": 0.15}
        names = list(weights)
        for self.step in range(1, self.steps + 1):
            table = self.rng.choice(self.tables)
            kind = self.rng.choices(names, [weights[n] for n in names])[0]
            if kind == "dump_restore" and self.restores >= 3:
                kind = "enable"
            getattr(self, "do_" + kind)(table)
            self.verify()
        return self.db

    def do_enable(self, t):
        s = self.state(t)
        exists = set(s["columns"])
        # Default options, or random ones; the registered columns mostly, other ones sometimes.
        if self.rng.random() < 0.3:
            args = {}
            vc, mc = "version", "last_modified_at"
        else:
            if t.registered and self.rng.random() < 0.7:
                vc, mc = t.registered[0], t.registered[1]
            else:
                vc = self.rng.choice(VERSION_COLUMNS + (QUOTED_COLUMNS if not t.registered else []))
                mc = self.rng.choice(MODIFIED_COLUMNS)
            args = {"version_column": vc, "modified_column": mc,
                    "protocol": self.rng.choice(["expected", "increment"]),
                    "strict": self.rng.choice(["true", "false"]),
                    "create_index": self.rng.choice(["true", "false"])}
        self.op = "enable_versioning(%s%s)" % (t.name, "".join(", %s => %s" % kv for kv in args.items()))
        sql = "SELECT motofinai.enable_versioning(%s%s);" % (
            literal(t.name), "".join(", %s => %s" % (k, v if k in ("strict", "create_index") else literal(v))
                                     for k, v in args.items()))
        r = psql(self.db, sql)
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
            self.check("a refused enable_versioning leaves everything as it was",
                       self.snapshot(self.state(t)) == self.snapshot(s), "state changed")
        elif r.rc == 0:
            added = [c for c in (vc, mc) if c not in exists]
            notices = r.notices()
            missing = [c for c in added if not any(c in n for n in notices)]
            if added:
                self.check("enable_versioning NOTICEs each column it adds", not missing,
                           "added %s, NOTICEs %s" % (added, notices))
            t.registered = [vc, mc, args.get("protocol", "expected"), args.get("strict", "false")]
            t.drift = None
        self.resync(t)

    def do_disable(self, t):
        self.op = "disable_versioning(%s)" % t.name
        r = psql(self.db, "SELECT motofinai.disable_versioning(%s);" % literal(t.name))
        self.check("disable_versioning succeeds", r.rc == 0, r.stderr.strip())
        t.registered = None
        t.drift = None

    def do_add_column(self, t):
        name = "extra_%d" % self.step
        self.op = "ALTER TABLE %s ADD COLUMN %s" % (t.name, name)
        self.alter(t, "ALTER TABLE %s ADD COLUMN %s text DEFAULT 'x';" % (t.name, name))
        t.extras.append(name)

    def do_drop_column(self, t):
        if not t.extras:
            return self.do_add_column(t)
        name = t.extras.pop(self.rng.randrange(len(t.extras)))
        self.op = "ALTER TABLE %s DROP COLUMN %s" % (t.name, name)
        self.alter(t, "ALTER TABLE %s DROP COLUMN %s;" % (t.name, name))

    def do_rename_column(self, t):
        if not t.extras:
            return self.do_add_column(t)
        i = self.rng.randrange(len(t.extras))
        new = "extra_r%d" % self.step
        self.op = "ALTER TABLE %s RENAME %s TO %s" % (t.name, t.extras[i], new)
        self.alter(t, "ALTER TABLE %s RENAME COLUMN %s TO %s;" % (t.name, t.extras[i], new))
        t.extras[i] = new

    def do_quoted_column(self, t):
        # Add (or drop, when unused) a column whose name needs quoting, so
        # that enable_versioning may find it already there.
        name = self.rng.choice(QUOTED_COLUMNS)
        present = name in self.state(t)["columns"]
        if present and not (t.registered and name == t.registered[0]):
            self.op = "ALTER TABLE %s DROP COLUMN %s" % (t.name, ident(name))
            self.alter(t, "ALTER TABLE %s DROP COLUMN %s;" % (t.name, ident(name)))
        elif not present:
            self.op = "ALTER TABLE %s ADD COLUMN %s" % (t.name, ident(name))
            self.alter(t, "ALTER TABLE %s ADD COLUMN %s integer NOT NULL DEFAULT 1;" % (t.name, ident(name)))

    def do_disable_trigger(self, t, action="DISABLE"):
        if self.state(t)["trigger"] is None:
            return self.do_enable(t)
        self.op = "ALTER TABLE %s %s TRIGGER %s" % (t.name, action, TRIGGER)
        self.alter(t, "ALTER TABLE %s %s TRIGGER %s;" % (t.name, action, TRIGGER))

    def do_enable_trigger(self, t):
        self.do_disable_trigger(t, "ENABLE")

    def do_drift(self, t):
        s = self.state(t)
        if not t.registered or s["trigger"] is None:
            return self.do_enable(t)
        args = list(t.registered)
        which = self.rng.randrange(3)
        if which == 0:
            args[0] = DRIFT_COLUMN
        elif which == 1:
            args[2] = "increment" if args[2] == "expected" else "expected"
        else:
            args[3] = "true" if args[3] == "false" else "false"
        self.op = "drift: CREATE OR REPLACE TRIGGER on %s with %s" % (t.name, args)
        self.alter(t, "CREATE OR REPLACE TRIGGER %s BEFORE INSERT OR UPDATE ON %s FOR EACH ROW "
                      "EXECUTE FUNCTION motofinai.version_trigger(%s);"
                   % (TRIGGER, t.name, ", ".join(literal(a) for a in args)))
        t.drift = args

    def do_dump_restore(self, t):
        self.restores += 1
        src, dst = self.db, self.dbs[1] if self.db == self.dbs[0] else self.dbs[0]
        self.op = "pg_dump %s | pg_restore into %s" % (src, dst)
        before = [self.snapshot(self.state(x)) for x in self.tables]
        with tempfile.TemporaryDirectory() as tmp:
            dump = os.path.join(tmp, "walk.dump")
            steps = [[PG_BIN + "/pg_dump", "-Fc", "-d", src, "-f", dump],
                     ["psql", "-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % dst,
                      "-c", "CREATE DATABASE %s" % dst],
                     [PG_BIN + "/pg_restore", "--exit-on-error", "-d", dst, dump]]
            for cmd in steps:
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode != 0:
                    self.check("pg_dump / pg_restore round trip", False, "%s: %s" % (cmd[0], p.stderr.strip()))
                    return
        self.db = dst
        subprocess.run(["psql", "-X", "-q", "-d", "postgres", "-c", "DROP DATABASE %s WITH (FORCE)" % src],
                       capture_output=True)
        after = [self.snapshot(self.state(x)) for x in self.tables]
        self.check("pg_dump / pg_restore keeps registration, trigger, columns and indexes", before == after,
                   "before %s after %s" % (before, after))

    def alter(self, t, sql):
        r = psql(self.db, sql)
        self.check("ALTER TABLE / CREATE TRIGGER statements succeed", r.rc == 0, r.stderr.strip())

    @staticmethod
    def snapshot(s):
        """What a refused call must leave as it was (and a restore must keep, OIDs aside)."""
        trig = s["trigger"] and {k: v for k, v in s["trigger"].items() if k != "oid"}
        config = s["config"] and {k: v for k, v in s["config"]["row"].items() if k != "tbl"}
        return {"config": config, "trigger": trig, "columns": s["columns"], "indexes": s["indexes"]}

    def resync(self, t):
        """After an unexpected outcome, follow what the database now says, so one failure does not cascade."""
        s = self.state(t)
        t.registered = s["config"] and s["config"]["args"]
        if t.registered is None or s["trigger"] is None or s["trigger"]["args"] == t.registered:
            t.drift = None

    # -- invariants after every step -------------------------------------------
    def verify(self):
        for t in self.tables:
            s = self.state(t)
            config, view, trig = s["config"], s["view"], s["trigger"]
            registered = config and config["args"]
            self.check("the registration is what the steps made it", registered == t.registered,
                       "%s: registered %s, expected %s" % (t.name, registered, t.registered))
            t.registered = registered   # follow the database from here on: one failure, not a cascade
            if not registered:
                self.check("an unversioned table has no versioning trigger", trig is None, "%s: %s" % (t.name, trig))
                self.check("versioned_tables lists only registered tables", view is None, "%s: %s" % (t.name, view))
                t.drift = None
                continue
            args = trig and trig["args"]
            enabled = bool(trig) and trig["enabled"] != "D"
            self.check("the trigger's arguments are the registration unless a drift step changed them",
                       trig is None or args == (t.drift or registered),
                       "%s: trigger %s, registered %s, drift %s" % (t.name, args, registered, t.drift))
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
            if trig is not None and enabled and args == registered:
                self.probe(t, registered)
            t.drift = None if args == registered else args

    def probe(self, t, registered):
        """A stale stated version is refused with 40001 (motofinai_version_check); a current one is bumped."""
        vc, protocol = ident(registered[0]), registered[2]
        row = "FROM %s WHERE id = %d" % (t.name, t.probe_id)
        stored = "(SELECT %s %s)" % (vc, row)
        stale = stored + (" - 1" if protocol == "expected" else "")
        current = stored + (" + 1" if protocol == "increment" else "")
        col = t.probe_column
        r = psql(self.db, "SELECT %s %s;\n" % (vc, row)
                 + "UPDATE %s SET %s = %s, %s = %s WHERE id = %d;\n" % (t.name, col, col, vc, stale, t.probe_id)
                 + "UPDATE %s SET %s = %s, %s = %s WHERE id = %d RETURNING %s;\n" % (
                     t.name, col, col, vc, current, t.probe_id, vc), stop=False)
        errs = r.errors()
        self.check("a stale stated version is rejected with 40001 and constraint motofinai_version_check",
                   len(errs) >= 1 and errs[0]["state"] == "40001"
                   and errs[0].get("constraint name") == "motofinai_version_check",
                   "%s (%s): %s" % (t.name, registered, r.stderr.strip()[:300]))
        ok = len(r.lines) == 2 and len(errs) == 1 and int(r.lines[1]) == int(r.lines[0]) + 1
        self.check("a current stated version is accepted and bumped", ok,
                   "%s (%s): out %s, errors %s" % (t.name, registered, r.lines, errs[1:]))


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
    print("walk database: %s" % walk.db)


if __name__ == "__main__":
    sys.exit(main())
