"""Writes through a routed role's legacy names, tried as a new user would: a derived name that is
a plain cast is written back into its source column once an administrator approves the compat
view's write triggers, and COPY FROM into a legacy name works the same way. Anything else that
cannot be written fails naming the column to write instead."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pgerr

from .support import SEED, fail_then_heal, report


def approve_write_triggers(db, app, statement: str, error=pgerr.FeatureNotSupported) -> dict:
    result = fail_then_heal(app, statement, error)
    assert result["status"] == "pending_approval", result
    applied = db.scalar("SELECT selfheal.approve(%s)", (result["audit_id"],))
    return {**result, "applied": applied}


@pytest.fixture
def derived(db):
    db.admin.execute(SEED)
    app = db.connect()
    assert fail_then_heal(app, "SELECT service_type_id FROM sessions")["status"] == "healed"
    return db


def test_an_approved_derived_name_takes_inserts_and_updates_into_its_source_column(derived):
    app = derived.connect()
    result = approve_write_triggers(derived, app, "INSERT INTO sessions (service_type_id) VALUES (4)")
    app = derived.connect()
    row = app.execute("INSERT INTO sessions (service_type_id) VALUES (4) RETURNING *").fetchone()
    names = [c.name for c in app.cursor().execute("SELECT * FROM sessions LIMIT 0").description]
    assert names == ["id", "service_type", "started_at", "service_type_id"]
    assert (row[0], row[1], row[3]) == (4, "4", 4) and row[2] is not None  # the table's defaults applied
    app.execute("UPDATE sessions SET service_type_id = 9 WHERE id = 1")
    app.execute("UPDATE sessions SET service_type = '8' WHERE id = 2")  # the canonical name still writes
    assert derived.admin.execute("SELECT id, service_type FROM sessions ORDER BY id").fetchall() == [
        (1, "9"), (2, "8"), (3, "3"), (4, "4")]
    app.execute("DELETE FROM sessions WHERE service_type_id = 9")
    assert derived.scalar("SELECT count(*) FROM sessions") == 3
    # Undone, the view is read-only for the derived name again.
    derived.admin.execute("SELECT selfheal.undo(%s)", (result["applied"],))
    with pytest.raises(pgerr.FeatureNotSupported):
        derived.connect().execute("INSERT INTO sessions (service_type_id) VALUES (5)")
    assert derived.scalar("SELECT count(*) FROM pg_proc WHERE proname LIKE 'write\\_%'") == 0


def test_a_cast_an_administrator_declares_takes_writes_once_approved(db):
    db.admin.execute(SEED)
    db.admin.execute("SELECT selfheal.add_alias('sessions', 'service_type_id', 'service_type::integer')")
    app = db.connect()
    approve_write_triggers(db, app, "INSERT INTO sessions (service_type_id) VALUES (4)")
    db.connect().execute("INSERT INTO sessions (service_type_id) VALUES (4)")
    assert db.scalar("SELECT service_type FROM sessions WHERE id = 4") == "4"
    db.admin.execute("SELECT selfheal.add_alias('sessions', 'kind_label', 'upper(service_type)')")
    with pytest.raises(pgerr.FeatureNotSupported) as info:
        db.connect().execute("INSERT INTO sessions (kind_label) VALUES ('x')")
    assert "write service_type instead" in str(info.value)


def test_two_names_of_one_column_with_different_values_are_refused_and_nothing_is_written(derived):
    app = derived.connect()
    approve_write_triggers(derived, app, "INSERT INTO sessions (service_type_id) VALUES (4)")
    app = derived.connect()
    with pytest.raises(pgerr.DataException, match="different values"):
        app.execute("INSERT INTO sessions (service_type, service_type_id) VALUES ('5', 6)")
    app.rollback()
    with pytest.raises(pgerr.DataException, match="different values"):
        app.execute("UPDATE sessions SET service_type = '5', service_type_id = 6 WHERE id = 1")
    app.rollback()
    app.execute("INSERT INTO sessions (service_type, service_type_id) VALUES ('6', 6)")  # agreeing is fine
    assert derived.admin.execute("SELECT service_type FROM sessions ORDER BY id").fetchall() == [
        ("1",), ("2",), ("3",), ("6",)]


def test_copy_from_into_a_legacy_name_lands_in_the_table_once_approved(derived):
    derived.admin.execute("ALTER TABLE credit_packages RENAME COLUMN credits TO credit_count")
    app = derived.connect()
    with pytest.raises(pgerr.WrongObjectType) as info:
        with app.cursor().copy("COPY credit_packages (credits) FROM STDIN") as copy:
            copy.write_row((70,))
    app.rollback()
    statement = "COPY credit_packages (credits) FROM STDIN"
    result = report(app, info.value, statement)
    assert result["status"] == "pending_approval", result
    derived.admin.execute("SELECT selfheal.approve(%s)", (result["audit_id"],))
    app = derived.connect()
    with app.cursor().copy("COPY credit_packages (credits) FROM STDIN") as copy:
        copy.write_row((70,))
        copy.write_row((80,))
    app.commit()
    assert derived.admin.execute("SELECT id, credit_count FROM credit_packages ORDER BY id").fetchall() == [
        (1, 10), (2, 50), (3, 70), (4, 80)]


def test_write_triggers_write_only_what_the_caller_may_write(derived):
    app = derived.connect()
    approve_write_triggers(derived, app, "INSERT INTO sessions (service_type_id) VALUES (4)")
    derived.admin.execute("REVOKE INSERT, UPDATE ON sessions FROM app")
    with pytest.raises(pgerr.InsufficientPrivilege):
        derived.connect().execute("INSERT INTO sessions (service_type_id) VALUES (4)")
    assert derived.scalar("SELECT count(*) FROM sessions") == 3


def test_a_view_with_write_triggers_refuses_an_upsert_as_the_proposal_said(derived):
    app = derived.connect()
    result = approve_write_triggers(derived, app, "INSERT INTO sessions (service_type_id) VALUES (4)")
    assert "ON CONFLICT" in result["reason"]
    with pytest.raises(psycopg.Error, match="ON CONFLICT"):
        derived.connect().execute("INSERT INTO sessions (id, service_type) VALUES (1, 'x') ON CONFLICT (id) DO NOTHING")


@pytest.mark.parametrize("identity", ["BY DEFAULT", "ALWAYS"])
def test_identity_and_generated_columns_are_left_to_the_table(db, identity):
    db.admin.execute(f"""
        CREATE TABLE tickets (id int GENERATED {identity} AS IDENTITY PRIMARY KEY, state text NOT NULL,
                              shout text GENERATED ALWAYS AS (upper(state)) STORED);
        INSERT INTO tickets (state) VALUES ('1'), ('2');
        GRANT SELECT, INSERT, UPDATE ON tickets TO app;  -- no grant on the identity's sequence
        GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO app;
        SELECT selfheal.enable_compat('app')""")
    app = db.connect()
    assert fail_then_heal(app, "SELECT state_id FROM tickets")["status"] == "healed"
    approve_write_triggers(db, app, "INSERT INTO tickets (state_id) VALUES (3)")
    app = db.connect()
    assert app.execute("INSERT INTO tickets (state_id) VALUES (3) RETURNING id, shout, state_id").fetchone() == (3, "3", 3)
    app.execute("UPDATE tickets SET state_id = 7 WHERE id = 1")
    assert db.admin.execute("SELECT id, state, shout FROM tickets ORDER BY id").fetchall() == [
        (1, "7", "7"), (2, "2", "2"), (3, "3", "3")]
    with pytest.raises(psycopg.Error, match="DEFAULT"):
        app.execute("INSERT INTO tickets (state_id, shout) VALUES (4, 'X')")
    app.rollback()
    if identity == "BY DEFAULT":  # as on the table: a given number is taken as it is
        app.execute("INSERT INTO tickets (id, state_id) VALUES (40, 4)")
        assert db.scalar("SELECT state FROM tickets WHERE id = 40") == "4"
    else:
        with pytest.raises(psycopg.Error, match="DEFAULT"):
            app.execute("INSERT INTO tickets (id, state_id) VALUES (40, 4)")


def test_an_update_the_table_refuses_by_row_security_counts_no_row_and_changes_nothing(derived):
    derived.admin.execute("""ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
                             CREATE POLICY everyone_reads ON sessions FOR SELECT USING (true);
                             CREATE POLICY everyone_inserts ON sessions FOR INSERT WITH CHECK (true);
                             CREATE POLICY not_the_first ON sessions FOR UPDATE USING (id <> 1)""")
    app = derived.connect()
    approve_write_triggers(derived, app, "INSERT INTO sessions (service_type_id) VALUES (4)")
    app = derived.connect()
    assert app.execute("UPDATE sessions SET service_type_id = 9 WHERE id = 1").rowcount == 0
    assert app.execute("UPDATE sessions SET service_type_id = 9 WHERE id = 2").rowcount == 1
    assert derived.admin.execute("SELECT id, service_type FROM sessions ORDER BY id").fetchall() == [
        (1, "1"), (2, "9"), (3, "3")]


def test_dropping_the_table_drops_its_write_functions_too(derived):
    approve_write_triggers(derived, derived.connect(), "INSERT INTO sessions (service_type_id) VALUES (4)")
    assert derived.scalar("SELECT count(*) FROM pg_proc WHERE proname LIKE 'write\\_%'") == 1
    derived.admin.execute("DROP TABLE sessions")
    assert derived.scalar("SELECT count(*) FROM pg_proc WHERE proname LIKE 'write\\_%'") == 0
    assert derived.scalar("SELECT count(*) FROM selfheal.alias WHERE table_name = 'sessions' AND active") == 0


def test_rejecting_the_write_triggers_never_stops_the_name_being_read(derived):
    app = derived.connect()
    result = fail_then_heal(app, "INSERT INTO sessions (service_type_id) VALUES (4)", pgerr.FeatureNotSupported)
    derived.admin.execute("SELECT selfheal.reject(%s, 'no writes through legacy names')", (result["audit_id"],))
    # The migration drops and re-creates the table: its read alias must be found again.
    derived.admin.execute("DROP TABLE sessions; CREATE TABLE sessions (id serial PRIMARY KEY, service_type text)")
    derived.admin.execute("INSERT INTO sessions (service_type) VALUES ('5'); GRANT SELECT, INSERT ON sessions TO app")
    app = derived.connect()
    assert fail_then_heal(app, "SELECT service_type_id FROM sessions")["status"] == "healed"
    assert derived.connect().execute("SELECT service_type_id FROM sessions").fetchall() == [(5,)]
    # The writes stay rejected.
    again = fail_then_heal(derived.connect(), "INSERT INTO sessions (service_type_id) VALUES (6)",
                           pgerr.FeatureNotSupported)
    assert again["status"] == "refused" and str(result["audit_id"]) in again["reason"]
