"""The report's rendering, from rows shaped like selfheal.report()'s."""

from datetime import datetime, timedelta, timezone

from selfheal import report

T0 = datetime(2026, 11, 24, 5, 0, tzinfo=timezone.utc)


def row(signature, status, before, after, healed=None, audit=None, share=0):
    return {"signature": signature, "status": status, "before_repair": before, "after_repair": after,
            "first_seen": T0, "last_seen": T0 + timedelta(minutes=30), "healed_at": healed,
            "time_to_heal": (healed - T0) if healed else None, "share_eliminated": share, "audit_id": audit}


ROWS = [
    row('42703: column "recommendation_data" does not exist', "healed", 40, 0, T0 + timedelta(seconds=0.4), 1, 100),
    row("P0001: Cost calculation error", "needs review", 10, 0),
    row("(all errors)", "summary", 50, 0, share=80.0),
]
TIMELINE = [(T0 + timedelta(minutes=m), ROWS[m % 2]["signature"], 5) for m in range(30)]


def test_text_report_has_a_row_per_signature_and_the_summary():
    text = report.render_text(ROWS)
    lines = text.splitlines()
    assert lines[0].split() == ["error", "signature", "status", "before", "after", "time", "to", "heal", "audit", "id"]
    assert "healed" in lines[2] and lines[2].rstrip().endswith("400 ms         1")
    assert "50 errors in 2 signatures; 80.0% had a cause selfheal repaired" in text
    assert "Left for review (never repaired automatically): 10 errors in 1 signatures." in text


def test_empty_report_says_so():
    assert "no errors recorded" in report.render_text([row("(all errors)", "summary", None, None)])


def test_html_is_self_contained_with_chart_repair_marks_and_escaped_text():
    hostile = row('42703: column "<script>x</script>" does not exist', "healed", 1, 0, T0, 7, 100)
    page = report.render_html([hostile] + ROWS, TIMELINE, 60, "selfheal report: app")
    assert page.startswith("<!doctype html>") and "<svg" in page and "repairs #7, #1" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http" not in page  # nothing fetched from elsewhere


def test_bucket_gives_about_forty_points():
    assert report.pick_bucket(ROWS) == 60  # 30 minutes -> one-minute buckets


def test_errors_left_for_review_include_those_after_selfheal_decided():
    rows = [row("P0001: Cost calculation error", "needs review", 10, 7), row("(all errors)", "summary", 10, 7)]
    text = report.render_text(rows)
    assert "Left for review (never repaired automatically): 17 errors in 1 signatures." in text
    assert "7 occurred after selfheal repaired or decided about their cause" in text
