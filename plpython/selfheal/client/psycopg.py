"""psycopg 3 heal-and-retry: the app never sees a schema-drift error that selfheal can repair.

On 42703 or 42P01 the error is reported to selfheal.heal_error over a separate short
autocommit connection (the heal DSN, which may point at the primary of a standby), then:
- in autocommit, the statement is retried;
- inside a transaction, which PostgreSQL has already aborted, the transaction is rolled back
  and RetryTransaction says what was healed; `retrying()` re-runs the unit of work.
Every other error, and every heal that did not help, reaches the app as the original
exception, with selfheal's reason attached as `exc.selfheal` and an exception note.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from functools import wraps

import psycopg
from psycopg import sql

HEALABLE = {"42703", "42P01"}
CACHED_PLAN_MESSAGE = "cached plan must not change result type"
HEALED = {"healed", "resolved"}


class RetryTransaction(Exception):
    """The transaction was rolled back after a repair; re-run the unit of work."""

    def __init__(self, result: dict, original: psycopg.Error, connection=None):
        super().__init__(f"selfheal repaired {original.diag.message_primary!r} ({result.get('reason')}); "
                         "the transaction was rolled back: re-run the unit of work")
        self.result, self.original, self.connection = result, original, connection


@dataclass
class Options:
    heal_dsn: str
    max_heals: int = 3  # repairs per statement; each must be for an error not seen before
    lock_timeout: str = "500ms"
    heal_timeout: str = "5s"
    replica_wait: float = 5.0  # seconds a standby may take to replay a repair


@dataclass
class _Statement:
    """What one execute() call has seen, so a repair that did not help is never retried."""

    seen: set = field(default_factory=set)
    heals: int = 0


class Healer:
    """One short autocommit connection per heal DSN, shared by the threads of a process."""

    _instances: dict[str, "Healer"] = {}
    _instances_lock = threading.Lock()

    def __init__(self, dsn: str, options: Options):
        self.dsn, self.options = dsn, options
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_dsn(cls, options: Options) -> "Healer":
        with cls._instances_lock:
            healer = cls._instances.get(options.heal_dsn)
            if healer is None or healer.options != options:
                healer = cls._instances[options.heal_dsn] = cls(options.heal_dsn, options)
            return healer

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(
                self.dsn, autocommit=True, prepare_threshold=None, application_name="selfheal-client",
                options=f"-c lock_timeout={self.options.lock_timeout} -c statement_timeout={self.options.heal_timeout}")
        return self._conn

    def heal(self, error: psycopg.Error, statement: str | None) -> tuple[dict, str | None]:
        """(heal_error's answer, the primary's WAL position after it) or raises psycopg.Error."""
        with self._lock:
            conn = self._connection()
            cur = conn.execute("SELECT * FROM selfheal.heal_error(%s, %s, %s, %s)",
                               (error.diag.sqlstate, error.diag.message_primary, statement, error.diag.message_hint))
            names = [c.name for c in cur.description]
            result = dict(zip(names, cur.fetchone()))
            # The insert position covers the repair's commit record even under asynchronous commit.
            lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
            return result, lsn


def _statement_text(query, conn) -> str | None:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")
    if isinstance(query, sql.Composable):
        return query.as_string(conn)
    return None


def _attach(error: psycopg.Error, reason: str, result: dict | None = None) -> psycopg.Error:
    error.selfheal = {"reason": reason, **(result or {})}
    error.add_note(f"selfheal: {reason}")
    return error


def _is_cached_plan(error: psycopg.Error) -> bool:
    return error.diag.sqlstate == "0A000" and CACHED_PLAN_MESSAGE in (error.diag.message_primary or "")


class _Decision:
    RETRY, RAISE, ROLLBACK = "retry", "raise", "rollback"


def _decide(conn, error: psycopg.Error, query, state: _Statement, options: Options):
    """(decision, heal result, primary LSN) for one failed execute."""
    in_transaction = not conn.autocommit
    if _is_cached_plan(error):
        key = ("0A000", "cached plan")
        if key in state.seen:
            return _Decision.RAISE, None, None
        state.seen.add(key)
        return (_Decision.ROLLBACK if in_transaction else _Decision.RETRY), {"status": "resolved",
                                                                             "reason": "the plan was cached"}, None
    if error.diag.sqlstate not in HEALABLE:
        return _Decision.RAISE, None, None
    key = (error.diag.sqlstate, error.diag.message_primary)
    if key in state.seen:
        _attach(error, "the repair did not help: the same error came back, so it is not retried")
        return _Decision.RAISE, None, None
    if state.heals >= options.max_heals:
        _attach(error, f"{options.max_heals} repairs for one statement already; not retried")
        return _Decision.RAISE, None, None
    state.seen.add(key)
    state.heals += 1
    result, lsn = ask_for_repair(options, error, _statement_text(query, conn))
    if result is None:
        return _Decision.RAISE, None, None
    return (_Decision.ROLLBACK if in_transaction else _Decision.RETRY), result, lsn


def ask_for_repair(options: Options, error: psycopg.Error, statement: str | None) -> tuple[dict | None, str | None]:
    """(heal_error's answer, primary LSN) when the error was repaired; else (None, None), reason attached."""
    try:
        result, lsn = Healer.for_dsn(options).heal(error, statement)
    except psycopg.Error as heal_error:
        _attach(error, f"the repair could not be asked for: {heal_error.diag.message_primary or heal_error}")
        return None, None
    if result["status"] not in HEALED:
        _attach(error, f"{result['status']}: {result['reason']}", result)
        return None, None
    error.selfheal = {"repaired": True, **result}
    error.add_note(f"selfheal: repaired ({result['reason']}); re-run the unit of work")
    return result, lsn


_REPLAYED = "SELECT NOT pg_is_in_recovery() OR pg_last_wal_replay_lsn() >= %s::pg_lsn"

# The search_path this role's new sessions get (a per-database setting first), when it routes
# through the compat views and this session, opened before enable_compat, does not.
_ROUTE = """
SELECT s.path FROM (
    SELECT pg_catalog.substr(c, 13) AS path, d.setdatabase <> 0 AS per_database
      FROM pg_catalog.pg_db_role_setting d, pg_catalog.unnest(d.setconfig) AS c
     WHERE d.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user)
       AND d.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
       AND c LIKE 'search\\_path=%') AS s
 WHERE s.path LIKE '%selfheal\\_compat%'
   AND pg_catalog.current_setting('search_path') NOT LIKE '%selfheal\\_compat%'
 ORDER BY s.per_database DESC LIMIT 1
"""
_SET_PATH = "SELECT pg_catalog.set_config('search_path', %s, false)"


def _routing_needed(result: dict | None) -> bool:
    """Only a repair served by the compat views can be invisible to an old session."""
    return bool(result) and (result.get("action") == "add_alias" or result.get("status") == "resolved")


def route_session(conn) -> bool:
    """Give an idle session the search_path its role's new sessions get, when that routes through
    the compat views and this one (a pooled connection opened before enable_compat) does not.
    Committed on its own, so a rolled-back unit of work cannot undo it. True when it changed."""
    cur = psycopg.Cursor(conn)
    row = psycopg.Cursor.execute(cur, _ROUTE).fetchone()
    if row:
        psycopg.Cursor.execute(cur, _SET_PATH, (row[0],))
    if not conn.autocommit:
        conn.commit()
    return row is not None


async def route_session_async(conn) -> bool:
    cur = psycopg.AsyncCursor(conn)
    row = await (await psycopg.AsyncCursor.execute(cur, _ROUTE)).fetchone()
    if row:
        await psycopg.AsyncCursor.execute(cur, _SET_PATH, (row[0],))
    if not conn.autocommit:
        await conn.commit()
    return row is not None


def _wait_for_replay(cur, lsn: str | None, timeout: float) -> None:
    """On a standby, wait (bounded) until it has replayed the primary's repair."""
    if lsn is None:
        return
    deadline = time.monotonic() + timeout
    while True:
        caught_up = psycopg.Cursor.execute(cur, _REPLAYED, (lsn,)).fetchone()[0]
        if caught_up or time.monotonic() > deadline:
            return
        time.sleep(0.01)


class HealingCursor(psycopg.Cursor):
    """A cursor whose execute() heals schema drift and retries.

    install() makes a subclass per connection carrying its Options, so the happy path costs
    one try block: the retry state is made only after an error.
    """

    selfheal_options: Options | None = None

    __slots__ = ()

    def execute(self, query, params=None, *, prepare=None, binary=None):
        # psycopg.Cursor.execute named, not super() with **kwargs: the happy path is one
        # function call more than psycopg's own (1.5 µs an execute the other way).
        try:
            return psycopg.Cursor.execute(self, query, params, prepare=prepare, binary=binary)
        except psycopg.Error as error:
            if self.selfheal_options is None:
                raise
            return self._heal_and_retry(error, query, params, {"prepare": prepare, "binary": binary})

    def _heal_and_retry(self, error, query, params, kwargs):
        options, state = self.selfheal_options, _Statement()
        while True:
            decision, result, lsn = _decide(self.connection, error, query, state, options)
            if decision == _Decision.RAISE:
                raise error
            if decision == _Decision.ROLLBACK:
                try:
                    self.connection.rollback()
                except psycopg.ProgrammingError:
                    # Inside conn.transaction(): leaving the block rolls it back, and retrying()
                    # routes the session before the next attempt.
                    raise RetryTransaction(result, error, self.connection) from error
                if _routing_needed(result):
                    route_session(self.connection)
                raise RetryTransaction(result, error) from error
            if _is_cached_plan(error):
                # psycopg forgets its prepared statements when it sees DEALLOCATE ALL succeed.
                super().execute("DEALLOCATE ALL")
            if _routing_needed(result) and route_session(self.connection):
                state.heals -= 1  # the repair was there all along: seeing it costs no attempt
            _wait_for_replay(self, lsn, options.replica_wait)
            try:
                return super().execute(query, params, **kwargs)
            except psycopg.Error as again:
                error = again


class AsyncHealingCursor(psycopg.AsyncCursor):
    """The async form; the repair itself runs in a worker thread."""

    selfheal_options: Options | None = None

    async def execute(self, query, params=None, **kwargs):
        try:
            return await super().execute(query, params, **kwargs)
        except psycopg.Error as error:
            if self.selfheal_options is None:
                raise
            return await self._heal_and_retry(error, query, params, kwargs)

    async def _heal_and_retry(self, error, query, params, kwargs):
        options, state = self.selfheal_options, _Statement()
        while True:
            decision, result, lsn = await asyncio.to_thread(_decide, self.connection, error, query, state, options)
            if decision == _Decision.RAISE:
                raise error
            if decision == _Decision.ROLLBACK:
                try:
                    await self.connection.rollback()
                except psycopg.ProgrammingError:
                    raise RetryTransaction(result, error, self.connection) from error
                if _routing_needed(result):
                    await route_session_async(self.connection)
                raise RetryTransaction(result, error) from error
            if _is_cached_plan(error):
                await super().execute("DEALLOCATE ALL")
            if _routing_needed(result) and await route_session_async(self.connection):
                state.heals -= 1
            await self._wait_for_replay(lsn, options.replica_wait)
            try:
                return await super().execute(query, params, **kwargs)
            except psycopg.Error as again:
                error = again

    async def _wait_for_replay(self, lsn, timeout):
        if lsn is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            await psycopg.AsyncCursor.execute(self, _REPLAYED, (lsn,))
            if (await self.fetchone())[0] or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.01)


def _options_for(conn, heal_dsn, **settings) -> Options:
    return Options(heal_dsn=heal_dsn or conn.info.dsn + (f" password={conn.info.password}" if conn.info.password else ""),
                   **settings)


def install(conn, heal_dsn: str | None = None, **settings):
    """Make an existing connection (sync or async) heal and retry."""
    base = AsyncHealingCursor if isinstance(conn, psycopg.AsyncConnection) else HealingCursor
    conn.cursor_factory = type(base.__name__, (base,), {"selfheal_options": _options_for(conn, heal_dsn, **settings)})
    return conn


def connect(conninfo: str = "", *, heal_dsn: str | None = None, max_heals: int = 3, **kwargs) -> psycopg.Connection:
    """psycopg.connect() whose connection heals schema drift and retries."""
    return install(psycopg.connect(conninfo, **kwargs), heal_dsn, max_heals=max_heals)


async def connect_async(conninfo: str = "", *, heal_dsn: str | None = None, max_heals: int = 3,
                        **kwargs) -> psycopg.AsyncConnection:
    """psycopg.AsyncConnection.connect() whose connection heals schema drift and retries."""
    return install(await psycopg.AsyncConnection.connect(conninfo, **kwargs), heal_dsn, max_heals=max_heals)


class Attempt:
    """One run of a unit of work; swallows a repaired failure unless it is the last run."""

    def __init__(self, retrying: "Retrying", last: bool):
        self.retrying, self.last, self.repaired = retrying, last, False

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is not None and not self.last and self.retrying.repaired(error):
            self.retrying.before_next_attempt(error)
            self.repaired = True
            return True  # swallowed: the loop runs the unit of work again
        return False


class Retrying:
    """Re-run a unit of work after a repair rolled its transaction back, a bounded number of times.

        for attempt in selfheal.retrying(conn):
            with attempt, conn.transaction():
                ...

        @selfheal.retrying(conn)
        def transfer(): ...
    """

    def __init__(self, target=None, attempts: int = 3):
        self.target, self.attempts = target, attempts

    def repaired(self, error: BaseException) -> bool:
        return isinstance(error, RetryTransaction)

    def before_next_attempt(self, error: BaseException) -> None:
        """The connection was rolled back when RetryTransaction was raised, or by leaving its
        transaction block; then the session is routed here, once it is idle."""
        connection = getattr(error, "connection", None)
        if isinstance(connection, psycopg.Connection) and _routing_needed(error.result):
            route_session(connection)

    def __iter__(self):
        for number in range(1, self.attempts + 1):
            attempt = Attempt(self, number == self.attempts)
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


def retrying(conn=None, attempts: int = 3) -> Retrying:
    return Retrying(conn, attempts)
