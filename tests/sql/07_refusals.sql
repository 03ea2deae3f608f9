-- Names from error text that fail validation are refused in the audit with no DDL.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(4);

CREATE TABLE t_ref (id int PRIMARY KEY);

SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "x"; DROP TABLE t_ref; --" does not exist',
                                                  'SELECT "x""; DROP TABLE t_ref; --" FROM t_ref')),
          'refused', 'an injection attempt is refused: it would be a new column, which keeps to [A-Za-z0-9_]');
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "pg_evil" does not exist', 'SELECT 1 FROM t_ref')),
          'refused', 'pg_ names are refused');
SELECT is((SELECT count(*)::int FROM selfheal.audit WHERE status = 'refused' AND ddl IS NULL), 2,
          'each refusal is audited with no DDL');
SELECT columns_are('public', 't_ref', ARRAY['id'], 'the table is untouched');

SELECT * FROM finish();
ROLLBACK;
