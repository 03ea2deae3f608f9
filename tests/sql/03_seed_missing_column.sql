-- Seed: a genuinely missing column is added with a type and default inferred from its name.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(5);

CREATE TABLE sessions (id serial PRIMARY KEY, service_type text NOT NULL);
INSERT INTO sessions (service_type) VALUES ('1'), ('premium');

SELECT throws_ok('SELECT recommendation_data FROM sessions', '42703');
SELECT results_eq(
  $$SELECT status, action FROM selfheal.heal_error('42703', 'column "recommendation_data" does not exist',
                                                   'SELECT recommendation_data FROM sessions')$$,
  $$VALUES ('healed', 'add_column')$$, 'the missing column is added');
SELECT col_type_is('sessions', 'recommendation_data', 'jsonb');
SELECT results_eq('SELECT recommendation_data FROM sessions', $$VALUES ('{}'::jsonb), ('{}'::jsonb)$$,
                  'existing rows read the constant default');
SELECT matches((SELECT ddl FROM selfheal.audit ORDER BY id DESC LIMIT 1),
               'ADD COLUMN IF NOT EXISTS "recommendation_data" jsonb DEFAULT',
               'the audit holds the exact DDL');

SELECT * FROM finish();
ROLLBACK;
