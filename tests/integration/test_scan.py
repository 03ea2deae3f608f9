"""selfheal scan, tried as a new user would: a tree of application code against a real schema."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHINOOK = FIXTURES / "chinook" / "chinook.sql"

EXPECTED = [  # (path, line, column, kind, wrong, canonical)
    ("go/album.go", 3, 28, "column", "albumid", "album_id"),
    ("go/album.go", 3, 60, "column", "albumid", "album_id"),
    ("java/Track.java", 2, 43, "column", "unitprice", "unit_price"),
    ("js/invoices.js", 3, 27, "column", "UnitPrice", "unit_price"),
    ("js/invoices.js", 3, 54, "relation", "InvoiceLine", "invoice_line"),
    ("js/invoices.js", 3, 74, "column", "InvoiceLineId", "invoice_line_id"),
    ("php/report.php", 2, 16, "column", "invoiceid", "invoice_id"),
    ("py/queries.py", 5, 17, "column", "recommendation_data", None),
    ("py/queries.py", 5, 38, "column", "unitprice", "unit_price"),
    ("py/queries.py", 18, 19, "column", "package_name", None),
    ("rb/sessions.rb", 1, 43, "column", "service_type_id", "service_type::integer"),
    ("sql/report.sql", 2, 25, "column", "unitprice", "unit_price"),
    ("sql/report.sql", 4, 8, "relation", "invoiceline", "invoice_line"),
]


@pytest.fixture
def schema(db):
    script = re.sub(r"^(DROP DATABASE|CREATE DATABASE|\\c ).*$", "", CHINOOK.read_text(), flags=re.M)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.name], input=script, text=True,
                   check=True, capture_output=True, env=db.cluster.env)
    db.admin.execute("CREATE TABLE sessions (id serial PRIMARY KEY, service_type text);"
                     "CREATE TABLE credit_packages (id serial PRIMARY KEY, credits int)")
    return db


@pytest.fixture
def tree(tmp_path):
    shutil.copytree(FIXTURES / "scan" / "app", tmp_path / "app")
    return tmp_path / "app"


def run_scan(db, tree, *extra):
    return subprocess.run([sys.executable, "-m", "selfheal.cli", "scan", str(tree), "--dsn",
                           db.cluster.dsn(db.name), *extra], capture_output=True, text=True)


def test_finds_every_wrong_name_in_every_language_with_exact_positions(schema, tree):
    result = run_scan(schema, tree, "--format", "json")
    assert result.returncode == 1  # findings
    report = json.loads(result.stdout)
    found = [(str(Path(f["path"]).relative_to(tree)), f["line"], f["column"], f["kind"], f["wrong"], f["canonical"])
             for f in report["findings"]]
    assert found == EXPECTED
    unparsed = sorted((str(Path(u["path"]).relative_to(tree)), u["line"]) for u in report["unparsable"])
    assert unparsed == [("py/queries.py", 13), ("sql/report.sql", 6)]  # an f-string table name; broken SQL


def test_fix_is_a_diff_inside_the_sql_that_matches_the_golden_one(schema, tree):
    result = run_scan(schema, tree, "--fix")
    assert result.stdout == (FIXTURES / "scan" / "expected.diff").read_text()


def test_write_applies_the_fixes_and_only_unfixable_names_remain(schema, tree):
    run_scan(schema, tree, "--write")
    again = json.loads(run_scan(schema, tree, "--format", "json").stdout)
    assert [f["wrong"] for f in again["findings"]] == ["recommendation_data", "package_name", "service_type_id"]
    assert "NOT_SQL = \"select a colour\"" in (tree / "py" / "queries.py").read_text()  # nothing else touched


def test_sarif_for_code_scanning_tools(schema, tree):
    sarif = json.loads(run_scan(schema, tree, "--format", "sarif").stdout)
    results = sarif["runs"][0]["results"]
    assert sarif["version"] == "2.1.0" and len(results) == len(EXPECTED)
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (3, 28)


def test_exit_codes_fit_ci(schema, tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "ok.py").write_text('Q = "SELECT album_id, title FROM album"\n')
    assert run_scan(schema, clean).returncode == 0
    assert run_scan(schema, tmp_path / "missing").returncode == 2
    bad = subprocess.run([sys.executable, "-m", "selfheal.cli", "scan", str(clean), "--dsn",
                          "host=127.0.0.1 port=1 connect_timeout=2"], capture_output=True, text=True)
    assert bad.returncode == 2 and "selfheal:" in bad.stderr


def test_a_single_file_is_scanned_like_a_tree_holding_only_it(schema, tree):
    whole = json.loads(run_scan(schema, tree, "--format", "json").stdout)
    one = tree / "py" / "queries.py"
    single = run_scan(schema, one, "--format", "json")
    assert single.returncode == 1
    expected = [f for f in whole["findings"] if Path(f["path"]) == one]
    assert expected and json.loads(single.stdout)["findings"] == expected
    text = run_scan(schema, one).stdout
    assert "in 1 file;" in text and "1 files" not in text
    diff = run_scan(schema, one, "--fix").stdout
    assert diff.startswith("--- a/queries.py\n+++ b/queries.py\n")
    not_code = tree / "notes.bin"
    not_code.write_bytes(b"\0")
    refused = run_scan(schema, not_code)
    assert refused.returncode == 2 and "is not a file selfheal scan reads" in refused.stderr
