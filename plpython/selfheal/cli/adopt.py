"""`selfheal setup` and `selfheal doctor`: adopt selfheal on a running database in one command,
then check the installation end to end.

Client side only (psycopg); the server never imports this module. Setup changes only what is
not so already, never restarts a server, and with dry_run only says what it would run.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from psycopg.conninfo import make_conninfo

from ..core import logreader
from ..core.planner import quote_ident, quote_literal as _literal, routed

# States of a checklist line.
DONE, ALREADY, NEEDS_YOU, WOULD_RUN, OK, FAULT = "done", "already so", "needs you", "would run", "ok", "fault"

CRON_JOB = "selfheal-heal"  # the pg_cron job selfheal.schedule() registers

CLIENT_FUNCTIONS = ("selfheal.heal_error(text, text, text, text)", "selfheal.record_error(text, text, text, text)")


class AdoptError(Exception):
    """Setup or doctor cannot go on; the message says why and what to do."""


@dataclass
class Step:
    state: str
    what: str
    detail: str = ""
    sql: list[str] = field(default_factory=list)


class _Server:
    """The few facts setup and doctor read, over one autocommit psycopg connection."""

    def __init__(self, conn):
        self.conn = conn

    def value(self, sql: str, params=None):
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def settings(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY (%s)",
                                      (["logging_collector", "log_destination", "lc_messages",
                                        "log_min_error_statement", "shared_preload_libraries"],)).fetchall())

    def pending_restart(self, setting: str) -> bool:
        return bool(self.value("SELECT pending_restart FROM pg_catalog.pg_settings WHERE name = %s", (setting,)))

    def written(self, setting: str) -> str | None:
        """The value the configuration files now give a setting (ALTER SYSTEM included), which
        differs from the running one until a restart; None when no file sets it."""
        return self.value("SELECT setting FROM pg_catalog.pg_file_settings WHERE name = %s "
                          "ORDER BY seqno DESC LIMIT 1", (setting,))

    def extension(self, name: str) -> tuple[str | None, str | None]:
        """(default version on the server, version installed in this database)."""
        row = self.conn.execute("SELECT default_version, installed_version FROM pg_catalog.pg_available_extensions "
                                "WHERE name = %s", (name,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def role_exists(self, role: str) -> bool:
        return bool(self.value("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (role,)))

    def routed(self, role: str) -> bool:
        # The setting for this database wins over the role-wide one, as at login.
        path = self.value(
            """SELECT substr(s, length('search_path=') + 1)
                 FROM pg_catalog.pg_db_role_setting d CROSS JOIN LATERAL unnest(d.setconfig) s
                WHERE d.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s)
                  AND d.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database
                                             WHERE datname = pg_catalog.current_database()))
                  AND s LIKE 'search\\_path=%%'
                ORDER BY d.setdatabase DESC LIMIT 1""", (role,))
        return path is not None and routed(path)

    def may_execute(self, role: str, function: str) -> bool:
        return bool(self.value("SELECT pg_catalog.has_function_privilege(%s, %s, 'EXECUTE')", (role, function)))

    def heal_job(self) -> bool:
        return bool(self.value("SELECT 1 FROM cron.job WHERE jobname = %s AND database = pg_catalog.current_database()",
                               (CRON_JOB,)))


def _grants(server: _Server, role: str, functions_exist: bool = True) -> list[str]:
    """The GRANTs the role still lacks; all of them while the extension is not created yet."""
    return [f"GRANT EXECUTE ON FUNCTION {f} TO {quote_ident(role)}" for f in CLIENT_FUNCTIONS
            if not functions_exist or not server.may_execute(role, f)]


def _libraries(setting: str | None) -> list[str]:
    """The entries of a shared_preload_libraries value."""
    return [p.strip() for p in (setting or "").split(",") if p.strip()]


def os_cron_line(conn) -> str:
    info = conn.info
    target = make_conninfo(host=info.host, port=info.port, dbname=info.dbname, user=info.user)
    return f"* * * * * psql {shlex.quote(target)} -Xqc 'SELECT heal()'"


class _Setup:
    def __init__(self, conn, dry_run: bool):
        self.conn, self.server, self.dry_run = conn, _Server(conn), dry_run
        self.steps: list[Step] = []

    def act(self, what: str, sql: list[str], detail: str = "") -> None:
        """Run sql now (done), or with dry_run only show it (would run)."""
        if not self.dry_run:
            for statement in sql:
                self.conn.execute(statement)
        self.steps.append(Step(WOULD_RUN if self.dry_run else DONE, what, detail, sql))

    def note(self, state: str, what: str, detail: str = "", sql: list[str] | None = None) -> None:
        self.steps.append(Step(state, what, detail, sql or []))


def setup(conn, app_roles: list[str], every: str = "1 minute", dry_run: bool = False) -> list[Step]:
    """Bring one database to a working selfheal: the log it reads, the extension, each app
    role routed and granted, and heal() scheduled. Each step is checked first, so a second
    run changes nothing."""
    run = _Setup(conn, dry_run)
    server = run.server
    if not server.value("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"):
        raise AdoptError("selfheal setup needs a superuser, even with --dry-run (it reads the server's "
                         "configuration files, runs ALTER SYSTEM and creates an untrusted extension): "
                         "connect as postgres")
    default, installed = server.extension("selfheal")
    if default is None:
        raise AdoptError("selfheal is not installed on this server: run `make install` on the database host "
                         "(see README), then selfheal setup again")
    _setup_logging(run)
    if installed is None:
        run.act("extension selfheal", ["CREATE EXTENSION selfheal CASCADE"], f"version {default}")
    elif installed != default:
        run.act("extension selfheal", ["ALTER EXTENSION selfheal UPDATE"], f"{installed} -> {default}")
    else:
        run.note(ALREADY, "extension selfheal", f"version {installed}")
    for role in app_roles:
        _setup_role(run, role, extension_ready=installed is not None)
    _setup_schedule(run, every)
    return run.steps


def _setup_logging(run: _Setup) -> None:
    server = run.server
    advice = logreader.logging_advice(server.settings())
    if not advice:
        run.note(ALREADY, "server log", "logging_collector on, a jsonlog or csvlog destination, lc_messages, "
                                         "log_min_error_statement")
        return
    reload = [a for a in advice if not a.needs_restart]
    if reload:
        run.act("server log: " + ", ".join(f"{a.setting} = {a.wanted}" for a in reload),
                [a.statement for a in reload] + ["SELECT pg_catalog.pg_reload_conf()"], "reloaded, no restart")
    for a in advice:
        if not a.needs_restart:
            continue
        if server.pending_restart(a.setting) or server.written(a.setting) == a.wanted:
            run.note(NEEDS_YOU, f"restart needed for {a.setting}", "it is set; PostgreSQL reads it at start "
                     "(selfheal never restarts a server)")
        else:
            run.act(f"server log: {a.setting} = {a.wanted}", [a.statement])
            run.note(NEEDS_YOU, f"restart needed for {a.setting}", "selfheal never restarts a server; "
                     "run selfheal setup again after the restart")


def _setup_role(run: _Setup, role: str, extension_ready: bool) -> None:
    server = run.server
    if not server.role_exists(role):
        run.note(NEEDS_YOU, f"role {role}", "does not exist: create it (the app's login role), then run setup again",
                 [f"CREATE ROLE {quote_ident(role)} LOGIN"])
        return
    if server.routed(role):
        run.note(ALREADY, f"role {role} reads through the compat views")
    else:
        run.act(f"role {role} reads through the compat views", [f"SELECT selfheal.enable_compat({_literal(role)})"],
                "from its next session")
    grants = _grants(server, role, functions_exist=extension_ready or not run.dry_run)
    if grants:
        run.act(f"role {role} may report its errors", grants, "heal_error and record_error")
    else:
        run.note(ALREADY, f"role {role} may report its errors")


def _setup_schedule(run: _Setup, every: str) -> None:
    server = run.server
    schedule = f"SELECT selfheal.schedule({_literal(every)})"
    fallback = (f"heal from a session of its own with CALL selfheal.watch(), or from the OS cron: "
                f"{os_cron_line(run.conn)}")
    cron_default, cron_installed = server.extension("pg_cron")
    preload = _libraries(server.settings().get("shared_preload_libraries"))
    loaded = "pg_cron" in preload
    home = server.value("SELECT current_setting('cron.database_name', true)") if loaded else None
    database = server.value("SELECT pg_catalog.current_database()")
    if cron_installed and server.heal_job():
        run.note(ALREADY, "heal() scheduled with pg_cron")
    elif cron_installed:
        run.act("heal() scheduled with pg_cron", [schedule], f"every {every}")
    elif cron_default is None:
        run.note(NEEDS_YOU, "pg_cron missing", fallback)
    elif loaded and (home or "postgres") == database:
        run.act("heal() scheduled with pg_cron", ["CREATE EXTENSION IF NOT EXISTS pg_cron", schedule], f"every {every}")
    elif loaded:
        run.note(NEEDS_YOU, "pg_cron runs jobs from another database",
                 f"in database {home or 'postgres'}, run the SQL shown, or {fallback}",
                 [f"SELECT cron.schedule_in_database('{CRON_JOB}', '* * * * *', 'SELECT heal()', "
                  f"{_literal(database)})"])
    elif "pg_cron" in _libraries(server.written("shared_preload_libraries")):
        run.note(NEEDS_YOU, "restart needed for pg_cron", "it is set; run selfheal setup again after the restart")
    else:
        libraries = ",".join(preload + ["pg_cron"])
        run.act("pg_cron loaded for this database",
                [f"ALTER SYSTEM SET shared_preload_libraries = {_literal(libraries)}",
                 # Until pg_cron is loaded its settings are unknown to ALTER SYSTEM; SET makes one.
                 f"SET cron.database_name = {_literal(database)}",
                 f"ALTER SYSTEM SET cron.database_name = {_literal(database)}"])
        run.note(NEEDS_YOU, "restart needed for pg_cron", "selfheal never restarts a server; "
                 "run selfheal setup again after the restart to schedule heal()")


# A harmless repair, made and rolled back: the table exists only inside doctor's transaction.
PROBE_TABLE = "selfheal_doctor_probe"


def doctor(conn, app_roles: list[str]) -> list[Step]:
    """Check a running installation end to end; each fault names its fix."""
    server = _Server(conn)
    checks: list[Step] = []
    default, installed = server.extension("selfheal")
    if installed is None:
        raise AdoptError(f"selfheal is not installed in this database ({conn.info.dbname}): "
                         "run selfheal setup --dsn ... (or CREATE EXTENSION selfheal CASCADE)")
    checks.append(Step(OK if installed == default else FAULT, "extension selfheal", f"version {installed}"
                       + ("" if installed == default else f"; {default} is installed on the server"),
                       [] if installed == default else ["ALTER EXTENSION selfheal UPDATE"]))
    settings = server.settings()
    advice = logreader.logging_advice(settings)
    for a in advice:
        checks.append(Step(FAULT, f"server log: {a.setting} is {a.current or 'unset'}", f"heal() needs {a.wanted}"
                           + (" (then a restart)" if a.needs_restart else ""), [a.statement]))
    for setting in ("logging_collector", "shared_preload_libraries"):
        if server.pending_restart(setting):
            checks.append(Step(FAULT, f"restart pending for {setting}", "the server still runs without it"))
    log_format = logreader.preferred_format(settings.get("log_destination", ""))
    if not advice and log_format:
        current = server.value("SELECT pg_catalog.pg_current_logfile(%s)", (log_format,))
        problem = server.value("SELECT last_problem FROM selfheal.log_bookmark WHERE log_format = %s", (log_format,))
        if current is None:
            checks.append(Step(FAULT, f"no {log_format} file is being written", "check log_directory"))
        elif problem:
            checks.append(Step(FAULT, "the last heal() could not read the log", problem))
        else:
            checks.append(Step(OK, "server log", f"{log_format}, {current}"))
    for role in app_roles:
        if not server.role_exists(role):
            checks.append(Step(FAULT, f"role {role} does not exist"))
            continue
        checks.append(Step(OK, f"role {role} reads through the compat views") if server.routed(role) else
                      Step(FAULT, f"role {role} is not routed", "its legacy names are not served to it",
                           [f"SELECT selfheal.enable_compat({_literal(role)})"]))
        grants = _grants(server, role)
        checks.append(Step(FAULT, f"role {role} may not report its errors", "", grants) if grants else
                      Step(OK, f"role {role} may report its errors"))
    checks.append(_schedule_check(conn, server))
    checks.append(_probe(conn))
    return checks


def _schedule_check(conn, server: _Server) -> Step:
    if server.extension("pg_cron")[1] and server.heal_job():
        return Step(OK, "heal() scheduled with pg_cron")
    if server.value("SELECT 1 FROM pg_catalog.pg_stat_activity WHERE datname = pg_catalog.current_database() "
                    "AND query ILIKE '%%selfheal.watch%%' AND pid <> pg_catalog.pg_backend_pid()"):
        return Step(OK, "heal() runs in a CALL selfheal.watch() session")
    return Step(FAULT, "heal() is not scheduled", "errors in the log wait until someone calls heal(); "
                "run selfheal setup, CALL selfheal.watch(), or from the OS cron: " + os_cron_line(conn))


def _probe(conn) -> Step:
    """A repair of a table that exists only in a transaction doctor rolls back."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(f"CREATE TABLE public.{PROBE_TABLE} (id int)")
            row = conn.execute("SELECT status, reason FROM selfheal.heal_error('42703', "
                               "'column \"recommendation_data\" does not exist', "
                               f"'SELECT recommendation_data FROM {PROBE_TABLE}')").fetchone()
            if row[0] == "healed":
                conn.execute(f"SELECT recommendation_data FROM public.{PROBE_TABLE}")
    except Exception as exc:  # any failure is the finding, reported, never raised
        return Step(FAULT, "a test repair failed", str(getattr(exc, "diag", None) and exc.diag.message_primary or exc))
    if row[0] != "healed":
        return Step(FAULT, "a test repair was not made", f"{row[0]}: {row[1]}")
    return Step(OK, "a test repair, rolled back", "a missing column added and planned, then undone")


# ---------------------------------------------------------------------------------------
# Indexes for derived names

# Applied repairs that asked for an index, with what serves their name today: the alias's
# expression (compat view), or the real column (in-table). The statement is made again from
# these, never run from the audit's text.
_WANTED_INDEXES = """
SELECT a.id, a.schema_name, a.table_name, a.column_name,
       (SELECT al.expression FROM selfheal.alias al
         WHERE al.active AND al.schema_name = a.schema_name AND al.table_name = a.table_name
           AND al.legacy_name = a.column_name AND al.kind = 'column') AS expression,
       EXISTS (SELECT 1 FROM pg_catalog.pg_attribute t
                WHERE t.attrelid = pg_catalog.to_regclass(pg_catalog.quote_ident(a.schema_name) || '.'
                                                          || pg_catalog.quote_ident(a.table_name))
                  AND t.attname = a.column_name AND t.attnum > 0 AND NOT t.attisdropped) AS in_table
  FROM selfheal.audit a
 WHERE a.status = 'applied' AND a.undone_by IS NULL AND a.action IN ('add_alias', 'add_column')
   AND a.evidence ? 'index'
 ORDER BY a.id
"""

_INDEX_STATE = """
SELECT i.indisvalid FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relname = %s
"""


def indexes(conn, apply: bool = False, lock_timeout: str = "10s") -> list[Step]:
    """The indexes that let reads filtering on a derived name use an index as the source column's
    do: listed, or built with CREATE INDEX CONCURRENTLY (writers are never blocked; a build that
    fails leaves no invalid index behind). `conn` is in autocommit."""
    from ..core.planner import Table, index_ddl, index_name
    steps = []
    seen = set()
    for audit_id, schema, table_name, column, expression, in_table in conn.execute(_WANTED_INDEXES).fetchall():
        table = Table(schema, table_name, ())
        what = f"index for {schema}.{table_name}.{column} (repair #{audit_id})"
        if (schema, table_name, column) in seen:
            continue
        seen.add((schema, table_name, column))
        if expression is None and not in_table:
            steps.append(Step(OK, what, "no longer served; nothing to build"))
            continue
        statement = index_ddl(table, column, quote_ident(column) if in_table else expression)
        name = index_name(table, column)
        state = conn.execute(_INDEX_STATE, (schema, name)).fetchone()
        if state and state[0]:
            steps.append(Step(ALREADY, what, name))
            continue
        drop_invalid = f"DROP INDEX CONCURRENTLY IF EXISTS {quote_ident(schema)}.{quote_ident(name)}"
        sql = ([drop_invalid] if state else []) + [statement]
        if not apply:
            steps.append(Step(WOULD_RUN, what, "builds without blocking writers; run with --apply", sql))
            continue
        try:
            conn.execute("SELECT pg_catalog.set_config('lock_timeout', %s, false)", (lock_timeout,))
            for each in sql:
                conn.execute(each)
        except Exception as exc:  # the build's failure is the finding; what it left is dropped
            message = str(getattr(exc, "diag", None) and exc.diag.message_primary or exc)
            conn.execute(drop_invalid)
            steps.append(Step(FAULT, what, f"not built: {message}; run selfheal indexes --apply again", sql))
            continue
        steps.append(Step(DONE, what, name, sql))
    return steps
