"""Log capture: heal() taking in an outage's log, beside the json.loads floor and pgbadger.

Also the reader's peak memory for two file sizes, and the time from error to repair with watch().

Starts its own cluster on durable settings with the logging collector writing jsonlog. The log
is all ERROR lines, as during an outage: the app's statement shapes with varied literals, users,
sessions and times. Every row of the speed table reads the same file, in this one run; the
floor runs both here and in the server process, whose Python heal() runs in.
Usage: python -m bench.log_capture [--mb 250] [--memory-mb 80,320] [--log-read-max-mb 64] [--repeat 3]
                                   [--heals 30] [--poll '200 ms']
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import DURABLE, new_column_name, print_goals
from selfheal.core import logreader
from tests.pgcluster import LOGGING, Cluster

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")
_USERS = (("app", "web"), ("app", "web"), ("app_worker", "worker"), ("reporting", "metabase"))


def _error(r: random.Random) -> tuple[str, str, str | None, str, int | None]:
    """(sqlstate, message, hint, statement, cursor position) of one error of the app after a bad deploy."""
    n, k = r.randint(1, 9_999_999), r.choice((10, 20, 50, 100))
    word = f"{r.choice(_WORDS)}{r.randint(1, 999)}"
    at = f"2026-11-24 05:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"
    shape = r.random()
    if shape < 0.30:
        return ("42703", "column s.recommendation_data does not exist", None,
                f"SELECT s.id, s.recommendation_data FROM sessions s WHERE s.user_id = {n} "
                f"ORDER BY s.created_at DESC LIMIT {k}", 13)
    if shape < 0.50:
        return ("42703", 'column "service_type_id" of relation "sessions" does not exist', None,
                f"INSERT INTO sessions (user_id, service_type_id, started_at) VALUES ({n}, {k}, '{at}')", 31)
    if shape < 0.65:
        return ("42703", 'column "service_type_id" does not exist',
                'Perhaps you meant to reference the column "sessions.service_type".',
                f"SELECT * FROM sessions WHERE service_type_id = {n}", 30)
    if shape < 0.80:
        return ("42P01", 'relation "invoiceline" does not exist', None,
                f"SELECT il.* FROM invoiceline il JOIN invoice i ON i.id = il.invoice_id WHERE i.customer_id = {n}",
                20)
    if shape < 0.88:
        return ("42703", 'column "package_name" of relation "credit_packages" does not exist', None,
                f"UPDATE credit_packages SET package_name = '{word}' WHERE id = {n}", 27)
    if shape < 0.93:
        return ("23505", 'duplicate key value violates unique constraint "users_email_key"', None,
                f"INSERT INTO users (email, name) VALUES ('{word}@example.com', '{word}')", None)
    if shape < 0.98:  # the literal is in the message: one signature per value
        return ("22P02", f'invalid input syntax for type integer: "{word}"', None,
                f"SELECT price FROM products WHERE id = '{word}'", 39)
    return ("57014", "canceling statement due to statement timeout", None,
            f"SELECT date_trunc('day', created_at), sum(total) FROM invoice WHERE created_at > '{at}' GROUP BY 1",
            None)


def write_outage_log(path: Path, megabytes: int, database: str, seed: int = 1) -> int:
    """A jsonlog file of nothing but ERROR lines, in PostgreSQL 15's field order; returns its line count."""
    r = random.Random(seed)
    sessions = [(0x6b051a5a + i, 8000 + i, r.choice(_USERS)) for i in range(40)]
    line_nums = [0] * len(sessions)
    lines, millis, target = 0, 0, megabytes << 20
    with path.open("wb") as fh:
        while fh.tell() < target:
            block = []
            for _ in range(1000):
                s = r.randrange(len(sessions))
                started, pid, (user, app) = sessions[s]
                line_nums[s] += 1
                millis += r.randint(0, 3)
                sqlstate, message, hint, statement, cursor = _error(r)
                entry = {"timestamp": f"2026-11-24 05:{millis // 60000 % 60:02d}:{millis // 1000 % 60:02d}."
                                      f"{millis % 1000:03d} UTC",
                         "user": user, "dbname": database, "pid": pid, "remote_host": "10.0.3.17",
                         "remote_port": 40000 + s, "session_id": f"{started:x}.{pid:x}", "line_num": line_nums[s],
                         "ps": statement.split(" ", 1)[0], "session_start": "2026-11-24 05:00:01 UTC",
                         "vxid": f"{s + 3}/{line_nums[s]}", "txid": 0, "error_severity": "ERROR",
                         "state_code": sqlstate, "message": message}
                if sqlstate == "23505":
                    entry["detail"] = f"Key (email)=({statement.split(chr(39))[1]}) already exists."
                if hint:
                    entry["hint"] = hint
                entry["statement"] = statement
                if cursor:
                    entry["cursor_position"] = cursor
                entry.update({"application_name": app, "backend_type": "client backend", "query_id": 0})
                block.append(json.dumps(entry, separators=(",", ":")))  # as PostgreSQL writes it
            fh.write(("\n".join(block) + "\n").encode())
            lines += len(block)
    return lines


DATABASE = "postgres"  # the bench's cluster database: every line of the log is one of its errors
ROOT = Path(__file__).resolve().parents[1]


def heal_pass(conn, bookmark: list[tuple]) -> dict:
    """heal() from `bookmark` with no events stored, until the log is read: wall seconds, the
    server process's CPU seconds, its calls and the lines they read."""
    conn.execute("TRUNCATE selfheal.error_event CASCADE")
    for log_format, positions, since in bookmark:
        conn.execute("UPDATE selfheal.log_bookmark SET positions = %s::jsonb, since = %s WHERE log_format = %s",
                     (json.dumps(positions), since, log_format))
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    started, cpu, calls, read, more = time.perf_counter(), _backend_cpu(backend), 0, 0, True
    while more:
        log = conn.execute("SELECT heal()").fetchone()[0]["log"]
        assert "problem" not in log, log
        more, calls, read = log["more"], calls + 1, read + log["lines"]
    return {"seconds": time.perf_counter() - started, "cpu": _backend_cpu(backend) - cpu, "calls": calls,
            "lines": read}


def json_floor(path: Path) -> dict:
    """Seconds (wall, CPU) of the stdlib floor: read the file line by line and json.loads each line."""
    loads = json.loads
    started, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as fh:
        for line in fh:
            loads(line)
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


# The same loop in the server's own Python: PL/Python runs a shared libpython, which this
# machine's python3 executable is not, so the server pays for every line before selfheal does.
_SERVER_FLOOR = """
CREATE FUNCTION pg_temp.json_floor(path text) RETURNS float8[] LANGUAGE plpython3u AS $$
import json, time
loads = json.loads
started, cpu = time.perf_counter(), time.process_time()
with open(path, "rb") as fh:
    for line in fh:
        loads(line)
return [time.perf_counter() - started, time.process_time() - cpu]
$$"""


def server_floor(conn, path: Path) -> dict:
    """json_floor run by the server process, in the Python heal() runs in."""
    seconds, cpu = conn.execute("SELECT pg_temp.json_floor(%s)", (str(path),)).fetchone()[0]
    return {"seconds": seconds, "cpu": cpu}


def _backend_cpu(pid: int) -> float:
    """CPU seconds a server process has used (utime and stime of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_read(directory: str, api: str, budget: int) -> dict:
    """In the child: read every error of the directory's log in heal()'s steps of `budget` bytes,
    through iter_new_errors (errors handed over in batches) or read_new_errors (all of one step)."""
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mark, more, lines, errors, calls = logreader.Bookmark({}, 0.0), True, 0, 0, 0
    started, cpu = time.perf_counter(), time.process_time()
    while more:
        if api == "iter":
            result = logreader.ReadResult()
            for batch in logreader.iter_new_errors(directory, "jsonlog", mark, None, result, budget, DATABASE):
                errors += len(batch)
        else:
            result = logreader.read_new_errors(directory, "jsonlog", mark, None, budget, DATABASE)
            errors += len(result.errors)
        mark, more, lines, calls = result.bookmark, result.more, lines + result.lines, calls + 1
        del result  # as between two heal() calls: one step's errors are gone before the next is read
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "lines": lines,
            "errors": errors, "calls": calls, "baseline_mb": baseline / 1024}


def read_in_child(directory: Path, api: str, budget_mb: int) -> dict:
    """child_read in a fresh interpreter, with the child's peak resident memory (ru_maxrss)."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.log_capture", "--child-read", str(directory), "--api", api,
                             "--log-read-max-mb", str(budget_mb)], stdout=subprocess.PIPE, cwd=ROOT)
    with proc.stdout:
        out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"the reader's child process failed ({proc.returncode})")
    return {**json.loads(out), "peak_mb": usage.ru_maxrss / 1024}  # Linux counts ru_maxrss in KiB


def pgbadger(path: Path, lines: int) -> tuple[dict | None, str]:
    """(seconds and CPU seconds, note) of pgbadger -j 1 making its report of the file; None with the
    reason in the note when it cannot run."""
    if shutil.which("pgbadger") is None:
        return None, "pgbadger is not installed on this machine (apt-get install -y pgbadger): row skipped"
    with tempfile.TemporaryDirectory() as out:
        before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        run = subprocess.run(["pgbadger", "-j", "1", "-f", "jsonlog", "-q", "-o", f"{out}/report.html",
                              "-o", f"{out}/report.txt", str(path)], capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        timing = {"seconds": time.perf_counter() - started,
                  "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime}
        if run.returncode:
            return None, f"pgbadger failed ({run.returncode}): {run.stderr.strip()[:200]}: row skipped"
        report = Path(out, "report.txt").read_text()
    events = next((int(line.split(":")[1].replace(",", "")) for line in report.splitlines()
                   if line.startswith("Number of events:")), 0)
    if events != lines:
        return None, f"pgbadger counted {events:,} of the {lines:,} errors: row skipped"
    return timing, f"pgbadger {subprocess.run(['pgbadger', '--version'], capture_output=True, text=True).stdout.split()[-1]}"


def installed_copy_note(conn, tree: Path) -> str:
    """Whether the installed reader is this tree's: heal() runs the installed copy."""
    libdir = subprocess.run(["pg_config", "--pkglibdir"], capture_output=True, text=True, check=True).stdout.strip()
    version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'selfheal'").fetchone()[0]
    installed = Path(libdir, "selfheal", version, "selfheal")
    reading = ("core/logreader.py", "core/errors.py", "server/log.py", "server/events.py")
    stale = [name for name in reading
             if not (installed / name).is_file() or (installed / name).read_bytes() != (tree / name).read_bytes()]
    if stale:
        return f"heal() ran the installed copy, whose {', '.join(stale)} differ from this tree's (make install)"
    return f"heal() ran the installed copy, whose {', '.join(reading)} are this tree's"


def speed(cluster: Cluster, args) -> list[tuple[str, float, float, str]]:
    import psycopg  # here and in time_to_heal only: the reader's child process is measured without it

    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION selfheal CASCADE")
        conn.execute("UPDATE selfheal.policy SET value = '0' WHERE name = 'heal_batch_size'")  # time reading only
        conn.execute("UPDATE selfheal.policy SET value = %s WHERE name = 'log_read_max_mb'", (str(args.log_read_max_mb),))
        conn.execute("SELECT heal()")  # the first read places the bookmark at the current log file
        log_dir = Path(conn.execute("SELECT current_setting('data_directory')").fetchone()[0]) / "log"
        path = log_dir / "postgresql-bench.json"
        lines = write_outage_log(path, args.mb, DATABASE)
        size = path.stat().st_size / (1 << 20)
        json_floor(path)  # a first pass puts the file in the page cache for every row alike
        # Where heal() starts each pass: before the outage file, with no events stored.
        bookmark = conn.execute("SELECT log_format, positions, since FROM selfheal.log_bookmark").fetchall()
        conn.execute(_SERVER_FLOOR)
        passes: dict[str, list[dict]] = {"floor": [], "server floor": [], "iter": [], "list": [], "heal": []}
        for _ in range(args.repeat):  # interleaved, so that a busy moment of the machine hits each alike
            passes["floor"].append(json_floor(path))
            passes["server floor"].append(server_floor(conn, path))
            for api in ("iter", "list"):
                passes[api].append(read_in_child(log_dir, api, args.log_read_max_mb))
                assert passes[api][-1]["errors"] == lines, (passes[api][-1], lines)
            passes["heal"].append(heal_pass(conn, bookmark))
            stored, rows_stored = conn.execute("SELECT sum(occurrences), count(*) FROM selfheal.error_event "
                                               "WHERE source = 'log'").fetchone()
            assert stored >= lines, (stored, lines)
        best = {name: min(runs, key=lambda r: r["seconds"]) for name, runs in passes.items()}
        in_db, calls, read = best["heal"], best["heal"]["calls"], best["heal"]["lines"]
        note = installed_copy_note(conn, ROOT / "plpython" / "selfheal")
        badger, badger_note = pgbadger(path, lines)
        path.unlink()
        conn.execute("TRUNCATE selfheal.error_event CASCADE")  # watch() below must not work through them

    print(f"\n{size:.0f} MB jsonlog of {lines:,} ERROR lines of one database, log_read_max_mb = "
          f"{args.log_read_max_mb}; the floor, the bare readers and heal(): best of {args.repeat} interleaved "
          "passes, pgbadger: once.\n")
    print("| reader | seconds | lines/s | MB/s | time / floor's | CPU seconds | CPU / floor's |")
    print("|---|---|---|---|---|---|---|")
    rows = [("json.loads floor (stdlib, a bare loop over the lines)", best["floor"], lines),
            ("logreader.iter_new_errors, bare (errors handed over in batches)", best["iter"], lines),
            ("logreader.read_new_errors, bare (all errors of a step kept)", best["list"], lines),
            (f"heal() in the database, events stored ({calls} calls; CPU of its server process)", in_db, read),
            ("json.loads floor in the server process (the same loop in PL/Python, heal()'s Python)",
             best["server floor"], lines)]
    if badger is not None:
        rows.append(("pgbadger -j 1 (its HTML and text reports)", badger, lines))
    per_line = {what: (run["seconds"] / count, run["cpu"] / count) for what, run, count in rows}
    floor = per_line[rows[0][0]]
    for what, run, count in rows:
        wall, cpu = per_line[what]
        print(f"| {what} | {run['seconds']:.2f} | {count / run['seconds']:,.0f} | {size / run['seconds']:.0f} "
              f"| {wall / floor[0]:.2f} | {run['cpu']:.2f} | {cpu / floor[1]:.2f} |")
    print(f"\n{note}; {stored:,} errors stored, on {rows_stored:,} rows (repeats within a second counted on one).")
    print(badger_note if badger is None else f"{badger_note}: {lines:,} events in its report.")
    goals = [("json.loads floor speed / heal() speed", per_line[rows[3][0]][0] / floor[0], 2, "x"),
             ("json.loads floor speed / bare reader speed (iter_new_errors)", per_line[rows[1][0]][0] / floor[0],
              1.25, "x")]
    # Beside the goal, not instead of it: heal() against the floor of the Python it runs in.
    goals.append(("json.loads floor speed in the server process / heal() speed (informative)",
                  per_line[rows[3][0]][0] / per_line[rows[4][0]][0], 2, "x"))
    if badger is not None:
        goals.append(("pgbadger -j 1 speed / heal() speed", per_line[rows[3][0]][0] / per_line[rows[5][0]][0], 1, "x"))
    return goals


def memory(args) -> list[tuple[str, float, float, str]]:
    small, big = args.memory_mb
    peaks = {}
    with tempfile.TemporaryDirectory(prefix="selfheal-log-") as tmp:
        for mb in (small, big):
            directory = Path(tmp, str(mb))
            directory.mkdir()
            write_outage_log(directory / "postgresql.json", mb, DATABASE)
            for api in ("iter", "list"):
                peaks[api, mb] = read_in_child(directory, api, args.log_read_max_mb)
            shutil.rmtree(directory)
    print(f"\nPeak resident memory of the bare reader in a child process (ru_maxrss), reading all of a file "
          f"in heal()'s steps of {args.log_read_max_mb} MB; before reading, the child's ru_maxrss is "
          f"{peaks['iter', small]['baseline_mb']:.0f} MB (its imports, or this process's size at the spawn, "
          "which Linux carries over):\n")
    print(f"| reader | {small} MB file | {big} MB file | {big} MB / {small} MB |")
    print("|---|---|---|---|")
    for api, name in (("iter", "iter_new_errors"), ("list", "read_new_errors")):
        a, b = peaks[api, small]["peak_mb"], peaks[api, big]["peak_mb"]
        print(f"| {name} | {a:.0f} MB | {b:.0f} MB | {b / a:.2f} |")
    return [(f"reader peak memory, {big} MB / {small} MB file (iter_new_errors)",
             peaks["iter", big]["peak_mb"] / peaks["iter", small]["peak_mb"], 1.2, "x"),
            (f"reader peak memory, {big} MB / {small} MB file (read_new_errors)",
             peaks["list", big]["peak_mb"] / peaks["list", small]["peak_mb"], 1.2, "x"),
            (f"reader peak memory, {big} MB file (iter_new_errors)", peaks["iter", big]["peak_mb"],
             args.log_read_max_mb, " MB"),
            (f"reader peak memory, {big} MB file (read_new_errors)", peaks["list", big]["peak_mb"],
             2 * args.log_read_max_mb, " MB")]


def time_to_heal(cluster: Cluster, args) -> list[tuple[str, float, float, str]]:
    import psycopg

    def watch(conn):
        try:
            conn.execute("CALL selfheal.watch(%s)", (args.poll,))
        except psycopg.errors.QueryCanceled:
            pass

    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        # A table a sample: a second new column on one table would be read as a rename of the first.
        for i in range(args.heals):
            admin.execute(f"CREATE TABLE watched_{i} (id int PRIMARY KEY)")
            admin.execute(f"INSERT INTO watched_{i} VALUES (1)")
        admin.execute("UPDATE selfheal.policy SET value = '10000' WHERE name = 'heal_batch_size'")
        admin.execute("SELECT heal()")
        watcher = psycopg.connect(cluster.dsn(), autocommit=True)
        pid = watcher.execute("SELECT pg_backend_pid()").fetchone()[0]
        thread = threading.Thread(target=watch, args=(watcher,), daemon=True)
        thread.start()
        time.sleep(0.5)
        app = psycopg.connect(cluster.dsn(), autocommit=True)
        samples = []
        for i in range(args.heals):
            statement = f"SELECT {new_column_name(i)} FROM watched_{i}"
            started = time.perf_counter()
            while True:
                try:
                    app.execute(statement)
                    break
                except psycopg.errors.UndefinedColumn:
                    if time.perf_counter() - started > 30:
                        raise RuntimeError(f"watch() did not repair {statement!r} within 30 s") from None
                    time.sleep(0.005)
            samples.append((time.perf_counter() - started) * 1000)
            time.sleep(0.1)
        admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
        thread.join(10)
    samples.sort()
    p50, p90 = statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]
    print(f"\nwatch(poll => '{args.poll}'): first error to the statement succeeding, {args.heals} new columns:\n")
    print("| p50 | p90 | max |")
    print("|---|---|---|")
    print(f"| {p50:.0f} ms | {p90:.0f} ms | {samples[-1]:.0f} ms |")
    return [("watch(): error to repaired statement, p90", p90, 1000, " ms")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=250, help="size of the log every speed row reads")
    parser.add_argument("--memory-mb", type=lambda s: [int(x) for x in s.split(",")], default=[80, 320],
                        help="the two file sizes whose reader memory is compared")
    parser.add_argument("--log-read-max-mb", type=int, default=64, help="heal()'s read budget, as the policy says")
    parser.add_argument("--repeat", type=int, default=3, help="passes of the floor, the bare readers and heal()")
    parser.add_argument("--heals", type=int, default=30, help="watch() samples (p50, p90, max)")
    parser.add_argument("--poll", default="200 ms")
    parser.add_argument("--child-read", help=argparse.SUPPRESS)
    parser.add_argument("--api", choices=("iter", "list"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each table as it is made, also into a file
    if args.child_read:
        print(json.dumps(child_read(args.child_read, args.api, args.log_read_max_mb << 20)))
        return
    if args.heals < 20:
        parser.error("--heals must be at least 20: fewer samples cannot show a p90")
    # Memory first: a child's ru_maxrss starts from its parent's resident size at the spawn
    # (Linux carries it over exec), so the children are spawned while this process is small.
    goals = memory(args)
    settings = {**LOGGING, **DURABLE}
    print("\nCluster settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()))
    cluster = Cluster(settings).start()
    try:
        goals += speed(cluster, args)
        goals += time_to_heal(cluster, args)
    finally:
        cluster.stop()
    print_goals("Goals (a figure meets its goal when it is at most the goal):", goals)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
