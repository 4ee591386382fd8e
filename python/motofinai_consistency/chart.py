"""The trend chart: errors and warnings per code over the last 30 days, as
server-rendered SVG (no script, no external asset; styled by the classes
below from the page's or the report's own stylesheet).

The layout, so that another program (the Rust ``check_consistency --html``)
can draw the same chart from the same numbers:

- Rows, top to bottom: "All errors" and "All warnings" (the day's totals of
  each severity), then one row per (code, severity) that has a finding in the
  window: errors first, then by the window's total (descending), then by code.
- Columns: the 30 days, oldest left, ending today (the database's
  ``current_date``). Each row is scaled to its own maximum.
- Geometry (user units = CSS pixels): ``LABEL_W`` = 230 for the labels,
  ``SLOT`` = 16 per day, on the right ``VALUE_W`` = 120 or, where the longest
  value label needs more, 16 + ``CHAR_W`` (8, a 12 px character's width
  with room to spare) per character of it; ``ROW_H`` = 30 per row,
  ``PAD_TOP`` = 6, ``AXIS_H`` = 22. Width = LABEL_W + 30 * SLOT + that;
  height = PAD_TOP + rows * ROW_H + AXIS_H. Row ``i``'s baseline is
  at y = PAD_TOP + i * ROW_H + BAR_MAX + 2 (BAR_MAX = 20).
- Day ``j`` of a row: a bar ``<rect class="bar bar-SEVERITY">`` at x = LABEL_W
  + j * SLOT + 2, width BAR_W = 12, height = max(1, round(count * BAR_MAX /
  row max, 1)), standing on the baseline; with ``data-day`` (YYYY-MM-DD),
  ``data-code`` ("" for the totals), ``data-severity``, ``data-count`` and a
  ``<title>`` "YYYY-MM-DD CODE (SEVERITY): COUNT". A day with a run and no
  finding has no bar; a day without a run has ``<rect class="norun">`` of
  height 2 on the baseline, titled "YYYY-MM-DD: no check run".
- Labels: the row's label right-aligned at x = LABEL_W - 8 ("✗ " before an
  error code, "⚠ " before a warning code); on the right, at x = LABEL_W + 30 *
  SLOT + 8, "latest N · max M" (N: the count at the last day with a run).
- Axis: under the rows, the days j = 29, 22, 15, 8, 1 labelled MM-DD, centred
  at x = LABEL_W + j * SLOT + SLOT / 2, y = height - 6.
- Numbers are written with at most one decimal, without trailing zeros.
"""
from html import escape

LABEL_W, SLOT, BAR_W, VALUE_W, CHAR_W = 230, 16, 12, 120, 8
ROW_H, BAR_MAX, PAD_TOP, AXIS_H = 30, 20, 6, 22
MARKS = {"error": "✗", "warning": "⚠"}


def num(value):
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def rows_of(trend):
    """The chart's rows: dicts of label, code ('' for totals), severity, counts
    {day: n}, total, latest, max, new and resolved (None unless the extension
    gives them)."""
    last_run_day = max((d for d in trend.days if d in trend.run_days), default=None)
    rows = []
    for severity, label in (("error", "All errors"), ("warning", "All warnings")):
        counts = {}
        for (code, sev), per_day in trend.counts.items():
            if sev == severity:
                for day, n in per_day.items():
                    counts[day] = counts.get(day, 0) + n
        rows.append(_row(label, "", severity, counts, last_run_day, trend))
    per_code = [_row(f"{MARKS.get(sev, '')} {code}".strip(), code, sev, per_day, last_run_day, trend)
                for (code, sev), per_day in trend.counts.items()]
    per_code = [r for r in per_code if r["total"] > 0 or (r["new"] or 0) > 0 or (r["resolved"] or 0) > 0]
    per_code.sort(key=lambda r: (r["severity"] != "error", -r["total"], r["code"]))
    return rows + per_code


def _row(label, code, severity, counts, last_run_day, trend):
    counts = {d: n for d, n in counts.items() if d in trend.days}
    key = (code, severity)
    new = resolved = None
    if trend.new is not None:
        if code:
            new, resolved = trend.new.get(key, 0), trend.resolved.get(key, 0)
        else:
            new = sum(n for (c, s), n in trend.new.items() if s == severity)
            resolved = sum(n for (c, s), n in trend.resolved.items() if s == severity)
    return {"label": label, "code": code, "severity": severity, "counts": counts,
            "total": sum(counts.values()), "max": max(counts.values(), default=0),
            "latest": counts.get(last_run_day, 0) if last_run_day else 0, "new": new, "resolved": resolved}


def value_label(row):
    return f'latest {row["latest"]} · max {row["max"]}'


def svg(trend, rows, title="Errors and warnings per code, last 30 days"):
    n = len(trend.days)
    width = LABEL_W + n * SLOT + max([VALUE_W] + [16 + CHAR_W * len(value_label(row)) for row in rows])
    height = PAD_TOP + len(rows) * ROW_H + AXIS_H
    out = [f'<svg id="trend-chart" class="mf-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'aria-labelledby="trend-chart-title trend-chart-desc">',
           f'<title id="trend-chart-title">{escape(title)}</title>',
           f'<desc id="trend-chart-desc">One row per severity total and per code, one column per day from '
           f'{trend.days[0].isoformat()} to {trend.days[-1].isoformat()}; bar height relative to the row\'s '
           f'maximum. The table below has the same figures.</desc>']
    for i, row in enumerate(rows):
        base = PAD_TOP + i * ROW_H + BAR_MAX + 2
        kind = "total" if not row["code"] else "code"
        out.append(f'<g class="row row-{kind}" data-code="{escape(row["code"])}" data-severity="{row["severity"]}">')
        out.append(f'<text class="label" x="{LABEL_W - 8}" y="{base}" text-anchor="end">{escape(row["label"])}</text>')
        out.append(f'<line class="baseline" x1="{LABEL_W}" y1="{base}" x2="{LABEL_W + n * SLOT}" y2="{base}"/>')
        for j, day in enumerate(trend.days):
            x = LABEL_W + j * SLOT + (SLOT - BAR_W) // 2
            iso = day.isoformat()
            if day not in trend.run_days:
                out.append(f'<rect class="norun" x="{x}" y="{base - 2}" width="{BAR_W}" height="2">'
                           f'<title>{iso}: no check run</title></rect>')
                continue
            count = row["counts"].get(day, 0)
            if count <= 0:
                continue
            h = max(1.0, round(count * BAR_MAX / row["max"], 1))
            what = f'{row["code"]} ({row["severity"]})' if row["code"] else row["label"].lower()
            out.append(f'<rect class="bar bar-{row["severity"]}" x="{x}" y="{num(base - h)}" width="{BAR_W}" '
                       f'height="{num(h)}" data-day="{iso}" data-code="{escape(row["code"])}" '
                       f'data-severity="{row["severity"]}" data-count="{count}">'
                       f'<title>{iso} {escape(what)}: {count}</title></rect>')
        out.append(f'<text class="value" x="{LABEL_W + n * SLOT + 8}" y="{base}">{value_label(row)}</text>')
        out.append("</g>")
    axis_y = height - 6
    for j in range(n - 1, -1, -7):
        x = LABEL_W + j * SLOT + SLOT // 2
        out.append(f'<text class="axis" x="{x}" y="{axis_y}" text-anchor="middle">'
                   f'{trend.days[j].strftime("%m-%d")}</text>')
    out.append("</svg>")
    return "\n".join(out)
