"""Where SQL is found in source files, and where each character of it came from."""

from selfheal import scan


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
                           list(range(200)))
    assert scan.normalise_placeholders(snippet).sql == \
        "SELECT a FROM t WHERE b = $1 AND c = $1 AND d = $1 AND e = $1 AND f::int = 1"


def test_only_sql_looking_literals_are_taken():
    assert scan.c_like_snippets("a.rb", "x = 'select a colour'; y = 'hello'") == [
        scan.Snippet("a.rb", "select a colour", list(range(5, 20)))]
