"""DROP EXTENSION selfheal: routing given back and selfheal's objects in other schemas dropped
first."""

from __future__ import annotations

from ..core import logreader, planner, sqlscan
from .adapter import _Db
from .apply import _Retry, _event_trigger_guard, _lock_nowait, _with_lock_retries
from .compat import disable_compat
from .facts import _search_path_settings, load_policy


# Relations, routines and types selfheal made at run time in its compat schemas; extension
# members (selfheal_compat's own) are PostgreSQL's to drop.
# Views and functions selfheal made at run time in its compat schemas (those its owner owns);
# extension members are PostgreSQL's to drop, and anything else stops the final DROP SCHEMA.
_COMPAT_SCHEMAS = """
SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
 WHERE (n.nspname = 'selfheal_compat' OR n.nspname LIKE 'selfheal\\_compat\\_%')
   AND n.nspowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
"""
_RUNTIME_OBJECTS = f"""
WITH compat AS ({_COMPAT_SCHEMAS})
SELECT 'VIEW' AS kind, pg_catalog.format('%I.%I', n.nspname, c.relname) AS ident, c.oid AS objid,
       'pg_catalog.pg_class'::regclass AS classid
  FROM pg_catalog.pg_class c JOIN compat n ON n.oid = c.relnamespace
 WHERE c.relkind = 'v'
UNION ALL
SELECT 'FUNCTION', pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)),
       p.oid, 'pg_catalog.pg_proc'::regclass
  FROM pg_catalog.pg_proc p JOIN compat n ON n.oid = p.pronamespace
 WHERE p.prokind = 'f'
"""
_RUNTIME_OBJECTS = f"""
SELECT kind, ident FROM ({_RUNTIME_OBJECTS}) o
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype = 'e')
"""
# selfheal's own tables, which DROP EXTENSION drops after this: locked NOWAIT here, so the drop
# never waits in their lock queue while it holds the app's tables.
_OWN_TABLES = """
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS ident
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('selfheal', 'selfheal_compat') AND c.relkind IN ('r', 'p', 'v')
"""
# Triggers on the app's tables that call a function selfheal made (in-table derived columns).
_SYNC_TRIGGERS = """
SELECT pg_catalog.format('%I', t.tgname) AS trigger, t.tgrelid::regclass::text AS relation
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE (n.nspname = 'selfheal_compat' OR n.nspname LIKE 'selfheal\\_compat\\_%')
   AND NOT t.tgisinternal
   AND t.tgrelid NOT IN (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace cn
                            ON cn.oid = c.relnamespace WHERE cn.nspname LIKE 'selfheal\\_compat\\_%')
"""
def drop_extension(plpy, query: str) -> None:
    """Before DROP EXTENSION selfheal: unroute every routed role, drop the sync triggers on the
    app's tables and every compat schema with what selfheal made in it, and mark the log so a
    re-created selfheal never repairs what this one already handled. Columns selfheal added
    stay: they hold the app's data. The drop is one transaction, so a failure here changes
    nothing."""
    cascade = sqlscan.extension_drop(query, "selfheal")
    if cascade is None:
        return
    db = _Db(plpy)
    # The event trigger fires before PostgreSQL checks the right to drop; leave a drop that will
    # be refused to PostgreSQL (its error undoes this work anyway, but it must cost nothing).
    if not db.one("""SELECT r.rolsuper OR e.extowner = r.oid AS may
                       FROM pg_catalog.pg_roles r, pg_catalog.pg_extension e
                      WHERE r.rolname = session_user AND e.extname = 'selfheal'""")["may"]:
        return
    _, settings = load_policy(db)
    behaviour = " CASCADE" if cascade else ""
    with _event_trigger_guard():
        for role in sorted({r["role"] for r in _search_path_settings(db)
                            if r["role"] and planner.routed(r["path"])}):
            plpy.notice(f"selfheal: {disable_compat(plpy, role)}")
        triggers = db.rows(_SYNC_TRIGGERS)
        objects = db.rows(_RUNTIME_OBJECTS)
        schemas = sorted(r["nspname"] for r in db.rows(_COMPAT_SCHEMAS) if r["nspname"] != "selfheal_compat")
        own_tables = [r["ident"] for r in db.rows(_OWN_TABLES)]

        def work():
            _lock_nowait(db, sorted({t["relation"] for t in triggers}
                                    | {o["ident"] for o in objects if o["kind"] == "VIEW"}) + own_tables)
            for t in triggers:
                db.run(f"DROP TRIGGER {t['trigger']} ON {t['relation']}")
            for kind in ("VIEW", "FUNCTION"):
                idents = [o["ident"] for o in objects if o["kind"] == kind]
                if idents:
                    db.run(f"DROP {kind} {', '.join(idents)}{behaviour}")
            if schemas:
                db.run(f"DROP SCHEMA {', '.join(planner.quote_ident(s) for s in schemas)}{behaviour}")
        try:
            _with_lock_retries(db, settings, work)
        except _Retry as exc:
            raise RuntimeError(f"DROP EXTENSION selfheal stopped, nothing was changed: a compat view or a table "
                               f"with a sync trigger is in use ({exc}); try again") from None
        except plpy.SPIError as exc:
            detail = getattr(exc, "detail", None)
            raise RuntimeError(f"DROP EXTENSION selfheal stopped, nothing was changed: {exc}"
                               + (f" ({detail})" if detail else "")
                               + "; drop or redefine those objects first, or add CASCADE to drop them too") from None
    plpy.log(logreader.DROP_MARKER)
    plpy.notice("selfheal: the schema selfheal stays, empty, as PostgreSQL keeps an extension's own schema; "
                "DROP SCHEMA selfheal removes it")
