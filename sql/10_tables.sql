-- selfheal: tables. History tables are marked for pg_dump so their rows survive a dump and restore;
-- policy is not (its rows come from this script), so re-apply changed policy values after a restore.
-- Only CREATE EXTENSION runs this file; an upgrade script changes the tables itself.

CREATE TABLE selfheal.policy (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    description text NOT NULL
);
COMMENT ON TABLE selfheal.policy IS
  'Limits on what selfheal may change. A table, not GUCs, so a session cannot raise its own budget';
COMMENT ON COLUMN selfheal.policy.name IS 'Setting name';
COMMENT ON COLUMN selfheal.policy.value IS 'Setting value, as text';
COMMENT ON COLUMN selfheal.policy.description IS 'What the setting controls';

INSERT INTO selfheal.policy (name, value, description) VALUES
  ('column_budget_per_table', '10', 'New columns selfheal may add to one table; further requests are refused'),
  ('column_headroom', '100', 'Never bring a table within this many attnums of PostgreSQL''s 1600-column limit'),
  ('add_column', 'auto', 'Genuinely missing columns: observe (record only), propose (audit the repair for selfheal.approve) or auto. Typos and columns a write''s WHERE uses are only ever proposed'),
  ('alias', 'auto', 'Legacy names of renamed columns and tables (UnitPrice for unit_price): observe, propose or auto'),
  ('derived_alias', 'auto', 'Derived legacy names (service_type_id beside service_type): observe, propose or auto'),
  ('lock_timeout', '200ms', 'lock_timeout for every repair; a busy table makes the repair give up, not queue'),
  ('lock_retries', '3', 'Attempts per repair when the table is locked, with exponential backoff'),
  ('retry_backoff_ms', '50', 'Backoff before the second attempt; doubled each time'),
  ('heal_batch_size', '10000', 'Events one heal() call processes at most; identical events are planned once'),
  ('log_read_max_mb', '64', 'Megabytes of server log one heal() call reads at most; the next call goes on'),
  ('derived_columns', 'view', 'Where a derived column (x_id beside x) lives: view (compat view, catalog only) or table (a real column)'),
  ('generated_column_row_limit', '100000', 'An in-table derived column is a STORED generated column only up to this many rows; above, a synced column filled by backfill()'),
  ('value_check_rows', '100000', 'Rows whose values a derived name''s cast (service_type_id from service_type) is tried on before it is served; any value that does not convert makes it a review, never a NULL'),
  ('event_retention', '30 days', 'error_event rows older than this are deleted by heal(), in batches, once processed; rows an audit row points at are kept'),
  ('audit_rows_per_role', '1000', 'New refusals, reviews and proposals one reporting role may add to the audit within event_retention; past it they are counted on one row per role, so a storm of junk names cannot grow the audit without bound'),
  ('backfill_batch_rows', '10000', 'Rows per backfill() batch; each batch commits'),
  ('backfill_pause_ms', '10', 'Least pause between backfill() batches'),
  ('backfill_duty_cycle', '0.5', 'Share of its time backfill() works: after each batch it rests long enough to keep to it (1 for no rests, as fast as a plain UPDATE)'),
  ('scope', 'public', 'Where selfheal may change tables: comma-separated schema or schema.table names, or * for every schema but the system''s and selfheal''s own. Tables that belong to an extension are never changed');

CREATE TABLE selfheal.error_event (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL CHECK (source IN ('client', 'log', 'event_trigger')),
    sqlstate     text NOT NULL,
    message      text NOT NULL,
    hint         text,
    statement    text,
    username     name,
    database_name name,
    application_name text,
    session_id   text,
    context      text,
    signature    text NOT NULL,
    signature_key uuid NOT NULL,
    class        text NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'healed', 'resolved', 'needs_review', 'refused',
                                   'pending_approval', 'observed', 'not_schema', 'deferred', 'failed',
                                   'ineffective')),
    reason       text,
    audit_id     bigint,
    attempts     integer NOT NULL DEFAULT 0,
    processed_at timestamptz,
    seen_in_log  boolean NOT NULL DEFAULT false,
    occurrences  integer NOT NULL DEFAULT 1 CHECK (occurrences > 0),
    last_occurred_at timestamptz
);
COMMENT ON TABLE selfheal.error_event IS 'One row per error reported to selfheal, or per error the server log wrote, its repeats within the same second counted on the same row';
COMMENT ON COLUMN selfheal.error_event.id IS 'Event id';
COMMENT ON COLUMN selfheal.error_event.received_at IS 'When selfheal received the error';
COMMENT ON COLUMN selfheal.error_event.occurred_at IS 'When the error happened: the log line''s time, or when it was reported';
COMMENT ON COLUMN selfheal.error_event.source IS 'client (heal_error, record_error), log (server log) or event_trigger';
COMMENT ON COLUMN selfheal.error_event.sqlstate IS 'SQLSTATE of the error';
COMMENT ON COLUMN selfheal.error_event.message IS 'Primary message, as PostgreSQL wrote it (truncated at 4000 characters)';
COMMENT ON COLUMN selfheal.error_event.hint IS 'HINT, which for 42703 may name the intended column';
COMMENT ON COLUMN selfheal.error_event.statement IS 'The failing statement; only scanned, never executed';
COMMENT ON COLUMN selfheal.error_event.username IS 'The session user that reported or raised the error: the role selfheal acts for, whose privileges decide';
COMMENT ON COLUMN selfheal.error_event.database_name IS 'Database the error happened in (from the log)';
COMMENT ON COLUMN selfheal.error_event.application_name IS 'application_name of the failing session (from the log)';
COMMENT ON COLUMN selfheal.error_event.session_id IS 'Session id of the failing session (from the log)';
COMMENT ON COLUMN selfheal.error_event.context IS 'CONTEXT of the error (from the log): set when it was raised inside a function or trigger, which is never repaired automatically';
COMMENT ON COLUMN selfheal.error_event.signature IS 'SQLSTATE and message with numbers folded, to show (cut at 1000 characters)';
COMMENT ON COLUMN selfheal.error_event.signature_key IS 'md5 of the whole folded signature: groups repeats, fixed size whatever the message';
COMMENT ON COLUMN selfheal.error_event.class IS 'missing_column, missing_relation, or the error class of anything else';
COMMENT ON COLUMN selfheal.error_event.status IS 'pending, healed, resolved (nothing left to do), needs_review, refused, pending_approval (a proposal awaits selfheal.approve), observed (policy: record only), not_schema, deferred, failed, ineffective (the repair did not make the statement plan, so it was rolled back)';
COMMENT ON COLUMN selfheal.error_event.reason IS 'Why the event has its status';
COMMENT ON COLUMN selfheal.error_event.audit_id IS 'The audit row of the action taken for this event';
COMMENT ON COLUMN selfheal.error_event.attempts IS 'How many times heal has processed it';
COMMENT ON COLUMN selfheal.error_event.processed_at IS 'When it was last processed';
COMMENT ON COLUMN selfheal.error_event.occurrences IS 'How many times the error happened: for the log, its entries within one second that differ only in session and in constants that cannot change the statement''s meaning (the statement kept is the first''s)';
COMMENT ON COLUMN selfheal.error_event.last_occurred_at IS 'For occurrences > 1: the time of the last of them (occurred_at is the first''s)';
COMMENT ON COLUMN selfheal.error_event.seen_in_log IS 'A client-reported error that the server log recorded too: the log''s entry was not stored again, so it counts once';
-- heal() scans for work to do: a partial index keeps that cheap however much history there is.
CREATE INDEX error_event_pending_idx ON selfheal.error_event (id) WHERE status IN ('pending', 'deferred');
-- Reports group by signature and split its occurrences at the time of the repair. The key is a
-- fixed-size hash: a long message can never exceed a btree entry and stop ingestion.
CREATE INDEX error_event_signature_idx ON selfheal.error_event (signature_key, occurred_at);
-- heal() looks for client reports the log also recorded, by time, among those not yet matched.
CREATE INDEX error_event_client_idx ON selfheal.error_event (received_at) WHERE source = 'client' AND NOT seen_in_log;

CREATE TABLE selfheal.audit (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at   timestamptz NOT NULL DEFAULT now(),
    actor        name NOT NULL DEFAULT session_user,
    event_id     bigint REFERENCES selfheal.error_event (id),
    action       text NOT NULL CHECK (action IN ('add_column', 'add_alias', 'refresh_compat', 'refuse', 'none', 'undo',
                                                 'reject')),
    status       text NOT NULL CHECK (status IN ('applied', 'refused', 'pending_approval', 'observed', 'needs_review',
                                                 'deferred', 'failed', 'ineffective')),
    schema_name  name,
    table_name   name,
    column_name  name,
    reason       text NOT NULL,
    evidence     jsonb NOT NULL DEFAULT '{}',
    ddl          text,
    undo_ddl     text,
    lock_profile text,
    duration_ms  double precision,
    error        text,
    undo_of      bigint REFERENCES selfheal.audit (id),
    undone_by    bigint REFERENCES selfheal.audit (id),
    decided_by   bigint REFERENCES selfheal.audit (id),
    repeats      integer NOT NULL DEFAULT 1,
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE selfheal.audit IS 'One row per action selfheal took or refused to take';
COMMENT ON COLUMN selfheal.audit.id IS 'Audit id; pass to selfheal.undo() to reverse an applied change';
COMMENT ON COLUMN selfheal.audit.created_at IS 'When the action was taken';
COMMENT ON COLUMN selfheal.audit.actor IS 'Session user whose call led to the action';
COMMENT ON COLUMN selfheal.audit.event_id IS 'The error event that led to it; NULL for add_alias and undo calls';
COMMENT ON COLUMN selfheal.audit.action IS 'add_column, add_alias, refresh_compat (views caught up with the table), refuse, none (review only), undo or reject';
COMMENT ON COLUMN selfheal.audit.status IS 'applied, refused, pending_approval (a proposal: its DDL runs on selfheal.approve), observed (policy: record only), needs_review, deferred (table was locked; heal() retries), failed (rolled back whole) or ineffective (the failing statement still failed as its role after the DDL, so it was rolled back)';
COMMENT ON COLUMN selfheal.audit.schema_name IS 'Schema of the table concerned';
COMMENT ON COLUMN selfheal.audit.table_name IS 'Table concerned';
COMMENT ON COLUMN selfheal.audit.column_name IS 'Column or legacy name concerned';
COMMENT ON COLUMN selfheal.audit.reason IS 'Why: the decision in one sentence';
COMMENT ON COLUMN selfheal.audit.evidence IS 'What the decision rests on: hint, normalisation, convention, type inference';
COMMENT ON COLUMN selfheal.audit.ddl IS 'The exact DDL run, in order';
COMMENT ON COLUMN selfheal.audit.undo_ddl IS 'DDL that reversed this change at the time it was made; undo() recomputes it against the current state';
COMMENT ON COLUMN selfheal.audit.lock_profile IS 'Locks taken and whether rows were rewritten or scanned';
COMMENT ON COLUMN selfheal.audit.duration_ms IS 'Time the DDL took';
COMMENT ON COLUMN selfheal.audit.error IS 'For failed: the SQLSTATE and message of the failure';
COMMENT ON COLUMN selfheal.audit.undo_of IS 'For undo: the audit row it reversed';
COMMENT ON COLUMN selfheal.audit.undone_by IS 'For a reversed change: the undo audit row';
COMMENT ON COLUMN selfheal.audit.decided_by IS 'For a proposal: the audit row that applied it (approve) or rejected it';
COMMENT ON COLUMN selfheal.audit.repeats IS 'For a refusal or review: how many times the same decision was reached (one row, not one per error)';
COMMENT ON COLUMN selfheal.audit.last_seen_at IS 'For a refusal or review: when the same decision was last reached';
-- Budget checks count applied columns per table.
CREATE INDEX audit_table_idx ON selfheal.audit (schema_name, table_name) WHERE status = 'applied';
CREATE INDEX audit_event_idx ON selfheal.audit (event_id);
-- Repeated refusals and reviews are found again by their table and name, to be counted on one row.
CREATE INDEX audit_undecided_idx ON selfheal.audit (table_name, column_name)
  WHERE status IN ('refused', 'needs_review', 'pending_approval', 'observed') AND decided_by IS NULL;

CREATE TABLE selfheal.alias (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name name NOT NULL,
    table_name  name NOT NULL,
    legacy_name name NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('column', 'relation')),
    expression  text,
    style       text NOT NULL DEFAULT 'same' CHECK (style IN ('same', 'pascal', 'flat')),
    source      text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    audit_id    bigint REFERENCES selfheal.audit (id),
    replaces    bigint REFERENCES selfheal.alias (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    writable    boolean NOT NULL DEFAULT false,
    CHECK ((kind = 'column') = (expression IS NOT NULL))
);
COMMENT ON TABLE selfheal.alias IS 'Legacy names served by the compat views';
COMMENT ON COLUMN selfheal.alias.id IS 'Alias id';
COMMENT ON COLUMN selfheal.alias.schema_name IS 'Schema of the canonical table';
COMMENT ON COLUMN selfheal.alias.table_name IS 'Canonical table';
COMMENT ON COLUMN selfheal.alias.legacy_name IS 'The name legacy code uses';
COMMENT ON COLUMN selfheal.alias.kind IS 'column: a legacy column name; relation: a legacy table name, or the table''s own name shown in its legacy naming style';
COMMENT ON COLUMN selfheal.alias.expression IS 'For column aliases: SQL over the table''s columns that the legacy name reads as';
COMMENT ON COLUMN selfheal.alias.style IS 'For relation aliases: how its columns are named (same, pascal, flat); a column''s own rename alias names it in place whatever the style';
COMMENT ON COLUMN selfheal.alias.source IS 'Evidence: user, rename (the drift timeline saw it), hint, normalisation, style (the table''s whole naming moved to snake_case), current (a new name routed code uses beside the legacy one), convention, leftover (an object still named for it), typo, position (the only column left where the name was, or one that keeps it as a word)';
COMMENT ON COLUMN selfheal.alias.active IS 'false once undone or replaced';
COMMENT ON COLUMN selfheal.alias.audit_id IS 'The audit row that created it';
COMMENT ON COLUMN selfheal.alias.replaces IS 'The alias of the same name it replaced; undo serves that one again';
COMMENT ON COLUMN selfheal.alias.created_at IS 'When it was created';
COMMENT ON COLUMN selfheal.alias.writable IS 'true: the table''s compat views take writes through INSTEAD OF triggers (a derived name lands in its source column; COPY FROM works), approved by an administrator because such a view refuses INSERT ... ON CONFLICT';
-- One live alias per legacy name and table; lookups go by table.
CREATE UNIQUE INDEX alias_active_name_idx ON selfheal.alias (schema_name, table_name, kind, legacy_name) WHERE active;

CREATE TABLE selfheal.log_bookmark (
    log_format  text PRIMARY KEY CHECK (log_format IN ('jsonlog', 'csvlog')),
    positions   jsonb NOT NULL DEFAULT '{}',
    since       double precision,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    lines_read  bigint NOT NULL DEFAULT 0,
    errors_read bigint NOT NULL DEFAULT 0,
    malformed   bigint NOT NULL DEFAULT 0,
    last_problem text
);
COMMENT ON TABLE selfheal.log_bookmark IS 'How far heal() has read the server log; its row lock makes concurrent readers take turns';
COMMENT ON COLUMN selfheal.log_bookmark.log_format IS 'jsonlog or csvlog';
COMMENT ON COLUMN selfheal.log_bookmark.positions IS 'Per log file name: [inode, byte offset after the last complete record read]';
COMMENT ON COLUMN selfheal.log_bookmark.since IS 'Modification time (epoch) of the first file read; older files are left alone';
COMMENT ON COLUMN selfheal.log_bookmark.updated_at IS 'When the log was last read';
COMMENT ON COLUMN selfheal.log_bookmark.lines_read IS 'Log records read so far';
COMMENT ON COLUMN selfheal.log_bookmark.errors_read IS 'ERROR records of this database recorded as events so far';
COMMENT ON COLUMN selfheal.log_bookmark.malformed IS 'Records that could not be parsed, skipped';
COMMENT ON COLUMN selfheal.log_bookmark.last_problem IS 'Why the last read failed or fell short, if it did';
-- The rows exist from the start: a reader only ever takes one with FOR UPDATE SKIP LOCKED, and
-- never waits on an insert. Not dumped: positions describe this server's files only.
INSERT INTO selfheal.log_bookmark (log_format) VALUES ('jsonlog'), ('csvlog');

CREATE TABLE selfheal.backfill_job (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    audit_id    bigint NOT NULL REFERENCES selfheal.audit (id),
    schema_name name NOT NULL,
    table_name  name NOT NULL,
    column_name name NOT NULL,
    key_column  name NOT NULL,
    expression  text NOT NULL,
    last_key    text,
    rows_done   bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz
);
COMMENT ON TABLE selfheal.backfill_job IS 'In-table derived columns still being filled by CALL selfheal.backfill()';
COMMENT ON COLUMN selfheal.backfill_job.id IS 'Job id';
COMMENT ON COLUMN selfheal.backfill_job.audit_id IS 'The repair that added the column';
COMMENT ON COLUMN selfheal.backfill_job.schema_name IS 'Schema of the table';
COMMENT ON COLUMN selfheal.backfill_job.table_name IS 'Table';
COMMENT ON COLUMN selfheal.backfill_job.column_name IS 'The derived column being filled';
COMMENT ON COLUMN selfheal.backfill_job.key_column IS 'Single-column primary key the batches walk';
COMMENT ON COLUMN selfheal.backfill_job.expression IS 'SQL over the table''s columns that gives the value';
COMMENT ON COLUMN selfheal.backfill_job.last_key IS 'Highest key filled so far: where a resumed backfill starts';
COMMENT ON COLUMN selfheal.backfill_job.rows_done IS 'Rows filled so far';
COMMENT ON COLUMN selfheal.backfill_job.created_at IS 'When the job was made';
COMMENT ON COLUMN selfheal.backfill_job.updated_at IS 'When the last batch committed';
COMMENT ON COLUMN selfheal.backfill_job.done_at IS 'When the last batch found nothing left';
-- backfill() looks for unfinished jobs only.
CREATE INDEX backfill_job_pending_idx ON selfheal.backfill_job (id) WHERE done_at IS NULL;
SELECT pg_catalog.pg_extension_config_dump('selfheal.backfill_job', '');

CREATE TABLE selfheal.schema_event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       name NOT NULL DEFAULT session_user,
    command_tag text NOT NULL,
    schema_name name,
    table_name  name,
    change      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE selfheal.schema_event IS 'Drift timeline: schema changes to tables with aliases or compat views, and renames';
COMMENT ON COLUMN selfheal.schema_event.id IS 'Event id';
COMMENT ON COLUMN selfheal.schema_event.at IS 'When the DDL ran (its transaction start)';
COMMENT ON COLUMN selfheal.schema_event.actor IS 'Session user that ran the DDL';
COMMENT ON COLUMN selfheal.schema_event.command_tag IS 'ALTER TABLE, CREATE TABLE or DROP TABLE';
COMMENT ON COLUMN selfheal.schema_event.schema_name IS 'Schema of the table, after the DDL';
COMMENT ON COLUMN selfheal.schema_event.table_name IS 'Table, after the DDL';
COMMENT ON COLUMN selfheal.schema_event.change IS 'table renamed, column renamed, column dropped, column added, alias broken, legacy name retired, compat views not rebuilt';
COMMENT ON COLUMN selfheal.schema_event.detail IS 'Names before and after, or the error';
-- The timeline is read per table, newest first.
CREATE INDEX schema_event_table_idx ON selfheal.schema_event (schema_name, table_name, at);
SELECT pg_catalog.pg_extension_config_dump('selfheal.schema_event', '');

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

ALTER TABLE selfheal.error_event ADD FOREIGN KEY (audit_id) REFERENCES selfheal.audit (id);

SELECT pg_catalog.pg_extension_config_dump('selfheal.error_event', '');
SELECT pg_catalog.pg_extension_config_dump('selfheal.audit', '');
SELECT pg_catalog.pg_extension_config_dump('selfheal.alias', '');
