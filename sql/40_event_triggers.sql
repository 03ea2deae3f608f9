-- selfheal: event triggers. On PostgreSQL 15 an event trigger must be PL/pgSQL; these shims
-- call PL/Python workers. The shims are SECURITY DEFINER and the workers are not executable by
-- PUBLIC, so the work can only be set off by real DDL: PostgreSQL refuses to call a function
-- returning event_trigger directly ("trigger functions can only be called as triggers").
-- selfheal's own DDL is kept out by the workers themselves, in Python, where no role can
-- switch them off with a setting. The workers run with client_min_messages = warning: the
-- application's DDL must not show it selfheal's "view ... does not exist, skipping".

CREATE OR REPLACE FUNCTION selfheal._ddl_start(tag text) RETURNS void
LANGUAGE plpython3u
-- Called only by the on_ddl_start shim (EXECUTE is not granted to anyone). It reads the running
-- statement itself (current_query); the text is only scanned.
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET client_min_messages = warning
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
server.entry(plpy, server.ddl_start, tag)
$$;
COMMENT ON FUNCTION selfheal._ddl_start(text) IS
  'Before ALTER TABLE or DROP TABLE: snapshots the tables it names and drops their compat views, so they never block the DDL';

CREATE OR REPLACE FUNCTION selfheal._ddl_end(tag text, tables oid[]) RETURNS void
LANGUAGE plpython3u
-- Called only by the on_ddl_end shim; it reads the catalog for the tables PostgreSQL names.
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET client_min_messages = warning
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
server.entry(plpy, server.ddl_end, tag, tables)
$$;
COMMENT ON FUNCTION selfheal._ddl_end(text, oid[]) IS
  'After DDL on tables, views, sequences and types: serves renamed names, marks aliases that lost their source, rebuilds the compat views taken down before the DDL, and retires a legacy name another schema''s relation or type now has';

CREATE OR REPLACE FUNCTION selfheal._ddl_dropped(schemas text[], tables text[]) RETURNS void
LANGUAGE plpython3u
-- Called only by the on_sql_drop shim. It acts only on tables that no longer exist.
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET client_min_messages = warning
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
server.entry(plpy, server.ddl_dropped, schemas, tables)
$$;
COMMENT ON FUNCTION selfheal._ddl_dropped(text[], text[]) IS 'After DROP TABLE: aliases of dropped tables are marked broken';

CREATE OR REPLACE FUNCTION selfheal._drop_extension_start(query text) RETURNS void
LANGUAGE plpython3u
-- Called only by the on_drop_extension shim, with the running statement, which it only scans.
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
server.entry(plpy, server.drop_extension, query)
$$;
COMMENT ON FUNCTION selfheal._drop_extension_start(text) IS
  'Before DROP EXTENSION selfheal: unroutes routed roles, drops the compat schemas and sync triggers selfheal made at run time, and marks the log as handled';

CREATE OR REPLACE FUNCTION selfheal._concerns(query text) RETURNS boolean
-- PL/pgSQL, not SQL: its queries are planned once per session, where a SQL function with SET
-- is planned again in every transaction, and every DDL statement of a migration is one.
LANGUAGE plpgsql STABLE
-- Called by the shims, which run as the extension's owner.
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q text := lower(query);
BEGIN
    IF q IS NULL THEN
        RETURN true;  -- the statement's text is not known: the exact check decides
    END IF;
    IF strpos(q, 'rename') > 0 OR q ~ 'alter\s+table.*\mdrop\M' THEN
        RETURN true;  -- DROP [COLUMN]: the drift timeline keeps every drop
    END IF;
    -- ADD COLUMN of a name selfheal added: the migration takes the column over
    IF q ~ 'alter\s+table.*\madd\M' AND EXISTS (
            SELECT 1 FROM selfheal.audit
             WHERE action = 'add_column' AND status = 'applied' AND undone_by IS NULL
               AND strpos(q, lower(column_name)) > 0) THEN
        RETURN true;
    END IF;
    RETURN EXISTS (SELECT 1 FROM selfheal.alias
                    WHERE active AND (strpos(q, lower(table_name)) > 0
                                      OR strpos(q, lower(legacy_name)) > 0
                                      -- DDL from inside a function: the statement does not show its target
                                      OR q !~ '(alter|drop|create)\s+table'));
END
$$;
COMMENT ON FUNCTION selfheal._concerns(text) IS
  'Whether a DDL statement may rename or drop a column, or names a table with aliases or a legacy name; when not, the event trigger shims skip PL/Python. A coarse text test: a false yes only costs the exact check';

CREATE OR REPLACE FUNCTION selfheal.on_ddl_start() RETURNS event_trigger
LANGUAGE plpgsql
-- SECURITY DEFINER: the role running a migration owns its tables, but the compat views and
-- selfheal's tables belong to selfheal. Only PostgreSQL can call it, as an event trigger.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT selfheal._concerns(pg_catalog.current_query()) THEN
        RETURN;  -- nothing of selfheal's is concerned: unrelated DDL stays cheap
    END IF;
    PERFORM selfheal._ddl_start(tg_tag);
END
$$;
COMMENT ON FUNCTION selfheal.on_ddl_start() IS 'Event trigger shim for ddl_command_start';

CREATE OR REPLACE FUNCTION selfheal.on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql
-- SECURITY DEFINER: the role running a migration owns its tables, but the compat views and
-- selfheal's tables belong to selfheal. Only PostgreSQL can call it, as an event trigger.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tables oid[];
BEGIN
    IF NOT selfheal._concerns(pg_catalog.current_query()) THEN
        RETURN;
    END IF;
    SELECT pg_catalog.array_agg(DISTINCT c.objid) INTO tables
      FROM pg_catalog.pg_event_trigger_ddl_commands() c
     WHERE c.object_type IN ('table', 'table column');
    PERFORM selfheal._ddl_end(tg_tag, coalesce(tables, '{}'));
END
$$;
COMMENT ON FUNCTION selfheal.on_ddl_end() IS 'Event trigger shim for ddl_command_end';

CREATE OR REPLACE FUNCTION selfheal.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql
-- SECURITY DEFINER: the role running a migration owns its tables, but the compat views and
-- selfheal's tables belong to selfheal. Only PostgreSQL can call it, as an event trigger.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    schemas text[];
    tables text[];
BEGIN
    IF NOT selfheal._concerns(pg_catalog.current_query()) THEN
        RETURN;
    END IF;
    SELECT pg_catalog.array_agg(o.schema_name), pg_catalog.array_agg(o.object_name) INTO schemas, tables
      FROM pg_catalog.pg_event_trigger_dropped_objects() o
     WHERE o.object_type = 'table' AND NOT o.is_temporary;
    IF tables IS NOT NULL THEN
        PERFORM selfheal._ddl_dropped(schemas, tables);
    END IF;
END
$$;
COMMENT ON FUNCTION selfheal.on_sql_drop() IS 'Event trigger shim for sql_drop';

CREATE OR REPLACE FUNCTION selfheal.on_drop_extension() RETURNS event_trigger
LANGUAGE plpgsql
-- SECURITY DEFINER: the compat schemas and role routing belong to selfheal's owner, who is the
-- only one who may drop the extension anyway. Only PostgreSQL can call it, as an event trigger.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.strpos(pg_catalog.lower(pg_catalog.current_query()), 'selfheal') > 0 THEN
        PERFORM selfheal._drop_extension_start(pg_catalog.current_query());
    END IF;
END
$$;
COMMENT ON FUNCTION selfheal.on_drop_extension() IS 'Event trigger shim for ddl_command_start of DROP EXTENSION';

-- Dropped first: this file also brings an older version's triggers up to date.
DROP EVENT TRIGGER IF EXISTS selfheal_ddl_start;
DROP EVENT TRIGGER IF EXISTS selfheal_ddl_end;
DROP EVENT TRIGGER IF EXISTS selfheal_sql_drop;
DROP EVENT TRIGGER IF EXISTS selfheal_drop_extension;
CREATE EVENT TRIGGER selfheal_ddl_start ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'DROP TABLE') EXECUTE FUNCTION selfheal.on_ddl_start();
CREATE EVENT TRIGGER selfheal_ddl_end ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'DROP TABLE', 'CREATE TABLE AS', 'SELECT INTO',
                 'CREATE VIEW', 'ALTER VIEW', 'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW',
                 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE', 'CREATE SEQUENCE', 'ALTER SEQUENCE',
                 'CREATE TYPE', 'ALTER TYPE', 'CREATE DOMAIN', 'ALTER DOMAIN')
    EXECUTE FUNCTION selfheal.on_ddl_end();
CREATE EVENT TRIGGER selfheal_sql_drop ON sql_drop
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED') EXECUTE FUNCTION selfheal.on_sql_drop();
CREATE EVENT TRIGGER selfheal_drop_extension ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION') EXECUTE FUNCTION selfheal.on_drop_extension();
