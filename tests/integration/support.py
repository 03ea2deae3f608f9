"""Helpers the integration tests share."""

from __future__ import annotations

import psycopg
import pytest

# The seed's schema and an app role routed through the compat views.
SEED = """
CREATE TABLE sessions (id serial PRIMARY KEY, service_type text NOT NULL, started_at timestamptz DEFAULT now());
INSERT INTO sessions (service_type) VALUES ('1'), ('2'), ('3');
CREATE TABLE credit_packages (id serial PRIMARY KEY, credits int NOT NULL);
INSERT INTO credit_packages (credits) VALUES (10), (50);
GRANT SELECT, INSERT, UPDATE, DELETE ON sessions, credit_packages TO app;
GRANT USAGE ON SEQUENCE sessions_id_seq, credit_packages_id_seq TO app;
GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO app;
SELECT selfheal.enable_compat('app');
"""


def report(conn: psycopg.Connection, exc: psycopg.Error, statement: str) -> dict:
    """What a client integration does: hand its own error to selfheal.heal_error."""
    cur = conn.execute("SELECT * FROM selfheal.heal_error(%s, %s, %s, %s)",
                       (exc.diag.sqlstate, exc.diag.message_primary, statement, exc.diag.message_hint))
    names = [c.name for c in cur.description]
    return dict(zip(names, cur.fetchone()))


def fail_then_heal(conn: psycopg.Connection, statement: str, error_type=psycopg.Error) -> dict:
    """Run a statement that must fail, then report its error as a client integration would."""
    with pytest.raises(error_type) as info:
        conn.execute(statement)
    return report(conn, info.value, statement)
