"""Applying a plan: per-table advisory lock, NOWAIT locks with retries, the plan made again under
the lock, DDL, verification and the audit row, all or nothing."""

from __future__ import annotations

import json
import time

from ..core import authority, errors, planner, sqlscan
from ..core.planner import Alias, Event, Plan
from .adapter import ADVISORY_LOCK_CLASS, LOCK_NOT_AVAILABLE, _Db
from .facts import _role_search_path
from .roles import as_table_owner


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
