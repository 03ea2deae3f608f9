"""Integration tests run against a real PostgreSQL 15 cluster that this harness starts.

Each test gets a fresh database with the extension created; roles are cluster-wide and
made once. Nothing here is mocked.
"""

from __future__ import annotations

import itertools

import psycopg
import pytest

from tests.pgcluster import LOGGING, Cluster

APP_ROLE = "app"
_counter = itertools.count()


@pytest.fixture(scope="session")
def cluster():
    c = Cluster().start()
    with psycopg.connect(c.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
    yield c
    c.stop()


class Database:
    """A fresh database with selfheal installed, an admin connection and app connections."""

    # A hang fails the test in a minute instead of stalling the whole run.
    TIMEOUT = "-c statement_timeout=60s"

    def __init__(self, cluster: Cluster, name: str):
        self.cluster, self.name = cluster, name
        self.admin = psycopg.connect(cluster.dsn(name), autocommit=True, options=self.TIMEOUT)
        self._opened: list[psycopg.Connection] = [self.admin]

    def connect(self, user: str = APP_ROLE, **kwargs) -> psycopg.Connection:
        kwargs.setdefault("options", self.TIMEOUT)
        conn = psycopg.connect(self.cluster.dsn(self.name, user), autocommit=True, **kwargs)
        self._opened.append(conn)
        return conn

    def scalar(self, sql: str, params=None):
        return self.admin.execute(sql, params).fetchone()[0]

    def close(self):
        for conn in self._opened:
            conn.close()


LOG_SETTINGS = LOGGING


@pytest.fixture(scope="session")
def log_cluster():
    """A cluster that logs to jsonlog through the logging collector, with pg_cron loaded."""
    c = Cluster(LOG_SETTINGS).start()
    with psycopg.connect(c.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
    yield c
    c.stop()


def _fresh_database(cluster):
    name = f"t{next(_counter)}"
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    database = Database(cluster, name)
    database.admin.execute("CREATE EXTENSION selfheal CASCADE")
    yield database
    database.close()
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        conn.execute(f"ALTER ROLE {APP_ROLE} RESET ALL")


@pytest.fixture
def db(cluster):
    yield from _fresh_database(cluster)


@pytest.fixture
def log_db(log_cluster):
    yield from _fresh_database(log_cluster)
