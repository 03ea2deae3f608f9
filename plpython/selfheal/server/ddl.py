"""The event triggers' work around the application's DDL: compat views taken down and rebuilt,
renames followed, drops recorded."""

from __future__ import annotations

import json

from ..core import catalog, drift, planner, sqlscan
from ..core.planner import Alias, Plan, Table
from .adapter import _Db
from .apply import _event_trigger_guard, _insert_audit, _own_ddl, _record_alias
from .facts import _ALIAS_COLUMNS, _alias_of, _aliases_of_tables, _column_has_data, _load_aliases, _names_taken, _rights, _table_facts, load_catalog, load_policy, with_defaults_for


_snapshots: dict[int, dict[int, drift.Shape]] = {}  # transaction id -> table oid -> shape before the DDL


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
    try:
        # An alias made writable since the table was read: its write trigger needs the defaults.
        ddl = planner.rebuild_compat(with_defaults_for(db, table, final), final, final)
        with db.plpy.subtransaction():
            for statement in ddl:
                db.run(statement)
    except (db.plpy.SPIError, ValueError) as exc:
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


def _shape(db: _Db, table_oid) -> drift.Shape | None:
    rows = db.rows("""SELECT n.nspname, c.relname, a.attnum, a.attname
                        FROM pg_catalog.pg_class c
                        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                       WHERE c.oid = $1""", ("oid",), (table_oid,))
    if not rows:
        return None
    return drift.Shape(rows[0]["nspname"], rows[0]["relname"], {r["attnum"]: r["attname"] for r in rows})


def _xid(db: _Db) -> int:
    return db.one("SELECT pg_catalog.txid_current() AS x")["x"]


def _timeline(db: _Db, tag: str, schema, table, change: str, detail: dict) -> None:
    db.one("""INSERT INTO selfheal.schema_event (command_tag, schema_name, table_name, change, detail)
              VALUES ($1, $2, $3, $4, $5::jsonb)""", ("text", "text", "text", "text", "text"),
           (tag, schema, table, change, json.dumps(detail, sort_keys=True)))


def _audit_automatic(db: _Db, table: Table, action: str, status: str, column: str, reason: str,
                     evidence: dict, ddl: list[str]) -> int:
    plan = Plan(status, reason, action=action, table=table, column=column, ddl=ddl, evidence=evidence,
                lock_profile="catalog only: compat views rebuilt after the application's own DDL")
    return _insert_audit(db, plan, status, None)
