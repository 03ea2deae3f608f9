"""Who may cause which change. Pure: server/facts.py supplies the reporting role's rights.

selfheal changes a table only for a role that could legitimately have run the failing
statement against it: the role holds USAGE on the schema and the table privilege the
statement needs, the table lies inside the administrator's scope, and it belongs to no
extension. The reporting role is the session user that reported the error (heal_error,
record_error) or that the log names as having raised it (heal).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import errors, sqlscan
from .planner import Catalog, Event, Plan, Policy, Table

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
_WRITES = {"INSERT": ("INSERT",), "UPDATE": ("UPDATE",), "DELETE": ("DELETE",),
           "MERGE": ("INSERT", "UPDATE", "DELETE"), "COPY": ("INSERT",)}


@dataclass(frozen=True)
class Rights:
    """What the reporting role may do with one table, read from the catalog."""

    role: str | None
    role_exists: bool = True
    schema_usage: bool = False
    privileges: frozenset = frozenset()
    extension: str | None = None  # the extension the table belongs to, if any


def required_privileges(event: Event, table: Table, catalog: Catalog) -> tuple[str, ...]:
    """The table privileges (any one suffices) the failing statement needs on `table`."""
    verb, target = sqlscan.command(event.statement or "")
    if verb in _WRITES and target is not None and _names_table(target, table, catalog):
        return _WRITES[verb]
    if not event.statement and "of relation" in (event.message or ""):
        return ("INSERT", "UPDATE")  # PostgreSQL's shape for INSERT and UPDATE targets
    if not event.statement and errors.parse_copy_to_view(event.sqlstate, event.message):
        return ("INSERT",)
    return ("SELECT",)


def _names_table(ref: sqlscan.RelationRef, table: Table, catalog: Catalog) -> bool:
    if ref.name == table.name and ref.schema in (None, table.schema):
        return True
    return any(a.kind == "relation" and a.legacy_name == ref.name and (a.schema, a.table) == (table.schema, table.name)
               for a in catalog.aliases)


# Plans that change a table now or once approved: each must be one the reporting role may cause.
CHANGING = ("apply", "pending_approval", "observed")


def authorize(plan: Plan, event: Event, rights: Rights, policy: Policy, catalog: Catalog) -> Plan:
    """The plan itself when the reporting role may cause it; otherwise a refusal that says why.
    A proposal is checked as a repair is: nobody may leave proposals about tables they may not use."""
    if plan.status not in CHANGING or plan.table is None or plan.action == "none":
        return plan
    table = plan.table
    why = _refusal(table, rights, policy, required_privileges(event, table, catalog))
    if why is None:
        return plan
    evidence = {**plan.evidence, "refused_for": rights.role, "would_have": plan.action}
    return replace(plan, status="refused", action="refuse", reason=f"refused: {why}", ddl=[], undo_ddl=[],
                   alias=None, backfill=None, lock_profile=None, evidence=evidence)


def _refusal(table: Table, rights: Rights, policy: Policy, needed: tuple[str, ...]) -> str | None:
    if rights.extension:
        return f"{table.label} belongs to extension {rights.extension}; selfheal never changes an extension's tables"
    if not policy.in_scope(table.schema, table.name):
        return (f"{table.label} is outside selfheal's scope (policy scope = {', '.join(policy.scope)}); "
                f"an administrator may add {table.schema} or {table.label} to it")
    if not rights.role or not rights.role_exists:
        return f"the reporting role {rights.role!r} does not exist, so it cannot have run the statement"
    if not rights.schema_usage:
        return f"role {rights.role} has no USAGE on schema {table.schema}, so it cannot have run the statement"
    if not set(needed) & set(rights.privileges):
        return (f"role {rights.role} lacks {' or '.join(needed)} on {table.label}, which the failing statement "
                "needs; selfheal changes a table only for a role that may use it")
    return None
