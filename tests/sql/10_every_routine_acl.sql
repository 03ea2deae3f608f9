-- Every routine of the extension, whether it runs as its owner, and who else may execute it.
-- A new function fails this test until it is listed here, with its privileges thought through.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(2);

SELECT results_eq(
  $$SELECT p.oid::regprocedure::text, p.prosecdef,
           coalesce((SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, ',')
                       FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                      WHERE a.grantee <> p.proowner AND a.privilege_type = 'EXECUTE'), '')
      FROM pg_proc p
      JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
      JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'selfheal'
     ORDER BY 1$$,
  $$VALUES ('heal()', false, ''),
           ('selfheal._concerns(text)', false, ''),
           ('selfheal._ddl_dropped(text[],text[])', false, ''),
           ('selfheal._ddl_end(text,oid[])', false, ''),
           ('selfheal._ddl_start(text)', false, ''),
           ('selfheal._drop_extension_start(text)', false, ''),
           ('selfheal.add_alias(regclass,text,text,boolean)', false, ''),
           ('selfheal.approve(bigint)', false, ''),
           ('selfheal.backfill(integer)', false, ''),
           ('selfheal.configure_logging()', false, ''),
           ('selfheal.disable_compat(name)', false, ''),
           ('selfheal.enable_compat(name)', false, ''),
           ('selfheal.heal()', true, ''),
           ('selfheal.heal_error(text,text,text,text)', true, ''),
           ('selfheal.logging_advice()', false, ''),
           ('selfheal.on_ddl_end()', true, ''),
           ('selfheal.on_ddl_start()', true, ''),
           ('selfheal.on_drop_extension()', true, ''),
           ('selfheal.on_sql_drop()', true, ''),
           ('selfheal.record_error(text,text,text,text)', true, ''),
           ('selfheal.refresh_compat()', false, ''),
           ('selfheal.reject(bigint,text)', false, ''),
           ('selfheal.report()', false, ''),
           ('selfheal.schedule(interval)', false, ''),
           ('selfheal.timeline(interval)', false, ''),
           ('selfheal.undo(bigint,boolean)', false, ''),
           ('selfheal.unschedule()', false, ''),
           ('selfheal.watch(interval,integer)', false, '')$$,
  'every routine: only its owner may execute it until an administrator grants more; seven run as definer (the event trigger shims and what app roles call)');

SELECT is(
  (SELECT count(*)::int FROM pg_proc p
     JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
     JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'selfheal'
    WHERE p.prosecdef AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)),
  0, 'every SECURITY DEFINER routine pins search_path');

SELECT * FROM finish();
ROLLBACK;
