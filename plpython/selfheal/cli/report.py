"""The Before / After report: the per-signature table for a terminal and a self-contained HTML page.

Client side only; the server never imports this module. Fetching (fetch_*) is kept apart from
rendering (render_*), which takes plain data and needs no database.
"""

from __future__ import annotations

import html
import io
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..core.wording import plural

NICE_BUCKETS = [1, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400]
# The chart draws the busiest signatures one by one and groups the rest, so it reads the same
# with 1 signature or 300.
TOP_SERIES = 7
SERIES_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
OTHER_COLOUR = "#9a9a9a"
OTHER_GID = "series-other"

# A signature never repaired is split where selfheal decided about it, so "after" covers both.
AFTER_WORDING = "occurred after selfheal repaired or decided about their cause"
AUDIT_UNREADABLE = ("This role may not read selfheal.audit, so what each repair did, why errors were left "
                    "for review and the proposals waiting for approval are not shown.")


@dataclass(frozen=True)
class Repair:
    """One applied change a report row points at; action and names are None when audit is unreadable."""

    audit_id: int
    at: datetime
    action: str | None = None
    table: str | None = None
    column: str | None = None
    undone: bool = False

    @property
    def label(self) -> str:
        target = ".".join(_shorten(n, 40) for n in (self.table, self.column) if n)
        words = [f"#{self.audit_id}", self.action or "repair", target, "(undone)" if self.undone else ""]
        return " ".join(w for w in words if w)


@dataclass(frozen=True)
class Proposal:
    """A change selfheal planned but runs only on selfheal.approve."""

    audit_id: int
    action: str
    table: str | None
    column: str | None
    reason: str
    ddl: str | None


@dataclass
class ReportData:
    """Everything the page shows, fetched once."""

    rows: list[dict]
    timeline: list[tuple]
    bucket_seconds: int
    repairs: list[Repair] = field(default_factory=list)
    pending: list[Proposal] = field(default_factory=list)
    review_reasons: dict[str, str] = field(default_factory=dict)
    audit_readable: bool = True


@dataclass(frozen=True)
class Series:
    gid: str
    label: str
    counts: tuple[int, ...]


# -- fetching --------------------------------------------------------------------------------

def fetch_report(conn) -> list[dict]:
    cur = conn.execute("SELECT * FROM selfheal.report()")
    names = [c.name for c in cur.description]
    return [dict(zip(names, row)) for row in cur]


def pick_bucket(rows: list[dict]) -> int:
    """Seconds per bucket so the timeline has about 40 buckets, repairs included."""
    summary = rows[-1] if rows else None
    if not summary or summary["first_seen"] is None:
        return 60
    end = max(summary["last_seen"], summary["healed_at"] or summary["last_seen"])
    span = (end - summary["first_seen"]).total_seconds()
    return next((b for b in NICE_BUCKETS if span / b <= 40), NICE_BUCKETS[-1])


def fetch_timeline(conn, bucket_seconds: int) -> list[tuple]:
    return conn.execute("SELECT bucket_start, signature, occurrences FROM selfheal.timeline(%s)",
                        (timedelta(seconds=bucket_seconds),)).fetchall()


def _report_repairs(rows: list[dict]) -> list[Repair]:
    """The repairs the report rows point at, once each, in time order."""
    first = {}
    for row in _signature_rows(rows):
        if row["audit_id"] is not None and row["healed_at"] is not None:
            first.setdefault(row["audit_id"], Repair(row["audit_id"], row["healed_at"], undone=row["status"] == "undone"))
    return sorted(first.values(), key=lambda r: (r.at, r.audit_id))


def _latest_decisions(conn, signatures: set[str]) -> dict[str, tuple[str | None, int | None]]:
    """Per signature, the reason and audit row of its latest processed error."""
    cur = conn.execute('SELECT DISTINCT ON (e."signature_key") e."signature", e."reason", e."audit_id" '
                       'FROM selfheal."error_event" e WHERE e."processed_at" IS NOT NULL '
                       'ORDER BY e."signature_key", e."id" DESC')
    return {signature: (reason, audit_id) for signature, reason, audit_id in cur if signature in signatures}


def fetch_data(conn) -> ReportData:
    """Everything build_html shows. A role that may read the report but not all of selfheal.audit
    still gets the page, without what only the audit holds."""
    import psycopg

    rows = fetch_report(conn)
    bucket = pick_bucket(rows)
    data = ReportData(rows, fetch_timeline(conn, bucket), bucket, repairs=_report_repairs(rows))
    decisions = _latest_decisions(conn, {r["signature"] for r in _left_for_review(rows)})
    audit_reasons: dict[int, str] = {}
    try:
        with conn.transaction():  # a savepoint: a refusal must not end the caller's transaction
            found = {row[0]: row[1:] for row in conn.execute(
                'SELECT "id", "action", "table_name", "column_name" FROM selfheal."audit" WHERE "id" = ANY(%s)',
                ([r.audit_id for r in data.repairs],))}
            data.repairs = [Repair(r.audit_id, r.at, *found.get(r.audit_id, (None, None, None)), undone=r.undone)
                            for r in data.repairs]
            data.pending = [Proposal(*row) for row in conn.execute(
                'SELECT "id", "action", "table_name", "column_name", "reason", "ddl" FROM selfheal."audit" '
                "WHERE \"status\" = 'pending_approval' AND \"decided_by\" IS NULL ORDER BY \"id\"")]
            audit_reasons = dict(conn.execute('SELECT "id", "reason" FROM selfheal."audit" WHERE "id" = ANY(%s)',
                                              ([a for _, a in decisions.values() if a is not None],)).fetchall())
    except psycopg.errors.InsufficientPrivilege:
        data.audit_readable = False
    # The event's own reason first: it says why this error was left; the audit's is the decision's.
    data.review_reasons = {signature: reason or audit_reasons.get(audit_id) or ""
                           for signature, (reason, audit_id) in decisions.items()}
    return data


def build_html(conn, title: str) -> str:
    """The whole HTML page for the database behind conn."""
    return render_html(fetch_data(conn), title)


# -- text ------------------------------------------------------------------------------------

def _signature_rows(rows: list[dict]) -> list[dict]:
    """The rows without the summary row report() ends with."""
    return rows[:-1]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _errors(row: dict) -> int:
    return row["before_repair"] + row["after_repair"]


def _left_for_review(rows: list[dict]) -> list[dict]:
    return [r for r in _signature_rows(rows) if r["status"] == "needs review"]


def _summary_sentence(rows: list[dict]) -> str:
    summary = rows[-1]
    return (f"{plural(_errors(summary), 'error')} in {plural(len(_signature_rows(rows)), 'signature')}; "
            f"{_share(summary['share_eliminated'])} had a cause selfheal repaired; "
            f"{summary['after_repair']} {AFTER_WORDING}.")


def _review_sentence(review: list[dict]) -> str:
    return (f"{plural(sum(_errors(r) for r in review), 'error')} in "
            f"{plural(len(review), 'signature')}.")


HEADERS = ["error signature", "status", "before", "after", "time to heal", "audit id"]


def _has_errors(rows: list[dict]) -> bool:
    return bool(rows) and rows[-1]["before_repair"] is not None


def render_text(rows: list[dict], width: int = 70) -> str:
    """The report as an aligned table for a terminal."""
    if not _has_errors(rows):
        return "selfheal: no errors recorded yet\n"
    body = [_cells(r) for r in _signature_rows(rows)]
    for cells in body:
        cells[0] = _shorten(cells[0], width)
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(HEADERS)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    out = [line(HEADERS), "  ".join("-" * w for w in widths)] + [line(c) for c in body]
    out += ["", _summary_sentence(rows)]
    review = _left_for_review(rows)
    if review:
        out.append("Left for review (never repaired automatically): " + _review_sentence(review))
    return "\n".join(out) + "\n"


# -- chart -----------------------------------------------------------------------------------

def bucket_name(bucket_seconds: int) -> str:
    """'minute', '5 minutes', '30 seconds': the bucket as the y axis names it."""
    for unit, seconds in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if bucket_seconds % seconds == 0:
            count = bucket_seconds // seconds
            return unit if count == 1 else plural(count, unit)
    raise ValueError(bucket_seconds)


def bucket_edges(timeline: list[tuple], bucket_seconds: int, repairs: list[Repair] = ()) -> list[datetime]:
    """Every bucket from the first error's or repair's to the last's, gaps included."""
    step = timedelta(seconds=bucket_seconds)
    first = min(t[0] for t in timeline)
    # A repair whose errors have expired may come before the first error left: reach back to it.
    earliest = min([first] + [r.at for r in repairs])
    first -= math.ceil((first - earliest) / step) * step
    end = max([t[0] + step for t in timeline] + [r.at for r in repairs])
    edges = [first]
    while edges[-1] < end or len(edges) < 2:
        edges.append(edges[-1] + step)
    return edges


def chart_series(timeline: list[tuple], edges: list[datetime]) -> list[Series]:
    """Counts per bucket, zero where a bucket had no error: the busiest signatures each, the
    rest summed as one series."""
    index = {start: i for i, start in enumerate(edges[:-1])}
    counts: dict[str, list[int]] = {}
    for start, signature, occurrences in timeline:
        counts.setdefault(signature, [0] * len(index))[index[start]] += occurrences
    ranked = sorted(counts, key=lambda s: (-sum(counts[s]), s))
    # Grouping a single signature as "other" would hide its name for nothing.
    shown = ranked if len(ranked) <= TOP_SERIES + 1 else ranked[:TOP_SERIES]
    series = [Series(f"series-{i}", s, tuple(counts[s])) for i, s in enumerate(shown)]
    rest = ranked[len(shown):]
    if rest:
        summed = tuple(map(sum, zip(*(counts[s] for s in rest))))
        series.append(Series(OTHER_GID, f"other ({plural(len(rest), 'signature')})", summed))
    return series


def _repair_groups(repairs: list[Repair], x_of, close_px: float) -> list[list[Repair]]:
    """Repairs whose markers fall within close_px of each other, in time order."""
    groups: list[list[Repair]] = []
    for repair in repairs:
        if groups and x_of(repair) - x_of(groups[-1][0]) <= close_px:
            groups[-1].append(repair)
        else:
            groups.append([repair])
    return groups


# Markers closer than a line of label text share one label; it names at most this many.
GROUP_PX = 12
MAX_LINES_PER_GROUP = 5


def _group_label(group: list[Repair]) -> str:
    if len(group) == 1:
        return group[0].label
    ids = ", ".join(f"#{r.audit_id}" for r in group[:2 * MAX_LINES_PER_GROUP])
    lines = [f"repairs {ids}" + (", …" if len(group) > 2 * MAX_LINES_PER_GROUP else "")]
    lines += [r.label for r in group[:MAX_LINES_PER_GROUP]]
    if len(group) > MAX_LINES_PER_GROUP:
        lines.append(f"… and {len(group) - MAX_LINES_PER_GROUP} more")
    return "\n".join(lines)


def _stagger_labels(texts: list, renderer, axes_box, pad: float, lowest_share: float) -> tuple[float, list]:
    """Move each label down until it overprints no earlier one. A label that would reach below
    lowest_share of the plot's height is hidden. Returns the share of the height labels use and
    the labels hidden."""
    placed, hidden = [], []
    for text in texts:
        box = text.get_window_extent(renderer)
        top = axes_box.y1 - pad
        while True:
            clash = [b for b in placed if b.x0 - pad < box.x1 and box.x0 < b.x1 + pad
                     and b.y0 - pad < top and top - box.height < b.y1 + pad]
            if not clash:
                break
            top = min(b.y0 for b in clash) - pad
        if top - box.height < axes_box.y1 - lowest_share * axes_box.height:
            text.set_visible(False)
            hidden.append(text)
            continue
        text.set_y((top - axes_box.y0) / axes_box.height)
        placed.append(text.get_window_extent(renderer))
    bottom = min((b.y0 for b in placed), default=axes_box.y1)
    return (axes_box.y1 - bottom) / axes_box.height, hidden


# Figure layout, in inches: fixed margins keep marker positions where the labels were measured.
FIG_WIDTH, PLOT_HEIGHT, TOP, LEFT, RIGHT, BELOW_PLOT, LEGEND_LINE = 10.0, 3.4, 0.45, 0.8, 0.25, 0.65, 0.21
# Share of a bucket's width left blank on each side of its bar, so neighbouring buckets stay apart.
BAR_GAP = 0.06


def render_chart_svg(timeline: list[tuple], bucket_seconds: int, repairs: list[Repair]) -> tuple[str, int]:
    """The timeline as inline SVG: stacked bars per signature, a dashed line per repair.
    Returns the SVG and how many repairs have a marker but no label for want of room."""
    # Imported here: the text report and the CLI's other commands do not pay for matplotlib.
    import matplotlib
    from matplotlib import dates as mdates
    from matplotlib import transforms
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    repairs = sorted(repairs, key=lambda r: (r.at, r.audit_id))
    edges = bucket_edges(timeline, bucket_seconds, repairs)
    series = chart_series(timeline, edges)
    zone = edges[0].tzinfo
    x_edges = mdates.date2num(edges)
    legend_height = LEGEND_LINE * len(series) + 0.15
    height = TOP + PLOT_HEIGHT + BELOW_PLOT + legend_height
    # svg.fonttype none keeps text as text; text.parse_math off keeps a "$" in a name literal.
    with matplotlib.rc_context({"svg.fonttype": "none", "text.parse_math": False, "svg.hashsalt": "selfheal",
                                "font.size": 9}):
        fig = Figure(figsize=(FIG_WIDTH, height))
        FigureCanvasAgg(fig)  # measuring labels needs a renderer; Agg, chosen here and not globally
        ax = fig.add_axes((LEFT / FIG_WIDTH, (BELOW_PLOT + legend_height) / height,
                           (FIG_WIDTH - LEFT - RIGHT) / FIG_WIDTH, PLOT_HEIGHT / height))
        bucket = bucket_name(bucket_seconds)
        ax.set_title(f"Errors per {bucket} by signature, and the repairs", loc="left", fontsize=11)
        ax.set_ylabel(f"errors per {bucket}")
        ax.set_xlabel(f"time ({edges[0].tzname() or 'UTC'})")
        ax.grid(True, color="#e4e4e4", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        locator = mdates.AutoDateLocator(tz=zone, minticks=3, maxticks=12)
        # Steps of 2 as well, so a 12-second or 12-minute span gets more than two ticks.
        locator.intervald[mdates.SECONDLY] = locator.intervald[mdates.MINUTELY] = [1, 2, 5, 10, 15, 30]
        ax.xaxis.set_major_locator(locator)
        # Seconds are labelled with the hour and minute, so "13:30:41" reads without the offset.
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
            locator, tz=zone, formats=["%Y", "%b", "%d", "%H:%M", "%H:%M", "%H:%M:%S.%f"],
            zero_formats=["", "%Y", "%b", "%b-%d", "%H:%M", "%H:%M"],
            offset_formats=["", "%Y", "%Y-%b", "%Y-%b-%d", "%Y-%b-%d", "%Y-%b-%d"]))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(x_edges[0], x_edges[-1])

        # Stacked bars, one per bucket: a bucket without errors has none, and single errors stay single.
        below = [0] * (len(edges) - 1)
        colours = iter(SERIES_COLOURS)
        gap = (x_edges[1] - x_edges[0]) * BAR_GAP
        for s in series:
            above = [b + c for b, c in zip(below, s.counts)]
            bars = PolyCollection(
                [[(x0 + gap, b), (x0 + gap, t), (x1 - gap, t), (x1 - gap, b)]
                 for x0, x1, b, t in zip(x_edges, x_edges[1:], below, above) if t > b],
                facecolors=OTHER_COLOUR if s.gid == OTHER_GID else next(colours), edgecolors="none",
                label=f"{_shorten(s.label, 110)} ({plural(sum(s.counts), 'error')})")
            bars.set_gid(s.gid)
            ax.add_collection(bars, autolim=False)
            below = above
        peak = max(below)

        for repair in repairs:
            line = ax.axvline(mdates.date2num(repair.at), color="#999" if repair.undone else "#222",
                              linestyle="--", linewidth=1, zorder=3)
            line.set_gid(f"repair-{repair.audit_id}")

        renderer = fig.canvas.get_renderer()
        x_px = lambda r: ax.transData.transform((mdates.date2num(r.at), 0))[0]
        groups = _repair_groups(repairs, x_px, close_px=GROUP_PX)
        # x in data, y as a share of the plot's height, a few points beside the marker.
        beside = lambda points: transforms.offset_copy(ax.get_xaxis_transform(), fig=fig, x=points, units="points")
        texts = []
        for group in groups:
            text = ax.text(mdates.date2num(group[0].at), 1, _group_label(group), transform=beside(4),
                           va="top", ha="left", fontsize=8, color="#222", zorder=4,
                           bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1})
            if text.get_window_extent(renderer).x1 > ax.bbox.x1:  # no room on the right: write it on the left
                text.set_transform(beside(-4))
                text.set_horizontalalignment("right")
            texts.append(text)
        used, hidden = _stagger_labels(texts, renderer, ax.bbox, pad=3, lowest_share=0.5)
        unlabelled = sum(len(g) for g, t in zip(groups, texts) if t in hidden)
        # Headroom above the tallest bar for the labels, so they never cover the data; at least
        # 0, 1 and 2 on the axis, so a single error reads as one of a scale.
        ax.set_ylim(0, max(peak, 2) / (1 - used - 0.04) if used else max(peak, 2) * 1.08)

        fig.legend(loc="upper left", bbox_to_anchor=(LEFT / FIG_WIDTH, legend_height / height),
                   frameon=False, fontsize=8.5, handlelength=1.2, borderaxespad=0)
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return _inline_svg(out.getvalue()), unlabelled


def _inline_svg(document: str) -> str:
    """The SVG element alone, fit for an HTML page: no XML prolog or DOCTYPE, and no namespace
    URLs (the HTML parser supplies the namespaces), so the page names no address anywhere."""
    svg = document[document.index("<svg"):]
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg, count=2)
    svg = svg.replace("xlink:href=", "href=")
    svg = re.sub(r'<svg width="[^"]*" height="[^"]*"',
                 '<svg role="img" aria-label="errors per time bucket and repairs"', svg, count=1)
    return svg.strip()


# -- page ------------------------------------------------------------------------------------

def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _target(table: str | None, column: str | None) -> str:
    return ".".join(n for n in (table, column) if n) or "-"


def _chart_section(data: ReportData) -> str:
    if not data.timeline:
        return "<p>No errors recorded.</p>"
    svg, unlabelled = render_chart_svg(data.timeline, data.bucket_seconds, data.repairs)
    bucket = bucket_name(data.bucket_seconds)
    note = (f"Each bar counts the errors of one {bucket}; a {bucket} without errors has no bar. "
            "Dashed lines are repairs, named by audit id.")
    if unlabelled:
        note += f" {plural(unlabelled, 'repair')} without a label for lack of room: see Repairs below."
    return f'<figure class="chart">{svg}<figcaption>{_e(note)}</figcaption></figure>'


def _repairs_section(data: ReportData) -> str:
    if not data.repairs:
        return ""
    items = "".join(f"<tr><td>#{r.audit_id}</td><td>{_e(r.at.strftime('%Y-%m-%d %H:%M:%S'))}</td>"
                    f"<td>{_e(r.action or '-')}</td><td>{_e(_target(r.table, r.column))}</td>"
                    f"<td>{'undone' if r.undone else 'applied'}</td></tr>" for r in data.repairs)
    return ("<h2>Repairs</h2><table><thead><tr><th>audit id</th><th>at</th><th>action</th>"
            f"<th>table.column</th><th>now</th></tr></thead><tbody>{items}</tbody></table>")


def _review_section(data: ReportData) -> str:
    review = _left_for_review(data.rows)
    if not review:
        return ""
    items = "".join(f"<tr><td>{_e(r['signature'])}</td><td>{plural(_errors(r), 'error')}</td>"
                    f"<td>{_e(data.review_reasons.get(r['signature']) or '-')}</td></tr>" for r in review)
    return (f"<h2>Left for review</h2><p>Never repaired automatically: {_review_sentence(review)}</p>"
            f"<table><thead><tr><th>error signature</th><th>errors</th><th>why</th></tr></thead>"
            f"<tbody>{items}</tbody></table>")


def _pending_section(data: ReportData) -> str:
    if not data.audit_readable:
        return ""
    if not data.pending:
        return "<h2>Waiting for approval</h2><p>No proposal is waiting for approval.</p>"
    items = "".join(
        f'<li class="proposal"><p><strong>#{p.audit_id} {_e(p.action)} {_e(_target(p.table, p.column))}</strong>: '
        f"{_e(p.reason)}</p>"
        + (f"<p>It would run:</p><pre>{_e(p.ddl)}</pre>" if p.ddl else "")
        + f"<p>Apply it: <code>SELECT selfheal.approve({p.audit_id});</code> "
          f"or refuse it: <code>SELECT selfheal.reject({p.audit_id}, 'why');</code></p></li>"
        for p in data.pending)
    return (f"<h2>Waiting for approval</h2><p>{plural(len(data.pending), 'proposal')} selfheal will not "
            f"apply until approved:</p><ul class=\"proposals\">{items}</ul>")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 960px; color: #222; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin-bottom: 1rem; }
th, td { padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
table.signatures td:nth-child(n+3) { text-align: right; font-variant-numeric: tabular-nums; }
tr.healed td:nth-child(2) { color: #2ca02c; font-weight: 600; }
tr.needs-review td:nth-child(2) { color: #d62728; }
figure.chart { margin: 0; }
figure.chart svg { width: 100%; height: auto; }
figcaption { font-size: 13px; color: #555; }
.notice { background: #fff4d6; padding: 6px 10px; }
ul.proposals { list-style: none; padding: 0; }
li.proposal { border-left: 3px solid #ff7f0e; padding-left: 10px; margin-bottom: 1rem; }
pre { background: #f4f4f4; padding: 6px; white-space: pre-wrap; }
"""


def render_html(data: ReportData, title: str) -> str:
    """A self-contained page: headline, chart, per-signature table, repairs, what was left for
    review and the proposals waiting for approval. Every name is escaped: signatures come from
    error text that applications wrote."""
    rows = data.rows
    headline = _summary_sentence(rows) if _has_errors(rows) else "No errors recorded yet."
    table_rows = "\n".join(
        f'<tr class="{_e(r["status"].replace(" ", "-"))}">'
        + "".join(f"<td>{_e(c)}</td>" for c in _cells(r)) + "</tr>" for r in _signature_rows(rows))
    notice = "" if data.audit_readable else f'<p class="notice">{_e(AUDIT_UNREADABLE)}</p>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{_e(title)}</h1>
<p>{_e(headline)}</p>
{notice}
{_chart_section(data)}
<h2>By error signature</h2>
<table class="signatures"><thead><tr>{''.join(f'<th>{h}</th>' for h in HEADERS)}</tr></thead>
<tbody>
{table_rows}
</tbody></table>
{_repairs_section(data)}
{_review_section(data)}
{_pending_section(data)}
</body></html>
"""
