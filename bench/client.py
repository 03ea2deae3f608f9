"""Client integration: error-to-success latency of a healed statement, and happy-path overhead.

Starts its own cluster, with durable settings. Error to success: --heals statements after a
first one, each naming a new missing column, spread over --tables tables. Happy path: one
selfheal.connect() connection runs single-row SELECTs in blocks of --block, taking turns between
psycopg's own cursor class (a plain psycopg connection) and the one selfheal.connect() gave it,
--queries of each per round, --rounds rounds; then the same with psycopg's class on both sides,
which shows how finely the method resolves.
Usage: python -m bench.client [--heals 1000] [--tables 20] [--queries 20000] [--block 100] [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

import selfheal
from bench import DURABLE, new_column_name, print_goals
from tests.pgcluster import Cluster

P50_GOAL_MS = 20
OVERHEAD_GOAL = 1.02  # selfheal.connect / plain psycopg, per query


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def latency(dsn: str, heals: int, tables: int) -> list[float]:
    """Milliseconds per healed statement, in order: the first one opens the heal connection."""
    samples = []
    with selfheal.connect(dsn, autocommit=True) as conn:
        for i in range(heals):
            name = new_column_name(i)
            started = time.perf_counter()
            conn.execute(f"SELECT {name} FROM items_{i % tables} WHERE id = 1").fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def block(conn, cursor_class, first: int, size: int, out: list[float]) -> None:
    conn.cursor_factory = cursor_class
    for i in range(first, first + size):
        started = time.perf_counter()
        conn.execute("SELECT id, name FROM items WHERE id = %s", (i % 1000 + 1,)).fetchone()
        out.append((time.perf_counter() - started) * 1e6)


def happy_round(conn, classes: tuple, queries: int, size: int) -> tuple[float, float]:
    """Median µs per query with each of two cursor classes on one connection, in blocks that
    take turns (each side goes first in every other pair of blocks)."""
    times = ([], [])
    for n, first in enumerate(range(0, queries, size)):
        for side in ((0, 1) if n % 2 == 0 else (1, 0)):
            block(conn, classes[side], first, size, times[side])
    return statistics.median(times[0]), statistics.median(times[1])


def over_rounds(rounds: list[tuple[float, float]]) -> dict[str, tuple[float, float, float]]:
    """(base µs, other µs, other / base) for the min and the median of the rounds' figures."""
    figures = {}
    for name, pick in (("min", min), ("median", statistics.median)):
        base, other = pick(r[0] for r in rounds), pick(r[1] for r in rounds)
        figures[name] = base, other, other / base
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heals", type=int, default=1000)
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    cluster = Cluster(settings=DURABLE).start()
    try:
        dsn = cluster.dsn()
        with psycopg.connect(dsn, autocommit=True) as admin:
            shown = {name: admin.execute(f"SHOW {name}").fetchone()[0] for name in DURABLE}
            assert all(v == "on" for v in shown.values()), shown
            admin.execute("CREATE EXTENSION selfheal CASCADE")
            admin.execute("UPDATE selfheal.policy SET value = %s WHERE name = 'column_budget_per_table'",
                          (str(-(-(args.heals + 1) // args.tables) + 1),))
            for table in ["items"] + [f"items_{t}" for t in range(args.tables)]:  # items: the happy path's
                admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text)")
                admin.execute(f"INSERT INTO {table} SELECT g, 'item ' || g FROM generate_series(1, 1000) g")
        print(f"\nCluster: {', '.join(f'{k}={v}' for k, v in shown.items())} (SHOW); client and server "
              "on one machine, loopback TCP.")

        first, *rest = latency(dsn, args.heals + 1, args.tables)
        rest.sort()
        p50, p90, p99 = (percentile(rest, s) for s in (0.50, 0.90, 0.99))
        print(f"\nError to success of a healed statement (autocommit; a new missing column each, over "
              f"{args.tables} tables; percentiles of the {len(rest):,} after the first):\n")
        print("| first (opens the heal connection) | p50 | p90 | p99 | max |")
        print("|---|---|---|---|---|")
        print(f"| {first:.1f} ms | {p50:.1f} ms | {p90:.1f} ms | "
              f"{f'{p99:.1f} ms' if len(rest) >= 1000 else f'n/a ({len(rest)} samples < 1000)'} | {rest[-1]:.1f} ms |")

        with selfheal.connect(dsn, autocommit=True) as conn:
            pairs = {"selfheal.connect": (psycopg.Cursor, conn.cursor_factory),
                     "control: plain on both sides": (psycopg.Cursor, psycopg.Cursor)}
            figures = {}
            for name, classes in pairs.items():
                happy_round(conn, classes, 2000, args.block)  # warm
                figures[name] = over_rounds([happy_round(conn, classes, args.queries, args.block)
                                             for _ in range(args.rounds)])
        print(f"\nHappy path: {args.rounds} rounds of {args.queries:,} single-row SELECTs on each side, in "
              f"blocks of {args.block} taking turns on one connection; a round's figure is its median per query:\n")
        print("| compared with plain psycopg | over rounds | plain (µs) | other side (µs) | other / plain |")
        print("|---|---|---|---|---|")
        for name, by_pick in figures.items():
            for pick, (base, other, ratio) in by_pick.items():
                print(f"| {name} | {pick} | {base:.1f} | {other:.1f} | {ratio:.3f} |")

        ratios = figures["selfheal.connect"]
        print_goals("Client goals (durable settings)", [
            ("error to success, p50", p50, P50_GOAL_MS, " ms"),
            ("happy path selfheal / plain, median of rounds", ratios["median"][2], OVERHEAD_GOAL, "x"),
            ("happy path selfheal / plain, min of rounds", ratios["min"][2], OVERHEAD_GOAL, "x"),
        ])
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
