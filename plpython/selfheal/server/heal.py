"""Healing errors: heal_error and record_error for one reported error, heal() for every pending
one, planned per statement shape, authorized for the reporting role."""

from __future__ import annotations

import json
from dataclasses import replace

from ..core import authority, errors, planner, sqlscan
from ..core.planner import Catalog, Event, Plan, Policy
from .adapter import _Db
from .apply import _insert_audit, _script, _verifier, apply_plan
from .events import _expire_events, _store_event
from .facts import _catalog_for, _rights, _role_search_path, load_policy
from .log import read_log


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


def _decide_and_apply(db: _Db, policy: Policy, settings: dict, event: Event, row: dict, event_id) -> tuple:
    """(plan, status, audit id) of one event: planned, authorized for its role, applied or recorded."""
    role = row["username"]
    planned: list = []  # (catalog, plan) of the last plan made

    def replan() -> Plan:
        catalog = _catalog_for(db, event)
        # The planner is pure: over the same facts, the plan made again under the lock is the
        # first one, and a table of 400 columns is planned over once.
        if planned and planned[0] == catalog:
            decided = replace(planned[1])
        else:
            decided = _plan_with_related(db, event, row, catalog, policy)
            planned[:] = [catalog, replace(decided)]
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
