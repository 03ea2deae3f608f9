"""psycopg 3 and SQLAlchemy heal-and-retry, tried as a new user would: the app just runs its queries."""

import asyncio
import threading

import psycopg
import pytest
from psycopg import errors as pgerr

import selfheal
from selfheal.client import sqlalchemy as selfheal_sqlalchemy

from .support import SEED


@pytest.fixture
def app_dsn(db):
    db.admin.execute(SEED)
    return db.cluster.dsn(db.name, "app")


def columns_added(db) -> int:
    return db.scalar("SELECT count(*) FROM selfheal.audit WHERE status = 'applied'")


def test_autocommit_statement_is_healed_and_retried_transparently(db, app_dsn):
    with selfheal.connect(app_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT recommendation_data FROM sessions").fetchall() == [({},), ({},), ({},)]
        assert conn.execute("SELECT id FROM sessions WHERE service_type_id = 2").fetchall() == [(2,)]


def test_inside_a_transaction_the_unit_of_work_is_rolled_back_and_retried(db, app_dsn):
    with selfheal.connect(app_dsn) as conn:
        with pytest.raises(selfheal.RetryTransaction, match="re-run the unit of work") as info:
            conn.execute("UPDATE sessions SET service_type = 'x' WHERE id = 1")
            conn.execute("SELECT is_trial FROM sessions")
        assert info.value.result["status"] == "healed"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # rolled back, usable
        assert db.scalar("SELECT service_type FROM sessions WHERE id = 1") == "1"  # the UPDATE did not land

        runs = []
        for attempt in selfheal.retrying(conn):
            with attempt, conn.transaction():
                runs.append(1)
                conn.execute("UPDATE sessions SET service_type = 'y' WHERE id = 1")
                conn.execute("SELECT visit_count FROM sessions").fetchall()
        assert len(runs) == 2 and db.scalar("SELECT service_type FROM sessions WHERE id = 1") == "y"

        @selfheal.retrying(conn)
        def unit():
            with conn.transaction():
                return conn.execute("SELECT count(last_login_at) FROM sessions").fetchone()[0]

        assert unit() == 0


def test_a_plan_cached_before_the_repair_is_retried(db, app_dsn):
    with selfheal.connect(app_dsn, autocommit=True, prepare_threshold=0) as conn:
        for _ in range(3):
            conn.execute("SELECT * FROM sessions WHERE id = %s", (1,)).fetchall()  # prepared
        conn.execute("SELECT extra_data FROM sessions").fetchall()  # heal: the table gains a column
        row = conn.execute("SELECT * FROM sessions WHERE id = %s", (1,)).fetchone()
        assert len(row) == 4  # the prepared statement's old result type would have failed with 0A000


def test_other_errors_pass_through_untouched(db, app_dsn):
    with selfheal.connect(app_dsn, autocommit=True) as conn:
        with pytest.raises(pgerr.DivisionByZero) as info:
            conn.execute("SELECT 1/0")
        assert not hasattr(info.value, "selfheal")
        with pytest.raises(pgerr.SyntaxError):
            conn.execute("SELEC 1")
    assert db.scalar("SELECT count(*) FROM selfheal.error_event") == 0


def test_without_the_extension_the_original_error_stands_with_the_reason(cluster):
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS plain")
        admin.execute("CREATE DATABASE plain")
    with selfheal.connect(cluster.dsn("plain"), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int)")
        with pytest.raises(pgerr.UndefinedColumn) as info:
            conn.execute("SELECT nope FROM t")
    assert "could not be asked for" in info.value.selfheal["reason"]
    assert any("selfheal" in note for note in info.value.__notes__)


def test_a_refusal_by_policy_leaves_the_original_error(db, app_dsn):
    db.admin.execute("UPDATE selfheal.policy SET value = 'propose' WHERE name = 'add_column'")
    with selfheal.connect(app_dsn, autocommit=True) as conn:
        with pytest.raises(pgerr.UndefinedColumn) as info:
            conn.execute("SELECT brand_new FROM sessions")
    assert info.value.selfheal["status"] == "pending_approval"
    assert columns_added(db) == 0


def test_a_repair_that_does_not_help_is_not_retried_forever(db, app_dsn):
    db.admin.execute("CREATE ROLE unrouted LOGIN; GRANT SELECT ON sessions TO unrouted; "
                     "GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO unrouted")
    try:
        with selfheal.connect(db.cluster.dsn(db.name, "unrouted"), autocommit=True) as conn:
            with pytest.raises(pgerr.UndefinedColumn) as info:
                conn.execute("SELECT service_type_id FROM sessions")  # served only to routed roles
        # Planned again as the role after the DDL, it still failed: rolled back, not "healed".
        assert info.value.selfheal["status"] == "ineffective"
        assert "selfheal.enable_compat('unrouted')" in info.value.selfheal["reason"]
        assert db.scalar("SELECT count(*) FROM selfheal.alias") == 0
        assert db.scalar("SELECT count(*) FROM selfheal.error_event") == 1  # asked once; the same error again is not
    finally:
        db.admin.execute("DROP OWNED BY unrouted; DROP ROLE unrouted")


def test_an_error_storm_of_64_clients_makes_one_change_and_all_succeed(db, app_dsn):
    clients = 64
    barrier = threading.Barrier(clients)
    outcomes = []

    def client():
        with selfheal.connect(app_dsn, autocommit=True, options="-c statement_timeout=30s") as conn:
            barrier.wait(30)
            try:
                outcomes.append(conn.execute("SELECT storm_data FROM sessions").fetchall())
            except Exception as exc:  # recorded, so the assertion shows it
                outcomes.append(exc)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a client waited without bound"
    assert outcomes == [[({},), ({},), ({},)]] * clients
    assert db.scalar("SELECT count(*) FROM selfheal.audit WHERE status = 'applied' AND column_name = 'storm_data'") == 1


def test_async_connection_heals_and_retries(db, app_dsn):
    async def run():
        conn = await selfheal.connect_async(app_dsn, autocommit=True)
        async with conn:
            cur = await conn.execute("SELECT async_count FROM sessions")
            return await cur.fetchall()

    assert asyncio.run(run()) == [(0,), (0,), (0,)]


def test_sqlalchemy_core_and_orm_units_of_work_are_retried(db, app_dsn):
    from sqlalchemy import Column, Integer, Text, create_engine, text
    from sqlalchemy.dialects.postgresql import JSONB
    from sqlalchemy.orm import Session, declarative_base

    url = f"postgresql+psycopg://app@127.0.0.1:{db.cluster.port}/{db.name}"
    engine = selfheal_sqlalchemy.install(create_engine(url))

    runs = []
    for attempt in selfheal_sqlalchemy.retrying():
        with attempt, engine.begin() as conn:
            runs.append(1)
            rows = conn.execute(text("SELECT orm_flag_count FROM sessions")).fetchall()
    assert rows == [(0,), (0,), (0,)] and len(runs) == 2

    Base = declarative_base()

    class Session_(Base):
        __tablename__ = "sessions"
        id = Column(Integer, primary_key=True)
        service_type = Column(Text)
        plan_json = Column(JSONB)  # the model is ahead of the schema

    with Session(engine) as session:
        @selfheal_sqlalchemy.retrying(session)
        def unit():
            return [s.plan_json for s in session.query(Session_).order_by(Session_.id)]

        assert unit() == [{}, {}, {}]

    with engine.connect() as conn, pytest.raises(Exception) as info:
        conn.execute(text("SELECT 1/0"))
    assert isinstance(info.value.orig, pgerr.DivisionByZero)
    engine.dispose()


def test_sqlalchemy_models_types_decide_the_columns_added(db, app_dsn):
    from sqlalchemy import Boolean, Column, Integer, create_engine, select
    from sqlalchemy.dialects.postgresql import JSONB
    from sqlalchemy.orm import Session, declarative_base

    Base = declarative_base()

    class Package(Base):  # the model is ahead of the schema: two columns the table lacks
        __tablename__ = "credit_packages"
        id = Column(Integer, primary_key=True)
        credits = Column(Integer)
        gift_wrap = Column(Boolean)
        preferences = Column(JSONB)

    engine = selfheal_sqlalchemy.install(create_engine(
        f"postgresql+psycopg://app@127.0.0.1:{db.cluster.port}/{db.name}"))
    with Session(engine) as session:
        for attempt in selfheal_sqlalchemy.retrying(session, attempts=3):
            with attempt:
                packages = session.scalars(select(Package).order_by(Package.id)).all()
        assert [(p.gift_wrap, p.preferences) for p in packages] == [(False, {}), (False, {})]
        for attempt in selfheal_sqlalchemy.retrying(session):
            with attempt:
                wrapped = session.scalars(select(Package).where(Package.gift_wrap.is_(False))).all()
        assert len(wrapped) == 2  # a boolean filter, not 42883 on text
    engine.dispose()
    types = dict(db.admin.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'credit_packages'::regclass AND attname IN ('gift_wrap', 'preferences')").fetchall())
    assert types == {"gift_wrap": "boolean", "preferences": "jsonb"}
    reasons = [r[0] for r in db.admin.execute("SELECT evidence->>'type' FROM selfheal.audit ORDER BY id")]
    assert reasons == ["the application declares it as boolean", "the application declares it as jsonb"]


@pytest.fixture
def late_role(db):
    """A role whose connections were opened before selfheal.enable_compat routed it."""
    db.admin.execute(SEED)
    db.admin.execute("CREATE ROLE late LOGIN; GRANT SELECT, UPDATE ON sessions TO late; "
                     "GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO late")
    yield db.cluster.dsn(db.name, "late")
    db.admin.execute("ALTER ROLE late RESET ALL; DROP OWNED BY late; DROP ROLE late")


def test_a_pooled_connection_opened_before_enable_compat_sees_the_repair(db, late_role):
    opened_early = selfheal.connect(late_role, autocommit=True)
    in_transactions = selfheal.connect(late_role)
    db.admin.execute("SELECT selfheal.enable_compat('late')")
    with opened_early as conn:
        # healed for the role's new sessions; this one is routed too, and the retry reads it
        assert conn.execute("SELECT id FROM sessions WHERE service_type_id = 2").fetchall() == [(2,)]
        assert conn.execute("SHOW search_path").fetchone()[0].startswith("selfheal_compat_")
    with in_transactions as conn:
        runs = 0
        for attempt in selfheal.retrying(conn, attempts=2):
            with attempt, conn.transaction():
                runs += 1
                rows = conn.execute("SELECT id FROM sessions WHERE service_type_id = 1").fetchall()
        assert rows == [(1,)] and runs == 2  # one rollback, one successful run: no attempt wasted


def test_sqlalchemy_pooled_connections_opened_before_enable_compat_see_the_repair(db, late_role):
    from sqlalchemy import create_engine, text

    engine = selfheal_sqlalchemy.install(create_engine(
        f"postgresql+psycopg://late@127.0.0.1:{db.cluster.port}/{db.name}", pool_size=1, max_overflow=0))
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # the pool's one connection, opened before routing
    db.admin.execute("SELECT selfheal.enable_compat('late')")
    runs = 0
    for attempt in selfheal_sqlalchemy.retrying(attempts=2):
        with attempt, engine.begin() as conn:
            runs += 1
            rows = conn.execute(text("SELECT id FROM sessions WHERE service_type_id = 3")).fetchall()
    assert rows == [(3,)] and runs == 2
    engine.dispose()


def test_on_a_standby_the_heal_goes_to_the_primary_and_the_retry_reads_it(db, app_dsn):
    from tests.pgcluster import Cluster

    standby = Cluster.standby_of(db.cluster)
    try:
        standby_dsn = standby.dsn(db.name, "app")
        with selfheal.connect(standby_dsn, heal_dsn=db.cluster.dsn(db.name, "app"), autocommit=True) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            assert conn.execute("SELECT replica_data FROM sessions").fetchall() == [({},), ({},), ({},)]
            assert conn.execute("SELECT id FROM sessions WHERE service_type_id = 1").fetchall() == [(1,)]
        assert columns_added(db) == 2  # applied once, on the primary
    finally:
        standby.stop()
