-- Errors that are not schema errors are recorded and classified, never repaired.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(3);

SELECT results_eq(
  $$SELECT status FROM selfheal.heal_error('P0001', 'Cost calculation error', 'SELECT calc()')
    UNION ALL SELECT status FROM selfheal.heal_error('22012', 'division by zero', 'SELECT 1/0')$$,
  $$VALUES ('not_schema'), ('not_schema')$$, 'both are classified as not schema errors');
SELECT results_eq('SELECT class FROM selfheal.error_event ORDER BY id',
                  $$VALUES ('raised by PL/pgSQL'), ('division by zero')$$, 'each is recorded with its class');
SELECT is((SELECT count(*)::int FROM selfheal.audit WHERE ddl IS NOT NULL), 0, 'no DDL was run');

SELECT * FROM finish();
ROLLBACK;
