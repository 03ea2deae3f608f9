"""`selfheal emergency --from-log FILE`: a reviewable fix script, made without the extension.

The errors of a log file are planned against the live catalog exactly as heal() would plan
them, and written as one idempotent script: each added column once, then the compat views in
their final shape, then routing for the roles the errors came from. Client side (psycopg).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

from psycopg.rows import dict_row

from ..core import catalog, errors, naming, planner
from ..core.logreader import LogError, statement_key
from ..core.planner import Catalog, Column, Event, Plan, Policy, quote_ident
from . import export


def load_tables_named(conn, names: set[str]) -> tuple:
    """Catalog facts of the tables with these names, or their spellings (invoiceline, InvoiceLine)."""
    keys = {naming.fold_key(n) for n in names}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(catalog.tables_sql_for_client(),
                           {"names": sorted(names), "keys": sorted(keys), "excluded": catalog.EXCLUDED_SCHEMAS,
                            "known": [], "defaults_of": None}).fetchall()
    return catalog.tables_from_rows(rows)


def _load_tables(conn, events: list[Event]) -> dict:
    names = set()
    for event in events:
        names |= planner.candidate_relation_names(event)[0]
    return {(t.schema, t.name): t for t in load_tables_named(conn, names)}


def build_script(conn, entries: Iterable[LogError]) -> str:
    """The fix script for the errors of this database among `entries`, read as they come: memory
    is that of the distinct errors, the same query with other constants counting as one
    (logreader.statement_key), planned with the first statement seen."""
    database = conn.info.dbname
    counts: Counter = Counter()
    users: dict[tuple, set] = {}
    statements: dict[tuple, tuple] = {}
    for e in entries:
        if e.database not in (None, database):
            continue
        # CONTEXT is part of the key: an error raised inside a function is no evidence (planner).
        shape = (e.sqlstate, e.message, statement_key(e.statement), e.hint, e.context)
        if shape not in statements:
            statements[shape] = (e.sqlstate, e.message, e.statement, e.hint, e.context)
        key = statements[shape]
        counts[key] += 1
        users.setdefault(key, set()).add(e.user)
    schema_errors = [key for key, _ in counts.most_common() if errors.is_schema_error(key[0])]
    tables = _load_tables(conn, [Event(*key, source="log") for key in schema_errors])
    aliases: list[planner.Alias] = []
    fixed: list[tuple[Plan, int]] = []
    skipped: list[tuple[Plan, int, str]] = []
    routed: set[str] = set()
    for key in schema_errors:
        plan = planner.plan(Event(*key, source="log"), Catalog(tuple(tables.values()), tuple(aliases)), Policy())
        if plan.status != "apply":
            skipped.append((plan, counts[key], key[1]))
            continue
        fixed.append((plan, counts[key]))
        table = tables[(plan.table.schema, plan.table.name)]
        if plan.alias is not None:
            aliases = [a for a in aliases if (a.schema, a.table, a.kind, a.legacy_name) !=
                       (plan.alias.schema, plan.alias.table, plan.alias.kind, plan.alias.legacy_name)] + [plan.alias]
            routed |= {u for u in users[key] if u}
        else:
            tables[(table.schema, table.name)] = replace(
                table, columns=table.columns + (Column(plan.column, "", table.attnum_high + 1),),
                attnum_high=table.attnum_high + 1, columns_added_by_selfheal=table.columns_added_by_selfheal + 1)
    others = sum(n for key, n in counts.items() if not errors.is_schema_error(key[0]))
    return _render(conn, fixed, skipped, aliases, tables, routed, others, database)


def _errors(count: int) -> str:
    return f"{count} error" if count == 1 else f"{count} errors"


def _render(conn, fixed, skipped, aliases, tables, routed, others, database) -> str:
    out = [f"-- selfheal emergency fixes for database {database}, planned from its log against the live catalog.",
           "-- Review, then run: psql $DATABASE_URL < emergency_fixes.sql   (safe to run more than once)",
           "BEGIN;", *[f"{s};" for s in export.timeouts([])], ""]
    for plan, count in fixed:
        out.append(f"-- {plan.reason} ({_errors(count)})")
        out.append(f"--   evidence: {', '.join(f'{k}: {v}' for k, v in sorted(plan.evidence.items()))}")
        if plan.action == "add_column":  # a missing column: Policy() keeps derived names in views
            col_type = plan.evidence["added_as"]["type"]
            out += [f"{export.add_column(s, col_type) if s.startswith('ALTER TABLE') else s};"
                    for s in plan.ddl if s.startswith(("ALTER TABLE", "COMMENT ON COLUMN"))]
        out.append("")
    if aliases:
        out.append("-- Legacy names are served by views in selfheal_compat_<schema> to the roles routed below.")
        for key in sorted({(a.schema, a.table) for a in aliases}):
            mine = [a for a in aliases if (a.schema, a.table) == key]
            for view in planner.compat_views(tables[key], mine):
                out.append(f"{export.drop_compat_view(planner.drop_view_ddl(key[0], view))};")
            out += [f"{s};" for s in planner.rebuild_compat(tables[key], [], mine)]
        for role in sorted(routed):
            current = conn.execute(
                "SELECT substr(s, length('search_path=') + 1) FROM pg_db_role_setting d, pg_roles r, "
                "unnest(d.setconfig) AS s WHERE r.oid = d.setrole AND r.rolname = %s AND d.setdatabase = 0 "
                "AND s LIKE 'search_path=%%'", (role,)).fetchone()
            path = planner.compat_search_path(current[0] if current else None, role)
            if path:
                out.append(f"ALTER ROLE {quote_ident(role)} SET search_path = {path};  -- from its next session")
        out.append("")
    out.append("COMMIT;")
    for plan, count, message in skipped:
        out.append(f"-- not fixed ({plan.status}, {_errors(count)}): {message}: {plan.reason}")
    if others:
        out.append(f"-- {others} other errors in the log are not schema errors and are never fixed here")
    return "\n".join(out) + "\n"
