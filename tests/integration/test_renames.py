"""Legacy names of renamed tables and columns, on the Chinook schema, tried as a new user would."""

import re
import subprocess
from pathlib import Path

import pytest
from psycopg import errors as pgerr

from .support import fail_then_heal

CHINOOK = Path(__file__).resolve().parents[1] / "fixtures" / "chinook" / "chinook.sql"


@pytest.fixture
def chinook(db):
    script = CHINOOK.read_text()
    script = re.sub(r"^(DROP DATABASE|CREATE DATABASE|\\c ).*$", "", script, flags=re.M)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.name], input=script, text=True,
                   check=True, capture_output=True, env=db.cluster.env)
    db.admin.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app;"
                     "GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO app;"
                     "SELECT selfheal.enable_compat('app')")
    return db


def heal(conn, statement):
    return fail_then_heal(conn, statement, (pgerr.UndefinedColumn, pgerr.UndefinedTable))


def test_pascal_case_legacy_table_serves_pascal_case_columns(chinook):
    app = chinook.connect()
    size_before = chinook.scalar("SELECT pg_relation_size('invoice_line')")
    result = heal(app, 'SELECT "InvoiceLineId", "UnitPrice" FROM "InvoiceLine" ORDER BY 1 LIMIT 1')
    assert (result["status"], result["action"]) == ("healed", "add_alias")
    cur = app.execute('SELECT * FROM "InvoiceLine" ORDER BY "InvoiceLineId" LIMIT 1')
    assert [c.name for c in cur.description] == ["InvoiceLineId", "InvoiceId", "TrackId", "UnitPrice", "Quantity"]
    assert cur.fetchone() == chinook.admin.execute(
        "SELECT * FROM invoice_line ORDER BY invoice_line_id LIMIT 1").fetchone()
    assert app.execute('SELECT count(*) FROM "InvoiceLine"').fetchone()[0] == chinook.scalar(
        "SELECT count(*) FROM invoice_line")
    # Served, not copied: a view, and the table did not grow.
    assert chinook.scalar("""SELECT relkind FROM pg_class
                             WHERE oid = '"selfheal_compat_public"."InvoiceLine"'::regclass""") == "v"
    assert chinook.scalar("SELECT pg_relation_size('invoice_line')") == size_before
    # Plain column references: the legacy view writes through.
    app.execute('UPDATE "InvoiceLine" SET "Quantity" = 7 WHERE "InvoiceLineId" = 1')
    assert chinook.scalar("SELECT quantity FROM invoice_line WHERE invoice_line_id = 1") == 7


def test_unquoted_legacy_names_fold_and_still_match(chinook):
    app = chinook.connect()
    result = heal(app, "SELECT InvoiceLineId, UnitPrice FROM InvoiceLine LIMIT 1")
    assert result["status"] == "healed"
    cur = app.execute("SELECT * FROM InvoiceLine LIMIT 1")
    assert [c.name for c in cur.description] == ["invoicelineid", "invoiceid", "trackid", "unitprice", "quantity"]


def test_new_code_beside_legacy_code_gets_the_current_names_with_one_heal(chinook):
    """The routed view shows the legacy shape only; a current name the same role's newer code
    uses is added after the table's own columns when it is first used, and the rest of that
    statement's current names with it."""
    app = chinook.connect()
    assert heal(app, 'SELECT "UnitPrice" FROM invoice_line LIMIT 1')["status"] == "healed"
    assert heal(app, 'SELECT "AlbumId", title FROM album WHERE "AlbumId" = 1')["status"] == "healed"
    mixed = 'SELECT "AlbumId", album_id, title FROM album WHERE "AlbumId" = 1'
    assert heal(app, mixed)["status"] == "healed"
    assert app.execute(mixed).fetchone() == (1, 1, "For Those About To Rock We Salute You")
    both = 'SELECT "UnitPrice", unit_price FROM invoice_line WHERE invoice_line_id = 1'
    assert heal(app, both)["status"] == "healed"
    price = app.execute(both).fetchone()
    assert price[0] == price[1]
    cur = app.execute("SELECT * FROM album LIMIT 0")
    assert [c.name for c in cur.description] == ["AlbumId", "title", "artist_id", "album_id"]
    evidence = chinook.admin.execute("SELECT evidence FROM selfheal.audit WHERE table_name = 'invoice_line' "
                                     "ORDER BY id LIMIT 1").fetchone()[0]
    assert evidence["normalisation"] == "UnitPrice -> unit_price"
