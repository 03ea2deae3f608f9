"""A second real legacy application: code written against vega_datasets' `cars` and `iris`
(quoted Mixed_Case and camelCase names), whose tables the team then migrates in place to the
snake_case names seaborn publishes for the same data (`cars` becomes `mpg`). The 21 queries of
`tests/fixtures/vega/fixture_queries.sql` (reads, a CTE, a subquery, USING, NATURAL JOIN and
writes with RETURNING *) run unchanged. Each `psql -XqA` output must be
byte-identical to an unmigrated copy's, after at most one heal round (here none is needed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import _fresh_database
from .test_legacy_peer import login_role, psql

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vega"
QUERIES = [q for q in (FIXTURES / "fixture_queries.sql").read_text().splitlines() if q.strip()]
LEGACY_ROLE = "vega_app"


def load_legacy(db) -> None:
    db.admin.execute((FIXTURES / "legacy_schema.sql").read_text())
    for table in ("cars", "iris"):
        rows = json.loads((FIXTURES / f"{table}.json").read_text())
        columns = list(rows[0])
        with db.admin.cursor().copy(
                f"COPY {table} ({', '.join(map(quote, columns))}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    db.admin.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON cars, iris TO {LEGACY_ROLE}; ANALYZE")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def migrate(db) -> None:
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.name,
                    "-f", str(FIXTURES / "migration.sql")], check=True, capture_output=True, env=db.cluster.env)


@pytest.fixture
def unmigrated(log_cluster):
    login_role(log_cluster, LEGACY_ROLE)
    db = next(gen := _fresh_database(log_cluster))
    db.admin.execute("DROP EXTENSION selfheal")
    load_legacy(db)
    yield db
    next(gen, None)


@pytest.fixture
def migrated(log_db):
    login_role(log_db.cluster, LEGACY_ROLE)
    load_legacy(log_db)
    log_db.admin.execute(f"SELECT selfheal.enable_compat('{LEGACY_ROLE}')")
    migrate(log_db)
    assert log_db.scalar("SELECT to_regclass('public.cars')") is None
    return log_db


def test_the_vega_app_runs_unchanged_on_the_migrated_tables_after_at_most_one_heal_round(unmigrated, migrated):
    # The app runs its queries twice in both worlds, since a write that needs no legacy name
    # (a positional INSERT) lands on the first pass too; the second passes are compared.
    first = [psql(unmigrated, q, LEGACY_ROLE) for q in QUERIES]
    assert all(status == 0 for status, _ in first), [f for f in first if f[0]]
    expected = [psql(unmigrated, q, LEGACY_ROLE) for q in QUERIES]
    # The migration's renames were seen as they ran, so the routed role is served its legacy
    # names at once: no query fails, and no heal round is needed.
    before = [psql(migrated, q, LEGACY_ROLE) for q in QUERIES]
    differ = [(q, b, f) for q, b, f in zip(QUERIES, before, first) if b != f]
    assert differ == [], f"{len(differ)} of {len(QUERIES)} queries differ from the unmigrated copy: {differ[:2]}"
    after = [psql(migrated, q, LEGACY_ROLE) for q in QUERIES]
    assert after == expected
    # Served by views alone: no column was added or copied, nothing waits for review.
    assert migrated.scalar("SELECT count(*) FROM selfheal.audit WHERE action = 'add_column'") == 0
    assert migrated.scalar("SELECT count(*) FROM selfheal.audit WHERE status <> 'applied'") == 0
    # The writes landed in the real tables, under their new names.
    assert migrated.scalar("SELECT count(*) FROM iris WHERE petal_length = 1.4 AND sepal_width = 3.3") == \
        unmigrated.scalar('SELECT count(*) FROM iris WHERE "petalLength" = 1.4 AND "sepalWidth" = 3.3')
