"""Legacy names reached through a scope, tried as a new user would: a CTE, a subquery alias, a
join's USING list and a correlated subquery each heal in one report, and the statement then
returns what the legacy schema returned."""

from __future__ import annotations

import pytest
from psycopg import errors as pgerr

from .conftest import APP_ROLE
from .support import fail_then_heal

# A store whose columns moved from flat names (trackid) to snake_case (track_id).
STORE = f"""
CREATE TABLE album (album_id int PRIMARY KEY, title text NOT NULL);
CREATE TABLE track (track_id int PRIMARY KEY, name text NOT NULL, album_id int REFERENCES album,
                    unit_price numeric(10,2) NOT NULL);
CREATE TABLE customer (customer_id int PRIMARY KEY, last_name text NOT NULL);
CREATE TABLE invoice (invoice_id int PRIMARY KEY, customer_id int REFERENCES customer, total numeric(10,2));
INSERT INTO album VALUES (1, 'Mezzanine'), (2, 'Dummy'), (3, 'Unreleased');
INSERT INTO track VALUES (10, 'Angel', 1, 0.99), (11, 'Teardrop', 1, 0.99), (20, 'Roads', 2, 1.29);
INSERT INTO customer VALUES (1, 'Gruber'), (2, 'Nagy');
INSERT INTO invoice VALUES (100, 1, 1.98), (101, 2, 1.29), (102, 1, 0.99);
GRANT SELECT, INSERT, UPDATE, DELETE ON album, track, customer, invoice TO {APP_ROLE};
GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO {APP_ROLE};
SELECT selfheal.enable_compat('{APP_ROLE}');
"""

CASES = {
    "cte": ("WITH t AS (SELECT * FROM Track) SELECT t.TrackId, t.Name FROM t ORDER BY t.TrackId",
            [(10, "Angel"), (11, "Teardrop"), (20, "Roads")]),
    "cte-of-a-cte": ("WITH a AS (SELECT * FROM Track), b AS (SELECT * FROM a WHERE a.UnitPrice < 1) "
                     "SELECT b.TrackId FROM b ORDER BY 1", [(10,), (11,)]),
    "subquery-alias": ("SELECT s.AlbumId, count(*) FROM (SELECT * FROM Track) AS s GROUP BY s.AlbumId ORDER BY 1",
                       [(1, 2), (2, 1)]),
    "using": ('SELECT i.total FROM invoice i JOIN customer USING ("CustomerId") WHERE last_name = \'Nagy\'',
              [(pytest.approx(1.29),)]),
    "correlated": ("SELECT a.Title FROM Album a WHERE NOT EXISTS "
                   "(SELECT 1 FROM Track t WHERE t.AlbumId = a.AlbumId) ORDER BY 1", [("Unreleased",)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_legacy_name_reached_through_a_scope_heals_in_one_report(db, case):
    statement, expected = CASES[case]
    db.admin.execute(STORE)
    app = db.connect()
    result = fail_then_heal(app, statement, pgerr.UndefinedColumn)
    assert result["status"] in ("healed", "resolved"), result
    assert [tuple(float(v) if hasattr(v, "as_tuple") else v for v in row)
            for row in app.execute(statement).fetchall()] == expected
    assert db.scalar("SELECT count(*) FROM selfheal.audit WHERE action = 'add_column'") == 0


def test_a_scope_that_names_its_own_columns_is_never_guessed_through(db):
    db.admin.execute(STORE)
    app = db.connect()
    statement = "SELECT s.TrackId FROM (SELECT track_id AS id, name FROM track) s"
    result = fail_then_heal(app, statement, pgerr.UndefinedColumn)
    assert result["status"] == "needs_review", result
    assert db.scalar("SELECT count(*) FROM selfheal.alias") == 0
