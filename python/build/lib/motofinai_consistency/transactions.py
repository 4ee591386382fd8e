"""``TransactionConsistency``: the seed's multi-step helpers."""
import json

from django.core.exceptions import FieldDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, IntegrityError, models, transaction

from . import exceptions
from .db import CONSISTENCY_CONSTRAINT, diagnostics, fetch_value, from_jsonb, identifier, quoted_table, sqlstate


class TransactionConsistency:
    @staticmethod
    def execute_with_consistency_check(operation_func, *args, consistency_check_func=None, **kwargs):
        """Run ``operation_func(*args, **kwargs)`` in one transaction and return its result.

        As the seed: ``consistency_check_func(result)`` reporting errors rolls
        everything back and raises the conflict exception (code
        ``consistency_check_failed``, ``details`` = the report). Without one,
        the extension's COMMIT-time check (``enforce_consistency``) failing at
        the end of this block is raised the same way.
        """
        try:
            with transaction.atomic():
                result = operation_func(*args, **kwargs)
                if consistency_check_func is not None:
                    issues = consistency_check_func(result)
                    if issues["errors"]:
                        raise exceptions.concurrency_error("Operation failed consistency check",
                                                           exceptions.CONSISTENCY_CHECK_FAILED, issues)
        except IntegrityError as exc:
            constraint, _table, message, detail = diagnostics(exc)
            if sqlstate(exc) != "23514" or constraint != CONSISTENCY_CONSTRAINT:
                raise
            raise exceptions.concurrency_error(message, exceptions.CONSISTENCY_CHECK_FAILED,
                                               from_jsonb(detail)) from exc
        return result

    @staticmethod
    def safe_update_with_version(model_class, instance_id, current_version, update_fields,
                                 using=DEFAULT_DB_ALIAS):
        """Update ``update_fields`` ({field: value}) of one row in one statement, if it is
        still at ``current_version``; return the updated model instance."""
        if not isinstance(update_fields, dict) or not update_fields:
            raise ValueError("update_fields must be a non-empty dict of {field name: new value}")
        columns = _columns(model_class, update_fields)
        row = fetch_value(
            "SELECT motofinai.safe_update_with_version(%s::regclass, %s, %s, %s::jsonb)",
            [quoted_table(model_class), identifier(instance_id, "instance_id"),
             identifier(current_version, "current_version"), json.dumps(columns, cls=DjangoJSONEncoder)],
            using)
        return instance_from_row(model_class, from_jsonb(row), using)


def _columns(model_class, update_fields):
    """{field name: value} as {column: JSON-ready value}; foreign keys by instance or id."""
    columns = {}
    for name, value in update_fields.items():
        try:
            field = model_class._meta.get_field(name)
        except FieldDoesNotExist:
            raise ValueError(f"{model_class.__name__} has no field {name!r}") from None
        if not field.concrete or field.many_to_many:
            raise ValueError(f"{model_class.__name__}.{name} is not a column and cannot be updated this way")
        if isinstance(value, models.Model):
            value = value.pk
        elif value is not None and not field.is_relation:
            value = field.to_python(value)
        columns[field.column] = value
    return columns


def instance_from_row(model_class, row, using=DEFAULT_DB_ALIAS):
    """A model instance from the extension's row as jsonb (column -> value)."""
    fields = model_class._meta.concrete_fields
    values = [None if row.get(f.column) is None else f.to_python(row[f.column]) for f in fields]
    return model_class.from_db(using, [f.attname for f in fields], values)
