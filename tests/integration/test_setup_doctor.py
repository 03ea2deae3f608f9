"""`selfheal setup` and `selfheal doctor`, tried as a new user would: a running server with an
app schema and role that have never seen selfheal, adopted with one command, run again and
again, then healed from the log by pg_cron with nothing else done by hand."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
import pytest
from psycopg import errors as pgerr

from tests.pgcluster import Cluster

APP_SCHEMA = """
CREATE TABLE sessions (id serial PRIMARY KEY, service_type text NOT NULL);
INSERT INTO sessions (service_type) VALUES ('1'), ('2');
GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO shop;
"""


def selfheal(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "selfheal.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def server():
    """A server as a team runs it: default logging (stderr, no collector), no pg_cron loaded."""
    cluster = Cluster().start()
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE ROLE shop LOGIN")
        conn.execute("CREATE DATABASE shop")
    with psycopg.connect(cluster.dsn("shop"), autocommit=True) as conn:
        conn.execute(APP_SCHEMA)
    yield cluster
    cluster.stop()


def auto_conf(cluster) -> str:
    return (cluster.datadir / "postgresql.auto.conf").read_text()


def test_a_dry_run_prints_the_sql_and_changes_nothing(server):
    before = auto_conf(server)
    result = selfheal("setup", "--dsn", server.dsn("shop"), "--app-role", "shop", "--dry-run")
    assert result.returncode == 1, result.stderr  # a restart would be needed
    assert "ALTER SYSTEM SET logging_collector = 'on';" in result.stdout
    assert "CREATE EXTENSION selfheal CASCADE;" in result.stdout
    assert "SELECT selfheal.enable_compat('shop');" in result.stdout
    assert "GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO \"shop\";" in result.stdout
    assert "[done]" not in result.stdout
    assert auto_conf(server) == before
    with psycopg.connect(server.dsn("shop")) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'selfheal'").fetchone() == (0,)


def test_setup_adopts_the_database_and_pg_cron_heals_the_app_from_the_log(server):
    first = selfheal("setup", "--dsn", server.dsn("shop"), "--app-role", "shop")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "restart needed for logging_collector" in first.stdout
    assert "restart needed for pg_cron" in first.stdout
    assert "selfheal never restarts a server" in first.stdout
    again = selfheal("setup", "--dsn", server.dsn("shop"), "--app-role", "shop")
    assert again.returncode == 1 and "[done]" not in again.stdout, again.stdout  # nothing twice
    assert "it is set; PostgreSQL reads it at start" in again.stdout

    server.restart()  # the one step setup leaves to the operator
    after_restart = selfheal("setup", "--dsn", server.dsn("shop"), "--app-role", "shop")
    assert after_restart.returncode == 0, after_restart.stdout + after_restart.stderr
    assert "[done]" in after_restart.stdout and "heal() scheduled with pg_cron" in after_restart.stdout
    settled = selfheal("setup", "--dsn", server.dsn("shop"), "--app-role", "shop")
    assert settled.returncode == 0 and "[done]" not in settled.stdout, settled.stdout
    assert settled.stdout.count("[already so]") >= 5

    healthy = selfheal("doctor", "--dsn", server.dsn("shop"), "--app-role", "shop")
    assert healthy.returncode == 0, healthy.stdout
    assert "selfheal is healthy." in healthy.stdout and "a test repair, rolled back" in healthy.stdout

    # The app, in the session it already had, hits its drifted name; pg_cron's heal() finds it in the log.
    with psycopg.connect(server.dsn("shop", "shop"), autocommit=True) as app:
        with pytest.raises(pgerr.UndefinedColumn):
            app.execute("SELECT service_type_id FROM sessions")
    with psycopg.connect(server.dsn("shop"), autocommit=True) as admin:
        deadline = time.monotonic() + 150  # pg_cron runs jobs on the minute
        while time.monotonic() < deadline and not admin.execute(
                "SELECT count(*) FROM selfheal.audit WHERE status = 'applied'").fetchone()[0]:
            time.sleep(1)
        assert admin.execute("SELECT action, column_name FROM selfheal.audit WHERE status = 'applied'").fetchall() == [
            ("add_alias", "service_type_id")]
        assert admin.execute("SELECT count(*) FROM selfheal.error_event WHERE source = 'log'").fetchone()[0] >= 1
        assert admin.execute("SELECT count(*) FROM selfheal.audit WHERE column_name = 'selfheal_doctor_probe' "
                             "OR table_name = 'selfheal_doctor_probe'").fetchone() == (0,)  # doctor's was rolled back
    with psycopg.connect(server.dsn("shop", "shop"), autocommit=True) as app:
        assert app.execute("SELECT service_type_id FROM sessions ORDER BY id").fetchall() == [(1,), (2,)]


def test_doctor_names_each_fault_of_a_broken_installation(server):
    with psycopg.connect(server.dsn("shop"), autocommit=True) as admin:
        if not admin.execute("SELECT count(*) FROM pg_extension WHERE extname = 'selfheal'").fetchone()[0]:
            pytest.fail("runs after the setup test, on the installation it made")
        admin.execute("ALTER SYSTEM SET log_destination = 'stderr'")
        admin.execute("SELECT pg_reload_conf()")
        admin.execute("SELECT selfheal.disable_compat('shop')")
        admin.execute("REVOKE EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) FROM shop")
        admin.execute("SELECT selfheal.unschedule()")
        time.sleep(0.5)  # the reload reaches every backend
    try:
        broken = selfheal("doctor", "--dsn", server.dsn("shop"), "--app-role", "shop")
        assert broken.returncode == 1, broken.stdout
        out = broken.stdout
        assert "[fault] server log: log_destination is stderr" in out
        assert "ALTER SYSTEM SET log_destination = 'stderr,jsonlog';" in out
        assert "[fault] role shop is not routed" in out and "SELECT selfheal.enable_compat('shop');" in out
        assert "GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO \"shop\";" in out
        assert "[fault] heal() is not scheduled" in out
        assert "4 faults found." in out
    finally:
        with psycopg.connect(server.dsn("shop"), autocommit=True) as admin:
            admin.execute("ALTER SYSTEM RESET log_destination")
            admin.execute("SELECT pg_reload_conf()")


def test_doctor_and_report_without_the_extension_say_so_in_one_line(server):
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bare")
    for command in ("doctor", "report", "export"):
        result = selfheal(command, "--dsn", server.dsn("bare"))
        assert result.returncode == 2
        assert result.stderr.startswith("selfheal: selfheal is not installed in this database"), result.stderr
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_a_role_without_the_grant_is_told_the_exact_grant(server):
    result = selfheal("report", "--dsn", server.dsn("shop", "shop"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "permission denied for function report" in result.stderr
    assert "GRANT EXECUTE ON FUNCTION selfheal.report() TO shop" in result.stderr


def test_setup_as_an_ordinary_role_is_a_clear_refusal(server):
    result = selfheal("setup", "--dsn", server.dsn("shop", "shop"), "--app-role", "shop")
    assert result.returncode == 2 and "selfheal setup needs a superuser" in result.stderr
