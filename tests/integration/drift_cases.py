"""The case table for test_drift_cases.py: schema drift, the app's one statement, and the verdict.

Each case is:

- `schema`: the schema and rows as the application's code expects them (the "un-drifted" schema);
- `drift`: DDL that moved the schema away from the code afterwards. With `tracked=True` it runs
  while selfheal's event triggers watch; with `tracked=False` it ran before selfheal was
  installed (the extension is created only after the drift), so selfheal has no record of it;
- `query`: the application's statement, unchanged since the schema moved;
- `verdict`:
  - SERVED: after at most three heals reported by the app itself, the statement run as the routed
    app role returns exactly the column names and rows it returns on the un-drifted schema (rows
    compared in order only when the statement has ORDER BY). For a statement without a result
    set the row count is compared, and `check`, a read in the app's own names, must agree too.
  - REFUSED: the app still gets an error, and nothing changed that would make a later statement
    return different rows: the same columns (names, types, defaults) in every table, the same
    rows, and no new alias or compat view column.

`role_setup` runs in both databases before the app connects ({db} is the database's name);
`selfheal_setup` runs only in the drifted one, after the extension exists. `code_bug` marks a
statement that fails on the un-drifted schema too (a typo in the code itself).
"""

from __future__ import annotations

from dataclasses import dataclass

SERVED, REFUSED = "served", "refused"


@dataclass(frozen=True)
class Case:
    id: str
    klass: str
    verdict: str
    schema: str
    query: str
    drift: str = ""
    tracked: bool = False
    check: str | None = None
    role_setup: str = ""
    selfheal_setup: str = ""
    code_bug: bool = False
    note: str = ""
    known_gap: str = ""  # selfheal does not meet the verdict yet: the case runs as a strict xfail saying why


def rename_columns(table: str, pairs: dict[str, str]) -> str:
    return "".join(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new};\n" for old, new in pairs.items())


# ---------------------------------------------------------------------------------------------
# Schemas as the code knows them

SHOP = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text, address text,
                        status text NOT NULL DEFAULT 'active');
INSERT INTO customers (name, email, address, status) VALUES
  ('Ada', 'ada@example.com', '1 Loop St', 'active'), ('Bob', 'bob@example.com', NULL, 'active'),
  ('Cy', NULL, '3 Main St', 'blocked');
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,
                     total_amount numeric(10,2) NOT NULL, status text NOT NULL DEFAULT 'new');
INSERT INTO orders (customer_id, total_amount, status) VALUES
  (1, 10.00, 'paid'), (1, 25.50, 'new'), (2, 7.25, 'paid'), (3, 99.99, 'refunded');
CREATE TABLE order_items (id serial PRIMARY KEY, order_id int NOT NULL, sku text NOT NULL, qty int NOT NULL);
INSERT INTO order_items (order_id, sku, qty) VALUES (1, 'A-1', 2), (2, 'B-7', 1), (3, 'A-1', 5);
"""

ACCOUNTS = """
CREATE TABLE accounts (id serial PRIMARY KEY, login text NOT NULL, is_active boolean NOT NULL DEFAULT true,
                       joined_at timestamptz NOT NULL);
INSERT INTO accounts (login, is_active, joined_at) VALUES ('ada', true, '2024-01-02 10:00+00'),
  ('bob', false, '2024-03-04 11:00+00'), ('cy', true, '2024-05-06 12:00+00');
"""

ALBUM = """
CREATE TABLE artist ("ArtistId" serial PRIMARY KEY, "Name" text NOT NULL);
INSERT INTO artist ("Name") VALUES ('AC/DC'), ('Accept'), ('Aerosmith');
CREATE TABLE album ("AlbumId" serial PRIMARY KEY, "Title" text NOT NULL, "ArtistId" int NOT NULL REFERENCES artist);
INSERT INTO album ("Title", "ArtistId") VALUES ('For Those About To Rock', 1), ('Balls to the Wall', 2),
  ('Restless and Wild', 2), ('Big Ones', 3);
"""
ALBUM_TO_SNAKE = rename_columns("album", {'"AlbumId"': "album_id", '"Title"': "title", '"ArtistId"': "artist_id"})

# Chinook before 2024: PascalCase written without quotes, so PostgreSQL folded it to flat names.
FLAT_ALBUM = """
CREATE TABLE album (AlbumId serial PRIMARY KEY, Title text NOT NULL, ArtistId int NOT NULL);
INSERT INTO album (Title, ArtistId) VALUES ('For Those About To Rock', 1), ('Balls to the Wall', 2),
  ('Restless and Wild', 2);
"""
FLAT_ALBUM_TO_SNAKE = rename_columns("album", {"albumid": "album_id", "artistid": "artist_id"})
FLAT_STORE = FLAT_ALBUM + """
CREATE TABLE artist (ArtistId int PRIMARY KEY, Name text NOT NULL);
INSERT INTO artist VALUES (1, 'AC/DC'), (2, 'Accept');
"""
FLAT_STORE_TO_SNAKE = FLAT_ALBUM_TO_SNAKE + rename_columns("artist", {"artistid": "artist_id"})

ACCOUNT = """
CREATE TABLE account ("AccountID" serial PRIMARY KEY, "AccountName" text NOT NULL,
                      balance numeric(12,2) NOT NULL DEFAULT 0);
INSERT INTO account ("AccountName", balance) VALUES ('ops', 100), ('dev', 250.50), ('qa', 0);
"""
ACCOUNT_TO_SNAKE = rename_columns("account", {'"AccountID"': "account_id", '"AccountName"': "account_name"})

ACCOUNT_UNQUOTED = """
CREATE TABLE account (AccountID serial PRIMARY KEY, AccountName text NOT NULL, balance numeric(12,2) NOT NULL);
INSERT INTO account (AccountName, balance) VALUES ('ops', 100), ('dev', 250.50), ('qa', 0);
"""
ACCOUNT_UNQUOTED_TO_SNAKE = rename_columns("account", {"accountid": "account_id", "accountname": "account_name"})

# A current table name whose columns kept their legacy spellings in the code.
LINES = """
CREATE TABLE track (track_id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO track (name) VALUES ('Let There Be Rock'), ('Evil Walks'), ('Jailbreak');
CREATE TABLE invoice_line (invoice_line_id serial PRIMARY KEY, track_id int NOT NULL,
                           "UnitPrice" numeric(10,2) NOT NULL, "Quantity" int NOT NULL);
INSERT INTO invoice_line (track_id, "UnitPrice", "Quantity") VALUES
  (1, 0.99, 1), (2, 0.99, 2), (3, 1.99, 1), (1, 0.99, 3), (2, 1.49, 1);
"""
LINES_TO_SNAKE = rename_columns("invoice_line", {'"UnitPrice"': "unit_price", '"Quantity"': "quantity"})

LINES_UNQUOTED = """
CREATE TABLE invoice_line (invoice_line_id serial PRIMARY KEY, UnitPrice numeric(10,2) NOT NULL, quantity int NOT NULL);
INSERT INTO invoice_line (UnitPrice, quantity) VALUES (0.99, 1), (0.99, 2), (1.99, 1), (1.49, 4);
"""

# Table and columns in PascalCase, as Chinook had them.
PASCAL_LINES = """
CREATE TABLE "InvoiceLine" ("InvoiceLineId" serial PRIMARY KEY, "InvoiceId" int NOT NULL, "TrackId" int NOT NULL,
                            "UnitPrice" numeric(10,2) NOT NULL, "Quantity" int NOT NULL);
INSERT INTO "InvoiceLine" ("InvoiceId", "TrackId", "UnitPrice", "Quantity") VALUES
  (1, 2, 0.99, 1), (1, 4, 0.99, 2), (2, 6, 1.99, 1), (2, 8, 0.99, 3), (3, 10, 1.49, 1);
"""
PASCAL_LINES_TO_SNAKE = 'ALTER TABLE "InvoiceLine" RENAME TO invoice_line;\n' + rename_columns("invoice_line", {
    '"InvoiceLineId"': "invoice_line_id", '"InvoiceId"': "invoice_id", '"TrackId"': "track_id",
    '"UnitPrice"': "unit_price", '"Quantity"': "quantity"})

# Only the table's name was PascalCase; its columns were already snake_case.
PASCAL_TABLE_ONLY = """
CREATE TABLE "InvoiceLine" (invoice_line_id serial PRIMARY KEY, unit_price numeric(10,2) NOT NULL, quantity int NOT NULL);
INSERT INTO "InvoiceLine" (unit_price, quantity) VALUES (0.99, 1), (1.99, 2), (0.99, 3);
"""

FLAT_LINES = """
CREATE TABLE invoiceline (invoicelineid serial PRIMARY KEY, invoiceid int NOT NULL, unitprice numeric(10,2) NOT NULL,
                          quantity int NOT NULL);
INSERT INTO invoiceline (invoiceid, unitprice, quantity) VALUES (1, 0.99, 1), (1, 1.99, 2), (2, 0.99, 1), (3, 1.49, 4);
"""
FLAT_LINES_TO_SNAKE = "ALTER TABLE invoiceline RENAME TO invoice_line;\n" + rename_columns("invoice_line", {
    "invoicelineid": "invoice_line_id", "invoiceid": "invoice_id", "unitprice": "unit_price"})

EMPLOYEE = """
CREATE TABLE employee ("EmployeeId" serial PRIMARY KEY, "FirstName" text NOT NULL, "ReportsTo" int);
INSERT INTO employee ("FirstName", "ReportsTo") VALUES ('Andrew', NULL), ('Nancy', 1), ('Jane', 2), ('Steve', 2);
"""
EMPLOYEE_TO_SNAKE = rename_columns("employee", {'"EmployeeId"': "employee_id", '"FirstName"': "first_name",
                                                '"ReportsTo"': "reports_to"})
PASCAL_EMPLOYEE = EMPLOYEE.replace("TABLE employee", 'TABLE "Employee"').replace("INTO employee", 'INTO "Employee"')
PASCAL_EMPLOYEE_TO_SNAKE = 'ALTER TABLE "Employee" RENAME TO employee;\n' + EMPLOYEE_TO_SNAKE

LEGACY_ORDERS = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO customers (name) VALUES ('Ada'), ('Bob'), ('Cy');
CREATE TABLE orders (id serial PRIMARY KEY, "CustomerId" int NOT NULL, total numeric(10,2) NOT NULL);
INSERT INTO orders ("CustomerId", total) VALUES (1, 10), (1, 20), (3, 5);
"""
LEGACY_ORDERS_TO_SNAKE = rename_columns("orders", {'"CustomerId"': "customer_id"})

# service_type_id was an integer column; the schema now keeps the type as text beside it.
SESSIONS = """
CREATE TABLE service_types (id serial PRIMARY KEY, label text NOT NULL);
INSERT INTO service_types (label) VALUES ('basic'), ('pro'), ('team');
CREATE TABLE sessions (id serial PRIMARY KEY, service_type_id int, note text);
INSERT INTO sessions (service_type_id, note) VALUES (1, 'a'), (2, 'b'), (NULL, 'c'), (3, 'd'), (2, 'e');
"""


def to_text_column(table: str, column: str, text_type: str = "text", expression: str | None = None) -> str:
    """Replace integer column x_id by a text column x holding the same values."""
    base = column[:-3]
    expression = expression or f"{column}::text"
    return (f"ALTER TABLE {table} ADD COLUMN {base} {text_type};\n"
            f"UPDATE {table} SET {base} = {expression};\n"
            f"ALTER TABLE {table} DROP COLUMN {column};\n")


PLANS = """
CREATE TABLE plans (id bigserial PRIMARY KEY, label text NOT NULL);
INSERT INTO plans (label) VALUES ('free'), ('pro');
CREATE TABLE subscriptions (id serial PRIMARY KEY, plan_id bigint);
INSERT INTO subscriptions (plan_id) VALUES (1), (2), (5000000000), (NULL);
"""

TICKETS = """
CREATE TABLE tickets (id serial PRIMARY KEY, priority_id int NOT NULL, subject text NOT NULL);
INSERT INTO tickets (priority_id, subject) VALUES (1, 'down'), (3, 'slow'), (2, 'typo');
"""

BIG_IDS = """
CREATE TABLE devices (id serial PRIMARY KEY, vendor_id int, label text);
INSERT INTO devices (vendor_id, label) VALUES (7, 'a'), (1234567890, 'b'), (42, 'c');
"""


def ahead(schema: str, table: str, *column_ddls: str) -> tuple[str, str]:
    """Code ahead of the schema: the un-drifted schema has the columns (rows keep their defaults);
    the database the app meets never got them."""
    names = [ddl.split()[0] for ddl in column_ddls]
    return (schema + "".join(f"ALTER TABLE {table} ADD COLUMN {ddl};\n" for ddl in column_ddls),
            "".join(f"ALTER TABLE {table} DROP COLUMN {name};\n" for name in names))


def case(id, klass, verdict, schema_and_drift=None, *, schema=None, drift="", **kw) -> Case:
    if schema_and_drift is not None:
        schema, drift = schema_and_drift
    return Case(id=id, klass=klass, verdict=verdict, schema=schema, drift=drift, **kw)


SCOPE_SALES = "UPDATE selfheal.policy SET value = 'sales' WHERE name = 'scope';"
SALES_ALBUM = "CREATE SCHEMA sales;\n" + ALBUM.replace("TABLE artist", "TABLE sales.artist").replace(
    "INTO artist", "INTO sales.artist").replace("REFERENCES artist", "REFERENCES sales.artist").replace(
    "TABLE album", "TABLE sales.album").replace("INTO album", "INTO sales.album")

# ---------------------------------------------------------------------------------------------
# The cases

CASES: list[Case] = [
    # --- legacy column spellings ------------------------------------------------------------
    case("col-unitprice-quoted", "legacy column", SERVED, schema=LINES, drift=LINES_TO_SNAKE,
         query='SELECT invoice_line_id, "UnitPrice" FROM invoice_line ORDER BY invoice_line_id'),
    case("col-unitprice-unquoted", "legacy column", SERVED, schema=LINES_UNQUOTED,
         drift=rename_columns("invoice_line", {"unitprice": "unit_price"}),
         query="SELECT sum(UnitPrice * quantity) AS revenue, max(UnitPrice) FROM invoice_line"),
    case("col-albumid-where", "legacy column", SERVED, schema=ALBUM, drift=ALBUM_TO_SNAKE,
         query='SELECT "AlbumId", "Title" FROM album WHERE "AlbumId" = 2'),
    case("col-albumid-orderby-only", "legacy column", SERVED, schema=ALBUM,
         drift=rename_columns("album", {'"AlbumId"': "album_id"}),
         query='SELECT "Title" FROM album ORDER BY "AlbumId" DESC'),
    case("col-accountid-quoted", "legacy column", SERVED, schema=ACCOUNT, drift=ACCOUNT_TO_SNAKE,
         query='SELECT "AccountID", "AccountName", balance FROM account ORDER BY "AccountID"'),
    case("col-accountid-unquoted", "legacy column", SERVED, schema=ACCOUNT_UNQUOTED, drift=ACCOUNT_UNQUOTED_TO_SNAKE,
         query="SELECT AccountID, AccountName FROM account WHERE AccountID > 1 ORDER BY AccountID"),
    case("col-groupby-two-names", "legacy column", SERVED, schema=ALBUM, drift=ALBUM_TO_SNAKE,
         query='SELECT "ArtistId", max("Title") AS last_title, count(*) FROM album GROUP BY "ArtistId" ORDER BY "ArtistId"'),
    case("col-camel-in-where", "legacy column", SERVED, schema=LEGACY_ORDERS, drift=LEGACY_ORDERS_TO_SNAKE,
         query='SELECT id, total FROM orders WHERE "CustomerId" = 1 ORDER BY id'),
    case("col-tracked-unitprice", "legacy column", SERVED, schema=LINES, drift=LINES_TO_SNAKE, tracked=True,
         query='SELECT invoice_line_id, "UnitPrice", "Quantity" FROM invoice_line ORDER BY invoice_line_id'),
    case("col-tracked-accountid", "legacy column", SERVED, schema=ACCOUNT, drift=ACCOUNT_TO_SNAKE, tracked=True,
         query='SELECT "AccountID", "AccountName" FROM account WHERE balance > 50 ORDER BY "AccountID"'),

    # --- table renames ----------------------------------------------------------------------
    case("tbl-pascal-columns", "table rename", SERVED, schema=PASCAL_LINES, drift=PASCAL_LINES_TO_SNAKE,
         query='SELECT "InvoiceLineId", "UnitPrice", "Quantity" FROM "InvoiceLine" ORDER BY "InvoiceLineId"'),
    case("tbl-pascal-star", "table rename", SERVED, schema=PASCAL_LINES, drift=PASCAL_LINES_TO_SNAKE,
         query='SELECT * FROM "InvoiceLine" ORDER BY 1'),
    case("tbl-pascal-aggregate", "table rename", SERVED, schema=PASCAL_LINES, drift=PASCAL_LINES_TO_SNAKE,
         query='SELECT "InvoiceId", sum("UnitPrice" * "Quantity") AS total FROM "InvoiceLine" '
               'GROUP BY "InvoiceId" ORDER BY "InvoiceId"'),
    case("tbl-flat-columns", "table rename", SERVED, schema=FLAT_LINES, drift=FLAT_LINES_TO_SNAKE,
         query="SELECT invoicelineid, unitprice, quantity FROM invoiceline ORDER BY invoicelineid"),
    case("tbl-flat-star", "table rename", SERVED, schema=FLAT_LINES, drift=FLAT_LINES_TO_SNAKE,
         query="SELECT * FROM invoiceline WHERE invoiceid = 1"),
    case("tbl-pascal-table-only", "table rename", SERVED, schema=PASCAL_TABLE_ONLY,
         known_gap="the legacy column style is guessed from the table name (pascal), not learned from the names the code uses: the exact legacy shape is not built yet",
         drift='ALTER TABLE "InvoiceLine" RENAME TO invoice_line;',
         query='SELECT invoice_line_id, unit_price FROM "InvoiceLine" ORDER BY invoice_line_id',
         note="only the table was renamed: its columns kept their snake_case names, which the code uses"),
    case("tbl-tracked-pascal", "table rename", SERVED, schema=PASCAL_LINES, drift=PASCAL_LINES_TO_SNAKE,
         tracked=True,
         query='SELECT "InvoiceLineId", "UnitPrice" FROM "InvoiceLine" WHERE "Quantity" > 1 ORDER BY "InvoiceLineId"'),
    case("tbl-tracked-unrelated-name", "table rename", SERVED, schema=SHOP, tracked=True,
         drift="ALTER TABLE orders RENAME TO purchase;",
         query="SELECT id, total_amount FROM orders ORDER BY id"),

    # --- derived x_id beside text x -----------------------------------------------------------
    case("derived-select", "derived x_id", SERVED, schema=SESSIONS,
         drift=to_text_column("sessions", "service_type_id"),
         query="SELECT id, service_type_id FROM sessions ORDER BY id"),
    case("derived-where-literal", "derived x_id", SERVED, schema=SESSIONS,
         drift=to_text_column("sessions", "service_type_id"),
         query="SELECT id, note FROM sessions WHERE service_type_id = 2"),
    case("derived-whitespace-sign-zeros", "derived x_id", SERVED, schema=SESSIONS,
         drift=to_text_column("sessions", "service_type_id", expression=(
             "CASE id WHEN 1 THEN ' 1' WHEN 2 THEN '+2' WHEN 4 THEN '003 ' WHEN 5 THEN '2' END")),
         query="SELECT id, service_type_id FROM sessions ORDER BY id"),
    case("derived-join-qualified", "derived x_id", SERVED, schema=SESSIONS,
         drift=to_text_column("sessions", "service_type_id"),
         query="SELECT s.id, t.label FROM sessions s JOIN service_types t ON t.id = s.service_type_id ORDER BY s.id"),
    case("derived-bigint-key", "derived x_id", SERVED, schema=PLANS,
         drift=to_text_column("subscriptions", "plan_id", expression="plan_id::text"),
         query="SELECT id, plan_id FROM subscriptions ORDER BY id"),
    case("derived-varchar-unbounded-source", "derived x_id", SERVED, schema=TICKETS,
         drift=to_text_column("tickets", "priority_id", text_type="varchar", expression="priority_id::text"),
         query="SELECT id, subject FROM tickets WHERE priority_id = 3"),
    case("derived-varchar-source", "derived x_id", SERVED, schema=TICKETS,
         drift=to_text_column("tickets", "priority_id", text_type="varchar(20)", expression="priority_id::text"),
         query="SELECT id, subject FROM tickets WHERE priority_id = 3",
         note="the text column is varchar(20), not text"),
    case("derived-ten-digit-value", "derived x_id", SERVED, schema=BIG_IDS,
         drift=to_text_column("devices", "vendor_id", expression="vendor_id::text"),
         query="SELECT id, vendor_id FROM devices ORDER BY id",
         note="1234567890 fits an integer: a value that can be cast should not read as NULL"),
    case("derived-unconvertible-value", "derived x_id", REFUSED, schema=SESSIONS,
         drift=to_text_column("sessions", "service_type_id", expression="coalesce(service_type_id::text, 'premium')"),
         query="SELECT id, service_type_id FROM sessions ORDER BY id",
         note="'premium' cannot be an integer: served, it would read as NULL or break every read"),
    case("derived-delete-is-null-keeps-premium", "derived x_id", REFUSED, schema=SESSIONS,
         drift=to_text_column("sessions", "service_type_id", expression="coalesce(service_type_id::text, 'premium')"),
         query="DELETE FROM sessions WHERE service_type_id IS NULL",
         note="the 'premium' row must not be deleted as if its service_type_id were NULL"),
    case("derived-update-where", "derived x_id", REFUSED, schema=SESSIONS,
         drift=to_text_column("sessions", "service_type_id"),
         query="UPDATE sessions SET note = 'x' WHERE service_type_id = 2",
         note="the values convert, but the write's row choice uses the derived name: proposed only"),
    case("derived-write-to-the-name", "derived x_id", REFUSED, schema=SESSIONS,
         drift=to_text_column("sessions", "service_type_id"),
         query="UPDATE sessions SET service_type_id = 3 WHERE id = 1",
         note="a derived name is read-only: the write fails, naming the column to write instead"),
    case("derived-value-beyond-integer", "derived x_id", REFUSED, schema=BIG_IDS,
         drift=to_text_column("devices", "vendor_id", expression="CASE id WHEN 2 THEN '99999999999' ELSE vendor_id::text END"),
         query="SELECT id, label FROM devices WHERE vendor_id = 7",
         note="a value past integer's bound would fail every read of the name"),

    # --- genuinely missing columns: code ahead of the schema ------------------------------------
    case("missing-jsonb-metadata", "missing column", SERVED,
         ahead(SHOP, "customers", "metadata jsonb NOT NULL DEFAULT '{}'"),
         query="SELECT id, metadata FROM customers ORDER BY id"),
    case("missing-boolean-is", "missing column", SERVED,
         ahead(SHOP, "customers", "is_verified boolean NOT NULL DEFAULT false"),
         query="SELECT name, is_verified FROM customers ORDER BY name"),
    case("missing-count", "missing column", SERVED,
         ahead(SHOP, "customers", "login_count integer NOT NULL DEFAULT 0"),
         query="SELECT id, login_count FROM customers ORDER BY id"),
    case("missing-timestamptz-at", "missing column", SERVED,
         ahead(SHOP, "orders", "archived_at timestamptz"),
         query="SELECT id, archived_at FROM orders ORDER BY id"),
    case("missing-text-null", "missing column", REFUSED,
         ahead(SHOP, "customers", "nickname text"),
         query="SELECT id, nickname FROM customers ORDER BY id",
         note="nothing says nickname's type: text would be a guess, so it is only proposed"),
    case("missing-boolean-bare-select", "missing column", REFUSED,
         ahead(SHOP, "orders", "gift_wrap boolean NOT NULL DEFAULT false"),
         query="SELECT id, gift_wrap FROM orders ORDER BY id",
         note="a boolean guessed as text would read NULL here and fail every later filter on it"),
    case("missing-boolean-in-select-where", "missing column", SERVED,
         ahead(SHOP, "orders", "has_coupon boolean NOT NULL DEFAULT false"),
         query="SELECT id FROM orders WHERE has_coupon ORDER BY id"),
    case("missing-two-columns", "missing column", SERVED,
         ahead(SHOP, "customers", "is_verified boolean NOT NULL DEFAULT false",
               "login_count integer NOT NULL DEFAULT 0"),
         query="SELECT id, is_verified, login_count FROM customers ORDER BY id"),
    case("missing-key-id-null", "missing column", SERVED,
         ahead(SHOP, "customers", "referrer_id integer"),
         query="SELECT id, referrer_id FROM customers ORDER BY id"),
    case("missing-insert-returning", "missing column", SERVED,
         ahead(SHOP, "customers", "nickname text"),
         query="INSERT INTO customers (name, nickname) VALUES ('Zed', 'zz') RETURNING id, name, nickname",
         check="SELECT id, name, nickname FROM customers ORDER BY id"),
    case("missing-update-set", "missing column", SERVED,
         ahead(SHOP, "customers", "nickname text"),
         query="UPDATE customers SET nickname = 'A' WHERE id = 1",
         check="SELECT id, nickname FROM customers ORDER BY id"),
    case("missing-schema-qualified", "missing column", SERVED,
         ahead(SHOP, "orders", "is_flagged boolean NOT NULL DEFAULT false"),
         query="SELECT id, is_flagged FROM public.orders ORDER BY id"),

    # --- typos: proposals only ----------------------------------------------------------------
    case("typo-nmae", "typo", REFUSED, schema=SHOP, code_bug=True, query="SELECT id, nmae FROM customers"),
    case("typo-emial", "typo", REFUSED, schema=SHOP, code_bug=True,
         query="SELECT name, emial FROM customers WHERE id = 1"),
    case("typo-adress", "typo", REFUSED, schema=SHOP, code_bug=True, query="SELECT adress FROM customers"),
    case("typo-custmer-id", "typo", REFUSED, schema=SHOP, code_bug=True,
         query="SELECT id, custmer_id FROM orders ORDER BY id"),
    case("typo-short-qtx", "typo", REFUSED, schema=SHOP, code_bug=True, query="SELECT sku, qtx FROM order_items"),
    case("typo-update-set", "typo", REFUSED, schema=SHOP, code_bug=True,
         query="UPDATE customers SET emial = 'new@example.com' WHERE id = 1"),
    case("typo-insert-column", "typo", REFUSED, schema=SHOP, code_bug=True,
         query="INSERT INTO customers (nmae, email) VALUES ('Dee', 'dee@example.com')",
         note="an added nmae column would take the name, and name's NOT NULL would still fail or lose it"),
    case("typo-delete-where", "typo", REFUSED, schema=SHOP, code_bug=True,
         query="DELETE FROM customers WHERE stauts = 'blocked'",
         note="a stauts column with no default would delete nothing; one with a default, maybe everything"),

    # --- a write's row choice uses a missing column ----------------------------------------------
    case("write-delete-where-boolean", "write predicate", REFUSED,
         ahead(SHOP, "orders", "is_test boolean NOT NULL DEFAULT false"),
         query="DELETE FROM orders WHERE is_test"),
    case("write-delete-where-not-boolean", "write predicate", REFUSED,
         ahead(SHOP, "orders", "is_paid boolean NOT NULL DEFAULT true"),
         query="DELETE FROM orders WHERE NOT is_paid",
         note="with the column added as false this would delete every order"),
    case("write-update-where-boolean", "write predicate", REFUSED,
         ahead(SHOP, "orders", "is_archived boolean NOT NULL DEFAULT true"),
         query="UPDATE orders SET status = 'archived' WHERE is_archived = false"),
    case("write-update-where-returning", "write predicate", REFUSED,
         ahead(SHOP, "customers", "has_chargeback boolean NOT NULL DEFAULT false"),
         query="UPDATE customers SET status = 'blocked' WHERE has_chargeback RETURNING id"),
    case("write-delete-using-qualified", "write predicate", REFUSED,
         ahead(SHOP, "customers", "is_blocked boolean NOT NULL DEFAULT false"),
         query="DELETE FROM order_items i USING orders o, customers c "
               "WHERE i.order_id = o.id AND o.customer_id = c.id AND NOT c.is_blocked"),
    case("write-on-conflict-target", "write predicate", REFUSED,
         ahead(SHOP, "customers", "external_ref text UNIQUE"),
         query="INSERT INTO customers (name, external_ref) VALUES ('Eve', 'X-1') ON CONFLICT (external_ref) DO NOTHING",
         note="a conflict target needs a unique index: a new column has none, so no insert could conflict"),
    case("write-on-conflict-where", "write predicate", REFUSED,
         ahead(SHOP, "customers", "is_locked boolean NOT NULL DEFAULT false"),
         query="INSERT INTO customers (id, name) VALUES (1, 'Ada Lovelace') "
               "ON CONFLICT (id) DO UPDATE SET name = excluded.name WHERE NOT customers.is_locked"),

    # --- dropped columns and tables, with selfheal watching ----------------------------------------
    case("drop-then-update-set", "dropped", REFUSED,
         schema=SHOP + "ALTER TABLE customers ADD COLUMN nickname text;",
         drift="ALTER TABLE customers DROP COLUMN nickname;", tracked=True,
         query="UPDATE customers SET nickname = 'ace' WHERE id = 1",
         note="writes to a dropped column must fail, not land in a new empty one"),
    case("drop-text-column", "dropped", REFUSED,
         schema=SHOP + "ALTER TABLE customers ADD COLUMN nickname text; UPDATE customers SET nickname = lower(name);",
         drift="ALTER TABLE customers DROP COLUMN nickname;", tracked=True,
         query="SELECT id, nickname FROM customers ORDER BY id"),
    case("drop-boolean-in-where", "dropped", REFUSED,
         schema=SHOP + "ALTER TABLE customers ADD COLUMN is_active boolean NOT NULL DEFAULT true;",
         drift="ALTER TABLE customers DROP COLUMN is_active;", tracked=True,
         query="SELECT id FROM customers WHERE is_active ORDER BY id"),
    case("drop-jsonb", "dropped", REFUSED,
         schema=SHOP + "ALTER TABLE customers ADD COLUMN metadata jsonb; "
                       "UPDATE customers SET metadata = jsonb_build_object('tier', id);",
         drift="ALTER TABLE customers DROP COLUMN metadata;", tracked=True,
         query="SELECT metadata FROM customers"),
    case("drop-count", "dropped", REFUSED,
         schema=SHOP + "ALTER TABLE customers ADD COLUMN login_count int NOT NULL DEFAULT 3;",
         drift="ALTER TABLE customers DROP COLUMN login_count;", tracked=True,
         query="SELECT name, login_count FROM customers"),
    case("drop-insert-into-dropped", "dropped", REFUSED,
         schema=SHOP + "ALTER TABLE customers ADD COLUMN nickname text;",
         drift="ALTER TABLE customers DROP COLUMN nickname;", tracked=True,
         query="INSERT INTO customers (name, nickname) VALUES ('Zed', 'zz')"),
    case("drop-table", "dropped", REFUSED,
         schema=SHOP + "CREATE TABLE coupons (code text PRIMARY KEY, pct int); INSERT INTO coupons VALUES ('X', 5);",
         drift="DROP TABLE coupons;", tracked=True, query="SELECT code, pct FROM coupons"),

    # --- renames whose names share nothing ----------------------------------------------------
    case("rename-status-state-tracked", "unrelated rename", SERVED, schema=SHOP, tracked=True,
         drift="ALTER TABLE orders RENAME COLUMN status TO state;",
         query="SELECT id, status FROM orders ORDER BY id"),
    case("rename-status-state-untracked", "unrelated rename", REFUSED, schema=SHOP,
         drift="ALTER TABLE orders RENAME COLUMN status TO state;",
         query="SELECT id, status FROM orders ORDER BY id"),
    case("rename-customer-client-tracked", "unrelated rename", SERVED, schema=SHOP, tracked=True,
         drift="ALTER TABLE orders RENAME COLUMN customer_id TO client_id;",
         query="SELECT id, customer_id FROM orders WHERE customer_id = 1 ORDER BY id"),
    case("rename-customer-client-untracked", "unrelated rename", REFUSED, schema=SHOP,
         drift="ALTER TABLE orders RENAME COLUMN customer_id TO client_id;",
         query="SELECT id, customer_id FROM orders ORDER BY id",
         note="an empty customer_id column would read NULL where every order had its customer"),
    case("rename-email-contact-untracked", "unrelated rename", REFUSED, schema=SHOP,
         drift="ALTER TABLE customers RENAME COLUMN email TO contact;",
         query="SELECT name, email FROM customers ORDER BY name",
         note="nothing says email's type, so the new column is only proposed; the proposal's reader sees the rename"),
    case("rename-name-untracked", "unrelated rename", REFUSED, schema=SHOP,
         drift="ALTER TABLE customers RENAME COLUMN name TO full_name;",
         query="SELECT id, name FROM customers ORDER BY id",
         note="full_name keeps 'name' as a word: the rename is proposed, never a new empty name column"),
    case("rename-boolean-untracked-orm-list", "unrelated rename", REFUSED, schema=ACCOUNTS,
         drift="ALTER TABLE accounts RENAME COLUMN is_active TO enabled;",
         query="SELECT id, login, is_active, joined_at FROM accounts ORDER BY id",
         note="enabled is the only column the ORM's full list leaves out where is_active was, and boolean"),
    case("rename-boolean-untracked-partial-list", "unrelated rename", REFUSED, schema=ACCOUNTS,
         drift="ALTER TABLE accounts RENAME COLUMN is_active TO enabled;",
         query="SELECT id, is_active FROM accounts ORDER BY id",
         note="enabled is the only boolean the statement does not name: a new is_active would read false"),
    case("rename-boolean-untracked-write", "unrelated rename", REFUSED, schema=ACCOUNTS,
         drift="ALTER TABLE accounts RENAME COLUMN is_active TO enabled;",
         query="UPDATE accounts SET is_active = false WHERE id = 1",
         note="a write to the old name: a new is_active would take the write while enabled keeps true"),
    # --- a whole table moved from flat to snake_case (the compat view's legacy naming) -------------
    case("flat-table-select-star", "legacy naming", SERVED, schema=FLAT_ALBUM, drift=FLAT_ALBUM_TO_SNAKE,
         query="SELECT * FROM Album ORDER BY AlbumId",
         note="SELECT * gives the legacy columns in the legacy order, none of the new names"),
    case("flat-table-write-through", "legacy naming", SERVED, schema=FLAT_ALBUM, drift=FLAT_ALBUM_TO_SNAKE,
         query="UPDATE Album SET ArtistId = 3 WHERE AlbumId = 2 RETURNING *",
         check="SELECT * FROM Album ORDER BY AlbumId",
         note="plain column references: the write lands in artist_id, RETURNING * has the legacy shape"),
    case("pascal-table-select-star", "legacy naming", SERVED, schema=ALBUM, drift=ALBUM_TO_SNAKE,
         query='SELECT * FROM album WHERE "ArtistId" = 2 AND "Title" <> \'\' ORDER BY "AlbumId"',
         note='quoted PascalCase, a one-word name among it: SELECT * gives "AlbumId", "Title", "ArtistId"'),
    case("pascal-table-write-through", "legacy naming", SERVED, schema=ALBUM, drift=ALBUM_TO_SNAKE,
         query='UPDATE album SET "ArtistId" = 3, "Title" = upper("Title") WHERE "AlbumId" = 2 RETURNING *',
         check='SELECT * FROM album ORDER BY "AlbumId"'),
    case("pascal-table-typo-beside-legacy-names", "legacy naming", REFUSED, schema=ALBUM, drift=ALBUM_TO_SNAKE,
         code_bug=True, query='SELECT "Titel" FROM album WHERE "AlbumId" = 1 AND "ArtistId" > 0',
         note="the typo is reported first: only proposed, and no naming is inferred from it"),
    case("pascal-table-dropped-column", "legacy naming", REFUSED, schema=ALBUM,
         drift='ALTER TABLE album DROP COLUMN "ArtistId";' + ALBUM_TO_SNAKE.split(";")[0] + ";", tracked=True,
         query='SELECT "AlbumId", "Title", "ArtistId" FROM album ORDER BY "AlbumId"',
         note="the dropped column's data is gone: never made up, whatever the table's naming"),
    case("flat-table-typo-beside-legacy-names", "legacy naming", REFUSED, schema=FLAT_ALBUM,
         drift=FLAT_ALBUM_TO_SNAKE, code_bug=True, query="SELECT Titel FROM Album WHERE AlbumId = 1",
         note="the typo PostgreSQL reports first is only proposed; no naming is inferred from a typo"),
    case("flat-table-dropped-column", "legacy naming", REFUSED, schema=FLAT_ALBUM,
         drift="ALTER TABLE album DROP COLUMN artistid;" + FLAT_ALBUM_TO_SNAKE.split(";")[0] + ";", tracked=True,
         query="SELECT AlbumId, ArtistId FROM Album ORDER BY AlbumId",
         note="the dropped column's data is gone: never made up, whatever the table's naming"),
    # --- legacy names reached through a scope: CTE, subquery, USING -------------------------------
    case("cte-flat-table", "scopes", SERVED, schema=FLAT_ALBUM, drift=FLAT_ALBUM_TO_SNAKE,
         query="WITH a AS (SELECT * FROM Album) SELECT a.AlbumId, a.Title FROM a ORDER BY a.AlbumId",
         note="the CTE selects *: its names are the table's, served in one round"),
    case("cte-union-flat-table", "scopes", SERVED, schema=FLAT_ALBUM, drift=FLAT_ALBUM_TO_SNAKE,
         query="WITH a AS (SELECT * FROM Album WHERE ArtistId = 1 UNION ALL SELECT * FROM Album WHERE AlbumId = 3) "
               "SELECT a.AlbumId, a.Title FROM a ORDER BY a.AlbumId",
         note="a UNION takes its names from its first branch"),
    case("subquery-flat-table", "scopes", SERVED, schema=FLAT_ALBUM, drift=FLAT_ALBUM_TO_SNAKE,
         query="SELECT s.ArtistId, count(*) FROM (SELECT * FROM Album) AS s GROUP BY s.ArtistId ORDER BY 1"),
    case("using-flat-tables", "scopes", SERVED, schema=FLAT_STORE, drift=FLAT_STORE_TO_SNAKE,
         query="SELECT Title, Name FROM Album JOIN Artist USING (ArtistId) ORDER BY Title",
         note="the USING name is healed on both sides of the join"),
    case("cte-typo", "scopes", REFUSED, schema=FLAT_ALBUM, drift=FLAT_ALBUM_TO_SNAKE, code_bug=True,
         query="WITH a AS (SELECT * FROM Album) SELECT a.Titel FROM a WHERE a.AlbumId = 1",
         note="a typo behind a CTE is only proposed, like anywhere else"),
    case("subquery-dropped-column", "scopes", REFUSED, schema=FLAT_ALBUM, tracked=True,
         drift="ALTER TABLE album DROP COLUMN artistid;" + FLAT_ALBUM_TO_SNAKE.split(";")[0] + ";",
         query="SELECT s.AlbumId, s.ArtistId FROM (SELECT * FROM Album) s ORDER BY 1",
         note="the dropped column's data is gone: never made up behind a subquery"),
    case("subquery-renames-its-columns", "scopes", REFUSED, schema=FLAT_ALBUM, drift=FLAT_ALBUM_TO_SNAKE, code_bug=True,
         query="SELECT s.AlbumId FROM (SELECT album_id AS id, Title FROM Album) s",
         note="the subquery names its own columns, so s.AlbumId is no name of the table's"),
    case("typo-in-orm-list", "typo", REFUSED, schema=ACCOUNTS, code_bug=True,
         query="SELECT id, lgoin, is_active, joined_at FROM accounts ORDER BY id",
         note="the typo sits where login is: proposed as login either way, never a column of its own"),
    case("rename-timestamp-untracked-partial-list", "unrelated rename", REFUSED, schema=ACCOUNTS,
         known_gap="a rename made before selfheal was installed, whose names share no word and that left no constraint, index or hint behind, looks exactly like code ahead of the schema when the statement lists too little to place it: a name that gives a type without a made-up default (*_at: timestamptz) is added, and reads NULL where the renamed column has values",
         drift="ALTER TABLE accounts RENAME COLUMN joined_at TO signup_time;",
         query="SELECT id, joined_at FROM accounts ORDER BY id"),
    case("missing-timestamp-beside-two-untracked", "missing column", SERVED,
         ahead(SHOP + "ALTER TABLE orders ADD COLUMN paid_at timestamptz, ADD COLUMN shipped_at timestamptz;\n",
               "orders", "archived_at timestamptz"),
         query="SELECT id, archived_at FROM orders ORDER BY id",
         note="two timestamptz columns the statement does not name: nothing says which, if any, was renamed"),
    case("rename-table-untracked", "unrelated rename", REFUSED, schema=SHOP,
         drift="ALTER TABLE orders RENAME TO purchase;",
         query="SELECT id, total_amount FROM orders ORDER BY id"),
    case("rename-chain-tracked", "unrelated rename", SERVED, schema=SHOP, tracked=True,
         drift="ALTER TABLE orders RENAME COLUMN status TO state; ALTER TABLE orders RENAME COLUMN state TO phase;",
         query="SELECT id, status FROM orders WHERE status = 'paid' ORDER BY id"),
    case("rename-table-and-column-tracked", "unrelated rename", SERVED, schema=SHOP, tracked=True,
         drift="ALTER TABLE customers RENAME TO clients; ALTER TABLE clients RENAME COLUMN name TO full_name;",
         query="SELECT id, name FROM customers ORDER BY id"),

    # --- joins ------------------------------------------------------------------------------
    case("join-unqualified-fold-match-other-table", "join", REFUSED,
         schema="""
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, total_amount numeric(10,2) NOT NULL DEFAULT 0);
INSERT INTO customers (name, total_amount) VALUES ('Ada', 500), ('Bob', 20);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL, TotalAmount numeric(10,2) NOT NULL);
INSERT INTO orders (customer_id, TotalAmount) VALUES (1, 10), (2, 20), (1, 30);
""", drift="ALTER TABLE orders RENAME COLUMN totalamount TO amount_due;",
         query="SELECT o.id, c.name, TotalAmount FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id",
         note="totalamount matches customers.total_amount by spelling, but the code meant the order's amount"),
    case("join-unqualified-derived-other-table", "join", REFUSED,
         schema="""
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, channel text NOT NULL);
INSERT INTO customers (name, channel) VALUES ('Ada', '1'), ('Bob', '2');
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL, channel_id int);
INSERT INTO orders (customer_id, channel_id) VALUES (1, 2), (2, 2), (1, 1);
""", drift="ALTER TABLE orders DROP COLUMN channel_id;",
         query="SELECT o.id, channel_id FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id"),
    case("join-unqualified-missing-everywhere", "join", REFUSED,
         ahead(SHOP, "orders", "is_gift boolean NOT NULL DEFAULT false"),
         query="SELECT o.id, c.name, is_gift FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id"),
    case("join-unqualified-legacy-own-table", "join", REFUSED, schema=LINES, drift=LINES_TO_SNAKE,
         query='SELECT l.invoice_line_id, "UnitPrice", t.name FROM invoice_line l JOIN track t ON t.track_id = l.track_id',
         note="README: an unqualified name in a statement over several tables is only proposed"),
    case("join-qualified-legacy", "join", SERVED, schema=LINES, drift=LINES_TO_SNAKE,
         query='SELECT l.invoice_line_id, l."UnitPrice", t.name FROM invoice_line l '
               'JOIN track t ON t.track_id = l.track_id ORDER BY l.invoice_line_id'),

    # --- CTEs, subqueries, self-joins, schema-qualified names ------------------------------------
    case("cte-legacy-columns", "cte/subquery/schema", SERVED, schema=ALBUM, drift=ALBUM_TO_SNAKE,
         query='WITH a AS (SELECT "AlbumId", "Title" FROM album) SELECT "Title" FROM a WHERE "AlbumId" > 1 '
               'ORDER BY "AlbumId"'),
    case("subquery-in-from", "cte/subquery/schema", SERVED, schema=ALBUM, drift=ALBUM_TO_SNAKE,
         query='SELECT s."Title" FROM (SELECT "AlbumId", "Title" FROM album) s ORDER BY s."AlbumId"'),
    case("exists-subquery-qualified", "cte/subquery/schema", SERVED, schema=LEGACY_ORDERS,
         drift=LEGACY_ORDERS_TO_SNAKE,
         query='SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o."CustomerId" = c.id) '
               'ORDER BY name'),
    case("self-join-legacy-columns", "cte/subquery/schema", SERVED, schema=EMPLOYEE, drift=EMPLOYEE_TO_SNAKE,
         query='SELECT e."FirstName", m."FirstName" AS manager FROM employee e '
               'LEFT JOIN employee m ON m."EmployeeId" = e."ReportsTo"'),
    case("self-join-legacy-table", "cte/subquery/schema", SERVED, schema=PASCAL_EMPLOYEE,
         drift=PASCAL_EMPLOYEE_TO_SNAKE,
         query='SELECT e."FirstName", m."FirstName" AS manager FROM "Employee" e '
               'LEFT JOIN "Employee" m ON m."EmployeeId" = e."ReportsTo" ORDER BY e."EmployeeId"'),
    case("schema-qualified-legacy-column", "cte/subquery/schema", REFUSED, schema=LINES, drift=LINES_TO_SNAKE,
         query='SELECT invoice_line_id, "UnitPrice" FROM public.invoice_line ORDER BY 1',
         note="compat views serve unqualified names only; public.invoice_line bypasses them"),
    case("schema-qualified-legacy-table", "cte/subquery/schema", REFUSED, schema=PASCAL_LINES,
         drift=PASCAL_LINES_TO_SNAKE, query='SELECT "UnitPrice" FROM public."InvoiceLine"'),
    case("other-schema-out-of-scope", "cte/subquery/schema", REFUSED, schema=SALES_ALBUM,
         drift=ALBUM_TO_SNAKE.replace("TABLE album", "TABLE sales.album"),
         query='SELECT "AlbumId", "Title" FROM sales.album ORDER BY 1',
         note="policy scope is public by default"),

    # --- INSERT ... RETURNING through renamed names ---------------------------------------------
    case("insert-returning-legacy-columns", "insert returning", SERVED, schema=ALBUM, drift=ALBUM_TO_SNAKE,
         query='INSERT INTO album ("Title", "ArtistId") VALUES (\'Let There Be Rock\', 1) RETURNING "AlbumId", "Title"',
         check='SELECT "AlbumId", "Title", "ArtistId" FROM album ORDER BY "AlbumId"'),
    case("insert-returning-pascal-table", "insert returning", SERVED, schema=PASCAL_LINES, drift=PASCAL_LINES_TO_SNAKE,
         query='INSERT INTO "InvoiceLine" ("InvoiceId", "TrackId", "UnitPrice", "Quantity") VALUES (4, 12, 0.99, 2) '
               'RETURNING "InvoiceLineId", "UnitPrice"',
         check='SELECT * FROM "InvoiceLine" ORDER BY "InvoiceLineId"'),
    case("insert-returning-flat-table", "insert returning", SERVED, schema=FLAT_LINES, drift=FLAT_LINES_TO_SNAKE,
         query="INSERT INTO invoiceline (invoiceid, unitprice, quantity) VALUES (9, 2.49, 1) "
               "RETURNING invoicelineid, unitprice",
         check="SELECT * FROM invoiceline ORDER BY invoicelineid"),
    case("insert-returning-tracked", "insert returning", SERVED, schema=ALBUM, drift=ALBUM_TO_SNAKE, tracked=True,
         query='INSERT INTO album ("Title", "ArtistId") VALUES (\'Flick of the Switch\', 1) RETURNING "AlbumId", "Title"',
         check='SELECT "AlbumId", "Title", "ArtistId" FROM album ORDER BY "AlbumId"'),
    case("insert-returning-unrelated-tracked", "insert returning", SERVED, schema=SHOP, tracked=True,
         drift="ALTER TABLE orders RENAME COLUMN customer_id TO client_id;",
         query="INSERT INTO orders (customer_id, total_amount) VALUES (2, 12.00) RETURNING id, customer_id, status",
         check="SELECT id, customer_id, total_amount FROM orders ORDER BY id"),

    # --- UPDATE (and DELETE) through renamed names ------------------------------------------------
    case("update-set-legacy-column", "update/delete", SERVED, schema=LINES, drift=LINES_TO_SNAKE,
         query='UPDATE invoice_line SET "Quantity" = 5 WHERE invoice_line_id = 2',
         check='SELECT invoice_line_id, "Quantity" FROM invoice_line ORDER BY invoice_line_id'),
    case("update-set-pascal-table", "update/delete", SERVED, schema=PASCAL_LINES, drift=PASCAL_LINES_TO_SNAKE,
         query='UPDATE "InvoiceLine" SET "UnitPrice" = 1.29 WHERE "InvoiceLineId" = 3',
         check='SELECT "InvoiceLineId", "UnitPrice" FROM "InvoiceLine" ORDER BY "InvoiceLineId"'),
    case("update-where-legacy-spelling", "update/delete", SERVED, schema=LINES, drift=LINES_TO_SNAKE,
         query='UPDATE invoice_line SET "Quantity" = 0 WHERE "UnitPrice" > 1',
         check='SELECT invoice_line_id, "Quantity", "UnitPrice" FROM invoice_line ORDER BY invoice_line_id',
         note="a legacy spelling names the same column: no made-up value decides the rows"),
    case("update-returning-legacy-after-where", "update/delete", SERVED, schema=ACCOUNT, drift=ACCOUNT_TO_SNAKE,
         query='UPDATE account SET balance = balance + 5 WHERE balance > 50 RETURNING "AccountID", balance',
         note="the legacy name is only in RETURNING, which chooses no rows"),
    case("update-set-tracked-unrelated", "update/delete", SERVED, schema=SHOP, tracked=True,
         drift="ALTER TABLE orders RENAME COLUMN status TO state;",
         query="UPDATE orders SET status = 'shipped' WHERE id = 2",
         check="SELECT id, status FROM orders ORDER BY id"),
    case("delete-through-pascal-table", "update/delete", SERVED, schema=PASCAL_LINES, drift=PASCAL_LINES_TO_SNAKE,
         query='DELETE FROM "InvoiceLine" WHERE "Quantity" >= 2 RETURNING "InvoiceLineId"',
         check='SELECT "InvoiceLineId" FROM "InvoiceLine" ORDER BY 1'),

    # --- a search_path set per database -----------------------------------------------------------
    # enable_compat('app') runs after ALTER ROLE app IN DATABASE ... SET search_path, as an
    # administrator following the README would. Expected: the app is routed in that database too
    # (each schema's compat schema goes just before it on the role's search_path), so legacy names
    # are served.
    case("perdb-public-legacy-column", "per-database search_path", SERVED, schema=ALBUM, drift=ALBUM_TO_SNAKE,
         role_setup="ALTER ROLE app IN DATABASE {db} SET search_path = public",
         query='SELECT "AlbumId", "Title" FROM album ORDER BY "AlbumId"'),
    case("perdb-compat-first", "per-database search_path", SERVED, schema=ALBUM, drift=ALBUM_TO_SNAKE,
         role_setup="ALTER ROLE app IN DATABASE {db} SET search_path = selfheal_compat, public",
         note="routed by 0.1.0: its selfheal_compat leaves the path, each schema's compat schema joins it",
         query='SELECT "AlbumId", "Title" FROM album ORDER BY "AlbumId"'),
    case("perdb-public-missing-column", "per-database search_path", SERVED,
         ahead(SHOP, "customers", "is_verified boolean NOT NULL DEFAULT false"),
         role_setup="ALTER ROLE app IN DATABASE {db} SET search_path = public",
         query="SELECT id, is_verified FROM customers ORDER BY id",
         note="an added column needs no routing"),
    case("perdb-sales-schema-in-scope", "per-database search_path", SERVED, schema=SALES_ALBUM,
         drift=ALBUM_TO_SNAKE.replace("TABLE album", "TABLE sales.album"),
         role_setup="ALTER ROLE app IN DATABASE {db} SET search_path = sales, public",
         selfheal_setup=SCOPE_SALES,
         query='SELECT "AlbumId", "Title" FROM album ORDER BY "AlbumId"'),
    case("perdb-sales-schema-tracked", "per-database search_path", SERVED, schema=SALES_ALBUM,
         drift=ALBUM_TO_SNAKE.replace("TABLE album", "TABLE sales.album"), tracked=True,
         role_setup="ALTER ROLE app IN DATABASE {db} SET search_path = sales, public",
         selfheal_setup=SCOPE_SALES,
         query='SELECT "AlbumId", "Title" FROM album ORDER BY "AlbumId"',
         note="the scope is widened before the drift, which selfheal watches"),
]
