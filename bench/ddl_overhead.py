"""What selfheal's event triggers cost on DDL that does not concern it.

Two databases in one cluster with durable settings, one with the extension (and an alias in
place, so the triggers have something to look at) and one without. Each DDL statement runs in
one, then the same in the other, taking turns at going first; each round's figure is the median
per statement. All rounds run durable, then again with synchronous_commit off in the two
sessions (a commit's WAL flush on a busy disk can hide the triggers' cost or swamp it).
Usage: python -m bench.ddl_overhead [--statements 1200] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from bench import DURABLE, print_goals
from tests.pgcluster import Cluster

DATABASES = ("without_selfheal", "with_selfheal")
KINDS = ("CREATE TABLE", "ALTER TABLE ADD COLUMN", "DROP TABLE")
RATIO_GOAL = 1.5  # no goal was set; this is the ratio the figure has been held to


def statements(i: int) -> tuple[str, str, str]:
    return f"CREATE TABLE bench_{i} (id int)", f"ALTER TABLE bench_{i} ADD COLUMN note text", f"DROP TABLE bench_{i}"


def timed(conn, sql: str) -> float:
    started = time.perf_counter()
    conn.execute(sql)
    return (time.perf_counter() - started) * 1000


def ddl_round(conns: list, count: int) -> dict[str, tuple[float, float]]:
    """Median ms per statement, (without, with), by kind, for `count` statements in each database;
    and for all three, the mean of the three medians (the median of the mixed statements would
    jump between kinds)."""
    times = {kind: ([], []) for kind in KINDS}
    for i in range(count // 3):
        for kind, sql in zip(KINDS, statements(i)):
            for db in ((0, 1) if (i + KINDS.index(kind)) % 2 else (1, 0)):
                times[kind][db].append(timed(conns[db], sql))
    figures = {kind: (statistics.median(a), statistics.median(b)) for kind, (a, b) in times.items()}
    figures["all three"] = tuple(statistics.fmean(f[db] for f in figures.values()) for db in (0, 1))
    return figures


def report(title: str, rounds: list[dict[str, tuple[float, float]]]) -> dict[tuple[str, str], float]:
    """Prints min and median over rounds by kind; returns the ratios, by (kind, min or median)."""
    print(f"\n{title}; each round's figure is its median per statement:\n")
    print("| statement | over rounds | without selfheal (ms) | with selfheal (ms) | with - without (ms) "
          "| with / without |")
    print("|---|---|---|---|---|---|")
    ratios = {}
    for kind in rounds[0]:
        for name, pick in (("min", min), ("median", statistics.median)):
            base, extra = pick(r[kind][0] for r in rounds), pick(r[kind][1] for r in rounds)
            ratios[kind, name] = extra / base
            print(f"| {kind} | {name} | {base:.2f} | {extra:.2f} | {extra - base:+.2f} | {extra / base:.2f} |")
    per_round = sorted(r["all three"][1] / r["all three"][0] for r in rounds)
    print(f"\nall three, with / without in each round, sorted: {', '.join(f'{x:.2f}' for x in per_round)}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cluster = Cluster(settings=DURABLE).start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            shown = {name: admin.execute(f"SHOW {name}").fetchone()[0] for name in DURABLE}
            assert all(v == "on" for v in shown.values()), shown
            for name in DATABASES:
                admin.execute(f"CREATE DATABASE {name}")
        conns = [psycopg.connect(cluster.dsn(name), autocommit=True) for name in DATABASES]
        selfheal_db = conns[DATABASES.index("with_selfheal")]
        selfheal_db.execute("CREATE EXTENSION selfheal CASCADE")
        selfheal_db.execute("CREATE TABLE kept (id int PRIMARY KEY, kind text)")
        selfheal_db.execute("SELECT selfheal.add_alias('kept', 'kind_id', 'kind::int')")
        print(f"\nCluster: {', '.join(f'{k}={v}' for k, v in shown.items())} (SHOW). {args.rounds} rounds of "
              f"{args.statements // 3 * 3:,} statements in each database, one statement each in turn, "
              "on tables without aliases.")
        ratios = {}
        # The second pass, stated as such, leaves the commit's WAL flush out of the time.
        for commit in ("on", "off"):
            for conn in conns:
                conn.execute(f"SET synchronous_commit = {commit}")
            ddl_round(conns, 60)  # warm
            rounds = [ddl_round(conns, args.statements) for _ in range(args.rounds)]
            ratios[commit] = report(f"synchronous_commit = {commit}" + (
                " (durable)" if commit == "on" else " in the two sessions only (fsync and full_page_writes on)"),
                rounds)
        for conn in conns:  # write out thousands of tables' catalog pages now, not in pg_ctl stop's 60 s
            conn.execute("CHECKPOINT")
            conn.close()

        print_goals("Event trigger cost on unrelated DDL, with / without selfheal (the goal is informative)", [
            ("durable, all three, median of rounds", ratios["on"]["all three", "median"], RATIO_GOAL, "x"),
            ("durable, all three, min of rounds", ratios["on"]["all three", "min"], RATIO_GOAL, "x"),
            ("synchronous_commit off, all three, median of rounds", ratios["off"]["all three", "median"],
             RATIO_GOAL, "x"),
        ])
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
