"""What an error_event row holds of a log entry: every text cleaned and clipped, whatever it was."""

import pytest

from selfheal.core.logreader import LogError, clean_text
from selfheal.server.adapter import MAX_MESSAGE_CHARS, MAX_STATEMENT_CHARS
from selfheal.server.events import _event_values

LIMITS = {"sqlstate": 5, "message": MAX_MESSAGE_CHARS, "hint": MAX_MESSAGE_CHARS, "statement": MAX_STATEMENT_CHARS,
          "user": 63, "database": 63, "application_name": 256, "session_id": 64, "context": MAX_MESSAGE_CHARS}
# Where each text lands in _event_values' row (the order of the insert's columns).
POSITION = {"sqlstate": 1, "message": 2, "statement": 3, "hint": 4, "user": 5, "database": 6,
            "application_name": 7, "session_id": 8, "context": 9}


def entry(**texts):
    base = dict(occurred_at="2026-11-24 05:01:02.123 UTC", sqlstate="42703", message='column "x" does not exist',
                hint=None, statement="SELECT x FROM t", user="app", database="shop", application_name="web",
                session_id="6b05.1f40", context=None)
    return LogError(**{**base, **texts})


@pytest.mark.parametrize("value", ["plain", "", "é and ü", "nul\x00inside", "lone\udc80surrogate", "x" * 300_000,
                                   "é" * 300_000, "\x00" * 10])
@pytest.mark.parametrize("field", sorted(LIMITS))
def test_each_text_is_stored_clean_clipped_and_empty_as_null(field, value):
    row = _event_values(entry(**{field: value}))
    expected = clean_text(value, LIMITS[field]) or None
    if field in ("sqlstate", "message"):
        expected = expected or ""  # the columns are NOT NULL
    assert row[POSITION[field]] == expected
    stored = row[POSITION[field]] or ""
    assert "\x00" not in stored and len(stored) <= LIMITS[field]
    stored.encode("utf-8")  # PostgreSQL can store it


def test_one_unclean_text_leaves_the_others_as_they_were():
    row = _event_values(entry(hint="bad\x00hint", statement="SELECT 'é' FROM t"))
    assert row[4] == "badhint" and row[3] == "SELECT 'é' FROM t" and row[2] == 'column "x" does not exist'
