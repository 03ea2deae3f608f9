"""Table-driven drift cases against a real cluster: is the app served, or refused with nothing changed?

For every case in drift_cases.CASES two databases are made in the same cluster:

- un-drifted: the schema and rows the app's code was written for, without the extension. The
  app's statement runs there as `app` and gives the expected output;
- drifted (the `db` fixture's database): the same schema and rows, then the drift. A tracked drift
  runs while selfheal's event triggers watch; an untracked one ran before selfheal was installed
  (the extension is dropped, the schema built and drifted, then the extension created again).
  Then `app` is granted the tables and heal_error and routed with selfheal.enable_compat('app').

The app's statement runs in the drifted database as `app`, each attempt in a new session (the
search_path enable_compat sets applies to new sessions). On an error the app reports it to
selfheal.heal_error as itself, with the error's sqlstate, primary message and hint and the
statement, as a client integration does; it retries while the answer is 'healed', at most three
times. Then the verdict is checked:

- served: the final attempt succeeds and returns the same column names and rows as on the
  un-drifted schema (row order compared only under ORDER BY; for a statement without a result set,
  the row count), and the case's `check` read agrees in both databases;
- refused: the final attempt still fails, and every table has the same columns, types, defaults
  and rows as before the app's first attempt, with no new alias or compat view column.

Set SELFHEAL_DRIFT_REPORT to a file name to get one JSON line per case with what happened.
"""

from __future__ import annotations

import json
import os
import re

import psycopg
import pytest

from .conftest import APP_ROLE, Database
from .drift_cases import CASES, REFUSED, SERVED, Case
from .support import report

MAX_HEALS = 3

GRANTS = """
DO $$
DECLARE s name;
BEGIN
  FOR s IN SELECT nspname FROM pg_namespace
            WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT LIKE 'selfheal%' AND nspname <> 'information_schema'
  LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO app', s);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO app', s);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO app', s);
  END LOOP;
END $$;
"""

USER_SCHEMAS = "n.nspname NOT LIKE 'pg\\_%' AND n.nspname NOT LIKE 'selfheal%' AND n.nspname <> 'information_schema'"

COLUMNS = f"""
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid)
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND {USER_SCHEMAS}
 ORDER BY 1, 2, a.attnum
"""

TABLES = f"""
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS} ORDER BY 1
"""

COMPAT = """
SELECT 'alias', schema_name || '.' || table_name, legacy_name || ' = ' || coalesce(expression, kind)
  FROM selfheal.alias WHERE active
UNION ALL
SELECT 'view', n.nspname || '.' || c.relname, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname LIKE 'selfheal\\_compat\\_%' AND c.relkind = 'v' AND a.attnum > 0
 ORDER BY 1, 2, 3
"""


def _ordered(sql: str) -> bool:
    return re.search(r"\border\s+by\b", sql, re.I) is not None


def _result(cur: psycopg.Cursor, sql: str):
    """What the app sees: column names and rows, or the row count of a statement without rows."""
    if cur.description is None:
        return {"rowcount": cur.rowcount}
    rows = cur.fetchall()
    if not _ordered(sql):
        rows = sorted(rows, key=repr)
    return {"columns": [c.name for c in cur.description], "rows": rows}


def _app(cluster, dbname: str) -> psycopg.Connection:
    return psycopg.connect(cluster.dsn(dbname, APP_ROLE), autocommit=True, options=Database.TIMEOUT)


def _run(cluster, dbname: str, sql: str):
    """(result, None) or (None, error) for one statement in a new app session."""
    with _app(cluster, dbname) as conn:
        try:
            return _result(conn.execute(sql), sql), None
        except psycopg.Error as exc:
            return None, exc


def undrifted(cluster, name: str, case: Case) -> dict:
    """The app's statement (and check) on the schema its code was written for."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(cluster.dsn(name), autocommit=True, options=Database.TIMEOUT) as admin:
            admin.execute(case.schema)
            admin.execute(GRANTS)
            if case.role_setup:
                admin.execute(case.role_setup.format(db=name))
        result, error = _run(cluster, name, case.query)
        out = {"result": result, "error": error}
        if case.check and error is None:
            out["check"], check_error = _run(cluster, name, case.check)
            assert check_error is None, f"the case's check fails on the un-drifted schema: {check_error}"
        return out
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def build_drifted(db, case: Case) -> None:
    admin = db.admin
    if case.tracked:
        if case.selfheal_setup:
            admin.execute(case.selfheal_setup)
        admin.execute(case.schema)
        if case.drift:
            admin.execute(case.drift)  # selfheal's event triggers see it
    else:
        admin.execute("DROP EXTENSION selfheal")  # the drift happened before selfheal was installed
        admin.execute(case.schema)
        if case.drift:
            admin.execute(case.drift)
        admin.execute("CREATE EXTENSION selfheal CASCADE")
        if case.selfheal_setup:
            admin.execute(case.selfheal_setup)
    admin.execute(GRANTS)
    admin.execute(f"GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text) TO {APP_ROLE}")
    if case.role_setup:
        admin.execute(case.role_setup.format(db=db.name))
    admin.execute(f"SELECT selfheal.enable_compat('{APP_ROLE}')")


def snapshot(db) -> dict:
    admin = db.admin
    data = {}
    for (table,) in admin.execute(TABLES).fetchall():
        data[table] = admin.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t").fetchone()
    return {"columns": admin.execute(COLUMNS).fetchall(), "data": data, "compat": admin.execute(COMPAT).fetchall()}


def heal_and_retry(db, case: Case) -> dict:
    """The app's statement, reported and retried in a new session while selfheal answers 'healed'."""
    reports = []
    for attempt in range(MAX_HEALS + 1):
        with _app(db.cluster, db.name) as app:
            try:
                result = _result(app.execute(case.query), case.query)
                return {"result": result, "error": None, "reports": reports}
            except psycopg.Error as exc:
                if attempt == MAX_HEALS:
                    return {"result": None, "error": exc, "reports": reports}
                answer = report(app, exc, case.query)
                reports.append({"error": f"{exc.diag.sqlstate} {exc.diag.message_primary}", **{
                    k: answer.get(k) for k in ("status", "action", "reason")}})
                if answer["status"] != "healed":
                    return {"result": None, "error": exc, "reports": reports}


def _describe(outcome: dict, audit) -> str:
    lines = [f"  round {i + 1}: {r['error']} -> {r['status']} ({r['action']}): {(r['reason'] or '')[:300]}"
             for i, r in enumerate(outcome["reports"])]
    if outcome["error"] is not None:
        lines.append(f"  final error: {outcome['error'].diag.sqlstate} {outcome['error'].diag.message_primary}")
    lines += [f"  audit: {a}" for a in audit]
    return "\n".join(lines)


def _log(case: Case, passed: bool, outcome: dict, detail: str) -> None:
    path = os.environ.get("SELFHEAL_DRIFT_REPORT")
    if not path:
        return
    with open(path, "a") as f:
        f.write(json.dumps({
            "id": case.id, "class": case.klass, "verdict": case.verdict, "passed": passed,
            "statuses": [r["status"] for r in outcome["reports"]],
            "final_error": str(outcome["error"].diag.message_primary) if outcome["error"] is not None else None,
            "detail": detail,
        }, default=str) + "\n")


def test_case_table_is_well_formed():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(CASES) >= 50
    assert all(c.verdict in (SERVED, REFUSED) for c in CASES)
    assert all(not (c.code_bug and c.verdict == SERVED) for c in CASES)


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=c.known_gap))
                                  if c.known_gap else c for c in CASES],
                         ids=[f"{c.verdict}:{c.id}" for c in CASES])
def test_drift_case(db, case: Case):
    expected = undrifted(db.cluster, f"{db.name}_undrifted", case)
    if case.code_bug:
        assert expected["error"] is not None, "a code bug must fail on the un-drifted schema too"
    else:
        assert expected["error"] is None, f"the case's statement fails on the un-drifted schema: {expected['error']}"

    build_drifted(db, case)
    last_audit = db.scalar("SELECT coalesce(max(id), 0) FROM selfheal.audit")
    before = snapshot(db)
    outcome = heal_and_retry(db, case)
    after = snapshot(db)
    audit = db.admin.execute("SELECT id, action, status, column_name, left(reason, 200) FROM selfheal.audit "
                             "WHERE id > %s ORDER BY id", (last_audit,)).fetchall()
    story = _describe(outcome, audit)

    problems = []
    if case.verdict == SERVED:
        if outcome["error"] is not None:
            problems.append("the app still gets an error")
        elif outcome["result"] != expected["result"]:
            problems.append(f"the output differs:\n    drifted:   {outcome['result']}\n"
                            f"    undrifted: {expected['result']}")
        elif case.check:
            check, check_error = _run(db.cluster, db.name, case.check)
            if check_error is not None:
                problems.append(f"the check fails: {check_error}")
            elif check != expected["check"]:
                problems.append(f"the check differs:\n    drifted:   {check}\n    undrifted: {expected['check']}")
    else:
        if outcome["error"] is None:
            problems.append(f"the app's statement succeeded: {outcome['result']}")
        for part in ("columns", "data", "compat"):
            if before[part] != after[part]:
                gone = [x for x in before[part] if x not in after[part]] if isinstance(before[part], list) else \
                    {k: v for k, v in before[part].items() if after[part].get(k) != v}
                new = [x for x in after[part] if x not in before[part]] if isinstance(after[part], list) else \
                    {k: v for k, v in after[part].items() if before[part].get(k) != v}
                problems.append(f"{part} changed: before {gone}, after {new}")
    detail = "; ".join(p.splitlines()[0] for p in problems)
    _log(case, not problems, outcome, detail)
    assert not problems, f"{case.id} ({case.klass}), expected {case.verdict}:\n" + "\n".join(problems) + \
        f"\n{story}" + (f"\n  note: {case.note}" if case.note else "")
