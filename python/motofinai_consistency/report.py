"""What ``check_consistency`` prints: the seed's text, line for line, or one
JSON document (the Rust ``check_consistency``'s, key for key)."""
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal

RULE = "=" * 50
HINT = "Run with --fix flag to attempt automatic fixes (use with caution)"


@dataclass
class Phase:
    header: str
    findings: list
    # None where the phase's findings came from a statement several phases
    # share (--all): the statement's time is reported once, after them.
    ms: int | None = 0

    def of(self, errors):
        return [f for f in self.open() if (f["severity"] == "error") == errors]

    def open(self):
        """The findings that count: accepted ones (details.accepted) never do."""
        return [f for f in self.findings if not is_accepted(f)]

    def accepted(self):
        return [f for f in self.findings if is_accepted(f)]


def is_accepted(finding):
    details = finding.get("details")
    return isinstance(details, dict) and "accepted" in details


def timed_phase(header, run):
    started = time.monotonic()
    findings = run()
    return Phase(header, findings, int((time.monotonic() - started) * 1000))


def _json_default(value):
    if isinstance(value, Decimal):
        return float(value)  # as the Rust command's JSON numbers
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def compact(value):
    return json.dumps(value, default=_json_default, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@dataclass
class Report:
    write: callable          # the command's stdout.write
    style: object            # the command's style (colors only on a terminal)
    verbose: bool = False
    limit: int = 20
    as_json: bool = False
    all_findings: bool = False  # list accepted findings too (--all-findings)
    doc: dict = field(default_factory=dict)  # the JSON document's extra parts

    def say(self, line, style_func=None):
        if not self.as_json:
            self.write(line, style_func)

    def start(self):
        self.say("Starting consistency checks...")

    def note(self, line):
        self.say(f"\n{line}")
        if self.as_json:
            self.doc.setdefault("notes", []).append(line)

    def phase(self, phase):
        self.say(f"\n{phase.header}", self.style.MIGRATE_HEADING)
        errors, warnings = phase.of(True), phase.of(False)
        if not errors and not warnings:
            self.say("  ✓ No issues found", self.style.SUCCESS)
        if errors:
            self.say(f"  ✗ {len(errors)} error(s) found:", self.style.ERROR)
            self._list(errors)
        if warnings:
            self.say(f"  ⚠ {len(warnings)} warning(s) found:", self.style.WARNING)
            self._list(warnings)
        accepted = phase.accepted()
        if accepted and self.all_findings:
            self.say(f"  ◦ {len(accepted)} accepted finding(s), not counted:")
            self._list(accepted)
        elif accepted:
            self.say(f"  ({len(accepted)} accepted finding(s) not counted; --all-findings lists them)")
        if self.verbose and phase.ms is not None:
            self.say(f"  ({phase.ms} ms)")

    def shared_time(self, ms, what):
        """The time of one statement several phases shared: a line with
        --verbose, "ms" in the JSON document."""
        if self.verbose:
            self.say(f"  ({ms} ms, {what})")
        self.doc["ms"] = ms

    def resolved(self, header, findings):
        """What a recorded run found gone (--since-last)."""
        self.say(f"\n{header}", self.style.MIGRATE_HEADING)
        if not findings:
            self.say("  (nothing)")
        self._list(findings)
        self.doc["resolved"] = [{k: f[k] for k in ("code", "entity", "entity_id")} for f in findings]

    def _list(self, findings):
        for f in findings[:self.limit]:
            if self.verbose:
                entity = f["entity"] + (f" {f['entity_id']}" if f["entity_id"] is not None else "")
                self.say(f"    - [{f['code']}] {f['message']} ({entity}) {compact(f['details'])}")
            else:
                self.say(f"    - {f['message']}")
        if len(findings) > self.limit:
            self.say(f"    ... and {len(findings) - self.limit} more")

    def fixes(self, title, fixes):
        """Planned or applied repairs, as the Rust command lists them: a repair the
        extension will not (or did not) apply is listed apart with its ``note``."""
        ready = [f for f in fixes if not f.get("note")]
        blocked = [f for f in fixes if f.get("note")]
        if not fixes:
            self.say("\nNo automatic fixes available.")
        for heading, group in ((title, ready), ("Blocked fixes (not applied):", blocked)):
            if group:
                self.say(f"\n{heading}", self.style.MIGRATE_HEADING)
            for f in group:
                entity = f["entity"] + (f" {f['entity_id']}" if f["entity_id"] is not None else "")
                self.say(f"    - [{f['code']}] {entity}: {f['summary']}")
                if f.get("note"):
                    self.say(f"    ! {f['note']}", self.style.WARNING)
        key = "applied_fixes" if title.startswith("Applied") else "planned_fixes"
        self.doc[key] = [{k: f.get(k) for k in ("code", "entity", "entity_id", "changes", "applied", "note")}
                         for f in fixes]
        return len(ready)

    def finish(self, phases, hint):
        """The closing block (or the JSON document); returns the number of errors."""
        found = [f for p in phases for f in p.open()]
        errors = sum(1 for f in found if f["severity"] == "error")
        warnings = len(found) - errors
        if self.as_json:
            codes = {}
            for f in found:
                codes[f["code"]] = codes.get(f["code"], 0) + 1
            doc = {
                "errors": [f["message"] for f in found if f["severity"] == "error"],
                "warnings": [f["message"] for f in found if f["severity"] != "error"],
                "counts": {"errors": errors, "warnings": warnings},
                "codes": codes,
                "findings": found,
                "phases": [{"phase": p.header, "findings": len(p.findings), "ms": p.ms} for p in phases],
                **self.doc,
            }
            self.write(json.dumps(doc, default=_json_default, ensure_ascii=False), None)
            return errors
        self.say(f"\n{RULE}")
        self.say("Consistency check completed")
        self.say(f"Errors found: {errors}")
        self.say(f"Warnings found: {warnings}")
        if hint and errors:
            self.say(f"\n{HINT}", self.style.WARNING)
        return errors
