-- heal_error changes a table only where the reporting role could have run its statement, inside
-- the policy's scope, and never an extension's table. Refusals are audited with the reason.
-- The reporting role is session_user, so the tenant is played with SET SESSION AUTHORIZATION.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(11);

CREATE ROLE tap_tenant;
GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO tap_tenant;
CREATE SCHEMA secret;
CREATE TABLE secret.payroll (id int PRIMARY KEY, salary int);
CREATE TABLE public.other_owner (id int PRIMARY KEY);
CREATE TABLE public.readable (id int PRIMARY KEY);
GRANT SELECT ON public.readable TO tap_tenant;
CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO tap_tenant;
CREATE TABLE app.items (id int PRIMARY KEY);
GRANT SELECT ON app.items TO tap_tenant;

SET LOCAL SESSION AUTHORIZATION tap_tenant;
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "x" does not exist', 'SELECT x FROM secret.payroll')),
          'refused', 'no USAGE on the schema: refused');
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "x" does not exist', 'SELECT x FROM other_owner')),
          'refused', 'no privilege on the table: refused');
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "x" does not exist', 'UPDATE readable SET x = 1')),
          'refused', 'SELECT alone does not allow healing an UPDATE');
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "x" does not exist', 'SELECT x FROM app.items')),
          'refused', 'a schema outside the default scope (public) is refused');
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "x" does not exist', 'SELECT x FROM readable WHERE x > 0')),
          'healed', 'the role''s own SELECT heals');
RESET SESSION AUTHORIZATION;

SELECT is((SELECT count(*)::int FROM pg_attribute WHERE attname = 'x'
            AND attrelid IN ('secret.payroll'::regclass, 'other_owner'::regclass, 'app.items'::regclass)),
          0, 'no refused table got a column');
SELECT ok((SELECT bool_and(reason LIKE 'refused: %' AND ddl IS NULL) FROM selfheal.audit WHERE status = 'refused')
          AND (SELECT count(*) FROM selfheal.audit WHERE status = 'refused') = 4, 'each refusal is audited with its reason');
SELECT ok((SELECT reason FROM selfheal.audit WHERE status = 'refused' AND table_name = 'items') LIKE '%outside selfheal''s scope%',
          'the scope refusal says how to widen it');

UPDATE selfheal.policy SET value = 'public, app' WHERE name = 'scope';
SET LOCAL SESSION AUTHORIZATION tap_tenant;
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "y" does not exist', 'SELECT y FROM app.items WHERE y > 0')),
          'healed', 'once an administrator adds the schema to the scope, it heals');
RESET SESSION AUTHORIZATION;

-- An extension's table (cron.job, say) is never changed, even for a superuser and a scope of *.
UPDATE selfheal.policy SET value = '*' WHERE name = 'scope';
CREATE TABLE public.extension_owned (id int PRIMARY KEY);
ALTER EXTENSION pgtap ADD TABLE public.extension_owned;
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "x" does not exist', 'SELECT x FROM extension_owned')),
          'refused', 'a table that belongs to an extension is refused');
SELECT is((SELECT count(*)::int FROM pg_attribute WHERE attrelid = 'extension_owned'::regclass AND attname = 'x'),
          0, 'and left alone');

SELECT * FROM finish();
ROLLBACK;
