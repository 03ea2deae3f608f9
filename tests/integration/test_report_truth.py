"""The report tells the truth, tried as a new user would: what set a repair off, undone repairs,
errors that go on after a refusal, the batch limit, retention and a storm of junk names."""

import psycopg
import pytest

from .support import SEED, fail_then_heal, report


@pytest.fixture
def seeded(db):
    db.admin.execute(SEED)
    return db


def report_rows(db) -> dict:
    cur = db.admin.execute("SELECT * FROM selfheal.report()")
    names = [c.name for c in cur.description]
    return {row[0]: dict(zip(names, row)) for row in cur}


def record(db, message: str, statement: str | None = None, sqlstate: str = "42703") -> None:
    db.admin.execute("SELECT selfheal.record_error(%s, %s, %s)", (sqlstate, message, statement))


def test_the_error_that_set_a_repair_off_counts_before_it_and_an_undo_shows(seeded):
    app = seeded.connect()
    result = fail_then_heal(app, "SELECT recommendation_data FROM sessions")
    assert result["status"] == "healed"
    row = report_rows(seeded)['42703: column "recommendation_data" does not exist']
    assert (row["status"], row["before_repair"], row["after_repair"], row["share_eliminated"]) == \
        ("healed", 1, 0, 100)

    seeded.admin.execute("SELECT selfheal.undo(%s)", (result["audit_id"],))
    with pytest.raises(psycopg.errors.UndefinedColumn) as again:
        app.execute("SELECT recommendation_data FROM sessions")
    report(app, again.value, "SELECT recommendation_data FROM sessions")  # refused: an undo is a rejection
    row = report_rows(seeded)['42703: column "recommendation_data" does not exist']
    assert (row["status"], row["before_repair"], row["after_repair"], row["share_eliminated"]) == \
        ("undone", 1, 1, 0)
    summary = report_rows(seeded)["(all errors)"]
    assert summary["share_eliminated"] == 0


def test_a_signature_never_repaired_shows_the_errors_that_go_on_after_the_decision(seeded):
    app = seeded.connect()
    statement = "SELECT nosuch FROM missing_table"
    for _ in range(3):
        with pytest.raises(psycopg.errors.UndefinedTable) as info:
            app.execute(statement)
        assert report(app, info.value, statement)["status"] == "needs_review"
    record(seeded, 'relation "missing_table" does not exist', statement, sqlstate="42P01")  # not yet processed
    row = report_rows(seeded)['42P01: relation "missing_table" does not exist']
    assert (row["status"], row["before_repair"], row["after_repair"]) == ("needs review", 1, 3)
    # Three identical decisions are one audit row, counted three times.
    assert seeded.admin.execute("SELECT count(*), sum(repeats) FROM selfheal.audit "
                                "WHERE status = 'needs_review'").fetchone() == (1, 3)


def test_heal_says_when_its_batch_limit_left_events_pending(seeded):
    seeded.admin.execute("UPDATE selfheal.policy SET value = '2' WHERE name = 'heal_batch_size'")
    for n in range(5):
        record(seeded, f"division by zero {n}", sqlstate="22012")
    summary = seeded.scalar("SELECT heal()")
    assert summary["processed"] == 2 and summary["left_pending"] == 3
    assert "heal_batch_size (2) reached" in summary["batch_limit"]
    assert seeded.scalar("SELECT heal()")["left_pending"] == 1
    last = seeded.scalar("SELECT heal()")
    assert last["processed"] == 1 and "batch_limit" not in last


def test_processed_events_past_retention_are_deleted_but_decisions_keep_theirs(seeded):
    app = seeded.connect()
    fail_then_heal(app, "SELECT recommendation_data FROM sessions")  # an audit row points at this event
    for n in range(3):
        record(seeded, f"division by zero {n}", sqlstate="22012")
    seeded.scalar("SELECT heal()")  # the three are processed (not_schema)
    record(seeded, "division by zero later", sqlstate="22012")  # still pending: kept whatever its age
    seeded.admin.execute("UPDATE selfheal.policy SET value = '0 seconds' WHERE name = 'event_retention'")
    seeded.admin.execute("UPDATE selfheal.policy SET value = '0' WHERE name = 'heal_batch_size'")
    summary = seeded.scalar("SELECT heal()")
    assert summary["expired"] == 3
    left = seeded.admin.execute("SELECT sqlstate, status FROM selfheal.error_event ORDER BY id").fetchall()
    assert left == [("42703", "healed"), ("22012", "pending")]


def test_a_storm_of_junk_names_adds_at_most_the_roles_allowance_to_the_audit(seeded):
    seeded.admin.execute("UPDATE selfheal.policy SET value = '3' WHERE name = 'audit_rows_per_role'")
    app = seeded.connect()
    for n in range(20):
        statement = f"SELECT * FROM junk_{n}"
        with pytest.raises(psycopg.errors.UndefinedTable) as info:
            app.execute(statement)
        report(app, info.value, statement)
    rows = seeded.admin.execute("SELECT status, repeats, table_name FROM selfheal.audit ORDER BY id").fetchall()
    assert len(rows) == 4
    assert rows[3][:2] == ("refused", 17) and rows[3][2] is None
    assert seeded.scalar("SELECT count(*) FROM selfheal.error_event") == 20  # every error keeps its reason
