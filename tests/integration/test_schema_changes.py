"""The application's own DDL, tried as a new user would: compat views follow it and never block it."""

import threading
import time

import psycopg
import pytest
from psycopg import errors as pgerr

from .support import SEED, fail_then_heal


@pytest.fixture
def migrated(db):
    """The seed, owned by a migration role that is not a superuser, with a derived alias in place."""
    db.admin.execute("CREATE ROLE migrator LOGIN")
    db.admin.execute("GRANT CREATE ON SCHEMA public TO migrator")
    db.admin.execute(SEED)
    db.admin.execute("ALTER TABLE sessions OWNER TO migrator; ALTER TABLE credit_packages OWNER TO migrator")
    fail_then_heal(db.connect(), "SELECT service_type_id FROM sessions")  # selfheal_compat_public.sessions exists
    yield db
    db.close()
    with psycopg.connect(db.cluster.dsn(db.name), autocommit=True) as conn:
        conn.execute("DROP OWNED BY migrator CASCADE")
        conn.execute("DROP ROLE migrator")


def migrate(db, ddl):
    with psycopg.connect(db.cluster.dsn(db.name, "migrator"), autocommit=True) as conn:
        conn.execute(ddl)


def timeline(db):
    return [r for r in db.admin.execute("SELECT change, detail FROM selfheal.schema_event ORDER BY id")]


def test_a_renamed_column_keeps_its_old_name_with_no_error_ever_raised(migrated):
    migrate(migrated, "ALTER TABLE sessions RENAME COLUMN service_type TO kind")
    app = migrated.connect()
    assert app.execute("SELECT service_type, service_type_id FROM sessions ORDER BY id").fetchall() == [
        ("1", 1), ("2", 2), ("3", 3)]
    assert migrated.scalar("SELECT count(*) FROM selfheal.error_event") == 1  # only the seed's own error
    # The routed role's SELECT * keeps the shape it was written for: the old name in its place.
    legacy = [c.name for c in app.execute("SELECT * FROM sessions LIMIT 0").description]
    own = [c.name for c in migrated.admin.execute("SELECT * FROM public.sessions LIMIT 0").description]
    assert legacy == [("service_type" if n == "kind" else n) for n in own] + ["service_type_id"]
    assert ("column renamed", {"from": "service_type", "to": "kind"}) in timeline(migrated)
    reason = migrated.scalar("SELECT reason FROM selfheal.audit WHERE column_name = 'service_type'")
    assert "renamed" in reason


def test_a_renamed_table_keeps_its_old_name(migrated):
    migrate(migrated, "ALTER TABLE credit_packages RENAME TO packages")
    app = migrated.connect()
    assert app.execute("SELECT credits FROM credit_packages ORDER BY id").fetchall() == [(10,), (50,)]
    assert app.execute("SELECT credits FROM packages ORDER BY id").fetchall() == [(10,), (50,)]
    app.execute("UPDATE credit_packages SET credits = 11 WHERE id = 1")  # writes through the old name
    assert migrated.scalar("SELECT credits FROM packages WHERE id = 1") == 11


@pytest.mark.parametrize("ddl", [
    "ALTER TABLE sessions DROP COLUMN service_type",
    "ALTER TABLE sessions ALTER COLUMN service_type TYPE varchar(40)",
    "ALTER TABLE sessions ADD COLUMN plan text",
    "DROP TABLE sessions",
])
def test_compat_views_never_block_the_applications_ddl(migrated, ddl):
    migrate(migrated, ddl)  # no CASCADE, as a role that is not a superuser
    app = migrated.connect()
    if ddl.startswith("DROP TABLE"):
        assert migrated.scalar("SELECT count(*) FROM pg_class WHERE relname = 'sessions'") == 0
        assert migrated.scalar("SELECT count(*) FROM selfheal.alias WHERE active") == 0
        assert "dropped" in migrated.scalar("SELECT reason FROM selfheal.audit ORDER BY id DESC LIMIT 1")
    elif "DROP COLUMN" in ddl:
        with pytest.raises(pgerr.UndefinedColumn):
            app.execute("SELECT service_type_id FROM sessions")
        reason = migrated.scalar("SELECT reason FROM selfheal.audit ORDER BY id DESC LIMIT 1")
        assert "service_type_id" in reason and "was dropped" in reason
        assert app.execute("SELECT count(*) FROM sessions").fetchone() == (3,)  # the view is back, minus the alias
    elif "TYPE" in ddl:
        assert app.execute("SELECT service_type_id FROM sessions WHERE id = 2").fetchone() == (2,)
    else:
        assert app.execute("SELECT plan, service_type_id FROM sessions WHERE id = 1").fetchone() == (None, 1)


def test_ddl_run_inside_a_function_is_not_blocked_either(migrated):
    migrate(migrated, """CREATE FUNCTION migrate() RETURNS void LANGUAGE plpgsql AS
                         $$ BEGIN EXECUTE 'ALTER TABLE sessions ALTER COLUMN service_type TYPE varchar(30)'; END $$""")
    migrate(migrated, "SELECT migrate()")
    assert migrated.connect().execute("SELECT service_type_id FROM sessions WHERE id = 1").fetchone() == (1,)


def test_a_new_table_with_a_legacy_name_retires_the_legacy_view(migrated):
    migrate(migrated, "ALTER TABLE credit_packages RENAME TO packages_old")
    assert migrated.connect().execute("SELECT count(*) FROM credit_packages").fetchone() == (2,)
    migrate(migrated, "CREATE TABLE credit_packages (id int, name text); "
                      "GRANT SELECT ON credit_packages TO app")
    assert migrated.connect().execute("SELECT count(*) FROM credit_packages").fetchone() == (0,)  # the real table
    assert ("legacy name retired", {"name": "credit_packages", "taken_by": ["public.credit_packages"]}) \
        in timeline(migrated)


def test_unrelated_ddl_is_left_alone(migrated):
    migrate(migrated, "CREATE TABLE other (id int); ALTER TABLE other ADD COLUMN x int; DROP TABLE other")
    assert timeline(migrated) == []


def test_a_backend_terminated_mid_repair_leaves_nothing_and_heal_completes_it_later(db):
    db.admin.execute(SEED)
    db.admin.execute("UPDATE selfheal.policy SET value = '30s' WHERE name = 'lock_timeout'")
    db.admin.execute("SELECT selfheal.record_error('42703', 'column \"halfway_data\" does not exist', "
                     "'SELECT halfway_data FROM sessions')")
    holder = db.connect(user="postgres")
    holder.autocommit = False
    # selfheal never waits for the table (NOWAIT); the audit row is written after the ALTER TABLE
    # ran, so holding the audit table stops the repair half-way, with its DDL already done.
    holder.execute("LOCK TABLE selfheal.audit IN EXCLUSIVE MODE")
    healer = db.connect(user="postgres")
    pid = healer.execute("SELECT pg_backend_pid()").fetchone()[0]
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("r", _try(healer, "SELECT heal()")))
    thread.start()
    deadline = time.monotonic() + 20
    while db.scalar("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,)) == 0:
        assert time.monotonic() < deadline, "the repair never reached its lock wait"
        time.sleep(0.05)
    db.admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    thread.join(20)
    assert isinstance(outcome["r"], psycopg.OperationalError)
    holder.rollback()
    assert db.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = 'sessions'::regclass "
                     "AND attname = 'halfway_data'") == 0
    assert db.scalar("SELECT count(*) FROM selfheal.audit") == 0
    assert db.scalar("SELECT status FROM selfheal.error_event") == "pending"
    summary = db.scalar("SELECT heal()")
    assert summary["healed"] == 1
    assert db.connect().execute("SELECT halfway_data FROM sessions LIMIT 1").fetchone() == ({},)


def _try(conn, statement):
    try:
        return conn.execute(statement).fetchone()
    except psycopg.Error as exc:
        return exc


def test_the_applications_own_migration_takes_over_a_column_selfheal_added(db):
    """Run as a migration tool runs it: a plain top-level ALTER TABLE."""
    db.admin.execute(SEED)
    app = db.connect()
    assert fail_then_heal(app, "SELECT level FROM sessions WHERE level > 1")["status"] == "healed"
    db.admin.execute("ALTER TABLE sessions ADD COLUMN level smallint NOT NULL DEFAULT 1")
    assert db.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                     "WHERE attrelid = 'sessions'::regclass AND attname = 'level'") == "smallint"
    assert db.connect().execute("SELECT DISTINCT level FROM sessions").fetchall() == [(1,)]
    assert db.scalar("SELECT count(*) FROM selfheal.audit WHERE action = 'undo' AND reason LIKE 'handed over%%'") == 1


def test_the_applications_ddl_shows_it_nothing_of_selfhealss_own_work(migrated):
    """The compat views taken down and rebuilt around a migration are selfheal's business: the
    migration's session gets no notice ("view ... does not exist, skipping") from them."""
    notices = []
    with psycopg.connect(migrated.cluster.dsn(migrated.name, "migrator"), autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
        for ddl in ("ALTER TABLE sessions RENAME COLUMN service_type TO kind",
                    "ALTER TABLE sessions RENAME COLUMN kind TO kind_of_service",
                    "ALTER TABLE sessions ADD COLUMN note text"):
            conn.execute(ddl)
    assert notices == []
    assert migrated.connect().execute("SELECT service_type, kind FROM sessions ORDER BY id LIMIT 1").fetchone()
