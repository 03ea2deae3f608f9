-- A renamed column and a renamed table keep their old names, with no error ever raised.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(7);

CREATE TABLE orders (id int PRIMARY KEY, total numeric);
INSERT INTO orders VALUES (1, 9.5);
ALTER TABLE orders RENAME COLUMN total TO amount;
ALTER TABLE orders RENAME TO purchases;

SET LOCAL search_path = selfheal_compat_public, public;  -- what enable_compat does for a role
SELECT results_eq('SELECT total FROM orders', $$VALUES (9.5::numeric)$$, 'old table and column names both work');
SELECT results_eq('SELECT * FROM purchases', $$VALUES (1, 9.5::numeric)$$,
                  'the new table name serves the old column name in its place');
SELECT columns_are('selfheal_compat_public', 'purchases', ARRAY['id', 'total'],
                   'SELECT * keeps the legacy shape: the old name, not the new one beside it');
RESET search_path;
SELECT is((SELECT count(*)::int FROM selfheal.error_event), 0, 'no error was ever raised or recorded');
SELECT results_eq($$SELECT change FROM selfheal.schema_event ORDER BY id$$,
                  $$VALUES ('column renamed'), ('table renamed')$$, 'both renames are on the drift timeline');
SELECT results_eq($$SELECT kind, legacy_name, source FROM selfheal.alias WHERE active ORDER BY id$$,
                  $$VALUES ('column'::text, 'total'::name, 'rename'::text), ('relation', 'orders', 'rename')$$,
                  'each old name is an alias from the rename');
SELECT ok((SELECT bool_and(status = 'applied') FROM selfheal.audit), 'each is audited as applied');

SELECT * FROM finish();
ROLLBACK;
