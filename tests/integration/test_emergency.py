"""selfheal emergency, tried as a new user would: a drifted database without the extension, its log, the script."""

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from .test_squawk import assert_passes

SCHEMA = """
CREATE TABLE sessions (id serial PRIMARY KEY, service_type text NOT NULL);
INSERT INTO sessions (service_type) VALUES ('1'), ('2'), ('3');
CREATE TABLE credit_packages (id serial PRIMARY KEY, credits int NOT NULL);
INSERT INTO credit_packages (credits) VALUES (10);
GRANT SELECT ON sessions, credit_packages TO app;
"""
FAILING = ["SELECT recommendation_data FROM sessions", "SELECT id FROM sessions WHERE service_type_id = 1",
           "SELECT cp.package_name FROM credit_packages cp", "SELECT * FROM orders_archive"]
LEGACY = ['SELECT "Id", "ServiceType" FROM "Sessions"']  # the table's old PascalCase naming


@pytest.fixture
def drifted(log_cluster):
    name = "drifted"
    with psycopg.connect(log_cluster.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(log_cluster.dsn(name), autocommit=True) as conn:
        conn.execute(SCHEMA)
        log = Path(conn.execute("SELECT current_setting('data_directory')").fetchone()[0]) / \
            conn.execute("SELECT pg_current_logfile('jsonlog')").fetchone()[0]
    yield name, log
    with psycopg.connect(log_cluster.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.execute("ALTER ROLE app RESET ALL")


def fail_then_plan(log_cluster, drifted, statements) -> str:
    """The app's statements fail twice each, then the script planned from the log."""
    name, log = drifted
    with psycopg.connect(log_cluster.dsn(name, "app"), autocommit=True) as app:
        for statement in statements * 2:
            with pytest.raises(psycopg.Error):
                app.execute(statement)
    time.sleep(0.5)  # the logging collector writes asynchronously
    result = subprocess.run([sys.executable, "-m", "selfheal.cli", "emergency", "--from-log", str(log), "--dsn",
                             log_cluster.dsn(name)], capture_output=True, text=True, check=True)
    return result.stdout


def test_the_script_makes_the_failing_statements_succeed_and_can_run_twice(log_cluster, drifted):
    name, _ = drifted
    script = fail_then_plan(log_cluster, drifted, FAILING)
    assert "SET LOCAL lock_timeout = '2s';" in script and "ADD COLUMN IF NOT EXISTS \"recommendation_data\"" in script
    assert "(2 errors)" in script
    assert "not fixed (needs_review, 2 errors): relation \"orders_archive\" does not exist" in script
    for _ in range(2):  # idempotent
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", name], input=script, text=True,
                       check=True, capture_output=True, env=log_cluster.env)
    with psycopg.connect(log_cluster.dsn(name, "app"), autocommit=True) as app:  # a new session: routed
        assert app.execute(FAILING[0]).fetchall() == [({},), ({},), ({},)]
        assert app.execute(FAILING[1]).fetchall() == [(1,)]
        assert app.execute(FAILING[2]).fetchall() == [(None,)]
    with psycopg.connect(log_cluster.dsn(name), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'selfheal'").fetchone() == (0,)


def test_an_unreadable_log_is_a_clear_usage_error(log_cluster, tmp_path):
    result = subprocess.run([sys.executable, "-m", "selfheal.cli", "emergency", "--from-log",
                             str(tmp_path / "missing.log"), "--dsn", log_cluster.dsn()],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_the_script_passes_squawk_with_timeouts_set_first(log_cluster, drifted, tmp_path):
    name, _ = drifted
    script = fail_then_plan(log_cluster, drifted, FAILING + LEGACY)
    assert_passes(script, tmp_path)
    order = ["BEGIN;", "SET LOCAL lock_timeout = '2s';", "SET LOCAL statement_timeout = '10s';", "ALTER TABLE"]
    assert [script.index(s) for s in order] == sorted(script.index(s) for s in order)
    # Both compat views, the table's own and its legacy name's, are replaced, each with the reason.
    assert script.count("-- squawk-ignore ban-drop-view -- a compat view holds no data") == 2
    assert 'CREATE VIEW "selfheal_compat_public"."Sessions"' in script
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", name], input=script, text=True,
                   check=True, capture_output=True, env=log_cluster.env)
    with psycopg.connect(log_cluster.dsn(name, "app"), autocommit=True) as app:
        assert app.execute(LEGACY[0] + " ORDER BY 1").fetchall() == [(1, "1"), (2, "2"), (3, "3")]


def test_a_storm_of_one_query_with_other_values_is_planned_once_and_counted_whole(log_cluster, drifted):
    """The log is read as the script is planned, never held whole (logreader.iter_whole_log), and
    the same query with other constants is one error to fix, however many times it failed."""
    name, _ = drifted
    script = fail_then_plan(log_cluster, drifted, [f"SELECT recommendation_data FROM sessions WHERE id = {n}"
                                                    for n in range(100, 400)])
    assert script.count('ADD COLUMN IF NOT EXISTS "recommendation_data"') == 1
    assert "(600 errors)" in script
