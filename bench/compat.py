"""What the per-schema compat layer costs: a heal and the application's own DDL on a wide table
with many aliases, and routing many tables, each beside a narrow table with none.

One durable cluster (fsync, synchronous_commit and full_page_writes on); the wide and the
narrow cases run interleaved in one process, so their ratio is what to quote.
Usage: python -m bench.compat [--rounds 15] [--tables 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from bench.lock_queue import DURABLE
from tests.pgcluster import Cluster

WIDE_COLUMNS, WIDE_ALIASES = 200, 50


def timed(conn, sql: str, params=None) -> float:
    started = time.perf_counter()
    conn.execute(sql, params)
    return (time.perf_counter() - started) * 1000


def setup(conn, tables: int) -> None:
    conn.execute("CREATE EXTENSION selfheal CASCADE; CREATE ROLE bench_app LOGIN")
    wide = ", ".join(f"col_{i} int" for i in range(WIDE_COLUMNS))
    conn.execute(f"CREATE TABLE wide (id int PRIMARY KEY, {wide}); CREATE TABLE narrow (id int PRIMARY KEY, c int)")
    for i in range(WIDE_ALIASES):
        conn.execute(f"SELECT selfheal.add_alias('wide', 'legacy_{i}', 'col_{i}')")
    conn.execute("SELECT selfheal.add_alias('narrow', 'legacy_c', 'c')")
    for i in range(tables):
        conn.execute(f"CREATE TABLE routed_{i} (id int PRIMARY KEY, item_name text)")
    conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO bench_app; SELECT selfheal.enable_compat('bench_app')")


def heal(conn, table: str, round_no: int) -> float:
    """One legacy spelling healed (a compat view rebuilt), then undone for the next round."""
    column = "col_1" if table == "wide" else "c"
    name = f"{column.replace('_', '')}x{round_no}"
    elapsed = timed(conn, "SELECT selfheal.add_alias(%s::regclass, %s, %s)", (table, name, column))
    audit = conn.execute("SELECT max(id) FROM selfheal.audit").fetchone()[0]
    conn.execute("SELECT selfheal.undo(%s)", (audit,))
    return elapsed


def app_ddl(conn, table: str, round_no: int) -> float:
    """The application's own migration: the event triggers take the views down and rebuild them."""
    return timed(conn, f"ALTER TABLE {table} ADD COLUMN added_{round_no} int")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--tables", type=int, default=100)
    args = parser.parse_args()
    cluster = Cluster(settings=DURABLE).start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            setup(conn, args.tables)
            results = {}
            for what, run in (("heal (declared alias, views rebuilt)", heal), ("application ADD COLUMN", app_ddl)):
                times = {"narrow": [], "wide": []}
                for r in range(args.rounds):
                    for table in times:
                        times[table].append(run(conn, table, r))
                results[what] = {t: statistics.median(v) for t, v in times.items()}
            conn.execute("SELECT selfheal.disable_compat('bench_app')")
            route = timed(conn, "SELECT selfheal.enable_compat('bench_app')")
            started = time.perf_counter()
            for i in range(args.tables):
                conn.execute(f"SELECT selfheal.add_alias('routed_{i}', 'itemname', 'item_name')")
            served = (time.perf_counter() - started) * 1000 / args.tables
        print(f"\nmedian of {args.rounds} interleaved rounds; wide = {WIDE_COLUMNS + 1} columns and {WIDE_ALIASES} "
              "aliases, narrow = 2 columns and 1 alias:\n")
        print("| operation | narrow (ms) | wide (ms) | wide / narrow |")
        print("|---|---|---|---|")
        for what, medians in results.items():
            print(f"| {what} | {medians['narrow']:.1f} | {medians['wide']:.1f} | "
                  f"{medians['wide'] / medians['narrow']:.2f}x |")
        print(f"\nrouting one role with {args.tables} tables in public: enable_compat {route:.1f} ms; "
              f"then a legacy name on each table: {served:.1f} ms per table")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
