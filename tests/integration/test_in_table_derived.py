"""Derived columns in the table itself (policy derived_columns = 'table'), for roles not routed."""

import psycopg
import pytest

from .support import SEED, fail_then_heal


@pytest.fixture
def in_table(db):
    db.admin.execute(SEED)
    db.admin.execute("UPDATE selfheal.policy SET value = 'table' WHERE name = 'derived_columns'")
    return db


def attgenerated(db):
    return db.scalar("SELECT attgenerated FROM pg_attribute WHERE attrelid = 'sessions'::regclass "
                     "AND attname = 'service_type_id'")


def test_a_small_table_gets_a_stored_generated_column(in_table):
    result = fail_then_heal(in_table.connect(), "SELECT service_type_id FROM sessions")
    assert result["status"] == "healed" and attgenerated(in_table) == "s"
    assert in_table.admin.execute("SELECT service_type_id FROM public.sessions ORDER BY id").fetchall() == [
        (1,), (2,), (3,)]


def test_a_large_table_gets_a_synced_column_and_a_resumable_batched_backfill(in_table):
    admin = in_table.admin
    admin.execute("INSERT INTO sessions (service_type) SELECT g::text FROM generate_series(10, 29) g")
    admin.execute("ANALYZE sessions")
    admin.execute("UPDATE selfheal.policy SET value = '5' WHERE name = 'generated_column_row_limit'")
    admin.execute("UPDATE selfheal.policy SET value = '4' WHERE name = 'backfill_batch_rows'")
    result = fail_then_heal(in_table.connect(), "SELECT service_type_id FROM sessions")
    assert result["status"] == "healed" and attgenerated(in_table) == ""  # a plain column: no rewrite
    assert in_table.scalar("SELECT count(service_type_id) FROM sessions") == 0  # nothing filled yet
    admin.execute("INSERT INTO sessions (service_type) VALUES ('77')")
    assert in_table.scalar("SELECT service_type_id FROM sessions WHERE service_type = '77'") == 77  # the trigger
    # A write to the derived column is refused, never silently overwritten; one that agrees passes.
    with pytest.raises(psycopg.errors.GeneratedAlways, match="write service_type instead"):
        admin.execute("UPDATE sessions SET service_type_id = 5 WHERE service_type = '77'")
    with pytest.raises(psycopg.errors.GeneratedAlways):
        admin.execute("INSERT INTO sessions (service_type, service_type_id) VALUES ('6', 60)")
    admin.execute("UPDATE sessions SET service_type = '78', service_type_id = 78 WHERE service_type = '77'")
    admin.execute("UPDATE sessions SET service_type = '79' WHERE service_type = '78'")
    assert in_table.scalar("SELECT service_type_id FROM sessions WHERE service_type = '79'") == 79
    # A value that does not convert is refused when written: it never reads as NULL.
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        admin.execute("INSERT INTO sessions (service_type) VALUES ('premium')")

    admin.execute("CALL selfheal.backfill(max_batches => 2)")
    job = admin.execute("SELECT last_key, rows_done, done_at FROM selfheal.backfill_job").fetchone()
    assert job == ("8", 8, None)  # two batches of four, then stopped: resumable from key 8
    assert in_table.scalar("SELECT count(*) FROM sessions WHERE id <= 8 AND service_type ~ '^[0-9]+$' "
                           "AND service_type_id IS NULL") == 0
    admin.execute("CALL selfheal.backfill()")
    assert admin.execute("SELECT done_at IS NOT NULL FROM selfheal.backfill_job").fetchone() == (True,)
    mismatched = in_table.scalar("SELECT count(*) FROM sessions WHERE service_type ~ '^[0-9]+$' "
                                 "AND service_type_id IS DISTINCT FROM service_type::int")
    assert mismatched == 0

    admin.execute("SELECT selfheal.undo(%s)", (result["audit_id"],))
    admin.execute("INSERT INTO sessions (service_type) VALUES ('after undo')")  # no trigger left behind
    assert in_table.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'sessions'::regclass "
                           "AND NOT tgisinternal") == 0
    assert in_table.scalar("SELECT count(*) FROM selfheal.backfill_job") == 0


def test_a_declared_alias_with_a_backfill_expression_becomes_a_real_column(in_table):
    admin = in_table.admin
    admin.execute("INSERT INTO credit_packages (credits) SELECT g FROM generate_series(100, 120) g")
    admin.execute("ANALYZE credit_packages")
    admin.execute("UPDATE selfheal.policy SET value = '5' WHERE name = 'generated_column_row_limit'")
    audit_id = in_table.scalar("SELECT selfheal.add_alias('credit_packages', 'bonus_credits', 'credits * 2', "
                               "in_table => true)")
    assert in_table.scalar("SELECT count(*) FROM selfheal.backfill_job WHERE audit_id = %s", (audit_id,)) == 1
    admin.execute("INSERT INTO credit_packages (credits) VALUES (7)")
    assert in_table.scalar("SELECT bonus_credits FROM credit_packages WHERE credits = 7") == 14  # synced on write
    admin.execute("CALL selfheal.backfill()")
    assert in_table.scalar("SELECT count(*) FROM credit_packages WHERE bonus_credits IS DISTINCT FROM credits * 2") == 0
    # Readable by every role, routed or not: it is a real column.
    assert in_table.connect().execute("SELECT bonus_credits FROM public.credit_packages WHERE credits = 10"
                                      ).fetchone() == (20,)
