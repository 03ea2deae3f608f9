"""Read ERROR entries from PostgreSQL's jsonlog or csvlog files, incrementally.

Files are streamed in chunks, never read whole. The bookmark keeps, per file, its inode and
the byte offset after the last complete record read, so a half-written last line is read
next time and a line is never read twice, in whatever order files are written. Rotation
(a new file) and truncation (the same file, now shorter) are both followed.
"""

from __future__ import annotations

import csv
import io
import json
import mmap
import os
import re
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

# Small enough that a chunk's lines, their parsed entries and the errors kept from them stay in
# one core's cache until they are folded: in an outage, 1 MiB chunks made the read 1.5x the
# json.loads floor, 128 KiB chunks handed over one by one 1.2x.
CHUNK_BYTES = 1 << 17

# Logged by DROP EXTENSION selfheal: a re-created selfheal reads its database's entries after the
# last such line only, so what the dropped one handled is never repaired again.
DROP_MARKER = "selfheal: extension dropped; errors logged before this line were handled"
EXTENSIONS = {"jsonlog": ".json", "csvlog": ".csv"}

# csvlog columns in PostgreSQL 15 (see "Using CSV-Format Log Output").
_CSV_FIELDS = ("log_time", "user_name", "database_name", "process_id", "connection_from", "session_id",
               "session_line_num", "command_tag", "session_start_time", "virtual_transaction_id",
               "transaction_id", "error_severity", "sql_state_code", "message", "detail", "hint",
               "internal_query", "internal_query_pos", "context", "query", "query_pos", "location",
               "application_name", "backend_type", "leader_pid", "query_id")


class LogReadError(Exception):
    """The log cannot be read; the message says why and what to do."""


@dataclass(frozen=True)
class LogFile:
    name: str  # relative to the log directory
    inode: int
    size: int
    mtime: float


@dataclass(frozen=True)
class Position:
    inode: int
    offset: int


@dataclass(frozen=True)
class Bookmark:
    """How far each log file has been read, and since when files count as new.

    `since` is the modification time of the first file ever read: older files were written
    before selfheal looked and are left alone.
    """

    positions: dict = field(default_factory=dict)  # file name -> Position
    since: float | None = None

    def to_json(self) -> dict:
        return {"since": self.since,
                "positions": {name: [p.inode, p.offset] for name, p in sorted(self.positions.items())}}

    @classmethod
    def from_json(cls, data: dict | None) -> "Bookmark":
        if not data:
            return cls()
        return cls({name: Position(int(v[0]), int(v[1])) for name, v in data.get("positions", {}).items()},
                   data.get("since"))


class LogError(NamedTuple):
    """One ERROR entry of the log. A named tuple: an outage log yields one per line, and a tuple
    is made in one step and holds no per-object dictionary."""

    occurred_at: str
    sqlstate: str
    message: str
    hint: str | None
    statement: str | None
    user: str | None
    database: str | None
    application_name: str | None
    session_id: str | None
    context: str | None = None


@dataclass
class ReadResult:
    errors: list[LogError] = field(default_factory=list)
    bookmark: Bookmark = field(default_factory=Bookmark)  # replaced at the end of a read
    lines: int = 0
    malformed: int = 0
    bytes_read: int = 0
    more: bool = False  # stopped at the byte budget; call again
    problems: list[str] = field(default_factory=list)
    skipped: dict = field(default_factory=dict)  # reason -> records skipped for it

    def skip(self, reason: str) -> None:
        self.malformed += 1
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def problem_text(self) -> str | None:
        """Reader problems and skipped records, in one line for the summary's log.problem."""
        parts = list(self.problems) + [f"{n} record{'s' if n != 1 else ''} skipped: {reason}"
                                       for reason, n in sorted(self.skipped.items())]
        return "; ".join(parts) or None


def list_log_files(directory: str, log_format: str) -> list[LogFile]:
    """Log files of one format, oldest first (by modification time, then name)."""
    ext = EXTENSIONS[log_format]
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        raise LogReadError(f"cannot list the log directory {directory}: {exc.strerror}") from exc
    files = []
    for entry in entries:
        if entry.name.endswith(ext) and entry.is_file(follow_symlinks=False):
            st = entry.stat(follow_symlinks=False)
            files.append(LogFile(entry.name, st.st_ino, st.st_size, st.st_mtime))
    return sorted(files, key=lambda f: (f.mtime, f.name))


def plan_reads(files: list[LogFile], bookmark: Bookmark, current: str | None) -> list[tuple[LogFile, int]]:
    """Which files to read and from which offset, oldest first.

    First read: the current file from its start. Afterwards, a known file (same inode) from
    its position, or from 0 if it shrank (truncated on rotation); an unknown file, or a known
    name with a new inode, from 0 if it was written since the first read.
    """
    if bookmark.since is None:
        chosen = [f for f in files if f.name == current] or files[-1:]
        return [(f, 0) for f in chosen]
    reads = []
    for f in files:
        known = bookmark.positions.get(f.name)
        if known is not None and known.inode == f.inode:
            start = known.offset if f.size >= known.offset else 0
            if start < f.size:
                reads.append((f, start))
        elif f.mtime >= bookmark.since:
            reads.append((f, 0))
    return reads


# The fields of a LogError, in its order, as jsonlog names them.
_JSON_TEXT_FIELDS = ("timestamp", "state_code", "message", "hint", "statement", "user", "dbname",
                     "application_name", "session_id", "context")
_TEXT_OR_NONE = frozenset({str, type(None)})
_scan_json = json.JSONDecoder().scan_once  # the C scanner under json.loads, without its layers
_tuple_new = tuple.__new__


def clean_text(value: str | None, limit: int) -> str | None:
    """Text PostgreSQL can store: no NUL, no lone surrogates, at most `limit` characters."""
    if value is None:
        return None
    text = value[:limit]
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():  # a flag of the string, not a scan: plain ASCII needs no encoding check
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _csv_record(raw: bytes) -> tuple[bool, LogError | None]:
    # csv refuses a field over 128 KiB, and a statement can be longer: the limit is raised to this
    # record's size for the parse only, since it is the whole interpreter's.
    limit = csv.field_size_limit()
    try:
        if len(raw) > limit:
            csv.field_size_limit(len(raw))
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    except (csv.Error, UnicodeDecodeError):
        return False, None
    finally:
        csv.field_size_limit(limit)
    if len(rows) != 1 or len(rows[0]) < 23:
        return False, None
    entry = dict(zip(_CSV_FIELDS, rows[0]))
    if entry["error_severity"] != "ERROR" or not entry["sql_state_code"]:
        return True, None
    return True, LogError(
        occurred_at=entry["log_time"], sqlstate=entry["sql_state_code"], message=entry["message"],
        hint=entry["hint"] or None, statement=entry["query"] or None, user=entry["user_name"] or None,
        database=entry["database_name"] or None, application_name=entry["application_name"] or None,
        session_id=entry["session_id"] or None, context=entry["context"] or None,
    )


def _json_boundaries(buf: bytes) -> Iterator[int]:
    """End offsets (after the newline) of complete lines in buf."""
    start = 0
    while True:
        end = buf.find(b"\n", start)
        if end < 0:
            return
        yield end + 1
        start = end + 1


def _csv_boundaries(buf: bytes) -> Iterator[int]:
    """End offsets of complete csv records: a newline outside double quotes ends one."""
    quotes, last = 0, 0
    for end in _json_boundaries(buf):
        quotes += buf.count(b'"', last, end)  # csv escapes a quote by doubling it: parity still holds
        last = end
        if quotes % 2 == 0:
            yield end


_BOUNDARIES = {"jsonlog": _json_boundaries, "csvlog": _csv_boundaries}
_MALFORMED = "not a complete JSON or CSV record"


def _take_csv_records(buf: bytes, result: ReadResult, database: str | None, found: list) -> int:
    """Count the complete records of buf and add the errors of `database` to `found`; return
    the bytes they span."""
    consumed = 0
    for end in _csv_boundaries(buf):
        raw, consumed = buf[consumed:end].rstrip(b"\r\n"), end
        if not raw.strip():
            continue
        result.lines += 1
        ok, entry = _csv_record(raw)
        if not ok:
            result.skip(_MALFORMED)
        elif entry is not None and (database is None or entry.database == database):
            found.append(entry)
    return consumed


def _json_entry(raw: bytes, result: ReadResult) -> dict | None:
    """The parsed record of a jsonlog line off the fast path, counted; None when it is blank,
    malformed (counted as skipped) or plainly no error."""
    raw = raw.rstrip(b"\r\n")
    if not raw.strip():
        return None
    result.lines += 1
    if b'"ERROR"' not in raw and raw.startswith(b"{") and raw.endswith(b"}"):
        return None
    try:
        entry = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        entry = None
    if not isinstance(entry, dict):
        result.skip(_MALFORMED)
        return None
    return entry


def _take_json_lines(buf: bytes, result: ReadResult, database: str | None, found: list) -> int:
    """_take_csv_records for jsonlog, at little more than the cost of the JSON scan per line:
    the lines of a chunk are decoded at once, and an ordinary line goes straight to the C
    scanner; any other (not UTF-8, blank, padded, not an object) goes through _json_entry."""
    consumed = buf.rfind(b"\n") + 1
    if not consumed:
        return 0
    try:
        lines = str(memoryview(buf)[:consumed], "utf-8").split("\n")
    except UnicodeDecodeError:
        lines = buf[:consumed].split(b"\n")  # each line alone: one not UTF-8 is skipped as malformed
    lines.pop()  # what follows the last newline: nothing
    append, counted = found.append, 0
    for line in lines:
        if type(line) is bytes:
            entry = _json_entry(line, result)
        elif '"ERROR"' not in line and line[:1] == "{" and line[-1:] == "}":
            counted += 1  # most lines of a quiet log are no error: skipped without parsing
            continue
        else:
            try:
                entry, end = _scan_json(line, 0)
            except (StopIteration, ValueError, RecursionError):
                end = -1
            if end == len(line) and type(entry) is dict:
                counted += 1
            else:
                entry = _json_entry(line.encode("utf-8"), result)
        if entry is None or entry.get("error_severity") != "ERROR" or not entry.get("state_code"):
            continue
        values = tuple(map(entry.get, _JSON_TEXT_FIELDS))
        if not _TEXT_OR_NONE.issuperset(map(type, values)):
            wrong = next(name for name, value in zip(_JSON_TEXT_FIELDS, values) if type(value) not in _TEXT_OR_NONE)
            result.skip(f"field {wrong!r} is not text")
        elif database is None or values[6] == database:
            if not (values[0] and values[2]):  # occurred_at and message are text, never None
                values = (values[0] or "", values[1], values[2] or "") + values[3:]
            append(_tuple_new(LogError, values))
    result.lines += counted
    return consumed


_TAKE = {"jsonlog": _take_json_lines, "csvlog": _take_csv_records}


def _file_chunks(path: str, start: int, log_format: str, budget: int, result: ReadResult,
                 database: str | None, progress=None) -> Iterator[tuple[list[LogError], int]]:
    """(errors, offset after them) for each chunk of complete records of one file from `start`.

    Stops early once result.bytes_read reaches `budget` (result.more is set).
    """
    take = _TAKE[log_format]
    offset = start
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            pending = b""
            while True:
                # A record longer than a chunk (a huge statement) is read on with as much again as
                # is pending, so it costs its length, not its length squared over the chunk size.
                chunk = fh.read(max(CHUNK_BYTES, len(pending)))
                if not chunk:
                    break
                buf = pending + chunk
                found: list[LogError] = []
                consumed = take(buf, result, database, found)
                pending = buf[consumed:]
                offset += consumed
                result.bytes_read += consumed
                if progress is not None:
                    progress(consumed)
                yield found, offset
                if result.bytes_read >= budget:
                    result.more = True
                    break
    except FileNotFoundError:
        result.problems.append(f"{os.path.basename(path)} disappeared while being read (rotated away)")
    except PermissionError:
        raise LogReadError(f"permission denied reading {path}: the server's OS user must be able to read its "
                           "own log files (check log_file_mode)")
    except OSError as exc:
        raise LogReadError(f"cannot read {path}: {exc.strerror}") from exc


def _marker_fields(raw: bytes, log_format: str) -> tuple[str, str, str] | None:
    """(message, database, user) of a LOG record, or None."""
    try:
        if log_format == "jsonlog":
            entry = json.loads(raw)
            fields = (entry.get("error_severity"), entry.get("message"), entry.get("dbname"), entry.get("user"))
        else:
            row = next(csv.reader(io.StringIO(raw.decode("utf-8"))))
            entry = dict(zip(_CSV_FIELDS, row))
            fields = (entry["error_severity"], entry["message"], entry["database_name"], entry["user_name"])
    except (ValueError, UnicodeDecodeError, csv.Error, StopIteration, KeyError, AttributeError):
        return None
    return fields[1:] if fields[0] == "LOG" else None


def _quotes_before(data, end: int) -> int:
    return sum(data[i:min(i + CHUNK_BYTES, end)].count(b'"') for i in range(0, end, CHUNK_BYTES))


def after_last_drop(path: str, log_format: str, database: str | None, trusted_users: frozenset) -> int:
    """The offset just after the last DROP_MARKER that a trusted role (a superuser: only the
    extension's owner can drop it) logged for this database; 0 when there is none. Searched
    backwards through the mapped file, so a long log costs a byte search, not a parse."""
    needle = DROP_MARKER.encode()
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            end = len(data)
            while (hit := data.rfind(needle, 0, end)) >= 0:
                start = data.rfind(b"\n", 0, hit) + 1  # the message sits on its record's first line
                # In csvlog a line inside a quoted field (a role's statement text) could pose as a
                # record: a real record starts after an even number of quotes.
                genuine = log_format == "jsonlog" or _quotes_before(data, start) % 2 == 0
                stop = genuine and next(_BOUNDARIES[log_format](data[start:start + CHUNK_BYTES]), None)
                fields = stop and _marker_fields(data[start:start + stop].rstrip(b"\r\n"), log_format)
                if fields and fields[0] == DROP_MARKER and fields[1] == database and fields[2] in trusted_users:
                    return start + stop
                end = start
    except (OSError, ValueError):  # ValueError: an empty file cannot be mapped
        pass
    return 0


def iter_new_errors(directory: str, log_format: str, bookmark: Bookmark, current: str | None,
                    result: ReadResult, budget: int = 64 << 20, database: str | None = None,
                    trusted_users: frozenset = frozenset(), batch: int = 1) -> Iterator[list[LogError]]:
    """read_new_errors, handing the errors over in lists of at least `batch` (by default each
    chunk's, as soon as it is read) instead of keeping them all, so memory is that of one batch
    whatever the budget and the file. Once the iterator is exhausted, `result` holds the counts,
    the problems and the bookmark to store (its errors stay empty); a reader that stops early
    must store nothing."""
    if log_format not in EXTENSIONS:
        raise LogReadError(f"log format {log_format!r} is not one selfheal reads (jsonlog, csvlog)")
    files = list_log_files(directory, log_format)
    reads = plan_reads(files, bookmark, current)
    if bookmark.since is None:
        reads = [(f, after_last_drop(os.path.join(directory, f.name), log_format, database, trusted_users))
                 for f, _ in reads]
    since = bookmark.since if bookmark.since is not None else min((f.mtime for f, _ in reads), default=None)
    present = {f.name for f in files}
    positions = {name: p for name, p in bookmark.positions.items() if name in present}
    waiting: list[LogError] = []
    for log_file, start in reads:
        end = start
        for found, end in _file_chunks(os.path.join(directory, log_file.name), start, log_format, budget, result,
                                       database):
            waiting += found
            if len(waiting) >= batch:
                yield waiting
                waiting = []
        positions[log_file.name] = Position(log_file.inode, end)
        if result.more:
            break
    if waiting:
        yield waiting
    result.bookmark = Bookmark(positions, since)


def read_new_errors(directory: str, log_format: str, bookmark: Bookmark, current: str | None,
                    budget: int = 64 << 20, database: str | None = None,
                    trusted_users: frozenset = frozenset()) -> ReadResult:
    """Every ERROR entry written since the bookmark, and the bookmark to store afterwards.

    The first read starts after the last time selfheal was dropped from this database."""
    result = ReadResult()
    for found in iter_new_errors(directory, log_format, bookmark, current, result, budget, database, trusted_users):
        result.errors += found
    return result


class Repeat(NamedTuple):
    """One error and how often the log wrote it again within the same second: its first entry,
    the number of entries, and the time of the last."""

    first: LogError
    occurrences: int
    last_occurred_at: str


def fold_repeats(errors: list[LogError], repeats: dict) -> None:
    """Count each error into `repeats` (key -> [first entry, occurrences, last time]). Entries are
    the same error again when all but their session is the same, within one second (the time to
    the second, and its zone), with the statement's constants folded (statement_key). An outage
    writes the same few errors thousands of times a second, with other values inlined; one row
    per line would cost five times the reading. Entries are read by position: this runs for
    every line of an outage."""
    get, statement_key_of = repeats.get, statement_key
    for entry in errors:
        at = entry[0]
        key = (at[:19], at[at.rfind(" "):], statement_key_of(entry[4]), entry[1], entry[2], entry[3], entry[5],
               entry[6], entry[7], entry[9])
        held = get(key)
        if held is None:
            repeats[key] = [entry, 1, at]
        else:
            held[1] += 1
            held[2] = at


# Byte classes for _folded: a name's character (ASCII letter, _, ", $ or any byte of a
# multibyte character), a digit, or anything else.
_NAME_OR_DIGIT = bytes(ord("a") if chr(i).isascii() and (chr(i).isalpha() or chr(i) in '_"$') or i >= 128
                       else ord("0") if chr(i) in "0123456789" else ord(" ") for i in range(256))
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_STRING_CONSTANT = re.compile(rb"'[^']*'")


def statement_key(statement: str | None):
    """The statement with the constants that cannot change its meaning folded: a string constant
    becomes '' (where no quoted name, escape, dollar quote or comment could make a quote mean
    something else), and each run of digits 0 (where no digit is part of a name, like t1 or $1,
    and no number has 10 digits or more, which may be a bigint or a numeric: a shorter one is an
    integer, so its type is kept). Folded only as far as that is certain; otherwise the whole
    text. What decides depends on where digits are, never on their values, so it is worked out
    once per statement with its digits zeroed, which the same query with other numbers shares."""
    if statement is None:
        return None
    raw = statement.encode("utf-8", "surrogatepass")
    zeroed = raw.translate(_DIGITS_TO_ZERO)
    try:
        folded = _folded_statements[zeroed]
    except KeyError:
        if len(_folded_statements) >= _FOLDED_STATEMENTS_HELD:
            _folded_statements.clear()
        folded = _folded_statements[zeroed] = _folded(zeroed)
    return raw if folded is None else folded


def _folded(zeroed: bytes) -> bytes | None:
    """statement_key of a statement whose digits are all 0; None where it keeps its own text."""
    if b"'" in zeroed and not (b'"' in zeroed or b"\\" in zeroed or b"$" in zeroed or b"--" in zeroed
                               or b"/*" in zeroed):
        zeroed = _STRING_CONSTANT.sub(b"''", zeroed)
    classes = zeroed.translate(_NAME_OR_DIGIT)
    if b"a0" in classes or b"0000000000" in classes:
        return None
    while b"00" in zeroed:  # a run of up to 9 digits is an integer, whatever its length
        zeroed = zeroed.replace(b"00", b"0")
    return zeroed


_folded_statements: dict[bytes, bytes | None] = {}
_FOLDED_STATEMENTS_HELD = 20000


@dataclass(frozen=True)
class Advice:
    setting: str
    current: str
    wanted: str
    needs_restart: bool

    @property
    def statement(self) -> str:
        return f"ALTER SYSTEM SET {self.setting} = '{self.wanted}'"


def preferred_format(log_destination: str) -> str | None:
    """The format heal() reads: jsonlog when the server writes it, else csvlog."""
    destinations = {d.strip() for d in (log_destination or "").split(",")}
    return next((f for f in ("jsonlog", "csvlog") if f in destinations), None)


def logging_advice(settings: dict[str, str]) -> list[Advice]:
    """Settings to change so heal() can read errors from the log; empty when all is set."""
    advice = []
    if settings.get("logging_collector") != "on":
        advice.append(Advice("logging_collector", settings.get("logging_collector", ""), "on", True))
    destination = settings.get("log_destination", "")
    if preferred_format(destination) is None:
        wanted = ",".join([d for d in destination.split(",") if d.strip()] + ["jsonlog"])
        advice.append(Advice("log_destination", destination, wanted, False))
    if settings.get("lc_messages") not in ("C", "POSIX") and not (settings.get("lc_messages") or "").startswith("en"):
        advice.append(Advice("lc_messages", settings.get("lc_messages", ""), "C", False))
    order = ["debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error", "log",
             "fatal", "panic"]
    level = settings.get("log_min_error_statement", "error")
    if level in order and order.index(level) > order.index("error"):
        advice.append(Advice("log_min_error_statement", level, "error", False))
    return advice


_STDERR_ENTRY = re.compile(r"(?P<level>ERROR|HINT|STATEMENT|DETAIL|LOG|WARNING|FATAL|PANIC|NOTICE|CONTEXT):\s+"
                           r"(?:(?P<state>[0-9A-Z]{5}):\s+)?(?P<text>.*)$")
_USER_IN_PREFIX = re.compile(r"\b(?:user=|)(?P<user>[A-Za-z_][\w$]*)@(?P<db>[A-Za-z_][\w$]*)\b")


def _state_from_message(message: str) -> str:
    """stderr lines carry no SQLSTATE unless log_error_verbosity or the prefix adds it."""
    if re.match(r"^column .+ does not exist$", message):
        return "42703"
    if re.match(r"^relation .+ does not exist$", message):
        return "42P01"
    return ""


def parse_stderr(lines) -> Iterator[LogError]:
    """ERROR entries of a plain stderr log, with the HINT and STATEMENT lines that follow them."""
    current: dict | None = None
    field_name = None
    for raw in lines:
        line = raw.rstrip("\n")
        if current is not None and field_name and line[:1] == "\t":  # a continued multi-line field
            current[field_name] += "\n" + line[1:]
            continue
        m = _STDERR_ENTRY.search(line)
        if not m:
            continue
        level, text = m.group("level"), m.group("text")
        if level == "ERROR":
            text = re.sub(r" at character \d+$", "", text)  # the cursor position stderr appends
            if current:
                yield _stderr_error(current)
            prefix = line[:m.start()]
            who = _USER_IN_PREFIX.search(prefix)
            current = {"message": text, "state": m.group("state") or _state_from_message(text), "hint": None,
                       "statement": None, "user": who.group("user") if who else None,
                       "database": who.group("db") if who else None}
            field_name = "message"
        elif current is not None and level in ("HINT", "STATEMENT"):
            field_name = level.lower()
            current[field_name] = text
        elif current is not None and level not in ("DETAIL", "CONTEXT"):
            yield _stderr_error(current)
            current, field_name = None, None
    if current:
        yield _stderr_error(current)


def _stderr_error(entry: dict) -> LogError:
    return LogError(occurred_at="", sqlstate=entry["state"], message=entry["message"], hint=entry["hint"],
                    statement=entry["statement"], user=entry["user"], database=entry["database"],
                    application_name=None, session_id=None)


def iter_whole_log(path: str, progress=None) -> Iterator[LogError]:
    """Every ERROR entry of one log file in any of PostgreSQL's formats (for `selfheal emergency`),
    as it is read: memory stays one chunk's, whatever the file. progress, if given, is called
    with the bytes of each chunk read."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise LogReadError(f"cannot read {path}: {exc.strerror}") from exc
    first = head.lstrip()[:1]
    if first == b"{":
        log_format = "jsonlog"
    elif re.match(rb"^\d{4}-\d\d-\d\d [\d:.]+ [A-Za-z+\-0-9]*,", head):
        log_format = "csvlog"
    else:
        with open(path, encoding="utf-8", errors="replace") as fh:
            yield from parse_stderr(fh)
        return
    for found, _ in _file_chunks(path, 0, log_format, 1 << 62, ReadResult(), None, progress):
        yield from found
