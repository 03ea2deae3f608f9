"""Client integration: error-to-success latency of a healed statement, and happy-path overhead.

Starts its own cluster. Usage: python -m bench.client [--heals 50] [--queries 5000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

import selfheal
from bench import new_column_name
from tests.pgcluster import Cluster


def latency(dsn: str, heals: int) -> list[float]:
    """Milliseconds per healed statement, in order: the first one opens the heal connection."""
    samples = []
    with selfheal.connect(dsn, autocommit=True) as conn:
        for i in range(heals):
            started = time.perf_counter()
            conn.execute(f"SELECT {new_column_name(i)} FROM items WHERE id = 1").fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def workload(conn, queries: int) -> float:
    started = time.perf_counter()
    for i in range(queries):
        conn.execute("SELECT id, name FROM items WHERE id = %s", (i % 1000 + 1,)).fetchone()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heals", type=int, default=50)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    cluster = Cluster().start()
    try:
        dsn = cluster.dsn()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("CREATE EXTENSION selfheal CASCADE")
            admin.execute("UPDATE selfheal.policy SET value = %s WHERE name = 'column_budget_per_table'",
                          (str(args.heals + 1),))
            admin.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
            admin.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g")
        first, *rest = latency(dsn, args.heals)
        rest.sort()
        print(f"\nError to success of a healed statement (autocommit, {args.heals} new columns):\n")
        print("| first (opens the heal connection) | p50 | p99 | max |")
        print("|---|---|---|---|")
        p99 = rest[min(len(rest) - 1, int(0.99 * len(rest)))]
        print(f"| {first:.1f} ms | {statistics.median(rest):.1f} ms | {p99:.1f} ms | {rest[-1]:.1f} ms |")

        plain = psycopg.connect(dsn, autocommit=True)
        healing = selfheal.connect(dsn, autocommit=True)
        workload(plain, 500), workload(healing, 500)  # warm both
        times = {"plain psycopg": [], "selfheal.connect": []}
        for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
            times["plain psycopg"].append(workload(plain, args.queries))
            times["selfheal.connect"].append(workload(healing, args.queries))
        print(f"\nHappy path: {args.rounds} interleaved rounds of {args.queries} single-row SELECTs:\n")
        print("| connection | median round (s) | queries/s |")
        print("|---|---|---|")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"| {name} | {median:.3f} | {args.queries / median:,.0f} |")
        ratio = statistics.median(times["selfheal.connect"]) / statistics.median(times["plain psycopg"])
        print(f"\noverhead: {100 * (ratio - 1):+.1f} % (ratio {ratio:.3f})")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
