"""Repeats of one error in the server log are counted on one row: what folds and what never does."""

from selfheal.core import sqlscan
from selfheal.core.logreader import LogError, fold_repeats, statement_key


def entry(statement, at="2026-11-24 05:01:02.123 UTC", message='column "x" does not exist', user="app",
          session="6b05.1f40", application="web", sqlstate="42703"):
    return LogError(at, sqlstate, message, None, statement, user, "shop", application, session)


def test_an_outage_of_one_query_with_other_values_is_one_row_per_second():
    errors = [entry(f"SELECT x FROM t WHERE id = {n} AND at > '2026-11-{n % 28 + 1:02d}' LIMIT 10",
                    at=f"2026-11-24 05:01:0{n % 2}.{n:03d} UTC", session=f"s{n}") for n in range(1000)]
    repeats: dict = {}
    fold_repeats(errors, repeats)
    held = sorted(repeats.values(), key=lambda r: r[0].occurred_at)
    assert [count for _, count, _ in held] == [500, 500]  # one row per second
    assert [first for first, _, _ in held] == [errors[0], errors[1]]  # the first entry is kept whole
    assert held[0][2] == errors[998].occurred_at and held[1][2] == errors[999].occurred_at


def test_what_can_change_a_statement_never_folds():
    different = [
        ("SELECT x FROM t1", "SELECT x FROM t2"),  # a digit in a name
        ('SELECT x FROM "t" WHERE a = 1', 'SELECT x FROM "u" WHERE a = 1'),
        ("SELECT x FROM t WHERE a = $1", "SELECT x FROM t WHERE a = $2"),  # parameters
        ("SELECT x FROM t WHERE a = 2147483647", "SELECT x FROM t WHERE a = 2147483648"),  # integer or bigint
        ("SELECT x FROM t WHERE a = 5", "SELECT x FROM t WHERE a = 5000000000"),  # integer or bigint
        ("SELECT x FROM t WHERE a = 1.5", "SELECT x FROM t WHERE a = 15"),
        ('SELECT "it\'s" FROM t WHERE a = \'b\'', 'SELECT "it\'s" FROM u WHERE a = \'b\''),
        ("SELECT x FROM t WHERE a = E'\\'' OR b = 'c' -- u", "SELECT x FROM t WHERE a = E'\\'' OR b = 'd' -- u"),
        ("SELECT 'a' /* ' */ FROM t", "SELECT 'a' /* ' */ FROM u"),
        ("SELECT x FROM t WHERE a = $$'$$ OR b = 'c'", "SELECT x FROM t WHERE a = $$'$$ OR b = 'cc'"),
        ("SELECT x FROM café1", "SELECT x FROM café2"),
        ("SELECT x FROM t", None),
    ]
    for one, other in different:
        assert statement_key(one) != statement_key(other), (one, other)
    same = [
        ("SELECT x FROM t WHERE a = 17 LIMIT 10", "SELECT x FROM t WHERE a = 93 LIMIT 20"),
        ("SELECT x FROM t WHERE a = 5 OR b = 1.25", "SELECT x FROM t WHERE a = 123456789 OR b = 10.5"),
        ("UPDATE t SET x = 'alpha' WHERE id = 4", "UPDATE t SET x = 'bravo42' WHERE id = 9"),
        ("INSERT INTO t (x, at) VALUES (123456789, '2026-11-24 05:00:00')",
         "INSERT INTO t (x, at) VALUES (987654321, '2025-01-01 23:59:59')"),
    ]
    for one, other in same:
        assert statement_key(one) == statement_key(other), (one, other)
        assert sqlscan.shape(one) == sqlscan.shape(other)  # never finer than heal()'s own grouping


def test_errors_that_differ_but_in_session_and_time_within_a_second_are_kept_apart():
    base = entry("SELECT x FROM t WHERE id = 1")
    others = [entry("SELECT x FROM t WHERE id = 1", at="2026-11-24 05:01:03.001 UTC"),
              entry("SELECT x FROM t WHERE id = 1", at="2026-11-24 05:01:02.123 CET"),
              entry("SELECT x FROM t WHERE id = 1", user="reporting"),
              entry("SELECT x FROM t WHERE id = 1", application="worker"),
              entry("SELECT x FROM t WHERE id = 1", message='column "y" does not exist'),
              entry("SELECT x FROM t WHERE id = 1", sqlstate="42P01"),
              base._replace(hint='Perhaps you meant to reference the column "t.y".'),
              base._replace(context="PL/pgSQL function f() line 3"),
              base._replace(database="other")]
    repeats: dict = {}
    fold_repeats([base, entry("SELECT x FROM t WHERE id = 2", session="other session")] + others, repeats)
    assert len(repeats) == 1 + len(others)
    assert repeats[next(iter(repeats))][1] == 2
