"""Reads that filter on a derived name use an index, as reads on its source column do: selfheal
asks for one when the source is indexed, and `selfheal indexes --apply` builds it CONCURRENTLY.
Tried as a new user would, from the command line."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from .support import fail_then_heal

ITEMS = """
CREATE TABLE items (id bigint PRIMARY KEY, kind text NOT NULL);
INSERT INTO items SELECT g, (g % 5000)::text FROM generate_series(1, 50000) g;
CREATE INDEX items_kind_idx ON items (kind);
ANALYZE items;
GRANT SELECT ON items TO app;
GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO app;
SELECT selfheal.enable_compat('app');
"""
READ = "SELECT id FROM items WHERE kind_id = 42"


def selfheal(db, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "selfheal.cli", *args, "--dsn", db.cluster.dsn(db.name)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def items(db):
    db.admin.execute(ITEMS)
    return db


def plan_of(conn, sql: str) -> str:
    return "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql))


def test_a_derived_name_over_an_indexed_column_gets_its_index_built_concurrently(items):
    app = items.connect()
    result = fail_then_heal(app, READ)
    assert result["status"] == "healed" and "selfheal indexes --apply" in result["reason"]
    assert "Seq Scan" in plan_of(app, READ)  # served, but every read scans 50,000 rows

    listed = selfheal(items, "indexes")
    assert listed.returncode == 1 and "would run" in listed.stdout and "CREATE INDEX CONCURRENTLY" in listed.stdout
    assert items.scalar("SELECT count(*) FROM pg_index WHERE indrelid = 'items'::regclass") == 2  # nothing built

    built = selfheal(items, "indexes", "--apply")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "[done]" in built.stdout
    assert items.scalar("SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = 'items'::regclass") is True
    assert "Index" in plan_of(app, READ) and "Seq Scan" not in plan_of(app, READ)
    assert app.execute(READ).fetchall() == [(42,), (5042,), (10042,), (15042,), (20042,), (25042,), (30042,),
                                            (35042,), (40042,), (45042,)]
    again = selfheal(items, "indexes", "--apply")
    assert again.returncode == 0 and "already so" in again.stdout


def test_a_build_that_cannot_finish_leaves_no_invalid_index(items):
    """A value the cast cannot take, written after the repair, makes the build fail: the index
    is dropped again, and the table and its writers are untouched."""
    fail_then_heal(items.connect(), READ)
    items.admin.execute("INSERT INTO items VALUES (0, 'not a number')")
    failed = selfheal(items, "indexes", "--apply")
    assert failed.returncode == 1 and "[fault]" in failed.stdout and "not built" in failed.stdout
    assert items.scalar("SELECT count(*) FROM pg_index WHERE indrelid = 'items'::regclass") == 2
    items.admin.execute("INSERT INTO items VALUES (-1, '7')")  # writers were never blocked


def test_an_unindexed_source_or_a_small_table_asks_for_nothing(db):
    db.admin.execute(ITEMS.replace("CREATE INDEX items_kind_idx ON items (kind);", ""))
    result = fail_then_heal(db.connect(), READ)
    assert result["status"] == "healed" and "index" not in result["reason"]
    listed = selfheal(db, "indexes")
    assert listed.returncode == 0 and "No derived name asks for an index" in listed.stdout


def test_an_undone_repair_builds_nothing(items):
    result = fail_then_heal(items.connect(), READ)
    items.admin.execute("SELECT selfheal.undo(%s)", (result["audit_id"],))
    listed = selfheal(items, "indexes", "--apply")
    assert listed.returncode == 0 and "CREATE INDEX" not in listed.stdout
    with pytest.raises(psycopg.errors.UndefinedColumn):
        items.connect().execute(READ)
