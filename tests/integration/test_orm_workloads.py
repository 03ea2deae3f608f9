"""A SQLAlchemy 2 app (client integration) and a Django 5 app (log mode) with related models,
tried as a new user would: code ahead of the schema, behind it (renames made before and after
selfheal was installed), and both at once.
Each workload's output is compared with the same code on the schema it was written for; no
case may end in a silent wrong answer."""

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, Text, create_engine, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from selfheal.client import sqlalchemy as selfheal_sqlalchemy

from .conftest import APP_ROLE, Database
from .test_drift_cases import GRANTS
from .test_log_capture import heal_until_logged, log_events

SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, tier text NOT NULL DEFAULT 'basic');
INSERT INTO customers (name, tier) VALUES ('Ada', 'gold'), ('Bob', 'basic');
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,
                     status text NOT NULL DEFAULT 'new', total numeric(10,2) NOT NULL);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
INSERT INTO orders (customer_id, status, total) VALUES (1, 'paid', 10.00), (1, 'new', 25.50), (2, 'paid', 7.25);
"""
AHEAD = ("ALTER TABLE orders ADD COLUMN gift_wrap boolean DEFAULT false, "
         "ADD COLUMN preferences jsonb DEFAULT '{}'::jsonb;")


def models(ahead: bool):
    class Base(DeclarativeBase):
        pass

    class Customer(Base):
        __tablename__ = "customers"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        name: Mapped[str] = mapped_column(Text)
        tier: Mapped[str] = mapped_column(Text)

    class Order(Base):
        __tablename__ = "orders"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
        status: Mapped[str] = mapped_column(Text)
        total: Mapped[Decimal] = mapped_column(Numeric(10, 2))
        customer: Mapped[Customer] = relationship()
        if ahead:
            gift_wrap: Mapped[bool] = mapped_column(Boolean)
            preferences: Mapped[dict] = mapped_column(JSONB)

    return Customer, Order


def workload(session: Session, ahead: bool) -> list:
    """The app's unit of work: a join over the relationship, a filter, a write, a count."""
    Customer, Order = models(ahead)
    rows = session.execute(select(Order, Customer).join(Order.customer).where(Order.status == "paid")
                           .order_by(Order.id)).all()
    out = [(o.id, c.name, o.status, o.total) + ((o.gift_wrap, o.preferences) if ahead else ()) for o, c in rows]
    order = session.get(Order, 2)
    order.status = "paid"
    if ahead:
        order.gift_wrap = True
    session.commit()
    out.append(session.scalar(select(func.count()).select_from(Order).where(Order.status == "paid")))
    if ahead:
        out.append(session.scalar(select(func.count()).select_from(Order).where(Order.gift_wrap.is_(False))))
    return out


def make_database(cluster, name: str, before: str = "", extension: bool = True, after: str = "") -> Database:
    """The schema, drift made before selfheal was installed, then (tracked) drift after it."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    database = Database(cluster, name)
    database.admin.execute(SCHEMA + before)
    database.admin.execute(GRANTS)
    if extension:
        database.admin.execute("SET client_min_messages = warning; CREATE EXTENSION selfheal CASCADE")
        database.admin.execute(f"SELECT selfheal.enable_compat('{APP_ROLE}'); GRANT EXECUTE ON FUNCTION "
                               f"selfheal.heal_error(text, text, text, text) TO {APP_ROLE}")
        database.admin.execute(after)
    return database


def run(database: Database, ahead: bool, heal: bool):
    engine = create_engine(f"postgresql+psycopg://{APP_ROLE}@127.0.0.1:{database.cluster.port}/{database.name}")
    if heal:
        selfheal_sqlalchemy.install(engine)
    try:
        with Session(engine) as session:
            for attempt in selfheal_sqlalchemy.retrying(session, attempts=5):
                with attempt:
                    return workload(session, ahead)
    finally:
        engine.dispose()


def _databases(cluster):
    made = []

    def make(name, **kwargs):
        made.append(make_database(cluster, f"{name}_{len(made)}_{id(made) % 10000}", **kwargs))
        return made[-1]

    yield make
    for database in made:
        database.close()
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {database.name} WITH (FORCE)")
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {APP_ROLE} RESET ALL")


@pytest.fixture
def databases(cluster):
    yield from _databases(cluster)


@pytest.fixture
def log_databases(log_cluster):
    """Databases on a cluster that logs to jsonlog, for apps whose errors only the log sees."""
    yield from _databases(log_cluster)


def columns(database: Database, table: str) -> dict:
    return dict(database.admin.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped", (table,)).fetchall())


def test_code_ahead_of_the_schema_is_served_with_the_models_types(databases):
    expected = run(databases("orm_undrifted", before=AHEAD, extension=False), ahead=True, heal=False)
    drifted = databases("orm_ahead")
    assert run(drifted, ahead=True, heal=True) == expected
    assert {k: v for k, v in columns(drifted, "orders").items() if k in ("gift_wrap", "preferences")} == {
        "gift_wrap": "boolean", "preferences": "jsonb"}


def test_code_behind_a_rename_made_after_install_is_served(databases):
    expected = run(databases("orm_undrifted", extension=False), ahead=False, heal=False)
    drifted = databases("orm_behind", after="ALTER TABLE orders RENAME COLUMN status TO order_status")
    assert run(drifted, ahead=False, heal=True) == expected
    assert "status" not in columns(drifted, "orders")  # served by the compat view, never a new column


def test_a_rename_made_before_install_is_never_a_shadow_column_and_serves_once_approved(databases):
    expected = run(databases("orm_undrifted", extension=False), ahead=False, heal=False)
    drifted = databases("orm_untracked", extension=True,
                        before="ALTER TABLE orders RENAME COLUMN customer_id TO client_id;")
    before = columns(drifted, "orders")
    with pytest.raises(ProgrammingError):
        run(drifted, ahead=False, heal=True)
    assert columns(drifted, "orders") == before  # no empty customer_id for reads to miss and writes to land in
    proposal = drifted.admin.execute(
        "SELECT id, ddl FROM selfheal.audit WHERE status = 'pending_approval' AND column_name = 'customer_id'"
    ).fetchone()
    assert proposal is not None and '"client_id" AS "customer_id"' in proposal[1]
    drifted.admin.execute("SELECT selfheal.approve(%s)", (proposal[0],))
    assert run(drifted, ahead=False, heal=True) == expected


def test_code_ahead_and_behind_at_once_is_served(databases):
    expected = run(databases("orm_undrifted", before=AHEAD, extension=False), ahead=True, heal=False)
    drifted = databases("orm_both", after="ALTER TABLE orders RENAME COLUMN status TO order_status")
    assert run(drifted, ahead=True, heal=True) == expected


# A Django 5 app in log mode: no integration, its errors reach selfheal only through the server's
# log. Each run is one request in its own process; a failed request is followed by heal(), as a
# schedule would run it, and the next request is tried, until it succeeds or rounds run out.
def django_request(database: Database, ahead: bool) -> dict:
    argv = ["127.0.0.1", str(database.cluster.port), database.name, APP_ROLE] + (["--ahead"] if ahead else [])
    done = subprocess.run([sys.executable, "-m", "tests.integration.django_shop", *argv], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[2], check=True)
    return json.loads(done.stdout)


def django_until_served(database: Database, ahead: bool, rounds: int = 6) -> dict:
    database.admin.execute("SELECT heal()")  # the first read places the bookmark in the current log file
    for _ in range(rounds):
        result = django_request(database, ahead)
        if "output" in result:
            return result
        heal_until_logged(database, log_events(database) + 1)
    return result


def refused_until_the_migration_runs(drifted: Database, expected: dict) -> None:
    """Code ahead of the schema in log mode: nothing declares the new columns' types, so each is
    proposed and never guessed as text; the app keeps its error until the team's own migration
    runs, and then gets exactly what it gets on the migrated schema."""
    before = columns(drifted, "orders")
    refused = django_until_served(drifted, ahead=True)
    assert refused.get("sqlstate") == "42703" and "gift_wrap" in refused["error"]
    assert columns(drifted, "orders") == before
    proposal = drifted.scalar("SELECT reason FROM selfheal.audit WHERE status = 'pending_approval' "
                              "AND column_name = 'gift_wrap'")
    assert "its type is unknown" in proposal
    drifted.admin.execute(AHEAD)
    assert django_until_served(drifted, ahead=True) == expected


def test_django_code_ahead_of_the_schema_is_refused_until_its_migration_never_guessed(log_databases):
    expected = django_request(log_databases("dj_undrifted", before=AHEAD, extension=False), ahead=True)
    refused_until_the_migration_runs(log_databases("dj_ahead"), expected)


def test_django_code_behind_a_rename_made_after_install_is_served(log_databases):
    expected = django_request(log_databases("dj_undrifted", extension=False), ahead=False)
    drifted = log_databases("dj_behind", after="ALTER TABLE orders RENAME COLUMN status TO order_status")
    assert django_until_served(drifted, ahead=False) == expected
    assert "status" not in columns(drifted, "orders")


def test_django_rename_made_before_install_is_proposed_and_served_once_approved(log_databases):
    expected = django_request(log_databases("dj_undrifted", extension=False), ahead=False)
    drifted = log_databases("dj_untracked", before="ALTER TABLE orders RENAME COLUMN customer_id TO client_id;")
    before = columns(drifted, "orders")
    refused = django_until_served(drifted, ahead=False)
    assert refused.get("sqlstate") == "42703" and columns(drifted, "orders") == before
    proposal = drifted.admin.execute(
        "SELECT id, ddl FROM selfheal.audit WHERE status = 'pending_approval' AND column_name = 'customer_id'"
    ).fetchone()
    assert proposal is not None and '"client_id" AS "customer_id"' in proposal[1]
    drifted.admin.execute("SELECT selfheal.approve(%s)", (proposal[0],))
    assert django_request(drifted, ahead=False) == expected


def test_django_code_ahead_and_behind_at_once_serves_the_rename_and_refuses_the_guess(log_databases):
    expected = django_request(log_databases("dj_undrifted", before=AHEAD, extension=False), ahead=True)
    drifted = log_databases("dj_both", after="ALTER TABLE orders RENAME COLUMN status TO order_status")
    refused_until_the_migration_runs(drifted, expected)
    assert drifted.scalar("SELECT count(*) FROM selfheal.audit WHERE status = 'applied' AND column_name = 'status'") == 1
