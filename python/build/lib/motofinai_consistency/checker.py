"""``ConsistencyChecker``: the seed's four checks, each one query to the extension.

The extension knows the rules (its ``consistency_report``); this returns
the seed's ``{"errors": [...], "warnings": [...]}``.
"""
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from .db import fetch_dicts, fetch_value, from_jsonb, identifier

# The extension's check functions, by the command's and the report's scope names.
CHECK_FUNCTIONS = {
    "loan": "motofinai.check_loan_consistency",
    "payment": "motofinai.check_payment_consistency",
    "motor": "motofinai.check_inventory_consistency",
    "system": "motofinai.check_system_consistency",
    "structure": "motofinai.check_structural_consistency",
    "quick": "motofinai.check_quick_consistency",
}


def consistency_report(scope, entity_id=None, using=DEFAULT_DB_ALIAS):
    """``motofinai.consistency_report(scope, id)``: the seed's errors/warnings dict."""
    return from_jsonb(fetch_value("SELECT motofinai.consistency_report(%s, %s)", [scope, entity_id], using))


def findings(scope, entity_id=None, using=DEFAULT_DB_ALIAS):
    """Every finding of a check as a dict: severity, code, entity, entity_id, message, details."""
    try:
        function = CHECK_FUNCTIONS[scope]
    except KeyError:
        raise ValueError(f"unknown check scope {scope!r}; one of {', '.join(CHECK_FUNCTIONS)}") from None
    args, params = ("%s", [entity_id]) if entity_id is not None else ("", [])
    return fetch_dicts(f"SELECT severity, code, entity, entity_id, message, details FROM {function}({args})",
                       params, using)


class ConsistencyChecker:
    """The seed's checker. Ids may be given as model instances too (the seed's
    ``execute_with_consistency_check`` passes the operation's result)."""

    @staticmethod
    def check_loan_consistency(loan_id, using=DEFAULT_DB_ALIAS):
        return consistency_report("loan", identifier(loan_id, "loan_id"), using)

    @staticmethod
    def check_payment_consistency(payment_id, using=DEFAULT_DB_ALIAS):
        return consistency_report("payment", identifier(payment_id, "payment_id"), using)

    @staticmethod
    def check_inventory_consistency(motor_id, using=DEFAULT_DB_ALIAS):
        return consistency_report("motor", identifier(motor_id, "motor_id"), using)

    @staticmethod
    def check_system_consistency(using=DEFAULT_DB_ALIAS):
        """Everything, in one statement; with the seed's ``timestamp`` key."""
        issues = consistency_report("system", None, using)
        issues["timestamp"] = timezone.now().isoformat()
        return issues
