"""The seed's story: an error storm, one heal(), and the Before / After report.

Starts its own PostgreSQL 15 cluster (logging to jsonlog), runs concurrent app clients that
know nothing of selfheal, heals from the server log, runs the same traffic again, prints the
report and writes it as HTML, then removes the cluster.
Usage: python -m demo.storm [--clients 8] [--seconds 3] [--html selfheal-demo.html]
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import Counter

import psycopg

from selfheal.cli import report
from tests.pgcluster import LOGGING, Cluster

SCHEMA = """
CREATE EXTENSION selfheal CASCADE;
CREATE ROLE app LOGIN;
CREATE TABLE sessions (id serial PRIMARY KEY, service_type text NOT NULL, started_at timestamptz DEFAULT now());
INSERT INTO sessions (service_type) SELECT (1 + g % 5)::text FROM generate_series(1, 500) g;
CREATE TABLE credit_packages (id serial PRIMARY KEY, credits int NOT NULL);
INSERT INTO credit_packages (credits) VALUES (10), (50), (100);
CREATE FUNCTION session_cost(session_id int) RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN
    IF session_id % 4 = 0 THEN RAISE EXCEPTION 'Cost calculation error'; END IF;
    RETURN session_id * 1.5;
END $$;
GRANT SELECT, INSERT, UPDATE ON sessions, credit_packages TO app;
GRANT EXECUTE ON FUNCTION session_cost(int) TO app;
SELECT selfheal.enable_compat('app');
"""

# What the app runs: three statements that drifted from the schema, and ordinary business logic.
TRAFFIC = [
    "SELECT id, recommendation_data FROM sessions WHERE id = {id}",
    "SELECT id FROM sessions WHERE service_type_id = {kind}",
    "SELECT cp.package_name FROM credit_packages cp",
    "SELECT session_cost({id})",
    "SELECT id, service_type FROM sessions WHERE id = {id}",
]
LABELS = {"{id}": "N", "{kind}": "K"}


def label(shape: str) -> str:
    for placeholder, name in LABELS.items():
        shape = shape.replace(placeholder, name)
    return shape


def storm(dsn: str, clients: int, seconds: float) -> Counter:
    """Concurrent clients run the traffic for `seconds`; returns outcomes by statement shape."""
    outcomes: Counter = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(seed: int):
        rng = random.Random(seed)
        with psycopg.connect(dsn, autocommit=True) as conn:
            while time.monotonic() < stop:
                shape = rng.choice(TRAFFIC)
                try:
                    conn.execute(shape.format(id=rng.randint(1, 500), kind=rng.randint(1, 5))).fetchall()
                    result = "ok"
                except psycopg.Error as exc:
                    result = exc.diag.sqlstate
                with lock:
                    outcomes[(label(shape), result)] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def show(title: str, outcomes: Counter, seconds: float) -> None:
    errors = sum(n for (_, result), n in outcomes.items() if result != "ok")
    total = sum(outcomes.values())
    print(f"\n{title}: {total} statements, {errors} errors ({errors / seconds:.0f} errors/s)")
    for (shape, result), n in sorted(outcomes.items()):
        print(f"  {n:6d}  {'ok   ' if result == 'ok' else result}  {shape}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--html", default="selfheal-demo.html")
    args = parser.parse_args()
    print("Starting a throwaway PostgreSQL 15 cluster that logs jsonlog ...")
    cluster = Cluster(LOGGING).start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute(SCHEMA)
            admin.execute("SELECT heal()")  # the first read bookmarks the current log file
            app_dsn = cluster.dsn(user="app")

            print(f"\n== Before: {args.clients} app clients for {args.seconds:.0f} s. The app knows nothing of selfheal.")
            show("Before", storm(app_dsn, args.clients, args.seconds), args.seconds)

            time.sleep(0.5)  # the logging collector writes asynchronously
            started = time.perf_counter()
            summary = admin.execute("SELECT heal()").fetchone()[0]
            print(f"\n== SELECT heal(): read {summary['log']['errors']} errors from the server log, "
                  f"repaired in {(time.perf_counter() - started) * 1000:.0f} ms: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(summary.items()) if k not in ("log", "processed")))
            for row in admin.execute("SELECT id, action, table_name, column_name, reason FROM selfheal.audit ORDER BY id"):
                print(f"  audit #{row[0]}: {row[1]} {row[2]}.{row[3]}: {row[4]}")

            print(f"\n== After: the same traffic again for {args.seconds:.0f} s")
            show("After", storm(app_dsn, args.clients, args.seconds), args.seconds)
            time.sleep(0.5)
            admin.execute("SELECT heal()")

            rows = report.fetch_report(admin)
            print("\n== Before / After, per error signature (SELECT * FROM selfheal.report())\n")
            print(report.render_text(rows))
            with open(args.html, "w", encoding="utf-8") as fh:
                fh.write(report.build_html(admin, "selfheal demo: the seed's story"))
            print(f"Wrote {args.html}: the same table and a timeline of errors before and after each repair.")
    finally:
        cluster.stop()
        print("Removed the throwaway cluster.")


if __name__ == "__main__":
    main()
