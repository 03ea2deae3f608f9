"""The only module that talks to PostgreSQL: it gathers facts, applies plans, and audits.

Every entry point receives `plpy` from a thin SQL function. A plan is applied inside a
subtransaction together with its audit row, under a per-table advisory lock and a short
lock_timeout, so a repair is either wholly there or not there at all.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import replace

from . import authority, catalog, drift, errors, logreader, naming, planner, sqlscan
from .planner import Alias, Catalog, Event, Plan, Policy, Table

LOCK_NOT_AVAILABLE = "55P03"
ADVISORY_LOCK_CLASS = 0x5E1F  # first key of selfheal's advisory locks: one namespace for all of them
MAX_MESSAGE_CHARS = 4_000
MAX_STATEMENT_CHARS = 100_000


class _Db:
    """Prepared-statement helper over plpy; plans are cached per backend."""

    _plans: dict = {}

    def __init__(self, plpy):
        self.plpy = plpy
        # Column lists read while one repair is planned and planned again under its lock, by
        # version (catalog.tables_from_rows); None outside a repair.
        self.columns_read: dict | None = None

    def rows(self, sql: str, types: tuple = (), args: tuple = ()) -> list:
        key = (sql, types)
        prepared = self._plans.get(key)
        if prepared is None:
            prepared = self.plpy.prepare(sql, list(types))
            self._plans[key] = prepared
        return list(self.plpy.execute(prepared, list(args)))

    def one(self, sql: str, types: tuple = (), args: tuple = ()):
        result = self.rows(sql, types, args)
        return result[0] if result else None

    def run(self, ddl: str) -> None:
        if ddl.startswith(_CREATE_SCHEMA):
            _create_compat_schema(self, ddl)
        else:
            self.plpy.execute(ddl)


_CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS "


def _create_compat_schema(db: _Db, ddl: str) -> None:
    """Create a compat schema unless it exists (so the caller sees no 'already exists' notice).
    One someone else made first must never serve routed roles: its owner could put any view in it."""
    quoted = ddl[len(_CREATE_SCHEMA):]
    name = quoted[1:-1].replace('""', '"')
    owner = ("SELECT n.nspowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) AS ours "
             "FROM pg_catalog.pg_namespace n WHERE n.nspname = $1")
    row = db.one(owner, ("text",), (name,))
    if row is None:
        db.plpy.execute(ddl)
        row = db.one(owner, ("text",), (name,))
    if not row or not row["ours"]:
        raise RuntimeError(f"schema {name} exists and is not selfheal's: it cannot hold compat views; "
                           "drop or rename it")


# ---------------------------------------------------------------------------------------
# Facts


def load_policy(db: _Db) -> tuple[Policy, dict]:
    settings = {r["name"]: r["value"] for r in db.rows("SELECT name, value FROM selfheal.policy")}
    return Policy.from_settings(settings), settings


_ALIAS_COLUMNS = "id, schema_name, table_name, legacy_name, kind, expression, style, source, writable"

# The active aliases an error about `$1` (relation names) can concern: every relation alias
# (few), and every alias of a table that is named, or that an alias named answers for, or whose
# name a relation alias takes. A database with 1,000 aliases reads a handful.
_ALIASES_CONCERNING = f"""
SELECT {_ALIAS_COLUMNS} FROM selfheal.alias
 WHERE active AND (kind = 'relation' OR table_name = ANY ($1)
       OR table_name IN (SELECT r.legacy_name FROM selfheal.alias r WHERE r.active AND r.kind = 'relation')
       OR (schema_name, table_name) IN (SELECT o.schema_name, o.table_name FROM selfheal.alias o
                                         WHERE o.active AND (o.legacy_name = ANY ($1) OR o.table_name = ANY ($1))))
 ORDER BY id
"""


def _alias_of(r: dict) -> Alias:
    return Alias(r["schema_name"], r["table_name"], r["legacy_name"], kind=r["kind"], expression=r["expression"],
                 style=r["style"], source=r["source"], id=r["id"], writable=r["writable"])


def _load_aliases(db: _Db, active: bool = True) -> tuple[Alias, ...]:
    return tuple(map(_alias_of, db.rows(f"SELECT {_ALIAS_COLUMNS} FROM selfheal.alias WHERE active = $1 ORDER BY id",
                                        ("bool",), (active,))))


def _aliases_of_tables(db: _Db, names) -> tuple[Alias, ...]:
    """Active aliases of the tables of these names, in any schema."""
    return tuple(map(_alias_of, db.rows(f"SELECT {_ALIAS_COLUMNS} FROM selfheal.alias WHERE active "
                                        "AND table_name = ANY ($1) ORDER BY id", ("text[]",), (sorted(names),))))


# Names a compat view must not take: any relation (sequences and composite types too) or type
# of that name in the schema it serves; temporary ones are a session's own.
_NAMES_TAKEN = """
SELECT n.nspname, c.relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = ANY ($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c')
   AND n.nspname !~ '^(selfheal_compat|pg_(toast_)?temp_)'
UNION
SELECT n.nspname, t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typname = ANY ($1) AND t.typrelid = 0
   AND n.nspname !~ '^(selfheal_compat|pg_(toast_)?temp_)'
"""


# Every search_path set with ALTER ROLE [IN DATABASE] or ALTER DATABASE that applies here; role
# is '' for a database's own setting.
_SEARCH_PATH_SETTINGS = """
SELECT coalesce(r.rolname, '') AS role, d.setdatabase <> 0 AS in_database,
       substr(s, length('search_path=') + 1) AS path
  FROM pg_catalog.pg_db_role_setting d
 CROSS JOIN LATERAL unnest(d.setconfig) AS s
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = d.setrole
 WHERE d.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
   AND s LIKE 'search\\_path=%'
"""


def _search_path_settings(db: _Db) -> list[dict]:
    return db.rows(_SEARCH_PATH_SETTINGS)


def _names_taken(db: _Db, names) -> set[tuple[str, str]]:
    return {(r["nspname"], r["name"]) for r in db.rows(_NAMES_TAKEN, ("text[]",), (sorted(names),))}


_COMPAT_VIEWS = """
SELECT n.nspname AS compat, c.relname, array_agg(a.attname::text ORDER BY a.attnum) AS columns
  FROM pg_catalog.pg_namespace n
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind = 'v'
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE n.nspname = ANY ($1) AND c.relname = ANY ($2)
 GROUP BY 1, 2
"""


def _compat_views(db: _Db, source_schemas, names) -> dict:
    """(source schema, view name) -> the columns of the compat views of these names, as they are now."""
    by_compat = {planner.compat_schema(s): s for s in source_schemas}
    return {(by_compat[r["compat"]], r["relname"]): tuple(r["columns"])
            for r in db.rows(_COMPAT_VIEWS, ("text[]", "text[]"), (sorted(by_compat), sorted(names)))}


def _tables(db: _Db, names, keys) -> tuple[Table, ...]:
    known = db.columns_read
    return catalog.tables_from_rows(
        db.rows(catalog.tables_sql(), ("text[]", "text[]", "text[]", "text[]"),
                (sorted(names), sorted(keys), catalog.EXCLUDED_SCHEMAS, sorted(known or ()))), known)


def _aliases_concerning(db: _Db, names) -> tuple[Alias, ...]:
    return tuple(map(_alias_of, db.rows(_ALIASES_CONCERNING, ("text[]",), (sorted(names),))))


def load_catalog(db: _Db, names: set[str], keys: set[str]) -> Catalog:
    """The facts an error about these relation names (and their fold keys) can need. Only what
    concerns them is read, so the cost does not grow with the database's tables or aliases."""
    aliases = _aliases_concerning(db, names)
    related = {a.table for a in aliases if a.legacy_name in names or a.table in names}
    names = set(names) | related
    view_names = names | {a.legacy_name for a in aliases if a.kind == "relation" and a.table in names}
    keys = set(keys) | {naming.fold_key(n) for n in related}
    tables = _tables(db, names, ())
    # Other spellings are looked for only for names no table has: that is a scan of pg_class.
    keys &= {naming.fold_key(n) for n in names - {t.name for t in tables}}
    if keys:
        found = {(t.schema, t.name) for t in tables}
        tables += tuple(t for t in _tables(db, (), keys) if (t.schema, t.name) not in found)
        spelt = {t.name for t in tables} - names
        if spelt:  # a table found by another spelling: its aliases too
            aliases = _aliases_concerning(db, names | spelt)
    served = {t.name for t in tables}
    served |= {a.legacy_name for a in aliases if a.kind == "relation" and a.table in served}
    views = _compat_views(db, {t.schema for t in tables}, served)
    table_names = sorted({t.name for t in tables})
    dropped = frozenset((r["schema_name"], r["table_name"], r["name"]) for r in db.rows(
        "SELECT schema_name, table_name, detail->>'column' AS name FROM selfheal.schema_event "
        "WHERE change = 'column dropped' AND table_name = ANY ($1)", ("text[]",), (table_names,)))
    rejected = {(r["schema_name"], r["table_name"], r["name"], r["action"]): r["audit_id"] for r in db.rows(
        "SELECT schema_name, table_name, name, action, audit_id FROM selfheal.rejection WHERE table_name = ANY ($1)",
        ("text[]",), (table_names,))}
    relations = frozenset(_names_taken(db, view_names))
    return Catalog(tables, aliases, views, dropped, rejected, relations)


def _catalog_for(db: _Db, event: Event) -> Catalog:
    names, keys = planner.candidate_relation_names(event)
    return load_catalog(db, names, keys)


# ---------------------------------------------------------------------------------------
# Applying a plan


def _advisory_key(schema: str, table: str) -> str:
    return f"{schema}.{table}"


def _lock_table_key(db: _Db, schema: str, table: str) -> None:
    # hashtext keeps the lock per table name, so a rename mid-flight cannot split two healers.
    db.one("SELECT pg_catalog.pg_advisory_xact_lock($1, pg_catalog.hashtext($2))",
           ("int4", "text"), (ADVISORY_LOCK_CLASS, _advisory_key(schema, table)))


def _lock_nowait(db: _Db, relations: list[str]) -> None:
    """Take ACCESS EXCLUSIVE on each relation that exists, or fail at once with 55P03.

    A DDL statement that waits for its lock, even for a short lock_timeout, makes every later
    reader of the table queue behind it; NOWAIT never joins the queue.
    """
    for relation in relations:
        if db.one("SELECT pg_catalog.to_regclass($1) IS NOT NULL AS x", ("text",), (relation,))["x"]:
            db.plpy.execute(f"LOCK TABLE {relation} IN ACCESS EXCLUSIVE MODE NOWAIT")


def _insert_audit(db: _Db, plan: Plan, status: str, event_id, duration_ms: float | None = None,
                  undo_of=None, error: str | None = None) -> int:
    table = plan.table
    row = db.one(
        """INSERT INTO selfheal.audit
             (event_id, action, status, schema_name, table_name, column_name, reason, evidence,
              ddl, undo_ddl, lock_profile, duration_ms, undo_of, error)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14)
           RETURNING id""",
        ("int8", "text", "text", "text", "text", "text", "text", "text", "text", "text", "text",
         "float8", "int8", "text"),
        (event_id, plan.action, status, table.schema if table else None, table.name if table else None,
         plan.column, plan.reason, json.dumps(plan.evidence, sort_keys=True),
         _script(plan.ddl), _script(plan.undo_ddl), plan.lock_profile, duration_ms, undo_of, error),
    )
    return row["id"]


def _script(ddl: list[str]) -> str | None:
    return ";\n".join(ddl) + ";" if ddl else None


class _Retry(Exception):
    pass


class _Ineffective(Exception):
    """The failing statement still fails the same way after the repair's DDL: roll it back."""


# ---------------------------------------------------------------------------------------
# Verifying a repair: the missing name resolves now, for the role that failed


def _role_search_path(db: _Db, role: str) -> str:
    """The search_path the role's new sessions get here: ALTER ROLE ... IN DATABASE, ALTER ROLE,
    ALTER DATABASE, then the server's own setting."""
    settings = {(r["role"], r["in_database"]): r["path"] for r in _search_path_settings(db)}
    for key in ((role, True), (role, False), ("", True)):
        if key in settings:
            return settings[key]
    try:
        with db.plpy.subtransaction():
            row = db.one("SELECT setting FROM pg_catalog.pg_file_settings WHERE name = 'search_path' AND applied "
                         "ORDER BY seqno DESC LIMIT 1")
    except db.plpy.SPIError:
        row = None  # pg_file_settings is for superusers
    return row["setting"] if row else '"$user", public'


_RESOLVE_FOR_ROLE = """
SELECT c.oid FROM unnest($1::text[]) WITH ORDINALITY AS p(nspname, ord)
  JOIN pg_catalog.pg_namespace n ON n.nspname = p.nspname
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
 WHERE pg_catalog.has_schema_privilege($3, n.oid, 'USAGE')
 ORDER BY p.ord LIMIT 1
"""
_HAS_COLUMN = ("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attname = $2 "
               "AND attnum > 0 AND NOT attisdropped) AS x")


def _verifier(db: _Db, event: Event, role: str | None):
    """A check to run after a repair's DDL: does the missing name now resolve for the role that
    failed, on its own search_path?

    Read from the catalog alone, as PostgreSQL resolves names: the statement is never parsed or
    planned by the server here, since either can run the role's code (a domain's CHECK on a
    literal, an immutable function) inside the caller's transaction.
    """
    try:
        missing = errors.parse_missing(event.sqlstate, event.message, event.hint)
    except errors.UnreadableMessage:
        return None
    if not role:
        return None
    statement = event.statement or ""
    refs = planner.statement_refs(missing, statement) or (
        [sqlscan.RelationRef(missing.qualifier)] if missing.qualifier else [])

    def verify(plan: Plan) -> None:
        # Read only here, once DDL has run: most events (business errors, refusals) never get here.
        path = _role_search_path(db, role)
        schemas = planner.search_path_schemas(path, role)

        def resolve(ref: sqlscan.RelationRef):
            row = db.one(_RESOLVE_FOR_ROLE, ("text[]", "text", "text"),
                         ([ref.schema] if ref.schema else schemas, ref.name, role))
            return row["oid"] if row else None

        found = [oid for oid in (resolve(ref) for ref in refs) if oid is not None]
        if missing.kind == "relation":
            ok = bool(found)
        elif not found:
            plan.evidence["verified"] = f"as {role}: not checked, no relation of the statement resolves by name"
            return
        else:
            ok = any(db.one(_HAS_COLUMN, ("oid", "text"), (oid, missing.name))["x"] for oid in found)
        if ok:
            plan.evidence["verified"] = f"as {role}: {missing.name!r} now resolves on search_path {path}"
            return
        advice = "" if planner.routed(path) or plan.action == "add_column" else \
            f"; {role} is not routed through the compat layer: SELECT selfheal.enable_compat('{role}')"
        raise _Ineffective(f"{missing.name!r} still does not resolve for {role} (search_path {path}){advice}")

    return verify


def _with_lock_retries(db: _Db, settings: dict, work):
    """Run work() in a subtransaction with a short lock_timeout; retry on 55P03 with backoff.

    Returns work's result, or raises _Retry when the lock stayed busy through every attempt.
    """
    plpy = db.plpy
    lock_timeout = settings.get("lock_timeout", "200ms")
    attempts = max(1, int(settings.get("lock_retries", "3")))
    backoff = float(settings.get("retry_backoff_ms", "50")) / 1000.0
    previous = db.one("SELECT pg_catalog.current_setting('lock_timeout') AS v")["v"]
    try:
        for attempt in range(attempts):
            try:
                with plpy.subtransaction(), _event_trigger_guard():
                    db.one("SELECT pg_catalog.set_config('lock_timeout', $1, true)", ("text",), (lock_timeout,))
                    return work()
            except plpy.SPIError as exc:
                if getattr(exc, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                    raise
                if attempt + 1 < attempts:
                    time.sleep(backoff * (2 ** attempt))
        raise _Retry(f"the table was in use by another session through {attempts} attempts; selfheal "
                     "locks with NOWAIT and never queues ahead of readers")
    finally:
        db.one("SELECT pg_catalog.set_config('lock_timeout', $1, true)", ("text",), (previous,))


class _event_trigger_guard:
    """selfheal's own DDL must not set off its event triggers (they would redo its work).

    The flag lives in this backend's Python, where no SQL can reach it: a setting would let any
    role switch the triggers off and leave the compat views down after its own DDL.
    """

    depth = 0

    def __enter__(self):
        _event_trigger_guard.depth += 1

    def __exit__(self, *exc):
        _event_trigger_guard.depth -= 1
        return False


def _own_ddl() -> bool:
    return _event_trigger_guard.depth > 0


def _record_alias(db: _Db, alias: Alias, audit_id: int) -> None:
    replaced = db.one("UPDATE selfheal.alias SET active = false "
                      "WHERE active AND schema_name = $1 AND table_name = $2 AND legacy_name = $3 AND kind = $4 "
                      "RETURNING id",
                      ("text", "text", "text", "text"), (alias.schema, alias.table, alias.legacy_name, alias.kind))
    db.one("""INSERT INTO selfheal.alias (schema_name, table_name, legacy_name, kind, expression, style,
                                           source, audit_id, replaces, writable)
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
           ("text", "text", "text", "text", "text", "text", "text", "int8", "int8", "bool"),
           (alias.schema, alias.table, alias.legacy_name, alias.kind, alias.expression, alias.style,
            alias.source, audit_id, replaced["id"] if replaced else None, alias.writable))


def apply_plan(db: _Db, settings: dict, event_id, replan, verify=None) -> tuple[Plan, str, int | None]:
    """Lock the plan's table, plan again with fresh facts, apply the DDL and its audit row at once.

    Returns (final plan, status, audit id). status: applied | resolved | deferred | failed | the
    plan's own status when the fresh plan no longer applies.
    """
    # The fresh plan reads the table's columns again only if any of them changed meanwhile:
    # a table of 400 columns is read and parsed once.
    db.columns_read = {}
    try:
        return _apply_plan(db, settings, event_id, _values_checked(db, replan), verify)
    finally:
        db.columns_read = None


def _apply_plan(db: _Db, settings: dict, event_id, replan, verify) -> tuple[Plan, str, int | None]:
    try:
        # Planning reads the table's size and may read its values: under lock_timeout, like the DDL.
        first = _with_lock_retries(db, settings, replan)
    except _Retry as exc:
        return Plan("deferred", f"deferred: the table's facts could not be read: {exc}; the next heal() tries "
                    "again"), "deferred", None
    if first.status != "apply":
        return first, first.status, None

    def work():
        _lock_table_key(db, first.table.schema, first.table.name)
        fresh = replan()  # another session may have healed it while this one waited
        if fresh.status != "apply":
            return fresh, fresh.status, None
        started = time.monotonic()
        _lock_nowait(db, planner.relations_to_lock(fresh))
        for statement in fresh.ddl:
            db.run(statement)
        if verify is not None:
            verify(fresh)  # raises _Ineffective: the subtransaction, DDL and all, rolls back
        elapsed = (time.monotonic() - started) * 1000.0
        audit_id = _insert_audit(db, fresh, "applied", event_id, elapsed)
        if fresh.alias is not None:
            _record_alias(db, fresh.alias, audit_id)
        if fresh.backfill is not None:
            db.one("""INSERT INTO selfheal.backfill_job (audit_id, schema_name, table_name, column_name, key_column,
                                                         expression)
                      VALUES ($1, $2, $3, $4, $5, $6)""", ("int8", "text", "text", "text", "text", "text"),
                   (audit_id, fresh.table.schema, fresh.table.name, fresh.column, fresh.backfill["key"],
                    fresh.backfill["expression"]))
        return fresh, "applied", audit_id

    try:
        return _with_lock_retries(db, settings, work)
    except _Retry as exc:
        first.reason = f"deferred: {exc}; the next heal() tries again"
        return first, "deferred", _insert_audit(db, first, "deferred", event_id)
    except _Ineffective as exc:
        first.reason = f"ineffective, rolled back: {exc}"
        return first, "ineffective", _insert_audit(db, first, "ineffective", event_id, error=str(exc))
    except db.plpy.SPIError as exc:
        detail = f"{getattr(exc, 'sqlstate', '')}: {exc}"
        first.reason = f"the repair failed and was rolled back whole: {detail}"
        return first, "failed", _insert_audit(db, first, "failed", event_id, error=detail)


def _values_checked(db: _Db, replan):
    """replan, with a derived name's cast tried on the table's existing values (once per table,
    column and cast) before the plan may apply or be proposed."""
    counted: dict = {}

    def checked() -> Plan:
        plan = replan()
        check = plan.value_check
        if check is None or plan.status not in authority.CHANGING:
            return plan
        key = (plan.table.qualified, check["unconvertible"], check["rows"])
        if key not in counted:
            counted[key] = _count_unconvertible(db, plan.table.qualified, check["unconvertible"], check["rows"])
        if counted[key] is None:
            return Plan("needs_review", f"the values of {plan.table.label}.{check['source']} could not be checked "
                        f"as its owner, so {plan.column!r} is not served", table=plan.table, column=plan.column,
                        evidence=plan.evidence)
        return planner.judge_values(plan, *counted[key])

    return checked


def _count_unconvertible(db: _Db, table: str, unconvertible: str, rows: int) -> tuple[int, int] | None:
    """(rows read, rows whose value does not convert) over at most `rows` rows, read as the
    table's owner so that nothing of the owner's (row security, folded index expressions) runs
    with selfheal's rights. None when selfheal may not act as the owner."""
    body = (f"SELECT count(*) || ' ' || count(*) FILTER (WHERE unconvertible) INTO result "
            f"FROM (SELECT ({unconvertible}) AS unconvertible FROM {table} LIMIT {int(rows)}) AS s; RETURN result;")
    try:
        counts = as_table_owner(db, table, body)
    except RuntimeError:
        return None
    read, bad = counts.split()
    return int(read), int(bad)


# ---------------------------------------------------------------------------------------
# Events


_EVENT_INSERT = """
INSERT INTO selfheal.error_event (source, occurred_at, sqlstate, message, statement, hint, username, database_name,
                                  application_name, session_id, context, signature, signature_key, class,
                                  occurrences, last_occurred_at)
SELECT $1, coalesce(x.occurred_at::timestamptz, now()), x.sqlstate, x.message, x.statement, x.hint,
       coalesce(x.username, session_user)::name, coalesce(x.database_name, current_database())::name,
       x.application_name, x.session_id, x.context, x.signature, x.signature_key::uuid, x.class,
       x.occurrences::integer, x.last_occurred_at::timestamptz
  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
              $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[])
       AS x(occurred_at, sqlstate, message, statement, hint, username, database_name, application_name,
            session_id, context, signature, signature_key, class, occurrences, last_occurred_at)
RETURNING id
"""
_EVENT_FIELDS = 15
# Repeats of the log's errors held while a read goes on, before they are stored: memory stays
# that of this many distinct errors, whatever the log.
REPEATS_HELD = 5000
_LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?( ([A-Za-z][A-Za-z0-9+-]*|[+-]\d\d(:?\d\d)?))?$")


def _clip(text, limit):
    return logreader.clean_text(text, limit) or None


def _event_values(e: logreader.LogError, occurrences: int = 1, last_occurred_at: str | None = None) -> tuple:
    """One event's column values; text from outside is cleaned and clipped, never trusted."""
    message = _clip(e.message, MAX_MESSAGE_CHARS) or ""
    sqlstate = (_clip(e.sqlstate, 5) or "")
    occurred_at = e.occurred_at if e.occurred_at and _LOG_TIME.match(e.occurred_at) else None
    last = last_occurred_at if occurred_at and occurrences > 1 and _LOG_TIME.match(last_occurred_at or "") else None
    return (occurred_at,
            sqlstate, message, _clip(e.statement, MAX_STATEMENT_CHARS), _clip(e.hint, MAX_MESSAGE_CHARS),
            _clip(e.user, 63), _clip(e.database, 63), _clip(e.application_name, 256), _clip(e.session_id, 64),
            _clip(e.context, MAX_MESSAGE_CHARS),
            _clip(errors.signature(sqlstate, message), errors.SIGNATURE_DISPLAY_CHARS),
            errors.signature_key(sqlstate, message), errors.classify(sqlstate), str(occurrences), last)


def _insert_events(db: _Db, source: str, rows: list[tuple]) -> list[int]:
    columns = [list(column) for column in zip(*rows)]
    return [r["id"] for r in db.rows(_EVENT_INSERT, ("text",) + ("text[]",) * _EVENT_FIELDS, (source, *columns))]


def _store_rows(db: _Db, source: str, rows: list[tuple], problems: list | None = None) -> list[int]:
    """Insert events (_event_values tuples) in one statement. A row PostgreSQL rejects never
    blocks the others: it is retried alone with its times set to now (an odd zone
    abbreviation), then skipped and counted."""
    if not rows:
        return []
    try:
        with db.plpy.subtransaction():
            return _insert_events(db, source, rows)
    except db.plpy.SPIError:
        pass
    ids = []
    for row in rows:
        for attempt in (row, (None,) + row[1:-1] + (None,)):
            try:
                with db.plpy.subtransaction():
                    ids += _insert_events(db, source, [attempt])
                break
            except db.plpy.SPIError as exc:
                failure = str(exc)
        else:
            if problems is None:
                raise ValueError(f"the error could not be recorded: {failure}")
            problems.append(f"a record could not be stored: {failure[:200]}")
    return ids


def _client_reports_waiting(db: _Db) -> bool:
    """Asked per batch (a report may commit while the log is read); most of the time none wait,
    and matching costs more than reading a line."""
    return db.one("SELECT EXISTS (SELECT 1 FROM selfheal.error_event WHERE source = 'client' AND NOT seen_in_log) "
                  "AS waiting")["waiting"]


def _not_reported_by_clients(db: _Db, entries: list[logreader.LogError]) -> list[logreader.LogError]:
    """The log's entries that no client integration reported already; the reports they match
    are marked seen_in_log, so one error is one event however it arrived."""
    rows = [_event_values(e) for e in entries]
    timed = [(i, v) for i, v in enumerate(rows) if v[0] is not None]
    if not timed:
        return entries
    try:
        with db.plpy.subtransaction():
            times = [r["t"] for r in db.rows(
                "SELECT extract(epoch FROM x::timestamptz)::float8 AS t FROM unnest($1::text[]) WITH ORDINALITY "
                "AS u(x, n) ORDER BY n", ("text[]",), ([v[0] for _, v in timed],))]
    except db.plpy.SPIError:
        return entries  # an odd time zone: store them all rather than guess
    reports = db.rows("""SELECT id, extract(epoch FROM received_at)::float8 AS t, sqlstate, message,
                                username::text AS username, database_name::text AS database_name
                           FROM selfheal.error_event
                          WHERE source = 'client' AND NOT seen_in_log
                            AND received_at BETWEEN pg_catalog.to_timestamp($1) AND pg_catalog.to_timestamp($2)""",
                      ("float8", "float8"), (min(times), max(times) + errors.CLIENT_REPORT_WINDOW_S))
    if not reports:
        return entries
    keyed = [(t, (v[1], v[2], v[5], v[6])) for t, (_, v) in zip(times, timed)]
    matched, claimed = errors.pair_with_client_reports(
        keyed, [(r["id"], r["t"], (r["sqlstate"], r["message"], r["username"], r["database_name"])) for r in reports])
    db.one("UPDATE selfheal.error_event SET seen_in_log = true WHERE id = ANY ($1)", ("int8[]",), (claimed,))
    skip = {timed[i][0] for i in matched}
    return [e for i, e in enumerate(entries) if i not in skip]


def _store_event(db: _Db, source: str, sqlstate, message, statement, hint) -> int:
    entry = logreader.LogError(None, sqlstate or "", message or "", hint or None, statement or None,
                               None, None, None, None)
    return _store_rows(db, source, [_event_values(entry)])[0]


_AUDITED = {"refused", "pending_approval", "observed", "needs_review"}
_PROPOSED = {"pending_approval", "observed"}


_UNDECIDED = ("refused", "needs_review", "pending_approval", "observed")


def _repeated_decision(db: _Db, plan: Plan) -> int | None:
    """The undecided audit row that reached this same decision before, counted once more."""
    if plan.status not in ("refused", "needs_review"):
        return None
    table = plan.table
    row = db.one("""UPDATE selfheal.audit SET repeats = repeats + 1, last_seen_at = now()
                     WHERE id = (SELECT id FROM selfheal.audit
                                  WHERE status IN ('refused', 'needs_review') AND decided_by IS NULL
                                    AND table_name IS NOT DISTINCT FROM $3 AND column_name IS NOT DISTINCT FROM $4
                                    AND status = $1 AND action = $2 AND schema_name IS NOT DISTINCT FROM $5
                                    AND reason = $6
                                  ORDER BY id LIMIT 1)
                    RETURNING id""",
                 ("text", "text", "text", "text", "text", "text"),
                 (plan.status, plan.action, table.name if table else None, plan.column,
                  table.schema if table else None, plan.reason))
    return row["id"] if row else None


def _within_role_allowance(db: _Db, settings: dict, plan: Plan, role: str | None) -> Plan:
    """The plan, or past audit_rows_per_role new undecided rows for this role within
    event_retention, one refusal that names no table or column, so that all further ones
    count on a single row and a storm of junk names cannot grow the audit without bound."""
    allowance = int(settings.get("audit_rows_per_role", "1000"))
    used = db.one("""SELECT count(*) AS n FROM (
                        SELECT 1 FROM selfheal.audit a JOIN selfheal.error_event e ON e.id = a.event_id
                         WHERE a.status = ANY ($1) AND a.decided_by IS NULL AND e.username IS NOT DISTINCT FROM $2
                           AND a.created_at > now() - $3::interval
                         LIMIT $4) AS s""",
                  ("text[]", "name", "text", "int4"),
                  (list(_UNDECIDED), role, settings.get("event_retention", "30 days"), allowance))["n"]
    if used < allowance:
        return plan
    return Plan("refused", f"role {role} has reached audit_rows_per_role ({allowance}) undecided refusals, "
                "reviews and proposals within event_retention; further ones are counted here, each error "
                "keeps its own reason in selfheal.error_event", action="refuse",
                evidence={"role": role, "allowance": allowance})


def _open_proposal(db: _Db, plan: Plan) -> int | None:
    """The undecided proposal (or observation) of this same repair, if one is open."""
    row = db.one("""SELECT id FROM selfheal.audit
                     WHERE status = $1 AND decided_by IS NULL AND action = $2 AND schema_name = $3
                       AND table_name = $4 AND column_name = $5 ORDER BY id LIMIT 1""",
                 ("text", "text", "text", "text", "text"),
                 (plan.status, plan.action, plan.table.schema, plan.table.name, plan.column))
    return row["id"] if row else None


_RIGHTS = """
SELECT r.oid IS NOT NULL AS role_exists,
       r.oid IS NOT NULL AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE') AS schema_usage,
       ARRAY(SELECT p FROM unnest($4::text[]) AS p
              WHERE r.oid IS NOT NULL AND pg_catalog.has_table_privilege(r.oid, c.oid, p)) AS privileges,
       (SELECT e.extname FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
         WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e'
         LIMIT 1) AS extension
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_roles r ON r.rolname = $1
 WHERE n.nspname = $2 AND c.relname = $3
"""


def _rights(db: _Db, role: str | None, table: Table) -> authority.Rights:
    row = db.one(_RIGHTS, ("text", "text", "text", "text[]"), (role, table.schema, table.name,
                                                               list(authority.PRIVILEGES)))
    if row is None:
        return authority.Rights(role, role_exists=False)
    return authority.Rights(role, row["role_exists"], row["schema_usage"], frozenset(row["privileges"]),
                            row["extension"])


def _decide_and_apply(db: _Db, policy: Policy, settings: dict, event: Event, row: dict, event_id) -> tuple:
    """(plan, status, audit id) of one event: planned, authorized for its role, applied or recorded."""
    role = row["username"]

    def replan() -> Plan:
        catalog = _catalog_for(db, event)
        decided = _plan_with_related(db, event, row, catalog, policy)
        if decided.status not in authority.CHANGING:
            return decided
        return authority.authorize(decided, event, _rights(db, role, decided.table), policy, catalog)

    plan, status, audit_id = apply_plan(db, settings, event_id, replan, _verifier(db, event, role))
    if audit_id is None and plan.status in _PROPOSED:
        audit_id = _open_proposal(db, plan)  # one proposal per repair, however many errors ask for it
    if audit_id is None and plan.status in _AUDITED:
        plan = _within_role_allowance(db, settings, plan, role)
        audit_id = _repeated_decision(db, plan) or _insert_audit(db, plan, plan.status, event_id)
    return plan, status, audit_id


MAX_FOLLOW_UPS = 50  # legacy names healed from one statement beyond the one its error named


def _follow_ups(db: _Db, policy: Policy, settings: dict, event: Event, row: dict, event_id) -> list[dict]:
    """For a routed role, the statement's other legacy names, healed now rather than one error
    and one heal() at a time. Each is planned and audited as the error the statement would
    raise next; none is tried twice."""
    if not row["username"] or not planner.routed(_role_search_path(db, row["username"])):
        return []
    tried: set = set()
    results: list[dict] = []
    while len(tried) < MAX_FOLLOW_UPS:
        pending = [e for e in planner.remaining_legacy_names(event, _catalog_for(db, event)) if e not in tried]
        if not pending:
            break
        sqlstate, message = pending[0]
        tried.add(pending[0])
        follow = replace(event, sqlstate=sqlstate, message=message, hint=None, related_statements=())
        try:
            with db.plpy.subtransaction():
                plan, status, audit_id = _decide_and_apply(db, policy, settings, follow, row, event_id)
        except Exception as exc:  # noqa: BLE001 - the event itself is healed: a follow-up never undoes it
            results.append({"event_id": event_id, "status": "failed", "action": "none", "audit_id": None,
                            "reason": f"{type(exc).__name__}: {exc}"[:1000], "ddl": None, "follow_up": message})
            break
        results.append({**_outcome(event_id, plan, status, audit_id), "follow_up": message})
    return results


def _outcome(event_id, plan: Plan, status: str, audit_id) -> dict:
    """What heal_error returns for one repair."""
    return {"event_id": event_id, "status": "healed" if status == "applied" else status, "action": plan.action,
            "reason": plan.reason, "audit_id": audit_id, "ddl": _script(plan.ddl) if status == "applied" else None}


def _process_events(db: _Db, policy: Policy, settings: dict, rows: list) -> list[dict]:
    """Plan identical events once (same statement, error and reporting role) and record the
    outcome on all; then heal the statement's other legacy names. The first result is the event's."""
    first = rows[0]
    event = _event_of(first)
    event_id = first["id"]
    plan, status, audit_id = _decide_and_apply(db, policy, settings, event, first, event_id)
    result = _outcome(event_id, plan, status, audit_id)
    db.one("""UPDATE selfheal.error_event
                 SET status = $2, reason = $3, audit_id = $4, attempts = attempts + 1, processed_at = now()
               WHERE id = ANY ($1)""",
           ("int8[]", "text", "text", "int8"), ([r["id"] for r in rows], result["status"], plan.reason, audit_id))
    follow_ups = _follow_ups(db, policy, settings, event, first, event_id) if status in ("applied", "resolved") \
        else []
    return [result] + follow_ups


_EVENT_COLUMNS = "id, sqlstate, message, statement, hint, context, source, username"
RELATED_STATEMENTS = 20  # other statements that missed the same column, read as type evidence
RELATED_WINDOW = 5000  # latest events searched for them: an error storm must not make planning slow


def _event_of(row: dict) -> Event:
    return Event(row["sqlstate"], row["message"], row["statement"], row["hint"], row["context"], row["source"])


def _plan_with_related(db: _Db, event: Event, row: dict, catalog: Catalog, policy: Policy, **options) -> Plan:
    """The plan; one that adds a column is made again with the other statements that missed it,
    each evidence of its type. Only then are they read: most errors never add a column."""
    decided = planner.plan(event, catalog, policy, **options)
    if decided.action != "add_column" or decided.status not in authority.CHANGING:
        return decided
    related = _related_statements(db, row)
    return planner.plan(replace(event, related_statements=related), catalog, policy, **options) if related \
        else decided


def _related_statements(db: _Db, row: dict) -> tuple[str, ...]:
    """Statements of the same reporting role that missed the same column among the latest events
    (SELECT and UPDATE word the error differently, so the message alone does not find them)."""
    related: list[str] = []
    try:
        name = errors.parse_missing(row["sqlstate"], row["message"]).name
    except errors.UnreadableMessage:
        name = None
    if name and row["sqlstate"] == errors.UNDEFINED_COLUMN:
        for other in db.rows("""SELECT statement, message FROM (
                                   SELECT sqlstate, statement, message, username FROM selfheal.error_event
                                    ORDER BY id DESC LIMIT $5) AS s
                                 WHERE sqlstate = $1 AND username IS NOT DISTINCT FROM $2 AND statement IS NOT NULL
                                   AND statement IS DISTINCT FROM $3 AND pg_catalog.strpos(message, $4) > 0""",
                             ("text", "name", "text", "text", "int4"),
                             (row["sqlstate"], row["username"], row["statement"], name, RELATED_WINDOW)):
            try:
                same = errors.parse_missing(row["sqlstate"], other["message"]).name == name
            except errors.UnreadableMessage:
                same = False
            if same and other["statement"] not in related:
                related.append(other["statement"])
            if len(related) >= RELATED_STATEMENTS:
                break
    return tuple(related)


def heal_error(plpy, sqlstate, message, statement=None, hint=None) -> list[dict]:
    db = _Db(plpy)
    policy, settings = load_policy(db)
    event_id = _store_event(db, "client", sqlstate, message, statement, hint)
    row = db.one(f"SELECT {_EVENT_COLUMNS} FROM selfheal.error_event WHERE id = $1", ("int8",), (event_id,))
    return _process_events(db, policy, settings, [row])


def record_error(plpy, sqlstate, message, statement=None, hint=None) -> int:
    return _store_event(_Db(plpy), "client", sqlstate, message, statement, hint)


_LOG_SETTINGS = ["logging_collector", "log_destination", "log_directory", "data_directory", "lc_messages",
                 "log_min_error_statement"]


def _server_settings(db: _Db) -> dict[str, str]:
    return {r["name"]: r["setting"] for r in db.rows(
        "SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY ($1)", ("text[]",), (_LOG_SETTINGS,))}


def read_log(db: _Db, settings: dict) -> dict:
    """Record the ERROR entries of this database written to the server log since the last read."""
    server = _server_settings(db)
    log_format = logreader.preferred_format(server.get("log_destination", ""))
    if server.get("logging_collector") != "on" or log_format is None:
        return {"problem": "the server writes no jsonlog or csvlog file; see SELECT * FROM selfheal.logging_advice()"}
    mark = db.one("SELECT positions::text AS positions, since FROM selfheal.log_bookmark WHERE log_format = $1 "
                  "FOR UPDATE SKIP LOCKED", ("text",), (log_format,))
    if mark is None:
        return {"format": log_format, "skipped": "another heal() is reading the log"}
    directory = os.path.join(server["data_directory"], server["log_directory"])
    current = db.one("SELECT pg_catalog.pg_current_logfile($1) AS f", ("text",), (log_format,))["f"]
    bookmark = logreader.Bookmark.from_json({"positions": json.loads(mark["positions"]), "since": mark["since"]})
    budget = int(float(settings.get("log_read_max_mb", "64")) * (1 << 20))
    result = logreader.ReadResult()
    already_reported = errors_read = stored = 0
    repeats: dict = {}

    def store_repeats() -> int:
        rows = [_event_values(first, occurrences, last) for first, occurrences, last in repeats.values()]
        repeats.clear()
        return len(_store_rows(db, "log", rows, result.problems))

    try:
        # Repeats of one error within a second are one row with their count, stored as the read
        # goes on, so memory is that of REPEATS_HELD errors whatever the file. All or nothing: a
        # read that fails half-way must not keep rows its bookmark does not cover.
        with db.plpy.subtransaction():
            for found in logreader.iter_new_errors(
                    directory, log_format, bookmark, current and os.path.basename(current), result, budget,
                    db.one("SELECT current_database() AS d")["d"],
                    frozenset(r["rolname"] for r in db.rows("SELECT rolname FROM pg_catalog.pg_roles WHERE rolsuper"))):
                errors_read += len(found)
                unreported = _not_reported_by_clients(db, found) if _client_reports_waiting(db) else found
                already_reported += len(found) - len(unreported)
                logreader.fold_repeats(unreported, repeats)
                if len(repeats) >= REPEATS_HELD:
                    stored += store_repeats()
            stored += store_repeats()
    except logreader.LogReadError as exc:
        db.one("UPDATE selfheal.log_bookmark SET last_problem = $2, updated_at = now() WHERE log_format = $1",
               ("text", "text"), (log_format, str(exc)))
        return {"format": log_format, "problem": str(exc)}
    saved = result.bookmark.to_json()
    db.one("""UPDATE selfheal.log_bookmark
                 SET positions = $2::jsonb, since = $3, updated_at = now(), lines_read = lines_read + $4,
                     errors_read = errors_read + $5, malformed = malformed + $6, last_problem = $7
               WHERE log_format = $1""",
           ("text", "text", "float8", "int8", "int8", "int8", "text"),
           (log_format, json.dumps(saved["positions"]), saved["since"], result.lines, errors_read,
            result.malformed, result.problem_text()))
    summary = {"format": log_format, "lines": result.lines, "errors": errors_read, "events": stored,
               "more": result.more}
    if already_reported:
        summary["already_reported"] = already_reported
    if result.malformed:
        summary["malformed"] = result.malformed
    if result.problem_text():
        summary["problem"] = result.problem_text()
    return summary


def heal(plpy) -> str:
    """Read new errors from the server log, then process every pending or deferred event; return a JSON summary."""
    db = _Db(plpy)
    policy, settings = load_policy(db)
    summary: dict = {"processed": 0, "log": read_log(db, settings)}
    batch = int(settings.get("heal_batch_size", "10000"))
    rows = db.rows(f"""SELECT {_EVENT_COLUMNS} FROM selfheal.error_event
                        WHERE status IN ('pending', 'deferred') ORDER BY id
                        LIMIT $1 FOR UPDATE SKIP LOCKED""", ("int4",), (batch,))
    # Events of one statement shape (its constants folded) are planned once: an outage log holds
    # the same few queries with thousands of different values.
    shapes: dict[str, str] = {}
    groups: dict[tuple, list] = {}
    for row in rows:
        statement = row["statement"]
        if statement is not None and statement not in shapes:
            shapes[statement] = sqlscan.shape(statement)
        key = (row["sqlstate"], row["message"], shapes.get(statement), row["hint"], row["context"], row["source"],
               row["username"])
        groups.setdefault(key, []).append(row)
    # A batch never sleeps on a busy table: repairs already applied hold their locks until this
    # transaction ends, so a busy table is deferred at once and the next heal() tries again.
    no_waiting = {**settings, "lock_retries": "1"}
    for members in groups.values():
        try:
            with plpy.subtransaction():
                results = _process_events(db, policy, no_waiting, members)
            status = results[0]["status"]
            healed_with = sum(1 for r in results[1:] if r["status"] == "healed")
            if healed_with:
                summary["healed_with_statement"] = summary.get("healed_with_statement", 0) + healed_with
        except Exception as exc:  # noqa: BLE001 - one event must never stop the others, or the log
            status = "failed"
            db.one("UPDATE selfheal.error_event SET status = 'failed', reason = $2, attempts = attempts + 1, "
                   "processed_at = now() WHERE id = ANY ($1)", ("int8[]", "text"),
                   ([r["id"] for r in members], f"selfheal could not process it: {type(exc).__name__}: {exc}"[:1000]))
        summary["processed"] += len(members)
        summary[status] = summary.get(status, 0) + len(members)
    expired = _expire_events(db, settings)
    if expired:
        summary["expired"] = expired
    if len(rows) >= batch:
        left = db.one("SELECT count(*) AS n FROM selfheal.error_event WHERE status IN ('pending', 'deferred')")["n"]
        summary["batch_limit"] = (f"heal_batch_size ({batch}) reached: {left} events are left pending "
                                  "(deferred ones included) for the next heal()")
        summary["left_pending"] = left
    return json.dumps(summary, sort_keys=True)


def _expire_events(db: _Db, settings: dict, limit: int = 10000) -> int:
    """Delete up to `limit` processed events older than event_retention; events an audit row
    points at (the error a decision was made for) are kept with it."""
    return db.one("""WITH expired AS (
                        DELETE FROM selfheal.error_event e
                         WHERE e.id IN (SELECT x.id FROM selfheal.error_event x
                                         WHERE x.received_at < now() - $1::interval
                                           AND x.status NOT IN ('pending', 'deferred')
                                           AND NOT EXISTS (SELECT 1 FROM selfheal.audit a WHERE a.event_id = x.id)
                                         ORDER BY x.id LIMIT $2)
                        RETURNING 1)
                     SELECT count(*) AS n FROM expired""",
                  ("text", "int4"), (settings.get("event_retention", "30 days"), limit))["n"]


def _pin_settings(plpy) -> None:
    """What the SET clauses of selfheal's functions do (search_path, plan_cache_mode); a procedure
    that commits must do it itself."""
    plpy.execute("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true), "
                 "pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true)")


def watch(plpy, poll, max_cycles=None) -> None:
    """Heal, commit, sleep, again: until cancelled, terminated, or max_cycles are done."""
    db = _Db(plpy)
    _pin_settings(plpy)
    seconds = db.one("SELECT extract(epoch FROM $1::interval)::float8 AS s", ("text",), (poll,))["s"]
    cycles = 0
    while max_cycles is None or cycles < max_cycles:
        _pin_settings(plpy)  # a commit ends the transaction-local setting
        summary = json.loads(heal(plpy))
        plpy.commit()  # each cycle's events and repairs survive a later cancel
        if summary["processed"]:
            plpy.notice(f"selfheal: {json.dumps(summary, sort_keys=True)}")
        cycles += 1
        # pg_sleep, not time.sleep: it answers cancel and terminate at once.
        db.one("SELECT pg_catalog.pg_sleep($1)", ("float8",), (seconds,))


# Deferrable triggers fire at commit, outside the owner's context; selfheal's batches must not
# queue any (foreign keys' own triggers live in pg_catalog and check as the table owner).
_USER_DEFERRABLE_TRIGGER = """
SELECT pg_catalog.format('%I on %s', t.tgname, t.tgrelid::pg_catalog.regclass) AS trigger
  FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
 WHERE t.tgdeferrable AND p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace
 LIMIT 1
"""


def _refuse_deferrable_triggers(db: _Db, table: str) -> None:
    owner = db.one("SELECT pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE') AND NOT r.rolsuper AS own "
                   "FROM pg_catalog.pg_class c, pg_catalog.pg_roles r "
                   "WHERE c.oid = $1::pg_catalog.regclass AND r.rolname = current_user", ("text",), (table,))
    if owner and owner["own"]:
        return  # the owner filling its own table: its triggers run with its own rights either way
    found = db.one(_USER_DEFERRABLE_TRIGGER)
    if found:
        raise RuntimeError(f"backfill refuses to run while the deferrable trigger {found['trigger']} exists: it "
                           "would fire at commit with the caller's rights; the table's owner may CALL "
                           "selfheal.backfill() itself (GRANT EXECUTE on it, and on selfheal.backfill_job)")


def _batch_body(table: str, key: str, key_type: str, column: str, expression: str, rows: int) -> str:
    """One backfill batch, run as the table owner: the next `rows` keys after `argument`.

    The batch is a key range (after `argument`, up to the last of the next `rows` keys), so it
    reads only its own rows through the primary key's index; `key IN (the next keys)` was
    planned as a hash join over the whole table, every batch. A function made for each batch
    is planned with its argument's value.
    """
    after = f"{key} > argument::{key_type}"
    return f"""
    DECLARE upper_key {key_type}; n bigint;
    BEGIN
    IF argument IS NULL THEN
        SELECT max(k) INTO upper_key FROM (SELECT {key} AS k FROM {table} ORDER BY {key} LIMIT {rows}) next_keys;
        UPDATE {table} SET {column} = {expression} WHERE {key} <= upper_key;
    ELSE
        SELECT max(k) INTO upper_key
          FROM (SELECT {key} AS k FROM {table} WHERE {after} ORDER BY {key} LIMIT {rows}) next_keys;
        UPDATE {table} SET {column} = {expression} WHERE {after} AND {key} <= upper_key;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    SET CONSTRAINTS ALL IMMEDIATE;
    RETURN pg_catalog.json_build_object('last_key', upper_key::text, 'n', n)::text;
    END;"""


def backfill(plpy, max_batches=None) -> None:
    """Fill in-table derived columns in batches by primary key, committing each; resumable.

    Each batch runs as the table's owner (as_table_owner), so the owner's triggers and index
    expressions never run with the caller's rights.
    """
    db = _Db(plpy)
    _pin_settings(plpy)
    _, settings = load_policy(db)
    batch_rows = int(settings.get("backfill_batch_rows", "10000"))
    pause = float(settings.get("backfill_pause_ms", "10")) / 1000.0
    duty_cycle = min(1.0, max(0.01, float(settings.get("backfill_duty_cycle", "0.5"))))
    lock_timeout = settings.get("lock_timeout", "200ms")
    batches = 0
    for job in db.rows("SELECT * FROM selfheal.backfill_job WHERE done_at IS NULL ORDER BY id"):
        table = f"{planner.quote_ident(job['schema_name'])}.{planner.quote_ident(job['table_name'])}"
        key, column = planner.quote_ident(job["key_column"]), planner.quote_ident(job["column_name"])
        key_type = db.one("SELECT pg_catalog.format_type(atttypid, atttypmod) AS t FROM pg_catalog.pg_attribute "
                          "WHERE attrelid = $1::pg_catalog.regclass AND attname = $2",
                          ("text", "text"), (table, job["key_column"]))["t"]
        body = _batch_body(table, key, key_type, column, job["expression"], batch_rows)
        last_key = job["last_key"]
        while max_batches is None or batches < max_batches:
            _pin_settings(plpy)  # a commit ends the transaction-local setting
            db.one("SELECT pg_catalog.set_config('lock_timeout', $1, true)", ("text",), (lock_timeout,))
            _refuse_deferrable_triggers(db, table)
            started = time.monotonic()
            done = json.loads(as_table_owner(db, table, body, last_key))
            took = time.monotonic() - started
            _refuse_deferrable_triggers(db, table)  # one made during the batch: the batch rolls back
            if not done["n"]:
                db.one("UPDATE selfheal.backfill_job SET done_at = now(), updated_at = now() WHERE id = $1",
                       ("int8",), (job["id"],))
                plpy.commit()
                break
            last_key = done["last_key"]
            db.one("UPDATE selfheal.backfill_job SET last_key = $2, rows_done = rows_done + $3, updated_at = now() "
                   "WHERE id = $1", ("int8", "text", "int8"), (job["id"], last_key, done["n"]))
            plpy.commit()  # each batch is its own transaction: short locks, and a resume point
            batches += 1
            # Rest in proportion to the batch: a busy table (slow batches) gets more room, and the
            # backfill works no more than its duty cycle of the time.
            rest = max(pause, took * (1.0 - duty_cycle) / duty_cycle)
            if rest > 0:
                db.one("SELECT pg_catalog.pg_sleep($1)", ("float8",), (rest,))


def logging_advice(plpy) -> list[dict]:
    return [{"setting": a.setting, "current_value": a.current, "wanted": a.wanted,
             "needs_restart": a.needs_restart, "statement": a.statement}
            for a in logreader.logging_advice(_server_settings(_Db(plpy)))]


def configure_logging(plpy) -> list[str]:
    advice = logreader.logging_advice(_server_settings(_Db(plpy)))
    if not advice:
        return []
    statements = [a.statement for a in advice] + ["SELECT pg_catalog.pg_reload_conf()"]
    if any(a.needs_restart for a in advice):
        plpy.notice("selfheal: " + ", ".join(a.setting for a in advice if a.needs_restart)
                    + " takes effect only after a server restart")
    return statements


# ---------------------------------------------------------------------------------------
# Administration


def _table_by_oid(db: _Db, table_oid) -> tuple[str, str]:
    row = db.one("SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
                 "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                 "WHERE c.oid = $1::pg_catalog.regclass AND c.relkind IN ('r', 'p')",
                 ("text",), (table_oid,))
    if row is None:
        raise ValueError("selfheal serves aliases for ordinary and partitioned tables only")
    return row["nspname"], row["relname"]


def add_alias(plpy, table_oid, legacy_name: str, expression: str, in_table: bool = False) -> int:
    """Declare legacy_name on a table as `expression`: a compat view column, or with in_table a
    real column (STORED below the row limit, else synced by a trigger and backfilled)."""
    db = _Db(plpy)
    policy, settings = load_policy(db)
    schema, name = _table_by_oid(db, table_oid)
    naming.validate_schema(schema)
    naming.validate_identifier(legacy_name, "alias name")
    if not (expression or "").strip():
        raise ValueError("an alias needs an expression over the table's columns")
    qualified = f"{planner.quote_ident(schema)}.{planner.quote_ident(name)}"
    col_type = _expression_type(db, qualified, expression)

    def replan() -> Plan:
        catalog = load_catalog(db, {name}, set())
        table = catalog.table(schema, name)
        if table is None:
            return Plan("needs_review", f"table {schema}.{name} no longer exists")
        if in_table:
            if table.column(legacy_name):
                return Plan("refused", f"{schema}.{name} already has a column {legacy_name}")
            sources = [c.name for c in table.columns if drift.references(expression, c.name)]
            return planner.plan_derived_column(table, legacy_name, col_type, f"({expression})", sources, policy,
                                               {"declared": expression})
        alias = Alias(schema, name, legacy_name, expression=f"({expression})", source="user")
        return planner.plan_declared_alias(table, alias, catalog)

    plan, status, audit_id = apply_plan(db, settings, None, replan)
    if status != "applied":
        raise RuntimeError(f"alias {legacy_name!r} was not applied ({status}): {plan.reason}")
    return audit_id


def _expression_type(db: _Db, qualified: str, expression: str) -> str:
    """The type of an expression over a table, from a view's definition: a view is parsed, never
    planned, so nothing of the table owner's (index expressions the planner folds) runs."""
    with db.plpy.subtransaction():
        db.plpy.execute(f"CREATE TEMPORARY VIEW selfheal_type_probe AS SELECT ({expression}) AS v FROM {qualified}")
        found = db.one("SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) AS t FROM pg_catalog.pg_attribute a "
                       "WHERE a.attrelid = 'pg_temp.selfheal_type_probe'::pg_catalog.regclass AND a.attname = 'v'")
        db.plpy.execute("DROP VIEW pg_temp.selfheal_type_probe")
    return found["t"]


def _role_settings(db: _Db, role_name: str) -> tuple[str, dict]:
    """(role name, {in this database only: search_path}) as set by ALTER ROLE."""
    role = db.one("SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = $1", ("name",), (role_name,))
    if role is None:
        raise ValueError(f"role {role_name!r} does not exist")
    return role["rolname"], {r["in_database"]: r["path"] for r in _search_path_settings(db)
                             if r["role"] == role["rolname"]}


def _set_role_path(db: _Db, role: str, in_database: bool, path: str | None) -> str:
    database = planner.quote_ident(db.one("SELECT pg_catalog.current_database()::text AS d")["d"])
    scope = f" IN DATABASE {database}" if in_database else ""
    value = f"SET search_path = {path}" if path is not None else "RESET search_path"
    db.run(f"ALTER ROLE {planner.quote_ident(role)}{scope} {value}")
    return value + (" in this database" if in_database else "")


def enable_compat(plpy, role_name: str) -> str:
    """Put each schema's compat schema just before it on the role's search_path, keeping the rest
    as it was: the role-wide setting and the one for this database, wherever one exists; with
    neither, this database's effective path, set for this database only."""
    db = _Db(plpy)
    role, settings = _role_settings(db, role_name)
    targets = settings or {True: _role_search_path(db, role)}
    changed = []
    for in_database, current in sorted(targets.items()):
        path = planner.compat_search_path(current, role)
        if path is not None:
            changed.append(_set_role_path(db, role, in_database, path))
    if not changed:
        return f"role {role} already reads through the compat schemas"
    return f"role {role} now reads through the compat schemas ({'; '.join(changed)}) from its next session"


def disable_compat(plpy, role_name: str) -> str:
    """Take the compat schemas off the role's search_path. A setting left equal to what the role
    would get without it (enable_compat made it) is reset."""
    db = _Db(plpy)
    role, settings = _role_settings(db, role_name)
    changed = []
    for in_database, current in sorted(settings.items()):
        path = planner.uncompat_search_path(current)
        if path is None:
            continue
        if in_database and planner.search_path_names(path) == planner.search_path_names(
                settings.get(False) or _role_search_path(db, "")):
            path = None
        changed.append(_set_role_path(db, role, in_database, path))
    if not changed:
        return f"role {role} does not read through the compat schemas"
    return f"role {role} no longer reads through the compat schemas ({'; '.join(changed)}) from its next session"


def refresh_compat(plpy) -> int:
    """Build every table's compat views again from selfheal.alias; returns how many tables."""
    db = _Db(plpy)
    _, settings = load_policy(db)
    aliases = _load_aliases(db)
    done = 0
    for schema, name in sorted({(a.schema, a.table) for a in aliases}):
        table = _table_facts(db, schema, name)
        if table is None:
            continue
        current = [a for a in aliases if (a.schema, a.table) == (schema, name)]

        def work(table=table, current=current):
            ddl = planner.rebuild_compat(table, current, current)
            _lock_nowait(db, planner.relations_to_lock(Plan("apply", "refresh", table=table, ddl=ddl)))
            for statement in ddl:
                db.run(statement)
        try:
            _with_lock_retries(db, settings, work)
        except _Retry as exc:
            raise RuntimeError(f"the compat views of {table.label} were not rebuilt: {exc}") from None
        done += 1
    return done


def undo(plpy, audit_id: int, force: bool = False) -> int:
    """Reverse one applied change; returns the id of the audit row that records the undo."""
    db = _Db(plpy)
    policy, settings = load_policy(db)
    row = db.one("SELECT * FROM selfheal.audit WHERE id = $1", ("int8",), (audit_id,))
    if row is None:
        raise ValueError(f"no audit row {audit_id}")
    if row["status"] != "applied" or row["action"] not in ("add_alias", "add_column"):
        raise ValueError(f"audit row {audit_id} is {row['action']}/{row['status']}; only applied changes can be undone")
    if row["undone_by"] is not None:
        raise ValueError(f"audit row {audit_id} was already undone by audit row {row['undone_by']}")
    schema, name, column = row["schema_name"], row["table_name"], row["column_name"]

    def replan() -> Plan:
        catalog = load_catalog(db, {name}, set())
        table = catalog.table(schema, name)
        if table is None:
            return Plan("needs_review", f"table {schema}.{name} no longer exists")
        aliases = catalog.table_aliases(table)
        if row["action"] == "add_alias":
            undone, restored = _alias_ids(db, audit_id)
            keep = [a for a in aliases if a.id not in undone] + restored
            ddl = planner.rebuild_compat(table, aliases, keep)
        else:
            if table.column(column) is None:
                return Plan("needs_review", f"column {column} is no longer on {schema}.{name}")
            evidence = json.loads(row["evidence"])
            derived = evidence.get("strategy") in planner.DERIVED_IN_TABLE
            if not derived and not force and _column_has_data(db, table, column, evidence.get("added_as")):
                return Plan("refused", f"{schema}.{name}.{column} holds values other than its default; "
                                       "undo(id, force => true) drops them")
            ddl = (planner.drop_sync_ddl(table, column) if derived else []) + \
                planner.drop_column_ddl(table, column, aliases)
        return Plan("apply", f"undo of audit row {audit_id}", action="undo", table=table, column=column,
                    ddl=ddl, lock_profile="catalog only")

    plan, status, undo_id = apply_plan(db, settings, None, replan)
    if status != "applied":
        raise RuntimeError(f"audit row {audit_id} was not undone ({status}): {plan.reason}")
    db.one("UPDATE selfheal.audit SET undone_by = $2 WHERE id = $1", ("int8", "int8"), (audit_id, undo_id))
    db.one("UPDATE selfheal.audit SET undo_of = $2 WHERE id = $1", ("int8", "int8"), (undo_id, audit_id))
    db.one("DELETE FROM selfheal.backfill_job WHERE audit_id = $1", ("int8",), (audit_id,))
    # The alias this change replaced, if any, is served again.
    db.one("WITH undone AS (UPDATE selfheal.alias SET active = false WHERE audit_id = $1 RETURNING replaces) "
           "UPDATE selfheal.alias SET active = true WHERE id IN (SELECT replaces FROM undone)", ("int8",), (audit_id,))
    # An undo is the administrator's decision: the same repair is never applied again by itself.
    _record_rejection(db, row, audit_id, undo_id)
    return undo_id


def _record_rejection(db: _Db, change: dict, audit_id: int, decided_by: int) -> None:
    db.one("""INSERT INTO selfheal.rejection (schema_name, table_name, name, action, audit_id, decided_by)
              VALUES ($1, $2, $3, $4, $5, $6)
              ON CONFLICT (schema_name, table_name, name, action)
              DO UPDATE SET audit_id = EXCLUDED.audit_id, decided_by = EXCLUDED.decided_by, created_at = now()""",
           ("text", "text", "text", "text", "int8", "int8"),
           (change["schema_name"], change["table_name"], change["column_name"],
            planner.decision_action(change["action"], change["evidence"]), audit_id, decided_by))


_DECIDABLE = ("pending_approval", "observed")


def _decidable(db: _Db, audit_id: int) -> dict:
    # FOR UPDATE: a concurrent approve and reject of one proposal take turns; the second sees the first.
    row = db.one("SELECT * FROM selfheal.audit WHERE id = $1 FOR UPDATE", ("int8",), (audit_id,))
    if row is None:
        raise ValueError(f"no audit row {audit_id}")
    undone = row["status"] == "applied" and row["undone_by"] is not None
    if row["action"] not in ("add_column", "add_alias") or not (row["status"] in _DECIDABLE or undone):
        raise ValueError(f"audit row {audit_id} is {row['action']}/{row['status']}: only a proposal, an observed "
                         "repair or an undone change can be decided")
    if row["decided_by"] is not None and row["status"] in _DECIDABLE:
        decision = db.one("SELECT action FROM selfheal.audit WHERE id = $1", ("int8",), (row["decided_by"],))
        if decision and decision["action"] != "reject":
            raise ValueError(f"audit row {audit_id} was already approved (audit row {row['decided_by']})")
    return row


def approve(plpy, audit_id: int) -> int:
    """Apply a proposal (or an undone change) through the same safe path as any repair.

    The repair is planned again from its error with fresh facts; it runs only if it is still
    the same repair. Returns the audit id of the applied change.
    """
    db = _Db(plpy)
    policy, settings = load_policy(db)
    row = _decidable(db, audit_id)
    if row["event_id"] is None:
        raise ValueError(f"audit row {audit_id} came from no error; declare it again with selfheal.add_alias")
    found = db.one(f"SELECT {_EVENT_COLUMNS} FROM selfheal.error_event WHERE id = $1", ("int8",), (row["event_id"],))
    event = _event_of(found)
    approver = db.one("SELECT session_user::text AS u")["u"]

    def replan() -> Plan:
        catalog = _catalog_for(db, event)
        fresh = _plan_with_related(db, event, found, catalog, policy, approved=True)
        if fresh.status != "apply":
            return fresh
        same = (fresh.action, fresh.table.schema, fresh.table.name, fresh.column) == \
            (row["action"], row["schema_name"], row["table_name"], row["column_name"])
        if not same:
            return Plan("refused", f"the facts changed since audit row {audit_id}: now {fresh.reason}")
        # Approval lifts the evidence's doubt, not the rules: the repair must still be one the
        # role that failed may cause, and one the approver may make.
        for role in (found["username"], approver):
            checked = authority.authorize(fresh, event, _rights(db, role, fresh.table), policy, catalog)
            if checked.status != "apply":
                return checked
        return fresh

    plan, status, applied_id = apply_plan(db, settings, row["event_id"], replan,
                                          _verifier(db, event, found["username"]))
    if status != "applied":
        raise RuntimeError(f"audit row {audit_id} was not applied ({status}): {plan.reason}")
    db.one("UPDATE selfheal.audit SET reason = 'approved by ' || session_user || ': ' || reason WHERE id = $1",
           ("int8",), (applied_id,))
    db.one("UPDATE selfheal.audit SET decided_by = $2 WHERE id = $1 AND status <> 'applied'",
           ("int8", "int8"), (audit_id, applied_id))
    db.one("DELETE FROM selfheal.rejection WHERE schema_name = $1 AND table_name = $2 AND name = $3 AND action = $4",
           ("text", "text", "text", "text"), (row["schema_name"], row["table_name"], row["column_name"],
                                               planner.decision_action(row["action"], row["evidence"])))
    db.one("UPDATE selfheal.error_event SET status = 'healed', audit_id = $2, processed_at = now() "
           "WHERE audit_id = $1 AND status IN ('pending_approval', 'observed', 'refused')",
           ("int8", "int8"), (audit_id, applied_id))
    return applied_id


def reject(plpy, audit_id: int, why: str | None = None) -> int:
    """Record that a proposal must not be applied; the same repair is then refused until approved."""
    db = _Db(plpy)
    row = _decidable(db, audit_id)
    if row["status"] == "applied":
        raise ValueError(f"audit row {audit_id} is an undone change, already rejected by its undo")
    table = Table(row["schema_name"], row["table_name"], ())
    reason = f"rejected by {db.one('SELECT session_user::text AS u')['u']}" + (f": {why}" if why else "")
    decision = Plan("applied", reason, action="reject", table=table, column=row["column_name"],
                    evidence={"proposal": audit_id})
    decided_by = _insert_audit(db, decision, "applied", row["event_id"])
    db.one("UPDATE selfheal.audit SET decided_by = $2 WHERE id = $1", ("int8", "int8"), (audit_id, decided_by))
    db.one("UPDATE selfheal.error_event SET status = 'refused', reason = $2 WHERE audit_id = $1 "
           "AND status IN ('pending_approval', 'observed')", ("int8", "text"), (audit_id, reason))
    _record_rejection(db, row, audit_id, decided_by)
    return decided_by


def _alias_ids(db: _Db, audit_id: int) -> tuple[set[int], list[Alias]]:
    """Ids of the aliases an audit row created, and the aliases they replaced."""
    rows = db.rows("SELECT id, replaces FROM selfheal.alias WHERE audit_id = $1", ("int8",), (audit_id,))
    replaced_ids = [r["replaces"] for r in rows if r["replaces"] is not None]
    restored = [a for a in _load_aliases(db, active=False) if a.id in replaced_ids]
    return {r["id"] for r in rows}, restored


_DATA_CHECK_FACTS = """
SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace AND t.typtype = 'b' AS builtin,
       c.relrowsecurity AS row_security,
       EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class k ON k.oid = i.inhrelid
                WHERE i.inhparent = c.oid AND NOT k.relispartition) AS inherited,
       (SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user) AS bypasses_rls,
       -- The planner folds index expressions and predicates, and loads expression statistics,
       -- so any query on such a table can run the owner's immutable functions.
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                WHERE (i.indrelid = c.oid OR i.indrelid IN (SELECT relid FROM pg_catalog.pg_partition_tree(c.oid)))
                  AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL))
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_statistic_ext s WHERE s.stxrelid = c.oid AND s.stxexprs IS NOT NULL)
         AS planner_runs_code
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
 WHERE c.oid = $1::pg_catalog.regclass
"""


def _column_has_data(db: _Db, table: Table, column: str, added_as: dict | None) -> bool:
    """Whether the column holds anything but the default selfheal gave it.

    Nothing the table's owner controls may run here with the caller's rights: the comparison
    is with the default selfheal recorded (never the column's current default), on the
    built-in type selfheal gave it (so only pg_catalog's operators run), and the table is read
    only where no row-level security policy would run for the caller and the planner would
    fold none of the owner's expressions. Otherwise the column counts as holding data, and
    only undo(..., force => true) drops it.
    """
    facts = db.one(_DATA_CHECK_FACTS, ("text", "text"), (table.qualified, column))
    recorded = (added_as or {}).get("type")
    if facts is None or not facts["builtin"] or (recorded and facts["type"] != recorded) or facts["inherited"] \
            or (facts["row_security"] and not facts["bypasses_rls"]) or facts["planner_runs_code"]:
        return True
    ident = planner.quote_ident(column)
    default = (added_as or {}).get("default")
    condition = f"{ident} IS DISTINCT FROM ({default})" if default else f"{ident} IS NOT NULL"
    return bool(db.plpy.execute(f"SELECT EXISTS (SELECT 1 FROM {table.qualified} WHERE {condition}) AS x")[0]["x"])


AS_ROLE_FUNCTION = "pg_temp.selfheal_as_role"


def as_table_owner(db: _Db, table: str, body: str, argument: str | None = None) -> str | None:
    """Run a PL/pgSQL body as the owner of `table` (see as_role); a plain SET ROLE would not do."""
    owner = db.one("SELECT c.relowner::pg_catalog.regrole::text AS owner FROM pg_catalog.pg_class c "
                   "WHERE c.oid = $1::pg_catalog.regclass", ("text",), (table,))["owner"]
    return as_role(db, owner, body, argument, what=f"the owner of {table}")


def as_role(db: _Db, role: str, body: str, argument: str | None = None, what: str | None = None) -> str | None:
    """Run a PL/pgSQL body (with `argument` and a text variable `result`) as `role` (a quoted
    role name), and return what it returns.

    Anything the body sets off (triggers, defaults, index expressions, operators, functions
    it plans) runs with that role's rights, never the caller's. A plain SET ROLE would not do:
    a trigger could RESET ROLE back to an administrator. Inside a SECURITY DEFINER function the
    role owns, PostgreSQL refuses any change of role, as it does for its own maintenance
    (CVE-2022-1552). The function exists only inside this subtransaction. Deferred triggers
    must be fired by the body itself (SET CONSTRAINTS ALL IMMEDIATE), or they would run at
    commit with the caller's rights.
    """
    tag = "$selfheal_as_role$"
    if tag in body:
        raise ValueError("the body must not contain the function's quoting tag")
    plpy = db.plpy
    before = _session_fingerprint(db)
    try:
        return _run_as_role(db, role, body, argument, what, tag, before)
    except _SessionTampered as exc:
        # Prepared statements and session locks outlive a rollback: the session cannot be trusted.
        plpy.fatal(f"selfheal: {exc}; this session was ended so that nothing left in it can run with "
                   "your rights")


class _SessionTampered(Exception):
    pass


def _run_as_role(db: _Db, role: str, body: str, argument, what, tag: str, before: str):
    plpy = db.plpy
    with plpy.subtransaction():
        plpy.execute(f"CREATE FUNCTION {AS_ROLE_FUNCTION}(argument text) RETURNS text LANGUAGE plpgsql "
                     f"VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp "
                     f"AS {tag} DECLARE result text; BEGIN {body} END {tag}")
        try:
            plpy.execute(f"ALTER FUNCTION {AS_ROLE_FUNCTION}(text) OWNER TO {role}")
        except plpy.SPIError as exc:
            raise RuntimeError(f"this needs to run as {what or role}: call it as a superuser "
                               f"or as a member of role {role}") from exc
        result = plpy.execute(plpy.prepare(f"SELECT {AS_ROLE_FUNCTION}($1) AS v", ["text"]), [argument])[0]["v"]
        plpy.execute(f"DROP FUNCTION {AS_ROLE_FUNCTION}(text)")
        if _session_fingerprint(db) != before:
            # Raised inside the subtransaction: temporary objects and settings it left roll back.
            raise _SessionTampered(f"code run as {what or role} left objects or settings in this session "
                                   "(temporary objects, SET, prepared statements, cursors, LISTEN or locks)")
    return result


# What code run as another role could leave behind in this session for the caller to trip on
# later: temporary objects (found before the caller's own schemas), settings changed with SET,
# prepared statements, cursors, LISTEN and session advisory locks. Settings of unregistered
# custom names (SET app.x) are not listed by PostgreSQL and are not seen here.
_SESSION_FINGERPRINT = """
SELECT pg_catalog.md5(coalesce(pg_catalog.string_agg(x, ',' ORDER BY x), '')) AS f FROM (
    SELECT 'set:' || name || '=' || setting FROM pg_catalog.pg_settings WHERE source = 'session'
    UNION ALL SELECT 'class:' || oid FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()
    UNION ALL SELECT 'proc:' || oid FROM pg_catalog.pg_proc WHERE pronamespace = pg_catalog.pg_my_temp_schema()
    UNION ALL SELECT 'type:' || oid FROM pg_catalog.pg_type WHERE typnamespace = pg_catalog.pg_my_temp_schema()
    UNION ALL SELECT 'operator:' || oid FROM pg_catalog.pg_operator WHERE oprnamespace = pg_catalog.pg_my_temp_schema()
    UNION ALL SELECT 'prepared:' || name || ':' || prepare_time || ':' || statement
                FROM pg_catalog.pg_prepared_statements
    UNION ALL SELECT 'cursor:' || name FROM pg_catalog.pg_cursors
    UNION ALL SELECT 'listen:' || c FROM pg_catalog.pg_listening_channels() AS c
    UNION ALL SELECT 'lock:' || classid || '.' || objid || '.' || objsubid || ':' || mode FROM pg_catalog.pg_locks
               WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()) AS s(x)
"""


def _session_fingerprint(db: _Db) -> str:
    return db.one(_SESSION_FINGERPRINT)["f"]


# ---------------------------------------------------------------------------------------
# Event triggers: the application's own DDL


_snapshots: dict[int, dict[int, drift.Shape]] = {}  # transaction id -> table oid -> shape before the DDL


def _shape(db: _Db, table_oid) -> drift.Shape | None:
    rows = db.rows("""SELECT n.nspname, c.relname, a.attnum, a.attname
                        FROM pg_catalog.pg_class c
                        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                       WHERE c.oid = $1""", ("oid",), (table_oid,))
    if not rows:
        return None
    return drift.Shape(rows[0]["nspname"], rows[0]["relname"], {r["attnum"]: r["attname"] for r in rows})


def _table_facts(db: _Db, schema: str, name: str) -> Table | None:
    return load_catalog(db, {name}, set()).table(schema, name)


def _xid(db: _Db) -> int:
    return db.one("SELECT pg_catalog.txid_current() AS x")["x"]


def _timeline(db: _Db, tag: str, schema, table, change: str, detail: dict) -> None:
    db.one("""INSERT INTO selfheal.schema_event (command_tag, schema_name, table_name, change, detail)
              VALUES ($1, $2, $3, $4, $5::jsonb)""", ("text", "text", "text", "text", "text"),
           (tag, schema, table, change, json.dumps(detail, sort_keys=True)))


def ddl_start(plpy, tag: str) -> None:
    """Before ALTER TABLE or DROP TABLE: snapshot the tables it names and drop their compat views,
    which would otherwise block the DDL.

    An unqualified name is taken in every schema that has such a table: the shim runs with a
    pinned search_path, so the DDL's own resolution is not known here. Views dropped for a
    table the DDL did not touch are rebuilt at ddl_command_end, from the snapshot.
    """
    if _own_ddl():
        return
    db = _Db(plpy)
    query = db.one("SELECT pg_catalog.current_query() AS q")["q"] or ""
    refs = sqlscan.ddl_targets(query)
    # Only the named tables' aliases matter, unless the DDL's own text is not known.
    aliases = _aliases_of_tables(db, {r.name for r in refs}) if refs else _load_aliases(db)
    watched = {(a.schema, a.table) for a in aliases}
    if not refs:
        # The DDL runs inside a function, so its text is not the statement: every table with
        # compat views may be the target, and their views must not be in its way.
        refs = [sqlscan.RelationRef(table, schema) for schema, table in sorted(watched)]
    rename = sqlscan.mentions_rename(query) or sqlscan.mentions_drop_column(query)
    added = sqlscan.ddl_added_columns(query)
    if not added and not sqlscan.ddl_targets(query):
        # DDL from inside a function (EXECUTE, a migration tool's DO block): its text, if any, is in
        # the statement's string literals.
        added = [found for tok in sqlscan.tokenize(query) if tok.kind == "string"
                 for found in sqlscan.ddl_added_columns(tok.value)]
        refs += [ref for ref, _ in added if ref not in refs]
    if not refs or (not watched and not rename and not added):
        return  # nothing of selfheal's is concerned: the common case stays cheap
    snapshot = _snapshots.setdefault(_xid(db), {})
    with _event_trigger_guard():
        _hand_over_checks(db, added)
        for ref in refs:
            for row in db.rows("""SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c
                                    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                   WHERE c.relname = $1 AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
                                     AND ($2::text IS NULL OR n.nspname = $2)
                                     AND n.nspname <> ALL ($3)""",
                               ("text", "text", "text[]"), (ref.name, ref.schema, catalog.EXCLUDED_SCHEMAS)):
                _snapshot_and_clear(db, row, aliases, watched, rename, snapshot, added)


def _snapshot_and_clear(db: _Db, row: dict, aliases, watched: set, rename: bool, snapshot: dict,
                        added: list) -> None:
    key = (row["nspname"], row["relname"])
    if key in watched:
        table = _table_facts(db, *key)
        for view in planner.compat_view_columns(table, [a for a in aliases if (a.schema, a.table) == key]):
            db.run(planner.drop_view_ddl(table.schema, view))
    for ref, column in added:
        if ref.name == row["relname"] and ref.schema in (None, row["nspname"]):
            _hand_over(db, key, column)
    if rename or key in watched:
        snapshot[row["oid"]] = _shape(db, row["oid"])  # after the hand-over: not taken for a drop


_SELFHEAL_ADDED = """
SELECT a.id, a.schema_name, a.table_name, a.column_name, a.evidence::text AS evidence
  FROM selfheal.audit a
 WHERE a.action = 'add_column' AND a.status = 'applied' AND a.undone_by IS NULL
   AND a.table_name = $1 AND a.column_name = $2 AND ($3::text IS NULL OR a.schema_name = $3)
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute t
                WHERE t.attrelid = pg_catalog.to_regclass(pg_catalog.quote_ident(a.schema_name) || '.'
                                                          || pg_catalog.quote_ident(a.table_name))
                  AND t.attname = a.column_name AND NOT t.attisdropped)
"""


def _hand_over_checks(db: _Db, added: list) -> None:
    """Before the application's own ADD COLUMN of a name selfheal added: fail the migration, with
    what to do, where the column holds data or the unqualified table is ambiguous."""
    for ref, column in added:
        rows = db.rows(_SELFHEAL_ADDED, ("text", "text", "text"), (ref.name, column, ref.schema))
        if len(rows) > 1:
            raise RuntimeError(f"selfheal added column {column!r} to " + ", ".join(
                f"{r['schema_name']}.{r['table_name']} (audit {r['id']})" for r in rows)
                + "; qualify the table in the migration so selfheal hands over the right one")
        for row in rows:
            evidence = json.loads(row["evidence"])
            table = _table_facts(db, row["schema_name"], row["table_name"])
            derived = evidence.get("strategy") in planner.DERIVED_IN_TABLE
            if not derived and _column_has_data(db, table, column, evidence.get("added_as")):
                raise RuntimeError(
                    f"selfheal added {table.label}.{column} (audit {row['id']}) and it holds data the migration "
                    f"would replace; keep it by removing this ADD COLUMN from the migration, or give it up with "
                    f"SELECT selfheal.undo({row['id']}, force => true) and run the migration again")


def _hand_over(db: _Db, key: tuple[str, str], column: str) -> None:
    """The application's migration adds a column selfheal added earlier: selfheal's goes first,
    so the migration's own type and default win (its views were dropped just before)."""
    row = db.one(_SELFHEAL_ADDED, ("text", "text", "text"), (key[1], column, key[0]))
    if row is None:
        return
    table = _table_facts(db, *key)
    evidence = json.loads(row["evidence"])
    ddl = (planner.drop_sync_ddl(table, column) if evidence.get("strategy") in planner.DERIVED_IN_TABLE else []) \
        + [f"ALTER TABLE {table.qualified} DROP COLUMN IF EXISTS {planner.quote_ident(column)}"]
    for statement in ddl:
        db.run(statement)
    plan = Plan("applied", f"handed over to the application's own migration, which adds {column!r} itself: "
                f"selfheal's column (audit {row['id']}) held nothing but its default and was dropped first",
                action="undo", table=table, column=column, ddl=ddl, lock_profile="within the migration's own lock")
    handed = _insert_audit(db, plan, "applied", None, undo_of=row["id"])
    db.one("UPDATE selfheal.audit SET undone_by = $2 WHERE id = $1", ("int8", "int8"), (row["id"], handed))
    db.one("DELETE FROM selfheal.backfill_job WHERE audit_id = $1", ("int8",), (row["id"],))


def _audit_automatic(db: _Db, table: Table, action: str, status: str, column: str, reason: str,
                     evidence: dict, ddl: list[str]) -> int:
    plan = Plan(status, reason, action=action, table=table, column=column, ddl=ddl, evidence=evidence,
                lock_profile="catalog only: compat views rebuilt after the application's own DDL")
    return _insert_audit(db, plan, status, None)


def _apply_drift(db: _Db, tag: str, before: drift.Shape, after: drift.Shape, aliases: list[Alias]) -> None:
    change = drift.compare(before, after, aliases)
    watched = bool(aliases) or change.added
    for what, detail in change.events:
        # A drop is always kept: a name once dropped is never added back empty (planner).
        if watched or what == "column dropped":
            _timeline(db, tag, after.schema, after.name, what, detail)
    for old, new in change.rewritten:
        db.one("UPDATE selfheal.alias SET schema_name = $2, table_name = $3, expression = $4 WHERE id = $1",
               ("int8", "text", "text", "text"), (old.id, new.schema, new.table, new.expression))
    table = _table_facts(db, after.schema, after.name)
    for alias, why in change.broken + change.retired:
        db.one("UPDATE selfheal.alias SET active = false WHERE id = $1", ("int8",), (alias.id,))
        _audit_automatic(db, table, "none", "needs_review", alias.legacy_name,
                         f"alias {alias.legacy_name!r} no longer served: {why}", {"alias": alias.legacy_name}, [])
    current = [a for a in _aliases_of_tables(db, {after.name}) if (a.schema, a.table) == (after.schema, after.name)]
    added = []
    for alias in change.added:
        if (alias.kind, alias.legacy_name) in {(c.kind, c.legacy_name) for c in current + added}:
            continue
        refusal = _drift_refusal(db, table, current + added + [alias])
        if refusal:
            _timeline(db, tag, after.schema, after.name, "legacy name not served", {"name": alias.legacy_name,
                                                                                    "why": refusal})
            _audit_automatic(db, table, "none", "needs_review", alias.legacy_name,
                             f"renamed, but the old name {alias.legacy_name!r} is not served: {refusal}",
                             {"rename": alias.legacy_name}, [])
            continue
        added.append(alias)
    change.added = added
    final = current + added
    ddl = planner.rebuild_compat(table, final, final)
    try:
        with db.plpy.subtransaction():
            for statement in ddl:
                db.run(statement)
    except db.plpy.SPIError as exc:
        # Never block the application's DDL: the views stay down and the reason is on record.
        _timeline(db, tag, after.schema, after.name, "compat views not rebuilt", {"error": str(exc)})
        db.plpy.warning(f"selfheal: compat views of {after.schema}.{after.name} could not be rebuilt: {exc}")
        return
    for alias in change.added:
        what = "table" if alias.kind == "relation" else "column"
        audit_id = _audit_automatic(db, table, "add_alias", "applied", alias.legacy_name,
                                    f"{what} renamed: the old name {alias.legacy_name!r} is served by the compat layer",
                                    {"rename": alias.legacy_name}, ddl)
        _record_alias(db, alias, audit_id)


def _drift_refusal(db: _Db, table: Table, aliases: list[Alias]) -> str | None:
    """Why a rename seen by the event triggers must not be served: the same scope, extension and
    name checks a repair passes."""
    policy, _ = load_policy(db)
    if not policy.in_scope(table.schema, table.name):
        return f"{table.label} is outside selfheal's scope (policy scope)"
    rights = _rights(db, None, table)
    if rights.extension:
        return f"{table.label} belongs to extension {rights.extension}"
    # The names of the views these aliases call for: a column alias is served by the table's
    # own view, so its old name is no relation's and is not looked up (with 1,000 aliases, old
    # column names matched the aliases of every table that had a column so named).
    views = {table.name} | {planner.compat_view_name(a) for a in aliases}
    conflicts = planner.alias_conflicts(table, aliases, load_catalog(db, views, set()))
    return "; ".join(conflicts) or None


def ddl_end(plpy, tag: str, table_oids: list) -> None:
    """After DDL: follow renames, mark broken aliases, rebuild compat views, and retire any legacy
    name that a relation or type of another schema now has."""
    if _own_ddl():
        return
    db = _Db(plpy)
    snapshot = _snapshots.pop(_xid(db), {})
    with _event_trigger_guard():
        if tag in ("ALTER TABLE", "DROP TABLE"):
            shapes = {oid: _shape(db, oid) for oid in set(table_oids or []) | set(snapshot)}
            shapes = {oid: (snapshot.get(oid) or after, after) for oid, after in shapes.items() if after is not None}
            aliases = _aliases_of_tables(db, {before.name for before, _ in shapes.values()})
            for before, after in shapes.values():
                table_aliases = [a for a in aliases if (a.schema, a.table) == (before.schema, before.name)]
                if table_aliases or before != after:
                    _apply_drift(db, tag, before, after, table_aliases)
        _retire_shadowing(db, tag)


def _retire_shadowing(db: _Db, tag: str) -> None:
    """A compat view must never answer for another relation or type of its name in the schema it
    serves: routed roles find its compat schema just before that schema. One created, renamed or
    moved there since retires the legacy names that view serves. Temporary objects are one
    session's own and retire nothing."""
    # A column alias is served by its own table's view, whose name no one else can take.
    aliases = tuple(map(_alias_of, db.rows(f"SELECT {_ALIAS_COLUMNS} FROM selfheal.alias WHERE active "
                                           "AND kind = 'relation' ORDER BY id")))
    views = {planner.compat_view_name(a) for a in aliases}
    if not views:
        return
    taken = _names_taken(db, views)
    touched = set()
    for alias in aliases:
        view = planner.compat_view_name(alias)
        if (alias.schema, view) not in taken or view == alias.table:
            continue
        db.run(planner.drop_view_ddl(alias.schema, view))
        db.one("UPDATE selfheal.alias SET active = false WHERE id = $1", ("int8",), (alias.id,))
        touched.add((alias.schema, alias.table))
        other = f"{alias.schema}.{view}"
        _timeline(db, tag, alias.schema, alias.table, "legacy name retired", {"name": alias.legacy_name,
                                                                              "taken_by": [other]})
        _audit_automatic(db, Table(alias.schema, alias.table, ()), "none", "needs_review", alias.legacy_name,
                         f"{other} now has the name of the compat view {view}, which would answer "
                         f"for it to routed roles: {alias.legacy_name!r} is no longer served", {}, [])
    # A table's other views list its column aliases too: rebuilt, they serve what selfheal.alias says.
    for schema, name in sorted(touched):
        table = _table_facts(db, schema, name)
        current = [a for a in _aliases_of_tables(db, {name}) if (a.schema, a.table) == (schema, name)]
        if table is not None:
            for statement in planner.rebuild_compat(table, current, current):
                db.run(statement)


def ddl_dropped(plpy, schemas: list, names: list) -> None:
    """After DROP TABLE: aliases of a dropped table can no longer be served."""
    if _own_ddl():
        return
    db = _Db(plpy)
    dropped = {(schema, name) for schema, name in zip(schemas or [], names or []) if not db.one(
        "SELECT 1 AS x FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2", ("text", "text"), (schema, name))}
    with _event_trigger_guard():
        aliases = [a for a in _aliases_of_tables(db, {n for _, n in dropped}) if (a.schema, a.table) in dropped]
        _drop_write_functions(db, aliases)
        for alias in aliases:
            db.one("UPDATE selfheal.alias SET active = false WHERE id = $1", ("int8",), (alias.id,))
            _timeline(db, "DROP TABLE", alias.schema, alias.table, "alias broken", {"alias": alias.legacy_name})
            gone = Table(alias.schema, alias.table, ())  # only its names: the table no longer exists
            plan = Plan("needs_review", f"alias {alias.legacy_name!r} no longer served: its table "
                        f"{alias.schema}.{alias.table} was dropped", table=gone, column=alias.legacy_name)
            _insert_audit(db, plan, plan.status, None)


def _drop_write_functions(db: _Db, aliases: list[Alias]) -> None:
    """The write-trigger functions of a dropped table's compat views (PostgreSQL dropped the
    views, not the functions). Never fails the application's DROP TABLE: one left behind is
    harmless, as it is never called."""
    by_table: dict[tuple[str, str], list[Alias]] = {}
    for alias in aliases:
        by_table.setdefault((alias.schema, alias.table), []).append(alias)
    for (schema, name), its_aliases in by_table.items():
        if not any(a.writable for a in its_aliases):
            continue
        gone = Table(schema, name, ())
        for ddl in planner.drop_write_functions_ddl(gone, planner.compat_view_columns(gone, its_aliases)):
            try:
                with db.plpy.subtransaction():
                    db.run(ddl)
            except db.plpy.SPIError as exc:
                db.plpy.warning(f"selfheal: a write function of dropped {schema}.{name} stays: {exc}")


# ---------------------------------------------------------------------------------------
# DROP EXTENSION: what selfheal made at run time is not part of the extension, so it goes first

# Relations, routines and types selfheal made at run time in its compat schemas; extension
# members (selfheal_compat's own) are PostgreSQL's to drop.
# Views and functions selfheal made at run time in its compat schemas (those its owner owns);
# extension members are PostgreSQL's to drop, and anything else stops the final DROP SCHEMA.
_COMPAT_SCHEMAS = """
SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
 WHERE (n.nspname = 'selfheal_compat' OR n.nspname LIKE 'selfheal\\_compat\\_%')
   AND n.nspowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
"""
_RUNTIME_OBJECTS = f"""
WITH compat AS ({_COMPAT_SCHEMAS})
SELECT 'VIEW' AS kind, pg_catalog.format('%I.%I', n.nspname, c.relname) AS ident, c.oid AS objid,
       'pg_catalog.pg_class'::regclass AS classid
  FROM pg_catalog.pg_class c JOIN compat n ON n.oid = c.relnamespace
 WHERE c.relkind = 'v'
UNION ALL
SELECT 'FUNCTION', pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)),
       p.oid, 'pg_catalog.pg_proc'::regclass
  FROM pg_catalog.pg_proc p JOIN compat n ON n.oid = p.pronamespace
 WHERE p.prokind = 'f'
"""
_RUNTIME_OBJECTS = f"""
SELECT kind, ident FROM ({_RUNTIME_OBJECTS}) o
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype = 'e')
"""

# selfheal's own tables, which DROP EXTENSION drops after this: locked NOWAIT here, so the drop
# never waits in their lock queue while it holds the app's tables.
_OWN_TABLES = """
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS ident
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('selfheal', 'selfheal_compat') AND c.relkind IN ('r', 'p', 'v')
"""

# Triggers on the app's tables that call a function selfheal made (in-table derived columns).
_SYNC_TRIGGERS = """
SELECT pg_catalog.format('%I', t.tgname) AS trigger, t.tgrelid::regclass::text AS relation
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE (n.nspname = 'selfheal_compat' OR n.nspname LIKE 'selfheal\\_compat\\_%')
   AND NOT t.tgisinternal
   AND t.tgrelid NOT IN (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace cn
                            ON cn.oid = c.relnamespace WHERE cn.nspname LIKE 'selfheal\\_compat\\_%')
"""

def drop_extension(plpy, query: str) -> None:
    """Before DROP EXTENSION selfheal: unroute every routed role, drop the sync triggers on the
    app's tables and every compat schema with what selfheal made in it, and mark the log so a
    re-created selfheal never repairs what this one already handled. Columns selfheal added
    stay: they hold the app's data. The drop is one transaction, so a failure here changes
    nothing."""
    cascade = sqlscan.extension_drop(query, "selfheal")
    if cascade is None:
        return
    db = _Db(plpy)
    # The event trigger fires before PostgreSQL checks the right to drop; leave a drop that will
    # be refused to PostgreSQL (its error undoes this work anyway, but it must cost nothing).
    if not db.one("""SELECT r.rolsuper OR e.extowner = r.oid AS may
                       FROM pg_catalog.pg_roles r, pg_catalog.pg_extension e
                      WHERE r.rolname = session_user AND e.extname = 'selfheal'""")["may"]:
        return
    _, settings = load_policy(db)
    behaviour = " CASCADE" if cascade else ""
    with _event_trigger_guard():
        for role in sorted({r["role"] for r in _search_path_settings(db)
                            if r["role"] and planner.routed(r["path"])}):
            plpy.notice(f"selfheal: {disable_compat(plpy, role)}")
        triggers = db.rows(_SYNC_TRIGGERS)
        objects = db.rows(_RUNTIME_OBJECTS)
        schemas = sorted(r["nspname"] for r in db.rows(_COMPAT_SCHEMAS) if r["nspname"] != "selfheal_compat")
        own_tables = [r["ident"] for r in db.rows(_OWN_TABLES)]

        def work():
            _lock_nowait(db, sorted({t["relation"] for t in triggers}
                                    | {o["ident"] for o in objects if o["kind"] == "VIEW"}) + own_tables)
            for t in triggers:
                db.run(f"DROP TRIGGER {t['trigger']} ON {t['relation']}")
            for kind in ("VIEW", "FUNCTION"):
                idents = [o["ident"] for o in objects if o["kind"] == kind]
                if idents:
                    db.run(f"DROP {kind} {', '.join(idents)}{behaviour}")
            if schemas:
                db.run(f"DROP SCHEMA {', '.join(planner.quote_ident(s) for s in schemas)}{behaviour}")
        try:
            _with_lock_retries(db, settings, work)
        except _Retry as exc:
            raise RuntimeError(f"DROP EXTENSION selfheal stopped, nothing was changed: a compat view or a table "
                               f"with a sync trigger is in use ({exc}); try again") from None
        except plpy.SPIError as exc:
            detail = getattr(exc, "detail", None)
            raise RuntimeError(f"DROP EXTENSION selfheal stopped, nothing was changed: {exc}"
                               + (f" ({detail})" if detail else "")
                               + "; drop or redefine those objects first, or add CASCADE to drop them too") from None
    plpy.log(logreader.DROP_MARKER)
    plpy.notice("selfheal: the schema selfheal stays, empty, as PostgreSQL keeps an extension's own schema; "
                "DROP SCHEMA selfheal removes it")


# ---------------------------------------------------------------------------------------
# Entry


def entry(plpy, function, *args):
    """Call an entry point; turn selfheal's own refusals into clear PostgreSQL errors."""
    try:
        return function(plpy, *args)
    except naming.RefusedName as exc:
        plpy.error(f"selfheal: {exc}", sqlstate="42602")  # invalid_name
    except ValueError as exc:
        plpy.error(f"selfheal: {exc}", sqlstate="22023")  # invalid_parameter_value
    except RuntimeError as exc:
        plpy.error(f"selfheal: {exc}", sqlstate="55000")  # object_not_in_prerequisite_state
