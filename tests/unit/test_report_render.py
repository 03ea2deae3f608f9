"""The report's rendering, from plain data shaped like selfheal.report()'s and selfheal.timeline()'s."""

import re
from datetime import datetime, timedelta, timezone

from selfheal.cli import report

T0 = datetime(2026, 11, 24, 5, 0, tzinfo=timezone.utc)
COLUMN = 'column "recommendation_data" does not exist'


def row(signature, status, before, after, healed=None, audit=None, share=0):
    return {"signature": signature, "status": status, "before_repair": before, "after_repair": after,
            "first_seen": T0, "last_seen": T0 + timedelta(minutes=30), "healed_at": healed,
            "time_to_heal": (healed - T0) if healed else None, "share_eliminated": share, "audit_id": audit}


def summary(before, after, share=0.0):
    return row("(all errors)", "summary", before, after, share=share)


ROWS = [
    row(f"42703: {COLUMN}", "healed", 40, 0, T0 + timedelta(seconds=0.4), 1, 100),
    row("P0001: Cost calculation error", "needs review", 10, 0),
    summary(50, 0, 80.0),
]
TIMELINE = [(T0 + timedelta(minutes=m), ROWS[m % 2]["signature"], 5) for m in range(30)]
REPAIR = report.Repair(1, T0 + timedelta(seconds=0.4), "add_column", "sessions", "recommendation_data")
PROPOSAL = report.Proposal(9, "add_column", "users", "biography", "add_column policy is propose",
                           "ALTER TABLE public.users ADD COLUMN biography text")


def data(rows=ROWS, timeline=TIMELINE, bucket=60, **kwargs) -> report.ReportData:
    return report.ReportData(rows, timeline, bucket, **kwargs)


def svg_ids(page: str, prefix: str) -> list[str]:
    return re.findall(rf'<g id="({prefix}[^"]*)"', page)


def signatures(count: int) -> tuple[list[dict], list[tuple]]:
    """count signatures, the n-th with n + 1 errors in one burst."""
    names = [f'42703: column "col_{n}" does not exist' for n in range(count)]
    timeline = [(T0 + timedelta(minutes=n % 5), name, n + 1) for n, name in enumerate(names)]
    rows = [row(name, "needs review", n + 1, 0) for n, name in enumerate(names)]
    return rows + [summary(sum(r["before_repair"] for r in rows), 0)], timeline


# -- text --------------------------------------------------------------------------------------

def test_text_report_has_a_row_per_signature_and_the_summary():
    text = report.render_text(ROWS)
    lines = text.splitlines()
    assert lines[0].split() == ["error", "signature", "status", "before", "after", "time", "to", "heal", "audit", "id"]
    assert "healed" in lines[2] and lines[2].rstrip().endswith("400 ms         1")
    assert "50 errors in 2 signatures; 80.0% had a cause selfheal repaired" in text
    assert "Left for review (never repaired automatically): 10 errors in 1 signature." in text


def test_one_error_and_one_signature_are_singular():
    rows = [row("P0001: Cost calculation error", "needs review", 1, 0), summary(1, 0)]
    text = report.render_text(rows)
    assert "1 error in 1 signature;" in text and "1 errors" not in text and "1 signatures" not in text
    assert "review (never repaired automatically): 1 error in 1 signature." in text
    page = report.render_html(data(rows, [(T0, rows[0]["signature"], 1)]), "one")
    assert "1 error in 1 signature;" in page and "(1 error)" in page
    assert not re.search(r"\b1 (errors|signatures|repairs)\b", page)


def test_empty_report_says_so():
    assert "no errors recorded" in report.render_text([summary(None, None)])
    page = report.render_html(data([summary(None, None)], []), "empty")
    assert "No errors recorded yet." in page and "<svg" not in page


def test_errors_left_for_review_include_those_after_selfheal_decided():
    rows = [row("P0001: Cost calculation error", "needs review", 10, 7), summary(10, 7)]
    text = report.render_text(rows)
    assert "Left for review (never repaired automatically): 17 errors in 1 signature." in text
    assert "7 occurred after selfheal repaired or decided about their cause" in text


# -- chart data --------------------------------------------------------------------------------

def test_buckets_between_two_bursts_count_zero():
    name = f"42703: {COLUMN}"
    timeline = [(T0, name, 3), (T0 + timedelta(minutes=1), name, 2), (T0 + timedelta(minutes=9), name, 4)]
    edges = report.bucket_edges(timeline, 60)
    assert edges[0] == T0 and edges[-1] == T0 + timedelta(minutes=10) and len(edges) == 11
    (series,) = report.chart_series(timeline, edges)
    assert series.counts == (3, 2, 0, 0, 0, 0, 0, 0, 0, 4)


def test_the_chart_reaches_a_repair_after_the_last_error():
    timeline = [(T0, f"42703: {COLUMN}", 1)]
    late = report.Repair(1, T0 + timedelta(minutes=3, seconds=5))
    assert report.bucket_edges(timeline, 60, [late])[-1] == T0 + timedelta(minutes=4)
    assert report.chart_series(timeline, report.bucket_edges(timeline, 60, [late]))[0].counts == (1, 0, 0, 0)
    early = report.Repair(2, T0 - timedelta(minutes=1, seconds=30))  # its errors have expired
    assert report.bucket_edges(timeline, 60, [early]) == [T0 + timedelta(minutes=m) for m in (-2, -1, 0, 1)]


def test_one_signature_is_one_series():
    rows, timeline = signatures(1)
    page = report.render_html(data(rows, timeline), "one")
    assert svg_ids(page, "series-") == ["series-0"]


def test_thirty_signatures_show_the_busiest_seven_and_group_the_rest():
    rows, timeline = signatures(30)
    series = report.chart_series(timeline, report.bucket_edges(timeline, 60))
    assert [s.gid for s in series] == [f"series-{n}" for n in range(7)] + ["series-other"]
    assert series[0].label == 'col_29'.join(['42703: column "', '" does not exist'])  # the busiest first
    assert series[-1].label == "other (23 signatures)"
    assert sum(map(sum, (s.counts for s in series))) == sum(range(1, 31))  # nothing lost in grouping
    page = report.render_html(data(rows, timeline), "thirty")
    assert svg_ids(page, "series-") == [s.gid for s in series]
    assert "other (23 signatures) (276 errors)" in page  # in the legend


def test_eight_signatures_are_all_shown_rather_than_one_grouped_alone():
    rows, timeline = signatures(8)
    assert "series-other" not in [s.gid for s in report.chart_series(timeline, report.bucket_edges(timeline, 60))]


# -- chart drawing -----------------------------------------------------------------------------

def test_chart_has_titled_axes_integer_ticks_and_a_legend():
    page = report.render_html(data(repairs=[REPAIR]), "app")
    svg = page[page.index("<svg"):page.index("</svg>")]
    for text in ("Errors per minute by signature, and the repairs", "errors per minute", "time (UTC)",
                 "(75 errors)"):
        assert text in svg
    y_ticks = re.findall(r'<g id="ytick_\d+">.*?<text[^>]*>([^<]*)</text>', svg, re.S)
    assert len(y_ticks) >= 3 and all(t.isdigit() for t in y_ticks)
    assert re.search(r'<g id="legend_\d+">', svg)


def test_each_repair_has_a_named_marker():
    far = report.Repair(4, T0 + timedelta(minutes=20), "add_alias", "credit_packages", "package_name")
    page = report.render_html(data(repairs=[REPAIR, far]), "app")
    assert svg_ids(page, "repair-") == ["repair-1", "repair-4"]
    assert "#1 add_column sessions.recommendation_data" in page
    assert "#4 add_alias credit_packages.package_name" in page


def test_repairs_made_together_share_one_label_naming_each():
    together = [report.Repair(n, T0 + timedelta(seconds=1), "add_column", "sessions", f"c{n}") for n in (1, 2, 3)]
    svg, unlabelled = report.render_chart_svg(TIMELINE, 60, together)
    assert svg_ids(svg, "repair-") == ["repair-1", "repair-2", "repair-3"] and unlabelled == 0
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "repairs #1, #2, #3" in texts
    assert {"#1 add_column sessions.c1", "#2 add_column sessions.c2", "#3 add_column sessions.c3"} <= set(texts)


def test_labels_of_nearby_repairs_do_not_overprint():
    near = [report.Repair(n, T0 + timedelta(minutes=n), "add_column", "sessions", f"a_rather_long_name_{n}")
            for n in (1, 2)]
    svg, _ = report.render_chart_svg(TIMELINE, 60, near)
    # Each label is its own <text>; the second is moved below the first.
    heights = [float(re.search(rf'y="([\d.]+)"[^>]*>#{n} add_column', svg).group(1)) for n in (1, 2)]
    assert heights[1] > heights[0] + 8


def test_the_svg_is_inline_text_and_small():
    page = report.render_html(data(repairs=[REPAIR]), "app")
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page and "xlink" not in page
    assert "<metadata" not in page and "@font-face" not in page
    assert "<text" in page and len(page) < 100_000  # glyphs are not embedded as paths


# -- page --------------------------------------------------------------------------------------

def test_page_references_nothing_outside_itself():
    page = report.render_html(data(repairs=[REPAIR], pending=[PROPOSAL]), "app")
    assert page.startswith("<!doctype html>")
    assert "http" not in page and "src=" not in page and "<link" not in page and "url(" not in page.replace(
        "url(#", "")


def test_hostile_names_are_escaped_everywhere():
    hostile = "<script>alert('x')</script>\"><img onerror=alert(1)>"
    rows = [row(f"42P01: relation \"{hostile}\" does not exist", "needs review", 1, 0),
            row(f"42703: column \"{hostile}\" does not exist", "healed", 1, 0, T0, 7, 100), summary(2, 0)]
    timeline = [(T0, r["signature"], 1) for r in rows[:-1]]
    page = report.render_html(data(
        rows, timeline, repairs=[report.Repair(7, T0, "add_column", hostile, hostile)],
        pending=[report.Proposal(8, "add_column", hostile, hostile, hostile, f"ALTER TABLE {hostile}")],
        review_reasons={rows[0]["signature"]: hostile}), "app")
    assert "<script" not in page.lower() and "<img" not in page
    assert page.count("&lt;script&gt;") >= 6  # table, review, proposal, repairs list, chart legend and label


def test_dollar_signs_are_shown_as_written():
    name = '42703: column "$price$" does not exist'
    rows = [row(name, "healed", 2, 0, T0, 3, 100), summary(2, 0)]
    repair = report.Repair(3, T0, "add_column", "orders", "$price$")
    page = report.render_html(data(rows, [(T0, name, 2)], repairs=[repair]), "app")
    svg = page[page.index("<svg"):]
    assert f"{name} (2 errors)" in svg and "#3 add_column orders.$price$" in svg


def test_left_for_review_says_why():
    page = report.render_html(data(review_reasons={"P0001: Cost calculation error": "not a schema error"}), "app")
    section = page[page.index("<h2>Left for review</h2>"):]
    assert "P0001: Cost calculation error" in section and "not a schema error" in section
    assert "10 errors in 1 signature." in section


def test_proposals_waiting_show_what_they_would_do_and_the_calls():
    page = report.render_html(data(pending=[PROPOSAL]), "app")
    section = page[page.index("<h2>Waiting for approval</h2>"):]
    assert "1 proposal selfheal will not apply until approved" in section
    assert "#9 add_column users.biography" in section and "add_column policy is propose" in section
    assert "ALTER TABLE public.users ADD COLUMN biography text" in section
    assert "SELECT selfheal.approve(9);" in section and "SELECT selfheal.reject(9, 'why');" in section


def test_a_role_that_cannot_read_the_audit_still_gets_the_page_and_is_told():
    unnamed = report.Repair(1, T0 + timedelta(seconds=0.4))
    page = report.render_html(data(repairs=[unnamed], audit_readable=False), "app")
    assert "may not read selfheal.audit" in page and "#1 repair" in page
    assert "Waiting for approval" not in page


def test_bucket_names_and_sizes():
    assert [report.bucket_name(s) for s in (1, 30, 60, 300, 3600, 21600, 86400)] == [
        "second", "30 seconds", "minute", "5 minutes", "hour", "6 hours", "day"]
    assert report.pick_bucket(ROWS) == 60  # 30 minutes -> one-minute buckets
