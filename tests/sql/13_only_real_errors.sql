-- A reported error is evidence only when its statement names the missing identifier where
-- PostgreSQL would report it: not in a string, a comment or a DO block's body.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(5);

CREATE TABLE payroll (id int PRIMARY KEY);
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "forged" of relation "payroll" does not exist',
          $q$DO $$BEGIN RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = 'column "forged" of relation "payroll" does not exist'; END$$$q$)),
          'needs_review', 'a DO block''s RAISE is no evidence');
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "ghost" does not exist',
          $q$SELECT 'ghost' FROM payroll -- ghost$q$)), 'needs_review', 'a name in a string or a comment is no evidence');
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column p.ghost does not exist', 'SELECT q.ghost FROM payroll p')),
          'needs_review', 'the name must come after the qualifier the message names');
SELECT is((SELECT count(*)::int FROM pg_attribute WHERE attrelid = 'payroll'::regclass AND attnum > 0), 1,
          'payroll is untouched');
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column p.ghost does not exist', 'SELECT p.ghost FROM payroll p WHERE p.ghost > 0')),
          'healed', 'the real statement still heals');

SELECT * FROM finish();
ROLLBACK;
