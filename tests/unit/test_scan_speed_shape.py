"""Scan's quick paths give the answers of the plain ones they replace (nothing here is timed:
speed is measured by bench/scan.py)."""

from pglast import ast as pg
from pglast import parse_sql
from pglast.visitors import Visitor

from selfheal.cli import scan
from selfheal.core.planner import Alias, Column, Table

STATEMENTS = [
    "SELECT a, t.b, s.c, * FROM t JOIN s ON s.id = t.s_id WHERE t.d IN (SELECT e FROM u) ORDER BY f",
    "WITH recent AS (SELECT id, total FROM invoice) SELECT r.total, x.y FROM recent r, (SELECT y FROM v) x",
    "INSERT INTO invoice (customer_id, total) SELECT c.id, sum(l.unit_price) FROM customer c "
    "JOIN invoice_line l ON l.customer_id = c.id GROUP BY c.id RETURNING invoice_id",
    "UPDATE track SET unit_price = unitprice * 2 FROM album a WHERE a.album_id = track.albumid",
    "DELETE FROM playlist_track USING playlist p WHERE p.playlist_id = playlist_track.playlist_id; SELECT 1",
    "SELECT CASE WHEN a > 1 THEN (SELECT max(b) FROM s.t2) ELSE c END, 'x'::text, $1 FROM public.t1 LIMIT 3",
    "SELECT 'ünïcödé €', \"Größe\", g.\"Maß\" FROM \"Gewürz\" g WHERE note = '日本' AND g.x IN (SELECT y FROM z)",
    "CREATE TABLE n (a int REFERENCES m (b)); ALTER TABLE o RENAME COLUMN p TO q; COPY r (s) FROM STDIN",
    "SELECT a FROM t UNION (SELECT b FROM u INTERSECT SELECT c FROM v) ORDER BY 1",
    "INSERT INTO t AS q (a) SELECT r.b FROM u r ON CONFLICT (a) DO UPDATE SET a = excluded.a RETURNING q.a",
    "MERGE INTO t USING u ON t.a = u.a WHEN MATCHED THEN UPDATE SET b = u.b",
    "SELECT * FROM t, LATERAL (SELECT t.a) s(x) WHERE EXISTS (WITH w AS (SELECT 1) SELECT * FROM w)",
]


def visitor_collect(tree) -> scan._Statement:
    """Names gathered by a pglast Visitor, as scan once did for every statement."""
    found = scan._Statement()

    class Collect(Visitor):
        def visit_RangeVar(self, parent, node):
            found.relations.append((node.schemaname, node.relname, node.alias.aliasname if node.alias else None,
                                    node.location))

        def visit_CommonTableExpr(self, parent, node):
            found.ctes.add(node.ctename)

        def visit_RangeSubselect(self, parent, node):
            if node.alias:
                found.subquery_aliases.add(node.alias.aliasname)

        def visit_ColumnRef(self, parent, node):
            names = [f.sval for f in node.fields if isinstance(f, pg.String)]
            if names and len(names) == len(node.fields):
                found.columns.append((names[-2] if len(names) > 1 else None, names[-1], node.location))

    Collect()(tree)
    return found


def test_names_come_out_in_the_order_pglasts_visitor_finds_them():
    collect = scan._collector()
    for sql in STATEMENTS:
        assert collect(sql) == visitor_collect(parse_sql(sql)), sql
    assert scan._collector() is collect  # made once


def test_renaming_in_one_pass_is_renaming_one_edit_after_another():
    text = 'q = "SELECT UnitPrice, unitprice FROM InvoiceLine WHERE albumid = 1"\n'
    edits = sorted([(12, 21, "unit_price"), (23, 32, "unit_price"), (38, 49, "invoice_line"),
                    (56, 63, "album_id")], reverse=True)
    one_by_one = text
    for start, end, canonical in edits:
        one_by_one = one_by_one[:start] + scan._ident(canonical) + one_by_one[end:]
    assert scan._renamed(text, edits) == one_by_one == \
        'q = "SELECT unit_price, unit_price FROM invoice_line WHERE album_id = 1"\n'
    overlapping = [(12, 21, "Unit Price"), (12, 21, "Unit Price")]  # kept as it always was
    assert scan._renamed(text, overlapping) == text[:12] + '"Unit Price"' + '"Unit Price"'[9:] + text[21:]


def test_verdicts_are_the_same_however_often_a_name_is_asked_about():
    track = Table("public", "track", (Column("track_id", "integer", 1), Column("unit_price", "numeric", 2),
                                      Column("album", "integer", 3)))
    line_a = Table("public", "invoice_line", (Column("id", "integer", 1),))
    line_b = Table("sales", "InvoiceLine", (Column("id", "integer", 1),))
    checker = scan.Checker((track, line_a, line_b), (Alias("public", "track", "cost", kind="column",
                                                           expression='"unit_price"'),))
    for _ in range(2):
        assert checker.relation("track") == (track, None, "")
        assert checker.relation("Track") == (track, "track", "normalisation Track -> track")
        assert checker.relation("invoiceline") == (None, None, "no such table")  # two tables fold alike
        assert checker.column(track, "unit_price") is None
        assert checker.column(track, "UnitPrice") == ("unit_price", "normalisation UnitPrice -> unit_price", True)
        assert checker.column(track, "cost") == ("unit_price", "selfheal alias", True)
        assert checker.column(track, "album_id") == ("album::integer", "album_id beside album", False)
