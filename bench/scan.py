"""selfheal scan on a generated tree of application code, against the Chinook schema.

Usage: python -m bench.scan [--files 10000]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from selfheal import scan
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


def make_tree(root: Path, files: int) -> None:
    for n in range(files):
        ext = MIX[n % len(MIX)]
        folder = root / f"pkg{n // 200}"
        folder.mkdir(exist_ok=True)
        (folder / f"module_{n}{ext}").write_text(TEMPLATES[ext].format(n=n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    cluster = Cluster().start()
    try:
        script = re.sub(r"^(DROP DATABASE|CREATE DATABASE|\\c ).*$", "", CHINOOK.read_text(), flags=re.M)
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"], input=script, text=True, check=True,
                       capture_output=True, env=cluster.env)
        with tempfile.TemporaryDirectory() as tmp, psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            make_tree(Path(tmp), args.files)
            started = time.perf_counter()
            result, _, _ = scan.scan(tmp, conn)
            elapsed = time.perf_counter() - started
        print("\n| files | SQL texts | wrong names | not parsed | seconds | files/s |")
        print("|---|---|---|---|---|---|")
        print(f"| {result.files:,} | {result.snippets:,} | {len(result.findings):,} | {len(result.unparsable):,} | "
              f"{elapsed:.2f} | {result.files / elapsed:,.0f} |")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
