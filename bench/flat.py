"""heal_error stays flat as tables get wider, aliases accumulate and the database grows.

Starts its own durable cluster with one database per case, small and large side by side, and
interleaves single operations between them (small, large, small, ...):
- a missing column on a narrow table, and on one of 400 columns that all have defaults;
- a missing column beside 10 aliases, and beside 1,000 (renamed columns on 100 tables);
- a missing column in a database of 100 tables, and of 10,000;
- an application's `ALTER TABLE ... RENAME COLUMN` with 10 aliases in place, and with 1,000.
Beside the width case, the same ADD COLUMN without selfheal, on copies of both tables, shows
how much of the difference is PostgreSQL's own.
Usage: python -m bench.flat [--repeat 40] [--tables 10000] [--aliases 1000] [--width 400]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from bench import DURABLE, new_column_name, print_goals
from tests.pgcluster import Cluster


def timed(conn, sql: str, params=()) -> float:
    started = time.perf_counter()
    conn.execute(sql, params)
    return (time.perf_counter() - started) * 1000


def heal_missing(conn, table: str, i: int) -> float:
    if i < 0:
        warm(conn, table)
        return 0.0
    # Names of each table's own: an error about the same name on the other table would be read
    # as evidence of its type (heal._related_statements), and plan one side twice.
    name = new_column_name(f"{table}:{i}")
    started = time.perf_counter()
    status, reason = conn.execute("SELECT status, reason FROM selfheal.heal_error('42703', %s, %s)",
                                  (f'column "{name}" does not exist', f"SELECT {name} FROM {table}")).fetchone()
    took = (time.perf_counter() - started) * 1000
    assert status == "healed", reason
    return took


def warm(conn, table: str) -> None:
    """Two added columns first: from then on no added column is "the only one of its type the
    statement does not name", which selfheal would propose as a rename rather than add."""
    for statement in ("SELECT earlier_data FROM {t}", "SELECT previous_data, earlier_data FROM {t}"):
        name = statement.split()[1].rstrip(",")
        status = conn.execute("SELECT status FROM selfheal.heal_error('42703', %s, %s)",
                              (f'column "{name}" does not exist', statement.format(t=table))).fetchone()[0]
        assert status == "healed", status


def rename(conn, i: int) -> float:
    """The i-th rename of target's third column (i = -1 first: c0 to c0_first)."""
    before = "c0" if i < 0 else "c0_first" if i == 0 else f"c0_{i - 1}"
    return timed(conn, f"ALTER TABLE target RENAME COLUMN {before} TO {'c0_first' if i < 0 else f'c0_{i}'}")


def plain_add_column(conn, table: str, i: int) -> float:
    """What PostgreSQL alone spends on the DDL of a repair, with no selfheal: the ADD COLUMN,
    committed, then the table opened again (pg_relation_size), as the next statement on it does
    and as selfheal's next catalog read does."""
    started = time.perf_counter()
    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {new_column_name(i)} integer DEFAULT 0")
    conn.execute("SELECT pg_catalog.pg_relation_size(%s::regclass)", (table,))
    return (time.perf_counter() - started) * 1000


def width_tables(width: int):
    """A narrow table, and a wide one of `width` columns that all have defaults."""
    return lambda conn: (conn.execute("CREATE TABLE narrow (id int PRIMARY KEY, kind text)"),
                         conn.execute("CREATE TABLE wide (id int PRIMARY KEY, "
                                      + ", ".join(f"d{j} int DEFAULT {j}" for j in range(width)) + ")"))


def create_tables(conn, count: int, columns: int = 2, prefix: str = "t") -> None:
    body = ", ".join(f"c{j} int" for j in range(columns))
    conn.execute(f"""DO $$ BEGIN FOR i IN 1..{count} LOOP
                       EXECUTE format('CREATE TABLE {prefix}%s (id int PRIMARY KEY, {body})', i);
                     END LOOP; END $$""")


def database(admin, cluster: Cluster, name: str, tables, after=None) -> psycopg.Connection:
    """A database with `tables` made before selfheal (no event triggers), then `after` with it."""
    admin.execute(f"CREATE DATABASE {name}")
    conn = psycopg.connect(cluster.dsn(name), autocommit=True)
    tables(conn)
    conn.execute("CREATE EXTENSION selfheal CASCADE")
    conn.execute("UPDATE selfheal.policy SET value = '100000' WHERE name = 'column_budget_per_table'")
    if after:
        after(conn)
    conn.execute("ANALYZE")
    return conn


def aliased(conn) -> None:
    """100 tables of 10 columns and a target table."""
    create_tables(conn, 100, columns=10)
    conn.execute("CREATE TABLE target (id int PRIMARY KEY, kind text, c0 int)")


def renamed(count: int):
    """`count` columns of the 100 tables renamed, each leaving an alias."""
    def rename(conn):
        for i in range(count):
            conn.execute(f"ALTER TABLE t{i // 10 + 1} RENAME COLUMN c{i % 10} TO renamed_{i % 10}")
        assert conn.execute("SELECT count(*) FROM selfheal.alias WHERE active").fetchone()[0] == count
    return rename


def interleaved(repeat: int, small, large) -> tuple[float, float]:
    small(-1), large(-1)  # each backend loads selfheal's Python once, outside the figures
    small_times, large_times = [], []
    for i in range(repeat):
        small_times.append(small(i))
        large_times.append(large(i))
    return statistics.median(small_times), statistics.median(large_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--tables", type=int, default=10000)
    parser.add_argument("--aliases", type=int, default=1000)
    parser.add_argument("--width", type=int, default=400)
    args = parser.parse_args()
    cluster = Cluster({**DURABLE, "max_locks_per_transaction": "256"}).start()
    figures = []
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            width = database(admin, cluster, "width", width_tables(args.width))
            small, large = interleaved(args.repeat, lambda i: heal_missing(width, "narrow", i),
                                       lambda i: heal_missing(width, "wide", i))
            figures.append((f"missing column: {args.width} defaulted columns / 2", small, large))
            admin.execute("CREATE DATABASE width_plain")
            plain = psycopg.connect(cluster.dsn("width_plain"), autocommit=True)
            width_tables(args.width)(plain)
            plain_small, plain_large = interleaved(args.repeat, lambda i: plain_add_column(plain, "narrow", i),
                                                   lambda i: plain_add_column(plain, "wide", i))
            plain.close()

            few = database(admin, cluster, "aliases_few", aliased, renamed(10))
            many = database(admin, cluster, "aliases_many", aliased, renamed(args.aliases))
            small, large = interleaved(args.repeat, lambda i: heal_missing(few, "target", i),
                                       lambda i: heal_missing(many, "target", i))
            figures.append((f"missing column: {args.aliases:,} aliases / 10", small, large))
            small, large = interleaved(
                args.repeat,
                lambda i: rename(few, i), lambda i: rename(many, i))
            figures.append((f"rename: {args.aliases:,} aliases / 10", small, large))

            hundred = database(admin, cluster, "tables_few", lambda c: (
                create_tables(c, 100), c.execute("CREATE TABLE target (id int PRIMARY KEY, kind text)")))
            many_tables = database(admin, cluster, "tables_many", lambda c: (
                create_tables(c, args.tables), c.execute("CREATE TABLE target (id int PRIMARY KEY, kind text)")))
            small, large = interleaved(args.repeat, lambda i: heal_missing(hundred, "target", i),
                                       lambda i: heal_missing(many_tables, "target", i))
            figures.append((f"missing column: {args.tables:,} tables / 100", small, large))
            for conn in (width, few, many, hundred, many_tables):
                conn.close()
        print(f"\nmedian of {args.repeat}, interleaved\n\n| case | small (ms) | large (ms) |\n|---|---|---|")
        for what, small, large in figures:
            print(f"| {what} | {small:.1f} | {large:.1f} |")
        heal_small, heal_large = figures[0][1:]
        print(f"\nPostgreSQL alone, no selfheal (ADD COLUMN, then the table opened again), same run: "
              f"{plain_small:.2f} ms narrow, {plain_large:.2f} ms wide. Of heal_error's "
              f"{heal_large - heal_small:.2f} ms more on the wide table, about {plain_large - plain_small:.2f} ms "
              f"are PostgreSQL's own (the same DDL alone) and {heal_large - heal_small - plain_large + plain_small:.2f} "
              "ms selfheal's.")
        print_goals("flat in width and size", [(what, large / small, 1.5, "x") for what, small, large in figures])
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
