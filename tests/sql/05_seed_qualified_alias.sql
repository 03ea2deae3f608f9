-- Seed: cp.package_name resolves cp from the statement; add_alias declares what it means.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(4);

CREATE TABLE credit_packages (id serial PRIMARY KEY, credits int NOT NULL);
INSERT INTO credit_packages (credits) VALUES (10);

SELECT results_eq(
  $$SELECT status FROM selfheal.heal_error('42703', 'column cp.package_name does not exist',
                                           'SELECT cp.package_name FROM credit_packages cp')$$,
  $$VALUES ('healed')$$, 'the alias cp is resolved to credit_packages');
SELECT has_column('public', 'credit_packages', 'package_name', 'no evidence: the column is added');
SELECT ok(selfheal.add_alias('credit_packages', 'package_name', $$'Package ' || credits || ' credits'$$) > 0,
          'add_alias returns its audit id');
SET LOCAL search_path = selfheal_compat_public, public;
SELECT results_eq('SELECT cp.package_name FROM credit_packages cp', $$VALUES ('Package 10 credits')$$,
                  'the declared expression is served');

SELECT * FROM finish();
ROLLBACK;
