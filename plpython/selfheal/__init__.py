"""selfheal: repairs schema drift in PostgreSQL.

The server imports only the core modules (errors, sqlscan, naming, planner) and the
adapter (server). Client integrations and the CLI live beside them and are never
imported inside PostgreSQL.
"""

# The client integration is loaded on first use, so the server, which imports this
# package, never imports psycopg.
_CLIENT_NAMES = {"connect", "connect_async", "install", "retrying", "RetryTransaction", "Healer"}


def __getattr__(name):
    if name in _CLIENT_NAMES:
        from . import client
        return getattr(client, name)
    raise AttributeError(f"module 'selfheal' has no attribute {name!r}")
