"""ALTER EXTENSION selfheal UPDATE from each released version: an upgraded database has the same
routines, triggers, tables and privileges as a new one, and keeps its history.

Each released install script is put beside the current one for the length of the test
(tests/released.py).
"""

from __future__ import annotations

import psycopg
import pytest

from selfheal.core import errors

from ..released import RELEASED, installed_script

assert RELEASED, "no released install script to upgrade from"


@pytest.fixture(params=RELEASED)
def released(request):
    # Its Python is never imported here: the test calls no routine of the old version.
    with installed_script(request.param, f"/nonexistent/selfheal/{request.param}") as version:
        yield version


CATALOG = {
    "routines": """
        SELECT p.oid::regprocedure::text, p.prosecdef, p.provolatile, p.proconfig, p.prosrc,
               coalesce(p.proacl, acldefault('f', p.proowner))::text, obj_description(p.oid, 'pg_proc')
          FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
          JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'selfheal' ORDER BY 1""",
    "event triggers": "SELECT evtname, evtevent, evttags, evtfoid::regproc::text, evtenabled FROM pg_event_trigger "
                      "WHERE evtname LIKE 'selfheal%' ORDER BY 1",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(ad.adbin, ad.adrelid), col_description(c.oid, a.attnum)
          FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
         WHERE c.relnamespace = 'selfheal'::regnamespace AND c.relkind = 'r' ORDER BY 1, 2""",
    "indexes and constraints": """
        SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
         WHERE c.relnamespace = 'selfheal'::regnamespace
        UNION ALL
        SELECT conrelid::regclass::text || ': ' || pg_get_constraintdef(oid) FROM pg_constraint
         WHERE connamespace = 'selfheal'::regnamespace ORDER BY 1""",
    "tables": "SELECT relname, relacl::text, obj_description(oid, 'pg_class') FROM pg_class "
              "WHERE relnamespace = 'selfheal'::regnamespace AND relkind = 'r' ORDER BY 1",
    "schemas": "SELECT nspname, nspacl::text FROM pg_namespace WHERE nspname LIKE 'selfheal%' ORDER BY 1",
    "policy": "SELECT name, value, description FROM selfheal.policy ORDER BY 1",
}


def catalog_of(conn) -> dict:
    return {name: conn.execute(sql).fetchall() for name, sql in CATALOG.items()}


def test_an_upgraded_database_equals_a_new_one_and_keeps_its_history(cluster, released):
    names = {"old": f"up_{released.replace('.', '_')}", "new": "up_fresh"}
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        for name in names.values():
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
    old = psycopg.connect(cluster.dsn(names["old"]), autocommit=True)
    new = psycopg.connect(cluster.dsn(names["new"]), autocommit=True)
    try:
        old.execute(f"CREATE EXTENSION selfheal VERSION '{released}' CASCADE")
        old.execute("CREATE TABLE t (id int PRIMARY KEY)")
        # History as the old version left it: an event still pending, one long message.
        old.execute("""INSERT INTO selfheal.error_event (source, sqlstate, message, statement, username, signature, class)
                       VALUES ('client', '42703', 'column "extra" does not exist', 'SELECT extra FROM t WHERE extra > 0',
                               'postgres', '42703: column "extra" does not exist', 'missing_column'),
                              ('client', 'P0001', repeat('y', 1500), NULL, 'postgres',
                               'P0001: ' || repeat('y', 1500), 'raised by PL/pgSQL')""")
        old.execute("ALTER EXTENSION selfheal UPDATE")
        new.execute("CREATE EXTENSION selfheal CASCADE")

        assert old.execute("SELECT extversion FROM pg_extension WHERE extname = 'selfheal'").fetchone() == \
            new.execute("SELECT extversion FROM pg_extension WHERE extname = 'selfheal'").fetchone()
        upgraded, fresh = catalog_of(old), catalog_of(new)
        for part in CATALOG:
            assert upgraded[part] == fresh[part], part

        keys = old.execute("SELECT signature_key::text, length(signature) FROM selfheal.error_event ORDER BY id").fetchall()
        assert keys == [(errors.signature_key("42703", 'column "extra" does not exist'), 36),
                        (errors.signature_key("P0001", "y" * 1500), 1000)]  # the new code's keys; long ones cut
        summary = old.execute("SELECT heal()").fetchone()[0]
        assert summary["healed"] == 1, summary  # the old pending event, under the new rules
        assert old.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass "
                           "AND attname = 'extra'").fetchone()[0] == 1
    finally:
        old.close()
        new.close()
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            for name in names.values():
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
