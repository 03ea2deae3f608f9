"""selfheal scan on generated application code against the Chinook schema, beside the parse floor.

Usage: python -m bench.scan [--files 10000] [--strings 250,1000,4000] [--repeats 15]

Shapes: a tree of many small files (Python, JavaScript, SQL, Go, Java, Ruby and PHP, one SQL
text each), and one Python file holding more and more SQL texts, written two ways: handlers
(about ten lines of Python around each SQL text, as in the tree's Python files) and a module of
query constants (four lines each). Each is timed against its floor: pglast.parse_sql alone on
the very SQL texts scan finds, taken out of the files the way scan takes them before the clock
starts. Scan reads the same parser's JSON (pglast.parser.parse_sql_json), which costs far less
than parse_sql's node objects; that lower floor is shown beside it. Scan and floors take turns,
the one file's sizes too (250, 1,000, 4,000, 250, ...), and each figure is the median of the
repeats; growth with the file's size compares each size's fastest run.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pglast
import psycopg

from bench import print_goals
from selfheal.cli import scan
from tests.pgcluster import Cluster

CHINOOK = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "chinook" / "chinook.sql"
TEMPLATES = {
    ".py": 'def q{n}(conn, i):\n    """Handler {n}."""\n    rows = conn.execute(\n        "SELECT track_id, name, UnitPrice "\n'
           '        "FROM track WHERE album_id = %s", (i,))\n    return [r for r in rows if r]\n\n\n'
           'def other{n}():\n    return {{"k": {n}, "v": "plain text, not SQL"}}\n',
    ".js": "export const q{n} = (db, id) =>\n  db.query(`SELECT invoice_id, total FROM invoice WHERE customer_id = ${{id}}`);\n"
           "export const label{n} = 'hello {n}';\n",
    ".sql": "-- report {n}\nSELECT a.title, ar.name\n  FROM album a JOIN artist ar ON ar.artist_id = a.ArtistId\n WHERE a.album_id > {n};\n",
    ".go": 'package q\n\nconst q{n} = "SELECT genre_id, name FROM genre WHERE genre_id = $1"\n',
    ".java": 'class Q{n} {{ static final String S = "SELECT employee_id, last_name FROM employee"; }}\n',
    ".rb": "Q{n} = 'SELECT playlist_id, name FROM playlist WHERE playlist_id = 1'\n",
    ".php": '<?php\n$q{n} = "SELECT media_type_id, name FROM media_type";\n',
}
MIX = [".py"] * 4 + [".js"] * 3 + [".sql", ".go", ".java", ".rb", ".php"]
BIG_FILES = {  # one Python file: what surrounds each of its SQL texts
    "handlers": TEMPLATES[".py"],
    "query constants": 'TRACKS_{n} = (\n    "SELECT track_id, name, UnitPrice "\n    "FROM track WHERE album_id = %s"\n)\n',
}
RATIO_GOAL = 2  # scan within twice the time pglast takes to parse the same SQL
GROWTH_GOAL = 4 * 1.25  # four times the SQL texts: linear is 4x, with a quarter to spare


def make_tree(root: Path, files: int) -> None:
    for n in range(files):
        ext = MIX[n % len(MIX)]
        folder = root / f"pkg{n // 200}"
        folder.mkdir(exist_ok=True)
        (folder / f"module_{n}{ext}").write_text(TEMPLATES[ext].format(n=n))


def sql_texts(root: str) -> list[str]:
    """The SQL texts scan parses, taken out of the files the way scan takes them."""
    return [scan.normalise_placeholders(snippet).sql
            for path in scan.source_files(root) for snippet in scan.file_snippets(path)[0]]


def parse_floor(texts: list[str], parse=pglast.parse_sql) -> None:
    for text in texts:
        try:
            parse(text)
        except pglast.parser.ParseError:
            pass


def json_parse(text: str):
    """The same parser's JSON, as scan reads it (without pglast's node objects)."""
    return json.loads(pglast.parser.parse_sql_json(text))


def measure(roots: list[str], conn, repeats: int) -> list[dict]:
    """Median seconds of scan and its pglast floor for each root, after one untimed run each.
    Every repeat runs scan and floors on every root in turn, so a slow minute on a shared machine
    falls on all sizes alike, never on one."""
    runs = []
    for root in roots:
        texts = sql_texts(root)
        runs.append({"scan": lambda root=root: scan.scan(root, conn), "floor": lambda texts=texts: parse_floor(texts),
                     "json": lambda texts=texts: parse_floor(texts, json_parse)})
    results = [run["scan"]()[0] for run in runs]
    for run in runs:
        run["floor"]()
        run["json"]()
    seconds = [{name: [] for name in run} for run in runs]
    for _ in range(repeats):
        for run, times in zip(runs, seconds):
            for name, step in run.items():
                started = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - started)
    return [{"result": result, **{name: statistics.median(t) for name, t in times.items()}, "scan_min": min(times["scan"])}
            for result, times in zip(results, seconds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="small files in the tree")
    parser.add_argument("--strings", default="250,1000,4000",
                        help="SQL texts in the one big file, one run each (comma-separated)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    counts = [int(n) for n in args.strings.split(",")]
    cluster = Cluster().start()
    try:
        script = re.sub(r"^(DROP DATABASE|CREATE DATABASE|\\c ).*$", "", CHINOOK.read_text(), flags=re.M)
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"], input=script, text=True, check=True,
                       capture_output=True, env=cluster.env)
        runs = {}
        with tempfile.TemporaryDirectory() as tmp, psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            tree = Path(tmp) / "tree"
            tree.mkdir()
            make_tree(tree, args.files)
            runs[f"{args.files:,} small files"] = measure([str(tree)], conn, args.repeats)[0]
            for shape, template in BIG_FILES.items():
                bigs = []
                for count in counts:
                    bigs.append(Path(tmp) / f"{shape.replace(' ', '_')}_{count}.py")
                    bigs[-1].write_text("".join(template.format(n=n) for n in range(count)))
                for count, run in zip(counts, measure(list(map(str, bigs)), conn, args.repeats)):
                    runs[f"one file of {shape}, {count:,} SQL texts"] = run
    finally:
        cluster.stop()

    print(f"\nMedian of {args.repeats} runs each. Floor: pglast.parse_sql alone on the same SQL texts. JSON: "
          "the same parser's JSON read by json.loads, as scan reads it (a lower floor, shown for comparison).\n")
    print("| shape | files | SQL texts | wrong names | not parsed | scan (s) | pglast floor (s) | scan / floor "
          "| JSON (s) | scan / JSON |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape, run in runs.items():
        result = run["result"]
        print(f"| {shape} | {result.files:,} | {result.snippets:,} | {len(result.findings):,} | "
              f"{len(result.unparsable):,} | {run['scan']:.2f} | {run['floor']:.2f} | "
              f"{run['scan'] / run['floor']:.2f}x | {run['json']:.2f} | {run['scan'] / run['json']:.2f}x |")

    goals = []
    for shape, run in runs.items():
        goals.append((f"{shape}: scan / pglast floor", run["scan"] / run["floor"], RATIO_GOAL, "x"))
        if shape.endswith("small files"):
            goals.append((f"{shape}: scan seconds", run["scan"], 10, " s"))
    if 1000 in counts and 4000 in counts:
        # Growth is read from each size's fastest run: a run of 50 ms on a shared machine is
        # slowed by whatever else runs, never sped up, so the medians' ratio is mostly noise.
        for shape in BIG_FILES:
            grown, base = (runs[f"one file of {shape}, {n:,} SQL texts"] for n in (4000, 1000))
            print(f"one file of {shape}: t(4,000) / t(1,000), fastest runs {grown['scan_min'] / base['scan_min']:.2f}x, "
                  f"medians {grown['scan'] / base['scan']:.2f}x")
            goals.append((f"one file of {shape}: scan t(4,000) / t(1,000), fastest of {args.repeats} (linear: 4x)",
                          grown["scan_min"] / base["scan_min"], GROWTH_GOAL, "x"))
    print_goals("selfheal scan", goals)


if __name__ == "__main__":
    main()
