"""SQLAlchemy 2 heal-and-retry, over the psycopg 3 dialect.

`handle_error` cannot re-run a statement, so the engine event only asks for the repair
and marks the error; `retrying()` re-runs the unit of work (a Session or Connection block)
when the failure was repaired.
"""

from __future__ import annotations

import re
import weakref

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.util import find_tables

from ..core import sqlscan
from . import psycopg as psycopg_healing
from .psycopg import HEALABLE, Options, _is_cached_plan, _routing_needed, ask_for_repair, route_session


def install(engine: Engine, heal_dsn: str | None = None, max_heals: int = 3) -> Engine:
    """Ask selfheal to repair schema-drift errors raised through this engine."""
    dsn = heal_dsn or engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    options = Options(heal_dsn=dsn, max_heals=max_heals)

    # Pooled connections opened before enable_compat: routed when next they begin, once idle.
    to_route: weakref.WeakSet = weakref.WeakSet()

    @event.listens_for(engine, "handle_error")
    def _ask(context):
        error = context.original_exception
        if isinstance(error, psycopg.Error) and error.diag.sqlstate in HEALABLE:
            statement = sqlscan.declare_types(context.statement or "", declared_types(context, error))
            result, _ = ask_for_repair(options, error, statement)
            pooled = getattr(context.connection, "connection", None) if context.connection is not None else None
            dbapi_connection = getattr(pooled, "dbapi_connection", None)
            if _routing_needed(result) and isinstance(dbapi_connection, psycopg.Connection):
                to_route.add(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _route(connection):
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection in to_route:
            to_route.discard(dbapi_connection)
            route_session(dbapi_connection)

    return engine


_TYPE_WORDS = {"timestamp with time zone": "timestamptz", "timestamp without time zone": "timestamp",
               "character varying": "varchar"}


def declared_types(context, error: psycopg.Error) -> dict[str, str]:
    """The model's types of the columns the error names, from the tables the statement uses:
    selfheal then adds a missing column as the application declares it (a Boolean as boolean,
    never text). Only types selfheal knows are passed."""
    compiled = getattr(context.execution_context, "compiled", None) if context.execution_context else None
    statement = getattr(compiled, "statement", None)
    if statement is None:
        return {}
    message = error.diag.message_primary or ""
    try:
        tables = find_tables(statement, include_crud=True, include_aliases=True)
    except Exception:  # noqa: BLE001 - a statement SQLAlchemy cannot walk just declares nothing
        return {}
    declared = {}
    for table in tables:
        for column in getattr(table, "columns", ()):
            if f'"{column.name}"' not in message and f".{column.name} " not in message:
                continue
            try:
                compiled_type = column.type.compile(dialect=context.dialect).lower()
            except Exception:  # noqa: BLE001 - a type the dialect cannot render declares nothing
                continue
            base = re.sub(r"\(.*\)", "", compiled_type).strip()
            base = _TYPE_WORDS.get(base, base)
            if base in sqlscan.CAST_TYPES:
                declared[column.name] = base
    return declared


def was_repaired(error: BaseException) -> bool:
    """True when re-running the unit of work can succeed: a repair, or a plan cached before one."""
    original = getattr(error, "orig", None)
    if not isinstance(error, DBAPIError) or not isinstance(original, psycopg.Error):
        return False
    return bool(getattr(original, "selfheal", {}).get("repaired")) or _is_cached_plan(original)


class Retrying(psycopg_healing.Retrying):
    """Re-run a unit of work after a repair, a bounded number of times.

        for attempt in selfheal.client.sqlalchemy.retrying(session):
            with attempt:
                session.execute(...); session.commit()
    """

    def repaired(self, error: BaseException) -> bool:
        return was_repaired(error)

    def before_next_attempt(self, error: BaseException) -> None:
        if self.target is not None:  # SQLAlchemy leaves the Session or Connection to the caller
            self.target.rollback()


def retrying(target=None, attempts: int = 3) -> Retrying:
    """target: the Session or Connection to roll back before each new attempt."""
    return Retrying(target, attempts)
