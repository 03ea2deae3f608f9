"""The plpy adapter: prepared statements, selfheal's own compat-schema creation, the settings every
entry point pins, and the entry point itself."""

from __future__ import annotations

from ..core import naming


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
        self.server_search_path: str | None = None  # facts._server_search_path

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


def _pin_settings(plpy) -> None:
    """What the SET clauses of selfheal's functions do (search_path, plan_cache_mode); a procedure
    that commits must do it itself."""
    plpy.execute("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true), "
                 "pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true)")


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
