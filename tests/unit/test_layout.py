"""Facts about the project that a fresh checkout relies on."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_python_distribution_version_matches_the_extension_version():
    control = (ROOT / "selfheal.control").read_text()
    extension = re.search(r"default_version\s*=\s*'([^']+)'", control).group(1)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert project == extension


def test_every_sql_function_has_a_comment_and_a_pinned_search_path():
    text = "\n".join(p.read_text() for p in sorted((ROOT / "sql").glob("*.sql")))
    functions = re.findall(r"CREATE OR REPLACE FUNCTION ([\w.]+)\(", text)
    assert functions and "CREATE FUNCTION" not in text  # re-runnable: upgrade scripts share them
    for name in functions:
        assert re.search(rf"COMMENT ON FUNCTION {re.escape(name)}\(", text), name
    assert text.count("SET search_path = pg_catalog, pg_temp") == len(functions)
    for block in text.split("CREATE OR REPLACE FUNCTION")[1:]:
        if "SECURITY DEFINER" in block.split("AS $$")[0]:
            assert "-- SECURITY DEFINER:" in block.split("AS $$")[0], "definer without its reason"
