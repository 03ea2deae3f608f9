"""The version of a table's column list, by which a repair reads a wide table's columns once:
every change to a column gives a new version, so a plan is never made on columns that changed."""

import psycopg
from psycopg.rows import dict_row

from selfheal.core import catalog

CHANGES = [
    "ALTER TABLE t ADD COLUMN d text",
    "ALTER TABLE t RENAME COLUMN b TO b2",
    "ALTER TABLE t ALTER COLUMN c TYPE bigint",
    "ALTER TABLE t ALTER COLUMN c SET DEFAULT 7",
    "ALTER TABLE t ALTER COLUMN c SET DEFAULT 8",
    "ALTER TABLE t ALTER COLUMN c DROP DEFAULT",
    "ALTER TABLE t ALTER COLUMN b2 SET NOT NULL",
    "ALTER TABLE t ALTER COLUMN a ADD GENERATED ALWAYS AS IDENTITY",
    "ALTER TABLE t DROP COLUMN d",
]


def read(conn, known=()):
    query = catalog.tables_sql("0").replace("%", "%%")
    for number, name in (("$1", "names"), ("$2", "keys"), ("$3", "excluded"), ("$4", "known")):
        query = query.replace(number, f"%({name})s")
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"names": ["t"], "keys": [], "excluded": catalog.EXCLUDED_SCHEMAS,
                                   "known": list(known)}).fetchone()


def test_every_change_to_a_column_is_a_new_version_and_an_unchanged_list_is_not_sent_again(db):
    with psycopg.connect(db.cluster.dsn(db.name), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (a int NOT NULL, b text, c int)")
        versions = [read(conn)["columns_version"]]
        for ddl in CHANGES:
            conn.execute(ddl)
            versions.append(read(conn)["columns_version"])
        assert len(set(versions)) == len(versions), list(zip(["created"] + CHANGES, versions))
        again = read(conn, known=[versions[-1]])
        assert again["columns_version"] == versions[-1] and again["columns"] is None
        known = {}
        first = catalog.tables_from_rows([read(conn)], known)
        assert catalog.tables_from_rows([again], known) == first  # the columns come from what was read
