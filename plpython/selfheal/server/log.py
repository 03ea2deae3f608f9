"""Reading the server log into error_event: the bookmark, repeats folded, client reports not
counted twice; and the logging advice."""

from __future__ import annotations

import gc
import json
import os

from ..core import errors, logreader
from .adapter import _Db
from .events import _event_values, _store_rows


# Repeats of the log's errors held while a read goes on, before they are stored: memory stays
# that of this many distinct errors, whatever the log.
REPEATS_HELD = 5000

# Whether client reports wait is asked again after this many errors read: a report that commits
# while the log is read is matched from then on.
REPORTS_ASKED_EVERY = 5000


def _client_reports_waiting(db: _Db) -> bool:
    """Asked again as the read goes on (a report may commit meanwhile); most of the time none
    wait, and matching costs more than reading a line."""
    return db.one("SELECT EXISTS (SELECT 1 FROM selfheal.error_event WHERE source = 'client' AND NOT seen_in_log) "
                  "AS waiting")["waiting"]


def _not_reported_by_clients(db: _Db, entries: list[logreader.LogError]) -> list[logreader.LogError]:
    """The log's entries that no client integration reported already; the reports they match
    are marked seen_in_log, so one error is one event however it arrived."""
    rows = [_event_values(e) for e in entries]
    timed = [(i, v) for i, v in enumerate(rows) if v[0] is not None]
    if not timed:
        return entries
    try:
        with db.plpy.subtransaction():
            times = [r["t"] for r in db.rows(
                "SELECT extract(epoch FROM x::timestamptz)::float8 AS t FROM unnest($1::text[]) WITH ORDINALITY "
                "AS u(x, n) ORDER BY n", ("text[]",), ([v[0] for _, v in timed],))]
    except db.plpy.SPIError:
        return entries  # an odd time zone: store them all rather than guess
    reports = db.rows("""SELECT id, extract(epoch FROM received_at)::float8 AS t, sqlstate, message,
                                username::text AS username, database_name::text AS database_name
                           FROM selfheal.error_event
                          WHERE source = 'client' AND NOT seen_in_log
                            AND received_at BETWEEN pg_catalog.to_timestamp($1) AND pg_catalog.to_timestamp($2)""",
                      ("float8", "float8"), (min(times), max(times) + errors.CLIENT_REPORT_WINDOW_S))
    if not reports:
        return entries
    keyed = [(t, (v[1], v[2], v[5], v[6])) for t, (_, v) in zip(times, timed)]
    matched, claimed = errors.pair_with_client_reports(
        keyed, [(r["id"], r["t"], (r["sqlstate"], r["message"], r["username"], r["database_name"])) for r in reports])
    db.one("UPDATE selfheal.error_event SET seen_in_log = true WHERE id = ANY ($1)", ("int8[]",), (claimed,))
    skip = {timed[i][0] for i in matched}
    return [e for i, e in enumerate(entries) if i not in skip]


_LOG_SETTINGS = ["logging_collector", "log_destination", "log_directory", "data_directory", "lc_messages",
                 "log_min_error_statement"]


def _server_settings(db: _Db) -> dict[str, str]:
    return {r["name"]: r["setting"] for r in db.rows(
        "SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY ($1)", ("text[]",), (_LOG_SETTINGS,))}


def read_log(db: _Db, settings: dict) -> dict:
    """Record the ERROR entries of this database written to the server log since the last read."""
    server = _server_settings(db)
    log_format = logreader.preferred_format(server.get("log_destination", ""))
    if server.get("logging_collector") != "on" or log_format is None:
        return {"problem": "the server writes no jsonlog or csvlog file; see SELECT * FROM selfheal.logging_advice()"}
    mark = db.one("SELECT positions::text AS positions, since FROM selfheal.log_bookmark WHERE log_format = $1 "
                  "FOR UPDATE SKIP LOCKED", ("text",), (log_format,))
    if mark is None:
        return {"format": log_format, "skipped": "another heal() is reading the log"}
    directory = os.path.join(server["data_directory"], server["log_directory"])
    current = db.one("SELECT pg_catalog.pg_current_logfile($1) AS f", ("text",), (log_format,))["f"]
    bookmark = logreader.Bookmark.from_json({"positions": json.loads(mark["positions"]), "since": mark["since"]})
    budget = int(float(settings.get("log_read_max_mb", "64")) * (1 << 20))
    result = logreader.ReadResult()
    already_reported = errors_read = stored = 0
    repeats: dict = {}

    def store_repeats() -> int:
        rows = [_event_values(first, occurrences, last) for first, occurrences, last in repeats.values()]
        repeats.clear()
        return len(_store_rows(db, "log", rows, result.problems))

    def fold(entries: list) -> None:
        nonlocal stored
        logreader.fold_repeats(entries, repeats)
        if len(repeats) >= REPEATS_HELD:
            stored += store_repeats()

    held: list = []  # errors read while client reports wait, matched with them in one go

    def fold_held() -> None:
        nonlocal already_reported
        unreported = _not_reported_by_clients(db, held)
        already_reported += len(held) - len(unreported)
        fold(unreported)
        held.clear()

    # A dict per line and no cycles: the cyclic collector would only walk the held repeats again
    # and again, a few percent of an outage's read.
    collecting = gc.isenabled()
    gc.disable()
    try:
        # Repeats of one error within a second are one row with their count, stored as the read
        # goes on, so memory is that of REPEATS_HELD errors whatever the file. All or nothing: a
        # read that fails half-way must not keep rows its bookmark does not cover.
        with db.plpy.subtransaction():
            # Each chunk's errors are folded at once, while they are in the processor's cache; only
            # while client reports wait are they held and matched with them REPORTS_ASKED_EVERY at a time.
            reports_waiting, reports_asked_at = _client_reports_waiting(db), REPORTS_ASKED_EVERY
            for found in logreader.iter_new_errors(
                    directory, log_format, bookmark, current and os.path.basename(current), result, budget,
                    db.one("SELECT current_database() AS d")["d"],
                    frozenset(r["rolname"] for r in db.rows("SELECT rolname FROM pg_catalog.pg_roles WHERE rolsuper"))):
                errors_read += len(found)
                if reports_waiting:
                    held += found
                else:
                    fold(found)
                if errors_read >= reports_asked_at:
                    if held:
                        fold_held()
                    reports_waiting, reports_asked_at = _client_reports_waiting(db), errors_read + REPORTS_ASKED_EVERY
            if held:
                fold_held()
            stored += store_repeats()
    except logreader.LogReadError as exc:
        db.one("UPDATE selfheal.log_bookmark SET last_problem = $2, updated_at = now() WHERE log_format = $1",
               ("text", "text"), (log_format, str(exc)))
        return {"format": log_format, "problem": str(exc)}
    finally:
        if collecting:
            gc.enable()
    saved = result.bookmark.to_json()
    db.one("""UPDATE selfheal.log_bookmark
                 SET positions = $2::jsonb, since = $3, updated_at = now(), lines_read = lines_read + $4,
                     errors_read = errors_read + $5, malformed = malformed + $6, last_problem = $7
               WHERE log_format = $1""",
           ("text", "text", "float8", "int8", "int8", "int8", "text"),
           (log_format, json.dumps(saved["positions"]), saved["since"], result.lines, errors_read,
            result.malformed, result.problem_text()))
    summary = {"format": log_format, "lines": result.lines, "errors": errors_read, "events": stored,
               "more": result.more}
    if already_reported:
        summary["already_reported"] = already_reported
    if result.malformed:
        summary["malformed"] = result.malformed
    if result.problem_text():
        summary["problem"] = result.problem_text()
    return summary


def logging_advice(plpy) -> list[dict]:
    return [{"setting": a.setting, "current_value": a.current, "wanted": a.wanted,
             "needs_restart": a.needs_restart, "statement": a.statement}
            for a in logreader.logging_advice(_server_settings(_Db(plpy)))]


def configure_logging(plpy) -> list[str]:
    advice = logreader.logging_advice(_server_settings(_Db(plpy)))
    if not advice:
        return []
    statements = [a.statement for a in advice] + ["SELECT pg_catalog.pg_reload_conf()"]
    if any(a.needs_restart for a in advice):
        plpy.notice("selfheal: " + ", ".join(a.setting for a in advice if a.needs_restart)
                    + " takes effect only after a server restart")
    return statements
