"""The compat layer's own calls: add_alias, routing roles through it, and rebuilding its views."""

from __future__ import annotations

from ..core import drift, naming, planner
from ..core.planner import Alias, Plan
from .adapter import _Db
from .apply import _Retry, _lock_nowait, _with_lock_retries, apply_plan
from .facts import (_load_aliases, _role_search_path, _search_path_settings, _table_facts, load_catalog, load_policy,
                    with_defaults_for)


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
        table = with_defaults_for(db, table, current)  # its aliases may have changed since they were read

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


def _table_by_oid(db: _Db, table_oid) -> tuple[str, str]:
    row = db.one("SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
                 "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                 "WHERE c.oid = $1::pg_catalog.regclass AND c.relkind IN ('r', 'p')",
                 ("text",), (table_oid,))
    if row is None:
        raise ValueError("selfheal serves aliases for ordinary and partitioned tables only")
    return row["nspname"], row["relname"]


def _role_settings(db: _Db, role_name: str) -> tuple[str, dict]:
    """(role name, {in this database only: search_path}) as set by ALTER ROLE."""
    role = db.one("SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = $1", ("name",), (role_name,))
    if role is None:
        raise ValueError(f"role {role_name!r} does not exist")
    return role["rolname"], {r["in_database"]: r["path"] for r in _search_path_settings(db)
                             if r["role"] == role["rolname"]}
