"""heal() over an outage's worth of events: 100 statement shapes, each with 100 different values.

Starts its own durable cluster, with 1,000 aliases in place (renamed columns on 100 tables).
Half the shapes name a renamed column by its old name, half a column that is missing; each
event carries other constants, as an application with inlined literals sends them. One
`SELECT heal()` processes all 10,000.
Usage: python -m bench.heal_batch [--shapes 100] [--values 100] [--aliases 1000]
"""

from __future__ import annotations

import argparse
import json
import time

import psycopg

from bench import DURABLE, flat, new_column_name, print_goals
from tests.pgcluster import Cluster


def record_storm(conn, shapes: int, values: int) -> int:
    """shapes x values events, recorded as a client integration would; returns how many."""
    for k in range(shapes):
        table = f"t{k % 100 + 1}"
        column = f"c{k % 10}" if k % 2 == 0 else new_column_name(k)
        conn.execute("""SELECT selfheal.record_error('42703', format('column "%%s" does not exist', %s::text),
                                                     format('SELECT %%I FROM %%I WHERE id = %%s AND note = %%L',
                                                            %s::text, %s::text, v, 'n' || v))
                          FROM generate_series(1, %s) v""", (column, column, table, values))
    return conn.execute("SELECT count(*) FROM selfheal.error_event WHERE status = 'pending'").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=100)
    parser.add_argument("--values", type=int, default=100)
    parser.add_argument("--aliases", type=int, default=1000)
    args = parser.parse_args()
    cluster = Cluster(DURABLE).start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            conn = flat.database(admin, cluster, "storm", flat.aliased, flat.renamed(args.aliases))
            # Old names of renamed columns: c0, c2, ... of tables whose columns were renamed.
            events = record_storm(conn, args.shapes, args.values)
            started = time.perf_counter()
            summary = conn.execute("SELECT selfheal.heal()").fetchone()[0]
            took = time.perf_counter() - started
            conn.close()
        print(f"\n{events:,} events, {args.shapes} shapes, {args.aliases:,} aliases: heal() took {took:.2f} s "
              f"({took / events * 1000:.2f} ms per event)\n{json.dumps(summary, sort_keys=True)}")
        print_goals("heal() over an outage", [(f"heal() over {events:,} events of {args.shapes} shapes", took, 5, " s")])
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
