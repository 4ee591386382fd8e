"""The "Consistency" page of the Django admin: whether the books are
consistent and where the collisions are (docs/django.md, "The Consistency page").

Registered on ``django.contrib.admin.site`` by the package's ``admin``
module; on a custom site: ``site.register(Consistency, ConsistencyAdmin)``.

Permissions (``motofinai_consistency`` app; superusers have all):

- ``view_consistency``: the page and its report;
- ``apply_consistency_fixes``: apply the planned repairs, record a check run;
- ``accept_consistency_findings``: accept a finding, withdraw an acceptance.

What the database role may do still applies on top (the extension's
functions are ``SECURITY INVOKER``): a refusal is shown as a message.
"""
import math
from datetime import datetime, time
from urllib.parse import urlencode

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS, DatabaseError
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone

from . import dashboard, html_report
from .conf import setting
from .models import Consistency

# Where each finding entity lives, by table (the Motofinai schema's).
ENTITY_TABLES = {"loan": "loans_loanapplication", "schedule": "loans_paymentschedule",
                 "payment": "payments_payment", "motor": "inventory_motor", "stock": "inventory_stock"}
ACCEPTED_CHOICES = [("hide", "hide"), ("show", "show"), ("only", "only those")]
APPLY_PERMISSION = "motofinai_consistency.apply_consistency_fixes"
ACCEPT_PERMISSION = "motofinai_consistency.accept_consistency_findings"


class Links:
    """Admin change-page URLs of findings' rows, for this user: a link only
    where the model is registered on this site and the user may see it."""

    def __init__(self, admin_site, request):
        self.site, self.request, self._models = admin_site, request, {}
        configured = setting("ENTITY_MODELS") or {}
        self.by_table = {m._meta.db_table: m for m in apps.get_models()}
        self.by_entity = {}
        for entity, table in ENTITY_TABLES.items():
            model = apps.get_model(configured[entity]) if entity in configured else self.by_table.get(table)
            self.by_entity[entity] = model
        for entity, label in configured.items():
            self.by_entity.setdefault(entity, apps.get_model(label))

    def _allowed(self, model):
        if model not in self._models:
            model_admin = self.site._registry.get(model)
            self._models[model] = model_admin is not None and (
                model_admin.has_view_permission(self.request) or model_admin.has_change_permission(self.request))
        return self._models[model]

    def url(self, model, pk):
        if model is None or pk is None or not self._allowed(model):
            return None
        try:
            return reverse(f"{self.site.name}:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])
        except NoReverseMatch:
            return None

    def entity(self, entity, pk):
        return self.url(self.by_entity.get(entity), pk)

    def table(self, table_text, pk):
        name = (table_text or "").rsplit(".", 1)[-1].strip('"')
        return self.url(self.by_table.get(name), pk)


class AcceptForm(forms.Form):
    code = forms.CharField(widget=forms.HiddenInput, max_length=100)
    entity = forms.CharField(widget=forms.HiddenInput, max_length=100)
    entity_id = forms.IntegerField(widget=forms.HiddenInput, required=False)
    reason = forms.CharField(label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Why this finding is acceptable (kept with the acceptance)")
    until = forms.DateField(label="Accepted until", required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            help_text="the acceptance ends at the start of this day; empty: no expiry")
    all_entities = forms.BooleanField(label="every finding with this code on this kind of entity", required=False)

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason.")
        return reason

    def clean_until(self):
        until = self.cleaned_data["until"]
        if until is not None and until <= timezone.localdate():
            raise forms.ValidationError("The date must be after today.")
        return until

    def until_datetime(self):
        until = self.cleaned_data["until"]
        if until is None:
            return None
        return timezone.make_aware(datetime.combine(until, time.min), timezone.get_current_timezone())


class ConsistencyAdmin(admin.ModelAdmin):
    using = DEFAULT_DB_ALIAS

    # --- the admin's machinery: one page, no objects --------------------------

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view   # login, staff, CSRF, never cached
        return [
            path("", wrap(self.page_view), name="%s_%s_changelist" % info),
            path("apply/", wrap(self.apply_view), name="%s_%s_apply" % info),
            path("accept/", wrap(self.accept_view), name="%s_%s_accept" % info),
            path("unaccept/", wrap(self.unaccept_view), name="%s_%s_unaccept" % info),
            path("run/", wrap(self.run_view), name="%s_%s_run" % info),
            path("report.html", wrap(self.report_view), name="%s_%s_report" % info),
        ]

    def changelist_view(self, request, extra_context=None):
        return self.page_view(request)

    def _url(self, name):
        return reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{name}")

    def _require(self, request, permission=None):
        if not self.has_view_permission(request) or (permission and not request.user.has_perm(permission)):
            raise PermissionDenied

    def _log(self, request, message):
        LogEntry.objects.create(user_id=request.user.pk, content_type=ContentType.objects.get_for_model(Consistency),
                                object_id=None, object_repr="Consistency", action_flag=CHANGE,
                                change_message=message[:2000])

    # --- the page -------------------------------------------------------------

    def page_view(self, request, apply_result=None, plan_loans=None):
        self._require(request)
        return TemplateResponse(request, "admin/motofinai_consistency/consistency/page.html",
                                self.page_context(request, apply_result, plan_loans))

    def scope_of(self, request, latest):
        scopes = sorted(latest, key=lambda s: (s != "system", s)) or ["system"]
        scope = request.GET.get("scope") or request.POST.get("scope") or scopes[0]
        return (scope if scope in scopes else scopes[0]), scopes

    def page_context(self, request, apply_result=None, plan_loans=None):
        using = self.using
        feats = dashboard.features(using)
        links = Links(self.admin_site, request)
        latest = dashboard.latest_by_scope(using, feats)
        scope, scopes = self.scope_of(request, latest)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": "Consistency",
                   **html_report.base_context(using, feats), **html_report.status_context(using, feats),
                   **html_report.trend_context(using, feats, scope),
                   "scope": scope, "scopes": scopes, "severities": dashboard.SEVERITIES,
                   "accepted_choices": ACCEPTED_CHOICES, "report_url": self._url("report"),
                   "run_url": self._url("run"), "apply_url": self._url("apply"),
                   "unaccept_url": self._url("unaccept")}
        can_apply = request.user.has_perm(APPLY_PERMISSION)
        can_accept = request.user.has_perm(ACCEPT_PERMISSION)
        context["can_apply"] = can_apply
        context["can_record"] = can_apply and feats.may_record and "run_check" in feats.functions

        # Findings, filtered and paginated.
        filters = dashboard.Filters.from_query(request.GET)
        try:
            page = int(request.GET.get("page", 1))
        except ValueError:
            page = 1
        findings = dashboard.panel(using, dashboard.findings_page, using, feats, scope, filters, page,
                                   max(1, int(setting("ADMIN_PAGE_SIZE"))))
        accept_allowed = can_accept and feats.accepting and feats.may_accept
        context["accept_url"] = self._url("accept") if accept_allowed else None
        if findings:
            for f in findings.data.rows:
                self._annotate(f, links, accept_allowed)
            self._loans_of_installments(using, findings.data.rows, links)
        query = {k: v for k, v in (("scope", scope), ("severity", filters.severity), ("code", filters.code),
                                   ("entity", filters.entity), ("new", "1" if filters.new else ""),
                                   ("accepted", filters.accepted if filters.accepted != "hide" else "")) if v}
        context.update(findings=findings, filters=filters, page_query=urlencode(query),
                       filtered=len(query) > 1,
                       findings_caption=f"Open findings of the latest {scope} check, errors first")

        # Repairs: what is repairable; the dry run only when asked.
        self._repairs_context(request, context, using, feats, scope, links, apply_result, plan_loans)

        # Accepted findings, and conflicts.
        if "accepted_findings" in feats.relations:
            context["accepted"] = dashboard.panel(using, dashboard.accepted_findings, using, feats)
            context["can_unaccept"] = can_accept and feats.may_unaccept and "unaccept_finding" in feats.functions
        conflicts = dashboard.panel(using, dashboard.conflicts, using, feats)
        if conflicts and conflicts.data.statistics != "on":
            context["statistics_off"] = conflicts.data.statistics.split(":", 1)[-1].strip()
        if conflicts:
            for table, rows in conflicts.data.hot_rows.items():
                for r in rows:
                    r["link"] = links.table(table, r["id"])
            for r in conflicts.data.recent:
                r["link"] = links.table(r["table_text"], r.get("key"))
        context["conflicts"] = conflicts
        return context

    def _annotate(self, f, links, accept_allowed):
        f["link"] = links.entity(f["entity"], f["entity_id"])
        details = dashboard.from_jsonb(f.get("details"))
        f["details"] = details
        f["details_text"] = dashboard.compact_json(details)
        f["loan_id"] = details.get("loan_id") if isinstance(details, dict) and f["entity"] != "loan" else None
        f["loan_link"] = links.entity("loan", f["loan_id"]) if f["loan_id"] else None
        if accept_allowed:
            f["accept_query"] = urlencode({k: v for k, v in (("code", f["code"]), ("entity", f["entity"]),
                                                             ("entity_id", f["entity_id"])) if v is not None})

    def _loans_of_installments(self, using, rows, links):
        """An installment's finding links to its loan too: details.loan_id, else
        (a history view without details) the installment's row."""
        missing = [f["entity_id"] for f in rows if f["entity"] == "schedule" and f["entity_id"] and not f["loan_id"]]
        if not missing:
            return
        result = dashboard.panel(using, dashboard.loans_of_installments, using, missing)
        for f in rows:
            if f["entity"] == "schedule" and not f["loan_id"] and f["entity_id"] in (result.data or {}):
                f["loan_id"] = result.data[f["entity_id"]]
                f["loan_link"] = links.entity("loan", f["loan_id"])

    def _repairs_context(self, request, context, using, feats, scope, links, apply_result, plan_loans):
        if not feats.history:
            context["repairs_note"] = f"Planned repairs: {dashboard.NOT_AVAILABLE} (they come from the findings)."
            return
        if "fix_consistency" not in feats.functions:
            context["repairs_note"] = "Repairs are not available in this extension version."
            return
        fixable = dashboard.panel(using, dashboard.fixable_loans, using, feats, scope)
        if fixable.error:
            context["repairs_note"] = f"The repairable findings could not be read: {fixable.error}"
            return
        loans = fixable.data
        context.update(fixable_loans=loans, fixable_codes=dashboard.fixable_codes(using, feats), plan=None)
        if apply_result is not None:
            for r in apply_result["rows"]:
                self._annotate_repair(r, links)
            context["apply_result"] = apply_result
        if plan_loans is None and request.GET.get("plan") != "1":
            return
        per_page = dashboard.PLAN_LOANS_PER_PAGE
        if plan_loans is None:
            pages = max(1, math.ceil(len(loans) / per_page))
            try:
                plan_page = min(max(1, int(request.GET.get("plan_page", 1))), pages)
            except ValueError:
                plan_page = 1
            plan_loans = loans[(plan_page - 1) * per_page:plan_page * per_page]
        else:
            pages, plan_page = 1, 1
        plan = dashboard.panel(using, dashboard.plan, using, plan_loans)
        if plan.error:
            context["repairs_note"] = f"The dry run failed: {plan.error}"
            return
        for r in plan.data:
            self._annotate_repair(r, links)
        applicable = [r for r in plan.data if not r["note"]]
        context.update(plan=plan.data, plan_loans=",".join(str(loan) for loan in plan_loans),
                       plan_digest=dashboard.plan_digest(plan.data), plan_applicable=len(applicable),
                       plan_page=plan_page, plan_pages=pages, plan_page_range=range(1, pages + 1),
                       plan_caption=f"The dry run for {len(plan_loans)} loan{'s' if len(plan_loans) != 1 else ''}: "
                                    "what applying will change, loan by loan")

    def _annotate_repair(self, r, links):
        r["link"] = links.entity(r["entity"], r["entity_id"])
        r["loan_link"] = links.entity("loan", r.get("loan"))

    # --- actions --------------------------------------------------------------

    def apply_view(self, request):
        """POST: apply the repairs of the loans the plan listed, only if they are
        exactly the planned ones (the plan's digest); the result on the page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, APPLY_PERMISSION)
        try:
            loans = [int(x) for x in request.POST.get("loans", "").split(",") if x.strip()]
        except ValueError:
            loans = []
        digest = request.POST.get("digest", "")
        if not loans or len(loans) > dashboard.PLAN_LOANS_PER_PAGE or not digest:
            messages.error(request, "No repairs to apply: show the planned repairs first.")
            return HttpResponseRedirect(self._url("changelist") + "#repairs")
        try:
            rows = dashboard.apply_plan(self.using, loans, digest)
        except dashboard.PlanChanged:
            return self.page_view(request, apply_result={"changed": True, "rows": []}, plan_loans=loans)
        except DatabaseError as exc:
            messages.error(request, f"The repairs were refused: {str(exc).strip().splitlines()[0]}")
            return HttpResponseRedirect(self._url("changelist") + "#repairs")
        applied = [r for r in rows if r["applied"]]
        blocked = [r for r in rows if not r["applied"]]
        self._log(request, f"Applied {len(applied)} consistency repair(s) on loan(s) "
                           f"{', '.join(str(loan) for loan in loans)}"
                           + (f"; {len(blocked)} not applied" if blocked else ""))
        return self.page_view(request, apply_result={"changed": False, "rows": rows, "applied": len(applied),
                                                     "blocked": len(blocked)})

    def accept_view(self, request):
        self._require(request, ACCEPT_PERMISSION)
        feats = dashboard.features(self.using)
        if not feats.accepting:
            messages.error(request, "Accepting findings is not available in this extension version.")
            return HttpResponseRedirect(self._url("changelist"))
        page_url = self._url("changelist")
        form = AcceptForm(request.POST if request.method == "POST" else None,
                          initial={k: request.GET.get(k) for k in ("code", "entity", "entity_id")})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            entity_id = None if data["all_entities"] else data["entity_id"]
            try:
                dashboard.accept(self.using, data["code"], data["entity"], entity_id, data["reason"],
                                 form.until_datetime())
            except DatabaseError as exc:
                form.add_error(None, f"The database refused: {str(exc).strip().splitlines()[0]}")
            else:
                what = f"{data['code']} on {data['entity']} {entity_id if entity_id is not None else '(all)'}"
                self._log(request, f"Accepted {what}: {data['reason']}")
                messages.success(request, f"Accepted {what}.")
                return HttpResponseRedirect(page_url + "#findings")
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": "Accept a finding",
                   "form": form, "page_url": page_url}
        return TemplateResponse(request, "admin/motofinai_consistency/consistency/accept.html", context)

    def unaccept_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, ACCEPT_PERMISSION)
        code, entity = request.POST.get("code", ""), request.POST.get("entity", "")
        raw_id = request.POST.get("entity_id", "").strip()
        try:
            entity_id = int(raw_id) if raw_id else None
            gone = dashboard.unaccept(self.using, code, entity, entity_id)
        except (ValueError, DatabaseError) as exc:
            messages.error(request, f"The acceptance was not withdrawn: {str(exc).strip().splitlines()[0]}")
        else:
            what = f"{code} on {entity} {entity_id if entity_id is not None else '(all)'}"
            if gone:
                self._log(request, f"Withdrew the acceptance of {what}")
                messages.success(request, f"Withdrew the acceptance of {what}.")
            else:
                messages.warning(request, f"{what} was not accepted.")
        return HttpResponseRedirect(self._url("changelist") + "#accepted")

    def run_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, APPLY_PERMISSION)
        scope = request.POST.get("scope")
        if scope not in ("system", "quick"):
            messages.error(request, "Unknown check scope.")
        else:
            try:
                run = dashboard.record_run(self.using, scope)
            except DatabaseError as exc:
                messages.error(request, f"The check was not recorded: {str(exc).strip().splitlines()[0]}")
            else:
                self._log(request, f"Recorded {scope} check run {run['id']}")
                messages.success(request, f"Recorded {scope} check run {run['id']}: {run['errors']} error(s), "
                                          f"{run['warnings']} warning(s).")
        return HttpResponseRedirect(self._url("changelist") + f"?{urlencode({'scope': scope or 'system'})}")

    def report_view(self, request):
        self._require(request)
        feats = dashboard.features(self.using)
        scope, _ = self.scope_of(request, dashboard.latest_by_scope(self.using, feats))
        html = html_report.report_from_history(self.using, scope)
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="motofinai-consistency-{scope}-{stamp}.html"'
        return response


def register(site=None):
    site = site or admin.site
    if not site.is_registered(Consistency):
        site.register(Consistency, ConsistencyAdmin)


__all__ = ["ConsistencyAdmin", "Consistency", "register"]
