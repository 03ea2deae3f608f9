"""Reader latency while selfheal repairs a table another session holds: does a reader wait behind it?

An idle transaction holds ACCESS SHARE on items for the whole run, so no repair can get its
ACCESS EXCLUSIVE lock. Readers run alone (baseline) and beside healer clients, interleaved A, B,
A, B, on a cluster with durable settings. Starts its own cluster.
Usage: python -m bench.lock_queue [--seconds 10] [--rounds 2] [--healers 16] [--readers 4]
"""

from __future__ import annotations

import argparse
import collections
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg

from bench import DURABLE, new_column_name
from tests.pgcluster import Cluster

ROWS = 100_000
SLOW_MS = 100
OPTIONS = "-c statement_timeout=30s"
HEAL = "SELECT status FROM selfheal.heal_error('42703', %s, %s)"


def setup(conn: psycopg.Connection) -> None:
    conn.execute("CREATE EXTENSION selfheal CASCADE")
    conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, kind text)")
    conn.execute("INSERT INTO items SELECT g, (g %% 7)::text FROM generate_series(1, %s) g", (ROWS,))
    conn.execute("VACUUM ANALYZE items")
    conn.execute("CREATE ROLE app LOGIN")
    conn.execute("GRANT SELECT ON items TO app")
    conn.execute("GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO app")


def columns(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'items'::regclass "
                                       "AND attnum > 0 AND NOT attisdropped ORDER BY attnum")]


def reader(conn, seed: int, deadline: float) -> list[float]:
    rng, samples = random.Random(seed), []
    while time.monotonic() < deadline:
        started = time.perf_counter()
        conn.execute("SELECT count(*) FROM items WHERE id = %s", (rng.randint(1, ROWS),)).fetchone()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def healer(conn, first_k: int, deadline: float) -> collections.Counter:
    """Each call names a new missing column, so each is a fresh repair that needs ACCESS EXCLUSIVE."""
    statuses, k = collections.Counter(), first_k
    while time.monotonic() < deadline:
        try:
            name = new_column_name(k)
            statuses[conn.execute(HEAL, (f'column "{name}" does not exist',
                                         f"SELECT {name} FROM items")).fetchone()[0]] += 1
        except psycopg.Error as exc:
            statuses[f"error {exc.sqlstate}"] += 1
        k += 1
    return statuses


def phase(pool, readers, healers, seconds: float, offset: int) -> tuple[list[float], collections.Counter]:
    deadline = time.monotonic() + seconds
    reads = [pool.submit(reader, c, offset + i, deadline) for i, c in enumerate(readers)]
    heals = [pool.submit(healer, c, i * 100_000 + offset, deadline) for i, c in enumerate(healers)]
    samples = [s for f in reads for s in f.result()]
    return samples, sum((f.result() for f in heals), collections.Counter())


def row(name: str, samples: list[float]) -> tuple[float | None, float]:
    samples = sorted(samples)
    p99 = samples[int(0.99 * len(samples))] if len(samples) >= 1000 else None
    slow = sum(s > SLOW_MS for s in samples)
    cell = f"{p99:.2f}" if p99 is not None else "n/a (< 1000 samples)"
    print(f"| {name} | {len(samples):,} | {statistics.median(samples):.2f} | {cell} | {samples[-1]:.2f} | {slow:,} |")
    return p99, samples[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--healers", type=int, default=16)
    parser.add_argument("--readers", type=int, default=4)
    args = parser.parse_args()
    cluster = Cluster(settings=DURABLE).start()
    conns = []
    try:
        admin = psycopg.connect(cluster.dsn(), autocommit=True, options=OPTIONS)
        conns.append(admin)
        shown = {name: admin.execute(f"SHOW {name}").fetchone()[0] for name in DURABLE}
        assert all(v == "on" for v in shown.values()), shown
        setup(admin)
        before = columns(admin)

        def connect():
            conns.append(psycopg.connect(cluster.dsn(user="app"), autocommit=True, options=OPTIONS))
            return conns[-1]

        readers = [connect() for _ in range(args.readers)]
        healers = [connect() for _ in range(args.healers)]
        for conn in healers:  # load selfheal's Python in every backend, without touching items
            conn.execute("SELECT status FROM selfheal.heal_error('22012', 'division by zero')").fetchone()
        idle = psycopg.connect(cluster.dsn(), options=OPTIONS)  # not autocommit: BEGIN is implicit
        conns.append(idle)
        idle.execute("SELECT 1 FROM items LIMIT 1").fetchone()  # holds ACCESS SHARE until the end

        baseline, healing, statuses = [], [], collections.Counter()
        with ThreadPoolExecutor(args.readers + args.healers) as pool:
            for r in range(args.rounds):
                baseline += phase(pool, readers, [], args.seconds, 2 * r * 1000)[0]
                samples, counts = phase(pool, readers, healers, args.seconds, (2 * r + 1) * 1000)
                healing += samples
                statuses += counts
        after = columns(admin)
        idle.rollback()

        print(f"\nCluster: {', '.join(f'{k}={v}' for k, v in shown.items())} (SHOW). items: {ROWS:,} rows, "
              f"held by one idle transaction (ACCESS SHARE) throughout.")
        print(f"{args.rounds} rounds of {args.seconds:g} s per phase, interleaved; {args.readers} readers "
              f"(indexed point SELECT) alone, then beside {args.healers} heal_error() clients.\n")
        print(f"| phase | reads | p50 (ms) | p99 (ms) | max (ms) | reads > {SLOW_MS} ms |")
        print("|---|---|---|---|---|---|")
        p99_a, max_a = row("baseline (no selfheal)", baseline)
        p99_b, max_b = row(f"with {args.healers} healers", healing)
        p99_ratio = f"{p99_b / p99_a:.2f}x" if p99_a and p99_b else "n/a"
        print(f"\nwith / baseline: max {max_b / max_a:.2f}x, p99 {p99_ratio}")
        print(f"heal_error statuses ({sum(statuses.values()):,} calls): "
              + ", ".join(f"{s} {n:,}" for s, n in statuses.most_common()))
        print(f"items columns before: {', '.join(before)}; after: {', '.join(after)} "
              f"({'unchanged' if after == before else 'CHANGED'})")
        if after != before:
            raise SystemExit("a column was added while the table was locked")
    finally:
        for conn in conns:
            conn.close()
        cluster.stop()


if __name__ == "__main__":
    main()
