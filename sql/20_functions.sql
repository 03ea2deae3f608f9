-- selfheal: functions. Bodies stay thin; the logic is the selfheal Python package.
-- Every body first puts the installed package on sys.path (once per backend), then calls it with plpy.
-- Functions that read the catalog use generic plans (plan_cache_mode): a custom plan of the
-- catalog query was made again for every call, and planning it costs more in a database of
-- 10,000 tables than running it. selfheal never plans the application's statements.

CREATE OR REPLACE FUNCTION selfheal.heal() RETURNS jsonb
LANGUAGE plpython3u
-- SECURITY DEFINER: a scheduler repairs tables it does not own. It acts for each event's own
-- role: a table is changed only where that role holds the privilege its statement needs, inside
-- the policy's scope; names from error text are validated and quoted; no table owner's code runs.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.heal)
$$;
COMMENT ON FUNCTION selfheal.heal() IS
  'Processes every pending or deferred error event: repairs what the evidence supports, records the rest. Returns a JSON summary by status';

CREATE OR REPLACE FUNCTION selfheal.heal_error(sqlstate text, message text, statement text DEFAULT NULL, hint text DEFAULT NULL)
RETURNS TABLE (event_id bigint, status text, action text, reason text, audit_id bigint, ddl text)
LANGUAGE plpython3u
-- SECURITY DEFINER: an app role reports its own error and gets the repair without owning the
-- table. The reporting role is session_user: a table is changed only where it holds the
-- privilege its statement needs, inside the policy's scope. Inputs are validated in Python.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.heal_error, sqlstate, message, statement, hint)
$$;
COMMENT ON FUNCTION selfheal.heal_error(text, text, text, text) IS
  'Records one error a client saw and repairs it now; returns what was done, one row per repair: the reported error first, then the other legacy names of its statement healed with it (for a routed role). Pass the statement so aliases can be resolved';

CREATE OR REPLACE FUNCTION selfheal.record_error(sqlstate text, message text, statement text DEFAULT NULL, hint text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpython3u
-- SECURITY DEFINER: lets an app role queue an error without write access to selfheal's tables.
-- heal() later acts for the recorded session_user, with the same checks as heal_error.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.record_error, sqlstate, message, statement, hint)
$$;
COMMENT ON FUNCTION selfheal.record_error(text, text, text, text) IS
  'Records one error for the next heal() without repairing it now; returns the event id';

CREATE OR REPLACE FUNCTION selfheal.add_alias(tbl regclass, legacy_name text, expression text, in_table boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpython3u
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.add_alias, tbl, legacy_name, expression, in_table)
$$;
COMMENT ON FUNCTION selfheal.add_alias(regclass, text, text, boolean) IS
  'Declares legacy_name on a table as an SQL expression over its columns: served to routed roles by the compat view (replacing an alias of the same name), or with in_table a real column (STORED below generated_column_row_limit, else synced by a trigger and filled by backfill()). Returns the audit id';

CREATE OR REPLACE FUNCTION selfheal.enable_compat(role_name name) RETURNS text
LANGUAGE plpython3u
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.enable_compat, role_name)
$$;
COMMENT ON FUNCTION selfheal.enable_compat(name) IS
  'Routes a role through the compat views: puts each schema''s compat schema (selfheal_compat_<schema>) just before that schema on its search_path, keeping its order and its database-specific setting (from its next session)';

CREATE OR REPLACE FUNCTION selfheal.disable_compat(role_name name) RETURNS text
LANGUAGE plpython3u
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.disable_compat, role_name)
$$;
COMMENT ON FUNCTION selfheal.disable_compat(name) IS
  'Undoes enable_compat: takes the compat schemas off the role''s search_path (from its next session), resetting a setting enable_compat made';

CREATE OR REPLACE FUNCTION selfheal.refresh_compat() RETURNS integer
LANGUAGE plpython3u
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.refresh_compat)
$$;
COMMENT ON FUNCTION selfheal.refresh_compat() IS
  'Builds every compat view again from selfheal.alias (locks taken with NOWAIT and retried); returns the number of tables';

CREATE OR REPLACE FUNCTION selfheal.undo(audit_id bigint, force boolean DEFAULT false) RETURNS bigint
LANGUAGE plpython3u
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.undo, audit_id, force)
$$;
COMMENT ON FUNCTION selfheal.undo(bigint, boolean) IS
  'Reverses one applied change, and records it as rejected: it is not applied again by itself until selfheal.approve. An added column that holds data other than its default is kept unless force is true. Returns the audit id of the undo';

CREATE OR REPLACE FUNCTION selfheal.approve(audit_id bigint) RETURNS bigint
LANGUAGE plpython3u
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.approve, audit_id)
$$;
COMMENT ON FUNCTION selfheal.approve(bigint) IS
  'Applies a proposal, an observed repair or an undone change through the same safe path as any repair, after planning it again with fresh facts; lifts a rejection. Returns the audit id of the applied change';

CREATE OR REPLACE FUNCTION selfheal.reject(audit_id bigint, why text DEFAULT NULL) RETURNS bigint
LANGUAGE plpython3u
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.reject, audit_id, why)
$$;
COMMENT ON FUNCTION selfheal.reject(bigint, text) IS
  'Records that a proposal must not be applied: the same repair is refused from then on until selfheal.approve. Returns the audit id of the decision';

-- heal() must work unqualified in any database with the extension.
CREATE OR REPLACE FUNCTION public.heal() RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT selfheal.heal() $$;
COMMENT ON FUNCTION public.heal() IS 'Shorthand for selfheal.heal(); the caller needs EXECUTE on both';

CREATE OR REPLACE FUNCTION selfheal.logging_advice()
RETURNS TABLE (setting text, current_value text, wanted text, needs_restart boolean, statement text)
LANGUAGE plpython3u
SET search_path = pg_catalog, pg_temp
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.logging_advice)
$$;
COMMENT ON FUNCTION selfheal.logging_advice() IS
  'Which server settings heal() needs to read errors from the log, their current values, and whether changing them needs a restart';

CREATE OR REPLACE FUNCTION selfheal.configure_logging() RETURNS SETOF text
LANGUAGE plpython3u
SET search_path = pg_catalog, pg_temp
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
return server.entry(plpy, server.configure_logging)
$$;
COMMENT ON FUNCTION selfheal.configure_logging() IS
  'The ALTER SYSTEM statements that set up logging for heal(), then pg_reload_conf(). ALTER SYSTEM cannot run inside a function, so run them from psql with: SELECT * FROM selfheal.configure_logging() \gexec';

CREATE OR REPLACE FUNCTION selfheal.schedule(every interval DEFAULT '1 minute') RETURNS bigint
LANGUAGE plpgsql
-- PL/pgSQL, not PL/Python, so that a missing pg_cron or an interval cron cannot keep is one
-- line with a hint, not a Python traceback.
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    seconds numeric := extract(epoch FROM every);
    minutes integer;
    spec text;
BEGIN
    IF seconds < 60 THEN
        RAISE EXCEPTION 'selfheal: pg_cron 1.4 runs jobs at most once a minute'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'To heal within a second, CALL selfheal.watch() in a session of its own.';
    END IF;
    IF seconds % 60 <> 0 THEN
        RAISE EXCEPTION 'selfheal: the interval must be whole minutes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    minutes := seconds / 60;
    spec := CASE WHEN minutes = 1 THEN '* * * * *'
                 WHEN minutes < 60 AND 60 % minutes = 0 THEN format('*/%s * * * *', minutes)
                 WHEN minutes = 60 THEN '0 * * * *'
                 WHEN minutes % 60 = 0 AND minutes < 1440 AND 1440 % minutes = 0 THEN format('0 */%s * * *', minutes / 60)
                 WHEN minutes = 1440 THEN '0 0 * * *' END;
    IF spec IS NULL THEN
        RAISE EXCEPTION 'selfheal: cron can run every % only unevenly', every
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use minutes that divide an hour (1-30, 60) or hours that divide a day.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'selfheal: pg_cron is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN current_setting('shared_preload_libraries') ~ '\mpg_cron\M' THEN
                           format('pg_cron runs jobs from database %s (cron.database_name); there, run SELECT '
                                  'cron.schedule_in_database(''selfheal-heal'', %L, ''SELECT heal()'', %L). '
                                  'Or CALL selfheal.watch() here.',
                                  coalesce(current_setting('cron.database_name', true), 'postgres'), spec,
                                  current_database())
                         ELSE 'CALL selfheal.watch() in a session of its own, or run SELECT heal() from the '
                              'operating system''s cron; selfheal setup prints the line.' END;
    END IF;
    RETURN cron.schedule('selfheal-heal', spec, 'SELECT heal()');
END
$$;
COMMENT ON FUNCTION selfheal.schedule(interval) IS
  'Registers SELECT heal() with pg_cron in this database as the job selfheal-heal (whole minutes; pg_cron 1.4 runs jobs once a minute at most). Returns the pg_cron job id';

CREATE OR REPLACE FUNCTION selfheal.unschedule() RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT FROM cron.job WHERE jobname = 'selfheal-heal') THEN
        RETURN false;
    END IF;
    RETURN cron.unschedule('selfheal-heal');
END
$$;
COMMENT ON FUNCTION selfheal.unschedule() IS 'Removes the pg_cron job that schedule() registered; false if there was none';

-- A procedure that commits can be neither SECURITY DEFINER nor carry a SET clause, so watch
-- runs with the administrator's own rights; it pins search_path (and plan_cache_mode) itself in
-- every cycle.
CREATE OR REPLACE PROCEDURE selfheal.watch(poll interval DEFAULT '200 ms', max_cycles integer DEFAULT NULL)
LANGUAGE plpython3u
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
server.entry(plpy, server.watch, poll, max_cycles)
$$;
COMMENT ON PROCEDURE selfheal.watch(interval, integer) IS
  'Tails the server log and heals as errors arrive, committing after every cycle; stops on cancel or terminate, or after max_cycles. CALL it outside a transaction block';

-- Commits between batches, so, like watch, neither SECURITY DEFINER nor a SET clause. Each
-- batch runs as the table's owner (the owner's triggers never run with the caller's rights).
CREATE OR REPLACE PROCEDURE selfheal.backfill(max_batches integer DEFAULT NULL)
LANGUAGE plpython3u
AS $$
import sys; '@PYTHON_LIB_DIR@' in sys.path or sys.path.insert(0, '@PYTHON_LIB_DIR@')
from selfheal import server
server.entry(plpy, server.backfill, max_batches)
$$;
COMMENT ON PROCEDURE selfheal.backfill(integer) IS
  'Fills in-table derived columns in batches by primary key, committing and pausing between batches; resumes where it stopped. CALL it outside a transaction block';
