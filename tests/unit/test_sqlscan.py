import pytest

from selfheal.core import sqlscan
from selfheal.core.sqlscan import RelationRef


def test_alias_resolves_to_its_table():
    sql = "SELECT cp.package_name FROM credit_packages cp"
    assert sqlscan.resolve_qualifier(sql, "cp") == RelationRef("credit_packages", None, "cp")


def test_relations_in_joins_lists_and_schemas():
    sql = """SELECT * FROM public.sessions AS s
             JOIN credit_packages cp ON cp.id = s.id, "InvoiceLine" il
             WHERE s.id IN (SELECT id FROM other)"""
    refs = sqlscan.relations(sql)
    assert RelationRef("sessions", "public", "s") in refs
    assert RelationRef("credit_packages", None, "cp") in refs
    assert RelationRef("InvoiceLine", None, "il") in refs
    assert RelationRef("other", None, None) in refs


def test_insert_update_and_delete_targets():
    assert sqlscan.relations("INSERT INTO sessions (a) VALUES (1)")[0].name == "sessions"
    assert sqlscan.relations("UPDATE ONLY sessions SET a = 1")[0].name == "sessions"
    assert sqlscan.relations("DELETE FROM sessions WHERE a = 1")[0].name == "sessions"


def test_comments_and_strings_do_not_fool_the_scanner():
    sql = """SELECT 'FROM fake f' AS s, $$FROM fake2$$ /* FROM fake3 /* nested */ */ -- FROM fake4
             FROM real_one r"""
    assert [r.name for r in sqlscan.relations(sql)] == ["real_one"]


def test_unquoted_names_fold_and_quoted_names_keep_case():
    tokens = sqlscan.tokenize('SELECT UnitPrice, "UnitPrice" FROM t')
    assert tokens[1].value == "unitprice" and tokens[3].value == "UnitPrice"


@pytest.mark.parametrize("sql, column, expected", [
    ("SELECT * FROM sessions WHERE service_type_id = 1", "service_type_id", "integer"),
    ("SELECT * FROM t WHERE 5000000000 < big_id", "big_id", "bigint"),
    ("SELECT * FROM t WHERE price > 1.5", "price", "numeric"),
    ("SELECT * FROM t WHERE label = 'x'", "label", "text"),
    ("SELECT * FROM t WHERE flag = true", "flag", "boolean"),
    ("SELECT * FROM t WHERE payload->>'a' = 'b'", "payload", "jsonb"),
    ("SELECT * FROM t WHERE code IN (1, 2)", "code", "integer"),
    ("INSERT INTO t (a, note, n) VALUES (1, 'hello', 3)", "note", "text"),
    ("INSERT INTO t (a, n) VALUES ('x', 3)", "n", "integer"),
    ("UPDATE t SET seen_at = now()", "seen_at", "timestamp with time zone"),
    ("SELECT * FROM t WHERE ts > '2024-01-01'::timestamptz", "ts", "timestamp with time zone"),
    ("SELECT mystery FROM t", "mystery", None),
    ("SELECT * FROM t WHERE a = $1", "a", None),
])
def test_usage_says_which_type_a_column_has(sql, column, expected):
    assert sqlscan.infer_usage_type(sql, column) == expected


def test_qualified_usage_only_counts_for_its_qualifier():
    sql = "SELECT * FROM a x JOIN b y ON true WHERE x.code = 1 AND y.code = 'z'"
    assert sqlscan.infer_usage_type(sql, "code", "x") == "integer"
    assert sqlscan.infer_usage_type(sql, "code", "y") == "text"


def test_hostile_and_huge_input_is_bounded():
    sql = "SELECT " + "(" * 10000 + " FROM '" + "x" * 10 ** 6
    sqlscan.relations(sql)  # must not raise or hang
    assert len(sqlscan.tokenize("SELECT 1" + " " * sqlscan.MAX_STATEMENT_CHARS + "FROM t")) == 2


@pytest.mark.parametrize("sql, expected", [
    ("ALTER TABLE sessions RENAME COLUMN a TO b", [RelationRef("sessions")]),
    ("ALTER TABLE IF EXISTS ONLY public.sessions DROP COLUMN a", [RelationRef("sessions", "public")]),
    ('DROP TABLE IF EXISTS a, "B", s.c CASCADE', [RelationRef("a"), RelationRef("B"), RelationRef("c", "s")]),
    ("ALTER TABLE x ADD COLUMN y int; ALTER TABLE z RENAME TO w", [RelationRef("x"), RelationRef("z")]),
    ("CREATE TABLE t (id int)", []),
])
def test_ddl_targets(sql, expected):
    assert sqlscan.ddl_targets(sql) == expected


def test_mentions_rename_ignores_strings_and_comments():
    assert sqlscan.mentions_rename("ALTER TABLE t RENAME TO u")
    assert not sqlscan.mentions_rename("ALTER TABLE t ADD COLUMN c text DEFAULT 'rename' -- rename")


def test_command_finds_the_verb_and_the_table_written_past_a_with_clause():
    assert sqlscan.command("WITH x AS (UPDATE a SET b = 1) SELECT * FROM x") == ("SELECT", None)
    verb, ref = sqlscan.command("WITH x AS (SELECT 1) UPDATE ONLY app.t AS q SET v = 1")
    assert verb == "UPDATE" and (ref.schema, ref.name) == ("app", "t")
    assert sqlscan.command("DELETE FROM t")[1].name == "t" and sqlscan.command('INSERT INTO "T" VALUES (1)')[1].name == "T"
    assert sqlscan.command("DO $$ BEGIN END $$") == (None, None)
    verb, ref = sqlscan.command("COPY app.t (a, b) FROM STDIN WITH (FORMAT csv)")
    assert verb == "COPY" and (ref.schema, ref.name) == ("app", "t")
    assert sqlscan.command("COPY t TO STDOUT") == sqlscan.command("COPY (SELECT 1) TO STDOUT") == ("SELECT", None)


def test_names_identifier_ignores_strings_comments_and_dollar_quotes():
    assert sqlscan.names_identifier("SELECT Ghost FROM t", "ghost")
    assert not sqlscan.names_identifier("SELECT 'ghost' /* ghost */ FROM t -- ghost", "ghost")
    assert not sqlscan.names_identifier("DO $$ BEGIN PERFORM ghost; END $$", "ghost")
    assert sqlscan.names_identifier("SELECT p.ghost FROM t p", "ghost", "p")
    assert not sqlscan.names_identifier("SELECT q.ghost FROM t p", "ghost", "p")
    assert sqlscan.names_identifier("SELECT " + "a" * 70 + " FROM t", "a" * 63)  # PostgreSQL cut it to 63 bytes


def test_ddl_added_columns_reads_every_add_column_of_an_alter_table():
    assert sqlscan.ddl_added_columns("ALTER TABLE users ADD COLUMN level smallint NOT NULL DEFAULT 1") == [
        (sqlscan.RelationRef("users"), "level")]
    found = sqlscan.ddl_added_columns('alter table only app."Users" add if not exists x int, add column y int '
                                      'check (y > 0), add constraint c unique (x)')
    assert found == [(sqlscan.RelationRef("Users", "app"), "x"), (sqlscan.RelationRef("Users", "app"), "y")]
    assert sqlscan.ddl_added_columns("ALTER TABLE t RENAME COLUMN a TO b") == []


def test_returning_chooses_no_rows():
    assert not sqlscan.in_write_predicate("UPDATE t SET a = 1 WHERE id = 2 RETURNING legacy", "legacy")
    assert sqlscan.in_write_predicate("DELETE FROM t WHERE legacy = 1 RETURNING id", "legacy")


def test_identifiers_with_characters_beyond_the_basic_plane_are_one_token():
    tokens = sqlscan.tokenize("SELECT a FROM t AS \U0001F600$a$; INSERT INTO x VALUES (1)")
    assert [t.value for t in tokens][5:8] == ["\U0001F600$a$", ";", "insert"]


@pytest.mark.parametrize("sql, column, expected", [
    ("INSERT INTO t (prefs) VALUES (%s::jsonb)", "prefs", "jsonb"),
    ("UPDATE t SET gift_wrap = %(gift_wrap)s::boolean", "gift_wrap", "boolean"),
    ("INSERT INTO t (prefs, a) VALUES ($1::jsonb, $2)", "prefs", "jsonb"),
    ("UPDATE t SET prefs = CAST(%s AS jsonb)", "prefs", "jsonb"),
    ("SELECT * FROM t WHERE a = :name::int", "a", "integer"),
    ("INSERT INTO t (gift) VALUES (%s)", "gift", None),  # a bare placeholder says nothing
])
def test_casts_on_driver_placeholders_give_the_type(sql, column, expected):
    assert sqlscan.infer_usage_type(sql, column) == expected


def test_declared_types_are_read_back_and_only_known_types_count():
    statement = sqlscan.declare_types("INSERT INTO orders (gift_wrap) VALUES (%s)",
                                      {"gift_wrap": "boolean", "prefs": "jsonb", "odd": "money", "bad name": "text"})
    assert statement.endswith("/* selfheal:declared gift_wrap=boolean prefs=jsonb */")
    assert sqlscan.declared_types(statement) == {"gift_wrap": "boolean", "prefs": "jsonb"}
    assert sqlscan.declared_types("SELECT 1 /* selfheal:declared x=bool; DROP TABLE t */") == {}
    assert sqlscan.declared_types("SELECT 1 /* selfheal:declared x=timestamptz */") == {
        "x": "timestamp with time zone"}


@pytest.mark.parametrize("sql, qualifier, expected", [
    ("WITH t AS (SELECT * FROM track) SELECT t.trackid FROM t", "t", ["track"]),
    ("WITH a AS (SELECT * FROM track), b AS (SELECT a.* FROM a) SELECT b.x FROM b", "b", ["track"]),
    ("WITH t AS MATERIALIZED (SELECT * FROM app.track) SELECT x.id FROM t AS x", "x", ["track"]),
    ("SELECT s.albumid FROM (SELECT * FROM track) AS s", "s", ["track"]),
    ("SELECT s.albumid FROM (SELECT DISTINCT * FROM track t JOIN album a ON true) s", "s", ["track", "album"]),
    ("WITH RECURSIVE t AS (SELECT * FROM track UNION ALL SELECT * FROM t) SELECT t.id FROM t", "t", ["track"]),
    # A set operation's column names are its first branch's.
    ("WITH t AS (SELECT * FROM album UNION ALL SELECT * FROM track) SELECT t.albumid FROM t", "t", ["album"]),
    ("SELECT s.x FROM (SELECT * FROM (SELECT * FROM track) u EXCEPT SELECT * FROM album) s", "s", ["track"]),
    # A scope whose query names its columns, or renames them, passes no relation's column through.
    ("SELECT s.a FROM (SELECT track_id AS a FROM track) s", "s", []),
    ("WITH t(a) AS (SELECT * FROM track) SELECT t.a FROM t", "t", []),
    ("SELECT s.n FROM (SELECT count(*) AS n FROM track) s", "s", []),
])
def test_a_qualifier_reads_through_ctes_and_subqueries_that_pass_every_column(sql, qualifier, expected):
    assert [ref.name for ref in sqlscan.qualifier_sources(sql, qualifier)] == expected


def test_a_cte_is_no_relation_of_the_statement():
    sql = "WITH track AS (SELECT * FROM public.track) SELECT * FROM track JOIN album USING (id)"
    assert [(r.schema, r.name) for r in sqlscan.relations(sql)] == [("public", "track"), (None, "album")]


def test_using_names_the_two_sides_of_its_own_join():
    sql = ('SELECT * FROM invoice i JOIN customer c USING ("CustomerId") '
           "JOIN (SELECT 1) x ON true JOIN employee e USING (employeeid)")
    left, right = sqlscan.using_sides(sql, "CustomerId")
    assert [r.name for r in left] == ["invoice"] and [r.name for r in right] == ["customer"]
    left, right = sqlscan.using_sides(sql, "employeeid")
    assert [r.name for r in left] == ["invoice", "customer"] and [r.name for r in right] == ["employee"]
    assert sqlscan.using_sides(sql, "nothing") == ([], [])


@pytest.mark.parametrize("sql, drop", [
    ("DROP EXTENSION selfheal", False),
    ('drop extension if exists foo, "selfheal" cascade;', True),
    ("DROP EXTENSION foo; -- selfheal", None),
    ("SELECT 'DROP EXTENSION selfheal'", None),
    ("DROP EXTENSION foo; DROP EXTENSION SelfHeal RESTRICT", False),
    ("DROP EXTENSION pg_trgm CASCADE; DROP EXTENSION selfheal", False),  # another statement's CASCADE
])
def test_whether_a_statement_drops_selfheal_and_with_cascade(sql, drop):
    assert sqlscan.extension_drop(sql, "selfheal") == drop


def test_statements_of_one_shape_differ_only_in_their_constants():
    a = sqlscan.shape("SELECT kind_id FROM t WHERE id = 42 AND name = 'ann' -- web")
    assert a == sqlscan.shape("select KIND_ID from t where id = 7 and name = 'o''brien'")
    assert a != sqlscan.shape("SELECT kind_id FROM t WHERE id = 42 AND name = 42")  # text and integer differ
    assert a != sqlscan.shape("SELECT kind_id FROM t WHERE id = 4200000000 AND name = 'ann'")  # bigint
    assert a != sqlscan.shape('SELECT "KIND_ID" FROM t WHERE id = 42 AND name = \'ann\'')  # quoted names are exact
    declared = "SELECT gift_wrap FROM t WHERE id = 1 /* selfheal:declared gift_wrap=boolean */"
    assert sqlscan.shape(declared) != sqlscan.shape("SELECT gift_wrap FROM t WHERE id = 1")
    long = "SELECT x FROM t WHERE id = 1 " + " " * sqlscan.MAX_STATEMENT_CHARS
    assert sqlscan.shape(long + "AND y = 1") != sqlscan.shape(long + "AND y = 2")
