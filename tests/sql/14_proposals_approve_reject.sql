-- What selfheal only proposes, policy modes, approve and reject, and an undo that counts as a
-- rejection: the administrator's decision is remembered.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(19);

CREATE TABLE users (id int PRIMARY KEY, name text, email text, is_admin boolean NOT NULL DEFAULT false);
INSERT INTO users VALUES (1, 'ann', 'a@example.com', true), (2, 'bob', 'b@example.com', false);
-- The reporting role is routed, as an app's would be: a repair is verified as that role.
SELECT selfheal.enable_compat(current_user::name);
CREATE FUNCTION pg_temp.proposal(col text) RETURNS bigint LANGUAGE sql AS
  $$ SELECT id FROM selfheal.audit WHERE column_name = col AND status IN ('pending_approval', 'observed') $$;

SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "nmae" does not exist', 'SELECT nmae FROM users')),
          'pending_approval', 'a probable typo is only proposed');
SELECT is((SELECT count(*)::int FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'nmae'), 0,
          'and no column is added');
SELECT matches((SELECT ddl FROM selfheal.audit WHERE id = pg_temp.proposal('nmae')), 'CREATE VIEW',
               'the proposal carries the DDL approve would run');
SELECT is((SELECT audit_id FROM selfheal.heal_error('42703', 'column "nmae" does not exist', 'SELECT nmae FROM users')),
          pg_temp.proposal('nmae'), 'asked again, it is the same proposal');
SELECT ok(selfheal.approve(pg_temp.proposal('nmae')) > 0, 'approve applies it');
SELECT is((SELECT expression FROM selfheal.alias WHERE legacy_name = 'nmae' AND active), '"name"',
          'as an alias of the column the code meant');

SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "is_admn" does not exist',
                                                  'DELETE FROM users WHERE is_admn = false',
                                                  'Perhaps you meant to reference the column "users.is_admin".')),
          'pending_approval', 'a typo in a DELETE''s WHERE is only proposed');
SELECT is((SELECT count(*)::int FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'is_admn'), 0,
          'no boolean column appears to turn the DELETE into "delete everything"');
SELECT ok(selfheal.reject(pg_temp.proposal('is_admn'), 'the code is wrong') > 0, 'reject records the decision');
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "is_admn" does not exist',
                                                  'DELETE FROM users WHERE is_admn = false')),
          'refused', 'a rejected repair is refused from then on');
SELECT throws_ok($$SELECT selfheal.reject(1)$$, '22023', NULL, 'only a proposal can be rejected');

UPDATE selfheal.policy SET value = 'propose' WHERE name = 'add_column';
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "biography" does not exist', 'SELECT biography FROM users')),
          'pending_approval', 'add_column = propose: proposed');
UPDATE selfheal.policy SET value = 'observe' WHERE name = 'add_column';
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "nickname_x" does not exist', 'SELECT nickname_x FROM users')),
          'observed', 'add_column = observe: recorded only');
UPDATE selfheal.policy SET value = 'auto' WHERE name = 'add_column';

SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "settings_data" does not exist', 'SELECT settings_data FROM users')),
          'healed', 'conclusive evidence under auto heals');
SELECT ok(selfheal.undo((SELECT id FROM selfheal.audit WHERE column_name = 'settings_data' AND status = 'applied')) > 0,
          'an administrator undoes it');
SELECT is((SELECT status FROM selfheal.heal_error('42703', 'column "settings_data" does not exist', 'SELECT settings_data FROM users')),
          'refused', 'the undone repair is not applied again by itself');
SELECT matches((SELECT reason FROM selfheal.audit ORDER BY id DESC LIMIT 1), 'selfheal\.approve\(\d+\)',
               'the refusal names the approve call');
SELECT ok(selfheal.approve((SELECT id FROM selfheal.audit WHERE column_name = 'settings_data' AND status = 'applied'
                                                         AND undone_by IS NOT NULL)) > 0,
          'approve applies the undone change again');
SELECT has_column('users', 'settings_data', 'and the column is back');

SELECT * FROM finish();
ROLLBACK;
