-- With compat views in place, the application's DDL succeeds without CASCADE.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(6);

CREATE TABLE accounts (id int PRIMARY KEY, tier text, note text);
SELECT ok(selfheal.add_alias('accounts', 'tier_label', $$'tier ' || tier$$) > 0, 'a compat view exists');
SELECT lives_ok('ALTER TABLE accounts ADD COLUMN region text', 'ADD COLUMN');
SELECT has_column('selfheal_compat_public', 'accounts', 'region', 'the new column appears in the compat view');
SELECT lives_ok('ALTER TABLE accounts ALTER COLUMN tier TYPE varchar(20)', 'ALTER COLUMN ... TYPE');
SELECT lives_ok('ALTER TABLE accounts DROP COLUMN tier', 'DROP COLUMN of the aliased source');
SELECT lives_ok('DROP TABLE accounts', 'DROP TABLE');

SELECT * FROM finish();
ROLLBACK;
