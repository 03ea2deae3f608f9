"""The Before / After report: the per-signature table for a terminal and a self-contained HTML page.

Client side only; the server never imports this module.
"""

from __future__ import annotations

import html
from datetime import timedelta

NICE_BUCKETS = [1, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400]
COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


# A signature never repaired is split where selfheal decided about it, so "after" covers both.
AFTER_WORDING = "occurred after selfheal repaired or decided about their cause"

def fetch_report(conn) -> list[dict]:
    cur = conn.execute("SELECT * FROM selfheal.report()")
    names = [c.name for c in cur.description]
    return [dict(zip(names, row)) for row in cur]


def pick_bucket(rows: list[dict]) -> int:
    """Seconds per bucket so the timeline has about 40 points."""
    summary = rows[-1] if rows else None
    if not summary or summary["first_seen"] is None:
        return 60
    span = (summary["last_seen"] - summary["first_seen"]).total_seconds()
    return next((b for b in NICE_BUCKETS if span / b <= 40), NICE_BUCKETS[-1])


def fetch_timeline(conn, bucket_seconds: int) -> list[tuple]:
    return conn.execute("SELECT bucket_start, signature, occurrences FROM selfheal.timeline(%s)",
                        (timedelta(seconds=bucket_seconds),)).fetchall()


def _duration(value) -> str:
    if value is None:
        return "-"
    seconds = value.total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _share(value) -> str:
    return "-" if value is None else f"{value}%"


def _cells(row: dict) -> list[str]:
    return [row["signature"], row["status"], str(row["before_repair"]), str(row["after_repair"]),
            _duration(row["time_to_heal"]), "-" if row["audit_id"] is None else str(row["audit_id"])]


HEADERS = ["error signature", "status", "before", "after", "time to heal", "audit id"]


def render_text(rows: list[dict], width: int = 70) -> str:
    """The report as an aligned table for a terminal."""
    if not rows or rows[-1]["before_repair"] is None:
        return "selfheal: no errors recorded yet\n"
    body = [_cells(r) for r in rows[:-1]]
    for cells in body:
        if len(cells[0]) > width:
            cells[0] = cells[0][: width - 1] + "…"
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(HEADERS)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    out = [line(HEADERS), "  ".join("-" * w for w in widths)] + [line(c) for c in body]
    summary = rows[-1]
    total = summary["before_repair"] + summary["after_repair"]
    out.append("")
    out.append(f"{total} errors in {len(body)} signatures; {_share(summary['share_eliminated'])} had a cause "
               f"selfheal repaired; {summary['after_repair']} {AFTER_WORDING}.")
    review = [r for r in rows[:-1] if r["status"] == "needs review"]
    if review:
        out.append("Left for review (never repaired automatically): "
                   f"{sum(r['before_repair'] + r['after_repair'] for r in review)} errors in "
                   f"{len(review)} signatures.")
    return "\n".join(out) + "\n"


def _svg_timeline(rows: list[dict], timeline: list[tuple], bucket_seconds: int) -> str:
    if not timeline:
        return "<p>No errors recorded.</p>"
    width, height, left, bottom, top, right = 900, 320, 50, 40, 20, 20
    starts = sorted({t[0] for t in timeline})
    first, last = starts[0], starts[-1] + timedelta(seconds=bucket_seconds)
    span = max((last - first).total_seconds(), 1)
    peak = max(t[2] for t in timeline)
    x = lambda when: left + (when - first).total_seconds() / span * (width - left - right)
    y = lambda count: height - bottom - count / peak * (height - bottom - top)
    volume = {r["signature"]: r["before_repair"] + r["after_repair"] for r in rows[:-1]}
    shown = sorted(volume, key=lambda s: -volume[s])[: len(COLOURS)]
    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="errors per bucket over time">',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#333"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#333"/>',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11">{peak}</text>',
             f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" font-size="11">0</text>',
             f'<text x="{left}" y="{height - 8}" font-size="11">{html.escape(first.strftime("%Y-%m-%d %H:%M:%S"))}</text>',
             f'<text x="{width - right}" y="{height - 8}" text-anchor="end" font-size="11">'
             f'{html.escape(last.strftime("%H:%M:%S"))}</text>']
    for colour, signature in zip(COLOURS, shown):
        counts = {t[0]: t[2] for t in timeline if t[1] == signature}
        points = " ".join(f"{x(s) + 2:.1f},{y(counts.get(s, 0)):.1f}" for s in starts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
                     f"<title>{html.escape(signature)}</title></polyline>")
    # Repairs a few pixels apart share one marker, so their labels never overprint.
    marks: list[tuple[float, list[int]]] = []
    for row in sorted((r for r in rows[:-1] if r["healed_at"] is not None), key=lambda r: r["healed_at"]):
        hx = min(max(x(row["healed_at"]), left), width - right)
        if marks and hx - marks[-1][0] < 40:
            marks[-1][1].append(row["audit_id"])
        else:
            marks.append((hx, [row["audit_id"]]))
    for hx, ids in marks:
        label = ("repair #" if len(ids) == 1 else "repairs #") + ", #".join(str(i) for i in ids)
        parts.append(f'<line x1="{hx:.1f}" y1="{top}" x2="{hx:.1f}" y2="{height - bottom}" stroke="#555" '
                     f'stroke-dasharray="4 3"><title>{label}</title></line>')
        parts.append(f'<text x="{hx + 4:.1f}" y="{top + 10}" font-size="11" fill="#555">{label}</text>')
    parts.append("</svg>")
    legend = "".join(f'<li><span style="background:{c}"></span>{html.escape(s)}</li>' for c, s in zip(COLOURS, shown))
    return "\n".join(parts) + f'<ul class="legend">{legend}</ul>'


def render_html(rows: list[dict], timeline: list[tuple], bucket_seconds: int, title: str) -> str:
    """A self-contained page: the per-signature table and the timeline chart."""
    summary = rows[-1] if rows else {"before_repair": None}
    table_rows = "\n".join(
        f'<tr class="{html.escape(r["status"].replace(" ", "-"))}">'
        + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>" for r in rows[:-1])
    headline = "No errors recorded yet." if summary["before_repair"] is None else (
        f"{summary['before_repair'] + summary['after_repair']} errors; "
        f"<strong>{_share(summary['share_eliminated'])}</strong> had a cause selfheal repaired; "
        f"{summary['after_repair']} {AFTER_WORDING}.")
    bucket = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}.get(
        bucket_seconds, f"{bucket_seconds} s" if bucket_seconds < 60 else f"{bucket_seconds // 60} min")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 960px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 14px; }}
th, td {{ padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; }}
td:nth-child(n+3) {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.healed td:nth-child(2) {{ color: #2ca02c; font-weight: 600; }}
tr.needs-review td:nth-child(2) {{ color: #d62728; }}
.legend {{ list-style: none; padding: 0; font-size: 13px; }}
.legend span {{ display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: middle; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{headline}</p>
<h2>Errors per {bucket}, before and after each repair</h2>
{_svg_timeline(rows, timeline, bucket_seconds)}
<h2>By error signature</h2>
<table><thead><tr>{''.join(f'<th>{h}</th>' for h in HEADERS)}</tr></thead>
<tbody>
{table_rows}
</tbody></table>
</body></html>
"""


def build_html(conn, title: str) -> str:
    """The whole HTML page for the database behind conn."""
    rows = fetch_report(conn)
    bucket = pick_bucket(rows)
    return render_html(rows, fetch_timeline(conn, bucket), bucket, title)
