"""The seed scenario, end to end, tried as a new user would: real errors from a real app role."""

import psycopg
import pytest
from psycopg import errors as pgerr

from .support import SEED, fail_then_heal, report

@pytest.fixture
def seeded(db):
    db.admin.execute(SEED)
    return db


def test_missing_jsonb_column_is_added_and_reads_as_empty_object(seeded):
    app = seeded.connect()
    result = fail_then_heal(app, "SELECT recommendation_data FROM sessions")
    assert (result["status"], result["action"]) == ("healed", "add_column")
    assert [r[0] for r in app.execute("SELECT recommendation_data FROM sessions")] == [{}, {}, {}]
    assert seeded.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = 'sessions'::regclass AND attname = 'recommendation_data'") == "jsonb"


def test_x_id_is_served_as_a_cast_of_x_and_both_names_work(seeded):
    app = seeded.connect()
    statement = "SELECT * FROM sessions WHERE service_type_id = 1"
    result = fail_then_heal(app, statement)
    assert (result["status"], result["action"]) == ("healed", "add_alias")
    rows = app.execute(statement).fetchall()
    assert len(rows) == 1
    pairs = app.execute("SELECT service_type, service_type_id FROM sessions ORDER BY id").fetchall()
    assert pairs == [("1", 1), ("2", 2), ("3", 3)]
    # The table itself is untouched: no column was added to it.
    assert seeded.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = 'sessions'::regclass "
                         "AND attname = 'service_type_id'") == 0
    # Writes through the canonical name still land in the table.
    app.execute("INSERT INTO sessions (service_type) VALUES ('7')")
    assert app.execute("SELECT service_type_id FROM sessions WHERE service_type = '7'").fetchone() == (7,)


def test_qualified_alias_is_resolved_and_add_alias_declares_its_meaning(seeded):
    app = seeded.connect()
    statement = "SELECT cp.package_name FROM credit_packages cp ORDER BY cp.id"
    result = fail_then_heal(app, statement)
    assert result["status"] == "healed"
    assert app.execute(statement).fetchall() == [(None,), (None,)]
    seeded.admin.execute("SELECT selfheal.add_alias('credit_packages', 'package_name', "
                         "$$'Package ' || credits || ' credits'$$)")
    assert seeded.connect().execute(statement).fetchall() == [("Package 10 credits",), ("Package 50 credits",)]


def test_insert_through_a_derived_name_is_only_proposed_and_writes_nothing(seeded):
    app = seeded.connect()
    fail_then_heal(app, "SELECT service_type_id FROM sessions")
    statement = "INSERT INTO sessions(service_type_id) VALUES (3)"
    with pytest.raises(pgerr.FeatureNotSupported) as info:
        app.execute(statement)
    assert "service_type_id" in str(info.value)
    result = report(app, info.value, statement)
    assert result["status"] == "pending_approval", result
    assert "service_type as the value cast back" in result["reason"] and "ON CONFLICT" in result["reason"]
    assert seeded.scalar("SELECT count(*) FROM sessions") == 3  # nothing was written
    assert seeded.scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'selfheal_write'") == 0


def test_errors_that_are_not_schema_errors_are_recorded_and_never_fixed(seeded):
    seeded.admin.execute("""CREATE FUNCTION calc() RETURNS numeric LANGUAGE plpgsql AS
                            $$ BEGIN RAISE EXCEPTION 'Cost calculation error'; END $$;
                            GRANT EXECUTE ON FUNCTION calc() TO app""")
    app = seeded.connect()
    results = [fail_then_heal(app, "SELECT calc()"), fail_then_heal(app, "SELECT 1/0")]
    assert [r["status"] for r in results] == ["not_schema", "not_schema"]
    classes = seeded.admin.execute("SELECT sqlstate, class FROM selfheal.error_event ORDER BY id").fetchall()
    assert classes == [("P0001", "raised by PL/pgSQL"), ("22012", "division by zero")]
    assert seeded.scalar("SELECT count(*) FROM selfheal.audit") == 0


def test_heal_processes_errors_already_recorded(seeded):
    seeded.admin.execute("GRANT EXECUTE ON FUNCTION selfheal.record_error(text, text, text, text) TO app")
    app = seeded.connect()
    statement = "SELECT visit_count FROM sessions"
    with pytest.raises(pgerr.UndefinedColumn) as info:
        app.execute(statement)
    app.execute("SELECT selfheal.record_error(%s, %s, %s, %s)",
                (info.value.diag.sqlstate, info.value.diag.message_primary, statement, None))
    summary = seeded.scalar("SELECT heal()")  # unqualified, as the README says
    assert (summary["processed"], summary["healed"]) == (1, 1)
    assert "logging_advice" in summary["log"]["problem"]  # this cluster writes no log file heal() can read
    assert app.execute(statement).fetchall() == [(0,), (0,), (0,)]
    assert seeded.scalar("SELECT heal()")["processed"] == 0


def test_audit_shows_the_ddl_and_undo_reverses_it(seeded):
    app = seeded.connect()
    fail_then_heal(app, "SELECT is_trial FROM sessions")
    fail_then_heal(app, "SELECT service_type_id FROM sessions")
    audit = seeded.admin.execute("SELECT id, action, ddl, undo_ddl, reason, evidence FROM selfheal.audit "
                                 "ORDER BY id").fetchall()
    assert [a[1] for a in audit] == ["add_column", "add_alias"]
    assert 'ADD COLUMN IF NOT EXISTS "is_trial" boolean DEFAULT false' in audit[0][2]
    assert 'DROP COLUMN IF EXISTS "is_trial"' in audit[0][3]
    assert audit[1][5]["convention"].startswith("service_type_id beside service_type")

    seeded.admin.execute("SELECT selfheal.undo(%s)", (audit[1][0],))
    with pytest.raises(pgerr.UndefinedColumn):
        seeded.connect().execute("SELECT service_type_id FROM sessions")
    seeded.admin.execute("SELECT selfheal.undo(%s)", (audit[0][0],))
    with pytest.raises(pgerr.UndefinedColumn):
        seeded.connect().execute("SELECT is_trial FROM sessions")
    undone = seeded.admin.execute("SELECT count(*) FROM selfheal.audit WHERE undone_by IS NOT NULL").fetchone()[0]
    assert undone == 2
    with pytest.raises(pgerr.InvalidParameterValue, match="already undone"):
        seeded.admin.execute("SELECT selfheal.undo(%s)", (audit[0][0],))


def test_undo_keeps_a_column_that_holds_data_unless_forced(seeded):
    app = seeded.connect()
    result = fail_then_heal(app, "SELECT notes FROM sessions WHERE notes <> ''")
    app.execute("UPDATE sessions SET notes = 'keep me' WHERE id = 1")
    with pytest.raises(psycopg.Error, match="holds values other than its default"):
        seeded.admin.execute("SELECT selfheal.undo(%s)", (result["audit_id"],))
    assert seeded.scalar("SELECT notes FROM sessions WHERE id = 1") == "keep me"
    seeded.admin.execute("SELECT selfheal.undo(%s, force => true)", (result["audit_id"],))
    with pytest.raises(pgerr.UndefinedColumn):
        seeded.admin.execute("SELECT notes FROM sessions")


def test_a_column_from_the_apps_own_migration_reaches_routed_roles_at_once(seeded):
    app = seeded.connect()
    fail_then_heal(app, "SELECT service_type_id FROM sessions")  # compat view now exists
    seeded.admin.execute("ALTER TABLE sessions ADD COLUMN plan text DEFAULT 'basic'")  # the event trigger rebuilds it
    assert app.execute("SELECT DISTINCT plan, service_type_id IS NOT NULL FROM sessions WHERE id = 1").fetchall() == [
        ("basic", True)]


def test_undoing_a_replacement_alias_serves_the_previous_one_again(seeded):
    seeded.admin.execute("SELECT selfheal.add_alias('credit_packages', 'label', $$'v1'$$)")
    second = seeded.scalar("SELECT selfheal.add_alias('credit_packages', 'label', $$'v2'$$)")
    app = seeded.connect()
    assert app.execute("SELECT DISTINCT label FROM credit_packages").fetchall() == [("v2",)]
    seeded.admin.execute("SELECT selfheal.undo(%s)", (second,))
    assert seeded.connect().execute("SELECT DISTINCT label FROM credit_packages").fetchall() == [("v1",)]
    assert seeded.scalar("SELECT count(*) FROM selfheal.alias WHERE active") == 1


def test_another_statement_that_failed_the_same_way_types_the_new_column(seeded):
    seeded.admin.execute("GRANT EXECUTE ON FUNCTION selfheal.record_error(text, text, text, text) TO app")
    app = seeded.connect()
    typed = "UPDATE sessions SET gift_wrap = %s::boolean WHERE id = %s"
    with pytest.raises(psycopg.errors.UndefinedColumn) as info:
        app.execute(typed, (True, 1))
    app.execute("SELECT selfheal.record_error(%s, %s, %s)", ("42703", info.value.diag.message_primary, typed))
    result = fail_then_heal(app, "SELECT id, gift_wrap FROM sessions")  # says nothing of the type itself
    assert result["status"] == "healed"
    assert seeded.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = 'sessions'::regclass AND attname = 'gift_wrap'") == "boolean"
