-- selfheal 0.1.0 -> 0.2.0: the security model. This part changes tables and drops routines
-- that are gone; `make` appends the routine and privilege files the install script is built
-- from (20, 30, 40, 90), so an upgraded database has the same routines as a new one.
\echo Use "ALTER EXTENSION selfheal UPDATE TO '0.2.0'" to load this file. \quit

INSERT INTO selfheal.policy (name, value, description) VALUES
  ('scope', 'public', 'Where selfheal may change tables: comma-separated schema or schema.table names, or * for every schema but the system''s and selfheal''s own. Tables that belong to an extension are never changed');

-- 0.1.0's event triggers would act on this script's own ALTER TABLE; its guard keeps them out.
SELECT pg_catalog.set_config('selfheal.in_event_trigger', 'on', true);

-- Signatures get a fixed-size key: a long message could exceed a btree entry and stop ingestion.
-- 0.1.0 stored the whole folded signature, so md5 of it is the key 0.2.0 computes.
ALTER TABLE selfheal.error_event ADD COLUMN context text, ADD COLUMN signature_key uuid;
UPDATE selfheal.error_event SET signature_key = pg_catalog.md5(signature)::uuid, signature = pg_catalog.left(signature, 1000);
ALTER TABLE selfheal.error_event ALTER COLUMN signature_key SET NOT NULL;
DROP INDEX selfheal.error_event_signature_idx;
CREATE INDEX error_event_signature_idx ON selfheal.error_event (signature_key, occurred_at);
SELECT pg_catalog.set_config('selfheal.in_event_trigger', 'off', true);
COMMENT ON COLUMN selfheal.error_event.context IS 'CONTEXT of the error (from the log): set when it was raised inside a function or trigger, which is never repaired automatically';
COMMENT ON COLUMN selfheal.error_event.signature IS 'SQLSTATE and message with numbers folded, to show (cut at 1000 characters)';
COMMENT ON COLUMN selfheal.error_event.signature_key IS 'md5 of the whole folded signature: groups repeats, fixed size whatever the message';
COMMENT ON COLUMN selfheal.error_event.username IS 'The session user that reported or raised the error: the role selfheal acts for, whose privileges decide';

-- Bodies now extend sys.path themselves; the workers' callers no longer pass a search_path.
DROP FUNCTION selfheal._load_python();
DROP FUNCTION selfheal._ddl_start(text, text);

