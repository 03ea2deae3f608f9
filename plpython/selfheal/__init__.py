"""selfheal: repairs schema drift in PostgreSQL.

Four packages, by where the code runs:
- `core`: pure Python, no database; it decides (errors, statements, names, the planner).
- `server`: inside PostgreSQL; the only code that uses plpy, and it applies what core decides.
- `client`: heal-and-retry for applications (psycopg 3, SQLAlchemy 2).
- `cli`: the `selfheal` command (setup, report, export, emergency, scan).

PostgreSQL gets `core` and `server` only.
"""

# The client integration is loaded on first use, so the server, which imports this
# package, never imports psycopg.
_CLIENT_NAMES = {"connect", "connect_async", "install", "retrying", "RetryTransaction", "Healer"}


def __getattr__(name):
    if name in _CLIENT_NAMES:
        from . import client
        return getattr(client, name)
    raise AttributeError(f"module 'selfheal' has no attribute {name!r}")
