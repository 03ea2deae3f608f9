"""squawk, the PostgreSQL migration linter, on the scripts selfheal writes for people to run.

The export and emergency tests lint their real output with `assert_passes`; the tests here show
that the check can fail: squawk does warn on a script without timeouts, and an ignore comment
that gives no reason is refused."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from selfheal.cli import export

from selfheal.core import sqlscan


def squawk() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "squawk")
    found = beside if os.path.exists(beside) else shutil.which("squawk")
    if not found:
        pytest.fail("squawk is not installed (pip package squawk-cli): run bash scripts/setup.sh")
    return found


def lint(sql: str, tmp_path, *options: str) -> tuple[int, list[dict]]:
    """squawk's exit status and warnings for `sql`, read as PostgreSQL 15."""
    path = tmp_path / "migration.sql"
    path.write_text(sql)
    result = subprocess.run([squawk(), "--reporter", "json", "--pg-version", "15.0", *options, str(path)],
                            capture_output=True, text=True)
    assert result.stdout.strip(), f"squawk printed no report: {result.stderr}"
    return result.returncode, json.loads(result.stdout)


_IGNORE = re.compile(r"--[^\n]*squawk-ignore[^\n]*")


def unexplained_ignores(sql: str) -> list[str]:
    """Ignore comments that do not say why: `-- squawk-ignore rule -- why` is the form squawk
    reads (it stops at the second --); a file-wide ignore hides every later statement."""
    bad = []
    for comment in _IGNORE.findall(sql):
        rules, _, why = comment.split("squawk-ignore", 1)[1].partition("--")
        if rules.startswith("-file") or not rules.strip() or len(why.strip()) < 20:
            bad.append(comment)
    return bad


def assert_passes(sql: str, tmp_path, *options: str) -> None:
    status, warnings = lint(sql, tmp_path, *options)
    lines = sql.splitlines()
    assert warnings == [], "\n".join(f"{w['rule_name']}: {w['message']}\n    {lines[w['line']]}" for w in warnings)
    assert status == 0
    assert unexplained_ignores(sql) == []


def test_squawk_warns_on_a_migration_without_timeouts_or_with_a_bare_drop_view(tmp_path):
    status, warnings = lint('BEGIN;\nALTER TABLE "t" ADD COLUMN IF NOT EXISTS "c" integer;\n'
                            'DROP VIEW IF EXISTS "v";\nCOMMIT;\n', tmp_path)
    assert status != 0
    assert {w["rule_name"] for w in warnings} == {"require-lock-timeout", "require-statement-timeout",
                                                  "prefer-bigint-over-int", "ban-drop-view"}


def test_an_ignore_comment_must_say_why():
    drop = 'DROP VIEW IF EXISTS "v";\n'
    assert unexplained_ignores("-- squawk-ignore ban-drop-view\n" + drop)
    assert unexplained_ignores("-- squawk-ignore ban-drop-view -- safe\n" + drop)
    assert unexplained_ignores("-- squawk-ignore-file ban-drop-view -- a view holds no data, it is recreated\n" + drop)
    assert not unexplained_ignores("-- squawk-ignore ban-drop-view -- a view holds no data, it is recreated\n" + drop)


@pytest.mark.parametrize("col_type", sorted(set(sqlscan.CAST_TYPES.values())) + [
    "character varying(20)", "character(3)", '"char"', "integer[]", "timestamp(3) without time zone"])
def test_a_column_of_any_type_a_repair_gives_passes_with_its_reason(col_type, tmp_path):
    add = f'ALTER TABLE "public"."t" ADD COLUMN IF NOT EXISTS "c" {col_type}'
    assert_passes("".join(f"{s};\n" for s in ["BEGIN", *export.timeouts([]), export.add_column(add, col_type),
                                                "COMMIT"]), tmp_path)
