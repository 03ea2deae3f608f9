"""error_event rows: cleaned and clipped values, stored in one statement, expired after
event_retention."""

from __future__ import annotations

import re

from ..core import errors, logreader
from .adapter import MAX_MESSAGE_CHARS, MAX_STATEMENT_CHARS, _Db


_EVENT_INSERT = """
INSERT INTO selfheal.error_event (source, occurred_at, sqlstate, message, statement, hint, username, database_name,
                                  application_name, session_id, context, signature, signature_key, class,
                                  occurrences, last_occurred_at)
SELECT $1, coalesce(x.occurred_at::timestamptz, now()), x.sqlstate, x.message, x.statement, x.hint,
       coalesce(x.username, session_user)::name, coalesce(x.database_name, current_database())::name,
       x.application_name, x.session_id, x.context, x.signature, x.signature_key::uuid, x.class,
       x.occurrences::integer, x.last_occurred_at::timestamptz
  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
              $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[])
       AS x(occurred_at, sqlstate, message, statement, hint, username, database_name, application_name,
            session_id, context, signature, signature_key, class, occurrences, last_occurred_at)
RETURNING id
"""
_EVENT_FIELDS = 15


_LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?( ([A-Za-z][A-Za-z0-9+-]*|[+-]\d\d(:?\d\d)?))?$")


def _clip(text, limit):
    return logreader.clean_text(text, limit) or None


# The longest each text of a LogError (after its time) is stored: sqlstate, message, hint,
# statement, user, database, application_name, session_id, context.
_TEXT_LIMITS = (5, MAX_MESSAGE_CHARS, MAX_MESSAGE_CHARS, MAX_STATEMENT_CHARS, 63, 63, 256, 64, MAX_MESSAGE_CHARS)


def _clipped_texts(e: logreader.LogError) -> list:
    """The entry's texts clipped and cleaned (_clip), empty ones None. An outage stores tens of
    thousands of rows: texts that are plain ASCII with no NUL, nearly all, are only sliced."""
    texts = e[1:]
    joined = "".join(filter(None, texts))
    if joined.isascii() and "\x00" not in joined:
        return [text[:limit] if text else None for text, limit in zip(texts, _TEXT_LIMITS)]
    return [_clip(text, limit) for text, limit in zip(texts, _TEXT_LIMITS)]


def _event_values(e: logreader.LogError, occurrences: int = 1, last_occurred_at: str | None = None) -> tuple:
    """One event's column values; text from outside is cleaned and clipped, never trusted."""
    sqlstate, message, hint, statement, user, database, application, session, context = _clipped_texts(e)
    sqlstate, message = sqlstate or "", message or ""
    occurred_at = e.occurred_at if e.occurred_at and _LOG_TIME.match(e.occurred_at) else None
    last = last_occurred_at if occurred_at and occurrences > 1 and _LOG_TIME.match(last_occurred_at or "") else None
    return (occurred_at, sqlstate, message, statement, hint, user, database, application, session, context,
            _clip(errors.signature(sqlstate, message), errors.SIGNATURE_DISPLAY_CHARS),
            errors.signature_key(sqlstate, message), errors.classify(sqlstate), str(occurrences), last)


def _insert_events(db: _Db, source: str, rows: list[tuple]) -> list[int]:
    columns = [list(column) for column in zip(*rows)]
    return [r["id"] for r in db.rows(_EVENT_INSERT, ("text",) + ("text[]",) * _EVENT_FIELDS, (source, *columns))]


def _store_rows(db: _Db, source: str, rows: list[tuple], problems: list | None = None) -> list[int]:
    """Insert events (_event_values tuples) in one statement. A row PostgreSQL rejects never
    blocks the others: it is retried alone with its times set to now (an odd zone
    abbreviation), then skipped and counted."""
    if not rows:
        return []
    try:
        with db.plpy.subtransaction():
            return _insert_events(db, source, rows)
    except db.plpy.SPIError:
        pass
    ids = []
    for row in rows:
        for attempt in (row, (None,) + row[1:-1] + (None,)):
            try:
                with db.plpy.subtransaction():
                    ids += _insert_events(db, source, [attempt])
                break
            except db.plpy.SPIError as exc:
                failure = str(exc)
        else:
            if problems is None:
                raise ValueError(f"the error could not be recorded: {failure}")
            problems.append(f"a record could not be stored: {failure[:200]}")
    return ids


def _store_event(db: _Db, source: str, sqlstate, message, statement, hint) -> int:
    entry = logreader.LogError(None, sqlstate or "", message or "", hint or None, statement or None,
                               None, None, None, None)
    return _store_rows(db, source, [_event_values(entry)])[0]


def _expire_events(db: _Db, settings: dict, limit: int = 10000) -> int:
    """Delete up to `limit` processed events older than event_retention; events an audit row
    points at (the error a decision was made for) are kept with it."""
    return db.one("""WITH expired AS (
                        DELETE FROM selfheal.error_event e
                         WHERE e.id IN (SELECT x.id FROM selfheal.error_event x
                                         WHERE x.received_at < now() - $1::interval
                                           AND x.status NOT IN ('pending', 'deferred')
                                           AND NOT EXISTS (SELECT 1 FROM selfheal.audit a WHERE a.event_id = x.id)
                                         ORDER BY x.id LIMIT $2)
                        RETURNING 1)
                     SELECT count(*) AS n FROM expired""",
                  ("text", "int4"), (settings.get("event_retention", "30 days"), limit))["n"]
