"""Safety: hostile names, the column budget, concurrent healers, a locked table, a failed repair."""

import threading

import psycopg
import pytest
from psycopg import errors as pgerr

from .support import SEED, fail_then_heal, report

@pytest.fixture
def sessions(db):
    db.admin.execute(SEED)
    return db


def columns(db):
    return [r[0] for r in db.admin.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'sessions'::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum")]


@pytest.mark.parametrize("name", [
    'x"; DROP TABLE sessions; --',
    "a" * 70,  # PostgreSQL reports it cut to 63 bytes
    "pg_sneaky",
    "selfheal_backdoor",
    "spaced name",
])
def test_hostile_column_names_are_refused_with_no_ddl(sessions, name):
    app = sessions.connect()
    quoted = '"' + name.replace('"', '""') + '"'
    result = fail_then_heal(app, f"SELECT {quoted} FROM sessions")
    assert result["status"] == "refused", result
    assert result["ddl"] is None
    assert columns(sessions) == ["id", "service_type", "started_at"]
    audit = sessions.admin.execute("SELECT status, ddl, reason FROM selfheal.audit").fetchall()
    assert len(audit) == 1 and audit[0][0] == "refused" and audit[0][1] is None and "refused" in audit[0][2]


def test_selfheal_never_alters_its_own_tables(sessions):
    result = report(sessions.admin, _fake(pgerr.UndefinedColumn, 'column "x" does not exist'),
                    "SELECT x FROM selfheal.audit")
    assert result["status"] in ("refused", "needs_review") and result["ddl"] is None
    assert sessions.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = 'selfheal.audit'::regclass "
                           "AND attname = 'x'") == 0


def _fake(error_type, message):
    """A reported error as a client would pass it on; heal_error trusts none of it."""
    class Diag:
        sqlstate = error_type.sqlstate
        message_primary = message
        message_hint = None

    class Reported(Exception):
        diag = Diag()

    return Reported()


def test_column_budget_stops_junk_far_below_1600(sessions):
    sessions.admin.execute("UPDATE selfheal.policy SET value = '3' WHERE name = 'column_budget_per_table'")
    app = sessions.connect()
    # Names far apart: junk_1 beside junk_0 would be a probable typo, which is only proposed.
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    statuses = [fail_then_heal(app, f"SELECT junk_{word} FROM sessions WHERE junk_{word} > 0")["status"] for word in words]
    assert statuses == ["healed"] * 3 + ["refused"] * 3
    assert len(columns(sessions)) == 3 + 3
    reasons = sessions.admin.execute("SELECT reason FROM selfheal.audit WHERE status = 'refused'").fetchall()
    assert all("budget of 3" in r[0] for r in reasons)


def test_two_sessions_healing_the_same_error_make_one_change(sessions):
    first, second = sessions.connect(), sessions.connect()
    statement = "SELECT login_count FROM sessions"
    with pytest.raises(pgerr.UndefinedColumn) as info:
        first.execute(statement)
    first.autocommit = False
    first_result = report(first, info.value, statement)  # applied, not yet committed; holds the table's lock
    results = {}
    worker = threading.Thread(target=lambda: results.update(second=report(second, info.value, statement)))
    worker.start()
    worker.join(0.15)
    first.commit()
    worker.join(30)
    assert first_result["status"] == "healed"
    assert results["second"]["status"] == "resolved", results
    assert sessions.scalar("SELECT count(*) FROM selfheal.audit WHERE status = 'applied'") == 1


def test_many_concurrent_healers_apply_once(sessions):
    statement = "SELECT last_seen_at FROM sessions"
    with pytest.raises(pgerr.UndefinedColumn) as info:
        sessions.connect().execute(statement)
    conns = [sessions.connect() for _ in range(8)]
    barrier = threading.Barrier(len(conns))
    statuses = []

    def heal(conn):
        barrier.wait()
        statuses.append(report(conn, info.value, statement)["status"])

    threads = [threading.Thread(target=heal, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses).count("healed") == 1
    assert set(statuses) <= {"healed", "resolved", "deferred"}
    assert sessions.scalar("SELECT count(*) FROM selfheal.audit WHERE status = 'applied'") == 1


def test_a_locked_table_defers_the_repair_instead_of_queueing(sessions):
    holder = sessions.connect(user="postgres")
    holder.autocommit = False
    holder.execute("LOCK TABLE sessions IN ACCESS SHARE MODE")  # a long reader: ADD COLUMN must wait for it
    healer = sessions.connect(options="-c statement_timeout=20s")  # a hang would fail here, not block the suite
    statement = "SELECT churn_score FROM sessions WHERE churn_score > 0.5"
    result = report(healer, _fake(pgerr.UndefinedColumn, 'column "churn_score" does not exist'), statement)
    assert result["status"] == "deferred"
    assert "churn_score" not in columns(sessions)
    # Meanwhile other sessions were never queued behind a waiting ALTER TABLE.
    assert sessions.connect().execute("SELECT count(*) FROM sessions").fetchone() == (3,)
    holder.rollback()
    summary = sessions.scalar("SELECT heal()")
    assert (summary["processed"], summary["healed"]) == (1, 1)
    assert "churn_score" in columns(sessions)


def test_planning_never_queues_behind_a_lock(sessions):
    holder = sessions.connect(user="postgres")
    holder.autocommit = False
    holder.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")  # reading its size or values must wait
    healer = sessions.connect(options="-c statement_timeout=20s")
    statement = "SELECT service_type_id FROM sessions"
    result = report(healer, _fake(pgerr.UndefinedColumn, 'column "service_type_id" does not exist'), statement)
    assert result["status"] == "deferred" and "could not be read" in result["reason"]
    assert sessions.connect().execute("SELECT 1").fetchone() == (1,)
    holder.rollback()
    summary = sessions.scalar("SELECT heal()")
    assert (summary["processed"], summary["healed"]) == (1, 1)


def test_a_failed_repair_leaves_nothing_half_done(sessions):
    app = sessions.connect()
    fail_then_heal(app, "SELECT service_type_id FROM sessions")  # creates selfheal_compat_public.sessions
    # Someone builds on the compat view, so it can no longer be dropped and rebuilt.
    sessions.admin.execute("CREATE VIEW report_view AS SELECT * FROM selfheal_compat_public.sessions")
    result = fail_then_heal(app, "SELECT review_data FROM sessions")
    assert result["status"] == "failed"
    assert "review_data" not in columns(sessions)  # the ADD COLUMN was rolled back with the view rebuild
    row = sessions.admin.execute("SELECT status, error FROM selfheal.audit ORDER BY id DESC LIMIT 1").fetchone()
    assert row[0] == "failed" and row[1].startswith("2BP01")


def test_a_value_past_the_rows_checked_raises_when_read_never_reads_null(sessions):
    """On a table larger than value_check_rows only the first rows are read before serving a
    derived name; a later value that does not convert must fail the read, never read as NULL."""
    sessions.admin.execute("UPDATE selfheal.policy SET value = '2' WHERE name = 'value_check_rows'")
    sessions.admin.execute("INSERT INTO sessions (service_type) VALUES ('premium')")  # the fourth row
    app = sessions.connect()
    result = fail_then_heal(app, "SELECT id, service_type_id FROM sessions WHERE id <= 2")
    assert result["status"] == "healed"
    evidence = sessions.scalar("SELECT evidence FROM selfheal.audit WHERE id = %s", (result["audit_id"],))
    assert evidence["values_checked"] == 2 and "raises when read" in evidence["values_unchecked"]
    assert app.execute("SELECT id, service_type_id FROM sessions WHERE id <= 2 ORDER BY id").fetchall() == [
        (1, 1), (2, 2)]
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        app.execute("SELECT id FROM sessions WHERE service_type_id IS NULL")
    assert sessions.scalar("SELECT count(*) FROM sessions") == 4
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        app.execute("DELETE FROM sessions WHERE service_type_id IS NULL")  # the premium row survives
    assert sessions.scalar("SELECT count(*) FROM sessions WHERE service_type = 'premium'") == 1
