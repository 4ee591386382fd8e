"""Shared by the Consistency page's tests (client and browser): check history
made from scratch, users with the page's permissions, and the page's HTML
read back (with the standard library's parser)."""
from html.parser import HTMLParser

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from support import sql, value

PAGE = "/admin/motofinai_consistency/consistency/"
VIEW = "motofinai_consistency.view_consistency"
APPLY = "motofinai_consistency.apply_consistency_fixes"
ACCEPT = "motofinai_consistency.accept_consistency_findings"
TABLES = {"loan": "loans_loanapplication", "schedule": "loans_paymentschedule", "payment": "payments_payment",
          "motor": "inventory_motor"}


def has(name):
    """Whether the extension has motofinai.<name> (a relation or a function)."""
    return value("SELECT to_regclass(%s) IS NOT NULL OR EXISTS (SELECT FROM pg_proc WHERE proname = %s "
                 "AND pronamespace = to_regnamespace('motofinai'))", [f"motofinai.{name}", name])


def reset_history():
    """No runs, no history, nothing accepted."""
    for table in ("finding_history", "accepted_findings", "check_runs", "changed_loans"):
        if value("SELECT to_regclass(%s) IS NOT NULL", [f"motofinai.{table}"]):
            sql(f"DELETE FROM motofinai.{table}")


def user(name, *perms, staff=True):
    """A user (made or reset) with exactly these permissions ("app_label.codename")."""
    model = get_user_model()
    u, _ = model.objects.get_or_create(username=name)
    u.is_staff, u.is_superuser, u.is_active = staff, False, True
    u.save()
    u.user_permissions.set([Permission.objects.get(content_type__app_label=p.split(".")[0],
                                                   codename=p.split(".")[1]) for p in perms])
    return model.objects.get(pk=u.pk)   # a fresh instance: no cached permissions


def versions():
    """{(table, id): version} of every row of the four versioned tables."""
    rows = sql(" UNION ALL ".join(f"SELECT '{t}', id, version FROM {t}" for t in TABLES.values()))
    return {(t, i): v for t, i, v in rows}


class Page(HTMLParser):
    """The parts of a page the tests read: elements by id, table rows with their
    data-* attributes and cells' text, links, forms' inputs."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.html = html
        self.stack, self.ids, self.rows, self.links, self.inputs = [], {}, [], [], []
        self._row = self._cell = None
        self._text = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        table = next((a.get("id") or a.get("class") for t, a in reversed(self.stack) if t == "table"), None)
        if tag not in ("input", "br", "meta", "link", "img", "rect", "line"):
            self.stack.append((tag, attrs))
        if "id" in attrs:
            self.ids[attrs["id"]] = attrs
        if tag == "tr":
            head = any(t == "thead" for t, _ in self.stack)
            self._row = {"table": table, "attrs": attrs, "cells": [], "links": [], "head": head}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "a":
            self.links.append(attrs.get("href"))
            if self._row is not None:
                self._row["links"].append(attrs.get("href"))
        elif tag == "input":
            self.inputs.append(attrs)

    def handle_endtag(self, tag):
        while self.stack and self.stack[-1][0] != tag:
            self.stack.pop()
        if self.stack:
            self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def table(self, name):
        """Body rows (outside thead) of the table with this id or class."""
        return [r for r in self.rows if r["table"] == name and not r["head"]]

    def findings(self):
        return [r for r in self.rows if r["table"] == "findings-table" and "data-code" in r["attrs"]]

    def repairs(self):
        return [r for r in self.rows if r["table"] == "repairs-table" and "data-code" in r["attrs"]]

    def hidden(self, name):
        return next((i.get("value") for i in self.inputs if i.get("name") == name), None)
