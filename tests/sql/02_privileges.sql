-- Privileges: nothing open to PUBLIC; an app role heals only with a grant; policy is admin-only.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(12);

CREATE ROLE tap_app;
CREATE TABLE t_priv (id int PRIMARY KEY);
GRANT SELECT ON t_priv TO tap_app;

SELECT ok(NOT has_function_privilege('public', 'selfheal.heal_error(text,text,text,text)', 'EXECUTE'),
          'PUBLIC cannot call heal_error');
SELECT ok(NOT has_function_privilege('public', 'selfheal.heal()', 'EXECUTE'), 'PUBLIC cannot call selfheal.heal');
SELECT ok(NOT has_function_privilege('public', 'selfheal.undo(bigint,boolean)', 'EXECUTE'), 'PUBLIC cannot undo');
SELECT ok(NOT has_table_privilege('public', 'selfheal.audit', 'SELECT'), 'PUBLIC cannot read the audit');
SELECT ok(NOT has_table_privilege('public', 'selfheal.policy', 'UPDATE'), 'PUBLIC cannot change policy');

SET LOCAL ROLE tap_app;
SELECT throws_ok($$SELECT * FROM selfheal.heal_error('42703', 'column "x" does not exist', 'SELECT x FROM t_priv')$$,
                 '42501', NULL, 'an app role without the grant cannot heal');
RESET ROLE;

GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO tap_app;
-- selfheal acts for session_user, so the app logs in here as itself.
SET LOCAL SESSION AUTHORIZATION tap_app;
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "note" does not exist',
                                                  'SELECT note FROM t_priv WHERE note <> ''''')),
          'healed', 'with the grant, the app role heals a table it does not own but may read');
SELECT throws_ok($$UPDATE selfheal.policy SET value = '1000' WHERE name = 'column_budget_per_table'$$,
                 '42501', NULL, 'the app role cannot raise its own budget');
RESET SESSION AUTHORIZATION;

-- Compat views check the caller's own rights on the table (security_invoker).
CREATE ROLE tap_other;
SELECT ok(selfheal.add_alias('t_priv', 'legacy_id', 'id') > 0, 'an alias creates the compat view');
SET LOCAL ROLE tap_other;
SELECT throws_ok('SELECT * FROM selfheal_compat_public.t_priv', '42501', NULL,
                 'a role without rights on the table gains none through the compat view');
RESET ROLE;
SELECT matches(selfheal.enable_compat('tap_app'), '^role tap_app now reads through the compat schemas',
               'enable_compat routes the role');
SET LOCAL ROLE tap_app;
SELECT lives_ok('SELECT legacy_id FROM selfheal_compat_public.t_priv', 'a role with rights on the table reads it');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
