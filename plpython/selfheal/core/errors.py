"""Read PostgreSQL error reports: classify them and pull names out of the message text.

A 42703 carries no column diagnostic fields, so the names come from the message and
HINT, whose shapes are fixed by PostgreSQL when lc_messages is 'C'.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field

UNDEFINED_COLUMN = "42703"
UNDEFINED_TABLE = "42P01"
# An outage repeats a few messages many times: signature, key and class are remembered for the
# most recent ones, so a repeat costs a lookup (a message is at most a few thousand characters).
_REMEMBERED = 256

# Error classes worth a human's attention but never a schema change.
_CLASS_NAMES = {
    "22": "data exception",
    "23": "integrity constraint violation",
    "25": "invalid transaction state",
    "28": "invalid authorization",
    "40": "transaction rollback",
    "42": "syntax error or access rule violation",
    "53": "insufficient resources",
    "54": "program limit exceeded",
    "55": "object not in prerequisite state",
    "57": "operator intervention",
    "P0": "raised by PL/pgSQL",
    "XX": "internal error",
}

# PostgreSQL prints names between quotes without doubling embedded quotes.
_IDENT = r'(?:".+?"|[^\s".]+)'
_COLUMN_OF_RELATION = re.compile(
    r'^column (?P<column>' + _IDENT + r') of relation (?P<relation>' + _IDENT + r') does not exist$'
)
_QUALIFIED_COLUMN = re.compile(
    r'^column (?P<qualifier>' + _IDENT + r')\.(?P<column>' + _IDENT + r') does not exist$'
)
_BARE_COLUMN = re.compile(r'^column (?P<column>' + _IDENT + r') does not exist$')
_USING_COLUMN = re.compile(
    r'^column (?P<column>".+?") specified in USING clause does not exist in (?P<side>left|right) table$'
)
_RELATION = re.compile(
    r'^relation (?:(?P<schema>' + _IDENT + r')\.)?(?P<relation>' + _IDENT + r') does not exist$'
)
_HINT_CANDIDATE = re.compile(r'the column "(?P<qualifier>[^"]+?)\.(?P<column>[^"]+)"')


FEATURE_NOT_SUPPORTED = "0A000"
_VIEW_WRITE = re.compile(
    r'^cannot (?:insert into|update) column (?P<column>' + _IDENT + r') of view (?P<view>' + _IDENT + r')$'
)


def parse_view_write(sqlstate: str | None, message: str | None) -> tuple[str, str] | None:
    """(column, view) of a write to a computed view column, which PostgreSQL refuses with 0A000."""
    if (sqlstate or "").upper() != FEATURE_NOT_SUPPORTED:
        return None
    m = _VIEW_WRITE.match((message or "").strip())
    return (_unquote(m.group("column")), _unquote(m.group("view"))) if m else None


WRONG_OBJECT_TYPE = "42809"
_COPY_TO_VIEW = re.compile(r'^cannot copy to view (?P<view>' + _IDENT + r')$')


def parse_copy_to_view(sqlstate: str | None, message: str | None) -> str | None:
    """The view a COPY FROM was refused for: PostgreSQL copies into a view only through a trigger."""
    if (sqlstate or "").upper() != WRONG_OBJECT_TYPE:
        return None
    m = _COPY_TO_VIEW.match((message or "").strip())
    return _unquote(m.group("view")) if m else None


class UnreadableMessage(ValueError):
    """The message does not have a shape selfheal knows (often: lc_messages is not 'C')."""


@dataclass(frozen=True)
class MissingName:
    """What a schema error says is missing."""

    kind: str  # 'column' or 'relation'
    name: str
    qualifier: str | None = None  # alias or table as written before the dot
    relation: str | None = None  # target relation of INSERT/UPDATE messages
    schema: str | None = None
    using_side: str | None = None  # 'left' or 'right': the join side a USING column is missing from
    hint_candidates: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        return token[1:-1]
    return token


@functools.lru_cache(maxsize=_REMEMBERED)
def classify(sqlstate: str | None) -> str:
    """Name the kind of error: 'missing_column', 'missing_relation' or a class description."""
    state = (sqlstate or "").upper()
    if state == UNDEFINED_COLUMN:
        return "missing_column"
    if state == UNDEFINED_TABLE:
        return "missing_relation"
    if state == "22012":
        return "division by zero"
    return _CLASS_NAMES.get(state[:2], "other error")


def is_schema_error(sqlstate: str | None) -> bool:
    return (sqlstate or "").upper() in (UNDEFINED_COLUMN, UNDEFINED_TABLE)


def parse_hint(hint: str | None) -> tuple[tuple[str, str], ...]:
    """Candidates from 'Perhaps you meant to reference the column "t.c" [or the column "u.d"].'"""
    if not hint:
        return ()
    return tuple((m.group("qualifier"), m.group("column")) for m in _HINT_CANDIDATE.finditer(hint))


def parse_missing(sqlstate: str, message: str, hint: str | None = None) -> MissingName:
    """Read the missing column or relation out of a 42703 or 42P01 message."""
    text = (message or "").strip()
    if text.upper().startswith("ERROR:"):
        text = text[6:].strip()
    candidates = parse_hint(hint)
    state = (sqlstate or "").upper()
    if state == UNDEFINED_COLUMN:
        m = _COLUMN_OF_RELATION.match(text)
        if m:
            return MissingName("column", _unquote(m.group("column")),
                               relation=_unquote(m.group("relation")), hint_candidates=candidates)
        m = _QUALIFIED_COLUMN.match(text)
        if m:
            return MissingName("column", _unquote(m.group("column")),
                               qualifier=_unquote(m.group("qualifier")), hint_candidates=candidates)
        m = _BARE_COLUMN.match(text)
        if m:
            return MissingName("column", _unquote(m.group("column")), hint_candidates=candidates)
        m = _USING_COLUMN.match(text)
        if m:
            return MissingName("column", _unquote(m.group("column")), using_side=m.group("side"))
    elif state == UNDEFINED_TABLE:
        m = _RELATION.match(text)
        if m:
            schema, relation = m.group("schema"), _unquote(m.group("relation"))
            if schema is None and "." in relation:
                # PostgreSQL prints a qualified name as one quoted string: "app.invoiceline".
                schema, relation = relation.split(".", 1)
            return MissingName("relation", relation, schema=_unquote(schema) if schema else None)
    raise UnreadableMessage(
        f"cannot read the missing name from {state or 'no sqlstate'} message {text[:200]!r}; "
        "selfheal reads messages in English: set lc_messages = 'C' for the application role"
    )


_NUMBER = re.compile(r"\b\d+\b")
SIGNATURE_DISPLAY_CHARS = 1000


@functools.lru_cache(maxsize=_REMEMBERED)
def signature(sqlstate: str | None, message: str | None) -> str:
    """Group errors that differ only in literal values (numbers, quoted strings stay: they are names)."""
    text = " ".join((message or "").split())
    text = _NUMBER.sub("N", text)
    return f"{(sqlstate or '').upper()}: {text}"


@functools.lru_cache(maxsize=_REMEMBERED)
def signature_key(sqlstate: str | None, message: str | None) -> str:
    """A fixed-size key for a signature (a uuid's text), whatever the message's length."""
    d = hashlib.md5(signature(sqlstate, message).encode("utf-8", "replace")).hexdigest()
    return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"  # str(uuid.UUID(d)), made directly


# CONTEXT lines PostgreSQL writes when an error comes from inside a function or trigger.
_CONTEXT_FUNCTION = re.compile(
    r'(?:PL/pgSQL function (?P<plpgsql>[^\n]+?)(?: line \d+| while |$)'
    r'|SQL function "(?P<sql>[^"]+)"'
    r'|PL/Python function "(?P<plpython>[^"]+)"'
    r'|(?P<other>[A-Za-z/]+ function "?[^"\n]+"?))')


def raised_inside(context: str | None) -> str | None:
    """The function an error came from, when its CONTEXT shows one; None for a top-level statement.

    Errors raised by RAISE, or by a statement run inside a function or trigger, carry the
    function's frames in CONTEXT. Their statement is the outer one, so it is no evidence.
    """
    if not context or not context.strip():
        return None
    m = _CONTEXT_FUNCTION.search(context)
    if m is None:
        return context.strip().splitlines()[0][:200]
    return next(g for g in m.groups() if g).strip()[:200]


CLIENT_REPORT_WINDOW_S = 10.0  # a client reports its error within this many seconds of raising it


def pair_with_client_reports(entries: list[tuple[float, tuple]], reports: list[tuple[int, float, tuple]],
                             window: float = CLIENT_REPORT_WINDOW_S) -> tuple[set[int], list[int]]:
    """Log entries that a client integration already reported: (entry indexes, report ids).

    entries are (time, key) and reports (id, time, key), with key (sqlstate, message, user,
    database). A report matches an entry with its key reported at most `window` seconds after
    it; each report stands for one entry, the earliest first, so an error the app hit three
    times and reported three times is counted three times, never six.
    """
    waiting: dict[tuple, list[tuple[float, int]]] = {}
    for report_id, at, key in sorted(reports, key=lambda r: (r[1], r[0])):
        waiting.setdefault(key, []).append((at, report_id))
    matched, claimed = set(), []
    for index, (at, key) in sorted(enumerate(entries), key=lambda e: (e[1][0], e[0])):
        queue = waiting.get(key, [])
        while queue and queue[0][0] < at:
            queue.pop(0)  # reported before this entry was raised: it stood for an earlier one
        if queue and queue[0][0] <= at + window:
            matched.add(index)
            claimed.append(queue.pop(0)[1])
    return matched, claimed
