"""selfheal export, tried as a new user would: replayed on a fresh copy of the schema, it gives the same result."""

import subprocess
import sys
import types

import psycopg
import pytest

from selfheal.cli import export

from .support import SEED, fail_then_heal
from .test_squawk import assert_passes

TABLES = SEED.split("GRANT EXECUTE")[0]  # the schema and grants, without selfheal


def shape(conn) -> dict:
    columns = conn.execute("""SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                                     pg_get_expr(d.adbin, d.adrelid)
                                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                                LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                               WHERE c.relname IN ('sessions', 'credit_packages') AND a.attnum > 0
                                 AND c.relnamespace = 'public'::regnamespace
                                 AND NOT a.attisdropped ORDER BY 1, a.attnum""").fetchall()
    views = conn.execute("""SELECT c.relname, array_agg(a.attname ORDER BY a.attnum)
                              FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                             WHERE c.relnamespace = 'selfheal_compat_public'::regnamespace AND c.relkind = 'v'
                             GROUP BY 1 ORDER BY 1""").fetchall()
    return {"columns": columns, "views": views}


@pytest.fixture
def healed(db):
    db.admin.execute(SEED)
    app = db.connect()
    fail_then_heal(app, "SELECT recommendation_data FROM sessions")
    fail_then_heal(app, "SELECT * FROM sessions WHERE service_type_id = 1")
    fail_then_heal(app, "SELECT cp.package_name FROM credit_packages cp")
    fail_then_heal(app, "SELECT visit_count FROM sessions")
    undone = db.scalar("SELECT id FROM selfheal.audit WHERE column_name = 'visit_count'")
    db.admin.execute("SELECT selfheal.undo(%s)", (undone,))  # undone changes are not exported
    db.admin.execute("SELECT selfheal.add_alias('credit_packages', 'package_name', $$'Package ' || credits$$)")
    return db


@pytest.fixture
def every_kind(healed):
    """The healed repairs, a renamed column served by its old name, and two derived columns in the
    table: a STORED generated one (a small table) and one kept by a sync trigger (a large table)."""
    db = healed
    db.admin.execute("ALTER TABLE sessions RENAME COLUMN started_at TO start_time")  # served as started_at
    db.admin.execute("SELECT selfheal.add_alias('credit_packages', 'credits_label', $$'Package ' || credits$$, true)")
    db.admin.execute("UPDATE selfheal.policy SET value = '1' WHERE name = 'generated_column_row_limit'")
    db.admin.execute("SELECT selfheal.add_alias('sessions', 'service_type_num', $$service_type::int$$, true)")
    assert db.admin.execute("SELECT evidence->>'strategy' FROM selfheal.audit WHERE action = 'add_column' "
                            "AND status = 'applied' AND evidence ? 'strategy' ORDER BY id").fetchall() == [
        ("stored generated column",), ("column + sync trigger + batched backfill",)]
    return db


def export_cli(db, *options) -> str:
    return subprocess.run([sys.executable, "-m", "selfheal.cli", "export", "--dsn", db.cluster.dsn(db.name), *options],
                          capture_output=True, text=True, check=True).stdout


def load_revision(page: str) -> tuple[types.ModuleType, list[str], list[str]]:
    """An Alembic revision, and the statements its upgrade and its downgrade pass to op.execute."""
    executed = []
    alembic = types.ModuleType("alembic")
    alembic.op = types.SimpleNamespace(execute=executed.append)  # Alembic's op.execute, recording
    sys.modules["alembic"] = alembic
    try:
        module = types.ModuleType("revision")
        exec(compile(page, "revision.py", "exec"), module.__dict__)
    finally:
        del sys.modules["alembic"]
    module.upgrade()
    up = list(executed)
    executed.clear()
    module.downgrade()
    return module, up, executed


def fresh_copy(cluster, name):
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    conn = psycopg.connect(cluster.dsn(name), autocommit=True)
    conn.execute(TABLES)
    return conn


def test_sql_export_replayed_on_a_fresh_copy_gives_the_same_result(healed):
    result = subprocess.run([sys.executable, "-m", "selfheal.cli", "export", "--dsn",
                             healed.cluster.dsn(healed.name)], capture_output=True, text=True, check=True)
    script = result.stdout
    assert "visit_count" not in script and script.startswith("-- selfheal export")
    with fresh_copy(healed.cluster, "export_sql") as copy:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "export_sql"], input=script, text=True,
                       check=True, capture_output=True, env=healed.cluster.env)
        assert shape(copy) == shape(healed.admin)
    with psycopg.connect(healed.cluster.dsn("export_sql", "app"), autocommit=True) as app:
        assert app.execute("SELECT id FROM sessions WHERE service_type_id = 1").fetchall() == [(1,)]
        assert app.execute("SELECT cp.package_name FROM credit_packages cp ORDER BY id").fetchall() == [
            ("Package 10",), ("Package 50",)]


def test_alembic_revision_upgrades_to_the_same_result(healed):
    page = export.render_alembic(export.build(healed.admin), down_revision="abc123")
    module, up, down = load_revision(page)
    assert module.down_revision == "abc123" and len(module.revision) == 12
    with fresh_copy(healed.cluster, "export_alembic") as copy:
        with copy.transaction():  # as Alembic runs a PostgreSQL migration: SET LOCAL holds
            for statement in up:
                copy.execute(statement)
        assert shape(copy) == shape(healed.admin)
        with copy.transaction():
            for statement in down:
                copy.execute(statement)
        assert copy.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'selfheal_compat_public'::regnamespace"
                            ).fetchone() == (0,)


def test_the_migration_passes_squawk_with_timeouts_set_first(every_kind, tmp_path):
    script = export_cli(every_kind)
    assert_passes(script, tmp_path)
    # Both before any DDL; the STORED column copies a table, so room for that copy and a comment why.
    order = ["BEGIN;", "SET LOCAL lock_timeout = '2s';", "SET LOCAL statement_timeout = '30s';", "ALTER TABLE"]
    assert [script.index(s) for s in order] == sorted(script.index(s) for s in order)
    assert "copies public.credit_packages under ACCESS EXCLUSIVE" in script
    assert script.count("-- squawk-ignore ban-drop-view -- a compat view holds no data") == 2
    assert "-- squawk-ignore prefer-bigint-over-int -- integer is the type the application reads" in script
    assert "in batches after this migration" in script  # the backfill is not part of it


def test_the_alembic_revision_runs_sql_that_passes_squawk(every_kind, tmp_path):
    """squawk reads SQL files: the SQL is what the revision passes to op.execute, as alembic
    upgrade --sql would print it. Alembic runs a PostgreSQL migration in one transaction."""
    _, up, down = load_revision(export_cli(every_kind, "--format", "alembic"))
    assert_passes("".join(f"{s};\n" for s in up), tmp_path, "--assume-in-transaction")
    assert_passes("".join(f"{s};\n" for s in down), tmp_path, "--assume-in-transaction")
    assert up[0].endswith("SET LOCAL lock_timeout = '2s'") and down[0].endswith("SET LOCAL lock_timeout = '2s'")


def test_the_downgrade_of_a_synced_column_leaves_its_table_writable(every_kind):
    """Its sync trigger goes first: left behind without the column, it would fail every write."""
    for statement in export.build(every_kind.admin).down:
        every_kind.admin.execute(statement)
    every_kind.admin.execute("INSERT INTO sessions (service_type) VALUES ('4')")
    assert every_kind.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'sessions'::regclass "
                             "AND NOT tgisinternal") == 0
