"""Client side: heal-and-retry for applications (psycopg 3 here, SQLAlchemy 2 in `.sqlalchemy`).

Never imported inside PostgreSQL.
"""

from .psycopg import Healer, RetryTransaction, connect, connect_async, install, retrying

__all__ = ["Healer", "RetryTransaction", "connect", "connect_async", "install", "retrying"]
