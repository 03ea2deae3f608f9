"""The only module that talks to PostgreSQL: it gathers facts, applies plans, and audits.

Every entry point receives `plpy` from a thin SQL function. A plan is applied inside a
subtransaction together with its audit row, under a per-table advisory lock and a short
lock_timeout, so a repair is either wholly there or not there at all.
"""

from __future__ import annotations

import json
import time

from . import errors, naming, planner
from .planner import Alias, Catalog, Column, Event, Plan, Policy, Table

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
ADVISORY_LOCK_CLASS = 0x5E1F  # first key of selfheal's advisory locks: one namespace for all of them
MAX_MESSAGE_CHARS = 4_000
MAX_STATEMENT_CHARS = 100_000

_EXCLUDED_SCHEMAS = ["pg_catalog", "information_schema", "pg_toast", "selfheal", "selfheal_compat"]


class _Db:
    """Prepared-statement helper over plpy; plans are cached per backend."""

    _plans: dict = {}

    def __init__(self, plpy):
        self.plpy = plpy

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
        self.plpy.execute(ddl)


# ---------------------------------------------------------------------------------------
# Facts


def load_policy(db: _Db) -> tuple[Policy, dict]:
    settings = {r["name"]: r["value"] for r in db.rows("SELECT name, value FROM selfheal.policy")}
    return Policy.from_settings(settings), settings


def _load_aliases(db: _Db, active: bool = True) -> tuple[Alias, ...]:
    return tuple(
        Alias(r["schema_name"], r["table_name"], r["legacy_name"], kind=r["kind"],
              expression=r["expression"], style=r["style"], source=r["source"], id=r["id"])
        for r in db.rows("SELECT id, schema_name, table_name, legacy_name, kind, expression, style, source "
                         "FROM selfheal.alias WHERE active = $1 ORDER BY id", ("bool",), (active,))
    )


_TABLES_SQL = """
SELECT n.nspname AS schema_name, c.relname AS table_name, c.reltuples::float8 AS row_estimate,
       (SELECT max(attnum) FROM pg_catalog.pg_attribute WHERE attrelid = c.oid AND attnum > 0) AS attnum_high,
       (SELECT coalesce(json_agg(json_build_object(
                  'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                  'attnum', a.attnum, 'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid))
                ORDER BY a.attnum), '[]')
          FROM pg_catalog.pg_attribute a
          LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::text AS columns,
       (SELECT coalesce(json_agg(a.attname ORDER BY k.ord), '[]')
          FROM pg_catalog.pg_index i
          CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = c.oid AND i.indisprimary)::text AS primary_key,
       (SELECT count(*) FROM selfheal.audit au
         WHERE au.action = 'add_column' AND au.status = 'applied' AND au.undone_by IS NULL
           AND au.schema_name = n.nspname AND au.table_name = c.relname)::int AS added
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname <> ALL ($3) AND n.nspname NOT LIKE 'pg\\_%'
   AND (c.relname = ANY ($1) OR replace(lower(c.relname), '_', '') = ANY ($2))
"""


def load_catalog(db: _Db, names: set[str], keys: set[str]) -> Catalog:
    aliases = _load_aliases(db)
    related = {a.table for a in aliases if a.legacy_name in names or a.table in names}
    names = set(names) | related
    keys = set(keys) | {naming.fold_key(n) for n in related}
    tables = []
    for r in db.rows(_TABLES_SQL, ("text[]", "text[]", "text[]"),
                     (sorted(names), sorted(keys), _EXCLUDED_SCHEMAS)):
        columns = tuple(Column(c["name"], c["type"], c["attnum"], c["default"]) for c in json.loads(r["columns"]))
        tables.append(Table(r["schema_name"], r["table_name"], columns,
                            primary_key=tuple(json.loads(r["primary_key"])),
                            row_estimate=r["row_estimate"], attnum_high=r["attnum_high"] or 0,
                            columns_added_by_selfheal=r["added"]))
    views = {r["relname"]: tuple(r["columns"]) for r in db.rows(
        "SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum) AS columns "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
        "WHERE c.relnamespace = 'selfheal_compat'::pg_catalog.regnamespace AND c.relkind = 'v' GROUP BY c.relname")}
    return Catalog(tuple(tables), aliases, views)


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
                with plpy.subtransaction():
                    db.one("SELECT pg_catalog.set_config('lock_timeout', $1, true)", ("text",), (lock_timeout,))
                    return work()
            except plpy.SPIError as exc:
                if getattr(exc, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                    raise
                if attempt + 1 < attempts:
                    time.sleep(backoff * (2 ** attempt))
        raise _Retry(f"the table stayed locked by another session through {attempts} attempts "
                     f"with lock_timeout {lock_timeout}")
    finally:
        db.one("SELECT pg_catalog.set_config('lock_timeout', $1, true)", ("text",), (previous,))


def _record_alias(db: _Db, alias: Alias, audit_id: int) -> None:
    replaced = db.one("UPDATE selfheal.alias SET active = false "
                      "WHERE active AND schema_name = $1 AND table_name = $2 AND legacy_name = $3 AND kind = $4 "
                      "RETURNING id",
                      ("text", "text", "text", "text"), (alias.schema, alias.table, alias.legacy_name, alias.kind))
    db.one("""INSERT INTO selfheal.alias (schema_name, table_name, legacy_name, kind, expression, style,
                                           source, audit_id, replaces)
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
           ("text", "text", "text", "text", "text", "text", "text", "int8", "int8"),
           (alias.schema, alias.table, alias.legacy_name, alias.kind, alias.expression, alias.style,
            alias.source, audit_id, replaced["id"] if replaced else None))


def apply_plan(db: _Db, settings: dict, event_id, replan) -> tuple[Plan, str, int | None]:
    """Lock the plan's table, plan again with fresh facts, apply the DDL and its audit row at once.

    Returns (final plan, status, audit id). status: applied | resolved | deferred | failed | the
    plan's own status when the fresh plan no longer applies.
    """
    first = replan()
    if first.status != "apply":
        return first, first.status, None

    def work():
        _lock_table_key(db, first.table.schema, first.table.name)
        fresh = replan()  # another session may have healed it while this one waited
        if fresh.status != "apply":
            return fresh, fresh.status, None
        started = time.monotonic()
        for statement in fresh.ddl:
            db.run(statement)
        elapsed = (time.monotonic() - started) * 1000.0
        audit_id = _insert_audit(db, fresh, "applied", event_id, elapsed)
        if fresh.alias is not None:
            _record_alias(db, fresh.alias, audit_id)
        return fresh, "applied", audit_id

    try:
        return _with_lock_retries(db, settings, work)
    except _Retry as exc:
        first.reason = f"deferred: {exc}; the next heal() tries again"
        return first, "deferred", _insert_audit(db, first, "deferred", event_id)
    except db.plpy.SPIError as exc:
        detail = f"{getattr(exc, 'sqlstate', '')}: {exc}"
        first.reason = f"the repair failed and was rolled back whole: {detail}"
        return first, "failed", _insert_audit(db, first, "failed", event_id, error=detail)


# ---------------------------------------------------------------------------------------
# Events


def _store_event(db: _Db, source: str, sqlstate, message, statement, hint) -> int:
    row = db.one(
        """INSERT INTO selfheal.error_event (source, sqlstate, message, statement, hint, signature, class, username)
           VALUES ($1, $2, $3, $4, $5, $6, $7, session_user) RETURNING id""",
        ("text", "text", "text", "text", "text", "text", "text"),
        (source, (sqlstate or "")[:5], (message or "")[:MAX_MESSAGE_CHARS],
         (statement or None) and statement[:MAX_STATEMENT_CHARS], (hint or None) and hint[:MAX_MESSAGE_CHARS],
         errors.signature(sqlstate, message), errors.classify(sqlstate)),
    )
    return row["id"]


_AUDITED = {"refused", "needs_review"}


def _process_event(db: _Db, policy: Policy, settings: dict, row) -> dict:
    event = Event(row["sqlstate"], row["message"], row["statement"], row["hint"])
    event_id = row["id"]

    def replan() -> Plan:
        return planner.plan(event, _catalog_for(db, event), policy)

    plan, status, audit_id = apply_plan(db, settings, event_id, replan)
    if audit_id is None and plan.status in _AUDITED:
        audit_id = _insert_audit(db, plan, plan.status, event_id)
    event_status = "healed" if status == "applied" else status
    db.one("""UPDATE selfheal.error_event
                 SET status = $2, reason = $3, audit_id = $4, attempts = attempts + 1, processed_at = now()
               WHERE id = $1""",
           ("int8", "text", "text", "int8"), (event_id, event_status, plan.reason, audit_id))
    return {"event_id": event_id, "status": event_status, "action": plan.action, "reason": plan.reason,
            "audit_id": audit_id, "ddl": _script(plan.ddl) if status == "applied" else None}


_EVENT_COLUMNS = "id, sqlstate, message, statement, hint"


def heal_error(plpy, sqlstate, message, statement=None, hint=None) -> list[dict]:
    db = _Db(plpy)
    policy, settings = load_policy(db)
    event_id = _store_event(db, "client", sqlstate, message, statement, hint)
    row = db.one(f"SELECT {_EVENT_COLUMNS} FROM selfheal.error_event WHERE id = $1", ("int8",), (event_id,))
    return [_process_event(db, policy, settings, row)]


def record_error(plpy, sqlstate, message, statement=None, hint=None) -> int:
    return _store_event(_Db(plpy), "client", sqlstate, message, statement, hint)


def heal(plpy) -> str:
    """Process every pending or deferred event; return a JSON summary."""
    db = _Db(plpy)
    policy, settings = load_policy(db)
    batch = int(settings.get("heal_batch_size", "1000"))
    summary: dict[str, int] = {"processed": 0}
    rows = db.rows(f"""SELECT {_EVENT_COLUMNS} FROM selfheal.error_event
                        WHERE status IN ('pending', 'deferred') ORDER BY id
                        LIMIT $1 FOR UPDATE SKIP LOCKED""", ("int4",), (batch,))
    for row in rows:
        result = _process_event(db, policy, settings, row)
        summary["processed"] += 1
        summary[result["status"]] = summary.get(result["status"], 0) + 1
    return json.dumps(summary, sort_keys=True)


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


def add_alias(plpy, table_oid, legacy_name: str, expression: str) -> int:
    """Declare legacy_name on a table as `expression`; served by the compat view."""
    db = _Db(plpy)
    policy, settings = load_policy(db)
    schema, name = _table_by_oid(db, table_oid)
    naming.validate_schema(schema)
    naming.validate_identifier(legacy_name, "alias name")
    if not (expression or "").strip():
        raise ValueError("an alias needs an expression over the table's columns")

    def replan() -> Plan:
        catalog = load_catalog(db, {name}, set())
        table = next(t for t in catalog.tables if t.schema == schema and t.name == name)
        alias = Alias(schema, name, legacy_name, expression=f"({expression})", source="user")
        return planner.plan_declared_alias(table, alias, catalog)

    plan, status, audit_id = apply_plan(db, settings, None, replan)
    if status != "applied":
        raise RuntimeError(f"alias {legacy_name!r} was not applied ({status}): {plan.reason}")
    return audit_id


def enable_compat(plpy, role_name: str) -> str:
    db = _Db(plpy)
    role = db.one("SELECT oid, rolname FROM pg_catalog.pg_roles WHERE rolname = $1", ("name",), (role_name,))
    if role is None:
        raise ValueError(f"role {role_name!r} does not exist")
    current = db.one("""SELECT substr(s, length('search_path=') + 1) AS path
                          FROM pg_catalog.pg_db_role_setting d, unnest(d.setconfig) AS s
                         WHERE d.setrole = $1 AND d.setdatabase = 0 AND s LIKE 'search_path=%'""",
                     ("oid",), (role["oid"],))
    path = planner.compat_search_path(current["path"] if current else None)
    quoted_role = planner.quote_ident(role_name)
    db.run(f"GRANT USAGE ON SCHEMA {planner.quote_ident(planner.COMPAT_SCHEMA)} TO {quoted_role}")
    if path is None:
        return f"role {role_name} already reads through {planner.COMPAT_SCHEMA}"
    db.run(f"ALTER ROLE {quoted_role} SET search_path = {path}")
    return f"role {role_name} now reads through {planner.COMPAT_SCHEMA} (search_path = {path}) from its next session"


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
        table = next((t for t in catalog.tables if t.schema == schema and t.name == name), None)
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
            if not force and _column_has_data(db, table, column):
                return Plan("refused", f"{schema}.{name}.{column} holds values other than its default; "
                                       "undo(id, force => true) drops them")
            ddl = planner.drop_column_ddl(table, column, aliases)
        return Plan("apply", f"undo of audit row {audit_id}", action="undo", table=table, column=column,
                    ddl=ddl, lock_profile="catalog only")

    plan, status, undo_id = apply_plan(db, settings, None, replan)
    if status != "applied":
        raise RuntimeError(f"audit row {audit_id} was not undone ({status}): {plan.reason}")
    db.one("UPDATE selfheal.audit SET undone_by = $2 WHERE id = $1", ("int8", "int8"), (audit_id, undo_id))
    db.one("UPDATE selfheal.audit SET undo_of = $2 WHERE id = $1", ("int8", "int8"), (undo_id, audit_id))
    # The alias this change replaced, if any, is served again.
    db.one("WITH undone AS (UPDATE selfheal.alias SET active = false WHERE audit_id = $1 RETURNING replaces) "
           "UPDATE selfheal.alias SET active = true WHERE id IN (SELECT replaces FROM undone)", ("int8",), (audit_id,))
    return undo_id


def _alias_ids(db: _Db, audit_id: int) -> tuple[set[int], list[Alias]]:
    """Ids of the aliases an audit row created, and the aliases they replaced."""
    rows = db.rows("SELECT id, replaces FROM selfheal.alias WHERE audit_id = $1", ("int8",), (audit_id,))
    replaced_ids = [r["replaces"] for r in rows if r["replaces"] is not None]
    restored = [a for a in _load_aliases(db, active=False) if a.id in replaced_ids]
    return {r["id"] for r in rows}, restored


def _column_has_data(db: _Db, table: Table, column: str) -> bool:
    col = table.column(column)
    ident = planner.quote_ident(column)
    condition = f"{ident} IS DISTINCT FROM ({col.default})" if col.default else f"{ident} IS NOT NULL"
    return bool(db.plpy.execute(f"SELECT EXISTS (SELECT 1 FROM {table.qualified} WHERE {condition}) AS x")[0]["x"])


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
