-- Seed: service_type_id is served as service_type::integer through the compat view.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(6);

CREATE TABLE sessions (id serial PRIMARY KEY, service_type text NOT NULL);
INSERT INTO sessions (service_type) VALUES ('1'), ('2'), ('3');
-- The reporting role is routed, as an app's would be: a repair is verified as that role.
SELECT selfheal.enable_compat(current_user::name);

SELECT results_eq(
  $$SELECT status, action FROM selfheal.heal_error('42703', 'column "service_type_id" does not exist',
      'SELECT * FROM sessions WHERE service_type_id = 1',
      'Perhaps you meant to reference the column "sessions.service_type".')$$,
  $$VALUES ('healed', 'add_alias')$$, 'x_id beside x becomes an alias');
SELECT hasnt_column('public', 'sessions', 'service_type_id', 'the table itself is not changed');
SELECT has_view('selfheal_compat_public', 'sessions', 'a compat view serves the legacy name');

SET LOCAL search_path = selfheal_compat_public, public;  -- what enable_compat does for a role
SELECT results_eq('SELECT id FROM sessions WHERE service_type_id = 1', 'VALUES (1)', 'the failing query now works');
SELECT results_eq('SELECT service_type, service_type_id FROM sessions ORDER BY id',
                  $$VALUES ('1', 1), ('2', 2), ('3', 3)$$,
                  'both names work');
SELECT lives_ok($$INSERT INTO sessions (service_type) VALUES ('9')$$, 'writes through canonical names still work');

SELECT * FROM finish();
ROLLBACK;
