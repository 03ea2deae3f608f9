"""Running a body as another role (the table's owner, or the role that reported an error), never
with selfheal's rights."""

from __future__ import annotations

from .adapter import _Db


AS_ROLE_FUNCTION = "pg_temp.selfheal_as_role"


def as_table_owner(db: _Db, table: str, body: str, argument: str | None = None) -> str | None:
    """Run a PL/pgSQL body as the owner of `table` (see as_role); a plain SET ROLE would not do."""
    owner = db.one("SELECT c.relowner::pg_catalog.regrole::text AS owner FROM pg_catalog.pg_class c "
                   "WHERE c.oid = $1::pg_catalog.regclass", ("text",), (table,))["owner"]
    return as_role(db, owner, body, argument, what=f"the owner of {table}")


def as_role(db: _Db, role: str, body: str, argument: str | None = None, what: str | None = None) -> str | None:
    """Run a PL/pgSQL body (with `argument` and a text variable `result`) as `role` (a quoted
    role name), and return what it returns.

    Anything the body sets off (triggers, defaults, index expressions, operators, functions
    it plans) runs with that role's rights, never the caller's. A plain SET ROLE would not do:
    a trigger could RESET ROLE back to an administrator. Inside a SECURITY DEFINER function the
    role owns, PostgreSQL refuses any change of role, as it does for its own maintenance
    (CVE-2022-1552). The function exists only inside this subtransaction. Deferred triggers
    must be fired by the body itself (SET CONSTRAINTS ALL IMMEDIATE), or they would run at
    commit with the caller's rights.
    """
    tag = "$selfheal_as_role$"
    if tag in body:
        raise ValueError("the body must not contain the function's quoting tag")
    plpy = db.plpy
    before = _session_fingerprint(db)
    try:
        return _run_as_role(db, role, body, argument, what, tag, before)
    except _SessionTampered as exc:
        # Prepared statements and session locks outlive a rollback: the session cannot be trusted.
        plpy.fatal(f"selfheal: {exc}; this session was ended so that nothing left in it can run with "
                   "your rights")


class _SessionTampered(Exception):
    pass


def _run_as_role(db: _Db, role: str, body: str, argument, what, tag: str, before: str):
    plpy = db.plpy
    with plpy.subtransaction():
        plpy.execute(f"CREATE FUNCTION {AS_ROLE_FUNCTION}(argument text) RETURNS text LANGUAGE plpgsql "
                     f"VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp "
                     f"AS {tag} DECLARE result text; BEGIN {body} END {tag}")
        try:
            plpy.execute(f"ALTER FUNCTION {AS_ROLE_FUNCTION}(text) OWNER TO {role}")
        except plpy.SPIError as exc:
            raise RuntimeError(f"this needs to run as {what or role}: call it as a superuser "
                               f"or as a member of role {role}") from exc
        result = plpy.execute(plpy.prepare(f"SELECT {AS_ROLE_FUNCTION}($1) AS v", ["text"]), [argument])[0]["v"]
        plpy.execute(f"DROP FUNCTION {AS_ROLE_FUNCTION}(text)")
        if _session_fingerprint(db) != before:
            # Raised inside the subtransaction: temporary objects and settings it left roll back.
            raise _SessionTampered(f"code run as {what or role} left objects or settings in this session "
                                   "(temporary objects, SET, prepared statements, cursors, LISTEN or locks)")
    return result


# What code run as another role could leave behind in this session for the caller to trip on
# later: temporary objects (found before the caller's own schemas), settings changed with SET,
# prepared statements, cursors, LISTEN and session advisory locks. Settings of unregistered
# custom names (SET app.x) are not listed by PostgreSQL and are not seen here.
_SESSION_FINGERPRINT = """
SELECT pg_catalog.md5(coalesce(pg_catalog.string_agg(x, ',' ORDER BY x), '')) AS f FROM (
    SELECT 'set:' || name || '=' || setting FROM pg_catalog.pg_settings WHERE source = 'session'
    UNION ALL SELECT 'class:' || oid FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()
    UNION ALL SELECT 'proc:' || oid FROM pg_catalog.pg_proc WHERE pronamespace = pg_catalog.pg_my_temp_schema()
    UNION ALL SELECT 'type:' || oid FROM pg_catalog.pg_type WHERE typnamespace = pg_catalog.pg_my_temp_schema()
    UNION ALL SELECT 'operator:' || oid FROM pg_catalog.pg_operator WHERE oprnamespace = pg_catalog.pg_my_temp_schema()
    UNION ALL SELECT 'prepared:' || name || ':' || prepare_time || ':' || statement
                FROM pg_catalog.pg_prepared_statements
    UNION ALL SELECT 'cursor:' || name FROM pg_catalog.pg_cursors
    UNION ALL SELECT 'listen:' || c FROM pg_catalog.pg_listening_channels() AS c
    UNION ALL SELECT 'lock:' || classid || '.' || objid || '.' || objsubid || ':' || mode FROM pg_catalog.pg_locks
               WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()) AS s(x)
"""


def _session_fingerprint(db: _Db) -> str:
    return db.one(_SESSION_FINGERPRINT)["f"]
