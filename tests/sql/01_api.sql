-- The public SQL surface: names, signatures, comments, definer rights and search_path.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(16);

SELECT has_function('public', 'heal', ARRAY[]::text[], 'heal() works unqualified');
SELECT has_function('selfheal', 'heal_error', ARRAY['text', 'text', 'text', 'text']);
SELECT has_function('selfheal', 'record_error', ARRAY['text', 'text', 'text', 'text']);
SELECT has_function('selfheal', 'add_alias', ARRAY['regclass', 'text', 'text', 'boolean']);
SELECT has_function('selfheal', 'enable_compat', ARRAY['name']);
SELECT has_function('selfheal', 'undo', ARRAY['bigint', 'boolean']);
SELECT has_table('selfheal', 'audit', 'selfheal.audit exists');
SELECT has_table('selfheal', 'error_event', 'selfheal.error_event exists');
SELECT has_schema('selfheal_compat');

SELECT is_definer('selfheal', 'heal_error', ARRAY['text', 'text', 'text', 'text'], 'heal_error runs as the owner');
SELECT isnt_definer('selfheal', 'add_alias', ARRAY['regclass', 'text', 'text', 'boolean'], 'add_alias runs as the caller');

SELECT is(
  (SELECT count(*)::int FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'selfheal'
   WHERE obj_description(p.oid, 'pg_proc') IS NULL),
  0, 'every function has a COMMENT');

SELECT is(
  (SELECT count(*)::int FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'selfheal'
   WHERE p.prokind = 'f'
     AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)),
  0, 'every function pins search_path (committing procedures pin it themselves in each transaction)');

SELECT is(
  (SELECT count(*)::int FROM pg_attribute a
    WHERE a.attrelid IN ('selfheal.audit'::regclass, 'selfheal.error_event'::regclass, 'selfheal.alias'::regclass,
                         'selfheal.policy'::regclass)
      AND a.attnum > 0 AND NOT a.attisdropped AND col_description(a.attrelid, a.attnum) IS NULL),
  0, 'every column of selfheal''s tables has a COMMENT');

SELECT is((heal())->>'processed', '0', 'heal() runs in a new database and has nothing to do');

SELECT results_eq(
  $$SELECT status, action FROM selfheal.heal_error('22012', 'division by zero', 'SELECT 1/0')$$,
  $$VALUES ('not_schema', 'classify')$$,
  'heal_error answers with what it did');

SELECT * FROM finish();
ROLLBACK;
