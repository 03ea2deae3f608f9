"""A real legacy application: Chinook's own pre-2024 test fixture (35 queries), run unchanged
against the renamed schema through the log, as an untouched app would. After one heal round
each query's `psql -XqA` output must be byte-identical to the old database's."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import psycopg
import pytest

from .conftest import _fresh_database
from .test_log_capture import heal_until_logged, log_events

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "chinook"
LEGACY_SCHEMA = FIXTURES / "legacy" / "Chinook_PostgreSql-1.4.2.sql"
NEW_SCHEMA = FIXTURES / "chinook.sql"
QUERIES = [q for q in (FIXTURES / "legacy" / "fixture_queries.sql").read_text().splitlines() if q.strip()]
LEGACY_ROLE = "chinook_app"


def load(db, script: Path) -> None:
    text = re.sub(r"^(DROP DATABASE|CREATE DATABASE|\\c ).*$", "", script.read_text(), flags=re.M)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.name], input=text, text=True,
                   check=True, capture_output=True, env=db.cluster.env)
    db.admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {LEGACY_ROLE}; ANALYZE")


def psql(db, query: str, role: str = LEGACY_ROLE) -> tuple[int, str]:
    """One query as the legacy role, as the project's fixture ran it: (exit status, output)."""
    done = subprocess.run(["psql", "-XqA", "-d", db.cluster.dsn(db.name, role), "-c", query],
                          text=True, capture_output=True, env=db.cluster.env)
    return done.returncode, done.stdout


def login_role(cluster, role: str) -> str:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(f"CREATE ROLE {role} LOGIN")
    return role


@pytest.fixture
def legacy_role(log_cluster):
    return login_role(log_cluster, LEGACY_ROLE)


@pytest.fixture
def old_database(log_cluster, legacy_role):
    db = next(gen := _fresh_database(log_cluster))
    db.admin.execute("DROP EXTENSION selfheal")
    load(db, LEGACY_SCHEMA)
    yield db
    next(gen, None)


@pytest.fixture
def new_database(log_db, legacy_role):
    load(log_db, NEW_SCHEMA)
    log_db.admin.execute(f"SELECT selfheal.enable_compat('{LEGACY_ROLE}')")
    return log_db


def test_chinooks_own_legacy_fixture_passes_unchanged_after_one_heal_round(old_database, new_database):
    expected = [psql(old_database, q) for q in QUERIES]
    assert all(status == 0 for status, _ in expected)
    before = [psql(new_database, q) for q in QUERIES]
    failing = sum(1 for status, _ in before if status != 0)
    assert failing == 27 and not any(b == e for b, e in zip(before, expected))  # the other 8 give new names
    heal_until_logged(new_database, failing)
    assert log_events(new_database) == failing
    after = [psql(new_database, q) for q in QUERIES]
    differ = [q for q, a, e in zip(QUERIES, after, expected) if a != e]
    assert differ == [], f"{len(differ)} of 35 queries differ from the old database: {differ[:3]}"
    # Nothing was copied or added: every repair is a compat view, catalog only.
    assert new_database.scalar("SELECT count(*) FROM selfheal.audit WHERE action = 'add_column'") == 0
    assert new_database.scalar("SELECT count(*) FROM selfheal.audit WHERE status NOT IN ('applied')") == 0
