-- Event trigger work is set off only by real DDL: the workers are not executable, the shims
-- cannot be called, and a temporary table never retires a legacy name for everyone.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(9);

CREATE ROLE tap_intruder;
GRANT CREATE ON SCHEMA public TO tap_intruder;
CREATE TABLE invoice_line (id int PRIMARY KEY, unit_price int);
-- The reporting role is routed, as an app's would be: a repair is verified as that role.
SELECT selfheal.enable_compat(current_user::name);
SELECT is((SELECT status FROM selfheal.heal_error('42P01', 'relation "invoiceline" does not exist',
                                                  'SELECT * FROM invoiceline')), 'healed', 'a legacy table name is served');
SELECT ok(selfheal.add_alias('invoice_line', 'legacy_price', 'unit_price') > 0, 'and a legacy column name');

SET LOCAL ROLE tap_intruder;
SELECT throws_ok($$SELECT selfheal._ddl_start('ALTER TABLE')$$, '42501', NULL, '_ddl_start cannot be called');
SELECT throws_ok($$SELECT selfheal._ddl_end('CREATE TABLE', ARRAY['invoice_line'::regclass::oid])$$, '42501', NULL,
                 '_ddl_end cannot be called');
SELECT throws_ok($$SELECT selfheal._ddl_dropped(ARRAY['public'], ARRAY['invoice_line'])$$, '42501', NULL,
                 '_ddl_dropped cannot be called');
SELECT throws_ok($$SELECT selfheal._drop_extension_start('DROP EXTENSION selfheal')$$, '42501', NULL,
                 '_drop_extension_start cannot be called');
SELECT throws_ok($$SELECT selfheal.on_ddl_start()$$, '42501', NULL, 'nor can an event trigger shim');
CREATE TEMP TABLE invoiceline (x int);
RESET ROLE;

SELECT is((SELECT count(*)::int FROM selfheal.alias WHERE active), 2, 'every alias is still served');
SELECT is((SELECT count(*)::int FROM pg_class WHERE relnamespace = 'selfheal_compat_public'::regnamespace AND relkind = 'v'),
          2, 'both compat views are still there');

SELECT * FROM finish();
ROLLBACK;
