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


def read(conn, known=(), defaults_of=None):
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(catalog.tables_sql_for_client(),
                           {"names": ["t"], "keys": [], "excluded": catalog.EXCLUDED_SCHEMAS,
                            "known": list(known), "defaults_of": defaults_of}).fetchone()


def test_every_change_to_a_column_is_a_new_version_and_an_unchanged_list_is_not_sent_again(db):
    # A version tells apart two reads of one transaction, as a repair's two reads are: the
    # reader stays in one transaction while another session changes the table.
    dsn = db.cluster.dsn(db.name)
    with psycopg.connect(dsn) as conn, psycopg.connect(dsn, autocommit=True) as other:
        other.execute("CREATE TABLE t (a int NOT NULL, b text, c int)")
        versions = [read(conn)["columns_version"]]
        for ddl in CHANGES:
            other.execute(ddl)
            versions.append(read(conn)["columns_version"])
        assert len(set(versions)) == len(versions), list(zip(["created"] + CHANGES, versions))
        again = read(conn, known=[versions[-1]])
        assert again["columns_version"] == versions[-1] and again["columns"] is None
        assert not catalog.columns_unread([again], {versions[-1]: ()})
        known = {}
        first = catalog.tables_from_rows([read(conn)], known)
        assert catalog.tables_from_rows([again], known) == first  # the columns come from what was read
        assert [(c.name, c.type, c.attnum) for c in first[0].columns] == [("a", "integer", 1), ("b2", "text", 2),
                                                                          ("c", "bigint", 3)]
        assert first[0].columns[0].identity == "a" and first[0].columns[2].default is None
        other.execute("ALTER TABLE t RENAME COLUMN c TO c2")  # changed after it was read
        assert catalog.columns_unread([read(conn, known=[versions[-1]])], {versions[-1]: ()})


def test_defaults_are_read_only_for_the_tables_asked_for_and_a_list_without_them_is_another_version(db):
    with psycopg.connect(db.cluster.dsn(db.name), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (a int DEFAULT 7, b int GENERATED ALWAYS AS (a * 2) STORED)")
        every, asked, other = read(conn), read(conn, defaults_of=["t"]), read(conn, defaults_of=["elsewhere"])
        (full,), (unread,) = catalog.tables_from_rows([asked]), catalog.tables_from_rows([other])
        assert catalog.tables_from_rows([every]) == (full,)
        assert [c.default for c in full.columns] == ["7", "(a * 2)"] and full.defaults_read
        # A generated column's expression is always there; a plain default only when asked for.
        assert [c.default for c in unread.columns] == [None, "(a * 2)"] and not unread.defaults_read
        assert other["columns_version"] != asked["columns_version"]
        # Knowing the list without defaults is not knowing it with them: it is to be read again.
        again = read(conn, known=[other["columns_version"]], defaults_of=["t"])
        assert catalog.columns_unread([again], {other["columns_version"]: unread.columns})


# Inside the server, as selfheal's own functions run: the installed package on sys.path.
IN_SERVER = """
DO $$
import sys
path = plpy.execute("SELECT (SELECT setting FROM pg_catalog.pg_config WHERE name = 'PKGLIBDIR') || '/selfheal/' "
                    "|| extversion AS p FROM pg_catalog.pg_extension WHERE extname = 'selfheal'")[0]["p"]
path in sys.path or sys.path.insert(0, path)
{body}
$$ LANGUAGE plpython3u
"""

SERVER_READS_TWICE = IN_SERVER.format(body="""\
from selfheal.server import adapter, facts
db = adapter._Db(plpy)
db.columns_read = {}  # as within one repair: the read under the lock knows the first read's versions
first = facts.load_catalog(db, {"t"}, set()).table("public", "t")
plpy.execute("ALTER TABLE t RENAME COLUMN b TO b2")
again = facts.load_catalog(db, {"t"}, set()).table("public", "t")
plpy.notice(" ".join(c.name for c in first.columns) + " / " + " ".join(c.name for c in again.columns))""")


def last_notice_in_server(db, table_ddl: str, block: str) -> str:
    """The last notice of `block` (an IN_SERVER DO block), run on a new table t."""
    with psycopg.connect(db.cluster.dsn(db.name), autocommit=True) as conn:
        conn.execute(table_ddl)
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute(block)
        return notices[-1]


def test_a_column_changed_between_the_two_reads_of_a_repair_is_read_again(db):
    assert last_notice_in_server(db, "CREATE TABLE t (id int PRIMARY KEY, a int, b int)",
                                 SERVER_READS_TWICE) == "id a b / id a b2"


SERVER_ALIAS_BECOMES_WRITABLE = IN_SERVER.format(body="""\
from selfheal.core import planner
from selfheal.server import adapter, facts
db = adapter._Db(plpy)
table = facts.load_catalog(db, {"t"}, set()).table("public", "t")  # no alias yet: no defaults read
writable = planner.Alias("public", "t", "kind_id", expression='("kind")::integer', writable=True)
served = facts.with_defaults_for(db, table, [writable])
plpy.notice(f"{table.defaults_read} {served.defaults_read} {served.column('label').default}")""")


def test_a_table_read_before_it_had_aliases_is_read_again_with_its_defaults_for_a_write_trigger(db):
    """The event triggers and refresh_compat read a table's facts, then its aliases: an alias
    made writable in between must not leave its write trigger without the table's defaults."""
    assert last_notice_in_server(db, "CREATE TABLE t (id int PRIMARY KEY, kind text, label text DEFAULT 'none')",
                                 SERVER_ALIAS_BECOMES_WRITABLE) == "False True 'none'::text"


SERVER_READS_A_TABLE_WITHOUT_COLUMNS = IN_SERVER.format(body="""\
from selfheal.server import adapter, facts
db = adapter._Db(plpy)
db.columns_read = {}
first = facts.load_catalog(db, {"t"}, set()).table("public", "t")
again = facts.load_catalog(db, {"t"}, set()).table("public", "t")
plpy.notice(f"{first.columns!r} {again.columns!r}")""")


def test_a_table_whose_every_column_was_dropped_reads_as_one_without_columns(db):
    """A table with no columns sends an empty list, never NULL, which would read as "columns not
    sent" and ask for them again."""
    assert last_notice_in_server(db, "CREATE TABLE t (a int); ALTER TABLE t DROP COLUMN a",
                                 SERVER_READS_A_TABLE_WITHOUT_COLUMNS) == "() ()"
    with psycopg.connect(db.cluster.dsn(db.name), autocommit=True) as conn:
        row = read(conn)
        assert row["columns"] == "[]"
        (table,) = catalog.tables_from_rows([row])
        assert table.columns == ()
