"""How long one repair takes through selfheal.heal_error, by strategy and table size.

Starts its own throwaway cluster. Tables of SMALL and LARGE rows are healed side by side in
one run, so the ratio LARGE/SMALL shows whether the cost grows with the table.
Usage: python -m bench.heal_latency [--small 10000] [--large 1000000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from tests.pgcluster import Cluster

CASES = {
    # strategy: (error message, statement)
    "add_column": ('column "note_{i}_data" does not exist', "SELECT note_{i}_data FROM {t}"),
    "derived alias (x_id)": ('column "kind_id" does not exist', "SELECT kind_id FROM {t} WHERE kind_id = 1"),
    "rename alias": ('column "kindlabel" does not exist', "SELECT KindLabel FROM {t}"),
}


def build(conn: psycopg.Connection, table: str, rows: int) -> None:
    conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, kind text, kind_label text)")
    conn.execute(f"INSERT INTO {table} SELECT g, (g %% 7)::text, 'k' || g FROM generate_series(1, %s) g", (rows,))
    conn.execute(f"VACUUM ANALYZE {table}")


def heal_once(conn: psycopg.Connection, message: str, statement: str) -> float:
    started = time.perf_counter()
    status = conn.execute("SELECT status FROM selfheal.heal_error('42703', %s, %s)", (message, statement)).fetchone()[0]
    elapsed = (time.perf_counter() - started) * 1000
    assert status == "healed", status
    return elapsed


def measure(conn, table: str, case: str, repeat: int) -> float:
    """Median ms; each repeat heals afresh (a new column, or the alias undone first)."""
    message, statement = CASES[case]
    samples = []
    for i in range(repeat):
        samples.append(heal_once(conn, message.format(i=i), statement.format(i=i, t=table)))
        if case != "add_column":
            conn.execute("SELECT selfheal.undo(max(id)) FROM selfheal.audit WHERE status = 'applied' "
                         "AND undone_by IS NULL AND action <> 'undo'")
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    cluster = Cluster().start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION selfheal CASCADE")
            conn.execute("UPDATE selfheal.policy SET value = %s WHERE name = 'column_budget_per_table'",
                          (str(args.repeat + 1),))
            build(conn, "small_t", args.small)
            build(conn, "large_t", args.large)
            heal_once(conn, 'column "warm_data" does not exist', "SELECT warm_data FROM small_t")  # load Python once
            print(f"| strategy | {args.small:,} rows (ms, median) | {args.large:,} rows (ms, median) | ratio |")
            print("|---|---|---|---|")
            for case in CASES:
                small = measure(conn, "small_t", case, args.repeat)
                large = measure(conn, "large_t", case, args.repeat)
                print(f"| {case} | {small:.1f} | {large:.1f} | {large / small:.2f} |")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
