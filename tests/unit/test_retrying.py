"""selfheal.retrying: bounded re-runs of a unit of work, no database needed."""

import psycopg
import pytest

from selfheal.client import psycopg as client
from selfheal.client import RetryTransaction


def repaired():
    error = psycopg.errors.UndefinedColumn('column "x" does not exist')
    return RetryTransaction({"status": "healed", "reason": "added"}, error)


def test_the_with_block_runs_again_after_a_repair_then_stops():
    runs = []
    for attempt in client.retrying(attempts=3):
        with attempt:
            runs.append(1)
            if len(runs) < 2:
                raise repaired()
    assert len(runs) == 2


def test_attempts_are_bounded_and_the_last_repair_is_raised():
    runs = []
    with pytest.raises(RetryTransaction):
        for attempt in client.retrying(attempts=3):
            with attempt:
                runs.append(1)
                raise repaired()
    assert len(runs) == 3


def test_other_errors_are_never_retried():
    runs = []
    with pytest.raises(ZeroDivisionError):
        for attempt in client.retrying(attempts=3):
            with attempt:
                runs.append(1)
                1 / 0
    assert len(runs) == 1


def test_decorator_returns_the_value_of_the_successful_run():
    calls = []

    @client.retrying(attempts=2)
    def unit():
        calls.append(1)
        if len(calls) == 1:
            raise repaired()
        return "done"

    assert unit() == "done" and len(calls) == 2
