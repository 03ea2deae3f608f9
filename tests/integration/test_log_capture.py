"""heal() finds errors in the server's own log, tried as a new user would: the app never reports anything."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import errors as pgerr

from .support import SEED

SEED_ERRORS = [
    ("SELECT recommendation_data FROM sessions", "42703"),
    ("SELECT * FROM sessions WHERE service_type_id = 1", "42703"),
    ("SELECT cp.package_name FROM credit_packages cp", "42703"),
    ("SELECT calc()", "P0001"),
    ("SELECT 1/0", "22012"),
]


@pytest.fixture
def app_db(log_db):
    log_db.admin.execute(SEED)
    log_db.admin.execute("""CREATE FUNCTION calc() RETURNS numeric LANGUAGE plpgsql AS
                            $$ BEGIN RAISE EXCEPTION 'Cost calculation error'; END $$;
                            GRANT EXECUTE ON FUNCTION calc() TO app""")
    log_db.admin.execute("SELECT heal()")  # the first read places the bookmark at the current log file
    return log_db


def fail(conn, statement):
    with pytest.raises(psycopg.Error):
        conn.execute(statement)


def log_events(db) -> int:
    return db.scalar("SELECT coalesce(sum(occurrences), 0) FROM selfheal.error_event WHERE source = 'log'")


def heal_until_logged(db, count: int, deadline: float = 20) -> dict:
    """The logging collector writes asynchronously: heal until the log has yielded `count` events."""
    stop = time.monotonic() + deadline
    while True:
        summary = db.scalar("SELECT heal()")
        if log_events(db) >= count or time.monotonic() > stop:
            return summary
        time.sleep(0.05)


def log_directory(db) -> Path:
    return Path(db.scalar("SELECT current_setting('data_directory')")) / db.scalar(
        "SELECT current_setting('log_directory')")


def report(db) -> dict:
    cur = db.admin.execute("SELECT * FROM selfheal.report()")
    names = [c.name for c in cur.description]
    return {row[0]: dict(zip(names, row)) for row in cur}


def run_seed_story(db):
    app = db.connect()
    for statement, _ in SEED_ERRORS:
        fail(app, statement)
    heal_until_logged(db, len(SEED_ERRORS))
    assert log_events(db) == len(SEED_ERRORS)
    healed = db.connect()  # a new session: search_path from enable_compat is in force
    healed.execute("SELECT recommendation_data FROM sessions").fetchall()
    healed.execute("SELECT * FROM sessions WHERE service_type_id = 1").fetchall()
    healed.execute("SELECT cp.package_name FROM credit_packages cp").fetchall()
    return healed


def test_heal_repairs_errors_found_in_jsonlog_and_reports_before_and_after(app_db):
    healed = run_seed_story(app_db)
    states = app_db.admin.execute("SELECT sqlstate, status, username, application_name IS NOT NULL "
                                  "FROM selfheal.error_event WHERE source = 'log' ORDER BY id").fetchall()
    assert [s[:3] for s in states] == [("42703", "healed", "app"), ("42703", "healed", "app"),
                                       ("42703", "healed", "app"), ("P0001", "not_schema", "app"),
                                       ("22012", "not_schema", "app")]
    # The same statements now succeed; the business errors still fail and are counted again.
    fail(healed, "SELECT calc()")
    heal_until_logged(app_db, len(SEED_ERRORS) + 1)
    rows = report(app_db)
    column = rows['42703: column "recommendation_data" does not exist']
    assert (column["status"], column["before_repair"], column["after_repair"]) == ("healed", 1, 0)
    assert column["time_to_heal"] is not None and column["audit_id"] is not None
    business = rows["P0001: Cost calculation error"]
    # Not repairable: the second one happened after selfheal decided, and shows as after.
    assert (business["status"], business["before_repair"], business["after_repair"]) == ("needs review", 1, 1)
    summary = rows["(all errors)"]
    assert summary["status"] == "summary" and (summary["before_repair"], summary["after_repair"]) == (5, 1)
    assert float(summary["share_eliminated"]) == 50.0  # 3 of 6 errors had a cause selfheal repaired


def test_heal_reads_csvlog_too(app_db):
    admin = app_db.admin
    admin.execute("ALTER SYSTEM SET log_destination = 'csvlog'")
    admin.execute("SELECT pg_reload_conf()")
    try:
        deadline = time.monotonic() + 20
        while app_db.scalar("SELECT pg_current_logfile('csvlog')") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        admin.execute("SELECT heal()")  # bookmark the csv file before the errors happen
        run_seed_story(app_db)
        assert app_db.scalar("SELECT count(*) FROM selfheal.log_bookmark WHERE log_format = 'csvlog'") == 1
    finally:
        admin.execute("ALTER SYSTEM RESET log_destination")
        admin.execute("SELECT pg_reload_conf()")


def test_rotation_between_reads_loses_and_repeats_nothing(app_db):
    app = app_db.connect()
    fail(app, "SELECT a_col FROM sessions")
    heal_until_logged(app_db, 1)
    fail(app, "SELECT b_col FROM sessions")
    app_db.admin.execute("SELECT pg_rotate_logfile()")
    time.sleep(0.2)
    fail(app, "SELECT c_col FROM sessions")
    heal_until_logged(app_db, 3)
    app_db.admin.execute("SELECT heal()")
    messages = [r[0] for r in app_db.admin.execute(
        "SELECT message FROM selfheal.error_event WHERE source = 'log' ORDER BY id")]
    assert messages == ['column "a_col" does not exist', 'column "b_col" does not exist',
                        'column "c_col" does not exist']


def json_entry(db_name: str, message: str, severity: str = "ERROR", state: str = "42703") -> bytes:
    return (json.dumps({"timestamp": "2026-11-24 05:02:18.851 UTC", "user": "app", "dbname": db_name,
                        "error_severity": severity, "state_code": state, "message": message,
                        "statement": "SELECT 1 FROM sessions", "application_name": "web"}) + "\n").encode()


def test_a_half_written_last_line_is_read_once_it_is_complete(app_db):
    path = log_directory(app_db) / "postgresql-partial.json"
    whole, partial = json_entry(app_db.name, 'column "p1" does not exist'), json_entry(
        app_db.name, 'column "p2" does not exist')
    try:
        path.write_bytes(whole + partial[:40])
        app_db.admin.execute("SELECT heal()")
        assert log_events(app_db) == 1
        with path.open("ab") as fh:
            fh.write(partial[40:])
        app_db.admin.execute("SELECT heal()")
        assert [r[0] for r in app_db.admin.execute(
            "SELECT message FROM selfheal.error_event WHERE source = 'log' ORDER BY id")] == [
            'column "p1" does not exist', 'column "p2" does not exist']
    finally:
        path.unlink(missing_ok=True)


def test_a_log_of_over_100_mb_is_streamed_across_calls(app_db):
    path = log_directory(app_db) / "postgresql-big.json"
    noise = json_entry("other_db", "statement: SELECT 1", severity="LOG")
    errors_per_block, blocks = 3, 0
    try:
        with path.open("wb") as fh:
            while fh.tell() < 101 * 1024 * 1024:
                fh.write(noise * 2000)
                fh.write(json_entry(app_db.name, 'column "big_col" does not exist') * errors_per_block)
                fh.write(json_entry("other_db", 'column "x" does not exist'))
                blocks += 1
        calls, more = 0, True
        while more:
            summary = app_db.scalar("SELECT heal()")
            more, calls = summary["log"]["more"], calls + 1
            assert "problem" not in summary["log"], summary
        assert calls >= 2  # 64 MB per call at most: the file was read in pieces
        assert app_db.scalar("SELECT coalesce(sum(occurrences), 0) FROM selfheal.error_event WHERE message = "
                             "'column \"big_col\" does not exist'") == blocks * errors_per_block
        assert app_db.scalar("SELECT sum(lines_read) FROM selfheal.log_bookmark") >= blocks * 2004
    finally:
        path.unlink(missing_ok=True)


def test_a_statement_of_30_mb_in_the_log_is_read_once_and_stored_clipped(app_db):
    """A failed bulk INSERT writes one log record of tens of megabytes: heal() reads past it in
    one call (the read grows with the record, not in 128 KiB steps over it) and stores its error
    with the statement clipped; the error after it is not lost."""
    path = log_directory(app_db) / "postgresql-huge.json"
    entry = json.loads(json_entry(app_db.name, 'column "huge_col" does not exist'))
    entry["statement"] = "INSERT INTO sessions (huge_col) VALUES " + ",".join(["(1)"] * 7_500_000)
    try:
        path.write_bytes((json.dumps(entry) + "\n").encode()
                         + json_entry(app_db.name, 'column "after_huge" does not exist'))
        summary = app_db.scalar("SELECT heal()")["log"]
        assert "problem" not in summary and not summary.get("malformed"), summary
        rows = app_db.admin.execute("SELECT message, length(statement) FROM selfheal.error_event "
                                    "WHERE source = 'log' ORDER BY id").fetchall()
        assert [m for m, _ in rows] == ['column "huge_col" does not exist', 'column "after_huge" does not exist']
        assert rows[0][1] < 1_000_000  # clipped, never 30 MB in error_event
    finally:
        path.unlink(missing_ok=True)


def test_reader_failures_are_clear_and_do_not_stop_healing(app_db):
    app_db.admin.execute("ALTER SYSTEM SET log_directory = 'no_such_dir'")
    app_db.admin.execute("SELECT pg_reload_conf()")
    try:
        time.sleep(0.3)
        app_db.admin.execute("SELECT selfheal.record_error('42703', 'column \"q\" does not exist', "
                             "'SELECT q FROM sessions WHERE q > 0')")
        summary = app_db.scalar("SELECT heal()")
        # The collector makes the directory it logs to; either way heal() says what happened and heals.
        assert summary["healed"] == 1
        assert "problem" not in summary["log"] or "no_such_dir" in summary["log"]["problem"]
    finally:
        app_db.admin.execute("ALTER SYSTEM RESET log_directory")
        app_db.admin.execute("SELECT pg_reload_conf()")


def test_without_a_log_file_heal_says_which_settings_to_change(db):
    summary = db.scalar("SELECT heal()")
    assert "logging_advice" in summary["log"]["problem"]
    advice = {r[0]: r for r in db.admin.execute("SELECT * FROM selfheal.logging_advice()")}
    assert advice["logging_collector"][2:4] == ("on", True)
    assert "jsonlog" in advice["log_destination"][2]
    statements = [r[0] for r in db.admin.execute("SELECT * FROM selfheal.configure_logging()")]
    assert statements[0] == "ALTER SYSTEM SET logging_collector = 'on'"
    assert statements[-1] == "SELECT pg_catalog.pg_reload_conf()"


def test_a_role_that_may_heal_cannot_read_what_the_log_holds(app_db):
    app_db.admin.execute("GRANT EXECUTE ON FUNCTION selfheal.heal(), public.heal() TO app")
    app = app_db.connect()
    fail(app, "SELECT secret_col FROM sessions")
    assert "processed" in app.execute("SELECT heal()").fetchone()[0]
    with pytest.raises(pgerr.InsufficientPrivilege):
        app.execute("SELECT * FROM selfheal.report()")
    with pytest.raises(pgerr.InsufficientPrivilege):
        app.execute("SELECT statement FROM selfheal.error_event")


@pytest.mark.parametrize("stop", ["pg_cancel_backend", "pg_terminate_backend"])
def test_watch_heals_as_errors_arrive_and_stops_cleanly_losing_nothing(app_db, stop):
    watcher = app_db.connect(user="postgres")
    pid = watcher.execute("SELECT pg_backend_pid()").fetchone()[0]
    outcome = {}

    def run():
        try:
            watcher.execute("CALL selfheal.watch('100 ms')")
        except psycopg.Error as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    app = app_db.connect()
    fail(app, "SELECT watched_data FROM sessions")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            app_db.connect().execute("SELECT watched_data FROM sessions")
            break
        except pgerr.UndefinedColumn:
            time.sleep(0.05)
    else:
        pytest.fail("watch did not heal within 20 s")
    fail(app, "SELECT late_data FROM sessions")  # may or may not be read before the stop
    app_db.admin.execute(f"SELECT {stop}(%s)", (pid,))
    thread.join(20)
    assert not thread.is_alive() and "error" in outcome
    heal_until_logged(app_db, 2)  # whatever watch had not committed is read again now
    late = app_db.scalar("SELECT coalesce(sum(occurrences), 0) FROM selfheal.error_event WHERE message = "
                         "'column \"late_data\" does not exist'")
    assert late == 1


def test_schedule_registers_heal_with_pg_cron(log_cluster):
    with psycopg.connect(log_cluster.dsn(), autocommit=True) as conn:  # pg_cron lives in 'postgres' here
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        conn.execute("CREATE EXTENSION IF NOT EXISTS selfheal CASCADE")
        try:
            for every, spec in [("1 minute", "* * * * *"), ("1 hour", "0 * * * *"), ("2 hours", "0 */2 * * *"),
                                ("1 day", "0 0 * * *"), ("5 minutes", "*/5 * * * *")]:
                job = conn.execute("SELECT selfheal.schedule(%s)", (every,)).fetchone()[0]
                row = conn.execute("SELECT schedule, command, database FROM cron.job WHERE jobid = %s",
                                   (job,)).fetchone()
                assert row == (spec, "SELECT heal()", "postgres")  # one job: scheduling again replaces it
            assert conn.execute("SELECT count(*) FROM cron.job").fetchone() == (1,)
            with pytest.raises(pgerr.InvalidParameterValue, match="once a minute"):
                conn.execute("SELECT selfheal.schedule('10 seconds')")
            assert conn.execute("SELECT selfheal.unschedule()").fetchone() == (True,)
            assert conn.execute("SELECT selfheal.unschedule()").fetchone() == (False,)
        finally:
            conn.execute("DROP EXTENSION selfheal CASCADE")
            conn.execute("DROP EXTENSION pg_cron")


def test_schedule_without_pg_cron_names_the_alternatives_in_one_line(db, log_db):
    with pytest.raises(pgerr.ObjectNotInPrerequisiteState, match="pg_cron is not installed") as info:
        db.admin.execute("SELECT selfheal.schedule('1 minute')")
    assert "selfheal.watch" in info.value.diag.message_hint
    assert "\n" not in info.value.diag.message_primary and "Traceback" not in (info.value.diag.context or "")
    with pytest.raises(pgerr.ObjectNotInPrerequisiteState) as info:
        log_db.admin.execute("SELECT selfheal.schedule('1 minute')")
    assert "cron.database_name" in info.value.diag.message_hint
    assert f"'SELECT heal()', '{log_db.name}'" in info.value.diag.message_hint


def test_report_command_prints_the_table_and_writes_the_html_page(app_db, tmp_path):
    run_seed_story(app_db)
    page = tmp_path / "report.html"
    result = subprocess.run([sys.executable, "-m", "selfheal.cli", "report", "--dsn",
                             app_db.cluster.dsn(app_db.name), "--html", str(page)],
                            capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("error signature")
    assert any(line.startswith('42703: column "recommendation_data" does not exist') and " healed " in line
               for line in lines)
    assert any(line.startswith("P0001: Cost calculation error") and "needs review" in line for line in lines)
    assert "5 errors in 5 signatures; 60.0% had a cause selfheal repaired" in result.stdout
    html = page.read_text()
    assert "<svg" in html and "repairs #1, #2, #3" in html and "Cost calculation error" in html


def test_report_command_fails_clearly_without_the_extension(cluster):
    result = subprocess.run([sys.executable, "-m", "selfheal.cli", "report", "--dsn", cluster.dsn()],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "CREATE EXTENSION selfheal CASCADE" in result.stderr
    assert result.stderr.startswith("selfheal: selfheal is not installed in this database")


def test_concurrent_heals_read_each_line_once(app_db):
    app = app_db.connect()
    fail(app, "SELECT twice_col FROM sessions")
    time.sleep(0.3)  # let the collector write the line
    first = app_db.connect(user="postgres")
    first.autocommit = False
    summary = first.execute("SELECT heal()").fetchone()[0]  # holds the bookmark row until commit
    assert summary["log"]["errors"] == 1
    second = app_db.connect(user="postgres").execute("SELECT heal()").fetchone()[0]
    assert second["log"] == {"format": "jsonlog", "skipped": "another heal() is reading the log"}
    first.commit()
    app_db.admin.execute("SELECT heal()")
    assert app_db.scalar("SELECT coalesce(sum(occurrences), 0) FROM selfheal.error_event WHERE message = "
                         "'column \"twice_col\" does not exist'") == 1


def test_an_error_a_client_reported_and_the_log_recorded_counts_once(app_db):
    app = app_db.connect()
    statement = "SELECT churn_score FROM sessions"
    with pytest.raises(pgerr.UndefinedColumn) as info:
        app.execute(statement)
    reporter = app_db.connect()  # client integrations report over their own connection
    reporter.execute("SELECT * FROM selfheal.heal_error(%s, %s, %s, %s)",
                     (info.value.diag.sqlstate, info.value.diag.message_primary, statement, None))
    deadline = time.monotonic() + 20
    while True:
        summary = app_db.scalar("SELECT heal()")
        if summary["log"].get("already_reported") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert summary["log"]["already_reported"] == 1
    assert app_db.admin.execute("SELECT source, seen_in_log FROM selfheal.error_event "
                                "WHERE message LIKE '%churn_score%'").fetchall() == [("client", True)]
    row = report(app_db)['42703: column "churn_score" does not exist']
    assert (row["before_repair"], row["after_repair"]) == (1, 0)


def test_while_a_client_report_waits_a_long_read_matches_it_and_loses_no_other_error(app_db):
    """Errors are held and matched with waiting client reports a few thousand at a time: of a
    storm of 12,000 lines read while a report waits, every one is counted, and the report's own
    line, read after them, is still not counted twice."""
    path = log_directory(app_db) / "postgresql-storm.json"
    storm = 12_000
    try:
        path.write_bytes(json_entry(app_db.name, 'column "storm_col" does not exist') * storm)
        app = app_db.connect()
        statement = "SELECT held_col FROM sessions"
        with pytest.raises(pgerr.UndefinedColumn) as info:
            app.execute(statement)  # logged after the storm file was written: read after it
        app_db.connect().execute("SELECT * FROM selfheal.heal_error(%s, %s, %s, %s)",
                                 (info.value.diag.sqlstate, info.value.diag.message_primary, statement, None))
        deadline, reported = time.monotonic() + 20, 0
        while not reported and time.monotonic() < deadline:
            reported = app_db.scalar("SELECT heal()")["log"].get("already_reported", 0)
            time.sleep(0.05)
        assert reported == 1
        assert app_db.scalar("SELECT coalesce(sum(occurrences), 0) FROM selfheal.error_event WHERE message = "
                             "'column \"storm_col\" does not exist'") == storm
        assert app_db.admin.execute("SELECT source, seen_in_log FROM selfheal.error_event "
                                    "WHERE message LIKE '%held_col%'").fetchall() == [("client", True)]
    finally:
        path.unlink(missing_ok=True)


def test_an_error_storm_is_stored_as_its_repeats_and_reported_in_full(app_db):
    """300 failures of one query with other values inlined, as an app that builds its SQL does:
    heal() keeps one row per second of them with their count, repairs from it, and the report
    counts all 300."""
    app = app_db.connect()
    for n in range(300):
        fail(app, f"SELECT recommendation_data FROM sessions WHERE id = {100 + n}")
    fail(app, "SELECT recommendation_data FROM sessions WHERE id = 1000")  # another type's size: its own row
    heal_until_logged(app_db, 301)
    rows = app_db.admin.execute("SELECT occurrences, statement, status FROM selfheal.error_event "
                                "WHERE source = 'log' ORDER BY id").fetchall()
    assert sum(count for count, _, _ in rows) == 301
    assert len(rows) <= 2 * 4  # each of the two shapes, in the seconds the storm took
    assert {status for _, _, status in rows} <= {"healed", "resolved"}
    assert all(statement.startswith("SELECT recommendation_data FROM sessions WHERE id = ") for _, statement, _ in rows)
    app_db.connect().execute("SELECT recommendation_data FROM sessions WHERE id = 1").fetchall()
    row = next(r for name, r in report(app_db).items() if "recommendation_data" in name)
    assert (row["before_repair"], row["after_repair"]) == (301, 0)
