"""Where SQL is found in source files, and where each character of it came from."""

from selfheal.cli import scan
from selfheal.cli.offsets import OffsetMap


def test_python_adjacent_literals_and_fstrings_keep_exact_offsets():
    source = 'q = ("SELECT a, "\n     "b FROM t")\nf = f"SELECT {x} FROM t WHERE c = 1"\n'
    first, second = scan.python_snippets("m.py", source)
    assert first.sql == "SELECT a, b FROM t"
    assert source[first.offsets[first.sql.index("b FROM")]] == "b"
    assert second.sql == "SELECT $1 FROM t WHERE c = 1"
    assert source[second.offsets[second.sql.index("c = 1")]] == "c"


def test_escapes_and_non_ascii_lines_do_not_shift_positions():
    source = 'note = "ünïcode"; q = "SELECT \\"Name\\" FROM t"\n'
    (snippet,) = scan.python_snippets("m.py", source)
    assert snippet.sql == 'SELECT "Name" FROM t'
    assert source[snippet.offsets[snippet.sql.index("FROM")]:].startswith("FROM")


def test_js_template_placeholders_and_go_raw_strings():
    (js,) = scan.c_like_snippets("a.js", "db.query(`SELECT a FROM t WHERE id = ${id}`)")
    assert js.sql == "SELECT a FROM t WHERE id = $1"
    (go,) = scan.c_like_snippets("a.go", "q := `SELECT a\\n FROM t`")
    assert go.sql == "SELECT a\\n FROM t"  # Go's backquotes are raw


def test_driver_placeholders_become_dollar_one():
    snippet = scan.Snippet("m.py", "SELECT a FROM t WHERE b = %s AND c = %(c)s AND d = ? AND e = :e AND f::int = 1",
                           OffsetMap([(0, 200)]))
    assert scan.normalise_placeholders(snippet).sql == \
        "SELECT a FROM t WHERE b = $1 AND c = $1 AND d = $1 AND e = $1 AND f::int = 1"


def test_only_sql_looking_literals_are_taken():
    assert scan.c_like_snippets("a.rb", "x = 'select a colour'; y = 'hello'") == [
        scan.Snippet("a.rb", "select a colour", OffsetMap([(5, 15)]))]


# Literals between comments and line breaks, CRLF line ends, raw quotes, f-strings with strings
# inside, triple quotes holding quotes, bytes, empty literals, decorators and dict keys.
TRICKY = (
    'q = ("SELECT a, "  # it\'s "quoted"\n'
    '     "b FROM t")\n'
    'r = "SELECT a " \\\n'
    '    "FROM t"\n'
    "s = r'SELECT \\' a FROM t'\n"
    't = f"SELECT {conn.execute(\'SELECT inner FROM u\')} FROM t" \'WHERE x = 1\'\n'
    "u = '''SELECT a\n  FROM t WHERE x = 'y' and z = \"\"\"'''\n"
    'v = b"SELECT a FROM t"; w = "" "SELECT ü FROM t"\n'
    '@deco("SELECT a FROM d")\n'
    'def f(x="SELECT x FROM dflt"):\n'
    '    """SELECT doc FROM t"""\n'
    '    return {"SELECT k FROM t": "SELECT v FROM t"}\n'
)


def test_literals_are_read_where_ast_puts_them_exactly_as_tokenize_reads_them(monkeypatch):
    for source in (TRICKY, TRICKY.replace("\n", "\r\n")):
        found = [(s.sql, s.offsets) for s in scan.python_snippets("m.py", source)]
        monkeypatch.setattr(scan, "_lexed_literals", lambda source: None)  # ast places them
        monkeypatch.setattr(scan, "_lexed_string_tokens", lambda source, spans: None)  # tokenize reads them
        assert [(s.sql, s.offsets) for s in scan.python_snippets("m.py", source)] == found
        monkeypatch.undo()
        texts = [sql for sql, _ in found]
        assert "SELECT a, b FROM t" in texts and "SELECT a FROM t" in texts and "SELECT $1 FROM tWHERE x = 1" in texts
        assert "SELECT inner FROM u" not in texts  # a string inside an f-string is part of that f-string
        assert "SELECT ü FROM t" in texts and "SELECT v FROM t" in texts
        for sql, offsets in found:
            assert all(o is None or source[o] == c or source[o] == "\\" for c, o in zip(sql, offsets))


def test_each_of_many_sql_texts_in_one_file_keeps_its_own_position():
    source = "".join(f'def q{n}(conn):\n    """Query {n}."""\n    return conn.execute(\n'
                     f'        "SELECT c{n} "\n        "FROM t{n}")\n\n\n' for n in range(300))
    snippets = scan.python_snippets("m.py", source)
    assert [s.sql for s in snippets] == [f"SELECT c{n} FROM t{n}" for n in range(300)]
    assert all(source[s.offsets[s.sql.index("FROM")]:].startswith(f'FROM t{n}")') for n, s in enumerate(snippets))


def test_js_template_with_several_placeholders_and_an_unclosed_one():
    source = "q(`SELECT a FROM t WHERE b = ${b} AND c = ${c.d} ORDER BY e`); r(`SELECT f FROM u WHERE g = ${g`)"
    first, second = scan.c_like_snippets("a.js", source)
    assert first.sql == "SELECT a FROM t WHERE b = $1 AND c = $1 ORDER BY e"
    assert source[first.offsets[first.sql.index("ORDER")]:].startswith("ORDER BY e`")
    assert second.sql == "SELECT f FROM u WHERE g = $1"


def test_only_the_head_of_a_file_is_read(tmp_path):
    path = tmp_path / "a.sql"
    path.write_bytes(b"SELECT 1;" * 10)
    assert scan._read_head(str(path), 9) == b"SELECT 1;"
    assert scan._read_head(str(path), 1000) == b"SELECT 1;" * 10
    assert scan._read_head("/proc/self/status", 1000).startswith(b"Name:")  # its size says 0


def test_the_quick_literal_reader_finds_what_the_parsed_tree_holds():
    """_lexed_literals against _parsed_literals (ast's places) on tricky code and on every Python
    file of this repository: the same literals, the same tokens, in the same order."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    sources = [TRICKY, TRICKY.replace("\n", "\r\n"), "x = ('a'\n     'b')\ny = 'c'\n'd'\nz = [\n 'e', # ]\n 'f' 'g']\n",
               "if x:\\\n    y = 'SELECT 1' \\\n        'FROM t'\n", "f(rb'x', Rb'y', bR'z', u'w', F'{a!r:>{b}}' 'v')\n"]
    sources += [path.read_text() for path in sorted(root.glob("**/*.py")) if ".venv" not in path.parts]
    assert len(sources) > 50
    for source in sources:
        assert scan._lexed_literals(source) == scan._parsed_literals(source, ast.parse(source))


def test_the_quick_literal_reader_gives_way_where_it_could_misread():
    assert scan._lexed_literals("x = (1,\n") is None  # an open bracket
    assert scan._lexed_literals("x = 'a\n") is None  # a stray quote
    assert scan._lexed_literals("x = 1)\n") is None


def test_a_source_file_scan_cannot_read_is_named_with_the_reason(tmp_path, monkeypatch):
    """A file passed over must not read as "no wrong names": each says why it was not scanned."""
    monkeypatch.setattr(scan, "MAX_FILE_BYTES", 1 << 20)
    big = tmp_path / "generated.py"
    big.write_text('Q = "SELECT a FROM t"\n' * 60_000)
    binary = tmp_path / "blob.js"
    binary.write_bytes(b"const q = 'SELECT a FROM t';\0\0")
    broken = tmp_path / "broken.py"
    broken.write_text('Q = """SELECT a FROM t\n')  # a string never closed
    fine = tmp_path / "ok.py"
    fine.write_text('Q = "SELECT a FROM t"\n')
    assert scan.file_snippets(str(big)) == ([], None, "not read: larger than 1 MiB")
    assert scan.file_snippets(str(binary)) == ([], None, "not read: binary")
    snippets, text, why = scan.file_snippets(str(broken))
    assert (snippets, text) == ([], None) and why.startswith("not scanned: not valid Python (")
    snippets, text, why = scan.file_snippets(str(fine))
    assert [s.sql for s in snippets] == ["SELECT a FROM t"] and why is None

    result = scan.ScanResult(files=1, snippets=1, unread=[(str(big), "not read: larger than 1 MiB")])
    text = scan.render_text(result)
    assert f"{big}: not read: larger than 1 MiB" in text
    assert text.rstrip().endswith("; 1 source file not scanned")
    assert '"reason": "not read: larger than 1 MiB"' in scan.render_json(result)
    import json
    (notice,) = json.loads(scan.render_sarif(result))["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert notice["message"]["text"] == "not read: larger than 1 MiB"
    assert notice["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == str(big)


def test_a_fifo_in_the_tree_is_named_and_never_waited_on(tmp_path):
    """Tried as a careless repository would: a named pipe called queries.sql."""
    import os
    import threading

    fifo = tmp_path / "queries.sql"
    os.mkfifo(fifo)
    answer = []
    reader = threading.Thread(target=lambda: answer.append(scan.file_snippets(str(fifo))), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert answer == [([], None, "not read: not a regular file")]


def test_names_in_the_code_cannot_write_lines_into_the_text_report():
    """Tried as a hostile repository would: a file name and a quoted identifier holding line breaks."""
    forged = "\n0 wrong names in 0 files; 0 SQL texts in 0 files scanned; 0 not parsed"
    result = scan.ScanResult(files=1, snippets=1, findings=[
        scan.Finding(f"app{forged}.py", 3, 7, "column", f'total{forged}\u202e', None, "no such column")],
        unparsable=[(f"bad\r{forged}.sql", 1, "syntax error")], unread=[(f"big{forged}.py", "not read: binary")])
    lines = scan.render_text(result).splitlines()
    assert len(lines) == 5 and lines[3] == ""  # three entries, the blank line, the summary
    assert lines[0].startswith("app\\x0a0 wrong names in 0 files;") and "\\u202e" in lines[0]
    assert lines[1].startswith("bad\\x0d\\x0a0 wrong names") and lines[2].startswith("big\\x0a0 wrong names")
    assert lines[4].startswith("1 wrong name in 1 file;")


def test_a_file_name_that_is_not_utf8_or_holds_a_backslash_is_shown_unambiguously():
    """Tried as a hostile repository would: raw terminal bytes in a name, and a name that spells an escape."""
    import os

    raw = os.fsdecode(b"a\x9b31mb\x85.py")
    result = scan.ScanResult(unread=[(raw, "not read: binary"), ("app\\x0a.py", "not read: binary")])
    text = scan.render_text(result)
    assert text.isascii() and "a\\x9b31mb\\x85.py: not read: binary" in text
    assert "app\\\\x0a.py: not read: binary" in text


def test_sarif_locations_are_uri_references():
    import json

    result = scan.ScanResult(unread=[("src/my app #2.py", "not read: binary")])
    sarif = json.loads(scan.render_sarif(result))
    (notice,) = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert notice["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/my%20app%20%232.py"
    assert sarif["runs"][0]["columnKind"] == "unicodeCodePoints"


def test_a_file_with_nothing_to_give_yet_is_named_not_waited_on(tmp_path, monkeypatch):
    """A link to a /proc file that would block reads as regular but has no data: a pipe with a
    writer and nothing written stands in for it."""
    import os

    fifo = tmp_path / "kmsg.sql"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(fifo, os.O_WRONLY)
    try:
        monkeypatch.setattr(scan.stat, "S_ISREG", lambda mode: True)
        assert scan.file_snippets(str(fifo)) == ([], None, "not read: no data to read without waiting")
    finally:
        os.close(writer)
        os.close(reader)
