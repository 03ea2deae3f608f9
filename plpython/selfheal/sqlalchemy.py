"""SQLAlchemy 2 heal-and-retry, over the psycopg 3 dialect.

`handle_error` cannot re-run a statement, so the engine event only asks for the repair
and marks the error; `retrying()` re-runs the unit of work (a Session or Connection block)
when the failure was repaired.
"""

from __future__ import annotations

from functools import wraps

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from .client import HEALABLE, Options, _is_cached_plan, ask_for_repair


def install(engine: Engine, heal_dsn: str | None = None, max_heals: int = 3) -> Engine:
    """Ask selfheal to repair schema-drift errors raised through this engine."""
    dsn = heal_dsn or engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    options = Options(heal_dsn=dsn, max_heals=max_heals)

    @event.listens_for(engine, "handle_error")
    def _ask(context):
        error = context.original_exception
        if isinstance(error, psycopg.Error) and error.diag.sqlstate in HEALABLE:
            ask_for_repair(options, error, context.statement)

    return engine


def was_repaired(error: BaseException) -> bool:
    """True when re-running the unit of work can succeed: a repair, or a plan cached before one."""
    original = getattr(error, "orig", None)
    if not isinstance(error, DBAPIError) or not isinstance(original, psycopg.Error):
        return False
    return bool(getattr(original, "selfheal", {}).get("repaired")) or _is_cached_plan(original)


class _Attempt:
    def __init__(self, target, last: bool):
        self.target, self.last, self.repaired = target, last, False

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is not None and was_repaired(error) and not self.last:
            if self.target is not None:
                self.target.rollback()
            self.repaired = True
            return True
        return False


class Retrying:
    """Re-run a unit of work after a repair, a bounded number of times.

        for attempt in selfheal.sqlalchemy.retrying(session):
            with attempt:
                session.execute(...); session.commit()
    """

    def __init__(self, target=None, attempts: int = 3):
        self.target, self.attempts = target, attempts

    def __iter__(self):
        for number in range(1, self.attempts + 1):
            attempt = _Attempt(self.target, number == self.attempts)
            yield attempt
            if not attempt.repaired:
                return

    def __call__(self, function):
        @wraps(function)
        def run(*args, **kwargs):
            for attempt in self:
                with attempt:
                    return function(*args, **kwargs)
        return run


def retrying(target=None, attempts: int = 3) -> Retrying:
    """target: the Session or Connection to roll back before each new attempt."""
    return Retrying(target, attempts)
