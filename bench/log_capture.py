"""Log capture: lines ingested per second by heal(), and time from error to repair with watch().

Starts its own cluster with the logging collector writing jsonlog.
Usage: python -m bench.log_capture [--mb 200] [--error-share 0.05] [--heals 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import psycopg

from selfheal import logreader
from bench import new_column_name
from tests.pgcluster import LOGGING as LOG_SETTINGS, Cluster


def write_log(path: Path, megabytes: int, database: str, error_share: float) -> tuple[int, int]:
    """A jsonlog file of realistic lines; returns (lines, error lines for `database`)."""
    base = {"timestamp": "2026-11-24 05:02:18.851 UTC", "user": "app", "pid": 8958, "remote_host": "[local]",
            "session_id": "6b051a5a.22fe", "line_num": 1, "ps": "SELECT", "vxid": "3/3", "txid": 0,
            "application_name": "web", "backend_type": "client backend", "query_id": 0}
    log_line = (json.dumps({**base, "dbname": database, "error_severity": "LOG",
                            "message": "duration: 0.412 ms  statement: SELECT id FROM sessions WHERE id = 42"})
                + "\n").encode()
    error_line = (json.dumps({**base, "dbname": database, "error_severity": "ERROR", "state_code": "42703",
                              "message": 'column "recommendation_data" does not exist',
                              "statement": "SELECT recommendation_data FROM sessions WHERE id = $1"}) + "\n").encode()
    every = max(1, round(1 / error_share))
    block = b"".join(error_line if i % every == 0 else log_line for i in range(every * 100))
    per_block_errors = sum(1 for i in range(every * 100) if i % every == 0)
    lines = errors = 0
    with path.open("wb") as fh:
        while fh.tell() < megabytes << 20:
            fh.write(block)
            lines += every * 100
            errors += per_block_errors
    return lines, errors


def ingest(cluster: Cluster, args) -> None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE sessions (id int PRIMARY KEY)")
        conn.execute("UPDATE selfheal.policy SET value = '0' WHERE name = 'heal_batch_size'")  # time reading only
        conn.execute("SELECT heal()")
        log_dir = Path(conn.execute("SELECT current_setting('data_directory')").fetchone()[0]) / "log"
        path = log_dir / "postgresql-bench.json"
        lines, errors = write_log(path, args.mb, "postgres", args.error_share)
        size = path.stat().st_size

        started = time.perf_counter()
        result = logreader.ReadResult()
        logreader.read_file(str(path), 0, "jsonlog", 1 << 40, result, "postgres")
        bare = time.perf_counter() - started
        assert len(result.errors) == errors

        started, calls, more = time.perf_counter(), 0, True
        while more:
            summary = conn.execute("SELECT heal()").fetchone()[0]
            more, calls = summary["log"]["more"], calls + 1
        in_db = time.perf_counter() - started
        stored = conn.execute("SELECT count(*) FROM selfheal.error_event WHERE source = 'log'").fetchone()[0]
        assert stored == errors, (stored, errors)
        path.unlink()
    print(f"\n{size / (1 << 20):.0f} MB jsonlog, {lines:,} lines, {errors:,} errors of this database "
          f"({args.error_share:.0%}):\n")
    print("| reader | seconds | lines/s | MB/s |")
    print("|---|---|---|---|")
    print(f"| logreader alone (Python, no database) | {bare:.2f} | {lines / bare:,.0f} | {size / bare / (1 << 20):.0f} |")
    print(f"| heal() in the database, events stored ({calls} calls) | {in_db:.2f} | {lines / in_db:,.0f} | "
          f"{size / in_db / (1 << 20):.0f} |")
    print(f"\nratio in-database / bare: {in_db / bare:.2f}")


def time_to_heal(cluster: Cluster, args) -> None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        admin.execute("CREATE TABLE watched (id int PRIMARY KEY)")
        admin.execute("INSERT INTO watched VALUES (1)")
        admin.execute("UPDATE selfheal.policy SET value = %s WHERE name = 'column_budget_per_table'",
                      (str(args.heals + 1),))
        admin.execute("UPDATE selfheal.policy SET value = '10000' WHERE name = 'heal_batch_size'")
        admin.execute("SELECT heal()")
        watcher = psycopg.connect(cluster.dsn(), autocommit=True)
        pid = watcher.execute("SELECT pg_backend_pid()").fetchone()[0]
        thread = threading.Thread(target=lambda: _watch(watcher, args.poll), daemon=True)
        thread.start()
        time.sleep(0.5)
        app = psycopg.connect(cluster.dsn(), autocommit=True)
        samples = []
        for i in range(args.heals):
            statement = f"SELECT {new_column_name(i)} FROM watched"
            started = time.perf_counter()
            while True:
                try:
                    app.execute(statement)
                    break
                except psycopg.errors.UndefinedColumn:
                    time.sleep(0.005)
            samples.append((time.perf_counter() - started) * 1000)
            time.sleep(0.1)
        admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
        thread.join(10)
    samples.sort()
    print(f"\nwatch(poll => '{args.poll}'): first error to the statement succeeding, {args.heals} new columns:\n")
    print("| p50 | p90 | max |")
    print("|---|---|---|")
    print(f"| {statistics.median(samples):.0f} ms | {samples[int(0.9 * (len(samples) - 1))]:.0f} ms | "
          f"{samples[-1]:.0f} ms |")


def _watch(conn, poll):
    try:
        conn.execute("CALL selfheal.watch(%s)", (poll,))
    except psycopg.errors.QueryCanceled:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--error-share", type=float, default=0.05)
    parser.add_argument("--heals", type=int, default=10)
    parser.add_argument("--poll", default="200 ms")
    args = parser.parse_args()
    cluster = Cluster(LOG_SETTINGS).start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION selfheal CASCADE")
        ingest(cluster, args)
        time_to_heal(cluster, args)
    finally:
        cluster.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
