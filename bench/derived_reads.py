"""Reads through a derived name beside the same read on the base column.

Starts its own durable cluster. A table of `--rows` rows gets `kind_id`, derived from the text
column `kind`, served by the compat view to a routed role. The same filter then runs through
the view (`kind_id = 3`) and on the table's own column (`kind = '3'`), interleaved, as the
routed role: with no index, then with an index on `kind` (the derived name still scans), then
after `selfheal indexes --apply` built the index the repair asked for, CONCURRENTLY, on what
the view computes (PostgreSQL matches the view's expression to it).
Usage: python -m bench.derived_reads [--rows 5000000] [--repeat 21]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from bench import DURABLE, print_goals
from selfheal.cli import adopt
from tests.pgcluster import Cluster

THROUGH_VIEW = "SELECT count(*) FROM items WHERE kind_id = 3"  # the routed role reads the compat view
BASE = "SELECT count(*) FROM public.items WHERE kind = '3'"


def timed(conn, sql: str) -> float:
    started = time.perf_counter()
    conn.execute(sql).fetchone()
    return time.perf_counter() - started


def side_by_side(conn, repeat: int) -> tuple[float, float]:
    view, base = [], []
    for _ in range(repeat):
        view.append(timed(conn, THROUGH_VIEW))
        base.append(timed(conn, BASE))
    return statistics.median(view), statistics.median(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    cluster = Cluster({**DURABLE, "max_wal_size": "'8GB'"}).start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE TABLE items (id bigint PRIMARY KEY, kind text, label text)")
            admin.execute("INSERT INTO items SELECT g, (g %% 100000)::text, 'item ' || g FROM generate_series(1, %s) g",
                          (args.rows,))
            admin.execute("VACUUM ANALYZE items")
            admin.execute("CREATE EXTENSION selfheal CASCADE")
            admin.execute("CREATE ROLE app LOGIN")
            admin.execute("GRANT SELECT ON items TO app")
            admin.execute("GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO app")
            admin.execute("SELECT selfheal.enable_compat('app')")
            with psycopg.connect(cluster.dsn(user="app"), autocommit=True) as app:
                status, reason = app.execute("SELECT status, reason FROM selfheal.heal_error('42703', "
                                             "'column \"kind_id\" does not exist', %s)", (THROUGH_VIEW,)).fetchone()
                assert status == "healed", reason
                served = admin.execute("SELECT expression FROM selfheal.alias WHERE legacy_name = 'kind_id'").fetchone()[0]
                figures = {"no index": side_by_side(app, args.repeat)}
                admin.execute("CREATE INDEX CONCURRENTLY items_kind_idx ON items (kind)")
                admin.execute("ANALYZE items")
                figures["an index on kind only"] = side_by_side(app, args.repeat)
                # The repair was made before kind was indexed: made again now, it asks for its index.
                admin.execute("SELECT selfheal.undo(max(id)) FROM selfheal.audit WHERE action = 'add_alias'")
                admin.execute("DELETE FROM selfheal.rejection")
                status, reason = app.execute("SELECT status, reason FROM selfheal.heal_error('42703', "
                                             "'column \"kind_id\" does not exist', %s)", (THROUGH_VIEW,)).fetchone()
                assert status == "healed" and "selfheal indexes" in reason, reason
                steps = adopt.indexes(admin, apply=True)
                assert [s.state for s in steps] == [adopt.DONE], steps
                plan = "\n".join(r[0] for r in app.execute("EXPLAIN " + THROUGH_VIEW))
                assert "selfheal_" in plan, plan
                figures["and the index selfheal built"] = side_by_side(app, args.repeat)
        print(f"\n{args.rows:,} rows; kind_id served as {served}; median of {args.repeat}, interleaved\n"
              "\n| indexes | through the view (ms) | base column (ms) | view / base |\n|---|---|---|---|")
        for what, (view, base) in figures.items():
            print(f"| {what} | {view * 1000:.3f} | {base * 1000:.3f} | {view / base:.2f}x |")
        print_goals("derived reads", [(f"filter through the derived name / base column, {what}", view / base, 2, "x")
                                      for what, (view, base) in figures.items() if what != "an index on kind only"])
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
