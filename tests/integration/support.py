"""Helpers the integration tests share."""

from __future__ import annotations

import psycopg


def report(conn: psycopg.Connection, exc: psycopg.Error, statement: str) -> dict:
    """What a client integration does: hand its own error to selfheal.heal_error."""
    cur = conn.execute("SELECT * FROM selfheal.heal_error(%s, %s, %s, %s)",
                       (exc.diag.sqlstate, exc.diag.message_primary, statement, exc.diag.message_hint))
    names = [c.name for c in cur.description]
    return dict(zip(names, cur.fetchone()))
