"""watch(): heal() in a loop, committing after every cycle."""

from __future__ import annotations

import json

from .adapter import _Db, _pin_settings
from .heal import heal


def watch(plpy, poll, max_cycles=None) -> None:
    """Heal, commit, sleep, again: until cancelled, terminated, or max_cycles are done."""
    db = _Db(plpy)
    _pin_settings(plpy)
    seconds = db.one("SELECT extract(epoch FROM $1::interval)::float8 AS s", ("text",), (poll,))["s"]
    cycles = 0
    while max_cycles is None or cycles < max_cycles:
        _pin_settings(plpy)  # a commit ends the transaction-local setting
        summary = json.loads(heal(plpy))
        plpy.commit()  # each cycle's events and repairs survive a later cancel
        if summary["processed"]:
            plpy.notice(f"selfheal: {json.dumps(summary, sort_keys=True)}")
        cycles += 1
        # pg_sleep, not time.sleep: it answers cancel and terminate at once.
        db.one("SELECT pg_catalog.pg_sleep($1)", ("float8",), (seconds,))
