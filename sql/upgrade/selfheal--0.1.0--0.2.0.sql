-- selfheal 0.1.0 -> 0.2.0: the security model, policy modes and proposals. This part changes
-- tables and drops routines that are gone; `make` appends the routine and privilege files the
-- install script is built from (20, 30, 40, 90), so an upgraded database has the same routines
-- as a new one.
\echo Use "ALTER EXTENSION selfheal UPDATE TO '0.2.0'" to load this file. \quit

-- 0.1.0's event triggers would act on this script's own ALTER TABLEs; their guard keeps them out
-- until the end of this part.
SELECT pg_catalog.set_config('selfheal.in_event_trigger', 'on', true);

-- Policy modes replace the on/off switches: off becomes propose, so nothing waiting is lost.
INSERT INTO selfheal.policy (name, value, description)
SELECT 'add_column', CASE WHEN value IN ('off', 'false', 'no', '0') THEN 'propose' ELSE 'auto' END,
       'Genuinely missing columns: observe (record only), propose (audit the repair for selfheal.approve) or auto. Typos and columns a write''s WHERE uses are only ever proposed'
  FROM selfheal.policy WHERE name = 'add_columns';
INSERT INTO selfheal.policy (name, value, description)
SELECT n, CASE WHEN value IN ('off', 'false', 'no', '0') THEN 'propose' ELSE 'auto' END, d
  FROM selfheal.policy,
       (VALUES ('alias', 'Legacy names of renamed columns and tables (UnitPrice for unit_price): observe, propose or auto'),
               ('derived_alias', 'Derived legacy names (service_type_id beside service_type): observe, propose or auto')) AS m(n, d)
 WHERE name = 'add_aliases';
DELETE FROM selfheal.policy WHERE name IN ('add_columns', 'add_aliases');
INSERT INTO selfheal.policy (name, value, description) VALUES
  ('value_check_rows', '100000', 'Rows whose values a derived name''s cast (service_type_id from service_type) is tried on before it is served; any value that does not convert makes it a review, never a NULL'),
  ('event_retention', '30 days', 'error_event rows older than this are deleted by heal(), in batches, once processed; rows an audit row points at are kept'),
  ('audit_rows_per_role', '1000', 'New refusals, reviews and proposals one reporting role may add to the audit within event_retention; past it they are counted on one row per role, so a storm of junk names cannot grow the audit without bound'),
  ('scope', 'public', 'Where selfheal may change tables: comma-separated schema or schema.table names, or * for every schema but the system''s and selfheal''s own. Tables that belong to an extension are never changed');
UPDATE selfheal.policy SET description = 'Least pause between backfill() batches' WHERE name = 'backfill_pause_ms';
INSERT INTO selfheal.policy (name, value, description) VALUES
  ('backfill_duty_cycle', '0.5', 'Share of its time backfill() works: after each batch it rests long enough to keep to it (1 for no rests, as fast as a plain UPDATE)');

-- Signatures get a fixed-size key: a long message could exceed a btree entry and stop ingestion.
-- 0.1.0 stored the whole folded signature, so md5 of it is the key 0.2.0 computes.
ALTER TABLE selfheal.error_event ADD COLUMN context text, ADD COLUMN signature_key uuid,
    ADD COLUMN occurrences integer NOT NULL DEFAULT 1 CHECK (occurrences > 0), ADD COLUMN last_occurred_at timestamptz;
UPDATE selfheal.error_event SET signature_key = pg_catalog.md5(signature)::uuid, signature = pg_catalog.left(signature, 1000);
ALTER TABLE selfheal.error_event ALTER COLUMN signature_key SET NOT NULL;
DROP INDEX selfheal.error_event_signature_idx;
CREATE INDEX error_event_signature_idx ON selfheal.error_event (signature_key, occurred_at);
COMMENT ON COLUMN selfheal.error_event.context IS 'CONTEXT of the error (from the log): set when it was raised inside a function or trigger, which is never repaired automatically';
COMMENT ON COLUMN selfheal.error_event.signature IS 'SQLSTATE and message with numbers folded, to show (cut at 1000 characters)';
COMMENT ON COLUMN selfheal.error_event.signature_key IS 'md5 of the whole folded signature: groups repeats, fixed size whatever the message';
COMMENT ON COLUMN selfheal.error_event.username IS 'The session user that reported or raised the error: the role selfheal acts for, whose privileges decide';

-- Proposals, observed repairs and decisions.
ALTER TABLE selfheal.error_event DROP CONSTRAINT error_event_status_check,
  ADD CONSTRAINT error_event_status_check CHECK (status IN ('pending', 'healed', 'resolved', 'needs_review', 'refused',
                                   'pending_approval', 'observed', 'not_schema', 'deferred', 'failed',
                                   'ineffective'));
ALTER TABLE selfheal.audit DROP CONSTRAINT audit_action_check, DROP CONSTRAINT audit_status_check,
  ADD CONSTRAINT audit_action_check CHECK (action IN ('add_column', 'add_alias', 'refresh_compat', 'refuse', 'none', 'undo',
                                                 'reject')),
  ADD CONSTRAINT audit_status_check CHECK (status IN ('applied', 'refused', 'pending_approval', 'observed', 'needs_review',
                                                 'deferred', 'failed', 'ineffective')),
  ADD COLUMN decided_by bigint REFERENCES selfheal.audit (id);
COMMENT ON COLUMN selfheal.error_event.status IS 'pending, healed, resolved (nothing left to do), needs_review, refused, pending_approval (a proposal awaits selfheal.approve), observed (policy: record only), not_schema, deferred, failed, ineffective (the repair did not make the statement plan, so it was rolled back)';
COMMENT ON COLUMN selfheal.audit.action IS 'add_column, add_alias, refresh_compat (views caught up with the table), refuse, none (review only), undo or reject';
COMMENT ON COLUMN selfheal.audit.status IS 'applied, refused, pending_approval (a proposal: its DDL runs on selfheal.approve), observed (policy: record only), needs_review, deferred (table was locked; heal() retries), failed (rolled back whole) or ineffective (the failing statement still failed as its role after the DDL, so it was rolled back)';
COMMENT ON COLUMN selfheal.audit.decided_by IS 'For a proposal: the audit row that applied it (approve) or rejected it';
-- Repeated refusals count on one row; a client-reported error the log also recorded counts once.
ALTER TABLE selfheal.audit ADD COLUMN repeats integer NOT NULL DEFAULT 1,
  ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();
UPDATE selfheal.audit SET last_seen_at = created_at;
ALTER TABLE selfheal.error_event ADD COLUMN seen_in_log boolean NOT NULL DEFAULT false;
-- heal() looks for client reports the log also recorded, by time, among those not yet matched.
CREATE INDEX error_event_client_idx ON selfheal.error_event (received_at) WHERE source = 'client' AND NOT seen_in_log;
COMMENT ON COLUMN selfheal.error_event.seen_in_log IS 'A client-reported error that the server log recorded too: the log''s entry was not stored again, so it counts once';
COMMENT ON TABLE selfheal.error_event IS 'One row per error reported to selfheal, or per error the server log wrote, its repeats within the same second counted on the same row';
COMMENT ON COLUMN selfheal.error_event.occurrences IS 'How many times the error happened: for the log, its entries within one second that differ only in session and in constants that cannot change the statement''s meaning (the statement kept is the first''s)';
COMMENT ON COLUMN selfheal.error_event.last_occurred_at IS 'For occurrences > 1: the time of the last of them (occurred_at is the first''s)';
COMMENT ON COLUMN selfheal.audit.repeats IS 'For a refusal or review: how many times the same decision was reached (one row, not one per error)';
COMMENT ON COLUMN selfheal.audit.last_seen_at IS 'For a refusal or review: when the same decision was last reached';
-- Repeated refusals and reviews are found again by their table and name, to be counted on one row.
CREATE INDEX audit_undecided_idx ON selfheal.audit (table_name, column_name)
  WHERE status IN ('refused', 'needs_review', 'pending_approval', 'observed') AND decided_by IS NULL;
CREATE TABLE selfheal.rejection (
    schema_name name NOT NULL,
    table_name  name NOT NULL,
    name        name NOT NULL,
    action      text NOT NULL,
    audit_id    bigint NOT NULL REFERENCES selfheal.audit (id),
    decided_by  bigint NOT NULL REFERENCES selfheal.audit (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, table_name, name, action)
);
COMMENT ON TABLE selfheal.rejection IS 'Repairs an administrator rejected or undid: never applied automatically again until selfheal.approve';
COMMENT ON COLUMN selfheal.rejection.schema_name IS 'Schema of the table';
COMMENT ON COLUMN selfheal.rejection.table_name IS 'Table';
COMMENT ON COLUMN selfheal.rejection.name IS 'The column or legacy name the repair was about';
COMMENT ON COLUMN selfheal.rejection.action IS 'add_column, add_alias, or add_alias writes (a compat view''s write triggers)';
COMMENT ON COLUMN selfheal.rejection.audit_id IS 'The proposal or change that was rejected or undone: pass it to selfheal.approve';
COMMENT ON COLUMN selfheal.rejection.decided_by IS 'The reject or undo audit row';
COMMENT ON COLUMN selfheal.rejection.created_at IS 'When it was decided';
SELECT pg_catalog.pg_extension_config_dump('selfheal.rejection', '');
-- 0.1.0 recorded an undo as nothing more; from now on it is a rejection.
INSERT INTO selfheal.rejection (schema_name, table_name, name, action, audit_id, decided_by)
SELECT DISTINCT ON (schema_name, table_name, column_name, action) schema_name, table_name, column_name, action, id, undone_by
  FROM selfheal.audit WHERE undone_by IS NOT NULL AND column_name IS NOT NULL AND action IN ('add_column', 'add_alias')
 ORDER BY schema_name, table_name, column_name, action, id DESC;

-- Bodies now extend sys.path themselves; the workers' callers no longer pass a search_path.
DROP FUNCTION selfheal._load_python();
DROP FUNCTION selfheal._ddl_start(text, text);

SELECT pg_catalog.set_config('selfheal.in_event_trigger', 'off', true);

ALTER TABLE selfheal.alias ADD COLUMN writable boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN selfheal.alias.writable IS 'true: the table''s compat views take writes through INSTEAD OF triggers (a derived name lands in its source column; COPY FROM works), approved by an administrator because such a view refuses INSERT ... ON CONFLICT';
COMMENT ON COLUMN selfheal.alias.kind IS 'column: a legacy column name; relation: a legacy table name, or the table''s own name shown in its legacy naming style';
COMMENT ON COLUMN selfheal.alias.style IS 'For relation aliases: how its columns are named (same, pascal, flat); a column''s own rename alias names it in place whatever the style';
COMMENT ON COLUMN selfheal.alias.source IS 'Evidence: user, rename (the drift timeline saw it), hint, normalisation, style (the table''s whole naming moved to snake_case), current (a new name routed code uses beside the legacy one), convention, leftover (an object still named for it), typo, position (the only column left where the name was, or one that keeps it as a word)';
COMMENT ON SCHEMA selfheal_compat IS
  'Trigger functions that keep in-table derived columns in sync; compat views are in selfheal_compat_<schema>';
