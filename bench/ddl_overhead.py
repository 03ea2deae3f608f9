"""What selfheal's event triggers cost on DDL that does not concern it.

Two databases in one cluster, one with the extension (and an alias in place, so the triggers
have something to look at) and one without; the same DDL runs in both, interleaved.
Usage: python -m bench.ddl_overhead [--statements 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from tests.pgcluster import Cluster


def ddl_round(conn, statements: int) -> float:
    started = time.perf_counter()
    for i in range(statements // 3):
        conn.execute(f"CREATE TABLE bench_{i} (id int)")
        conn.execute(f"ALTER TABLE bench_{i} ADD COLUMN note text")
        conn.execute(f"DROP TABLE bench_{i}")
    return (time.perf_counter() - started) * 1000 / (statements // 3 * 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cluster = Cluster().start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE with_selfheal")
            admin.execute("CREATE DATABASE without_selfheal")
        dbs = {name: psycopg.connect(cluster.dsn(name), autocommit=True)
               for name in ("without_selfheal", "with_selfheal")}
        dbs["with_selfheal"].execute("CREATE EXTENSION selfheal CASCADE")
        dbs["with_selfheal"].execute("CREATE TABLE kept (id int PRIMARY KEY, kind text)")
        dbs["with_selfheal"].execute("SELECT selfheal.add_alias('kept', 'kind_id', 'kind::int')")
        for conn in dbs.values():
            ddl_round(conn, 60)  # warm
        times = {name: [] for name in dbs}
        for _ in range(args.rounds):
            for name, conn in dbs.items():
                times[name].append(ddl_round(conn, args.statements))
        print(f"\n{args.rounds} interleaved rounds of {args.statements} statements "
              "(CREATE TABLE, ALTER TABLE ADD COLUMN, DROP TABLE) on tables without aliases:\n")
        print("| database | median per statement (ms) |")
        print("|---|---|")
        for name, values in times.items():
            print(f"| {name} | {statistics.median(values):.2f} |")
        base, extra = (statistics.median(times[n]) for n in ("without_selfheal", "with_selfheal"))
        print(f"\nevent trigger cost: {extra - base:+.2f} ms per statement (ratio {extra / base:.2f})")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
