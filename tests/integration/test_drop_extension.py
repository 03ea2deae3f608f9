"""DROP EXTENSION selfheal, tried as a new user would: no CASCADE needed, the compat schemas,
write functions, sync triggers and role routing go with it, the app's data and the columns
selfheal added stay, and a re-created selfheal never repairs again what the old one handled."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg import errors as pgerr

from .conftest import APP_ROLE
from .support import SEED, fail_then_heal
from .test_compat_writes import approve_write_triggers

LEFTOVERS = """
SELECT (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'selfheal%%')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname LIKE 'selfheal%%')
     + (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'selfheal%%')
     + (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'selfheal%%')
"""


def routing(db) -> list:
    return [row[0] for row in db.admin.execute(
        "SELECT setconfig FROM pg_db_role_setting WHERE setrole = %s::regrole", (APP_ROLE,))]


@pytest.fixture
def in_use(db):
    """Every kind of run-time object selfheal makes: a served name with approved write triggers,
    a renamed table's old name, an added column and an in-table derived column with its sync trigger."""
    db.admin.execute(SEED)
    db.admin.execute("CREATE TABLE tickets (id int PRIMARY KEY, state text)")
    db.admin.execute("INSERT INTO tickets SELECT g, g::text FROM generate_series(1, 20) g")
    db.admin.execute("GRANT SELECT ON tickets TO app")
    app = db.connect()
    assert fail_then_heal(app, "SELECT service_type_id FROM sessions")["status"] == "healed"
    app = db.connect()
    approve_write_triggers(db, app, "INSERT INTO sessions (service_type_id) VALUES (4)")
    assert fail_then_heal(app, "SELECT recommendation_data FROM sessions")["status"] == "healed"
    db.admin.execute("ALTER TABLE credit_packages RENAME TO packages")  # its old name is served
    db.admin.execute("ALTER TABLE tickets ADD COLUMN unused int")  # keeps the table off a generated column
    db.admin.execute("UPDATE selfheal.policy SET value = 'table' WHERE name = 'derived_columns'")
    db.admin.execute("UPDATE selfheal.policy SET value = '5' WHERE name = 'generated_column_row_limit'")
    db.admin.execute("ANALYZE tickets")
    db.admin.execute("SELECT selfheal.add_alias('tickets', 'state_id', 'state::integer', true)")
    assert db.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tickets'::regclass AND NOT tgisinternal") == 1
    return db


def test_drop_extension_needs_no_cascade_and_takes_everything_selfheal_made_with_it(in_use):
    db = in_use
    assert db.scalar(LEFTOVERS) > 0 and any("selfheal_compat" in str(r) for r in routing(db))
    sessions = db.admin.execute("SELECT id, service_type FROM sessions ORDER BY id").fetchall()

    notices = []
    db.admin.add_notice_handler(lambda n: notices.append(n.message_primary))
    db.admin.execute("DROP EXTENSION selfheal")

    assert db.scalar(LEFTOVERS) == 1  # the empty schema selfheal, which PostgreSQL keeps (see README)
    assert db.scalar("SELECT count(*) FROM pg_class WHERE relnamespace = 'selfheal'::regnamespace") == 0
    assert routing(db) == []
    assert any("app no longer reads through the compat schemas" in n for n in notices)
    # The app's data and the columns selfheal added stay.
    assert db.admin.execute("SELECT id, service_type FROM sessions ORDER BY id").fetchall() == sessions
    assert db.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = 'sessions'::regclass "
                     "AND attname = 'recommendation_data'") == 1
    assert db.scalar("SELECT count(state_id) FROM tickets") >= 0
    db.admin.execute("INSERT INTO tickets (id, state) VALUES (100, '7')")  # no sync trigger left to fail it
    # The routed app, in its next session, reads the tables themselves again.
    app = db.connect()
    assert app.execute("SHOW search_path").fetchone()[0] == '"$user", public'
    with pytest.raises(pgerr.UndefinedColumn):
        app.execute("SELECT service_type_id FROM sessions")


def test_a_role_path_set_before_routing_is_given_back(db):
    db.admin.execute(SEED)
    db.admin.execute("SELECT selfheal.disable_compat('app')")
    db.admin.execute(f"ALTER ROLE {APP_ROLE} IN DATABASE {db.name} SET search_path = public, extensions")
    db.admin.execute("SELECT selfheal.enable_compat('app')")
    db.admin.execute("DROP EXTENSION selfheal")
    assert routing(db) == [["search_path=public, extensions"]]


def test_an_object_the_team_built_on_a_compat_view_stops_the_drop_and_nothing_changes(in_use):
    db = in_use
    db.admin.execute("CREATE VIEW public.team_view AS SELECT service_type_id FROM "
                     "selfheal_compat_public.sessions")
    before = db.scalar(LEFTOVERS)
    with pytest.raises(psycopg.Error, match="DROP EXTENSION selfheal stopped, nothing was changed") as info:
        db.admin.execute("DROP EXTENSION selfheal")
    assert "CASCADE" in str(info.value)
    assert db.scalar(LEFTOVERS) == before and any("selfheal_compat" in str(r) for r in routing(db))
    assert db.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'selfheal'") == 1


def test_a_compat_view_in_use_stops_the_drop_at_once_instead_of_queueing(in_use):
    db = in_use
    holder = db.connect(user="postgres")
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE selfheal_compat_public.sessions IN ACCESS SHARE MODE")
    started = time.monotonic()
    with pytest.raises(psycopg.Error, match="is in use"):
        db.admin.execute("DROP EXTENSION selfheal")
    assert time.monotonic() - started < 10
    holder.execute("ROLLBACK")
    assert db.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'selfheal'") == 1
    db.admin.execute("DROP EXTENSION selfheal")  # free again: it goes through


def test_dropping_another_extension_leaves_selfheal_alone(in_use):
    db = in_use
    db.admin.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
    before = db.scalar(LEFTOVERS)
    db.admin.execute("DROP EXTENSION pgtap /* not selfheal */")
    assert db.scalar(LEFTOVERS) == before and any("selfheal_compat" in str(r) for r in routing(db))


def heal_until(db, predicate, deadline: float = 20):
    stop = time.monotonic() + deadline
    while True:
        db.scalar("SELECT heal()")
        if predicate() or time.monotonic() > stop:
            return
        time.sleep(0.05)


def applied(db) -> list:
    return db.admin.execute("SELECT action, table_name, column_name FROM selfheal.audit "
                            "WHERE status = 'applied' ORDER BY id").fetchall()


def test_a_recreated_selfheal_never_repairs_what_the_dropped_one_handled(log_db):
    db = log_db
    db.admin.execute(SEED)
    db.scalar("SELECT heal()")  # the first read
    app = db.connect()
    with pytest.raises(pgerr.UndefinedColumn):
        app.execute("SELECT service_type_id FROM sessions")
    heal_until(db, lambda: applied(db))
    assert [a[0] for a in applied(db)] == ["add_alias"]
    db.admin.execute("DROP EXTENSION selfheal")
    db.admin.execute("DROP SCHEMA selfheal")  # as the README says, for a database as it was

    # A hostile role forges the marker: it is not the extension's owner, so it does not count.
    hostile = db.connect()
    with pytest.raises(pgerr.UndefinedColumn):
        hostile.execute("SELECT shadow_column FROM sessions")
    hostile.execute("DO $$ BEGIN RAISE LOG 'selfheal: extension dropped; errors logged before this line "
                    "were handled'; END $$")

    db.admin.execute("CREATE EXTENSION selfheal CASCADE")
    db.admin.execute("SELECT selfheal.enable_compat('app')")
    db.admin.execute("GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO app")
    heal_until(db, lambda: db.scalar("SELECT count(*) FROM selfheal.error_event") >= 1, deadline=3)
    # The old service_type_id error is not read again; the one logged after the drop is.
    messages = [r[0] for r in db.admin.execute("SELECT message FROM selfheal.error_event")]
    assert messages == ['column "shadow_column" does not exist']
    assert applied(db) == []  # a typo-like name with no evidence: never added

    app = db.connect()
    with pytest.raises(pgerr.UndefinedColumn):
        app.execute("SELECT service_type_id FROM sessions")  # a new error, after the re-create
    heal_until(db, lambda: applied(db))
    assert [a[0] for a in applied(db)] == ["add_alias"]
