-- The event triggers' first test: unrelated DDL skips PL/Python, and anything that may concern
-- selfheal (a rename, a drop, a table with aliases, a text not known) goes on to the exact check.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS selfheal CASCADE;
SELECT plan(7);

SELECT ok(NOT selfheal._concerns('CREATE TABLE t_new (id int)'), 'a new table, with no aliases anywhere: skipped');
SELECT ok(NOT selfheal._concerns('ALTER TABLE t_new ADD COLUMN note text'), 'an added column selfheal never added: skipped');
SELECT ok(selfheal._concerns('ALTER TABLE t_new RENAME COLUMN id TO key'), 'a rename goes on');
SELECT ok(selfheal._concerns('alter table t_new drop column note'), 'a dropped column goes on, whatever the case');
SELECT ok(selfheal._concerns(NULL), 'a statement whose text is not known goes on');

CREATE TABLE t_aliased (id int PRIMARY KEY, service_type text);
INSERT INTO selfheal.alias (schema_name, table_name, legacy_name, kind, expression, source)
VALUES ('public', 't_aliased', 'service_type_id', 'column', '("service_type")::integer', 'user');
SELECT ok(selfheal._concerns('ALTER TABLE t_aliased ADD COLUMN note text'), 'DDL on a table with aliases goes on');
SELECT ok(selfheal._concerns('SELECT run_migration()'), 'DDL from inside a function, with aliases in place, goes on');

SELECT * FROM finish();
ROLLBACK;
