"""backfill(): fills in-table derived columns in batches by key, as the table's owner, resumable."""

from __future__ import annotations

import json
import time

from ..core import planner
from .adapter import _Db, _pin_settings
from .facts import load_policy
from .roles import as_table_owner


# Deferrable triggers fire at commit, outside the owner's context; selfheal's batches must not
# queue any (foreign keys' own triggers live in pg_catalog and check as the table owner).
_USER_DEFERRABLE_TRIGGER = """
SELECT pg_catalog.format('%I on %s', t.tgname, t.tgrelid::pg_catalog.regclass) AS trigger
  FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
 WHERE t.tgdeferrable AND p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace
 LIMIT 1
"""


def _refuse_deferrable_triggers(db: _Db, table: str) -> None:
    owner = db.one("SELECT pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE') AND NOT r.rolsuper AS own "
                   "FROM pg_catalog.pg_class c, pg_catalog.pg_roles r "
                   "WHERE c.oid = $1::pg_catalog.regclass AND r.rolname = current_user", ("text",), (table,))
    if owner and owner["own"]:
        return  # the owner filling its own table: its triggers run with its own rights either way
    found = db.one(_USER_DEFERRABLE_TRIGGER)
    if found:
        raise RuntimeError(f"backfill refuses to run while the deferrable trigger {found['trigger']} exists: it "
                           "would fire at commit with the caller's rights; the table's owner may CALL "
                           "selfheal.backfill() itself (GRANT EXECUTE on it, and on selfheal.backfill_job)")


def _batch_body(table: str, key: str, key_type: str, column: str, expression: str, rows: int) -> str:
    """One backfill batch, run as the table owner: the next `rows` keys after `argument`.

    The batch is a key range (after `argument`, up to the last of the next `rows` keys), so it
    reads only its own rows through the primary key's index; `key IN (the next keys)` was
    planned as a hash join over the whole table, every batch. A function made for each batch
    is planned with its argument's value.
    """
    after = f"{key} > argument::{key_type}"
    return f"""
    DECLARE upper_key {key_type}; n bigint;
    BEGIN
    IF argument IS NULL THEN
        SELECT max(k) INTO upper_key FROM (SELECT {key} AS k FROM {table} ORDER BY {key} LIMIT {rows}) next_keys;
        UPDATE {table} SET {column} = {expression} WHERE {key} <= upper_key;
    ELSE
        SELECT max(k) INTO upper_key
          FROM (SELECT {key} AS k FROM {table} WHERE {after} ORDER BY {key} LIMIT {rows}) next_keys;
        UPDATE {table} SET {column} = {expression} WHERE {after} AND {key} <= upper_key;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    SET CONSTRAINTS ALL IMMEDIATE;
    RETURN pg_catalog.json_build_object('last_key', upper_key::text, 'n', n)::text;
    END;"""


def backfill(plpy, max_batches=None) -> None:
    """Fill in-table derived columns in batches by primary key, committing each; resumable.

    Each batch runs as the table's owner (as_table_owner), so the owner's triggers and index
    expressions never run with the caller's rights.
    """
    db = _Db(plpy)
    _pin_settings(plpy)
    _, settings = load_policy(db)
    batch_rows = int(settings.get("backfill_batch_rows", "10000"))
    pause = float(settings.get("backfill_pause_ms", "10")) / 1000.0
    duty_cycle = min(1.0, max(0.01, float(settings.get("backfill_duty_cycle", "0.5"))))
    lock_timeout = settings.get("lock_timeout", "200ms")
    batches = 0
    for job in db.rows("SELECT * FROM selfheal.backfill_job WHERE done_at IS NULL ORDER BY id"):
        table = f"{planner.quote_ident(job['schema_name'])}.{planner.quote_ident(job['table_name'])}"
        key, column = planner.quote_ident(job["key_column"]), planner.quote_ident(job["column_name"])
        key_type = db.one("SELECT pg_catalog.format_type(atttypid, atttypmod) AS t FROM pg_catalog.pg_attribute "
                          "WHERE attrelid = $1::pg_catalog.regclass AND attname = $2",
                          ("text", "text"), (table, job["key_column"]))["t"]
        body = _batch_body(table, key, key_type, column, job["expression"], batch_rows)
        last_key = job["last_key"]
        while max_batches is None or batches < max_batches:
            _pin_settings(plpy)  # a commit ends the transaction-local setting
            db.one("SELECT pg_catalog.set_config('lock_timeout', $1, true)", ("text",), (lock_timeout,))
            _refuse_deferrable_triggers(db, table)
            started = time.monotonic()
            done = json.loads(as_table_owner(db, table, body, last_key))
            took = time.monotonic() - started
            _refuse_deferrable_triggers(db, table)  # one made during the batch: the batch rolls back
            if not done["n"]:
                db.one("UPDATE selfheal.backfill_job SET done_at = now(), updated_at = now() WHERE id = $1",
                       ("int8",), (job["id"],))
                plpy.commit()
                break
            last_key = done["last_key"]
            db.one("UPDATE selfheal.backfill_job SET last_key = $2, rows_done = rows_done + $3, updated_at = now() "
                   "WHERE id = $1", ("int8", "text", "int8"), (job["id"], last_key, done["n"]))
            plpy.commit()  # each batch is its own transaction: short locks, and a resume point
            batches += 1
            # Rest in proportion to the batch: a busy table (slow batches) gets more room, and the
            # backfill works no more than its duty cycle of the time.
            rest = max(pause, took * (1.0 - duty_cycle) / duty_cycle)
            if rest > 0:
                db.one("SELECT pg_catalog.pg_sleep($1)", ("float8",), (rest,))
