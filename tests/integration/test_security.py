"""Security: an attacker's test suite.

Each test is one attack, written the way an attacker would try it, and asserts two things:
the attack fails, and nothing changed. "Nothing" is a snapshot taken before the attack and
compared after it: role attributes (pg_roles), the columns and rows of the attacked tables,
selfheal.alias and the compat views in the selfheal_compat_<schema> schemas.

Roles are cluster-wide, so every extra role is named after the test's database and dropped
(with everything it owns there) when the test ends.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import errors as pgerr

from .conftest import APP_ROLE

HEAL_ERROR = "selfheal.heal_error(text, text, text, text)"


# ---------------------------------------------------------------------------------------
# Helpers: state snapshots, roles, reports, the server log


def columns(db, table: str) -> list[tuple]:
    return db.admin.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attgenerated FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (table,)).fetchall()


def rows_digest(db, table: str) -> tuple:
    # `table` is one of the test's own constants, never input.
    return db.admin.execute(f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                            f"FROM {table} AS x").fetchone()


def snapshot(db, tables=(), roles=()) -> dict:
    """Everything an attack could have changed."""
    q = db.admin.execute
    return {
        "roles": q("SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication "
                   "FROM pg_roles WHERE rolname = ANY (%s) ORDER BY rolname", (list(roles) + [APP_ROLE],)).fetchall(),
        "columns": {t: columns(db, t) for t in tables},
        "rows": {t: rows_digest(db, t) for t in tables},
        "aliases": q("SELECT id, schema_name, table_name, legacy_name, kind, expression, active "
                     "FROM selfheal.alias ORDER BY id").fetchall(),
        "compat_views": q("SELECT c.relname, pg_get_viewdef(c.oid), n.nspname FROM pg_class c "
                          "JOIN pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE n.nspname LIKE 'selfheal\\_compat%%' AND c.relkind = 'v' "
                          "ORDER BY 1").fetchall(),
    }


def is_privileged(db, role: str) -> bool:
    return db.scalar("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = %s", (role,))


class Roles:
    """Extra login roles for one test, unique to its database, dropped afterwards."""

    def __init__(self, database):
        self.database, self.names = database, []

    def create(self, prefix: str) -> str:
        name = f"{prefix}_{self.database.name}"
        self.database.admin.execute(f"CREATE ROLE {name} LOGIN")
        self.names.append(name)
        return name

    def drop_all(self):
        cluster = self.database.cluster
        for name in self.names:
            with contextlib.suppress(psycopg.Error), psycopg.connect(
                    cluster.dsn(self.database.name), autocommit=True, options="-c lock_timeout=10s") as conn:
                conn.execute(f"DROP OWNED BY {name} CASCADE")
            with contextlib.suppress(psycopg.Error), psycopg.connect(cluster.dsn(), autocommit=True) as conn:
                conn.execute(f"DROP ROLE IF EXISTS {name}")


@pytest.fixture
def roles(db):
    made = Roles(db)
    yield made
    made.drop_all()


@pytest.fixture
def log_roles(log_db):
    made = Roles(log_db)
    yield made
    made.drop_all()


def heal_error(conn, message: str, statement: str, sqlstate: str = "42703") -> dict:
    """What any role with EXECUTE on heal_error can send: every argument is the caller's choice."""
    cur = conn.execute("SELECT * FROM selfheal.heal_error(%s, %s, %s)", (sqlstate, message, statement))
    return dict(zip([c.name for c in cur.description], cur.fetchone()))


def audit_rows(db, event_id) -> list[tuple]:
    return db.admin.execute("SELECT status, ddl, reason FROM selfheal.audit WHERE event_id = %s ORDER BY id",
                            (event_id,)).fetchall()


def assert_refused(db, result: dict):
    assert result["status"] == "refused", result
    assert result["ddl"] is None, result
    audit = audit_rows(db, result["event_id"])
    assert [a[0] for a in audit] == ["refused"], audit
    assert audit[0][1] is None and audit[0][2], audit


def current_log(db) -> Path:
    """The jsonlog file the server writes now (the test runs as root and may read and append to it)."""
    return Path(db.scalar("SELECT current_setting('data_directory')")) / db.scalar(
        "SELECT pg_current_logfile('jsonlog')")


def log_size(db) -> int:
    return current_log(db).stat().st_size


def wait_logged(db, *needles: str, since: int = 0, timeout: float = 20.0) -> None:
    """The logging collector writes asynchronously: wait until the log holds every needle."""
    deadline = time.monotonic() + timeout
    while True:
        with current_log(db).open("rb") as fh:
            fh.seek(since)
            data = fh.read()
        if all(n.encode() in data for n in needles):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the server log never showed {needles}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------
# 1. A table owner becomes superuser through undo()


def test_table_owner_cannot_become_superuser_through_undo(db, roles):
    mallory = roles.create("mallory")
    db.admin.execute(f"GRANT CREATE ON SCHEMA public TO {mallory}")
    owner = db.connect(user=mallory)
    owner.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
    owner.execute("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 5) g")

    result = heal_error(db.admin, 'column "extra" does not exist', "SELECT extra FROM t WHERE extra <> ''")
    assert result["status"] == "healed", result
    extra_type = db.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 't'::regclass AND attname = 'extra'")

    # The owner plants a volatile DEFAULT that anyone evaluating it as a superuser runs for her.
    owner.execute(f"""CREATE FUNCTION public.evil_default() RETURNS {extra_type} LANGUAGE plpgsql VOLATILE AS $$
                      BEGIN
                          BEGIN ALTER ROLE {mallory} SUPERUSER; EXCEPTION WHEN others THEN NULL; END;
                          RETURN NULL;
                      END $$""")
    owner.execute("ALTER TABLE t ALTER COLUMN extra SET DEFAULT public.evil_default()")
    assert not is_privileged(db, mallory)
    before = snapshot(db, roles=[mallory])

    with contextlib.suppress(psycopg.Error):  # undo may refuse; either way it must not run her code as admin
        db.admin.execute("SELECT selfheal.undo(%s)", (result["audit_id"],))

    assert not is_privileged(db, mallory), "undo() evaluated the owner's DEFAULT as superuser"
    assert snapshot(db, roles=[mallory])["roles"] == before["roles"]


# ---------------------------------------------------------------------------------------
# 2. A table owner becomes superuser through backfill()


BACKFILL_TRIGGERS = {
    # A BEFORE UPDATE row trigger: runs as whoever runs the UPDATE.
    "before_update": """
        CREATE FUNCTION public.evil_trg() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            BEGIN ALTER ROLE {role} SUPERUSER; EXCEPTION WHEN others THEN NULL; END;
            RETURN NEW;
        END $$;
        CREATE TRIGGER evil BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION public.evil_trg()""",
    # The same, first stepping out of any SET ROLE the backfill may have taken.
    "before_update_reset_role": """
        CREATE FUNCTION public.evil_trg() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            BEGIN RESET ROLE; EXCEPTION WHEN others THEN NULL; END;
            BEGIN SET ROLE NONE; EXCEPTION WHEN others THEN NULL; END;
            BEGIN ALTER ROLE {role} SUPERUSER; EXCEPTION WHEN others THEN NULL; END;
            RETURN NEW;
        END $$;
        CREATE TRIGGER evil BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION public.evil_trg()""",
    # A deferred constraint trigger fires at COMMIT, after any role switch was undone.
    "deferred_constraint_trigger": """
        CREATE FUNCTION public.evil_trg() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            BEGIN RESET ROLE; EXCEPTION WHEN others THEN NULL; END;
            BEGIN ALTER ROLE {role} SUPERUSER; EXCEPTION WHEN others THEN NULL; END;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER evil AFTER UPDATE ON t DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION public.evil_trg()""",
}


@pytest.mark.parametrize("trigger", sorted(BACKFILL_TRIGGERS))
def test_table_owner_cannot_become_superuser_through_backfill(db, roles, trigger):
    admin = db.admin
    admin.execute("UPDATE selfheal.policy SET value = 'table' WHERE name = 'derived_columns'")
    admin.execute("UPDATE selfheal.policy SET value = '0' WHERE name = 'generated_column_row_limit'")
    mallory = roles.create("mallory")
    admin.execute(f"GRANT CREATE ON SCHEMA public TO {mallory}")
    owner = db.connect(user=mallory)
    owner.execute("CREATE TABLE t (id int PRIMARY KEY, kind text)")
    owner.execute("INSERT INTO t VALUES (1, '1'), (2, '2'), (3, '3'), (4, '4')")
    owner.execute("ANALYZE t")  # 4 rows > generated_column_row_limit 0: a synced column and a backfill job

    result = heal_error(admin, 'column "kind_id" does not exist', "SELECT kind_id FROM t")
    assert result["status"] == "healed", result
    assert db.scalar("SELECT count(*) FROM selfheal.backfill_job WHERE done_at IS NULL") == 1

    owner.execute(BACKFILL_TRIGGERS[trigger].format(role=mallory))
    assert not is_privileged(db, mallory)
    before = snapshot(db, roles=[mallory])

    with contextlib.suppress(psycopg.Error):  # backfill may refuse; it must never run her trigger as admin
        admin.execute("CALL selfheal.backfill()")

    assert not is_privileged(db, mallory), f"backfill() fired the owner's {trigger} as superuser"
    assert snapshot(db, roles=[mallory])["roles"] == before["roles"]


# ---------------------------------------------------------------------------------------
# 3. heal_error alters only tables its caller could act on, in schemas in scope


@pytest.fixture
def healer(db):
    """The app role, allowed to report errors: all an attacker with a leaked app login has."""
    db.admin.execute(f"GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {APP_ROLE}")
    return db.connect()


def test_heal_error_refuses_a_table_in_a_schema_the_caller_cannot_use(db, healer):
    db.admin.execute("""CREATE SCHEMA secret;
                        CREATE TABLE secret.payroll (id int PRIMARY KEY, salary numeric);
                        INSERT INTO secret.payroll VALUES (1, 100000), (2, 250000)""")
    # In scope, so only the missing USAGE can be the reason to refuse.
    db.admin.execute("UPDATE selfheal.policy SET value = 'public, secret' WHERE name = 'scope'")
    before = snapshot(db, ["secret.payroll"])

    result = heal_error(healer, 'column "bonus" does not exist', "SELECT bonus FROM secret.payroll")

    assert_refused(db, result)
    assert snapshot(db, ["secret.payroll"]) == before


def test_heal_error_refuses_a_table_the_caller_has_no_privilege_on(db, healer, roles):
    other = roles.create("tenant_b")
    db.admin.execute(f"""CREATE TABLE public.tenant_b_invoices (id int PRIMARY KEY, amount numeric);
                         INSERT INTO public.tenant_b_invoices VALUES (1, 10), (2, 20);
                         ALTER TABLE public.tenant_b_invoices OWNER TO {other};
                         REVOKE ALL ON public.tenant_b_invoices FROM PUBLIC""")
    before = snapshot(db, ["public.tenant_b_invoices"], roles=[other])

    result = heal_error(healer, 'column "paid_to" does not exist', "SELECT paid_to FROM public.tenant_b_invoices")

    assert_refused(db, result)
    assert snapshot(db, ["public.tenant_b_invoices"], roles=[other]) == before


def test_heal_error_refuses_an_extension_owned_table(log_cluster):
    """cron.job belongs to pg_cron; the app may read it, but selfheal must never alter it."""
    with psycopg.connect(log_cluster.dsn(), autocommit=True) as admin:  # pg_cron lives in 'postgres' here
        try:
            admin.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        except psycopg.Error as exc:
            pytest.skip(f"pg_cron cannot be created: {exc}")
        admin.execute("CREATE EXTENSION IF NOT EXISTS selfheal CASCADE")
        try:
            admin.execute(f"GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {APP_ROLE}")
            admin.execute("GRANT USAGE ON SCHEMA cron TO app; GRANT SELECT ON cron.job TO app")
            admin.execute("UPDATE selfheal.policy SET value = 'public, cron' WHERE name = 'scope'")
            cols = "SELECT attname FROM pg_attribute WHERE attrelid = 'cron.job'::regclass AND attnum > 0 " \
                   "AND NOT attisdropped ORDER BY attnum"
            before = admin.execute(cols).fetchall()
            with psycopg.connect(log_cluster.dsn("postgres", APP_ROLE), autocommit=True) as app:
                result = heal_error(app, 'column "owner_note" does not exist', "SELECT owner_note FROM cron.job")
            assert result["status"] == "refused" and result["ddl"] is None, result
            audit = admin.execute("SELECT status, ddl, reason FROM selfheal.audit WHERE event_id = %s",
                                  (result["event_id"],)).fetchall()
            assert [a[0] for a in audit] == ["refused"] and audit[0][1] is None and audit[0][2], audit
            assert admin.execute(cols).fetchall() == before
        finally:
            admin.execute("DROP EXTENSION selfheal CASCADE")
            admin.execute("DROP EXTENSION pg_cron")


def test_heal_error_refuses_a_schema_outside_scope_until_an_admin_adds_it(db, healer):
    db.admin.execute(f"""CREATE SCHEMA other;
                         CREATE TABLE other.t2 (id int PRIMARY KEY);
                         INSERT INTO other.t2 VALUES (1);
                         GRANT USAGE ON SCHEMA other TO {APP_ROLE};
                         GRANT SELECT, INSERT, UPDATE ON other.t2 TO {APP_ROLE}""")
    before = snapshot(db, ["other.t2"])

    result = heal_error(healer, 'column "note" does not exist', "SELECT note FROM other.t2 WHERE note <> ''")
    assert_refused(db, result)
    assert snapshot(db, ["other.t2"]) == before

    assert db.admin.execute("SELECT value FROM selfheal.policy WHERE name = 'scope'").fetchone() == ("public",)
    updated = db.admin.execute("UPDATE selfheal.policy SET value = 'public, other' WHERE name = 'scope'")
    assert updated.rowcount == 1
    result = heal_error(healer, 'column "note" does not exist', "SELECT note FROM other.t2 WHERE note <> ''")
    assert result["status"] == "healed", result
    assert "note" in [c[0] for c in columns(db, "other.t2")]


def test_a_rename_guessed_by_position_is_never_proposed_on_a_table_the_caller_may_not_read(db, healer):
    """The statement is the caller's to write: a crafted select list may point the position
    evidence at any column, so the proposal is checked as a repair is, and refused."""
    db.admin.execute("CREATE TABLE public.payroll (id int PRIMARY KEY, salary numeric, on_leave boolean); "
                     "INSERT INTO payroll VALUES (1, 100, false)")
    before = snapshot(db, ["public.payroll"])
    result = heal_error(healer, 'column "is_salary" does not exist', "SELECT id, is_salary FROM payroll")
    assert_refused(db, result)
    assert snapshot(db, ["public.payroll"]) == before


def test_heal_error_still_heals_a_table_the_caller_may_read(db, healer):
    db.admin.execute(f"CREATE TABLE public.t_ok (id int PRIMARY KEY); GRANT SELECT ON public.t_ok TO {APP_ROLE}")
    result = heal_error(healer, 'column "label" does not exist', "SELECT label FROM public.t_ok WHERE label <> ''")
    assert result["status"] == "healed", result
    assert "label" in [c[0] for c in columns(db, "public.t_ok")]


# ---------------------------------------------------------------------------------------
# 4. Forged errors through the server log


FORGED = {
    # RAISE can write any SQLSTATE and message it likes.
    "raise_in_do_block": (
        "app", "forged_pay",
        "DO $$BEGIN RAISE EXCEPTION USING ERRCODE = '42703', "
        "MESSAGE = 'column \"forged_pay\" of relation \"payroll\" does not exist'; END$$",
        "inline_code_block"),
    # The same with a bare message, the table named only inside the DO block's string body.
    "raise_naming_the_table_in_a_comment": (
        "app", "forged_bare",
        "DO $$BEGIN /* SELECT forged_bare FROM payroll */ RAISE EXCEPTION USING ERRCODE = '42703', "
        "MESSAGE = 'column \"forged_bare\" does not exist'; END$$",
        "inline_code_block"),
    # A real 42703, but from a query a trigger function runs: the logged statement is the INSERT.
    "from_inside_a_trigger": ("eve", "ghost", "INSERT INTO audit_src VALUES (1)", "ghost_fn"),
    # The table is named only in a comment or a string literal of the failing statement.
    "table_only_in_a_comment": (
        "app", "stolen_c", "SELECT stolen_c FROM (VALUES (1)) AS v(a) -- JOIN payroll USING (stolen_c)", None),
    "table_only_in_a_literal": ("app", "stolen_l", "SELECT stolen_l, 'SELECT stolen_l FROM payroll' AS q", None),
}


@pytest.mark.parametrize("case", sorted(FORGED))
def test_forged_errors_in_the_log_change_nothing(log_db, log_roles, case):
    who, marker, statement, function = FORGED[case]
    admin = log_db.admin
    eve = log_roles.create("eve")
    admin.execute(f"""CREATE TABLE public.payroll (id int PRIMARY KEY, salary numeric);
                      INSERT INTO public.payroll VALUES (1, 100000);
                      GRANT SELECT ON public.payroll TO {APP_ROLE}, {eve};
                      GRANT CREATE ON SCHEMA public TO {eve}""")
    attacker = log_db.connect(user=eve)
    attacker.execute("""CREATE TABLE public.audit_src (id int);
                        CREATE FUNCTION public.ghost_fn() RETURNS trigger LANGUAGE plpgsql AS $$
                        BEGIN EXECUTE 'SELECT ghost FROM payroll'; RETURN NEW; END $$;
                        CREATE TRIGGER audit_src_ghost BEFORE INSERT ON public.audit_src
                            FOR EACH ROW EXECUTE FUNCTION public.ghost_fn()""")
    tables = ["public.payroll", "public.audit_src"]
    before = snapshot(log_db, tables, roles=[eve])
    start = log_size(log_db)

    conn = attacker if who == "eve" else log_db.connect()
    with pytest.raises(psycopg.Error) as info:
        conn.execute(statement)
    assert info.value.sqlstate == "42703"
    wait_logged(log_db, marker, since=start)
    admin.execute("SELECT heal()")

    assert snapshot(log_db, tables, roles=[eve]) == before
    events = admin.execute("SELECT status, reason FROM selfheal.error_event WHERE source = 'log' "
                           "AND message LIKE %s", (f"%{marker}%",)).fetchall()
    assert events, "heal() did not record the forged error"
    assert all(status == "needs_review" for status, _ in events), events
    if function:
        assert all(function in (reason or "") for _, reason in events), events


# ---------------------------------------------------------------------------------------
# 5. Taking the compat layer down


@pytest.fixture
def compat(db):
    """A column alias and a relation alias, each served by a compat view."""
    db.admin.execute(f"CREATE TABLE public.invoice_line (id int PRIMARY KEY); "
                     f"GRANT SELECT ON public.invoice_line TO {APP_ROLE}")
    db.admin.execute("SELECT selfheal.add_alias('invoice_line', 'legacy_id', 'id')")
    db.admin.execute(f"GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {APP_ROLE}; SELECT selfheal.enable_compat('{APP_ROLE}')")
    result = heal_error(db.connect(), 'relation "invoiceline" does not exist', "SELECT * FROM invoiceline",
                        sqlstate="42P01")
    assert result["status"] == "healed", result
    state = snapshot(db, ["public.invoice_line"])
    assert {v[0] for v in state["compat_views"]} >= {"invoice_line", "invoiceline"}, state
    assert all(a[-1] for a in state["aliases"]) and len(state["aliases"]) == 2, state
    return db


# The workers behind the event trigger shims, called the way the shims call
# them, with the arguments an attacker likes best. The signature is read from the catalog, so
# the attack follows the workers if their arguments change.
WORKER_CALLS = {
    "ddl_start": ("_ddl_start", {"text": ["'ALTER TABLE'", "'public'"]}),
    "ddl_end": ("_ddl_end", {"text": ["'ALTER TABLE'"], "oid[]": ["ARRAY[]::oid[]"]}),
    "ddl_dropped_missing_table": ("_ddl_dropped", {"text[]": ["ARRAY['public']", "ARRAY['t']"]}),
    "ddl_dropped_aliased_table": ("_ddl_dropped", {"text[]": ["ARRAY['public']", "ARRAY['invoice_line']"]}),
}


def worker_call(db, name: str, values: dict) -> str:
    types = db.admin.execute(
        "SELECT coalesce(array_agg(format_type(a.t, NULL) ORDER BY a.ord), '{}') FROM pg_proc p, "
        "unnest(p.proargtypes) WITH ORDINALITY AS a(t, ord) "
        "WHERE p.pronamespace = 'selfheal'::regnamespace AND p.proname = %s GROUP BY p.oid", (name,)).fetchone()
    if types is None:
        pytest.skip(f"selfheal.{name} no longer exists")
    pools = {t: list(v) for t, v in values.items()}
    args = [pools[t].pop(0) if pools.get(t) else f"NULL::{t}" for t in types[0]]
    return f"SELECT selfheal.{name}({', '.join(args)})"


@pytest.mark.parametrize("case", sorted(WORKER_CALLS))
def test_a_plain_role_cannot_call_the_event_trigger_workers(compat, case):
    call = worker_call(compat, *WORKER_CALLS[case])
    before = snapshot(compat, ["public.invoice_line"])
    try:
        compat.connect().execute(call)
        error = None
    except psycopg.Error as exc:
        error = exc
    assert snapshot(compat, ["public.invoice_line"]) == before
    assert error is not None and error.sqlstate == "42501", f"{call}: {error!r}"


@pytest.mark.parametrize("shim", ["on_ddl_start", "on_ddl_end", "on_sql_drop"])
def test_a_plain_role_cannot_call_the_event_trigger_shims(compat, shim):
    before = snapshot(compat, ["public.invoice_line"])
    with pytest.raises(psycopg.Error):
        compat.connect().execute(f"SELECT selfheal.{shim}()")
    assert snapshot(compat, ["public.invoice_line"]) == before


@pytest.mark.parametrize("how", ["temp_table", "table_in_own_schema"])
def test_a_table_of_the_legacy_name_elsewhere_does_not_retire_the_alias(compat, roles, how):
    before = snapshot(compat, ["public.invoice_line"])
    if how == "temp_table":
        conn = compat.connect()
        ddl = "CREATE TEMP TABLE invoiceline (x int)"
    else:
        mallory = roles.create("mallory")
        compat.admin.execute(f"CREATE SCHEMA mine AUTHORIZATION {mallory}")
        conn = compat.connect(user=mallory)
        ddl = "CREATE TABLE mine.invoiceline (x int)"
    with contextlib.suppress(psycopg.Error):  # refusing the DDL is a failed attack too
        conn.execute(ddl)
    after = snapshot(compat, ["public.invoice_line"])
    assert all(a[-1] for a in after["aliases"]), after["aliases"]
    assert "invoiceline" in {v[0] for v in after["compat_views"]}
    assert after == before


# ---------------------------------------------------------------------------------------
# 6. Poison log lines


@pytest.mark.parametrize("payload", [
    "repeat('x', 5000)",
    "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i)",  # 6,400 chars that do not compress
])
def test_a_huge_log_message_does_not_stop_healing(log_db, payload):
    admin = log_db.admin
    admin.execute(f"CREATE TABLE public.t (id int PRIMARY KEY); GRANT SELECT ON public.t TO {APP_ROLE}")
    admin.execute("SELECT heal()")  # the bookmark is placed
    app = log_db.connect()
    start = log_size(log_db)
    with pytest.raises(psycopg.Error):
        app.execute(f"DO $$BEGIN RAISE EXCEPTION '%', {payload}; END$$")
    with pytest.raises(pgerr.UndefinedColumn):
        app.execute("SELECT genuine_col FROM t WHERE genuine_col > 0")
    wait_logged(log_db, "genuine_col", since=start)

    def genuine_status():
        return log_db.scalar("SELECT max(status) FROM selfheal.error_event WHERE source = 'log' "
                             "AND message = 'column \"genuine_col\" does not exist'")

    admin.execute("SELECT heal()")  # must not raise
    if genuine_status() != "healed":
        admin.execute("SELECT heal()")  # the long line may take a call of its own
    assert genuine_status() == "healed"
    assert "genuine_col" in [c[0] for c in columns(log_db, "public.t")]
    admin.execute("SELECT heal()")
    admin.execute("SELECT heal()")


def test_malformed_log_lines_are_skipped_and_the_bookmark_moves_on(log_db):
    admin = log_db.admin
    admin.execute(f"CREATE TABLE public.t (id int PRIMARY KEY); GRANT SELECT ON public.t TO {APP_ROLE}")
    admin.execute("SELECT heal()")  # the bookmark is placed
    path = current_log(log_db)
    entry = {"timestamp": "2026-11-24 05:02:18.851 UTC", "user": "app", "dbname": log_db.name,
             "error_severity": "ERROR", "state_code": "42703", "statement": "SELECT z FROM t"}
    numeric_hint = {**entry, "message": 'column "poison_hint" does not exist', "hint": 123}
    nul = {**entry, "message": 'column "poison\u0000nul" does not exist'}
    lines = b"\n" + json.dumps(numeric_hint).encode() + b"\n" + json.dumps(nul).encode() + b"\n"
    assert b"\\u0000" in lines
    with path.open("ab") as fh:  # one write, O_APPEND: never interleaved with the collector's lines
        fh.write(lines)
        end = fh.tell()

    summaries = []
    for _ in range(3):
        summaries.append(log_db.scalar("SELECT heal()"))  # must not raise
    positions = log_db.scalar("SELECT positions FROM selfheal.log_bookmark WHERE log_format = 'jsonlog'")
    assert positions[path.name][1] >= end, (positions, end)

    problems = " ".join(s["log"].get("problem", "") for s in summaries)
    assert "field 'hint' is not text" in problems, summaries  # skipped, and the reason kept
    assert sum(s["log"].get("malformed", 0) for s in summaries) == 1, summaries
    recorded = log_db.admin.execute("SELECT message FROM selfheal.error_event WHERE source = 'log' "
                                    "AND message LIKE 'column \"poison%%'").fetchall()
    assert recorded == [('column "poisonnul" does not exist',)]  # the NUL PostgreSQL cannot store is dropped


# ---------------------------------------------------------------------------------------
# 7. Readers never wait behind a repair


def test_readers_never_queue_behind_a_repair(db, healer):
    """Asserted on lock state, not on time: with a lock_timeout of a minute, a repair that joined
    the lock queue would sit there, waiting, with every later reader queued behind it."""
    db.admin.execute(f"""CREATE TABLE public.t (id int PRIMARY KEY);
                         INSERT INTO public.t SELECT generate_series(1, 100);
                         GRANT SELECT ON public.t TO {APP_ROLE}""")
    db.admin.execute("UPDATE selfheal.policy SET value = '60s' WHERE name = 'lock_timeout'")
    before = snapshot(db, ["public.t"])
    holder = db.connect(user="postgres")
    holder.autocommit = False
    holder.execute("SELECT 1 FROM t")  # idle in transaction, holding ACCESS SHARE
    healer_pid = healer.execute("SELECT pg_backend_pid()").fetchone()[0]
    outcome: dict = {}

    def heal():
        try:
            outcome["result"] = heal_error(healer, 'column "late_col" does not exist',
                                           "SELECT late_col FROM t WHERE late_col > 0")
        except psycopg.Error as exc:
            outcome["error"] = exc

    waits = []
    try:
        healing = threading.Thread(target=heal)
        healing.start()
        while healing.is_alive():
            waits += db.admin.execute("SELECT mode FROM pg_locks WHERE pid = %s AND NOT granted "
                                      "AND locktype = 'relation'", (healer_pid,)).fetchall()
            healing.join(0.005)
        reader = db.connect(options="-c statement_timeout=30s")
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 100
    finally:
        holder.rollback()

    assert "error" not in outcome, outcome
    assert outcome["result"]["status"] == "deferred", outcome
    assert waits == [], f"the repair queued for {waits}"
    assert snapshot(db, ["public.t"]) == before


# ---------------------------------------------------------------------------------------
# 8. Never rewrite a large table


@pytest.fixture
def in_table(db):
    db.admin.execute("UPDATE selfheal.policy SET value = 'table' WHERE name = 'derived_columns'")
    db.admin.execute("UPDATE selfheal.policy SET value = '1000' WHERE name = 'generated_column_row_limit'")
    return db


def test_a_large_never_analyzed_table_is_never_rewritten(in_table):
    admin = in_table.admin
    admin.execute("CREATE TABLE public.big (id int PRIMARY KEY, kind text) WITH (autovacuum_enabled = false)")
    admin.execute("INSERT INTO public.big SELECT g, (g % 7)::text FROM generate_series(1, 50000) g")
    assert in_table.scalar("SELECT reltuples FROM pg_class WHERE oid = 'public.big'::regclass") == -1

    result = heal_error(admin, 'column "kind_id" does not exist', "SELECT kind_id FROM big")

    audit = admin.execute("SELECT evidence->>'strategy', ddl, lock_profile FROM selfheal.audit "
                          "WHERE event_id = %s", (result["event_id"],)).fetchall()
    assert all(strategy != "stored generated column" for strategy, _, _ in audit), audit
    assert all("GENERATED ALWAYS" not in (ddl or "") for _, ddl, _ in audit), audit
    assert all("rewrites" not in (profile or "") for _, _, profile in audit), audit
    assert in_table.scalar("SELECT coalesce(max(attgenerated), '') FROM pg_attribute "
                           "WHERE attrelid = 'public.big'::regclass AND attname = 'kind_id'") != "s"


def test_a_small_table_may_still_get_a_stored_generated_column(in_table):
    admin = in_table.admin
    admin.execute("CREATE TABLE public.small (id int PRIMARY KEY, kind text) WITH (autovacuum_enabled = false)")
    admin.execute("INSERT INTO public.small SELECT g, g::text FROM generate_series(1, 5) g")
    result = heal_error(admin, 'column "kind_id" does not exist', "SELECT kind_id FROM small")
    assert result["status"] == "healed", result
    assert admin.execute("SELECT kind_id FROM public.small ORDER BY id").fetchall() in (
        [(1,), (2,), (3,), (4,), (5,)],  # a STORED generated column, filled at once
        [(None,)] * 5)  # or a synced column, filled by backfill()


# ---------------------------------------------------------------------------------------
# 9. EXECUTE is granted to PUBLIC on nothing (event trigger functions may be, being uncallable)


def test_public_may_execute_no_extension_routine_but_the_allowed_few(db):
    routines = db.admin.execute("""
        SELECT p.oid::regprocedure::text, has_function_privilege('public', p.oid, 'EXECUTE'),
               p.prorettype = 'event_trigger'::regtype
          FROM pg_proc p
          JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
          JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
         WHERE e.extname = 'selfheal'
         ORDER BY 1""").fetchall()
    names = [r[0] for r in routines]
    assert len(names) >= 10, names  # the query sees the extension's routines, procedures included
    assert any(n.startswith("selfheal.watch(") for n in names) and any(n.startswith("selfheal.backfill(")
                                                                         for n in names), names
    open_to_public = sorted(name for name, public, event_trigger in routines if public and not event_trigger)
    assert open_to_public == [], f"EXECUTE open to PUBLIC: {open_to_public}"


# ---------------------------------------------------------------------------------------
# 10. Attacks found by review, each kept here once fixed


def _mallory_with_create(db, roles) -> str:
    mallory = roles.create("mallory")
    db.admin.execute(f"GRANT CREATE ON SCHEMA public TO {mallory}")
    return mallory


def test_an_rls_policy_cannot_queue_code_for_undos_commit(db, roles):
    """undo's data check must run nothing of the owner's: here a forced row-level security
    policy would queue a deferred trigger that fires at COMMIT as the administrator."""
    mallory = _mallory_with_create(db, roles)
    owner = db.connect(user=mallory)
    owner.execute("CREATE TABLE public.t (id int PRIMARY KEY, name text); INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    applied = heal_error(db.admin, 'column "extra" does not exist', "SELECT extra FROM t WHERE extra <> ''")
    assert applied["status"] == "healed", applied
    owner.execute(f"""
        CREATE TABLE public.q (i int);
        CREATE FUNCTION public.escalate() RETURNS trigger LANGUAGE plpgsql AS
          $$BEGIN BEGIN ALTER ROLE {mallory} SUPERUSER; EXCEPTION WHEN others THEN NULL; END; RETURN NULL; END$$;
        CREATE CONSTRAINT TRIGGER esc AFTER INSERT ON q DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION public.escalate();
        CREATE FUNCTION public.evil() RETURNS boolean LANGUAGE plpgsql VOLATILE AS
          $$BEGIN INSERT INTO public.q VALUES (1); RETURN current_user = session_user; END$$;
        ALTER TABLE t ENABLE ROW LEVEL SECURITY; ALTER TABLE t FORCE ROW LEVEL SECURITY;
        CREATE POLICY p ON t USING (public.evil());
        UPDATE t SET extra = 'x' WHERE id = 1""")
    queued = db.scalar("SELECT count(*) FROM q")  # the owner's own UPDATE ran the policy already
    with contextlib.suppress(psycopg.Error):
        db.admin.execute("SELECT selfheal.undo(%s)", (applied["audit_id"],))
    assert not is_privileged(db, mallory)
    assert db.scalar("SELECT count(*) FROM q") == queued  # it never ran for the administrator


def test_backfill_leaves_nothing_of_the_owners_in_the_administrators_session(db, roles):
    """A trigger run as the owner during backfill plants a temporary view in the administrator's
    session, named like the administrator's own table: it must not survive the batch."""
    mallory = _mallory_with_create(db, roles)
    db.admin.execute("UPDATE selfheal.policy SET value = 'table' WHERE name = 'derived_columns'; "
                     "UPDATE selfheal.policy SET value = '0' WHERE name = 'generated_column_row_limit'; "
                     "CREATE TABLE public.accounts (id int PRIMARY KEY, balance numeric)")
    owner = db.connect(user=mallory)
    owner.execute(f"""
        CREATE TABLE public.t (id int PRIMARY KEY, kind text); INSERT INTO t VALUES (1, '1'), (2, '2');
        CREATE FUNCTION public.pwn() RETURNS int LANGUAGE plpgsql AS
          $$BEGIN BEGIN ALTER ROLE {mallory} SUPERUSER; EXCEPTION WHEN others THEN NULL; END; RETURN 1; END$$;
        CREATE FUNCTION public.plant() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
          IF to_regclass('pg_temp.accounts') IS NULL THEN
            EXECUTE 'CREATE TEMP VIEW accounts AS SELECT 1 AS id, 0::numeric AS balance WHERE public.pwn() = 1';
          END IF;
          PERFORM set_config('search_path', 'pg_temp, public', false);
          RETURN NEW; END$$;
        CREATE TRIGGER plant BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION public.plant()""")
    assert heal_error(db.admin, 'column "kind_id" does not exist', "SELECT kind_id FROM t")["status"] == "healed"
    admin = db.connect(user="postgres")
    admin.execute("PREPARE mine AS SELECT 'the administrator''s own statement'")
    with pytest.raises(psycopg.Error, match="left objects or settings in this session"):
        admin.execute("CALL selfheal.backfill()")
    assert admin.closed or admin.broken  # ended: nothing the owner left in it can run as the administrator
    assert db.scalar("SELECT to_regclass('pg_temp.accounts')") is None
    db.admin.execute("SELECT * FROM accounts").fetchall()
    assert not is_privileged(db, mallory)
    assert db.scalar("SELECT count(*) FROM selfheal.backfill_job WHERE rows_done > 0") == 0  # the batch rolled back


def test_verifying_a_repair_runs_nothing_of_the_reporting_roles(log_db, log_roles):
    """The failing statement is parsed again as its role, never planned: planning would run the
    role's IMMUTABLE function, whose deferred trigger then fires as whoever called heal()."""
    mallory = log_roles.create("mallory")
    admin = log_db.admin
    admin.execute(f"CREATE TABLE public.orders (id int PRIMARY KEY); GRANT SELECT ON public.orders TO {mallory}; "
                  f"CREATE SCHEMA mal AUTHORIZATION {mallory}")
    admin.execute("SELECT heal()")  # the bookmark is placed
    attacker = log_db.connect(user=mallory)
    attacker.execute(f"""
        CREATE TABLE mal.q (i int);
        CREATE FUNCTION mal.escalate() RETURNS trigger LANGUAGE plpgsql AS
          $$BEGIN BEGIN ALTER ROLE {mallory} SUPERUSER; EXCEPTION WHEN others THEN NULL; END; RETURN NULL; END$$;
        CREATE CONSTRAINT TRIGGER esc AFTER INSERT ON mal.q DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION mal.escalate();
        CREATE FUNCTION mal.g() RETURNS int LANGUAGE plpgsql VOLATILE AS $$BEGIN INSERT INTO mal.q VALUES (1); RETURN 1; END$$;
        CREATE FUNCTION mal.f() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$BEGIN RETURN mal.g(); END$$;
        GRANT USAGE ON SCHEMA mal TO PUBLIC""")
    since = log_size(log_db)
    with pytest.raises(pgerr.UndefinedColumn):
        attacker.execute("SELECT ghost FROM public.orders WHERE id = mal.f()")
    wait_logged(log_db, "ghost", since=since)
    admin.execute("SELECT heal()")
    assert not is_privileged(log_db, mallory)
    assert log_db.scalar("SELECT count(*) FROM mal.q") == 0


def test_a_huge_number_in_a_statement_cannot_stop_healing(log_db, log_roles):
    """Python refuses int() of 4,300 digits: one such statement must not stop heal() for good."""
    attacker = log_roles.create("anyone")
    log_db.admin.execute(f"CREATE TABLE public.t (id int PRIMARY KEY); GRANT SELECT ON public.t TO {APP_ROLE}")
    log_db.admin.execute("SELECT heal()")
    since = log_size(log_db)
    with pytest.raises(psycopg.Error):
        log_db.connect(user=attacker).execute("SELECT * FROM public.t WHERE ghost = " + "1" * 5000)
    with pytest.raises(pgerr.UndefinedColumn):
        log_db.connect().execute("SELECT genuine_col FROM t WHERE genuine_col > 0")
    wait_logged(log_db, "genuine_col", since=since)
    log_db.admin.execute("SELECT heal()")  # must not raise
    assert "genuine_col" in [c[0] for c in columns(log_db, "public.t")]


def test_a_rename_outside_the_scope_cannot_take_over_a_name_routed_roles_use(db, roles):
    """Renaming one's own table or column makes the event triggers serve the old name; from a
    schema outside the scope, or over a name that is another table's, it must not."""
    mallory = roles.create("mallory")
    db.admin.execute(f"""CREATE TABLE public.invoices (id int PRIMARY KEY, customer text);
                         CREATE TABLE public.orders (id int PRIMARY KEY, unit_price numeric);
                         INSERT INTO public.orders VALUES (1, 5);
                         GRANT SELECT, INSERT ON public.invoices, public.orders TO {APP_ROLE};
                         GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {APP_ROLE};
                         SELECT selfheal.enable_compat('{APP_ROLE}');
                         CREATE SCHEMA mal AUTHORIZATION {mallory}""")
    victim = db.connect()
    assert heal_error(victim, 'column "unitprice" does not exist', "SELECT unitprice FROM orders")["status"] == "healed"
    before = snapshot(db, ["public.invoices", "public.orders"])
    db.connect(user=mallory).execute("""
        CREATE TABLE mal.invoices (id int, customer text); GRANT USAGE ON SCHEMA mal TO PUBLIC;
        GRANT ALL ON mal.invoices TO PUBLIC;
        ALTER TABLE mal.invoices RENAME TO invoices_x;
        CREATE TABLE mal.orders (id int, unit_price numeric, x int); INSERT INTO mal.orders VALUES (666, 0.01, 0);
        GRANT ALL ON mal.orders TO PUBLIC;
        ALTER TABLE mal.orders RENAME COLUMN x TO y""")
    assert snapshot(db, ["public.invoices", "public.orders"]) == before
    routed = db.connect()
    assert routed.execute("SELECT id FROM orders").fetchall() == [(1,)]
    routed.execute("INSERT INTO invoices VALUES (2, 'secret')")
    assert db.scalar("SELECT count(*) FROM public.invoices") == 1


def test_a_compat_view_never_hides_another_schemas_relation(db, healer):
    """A compat view answers for its own schema's names only: the routed role's search_path has
    tenant first, so tenant.orders and tenant.orderarchive stay what it reads."""
    db.admin.execute(f"""CREATE SCHEMA tenant; CREATE TABLE tenant.orders (id int); INSERT INTO tenant.orders VALUES (7);
                         CREATE TABLE public.orders (id int PRIMARY KEY, unitprice numeric);
                         CREATE TABLE public.order_archive (id int PRIMARY KEY);
                         CREATE VIEW tenant.orderarchive AS SELECT 1 AS id;
                         GRANT SELECT ON public.orders, public.order_archive, tenant.orders TO {APP_ROLE};
                         GRANT SELECT ON tenant.orderarchive TO {APP_ROLE};
                         GRANT USAGE ON SCHEMA tenant TO {APP_ROLE};
                         ALTER ROLE {APP_ROLE} SET search_path = tenant, public;
                         SELECT selfheal.enable_compat('{APP_ROLE}')""")
    db.admin.execute("SELECT selfheal.add_alias('public.orders', 'unit_price', 'unitprice')")
    # Served in public's compat schema, which the routed role searches after tenant.
    heal_error(healer, 'relation "orderarchive" does not exist', "SELECT * FROM orderarchive", sqlstate="42P01")
    routed = db.connect()
    assert routed.execute("SELECT * FROM orders").fetchall() == [(7,)]  # still tenant.orders
    assert routed.execute("SELECT id FROM orderarchive").fetchall() == [(1,)]
    assert {v[2] for v in snapshot(db)["compat_views"]} == {"selfheal_compat_public"}


def test_a_setting_cannot_switch_off_the_event_triggers(db, roles, compat):
    """With selfheal's own guard in a setting, a role could set it mid-DDL and leave every compat
    view dropped; the guard lives where SQL cannot reach it."""
    anyone = roles.create("anyone")
    before = snapshot(db, ["public.invoice_line"])
    db.connect(user=anyone).execute("""
        CREATE FUNCTION pg_temp.g() RETURNS int LANGUAGE sql VOLATILE AS
          $$ SELECT length(set_config('selfheal.in_event_trigger', 'on', true)) $$;
        CREATE TEMP TABLE tt (x int); INSERT INTO tt VALUES (1);
        DO $$ BEGIN /* invoice_line */ EXECUTE 'ALTER TABLE tt ADD COLUMN z int DEFAULT pg_temp.g()'; END $$""")
    assert snapshot(db, ["public.invoice_line"]) == before


def test_a_stale_analyze_cannot_make_a_large_table_look_small(in_table):
    admin = in_table.admin
    admin.execute("""CREATE TABLE public.big (id bigint PRIMARY KEY, status text) WITH (autovacuum_enabled = false);
                     INSERT INTO big SELECT g, (g % 5)::text FROM generate_series(1, 20000) g;
                     DELETE FROM big WHERE id > 1; ANALYZE big;
                     INSERT INTO big SELECT g, (g % 5)::text FROM generate_series(20001, 60000) g""")
    result = heal_error(admin, 'column "status_id" does not exist', "SELECT status_id FROM big")
    assert result["status"] == "healed", result
    assert "GENERATED ALWAYS" not in result["ddl"]


def test_a_sync_function_a_repair_makes_is_not_executable_by_public(in_table):
    in_table.admin.execute("UPDATE selfheal.policy SET value = '0' WHERE name = 'generated_column_row_limit'; "
                           "CREATE TABLE public.t (id int PRIMARY KEY, kind text); INSERT INTO t VALUES (1, '1')")
    assert heal_error(in_table.admin, 'column "kind_id" does not exist', "SELECT kind_id FROM t")["status"] == "healed"
    functions = in_table.admin.execute(
        "SELECT p.oid::regprocedure::text, has_function_privilege('public', p.oid, 'EXECUTE') FROM pg_proc p "
        "WHERE p.pronamespace = 'selfheal_compat'::regnamespace").fetchall()
    assert functions and not any(public for _, public in functions), functions


def _escalation_kit(conn, role: str, schema: str) -> None:
    """A deferred trigger that makes `role` superuser if it ever runs as a superuser, and a
    function that queues it: what an attacker plants before getting code into someone's session."""
    conn.execute(f"""
        CREATE TABLE {schema}.trap (x int);
        CREATE FUNCTION {schema}.payload() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
          IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            EXECUTE 'ALTER ROLE {role} SUPERUSER'; END IF; RETURN NULL; END$$;
        CREATE CONSTRAINT TRIGGER tr AFTER INSERT ON {schema}.trap DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION {schema}.payload();
        CREATE FUNCTION {schema}.chk(int) RETURNS bool LANGUAGE plpgsql AS
          $$BEGIN INSERT INTO {schema}.trap VALUES (1); RETURN true; END$$;
        CREATE DOMAIN {schema}.d AS int CHECK ({schema}.chk(VALUE))""")


def test_verifying_a_repair_never_parses_the_statement_in_the_server(db, roles):
    """A literal cast to an array of a domain runs the domain's CHECK when parsed: the check
    could queue a deferred trigger in the administrator's transaction."""
    mallory = roles.create("mallory")
    db.admin.execute(f"""CREATE TABLE public.t (id int PRIMARY KEY); GRANT SELECT ON public.t TO {mallory};
                         CREATE SCHEMA evil AUTHORIZATION {mallory};
                         GRANT EXECUTE ON FUNCTION selfheal.record_error(text, text, text, text) TO {mallory}""")
    attacker = db.connect(user=mallory)
    _escalation_kit(attacker, mallory, "evil")
    attacker.execute("SELECT selfheal.record_error('42703', 'column \"recommendation_data\" does not exist', "
                     "'SELECT recommendation_data FROM t WHERE ''{1}''::evil.d[] IS NOT NULL')")
    db.admin.execute("SELECT heal()")
    assert not is_privileged(db, mallory)
    assert db.scalar("SELECT count(*) FROM evil.trap") == 0


def test_a_statement_the_scanner_might_misread_runs_nowhere(db, roles):
    """PostgreSQL reads 😀$a$ as one identifier; a scanner that took $a$ for a dollar quote would
    see one statement where there are two, and an EXECUTE of the text would run the second."""
    mallory = roles.create("mallory")
    db.admin.execute(f"""CREATE TABLE public.t (id int PRIMARY KEY); GRANT SELECT ON public.t TO {mallory};
                         CREATE SCHEMA evil AUTHORIZATION {mallory};
                         GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {mallory}""")
    attacker = db.connect(user=mallory)
    _escalation_kit(attacker, mallory, "evil")
    heal_error(attacker, 'column "zebra_flag" does not exist',
               "SELECT zebra_flag FROM t AS \U0001F600$a$; INSERT INTO evil.trap VALUES (1)")
    assert db.scalar("SELECT count(*) FROM evil.trap") == 0
    assert not is_privileged(db, mallory)


def test_undo_never_plans_a_query_the_owners_index_expression_would_run_in(db, roles):
    """The planner folds index expressions: an immutable function with constant arguments runs
    as whoever plans a query on the table."""
    mallory = _mallory_with_create(db, roles)
    owner = db.connect(user=mallory)
    owner.execute("CREATE TABLE public.t3 (id int PRIMARY KEY); INSERT INTO t3 VALUES (1)")
    applied = heal_error(db.admin, 'column "extra" does not exist', "SELECT extra FROM t3")
    owner.execute(f"""
        CREATE FUNCTION public.own_vol() RETURNS int VOLATILE LANGUAGE plpgsql AS $$BEGIN
          IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            EXECUTE 'ALTER ROLE {mallory} SUPERUSER'; END IF; RETURN 0; END$$;
        CREATE FUNCTION public.own_imm(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$BEGIN RETURN $1 + public.own_vol(); END$$;
        CREATE INDEX ON t3 ((id + public.own_imm(1)))""")
    with contextlib.suppress(psycopg.Error):
        db.admin.execute("SELECT selfheal.undo(%s)", (applied["audit_id"],))
    with contextlib.suppress(psycopg.Error):
        db.admin.execute("SELECT selfheal.add_alias('t3', 'legacy_id', 'id')")
    assert not is_privileged(db, mallory)


def test_nobody_leaves_proposals_about_tables_they_may_not_use(db, healer):
    db.admin.execute("CREATE SCHEMA hidden; CREATE TABLE hidden.secret (id int PRIMARY KEY, ssn text)")
    result = heal_error(healer, 'column "ssnn" does not exist', "SELECT ssnn FROM hidden.secret")
    assert result["status"] == "refused", result
    assert db.scalar("SELECT count(*) FROM selfheal.audit WHERE status = 'pending_approval'") == 0


def test_a_relation_made_later_in_another_schema_retires_nothing_and_one_in_the_same_schema_does(compat, roles):
    """The compat view invoiceline answers for public's names only: a tenant.invoiceline is found
    first by the routed role whose search_path has tenant first, so nothing needs retiring; a
    public.invoiceline would be hidden by the view, so the legacy name retires."""
    db = compat
    tenant = roles.create("tenant")
    db.admin.execute(f"CREATE SCHEMA tenant AUTHORIZATION {tenant}; GRANT USAGE ON SCHEMA tenant TO {APP_ROLE}; "
                     f"ALTER ROLE {APP_ROLE} IN DATABASE {db.name} SET search_path = tenant, public; "
                     f"SELECT selfheal.enable_compat('{APP_ROLE}')")
    db.connect(user=tenant).execute(f"CREATE TABLE tenant.invoiceline (id int); INSERT INTO tenant.invoiceline "
                                    f"VALUES (42); GRANT SELECT ON tenant.invoiceline TO {APP_ROLE}")
    served = db.admin.execute("SELECT legacy_name, active FROM selfheal.alias ORDER BY id").fetchall()
    assert ("invoiceline", True) in served and ("legacy_id", True) in served
    assert db.connect().execute("SELECT id FROM invoiceline").fetchall() == [(42,)]
    db.admin.execute("CREATE SEQUENCE public.invoiceline")
    served = db.admin.execute("SELECT legacy_name, active FROM selfheal.alias ORDER BY id").fetchall()
    assert ("invoiceline", False) in served and ("legacy_id", True) in served
    assert [v[0] for v in snapshot(db)["compat_views"]] == ["invoice_line"]


def test_a_few_rows_with_a_lot_of_toast_are_never_rewritten(in_table):
    """Ten rows of a few hundred kilobytes each: small by rows, large by what a rewrite copies."""
    admin = in_table.admin
    admin.execute("""CREATE TABLE public.docs (id int PRIMARY KEY, kind text, body text);
                     INSERT INTO docs SELECT g, (g % 3)::text,
                            (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 10000) i)
                       FROM generate_series(1, 10) g;
                     ANALYZE docs""")
    assert admin.execute("SELECT pg_total_relation_size('docs') > 1000 * 256").fetchone()[0]
    result = heal_error(admin, 'column "kind_id" does not exist', "SELECT kind_id FROM docs")
    assert result["status"] == "healed", result
    assert "GENERATED ALWAYS" not in result["ddl"]


# ---------------------------------------------------------------------------------------
# Derived values are read as the owner; reported statements only ever say a known type


def test_reading_a_derived_names_values_runs_the_owners_code_only_as_the_owner(db, roles, healer):
    """Before serving kind_id, selfheal reads kind's values: a forced RLS policy and an index
    expression of the owner's run then, and must never run as the administrator who heals."""
    mallory = _mallory_with_create(db, roles)
    owner = db.connect(user=mallory)
    owner.execute(f"""
        CREATE TABLE public.t4 (id int PRIMARY KEY, kind text);
        INSERT INTO t4 VALUES (1, '1'), (2, '2');
        CREATE FUNCTION public.own_vol() RETURNS boolean VOLATILE LANGUAGE plpgsql AS $$BEGIN
          IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            EXECUTE 'ALTER ROLE {mallory} SUPERUSER'; END IF; RETURN true; END$$;
        CREATE FUNCTION public.own_imm(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS
          $$BEGIN PERFORM public.own_vol(); RETURN $1; END$$;
        CREATE INDEX ON t4 ((id + public.own_imm(1)));
        ALTER TABLE t4 ENABLE ROW LEVEL SECURITY; ALTER TABLE t4 FORCE ROW LEVEL SECURITY;
        CREATE POLICY p ON t4 USING (public.own_vol());
        GRANT SELECT ON t4 TO {APP_ROLE}""")
    db.admin.execute(f"SELECT selfheal.enable_compat('{APP_ROLE}')")
    result = heal_error(healer, 'column "kind_id" does not exist', "SELECT kind_id FROM t4")
    assert result["status"] == "healed", result  # the owner's policy let it read both rows
    assert not is_privileged(db, mallory)


def test_another_roles_statements_never_decide_the_type_of_a_column(db, healer, roles):
    """Other statements that missed a column are type evidence only for the role that sent them."""
    mallory = roles.create("mallory")
    db.admin.execute("CREATE TABLE public.sessions_sec (id int PRIMARY KEY)")
    db.admin.execute(f"GRANT SELECT, UPDATE ON public.sessions_sec TO {APP_ROLE}, {mallory}; "
                     f"GRANT EXECUTE ON FUNCTION selfheal.record_error(text, text, text, text) TO {mallory}")
    db.connect(user=mallory).execute(
        "SELECT selfheal.record_error('42703', 'column \"note\" of relation \"sessions_sec\" does not exist', "
        "'UPDATE sessions_sec SET note = %s::jsonb')")
    # The app's own statement says text; mallory's jsonb, were it read, would make it a review.
    result = heal_error(healer, 'column "note" does not exist', "SELECT note FROM sessions_sec WHERE note <> ''")
    assert result["status"] == "healed", result
    assert db.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                     "WHERE attrelid = 'sessions_sec'::regclass AND attname = 'note'") == "text"


@pytest.mark.parametrize("comment", [
    "/* selfheal:declared evil=jsonb'); DROP TABLE sessions_sec; -- */",
    "/* selfheal:declared evil=money */",
    "/* selfheal:declared evil=text); DROP TABLE sessions_sec; */",
])
def test_a_forged_type_declaration_reaches_ddl_only_as_a_known_type(db, healer, comment):
    db.admin.execute(f"CREATE TABLE public.sessions_sec (id int PRIMARY KEY); "
                     f"GRANT SELECT ON public.sessions_sec TO {APP_ROLE}")
    result = heal_error(healer, 'column "evil" does not exist', f"SELECT evil FROM sessions_sec {comment}")
    # No declaration read: the type is unknown, so text is only proposed, and approved here.
    assert result["status"] == "pending_approval", result
    assert db.scalar("SELECT ddl FROM selfheal.audit WHERE id = %s", (result["audit_id"],)).startswith(
        'ALTER TABLE "public"."sessions_sec" ADD COLUMN IF NOT EXISTS "evil" text;')
    db.admin.execute("SELECT selfheal.approve(%s)", (result["audit_id"],))
    assert db.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                     "WHERE attrelid = 'sessions_sec'::regclass AND attname = 'evil'") == "text"


def test_a_statements_other_legacy_names_are_healed_only_where_the_role_may_act(db, roles):
    """One healed error makes selfheal read the rest of the statement: names an attacker adds for
    tables it may not use, or in a schema outside the scope, are refused like reported errors."""
    mallory = roles.create("mallory")
    db.admin.execute(f"""CREATE TABLE album (album_id int PRIMARY KEY, title text); INSERT INTO album VALUES (1, 'a');
                         CREATE TABLE payroll (pay_id int PRIMARY KEY, amount int);
                         CREATE SCHEMA hidden; CREATE TABLE hidden.secret_line (secret_line_id int PRIMARY KEY);
                         GRANT SELECT ON album TO {mallory}; GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {mallory};
                         SELECT selfheal.enable_compat('{mallory}')""")
    before = snapshot(db, ["public.payroll", "hidden.secret_line"])
    rows = db.connect(user=mallory).execute(
        "SELECT status, action, ddl FROM selfheal.heal_error('42703', 'column album.albumid does not exist', "
        "'SELECT Album.AlbumId, payroll.PayId FROM Album, payroll JOIN secretline ON true')").fetchall()
    assert rows[0][0] == "healed" and [r[:2] for r in rows[1:]] == [("refused", "refuse")] * 2, rows
    assert all(ddl is None for _, _, ddl in rows[1:])
    after = snapshot(db, ["public.payroll", "hidden.secret_line"])
    assert after["columns"] == before["columns"] and after["roles"] == before["roles"]
    assert {v[0] for v in after["compat_views"]} == {"album"}


def test_a_forged_write_or_copy_error_never_makes_a_table_writable_through_its_views(db, roles):
    """Write triggers are only ever proposed, and only for a role that may write the table; once
    approved they still write as the caller, so a role that may only read still cannot write."""
    mallory = roles.create("mallory")
    db.admin.execute(f"""CREATE TABLE sessions (id serial PRIMARY KEY, service_type text NOT NULL);
                         INSERT INTO sessions (service_type) VALUES ('1');
                         GRANT SELECT ON sessions TO {mallory}, {APP_ROLE};
                         GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {mallory}, {APP_ROLE};
                         SELECT selfheal.enable_compat('{mallory}'); SELECT selfheal.enable_compat('{APP_ROLE}')""")
    assert heal_error(db.connect(), 'column "service_type_id" does not exist',
                      "SELECT service_type_id FROM sessions")["status"] == "healed"
    before = snapshot(db, ["public.sessions"], [mallory])
    app = db.connect(user=mallory)
    forged = [heal_error(app, 'cannot insert into column "service_type_id" of view "sessions"',
                         "INSERT INTO sessions (service_type_id) VALUES (2)", "0A000"),
              heal_error(app, 'cannot copy to view "sessions"', "COPY sessions FROM STDIN", "42809")]
    assert_refused(db, forged[0])
    assert (forged[1]["status"], forged[1]["ddl"]) == ("refused", None), forged[1]
    assert "lacks INSERT" in forged[1]["reason"]
    # The same refusal is counted on the first one's audit row.
    assert db.admin.execute("SELECT status, repeats FROM selfheal.audit WHERE status = 'refused'").fetchall() == [
        ("refused", 2)]
    assert snapshot(db, ["public.sessions"], [mallory]) == before
    assert db.scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'selfheal_write'") == 0


def test_a_cte_over_a_table_the_role_may_not_read_heals_nothing(db, roles):
    mallory = roles.create("mallory")
    db.admin.execute(f"""CREATE TABLE payroll (pay_id int PRIMARY KEY, amount int); INSERT INTO payroll VALUES (1, 9);
                         GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {mallory};
                         SELECT selfheal.enable_compat('{mallory}')""")
    before = snapshot(db, ["public.payroll"], [mallory])
    result = heal_error(db.connect(user=mallory), "column t.payid does not exist",
                        "WITH t AS (SELECT * FROM payroll) SELECT t.PayId FROM t")
    assert_refused(db, result)
    assert snapshot(db, ["public.payroll"], [mallory]) == before


def test_making_a_large_tables_views_writable_never_rewrites_the_table(db):
    db.admin.execute(f"""CREATE TABLE sessions (id serial PRIMARY KEY, service_type text NOT NULL);
                         INSERT INTO sessions (service_type) SELECT (g % 7)::text FROM generate_series(1, 200000) g;
                         ANALYZE sessions;
                         GRANT SELECT, INSERT, UPDATE ON sessions TO {APP_ROLE};
                         GRANT USAGE ON SEQUENCE sessions_id_seq TO {APP_ROLE};
                         GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {APP_ROLE};
                         SELECT selfheal.enable_compat('{APP_ROLE}')""")
    app = db.connect()
    assert heal_error(app, 'column "service_type_id" does not exist',
                      "SELECT service_type_id FROM sessions")["status"] == "healed"
    file_before = db.scalar("SELECT pg_relation_filenode('sessions')")
    proposal = heal_error(app, 'cannot insert into column "service_type_id" of view "sessions"',
                          "INSERT INTO sessions (service_type_id) VALUES (4)", "0A000")
    assert proposal["status"] == "pending_approval", proposal
    db.admin.execute("SELECT selfheal.approve(%s)", (proposal["audit_id"],))
    assert db.scalar("SELECT pg_relation_filenode('sessions')") == file_before
    db.connect().execute("INSERT INTO sessions (service_type_id) VALUES (4)")
    assert db.scalar("SELECT count(*) FROM sessions") == 200001


def test_a_role_that_may_not_read_a_table_cannot_restyle_its_views(db, roles):
    """A forged statement that quotes the table's names in PascalCase would show the whole table
    renamed to routed roles: only a role that may read it can cause that."""
    mallory = roles.create("mallory")
    db.admin.execute(f"""CREATE TABLE track (track_id int PRIMARY KEY, unit_price numeric, name text);
                         INSERT INTO track VALUES (1, 0.99, 'a');
                         GRANT SELECT ON track TO {APP_ROLE};
                         GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {mallory};
                         SELECT selfheal.enable_compat('{mallory}'); SELECT selfheal.enable_compat('{APP_ROLE}')""")
    before = snapshot(db, ["public.track"], [mallory])
    result = heal_error(db.connect(user=mallory), 'column "UnitPrice" does not exist',
                        'SELECT "TrackId", "UnitPrice", "Name" FROM track')
    assert_refused(db, result)
    assert snapshot(db, ["public.track"], [mallory]) == before
    assert db.connect().execute("SELECT track_id, name FROM track").fetchall() == [(1, "a")]


def test_showing_a_large_table_in_its_legacy_naming_never_rewrites_it(db):
    db.admin.execute(f"""CREATE TABLE track (track_id int PRIMARY KEY, unit_price numeric NOT NULL, name text);
                         INSERT INTO track SELECT g, 0.99, 'n' || g FROM generate_series(1, 200000) g;
                         ANALYZE track;
                         GRANT SELECT ON track TO {APP_ROLE}; GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {APP_ROLE};
                         SELECT selfheal.enable_compat('{APP_ROLE}')""")
    file_before = db.scalar("SELECT pg_relation_filenode('track')")
    statement = 'SELECT "TrackId", "Name" FROM track WHERE "UnitPrice" > 0 ORDER BY "TrackId" LIMIT 1'
    result = heal_error(db.connect(), 'column "TrackId" does not exist', statement)
    assert result["status"] == "healed", result
    assert db.scalar("SELECT pg_relation_filenode('track')") == file_before
    app = db.connect()
    assert app.execute(statement).fetchall() == [(1, "n1")]
    assert [c.name for c in app.execute("SELECT * FROM track LIMIT 0").description] == ["TrackId", "UnitPrice", "Name"]


# ---------------------------------------------------------------------------------------
# Adoption and removal: DROP EXTENSION and selfheal setup


def test_a_role_that_may_not_drop_selfheal_cannot_set_off_its_teardown(db, roles):
    """The DROP EXTENSION event trigger fires before PostgreSQL checks the right to drop."""
    mallory = roles.create("mallory")
    db.admin.execute(f"""CREATE TABLE sessions (id int PRIMARY KEY, service_type text);
                         GRANT SELECT ON sessions TO {APP_ROLE};
                         GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {APP_ROLE};
                         SELECT selfheal.enable_compat('{APP_ROLE}')""")
    assert heal_error(db.connect(), 'column "service_type_id" does not exist',
                      "SELECT service_type_id FROM sessions")["status"] == "healed"
    before = snapshot(db, ["public.sessions"], [mallory])
    notices = []
    intruder = db.connect(user=mallory)
    intruder.add_notice_handler(lambda n: notices.append(n.message_primary))
    with pytest.raises(pgerr.InsufficientPrivilege):
        intruder.execute("DROP EXTENSION selfheal CASCADE")
    assert notices == [] and snapshot(db, ["public.sessions"], [mallory]) == before


def test_a_schema_a_role_names_like_a_compat_schema_outlives_drop_extension(db, roles):
    """DROP EXTENSION removes only what selfheal made: a look-alike schema another role owns,
    and its data, stay (without CASCADE nothing of theirs is even asked for)."""
    mallory = roles.create("mallory")
    db.admin.execute(f"GRANT CREATE ON DATABASE {db.name} TO {mallory}")
    owned = db.connect(user=mallory)
    owned.execute(f"CREATE SCHEMA selfheal_compat_{mallory}")
    owned.execute(f"CREATE TABLE selfheal_compat_{mallory}.ledger AS SELECT 42 AS amount")
    owned.execute(f"CREATE VIEW selfheal_compat_{mallory}.summary AS SELECT amount FROM selfheal_compat_{mallory}.ledger")
    db.admin.execute("DROP EXTENSION selfheal")
    assert db.scalar(f"SELECT amount FROM selfheal_compat_{mallory}.summary") == 42


def test_hostile_role_names_reach_setup_sql_only_quoted(db):
    """selfheal setup --dry-run prints what it would run; a role name full of quotes is one
    identifier and one literal there, never SQL of its own."""
    hostile = f"o'brien\"; DROP TABLE victims; --{db.name}"
    quoted = '"' + hostile.replace('"', '""') + '"'
    db.admin.execute(f"CREATE ROLE {quoted} LOGIN; CREATE TABLE victims (id int)")
    try:
        result = subprocess.run([sys.executable, "-m", "selfheal.cli", "setup", "--dry-run", "--dsn",
                                 db.cluster.dsn(db.name), "--app-role", hostile], capture_output=True, text=True)
        assert result.returncode in (0, 1), result.stderr
        literal = "'" + hostile.replace("'", "''") + "'"
        assert f"SELECT selfheal.enable_compat({literal});" in result.stdout
        assert f"GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {quoted};" in result.stdout
        assert db.scalar("SELECT count(*) FROM pg_db_role_setting WHERE setrole = %s::regrole", (quoted,)) == 0
        assert db.scalar("SELECT to_regclass('victims') IS NOT NULL")
    finally:
        db.admin.execute(f"DROP OWNED BY {quoted}; DROP ROLE {quoted}")


def test_dropping_selfheal_never_rewrites_a_large_table_it_served(db):
    """A 200k-row table with a compat view and an in-table derived column kept by a trigger:
    DROP EXTENSION takes the view and trigger away and leaves the table's file and rows."""
    db.admin.execute(f"""CREATE TABLE sessions (id int PRIMARY KEY, service_type text NOT NULL);
                         INSERT INTO sessions SELECT g, (g % 7)::text FROM generate_series(1, 200000) g;
                         ANALYZE sessions;
                         GRANT SELECT ON sessions TO {APP_ROLE};
                         GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {APP_ROLE};
                         SELECT selfheal.enable_compat('{APP_ROLE}')""")
    assert heal_error(db.connect(), 'column "service_type_id" does not exist',
                      "SELECT service_type_id FROM sessions")["status"] == "healed"
    db.admin.execute("SELECT selfheal.add_alias('sessions', 'service_type_num', 'service_type::integer', true)")
    assert db.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'sessions'::regclass AND NOT tgisinternal") == 1
    file_before = db.scalar("SELECT pg_relation_filenode('sessions')")
    digest = rows_digest(db, "public.sessions")
    db.admin.execute("DROP EXTENSION selfheal")
    assert db.scalar("SELECT pg_relation_filenode('sessions')") == file_before
    assert rows_digest(db, "public.sessions") == digest
    assert db.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'sessions'::regclass AND NOT tgisinternal") == 0


def test_a_careless_apps_open_write_through_a_legacy_name_stops_drop_extension_and_keeps_its_row(db):
    """An app that writes through its compat view and leaves the transaction open: DROP
    EXTENSION gives up at once instead of queueing (which would stall every reader behind it),
    changes nothing, and the app's write commits."""
    db.admin.execute(f"""CREATE TABLE tickets (id int PRIMARY KEY, state text);
                         GRANT SELECT, INSERT ON tickets TO {APP_ROLE};
                         GRANT EXECUTE ON FUNCTION {HEAL_ERROR} TO {APP_ROLE};
                         SELECT selfheal.enable_compat('{APP_ROLE}')""")
    db.admin.execute("ALTER TABLE tickets RENAME COLUMN state TO status")  # served as state
    app = db.connect()
    app.execute("BEGIN")
    app.execute("INSERT INTO tickets (id, state) VALUES (1, 'open')")
    before = snapshot(db, ["public.tickets"])
    started = time.monotonic()
    with pytest.raises(psycopg.Error, match="DROP EXTENSION selfheal stopped, nothing was changed"):
        db.admin.execute("DROP EXTENSION selfheal")
    assert time.monotonic() - started < 10
    assert snapshot(db, ["public.tickets"]) == before
    app.execute("COMMIT")
    assert db.scalar("SELECT status FROM tickets WHERE id = 1") == "open"


def test_a_hostile_repository_can_neither_hold_scan_nor_forge_its_report(db, tmp_path):
    """selfheal scan in a CI job, on a pull request's tree: a named pipe and a link to a device
    posing as SQL files, a file name holding a line break and a forged summary, a name that is
    not UTF-8, and a quoted identifier with a line break in it. The scan ends, names every file
    it did not read, and prints one line per entry."""
    import os

    db.admin.execute("CREATE TABLE album (album_id int PRIMARY KEY, title text)")
    tree = tmp_path / "app"
    tree.mkdir()
    forged = "0 wrong names in 0 files; 0 SQL texts in 0 files scanned; 0 not parsed"
    os.mkfifo(tree / "queries.sql")
    os.symlink("/dev/zero", tree / "zero.sql")
    (tree / f"app\n{forged}.py").write_text("Q = 'SELECT \"x\\n" + forged + "\" FROM album'\n")
    (tree / os.fsdecode(b"bad\x9b31m.py")).write_text('Q = "SELECT titel FROM album"\n')
    result = subprocess.run([sys.executable, "-m", "selfheal.cli", "scan", str(tree), "--dsn", db.cluster.dsn(db.name)],
                            capture_output=True, timeout=120)
    assert result.returncode == 1, result.stderr  # findings
    out = result.stdout.decode("ascii")  # every byte that is not printable ASCII is escaped
    lines = out.splitlines()
    assert len(lines) == 6 and lines[4] == "", out  # two findings, two unread files, a blank, the summary
    assert sum(line.endswith(": not read: not a regular file") for line in lines) == 2
    assert any(line.startswith(str(tree / "bad\\x9b31m.py")) and "column titel (no column titel on album)" in line
               for line in lines)
    assert any(line.startswith(str(tree / "app\\x0a0 wrong names")) and "column x\\x0a0 wrong names" in line
               for line in lines)
    assert lines[5].startswith("2 wrong names in 2 files; 2 SQL texts in 2 files scanned; 0 not parsed; "
                               "2 source files not scanned")
