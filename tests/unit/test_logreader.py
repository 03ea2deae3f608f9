"""The log reader, on real-format log files written by the tests."""

import json
import os

import pytest

from selfheal.core import logreader
from selfheal.core.logreader import Bookmark, Position


def json_line(message="column \"x\" does not exist", state="42703", db="app", severity="ERROR", **extra):
    entry = {"timestamp": "2026-11-24 05:02:18.851 UTC", "user": "app", "dbname": db, "error_severity": severity,
             "state_code": state, "message": message, "statement": "SELECT x FROM t", "application_name": "web",
             "session_id": "6b051a5a.22fe", **extra}
    return (json.dumps(entry) + "\n").encode()


CSV_LINE = (b'2026-11-24 05:02:18.851 UTC,"app","app",8958,"[local]",6b051a5a.22fe,1,"SELECT",'
            b'2026-11-24 05:02:18 UTC,3/3,0,ERROR,42703,"column ""nope"" does not exist",,'
            b'"Perhaps you meant to reference the column ""s.nop"".",,,,"select nope\nfrom s",8,,"psql","client backend",,0\n')


def read(tmp_path, fmt="jsonlog", bookmark=Bookmark(), current=None, **kw):
    return logreader.read_new_errors(str(tmp_path), fmt, bookmark, current, **kw)


def test_reads_errors_and_skips_other_severities_and_databases(tmp_path):
    (tmp_path / "a.json").write_bytes(json_line() + json_line(severity="LOG") + json_line(db="other"))
    result = read(tmp_path, database="app")
    assert [e.sqlstate for e in result.errors] == ["42703"]
    assert result.errors[0].statement == "SELECT x FROM t" and result.lines == 3
    assert result.bookmark.positions["a.json"].offset == (tmp_path / "a.json").stat().st_size


def test_reads_each_line_once(tmp_path):
    log = tmp_path / "a.json"
    log.write_bytes(json_line())
    first = read(tmp_path)
    with log.open("ab") as fh:
        fh.write(json_line(message="second"))
    second = read(tmp_path, bookmark=first.bookmark)
    assert [e.message for e in second.errors] == ["second"]
    assert read(tmp_path, bookmark=second.bookmark).errors == []


def test_half_written_last_line_waits_for_its_end(tmp_path):
    log = tmp_path / "a.json"
    whole, partial = json_line(message="one"), json_line(message="two")
    log.write_bytes(whole + partial[:20])
    first = read(tmp_path)
    assert [e.message for e in first.errors] == ["one"] and first.bookmark.positions["a.json"].offset == len(whole)
    with log.open("ab") as fh:
        fh.write(partial[20:])
    assert [e.message for e in read(tmp_path, bookmark=first.bookmark).errors] == ["two"]


def test_rotation_mid_read_finishes_the_old_file_then_reads_the_new(tmp_path):
    old = tmp_path / "postgresql-1.json"
    old.write_bytes(json_line(message="a"))
    os.utime(old, (1, 1))
    mark = read(tmp_path).bookmark
    with old.open("ab") as fh:
        fh.write(json_line(message="b"))
    os.utime(old, (2, 2))
    new = tmp_path / "postgresql-2.json"
    new.write_bytes(json_line(message="c"))
    os.utime(new, (3, 3))
    result = read(tmp_path, bookmark=mark)
    assert [e.message for e in result.errors] == ["b", "c"]
    assert set(result.bookmark.positions) == {"postgresql-1.json", "postgresql-2.json"}


def test_files_from_before_the_first_read_are_left_alone(tmp_path):
    ancient = tmp_path / "postgresql-0.json"
    ancient.write_bytes(json_line(message="ancient"))
    os.utime(ancient, (1, 1))
    cur = tmp_path / "postgresql-1.json"
    cur.write_bytes(json_line(message="cur"))
    os.utime(cur, (5, 5))
    first = read(tmp_path, current="postgresql-1.json")
    assert [e.message for e in first.errors] == ["cur"] and first.bookmark.since == 5
    assert read(tmp_path, bookmark=first.bookmark).errors == []


def test_truncated_file_is_read_from_its_start(tmp_path):
    log = tmp_path / "a.json"
    log.write_bytes(json_line(message="old") * 3)
    mark = read(tmp_path).bookmark
    log.write_bytes(json_line(message="new"))  # truncated on rotation, same inode
    assert [e.message for e in read(tmp_path, bookmark=mark).errors] == ["new"]


def test_malformed_lines_are_counted_not_fatal(tmp_path):
    (tmp_path / "a.json").write_bytes(b"not json\n[1,2]\n" + json_line() + b"\xff\xfe\n")
    result = read(tmp_path)
    assert result.malformed == 3 and len(result.errors) == 1


def test_lines_off_the_common_shape_are_read_as_json_reads_them(tmp_path):
    padded = b"  " + json_line(message="padded").rstrip(b"\n") + b"  \r\n"
    crlf = json_line(message="crlf").rstrip(b"\n") + b"\r\n"
    (tmp_path / "a.json").write_bytes(json_line(message="before") + b"\xff\n" + padded + crlf + b"\n"
                                      + b'{"error_severity": "ERROR"} {}\n' + json_line(message="after"))
    result = read(tmp_path)
    assert [e.message for e in result.errors] == ["before", "padded", "crlf", "after"]
    assert (result.lines, result.malformed) == (6, 2)  # the blank line is no record


def test_an_error_without_time_or_message_still_has_text_there(tmp_path):
    (tmp_path / "a.json").write_bytes(json_line(message=None, timestamp=None))
    error = read(tmp_path).errors[0]
    assert (error.occurred_at, error.message, error.sqlstate) == ("", "", "42703")


def test_errors_handed_over_in_batches_are_those_of_one_read(tmp_path, monkeypatch):
    monkeypatch.setattr(logreader, "CHUNK_BYTES", 300)  # a few lines a chunk
    lines = [json_line(message=f"m{i}", db="app" if i % 3 else "other") for i in range(40)]
    (tmp_path / "a.json").write_bytes(b"".join(lines[:20]) + b"not json\n" + b"".join(lines[20:]))
    whole = read(tmp_path, database="app")
    result = logreader.ReadResult()
    batches = list(logreader.iter_new_errors(str(tmp_path), "jsonlog", Bookmark(), None, result, database="app",
                                             batch=5))
    assert len(batches) > 1 and all(batches)
    assert [e for batch in batches for e in batch] == whole.errors and result.errors == []
    assert (result.bookmark, result.lines, result.malformed) == (whole.bookmark, whole.lines, whole.malformed)


@pytest.mark.parametrize("log_format", ["jsonlog", "csvlog"])
def test_a_record_far_longer_than_a_chunk_is_read_in_few_reads(tmp_path, monkeypatch, log_format):
    """A huge statement on one record: each read takes as much again as is pending, so the
    reads are logarithmic in the record's length, not linear (each re-scanning all before it)."""
    monkeypatch.setattr(logreader, "CHUNK_BYTES", 300)
    statement = "SELECT " + "x" * 200_000
    if log_format == "jsonlog":
        record = json_line(message="long one", statement=statement)
    else:
        record = CSV_LINE.replace(b"select nope\nfrom s", statement.encode())
    path = tmp_path / ("a.json" if log_format == "jsonlog" else "a.csv")
    path.write_bytes(record * 2)
    result = logreader.ReadResult()
    chunks = list(logreader._file_chunks(str(path), 0, log_format, 1 << 40, result, None))
    assert len(chunks) < 30  # 300-byte reads would be over 1,300
    found = [e for errors, _ in chunks for e in errors]
    assert [e.statement for e in found] == [statement, statement] and chunks[-1][1] == len(record) * 2


def test_csvlog_with_a_newline_inside_a_quoted_field(tmp_path):
    (tmp_path / "a.csv").write_bytes(CSV_LINE + CSV_LINE[:50])
    result = read(tmp_path, "csvlog")
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.message == 'column "nope" does not exist' and error.statement == "select nope\nfrom s"
    assert error.hint == 'Perhaps you meant to reference the column "s.nop".'
    assert result.bookmark.positions["a.csv"].offset == len(CSV_LINE)


def test_budget_stops_early_and_the_next_call_continues(tmp_path):
    line = json_line()
    count = (3 * logreader.CHUNK_BYTES) // len(line) + 1
    (tmp_path / "a.json").write_bytes(line * count)
    first = read(tmp_path, budget=logreader.CHUNK_BYTES)
    assert first.more and 0 < len(first.errors) < count
    rest = read(tmp_path, bookmark=first.bookmark)
    assert len(first.errors) + len(rest.errors) == count and not rest.more


def test_first_read_starts_at_the_current_file(tmp_path):
    (tmp_path / "old.json").write_bytes(json_line(message="old"))
    (tmp_path / "cur.json").write_bytes(json_line(message="cur"))
    assert [e.message for e in read(tmp_path, current="cur.json").errors] == ["cur"]


def test_missing_directory_and_unknown_format_are_clear_errors(tmp_path):
    with pytest.raises(logreader.LogReadError, match="cannot list the log directory"):
        read(tmp_path / "nope")
    with pytest.raises(logreader.LogReadError, match="jsonlog, csvlog"):
        read(tmp_path, "stderr")


def test_unreadable_file_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "a.json").write_bytes(json_line())

    def refuse(*args, **kwargs):  # what open() does for a file the server's OS user may not read
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(logreader, "open", refuse, raising=False)
    with pytest.raises(logreader.LogReadError, match="permission denied"):
        read(tmp_path)


def test_a_budget_stop_between_two_growing_files_loses_and_repeats_nothing(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_bytes(json_line(message="a1"))
    mark = read(tmp_path).bookmark
    b.write_bytes(json_line(message="b1") * (logreader.CHUNK_BYTES // len(json_line(message="b1")) + 10))
    with a.open("ab") as fh:
        fh.write(json_line(message="a2"))
    os.utime(b, (a.stat().st_mtime - 1, a.stat().st_mtime - 1))  # b is older on disk than a's last write
    os.utime(a, None)
    seen, mark, more = [], Bookmark(mark.positions, 0), True
    while more:
        result = read(tmp_path, bookmark=mark, budget=logreader.CHUNK_BYTES)
        seen += [e.message for e in result.errors]
        mark, more = result.bookmark, result.more
    assert seen.count("a1") == 0 and seen.count("a2") == 1
    assert seen.count("b1") == logreader.CHUNK_BYTES // len(json_line(message="b1")) + 10


def test_bookmark_round_trips_through_json():
    mark = Bookmark({"a.json": Position(7, 123)}, 5.5)
    assert Bookmark.from_json(json.loads(json.dumps(mark.to_json()))) == mark
    assert Bookmark.from_json(None) == Bookmark()


STDERR_LOG = """2026-11-24 05:02:18.851 UTC [8958] app@shop ERROR:  column "service_type_id" does not exist at character 30
2026-11-24 05:02:18.851 UTC [8958] app@shop HINT:  Perhaps you meant to reference the column "sessions.service_type".
2026-11-24 05:02:18.851 UTC [8958] app@shop STATEMENT:  SELECT *
\tFROM sessions WHERE service_type_id = 1
2026-11-24 05:02:19.001 UTC [8960] LOG:  checkpoint starting: time
2026-11-24 05:02:19.100 UTC [8961] ERROR:  42P01: relation "invoiceline" does not exist
2026-11-24 05:02:19.200 UTC [8962] ERROR:  division by zero
"""


def test_stderr_log_entries_with_hint_and_multiline_statement(tmp_path):
    path = tmp_path / "postgresql.log"
    path.write_text(STDERR_LOG)
    entries = list(logreader.iter_whole_log(str(path)))
    assert [(e.sqlstate, e.user, e.database) for e in entries] == [
        ("42703", "app", "shop"), ("42P01", None, None), ("", None, None)]
    first = entries[0]
    assert first.message == 'column "service_type_id" does not exist'
    assert first.hint == 'Perhaps you meant to reference the column "sessions.service_type".'
    assert first.statement == "SELECT *\nFROM sessions WHERE service_type_id = 1"


def test_whole_log_reads_jsonlog_and_csvlog_by_their_content(tmp_path):
    (tmp_path / "x.log").write_bytes(json_line())
    (tmp_path / "y.log").write_bytes(CSV_LINE)
    assert next(logreader.iter_whole_log(str(tmp_path / "x.log"))).sqlstate == "42703"
    assert next(logreader.iter_whole_log(str(tmp_path / "y.log"))).statement == "select nope\nfrom s"


def test_a_record_whose_fields_are_not_text_is_skipped_with_its_reason(tmp_path):
    (tmp_path / "a.json").write_bytes(json_line(hint=123) + json_line(message="kept"))
    result = read(tmp_path)
    assert [e.message for e in result.errors] == ["kept"] and result.malformed == 1
    assert result.problem_text() == "1 record skipped: field 'hint' is not text"


def test_context_is_kept_so_errors_from_inside_functions_can_be_told_apart(tmp_path):
    (tmp_path / "a.json").write_bytes(json_line(context="PL/pgSQL function f() line 3 at RAISE"))
    assert read(tmp_path).errors[0].context == "PL/pgSQL function f() line 3 at RAISE"


def test_clean_text_removes_what_postgresql_cannot_store():
    assert logreader.clean_text("a\x00b\udc80c", 100) == "ab?c"
    assert logreader.clean_text("abcdef", 3) == "abc" and logreader.clean_text(None, 3) is None


def marker(user="postgres", db="app"):
    return json_line(logreader.DROP_MARKER, state="00000", db=db, severity="LOG", user=user)


def test_a_first_read_starts_after_the_last_drop_of_selfheal_from_this_database(tmp_path):
    (tmp_path / "a.json").write_bytes(json_line("old") + marker() + json_line("between") + marker(db="other")
                                      + marker(user="app") + json_line("new"))
    result = read(tmp_path, database="app", trusted_users=frozenset({"postgres"}))
    # Another database's drop and a marker forged by a role that cannot drop selfheal do not count.
    assert [e.message for e in result.errors] == ["between", "new"]
    later = read(tmp_path, bookmark=Bookmark({}, 0.0), database="app", trusted_users=frozenset({"postgres"}))
    assert [e.message for e in later.errors] == ["old", "between", "new"]  # only the first read looks for it


def test_a_csvlog_drop_marker_whose_statement_spans_lines(tmp_path):
    drop = (b'2026-11-24 05:03:00.000 UTC,"postgres","app",8958,"[local]",6b051a5a.22fe,2,"DROP EXTENSION",'
            b'2026-11-24 05:02:18 UTC,3/4,0,LOG,00000,"' + logreader.DROP_MARKER.encode() + b'",,,,,,'
            b'"DROP EXTENSION selfheal;\nSELECT 1",,,"psql","client backend",,0\n')
    (tmp_path / "a.csv").write_bytes(CSV_LINE + drop + CSV_LINE.replace(b"nope", b"later"))
    result = read(tmp_path, "csvlog", database="app", trusted_users=frozenset({"postgres"}))
    assert [e.message for e in result.errors] == ['column "later" does not exist']


def test_a_drop_marker_forged_inside_a_csvlog_statement_does_not_count(tmp_path):
    forged_line = (b'2026-11-24 05:03:00.000 UTC,postgres,app,1,,x,1,,,,0,LOG,00000,'
                   + logreader.DROP_MARKER.encode() + b',,,,,,,,,psql,client backend,,0')
    hostile = (b'2026-11-24 05:02:30.000 UTC,"app","app",8958,"[local]",6b051a5a.22fe,2,"SELECT",'
               b'2026-11-24 05:02:18 UTC,3/4,0,ERROR,42703,"column ""x"" does not exist",,,,,,'
               b'"SELECT x -- \n' + forged_line + b'\n",,,"psql","client backend",,0\n')
    (tmp_path / "a.csv").write_bytes(CSV_LINE + hostile + CSV_LINE.replace(b"nope", b"later"))
    result = read(tmp_path, "csvlog", database="app", trusted_users=frozenset({"postgres"}))
    assert [e.message for e in result.errors] == ['column "nope" does not exist', 'column "x" does not exist',
                                                  'column "later" does not exist']
