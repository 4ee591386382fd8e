"""``RaceConditionDetector``: the seed's monitoring calls, answered by the
extension (which also has conflict counts and lock waits the seed could not see)."""
from django.db import DEFAULT_DB_ALIAS

from .db import fetch_value, from_jsonb, quoted_table


def _ids_as_keys(model_class, objects):
    # The extension reports keys as text (any key type); the seed gave model pks.
    for obj in objects:
        obj["id"] = model_class._meta.pk.to_python(obj["id"])
    return objects


class RaceConditionDetector:
    @staticmethod
    def detect_version_conflicts(model_class, hours=1, using=DEFAULT_DB_ALIAS):
        """Rows changed in the last ``hours`` with the highest versions: the seed's
        ``detected_at``, ``time_window_hours``, ``high_version_objects`` (id, version,
        last_modified), plus ``table`` and ``conflict_stats``."""
        if isinstance(hours, bool) or not isinstance(hours, int) or hours < 0:
            raise ValueError(f"hours must be a non-negative integer, not {hours!r}")
        report = from_jsonb(fetch_value("SELECT motofinai.detect_version_conflicts(%s::regclass, %s)",
                                        [quoted_table(model_class), hours], using))
        _ids_as_keys(model_class, report["high_version_objects"])
        return report

    @staticmethod
    def detect_deadlocks(model_class, using=DEFAULT_DB_ALIAS):
        """The seed's ``detected_at`` and ``objects_with_high_versions``, plus the
        database's ``deadlocks_total``, current ``lock_waits`` and ``lock_timeouts``."""
        report = from_jsonb(fetch_value("SELECT motofinai.detect_deadlocks(%s::regclass)",
                                        [quoted_table(model_class)], using))
        _ids_as_keys(model_class, report["objects_with_high_versions"])
        return report
