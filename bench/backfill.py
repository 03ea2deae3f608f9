"""backfill(): linear in the rows it fills, beside a plain full-table UPDATE of the same rows.

Starts its own durable cluster. For each size, two copies of one table: selfheal fills an
in-table derived column on one (`CALL selfheal.backfill()`, rests off by policy: duty cycle 1,
no pause), and the other gets the same values from one `UPDATE` of every row. Then the
duty cycle the policy sets is measured with rests on, and point reads run beside a backfill.
Each size is measured --repeat times, the sizes taking turns round by round, and the medians
are compared: one pass of each gave 3.6x and 5.0x for 4 million rows over 1 million on this
shared machine.
Usage: python -m bench.backfill [--sizes 1000000,4000000] [--repeat 3] [--duty-rows 200000]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import psycopg

from bench import DURABLE, heal_latency, print_goals
from tests.pgcluster import Cluster

def build(conn, table: str, rows: int) -> None:
    heal_latency.build(conn, table, rows)
    conn.execute("CHECKPOINT")  # the next table's timings do not pay for this one's writes


def set_policy(conn, **values) -> None:
    for name, value in values.items():
        heal_latency.set_policy(conn, name, str(value))


def derive_in_table(conn, table: str) -> None:
    """selfheal's repair: the column and its sync trigger now, a backfill job for the rows."""
    status = conn.execute("SELECT status FROM selfheal.heal_error('42703', 'column \"kind_id\" does not exist', "
                          f"'SELECT kind_id FROM {table} WHERE kind_id = 1')").fetchone()[0]
    assert status == "healed", status
    assert conn.execute("SELECT count(*) FROM selfheal.backfill_job WHERE done_at IS NULL").fetchone()[0] == 1


def timed_backfill(conn) -> float:
    started = time.perf_counter()
    conn.execute("CALL selfheal.backfill()")
    return time.perf_counter() - started


def timed_update(conn, table: str, expression: str) -> float:
    """The same values by hand: one UPDATE of every row with the expression the backfill uses."""
    conn.execute(f"ALTER TABLE {table} ADD COLUMN kind_id integer")
    started = time.perf_counter()
    conn.execute(f"UPDATE {table} SET kind_id = {expression}")
    return time.perf_counter() - started


def fill_both(conn, rows: int, update_first: bool = False) -> tuple[float, float]:
    """(backfill seconds, plain UPDATE seconds) on two new tables of `rows` rows, then dropped.
    The side that goes first alternates between rounds, and a checkpoint separates the two, so
    neither pays for the other's dirty buffers and WAL."""
    build(conn, f"filled_{rows}", rows)
    build(conn, f"updated_{rows}", rows)
    derive_in_table(conn, f"filled_{rows}")
    set_policy(conn, backfill_duty_cycle=1, backfill_pause_ms=0)
    expression = conn.execute("SELECT expression FROM selfheal.backfill_job WHERE done_at IS NULL").fetchone()[0]
    sides = {"backfill": lambda: timed_backfill(conn),
             "update": lambda: timed_update(conn, f"updated_{rows}", expression)}
    took = {}
    for side in (("update", "backfill") if update_first else ("backfill", "update")):
        conn.execute("CHECKPOINT")
        took[side] = sides[side]()
    backfill, update = took["backfill"], took["update"]
    assert filled(conn, f"filled_{rows}") == filled(conn, f"updated_{rows}") == rows
    heal_latency.undo_last(conn)  # the column and its sync trigger; the next round repairs again
    conn.execute(f"DROP TABLE filled_{rows}, updated_{rows}")
    return backfill, update


def filled(conn, table: str) -> int:
    return conn.execute(f"SELECT count(kind_id) FROM {table}").fetchone()[0]


def reads_beside(dsn: str, table: str, work) -> tuple[list[float], float]:
    """Point reads on `table` in a loop while `work()` runs; their latencies (ms) and the work's seconds."""
    latencies: list[float] = []
    stop = threading.Event()

    def read():
        with psycopg.connect(dsn, autocommit=True) as reader:
            key = 1
            while not stop.is_set():
                started = time.perf_counter()
                reader.execute(f"SELECT kind FROM {table} WHERE id = %s", (key,)).fetchone()
                latencies.append((time.perf_counter() - started) * 1000)
                key = key * 7919 % 100000 + 1
    thread = threading.Thread(target=read)
    thread.start()
    try:
        took = work()
    finally:
        stop.set()
        thread.join()
    return latencies, took


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,4000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duty-rows", type=int, default=200000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cluster = Cluster({**DURABLE, "max_wal_size": "'8GB'"}).start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION selfheal CASCADE")
            conn.execute("SELECT selfheal.enable_compat(current_user::name)")
            set_policy(conn, derived_columns="table", generated_column_row_limit=0, value_check_rows=1000)
            samples: dict[int, list[tuple[float, float]]] = {rows: [] for rows in sizes}
            for round_ in range(args.repeat):
                for rows in sizes:
                    samples[rows].append(fill_both(conn, rows, update_first=round_ % 2 == 1))
            times = {rows: (statistics.median(b for b, _ in taken), statistics.median(u for _, u in taken))
                     for rows, taken in samples.items()}

            # Rests on: the same rows with duty cycle 1 and 0.5, and point reads beside each.
            set_policy(conn, backfill_batch_rows=10000, backfill_pause_ms=0)
            duty: dict[float, float] = {}
            reads: dict[float, list[float]] = {}
            for cycle in (1, 0.5):
                table = f"rested_{str(cycle).replace('.', '_')}"
                build(conn, table, args.duty_rows)
                derive_in_table(conn, table)
                set_policy(conn, backfill_duty_cycle=cycle)
                reads[cycle], duty[cycle] = reads_beside(cluster.dsn(), table, lambda: timed_backfill(conn))
            reads["alone"], _ = reads_beside(cluster.dsn(), "rested_1", lambda: time.sleep(duty[0.5]) or 0.0)
        small, large = sizes[0], sizes[-1]
        print(f"\nmedians of {args.repeat}, sizes in turn\n"
              "\n| rows | backfill(), rests off (s) | plain UPDATE (s) | backfill / UPDATE | each backfill (s) |"
              "\n|---|---|---|---|---|")
        for rows, (backfill, update) in times.items():
            each = " / ".join(f"{b:.2f}" for b, _ in samples[rows])
            print(f"| {rows:,} | {backfill:.2f} | {update:.2f} | {backfill / update:.2f}x | {each} |")
        print(f"\n| {args.duty_rows:,} rows | backfill (s) | reads | read p50 (ms) | read p99 (ms) | read max (ms) |"
              "\n|---|---|---|---|---|---|")
        for phase, latencies in reads.items():
            took = f"{duty[phase]:.2f}" if phase in duty else "-"
            name = "no backfill" if phase == "alone" else f"duty cycle {phase}"
            print(f"| {name} | {took} | {len(latencies):,} | {statistics.median(latencies):.2f} | "
                  f"{percentile(latencies, 0.99):.2f} | {max(latencies):.2f} |")
        print_goals("backfill goals", [
            (f"backfill / plain UPDATE, {small:,} rows, rests off", times[small][0] / times[small][1], 1.5, "x"),
            (f"backfill {large:,} / {small:,} rows, rests off", times[large][0] / times[small][0],
             1.25 * large / small, "x"),
            ("duty cycle 0.5: working share measured, off by", abs(duty[1] / duty[0.5] - 0.5), 0.1, ""),
            ("reads beside a backfill slower than 100 ms", sum(1 for r in reads[1] + reads[0.5] if r > 100), 0, ""),
        ])
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
