"""Decisions on applied changes and proposals: undo, approve, reject."""

from __future__ import annotations

import json

from ..core import authority, planner
from ..core.planner import Alias, Plan, Table
from .adapter import _Db
from .apply import _insert_audit, _verifier, apply_plan
from .facts import _catalog_for, _column_has_data, _load_aliases, _rights, load_catalog, load_policy
from .heal import _EVENT_COLUMNS, _event_of, _plan_with_related


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
