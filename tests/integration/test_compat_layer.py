"""The compat layer, tried as a new user would: one compat schema per source schema, routing that
keeps the role's own search_path and can be undone, names PostgreSQL allows only when quoted,
and renames that come back."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pgerr

from selfheal.core import planner

from .conftest import APP_ROLE
from .support import fail_then_heal

TENANTS = f"""
CREATE SCHEMA tenant_a;
CREATE TABLE public.users (id int PRIMARY KEY, email text);
CREATE TABLE tenant_a.users (id int PRIMARY KEY, email text);
INSERT INTO public.users VALUES (1, 'public@example.com');
INSERT INTO tenant_a.users VALUES (1, 'tenant@example.com');
GRANT USAGE ON SCHEMA tenant_a TO {APP_ROLE};
GRANT SELECT, INSERT, UPDATE, DELETE ON public.users, tenant_a.users TO {APP_ROLE};
GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO {APP_ROLE};
UPDATE selfheal.policy SET value = 'public, tenant_a' WHERE name = 'scope';
"""


def role_path(db, in_database: bool = True) -> str | None:
    row = db.admin.execute(
        "SELECT s FROM pg_db_role_setting d JOIN pg_roles r ON r.oid = d.setrole, unnest(d.setconfig) s "
        "WHERE r.rolname = %s AND d.setdatabase = CASE WHEN %s THEN (SELECT oid FROM pg_database "
        "WHERE datname = current_database()) ELSE 0 END AND s LIKE 'search_path=%%'",
        (APP_ROLE, in_database)).fetchone()
    return ", ".join(planner.search_path_names(row[0].split("=", 1)[1])) if row else None


def test_a_rename_in_public_never_changes_what_a_tenant_role_reads_or_writes(db):
    db.admin.execute(TENANTS)
    db.admin.execute(f"ALTER ROLE {APP_ROLE} IN DATABASE {db.name} SET search_path = tenant_a, public")
    db.admin.execute(f"SELECT selfheal.enable_compat('{APP_ROLE}')")
    assert role_path(db) == "selfheal_compat_tenant_a, tenant_a, selfheal_compat_public, public"
    db.admin.execute("ALTER TABLE public.users RENAME COLUMN email TO email_address")  # served as email
    tenant_app = db.connect()
    assert tenant_app.execute("SELECT email FROM users").fetchall() == [("tenant@example.com",)]
    tenant_app.execute("UPDATE users SET email = 'changed@example.com' WHERE id = 1")
    tenant_app.execute("INSERT INTO users VALUES (2, 'two@example.com')")
    assert db.scalar("SELECT count(*) FROM tenant_a.users") == 2
    assert db.admin.execute("SELECT * FROM public.users").fetchall() == [(1, "public@example.com")]
    # A role that searches public only reads the old name there, in its old place.
    db.admin.execute(f"ALTER ROLE {APP_ROLE} IN DATABASE {db.name} SET search_path = public; "
                     f"SELECT selfheal.enable_compat('{APP_ROLE}')")
    public_app = db.connect()
    cur = public_app.execute("SELECT * FROM users")
    assert [c.name for c in cur.description] == ["id", "email"] and cur.fetchall() == [(1, "public@example.com")]
    public_app.execute("UPDATE users SET email = 'new@example.com' WHERE id = 1")
    assert db.scalar("SELECT email_address FROM public.users") == "new@example.com"


def test_a_rename_in_a_tenant_schema_is_served_to_that_tenants_role_only(db):
    db.admin.execute(TENANTS)
    db.admin.execute(f"ALTER ROLE {APP_ROLE} IN DATABASE {db.name} SET search_path = tenant_a, public; "
                     f"SELECT selfheal.enable_compat('{APP_ROLE}')")
    db.admin.execute("ALTER TABLE tenant_a.users RENAME COLUMN email TO mail")
    assert db.connect().execute("SELECT email FROM users").fetchall() == [("tenant@example.com",)]
    views = db.admin.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE n.nspname LIKE 'selfheal_compat%' AND c.relkind = 'v'").fetchall()
    assert views == [("selfheal_compat_tenant_a", "users")]


def test_enable_compat_keeps_the_roles_settings_and_disable_compat_undoes_it(db):
    db.admin.execute(f"CREATE SCHEMA app_data; ALTER ROLE {APP_ROLE} SET search_path = app_data, public")
    try:
        db.admin.execute(f"ALTER DATABASE {db.name} SET search_path = public")
        assert "now reads through" in db.scalar(f"SELECT selfheal.enable_compat('{APP_ROLE}')")
        assert role_path(db, in_database=False) == "selfheal_compat_app_data, app_data, selfheal_compat_public, public"
        assert role_path(db) is None  # no database-specific setting was made for it
        assert "already" in db.scalar(f"SELECT selfheal.enable_compat('{APP_ROLE}')")
        assert "no longer" in db.scalar(f"SELECT selfheal.disable_compat('{APP_ROLE}')")
        assert role_path(db, in_database=False) == "app_data, public"
        assert "does not read" in db.scalar(f"SELECT selfheal.disable_compat('{APP_ROLE}')")
    finally:
        db.admin.execute(f"ALTER ROLE {APP_ROLE} RESET search_path")


def test_routing_a_role_with_no_setting_is_undone_without_a_trace(db):
    db.admin.execute(f"SELECT selfheal.enable_compat('{APP_ROLE}')")
    assert role_path(db) == "selfheal_compat_app, $user, selfheal_compat_public, public"
    db.admin.execute(f"SELECT selfheal.disable_compat('{APP_ROLE}')")
    assert role_path(db) is None and role_path(db, in_database=False) is None


def test_a_quoted_legacy_table_name_with_a_space_is_served(db):
    db.admin.execute(f"""CREATE TABLE order_details (id int PRIMARY KEY, quantity int);
                         INSERT INTO order_details VALUES (1, 3);
                         GRANT SELECT, INSERT ON order_details TO {APP_ROLE};
                         GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO {APP_ROLE};
                         SELECT selfheal.enable_compat('{APP_ROLE}')""")
    app = db.connect()
    result = fail_then_heal(app, 'SELECT quantity FROM "Order Details"', pgerr.UndefinedTable)
    assert result["status"] == "healed", result
    assert app.execute('SELECT quantity FROM "Order Details"').fetchall() == [(3,)]
    app.execute('INSERT INTO "Order Details" VALUES (2, 5)')
    assert db.scalar("SELECT count(*) FROM order_details") == 2


def test_a_compat_schema_someone_else_made_first_is_never_used(db):
    db.admin.execute(f"""CREATE ROLE squatter; CREATE SCHEMA selfheal_compat_public AUTHORIZATION squatter;
                         CREATE TABLE sessions (id int PRIMARY KEY, service_type text);
                         GRANT SELECT ON sessions TO {APP_ROLE}""")
    try:
        with pytest.raises(psycopg.Error, match="is not selfheal's"):
            db.admin.execute("SELECT selfheal.add_alias('sessions', 'kind', 'service_type')")
        assert db.scalar("SELECT count(*) FROM pg_class WHERE relnamespace = 'selfheal_compat_public'::regnamespace") == 0
    finally:
        db.admin.execute("DROP SCHEMA selfheal_compat_public CASCADE; DROP ROLE squatter")


def test_a_rename_that_comes_back_serves_no_name_it_held_in_between(db):
    db.admin.execute(f"""CREATE TABLE accounts (id int PRIMARY KEY, region text);
                         INSERT INTO accounts VALUES (1, 'eu');
                         GRANT SELECT ON accounts TO {APP_ROLE};
                         SELECT selfheal.enable_compat('{APP_ROLE}')""")
    db.admin.execute("ALTER TABLE accounts RENAME COLUMN region TO area")
    assert db.connect().execute("SELECT region FROM accounts").fetchall() == [("eu",)]
    db.admin.execute("ALTER TABLE accounts RENAME COLUMN area TO region")
    assert db.scalar("SELECT count(*) FROM selfheal.alias WHERE active") == 0
    cur = db.connect().execute("SELECT * FROM accounts")
    assert [c.name for c in cur.description] == ["id", "region"]


def test_dropping_a_schema_retires_the_legacy_names_of_its_tables(db):
    db.admin.execute(TENANTS)
    db.admin.execute("ALTER TABLE tenant_a.users RENAME COLUMN email TO mail")
    assert db.scalar("SELECT count(*) FROM selfheal.alias WHERE active AND schema_name = 'tenant_a'") == 1
    db.admin.execute("DROP SCHEMA tenant_a CASCADE")
    assert db.scalar("SELECT count(*) FROM selfheal.alias WHERE active") == 0
    assert db.scalar("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE n.nspname LIKE 'selfheal_compat%' AND c.relkind = 'v'") == 0
