"""`selfheal scan PATH`: find the wrong names in application code, and the diff that fixes them.

Client side only: it parses SQL with pglast (libpg_query), which must never be loaded into
the server. SQL is taken from .sql files and from string literals in Python (ast, with exact
positions), JavaScript/TypeScript, Go, Java, Ruby and PHP.
"""

from __future__ import annotations

import ast
import bisect
import contextlib
import difflib
import functools
import gc
import io
import json
import os
import re
import stat
import string
import subprocess
import sys
import tokenize
import urllib.parse
from collections import deque
from dataclasses import dataclass, field

from tqdm import tqdm

from ..core import naming, planner
from ..core.wording import plural
from .offsets import OffsetMap

SOURCE_EXTENSIONS = {".sql", ".py", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".go", ".java", ".rb", ".php"}
SKIPPED_DIRS = {".git", "node_modules", "vendor", "third_party", ".venv", "venv", "__pycache__", "dist", "build"}
MAX_FILE_BYTES = 2 << 20
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)
PLACEHOLDER = "$1"


@dataclass
class Snippet:
    """SQL text found in a file; offsets[i] is the file offset of sql[i], or None for placeholders."""

    path: str
    sql: str
    offsets: OffsetMap


@dataclass
class Finding:
    path: str
    line: int
    column: int
    kind: str  # column | relation
    wrong: str
    canonical: str | None
    evidence: str
    fixable: bool = False
    file_start: int | None = None
    file_end: int | None = None


@dataclass
class ScanResult:
    files: int = 0
    snippets: int = 0
    findings: list = field(default_factory=list)
    unparsable: list = field(default_factory=list)  # (path, line, reason)
    unread: list = field(default_factory=list)  # (path, reason): source files whose SQL was not looked for


# ---------------------------------------------------------------------------------------
# Finding files and SQL in them


def source_files(root: str) -> list[str]:
    """Files to scan: root itself when it is a file; else git's view where root is in a work
    tree (honours .gitignore), else a walk."""
    if os.path.isfile(root):
        if os.path.splitext(root)[1] not in SOURCE_EXTENSIONS:
            raise ValueError(f"{root} is not a file selfheal scan reads ({', '.join(sorted(SOURCE_EXTENSIONS))})")
        return [root]
    if not os.path.isdir(root):
        raise ValueError(f"{root} is neither a file nor a directory")
    try:
        listed = subprocess.run(["git", "-C", root, "ls-files", "-co", "--exclude-standard", "-z"],
                                capture_output=True, check=True).stdout.decode().split("\0")
        paths = [os.path.join(root, p) for p in listed if p]
    except (OSError, subprocess.CalledProcessError):
        paths = []
        for top, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
            paths += [os.path.join(top, n) for n in names]
    return sorted(p for p in paths if os.path.splitext(p)[1] in SOURCE_EXTENSIONS
                  and not set(p.split(os.sep)) & SKIPPED_DIRS)


def _literal_body(text: str, start: int, quote: str, raw: bool, template: bool) -> tuple[str, OffsetMap]:
    """Decode a literal's body beginning at `start`: characters and their offsets in `text`."""
    out, offsets, i, end = [], [], start, len(text) - len(quote)
    if (raw or "\\" not in text) and not (template and ("{" in text or "}" in text)):
        return text[start:end], OffsetMap.run(start, end - start)
    while i < end:
        ch = text[i]
        if template and ch == "{" and text[i:i + 2] != "{{":
            depth, j = 0, i
            while j < end:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            out.append(PLACEHOLDER)
            offsets += [None] * len(PLACEHOLDER)
            i = j + 1
            continue
        if template and text[i:i + 2] in ("{{", "}}"):
            out.append(ch)
            offsets.append(i)
            i += 2
            continue
        if ch == "\\" and not raw and i + 1 < end:
            out.append({"n": "\n", "t": "\t"}.get(text[i + 1], text[i + 1]))
            offsets.append(i)
            i += 2
            continue
        out.append(ch)
        offsets.append(i)
        i += 1
    return "".join(out), OffsetMap.of(offsets)


def python_snippets(path: str, source: str) -> list[Snippet]:
    """String literals (f-strings and adjacent literals too) that hold SQL, with exact offsets.
    The literals are lexed; where that cannot be done unambiguously, Python's own parser places
    them, and a file it cannot parse yields nothing (SyntaxError)."""
    groups = None
    if _LEXER_READS_FSTRINGS and not _ODD_LINE_BREAK.search(source):
        groups = _lexed_literals(source)
    if groups is None:
        groups = _parsed_literals(source, ast.parse(source))
    snippets = []
    for pieces in groups:
        if not _may_start_sql(pieces):
            continue
        decoded = [(offset, _python_literal_body(text)) for offset, text in pieces]
        sql = "".join(body for _, (body, _) in decoded)
        if SQL_START.match(sql):
            offsets = OffsetMap.joined(body_offsets.shifted(offset) for offset, (_, body_offsets) in decoded)
            snippets.append(Snippet(path, sql, offsets))
    return snippets


def _may_start_sql(pieces: list[tuple[int, str]]) -> bool:
    """False only for a literal whose decoded text cannot match SQL_START: most of a program's
    literals are not SQL, and decoding each of them cost more than finding them. Decoding can
    only change the text through an escape; a field or {{ becomes $1 or {, never a keyword."""
    texts = [text for _, text in pieces]
    if any("\\" in text for text in texts):
        return True
    return _SQL_START_RAW.match("".join(text.lstrip(string.ascii_letters).strip("'\"") for text in texts)) is not None


_SQL_START_RAW = re.compile(r"\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH)", re.IGNORECASE)


# Up to Python 3.11 an f-string is one token that never holds its own quote, so a regular
# expression reads it whole; from 3.12 (PEP 701) its fields may, and ast places the literals.
_LEXER_READS_FSTRINGS = sys.version_info < (3, 12)


def _lexed_literals(source: str) -> list[list[tuple[int, str]]] | None:
    """Each string literal expression of the file (adjacent literals are one), as the (offset,
    text) of its tokens, in file order; bytes left out. Only literals and comments are matched,
    and brackets counted between them: parsing the file with ast and walking its tree cost as
    much as parsing the SQL in it. None where the file holds something this does not read as
    Python's tokenizer does (a quote or bracket left open)."""
    groups, group, depth, last_end = [], None, 0, 0
    for match in _PY_LITERAL_OR_COMMENT_OR_STRAY.finditer(source):
        start, end, text = match.start(), match.end(), match.group()
        begin = start
        if text[0] != "#":
            while begin > last_end and start - begin < 2 and source[begin - 1] in "rRbBuUfF":
                begin -= 1
            if begin != start and (source[begin - 1:begin].isidentifier()
                                   or source[begin:start].lower() not in _PREFIXES):
                begin = start  # the letters end a name (return"x"), they are not its prefix
        if begin > last_end:
            gap = source[last_end:begin]
            if group is not None and not (_PY_JOINS_IN_BRACKETS if depth else _PY_JOINS).fullmatch(gap):
                group = None  # a name, number, operator or bracket, or a line's end outside brackets
            depth += gap.count("(") + gap.count("[") + gap.count("{") \
                - gap.count(")") - gap.count("]") - gap.count("}")
            if depth < 0:
                return None
        last_end = end
        if text[0] == "#":
            continue
        if len(text) == 1:
            return None  # a quote that opens no literal
        if group is None:
            group = []
            groups.append(group)
        group.append((begin, source[begin:end]))
    tail = source[last_end:]
    if depth + tail.count("(") + tail.count("[") + tail.count("{") - tail.count(")") - tail.count("]") \
            - tail.count("}"):
        return None
    return [g for g in groups if "b" not in _literal_prefix(g[0][1])]


def _parsed_literals(source: str, tree: ast.AST) -> list[list[tuple[int, str]]]:
    """_lexed_literals, read off the parsed tree (with tokenize where line breaks are odd)."""
    line_starts = _line_starts(source)
    char_col = _char_columns(source.splitlines(keepends=True) + [""])

    def span(node: ast.AST) -> tuple[int, int]:
        return (line_starts[node.lineno - 1] + char_col(node.lineno, node.col_offset),
                line_starts[node.end_lineno - 1] + char_col(node.end_lineno, node.end_col_offset))

    literals = [node for node in _ast_nodes(tree) if isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)))]
    fstrings = [node for node in literals if isinstance(node, ast.JoinedStr)]
    # Anything within an f-string (its parts, a literal in a field, a format spec) is in its token.
    within_fstrings = {id(inner) for node in fstrings for inner in _ast_nodes(node)[1:]}
    outermost = [node for node in literals if id(node) not in within_fstrings]
    spans = [span(node) for node in outermost]
    tokens = None
    if not _ODD_LINE_BREAK.search(source):
        # The literals outside f-strings hold every string token of the file, each once.
        tokens = _lexed_string_tokens(source, spans)
    if tokens is None:
        tokens = _string_tokens(source, line_starts)
    starts = [offset for offset, _ in tokens]
    return [tokens[bisect.bisect_left(starts, begin):bisect.bisect_left(starts, finish)]
            for begin, finish in sorted(span for node, span in zip(outermost, spans)
                                        if isinstance(node, ast.JoinedStr) or isinstance(node.value, str))]


def _ast_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node, in the breadth-first order of ast.walk (the list grows as the loop reads it)."""
    nodes = [tree]
    for node in nodes:
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                nodes += [item for item in value if isinstance(item, ast.AST)]
            elif isinstance(value, ast.AST):
                nodes.append(value)
    return nodes


# Line breaks where ast and a split on "\n" count lines differently (and splitlines splits): in a file
# with one, a node's line and column may not point at its literal, so tokenize reads the literals.
_ODD_LINE_BREAK = re.compile("[\v\f\x1c\x1d\x1e\x85\u2028\u2029]|\r(?!\n)")


def _quoted(quote: str) -> str:
    """A Python string literal's quotes and body, as tokenize reads it: with escapes, and with line
    breaks in triple quotes or after a backslash."""
    char = quote[0]
    if len(quote) == 3:
        return quote + rf"[^{char}\\]*(?:(?:\\(?:\r\n|.)|{char}(?!{char}{char}))[^{char}\\]*)*" + quote
    return quote + rf"[^{char}\\\r\n]*(?:\\(?:\r\n|.)[^{char}\\\r\n]*)*" + quote


_PY_BODY = "|".join(map(_quoted, ("'''", '"""', "'", '"')))  # a literal's quotes and what they hold
_PY_LITERAL = r"(?:[rRbBuUfF]|[rR][bBfF]|[bBfF][rR])?(?:" + _PY_BODY + ")"
_PY_LITERAL_OR_COMMENT = re.compile(r"#[^\r\n]*|" + _PY_LITERAL, re.DOTALL)
_PY_BETWEEN_LITERALS = re.compile(r"(?:[ \t\r\n]|\\\r?\n)*")
# Python's tokens as far as literals go: what joins two literals into one (line breaks inside
# brackets, comments, a backslash before a line break) and what parts them (anything else).
_PY_LITERAL_OR_COMMENT_OR_STRAY = re.compile(r"#[^\r\n]*|(?:" + _PY_BODY + r")|['\"]", re.DOTALL)
_PREFIXES = {"r", "u", "f", "b", "br", "rb", "fr", "rf"}
# Between two literals that Python joins: spaces and escaped line breaks, and line breaks too
# inside brackets (comments are matched apart).
_PY_JOINS = re.compile(r"(?:[ \t\f]|\\\r?\n)*")
_PY_JOINS_IN_BRACKETS = re.compile(r"(?:[ \t\f\r\n]|\\\r?\n)*")


def _lexed_string_tokens(source: str, spans: list[tuple[int, int]]) -> list[tuple[int, str]] | None:
    """(offset, text) of every string token, as Python 3.11's tokenize reads them (an f-string is
    one token), from the spans of the literals outside f-strings; None where a span is not just
    literals and the comments and line breaks between them."""
    tokens = []
    for begin, finish in spans:
        pos = begin
        while pos < finish:
            match = _PY_LITERAL_OR_COMMENT.match(source, pos, finish)
            if match is None or (pos == begin and match.group().startswith("#")):
                return None
            if not match.group().startswith("#"):
                tokens.append((pos, match.group()))
            pos = _PY_BETWEEN_LITERALS.match(source, match.end(), finish).end()
        if pos == begin or tokens[-1][0] + len(tokens[-1][1]) != finish:
            return None
    return sorted(tokens)


def _string_tokens(source: str, line_starts: list[int]) -> list[tuple[int, str]]:
    """(offset, text) of every string token, read by tokenize."""
    return [(line_starts[t.start[0] - 1] + t.start[1], t.string)
            for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.STRING]


def _literal_prefix(text: str) -> str:
    """A Python literal's prefix (rb, f, ...), in lower case."""
    return text[:len(text) - len(text.lstrip(string.ascii_letters))].lower()


def _python_literal_body(text: str) -> tuple[str, OffsetMap]:
    """A Python literal, prefix and quotes and all, decoded: its characters and their offsets in it."""
    prefix = _literal_prefix(text)
    quote = text[len(prefix):len(prefix) + 3] if text[len(prefix):len(prefix) + 3] in ('"""', "'''") \
        else text[len(prefix)]
    return _literal_body(text, len(prefix) + len(quote), quote, "r" in prefix, "f" in prefix)


def _char_columns(lines: list[str]):
    """col(lineno, byte_col): ast counts columns in UTF-8 bytes; tokenize and the file text count
    characters. Each line is looked at once, however many literals it holds."""
    encoded: dict[int, bytes | None] = {}

    def col(lineno: int, byte_col: int) -> int:
        if lineno not in encoded:
            line = lines[lineno - 1]
            encoded[lineno] = None if line.isascii() else line.encode("utf-8")
        data = encoded[lineno]
        if data is None:
            return min(byte_col, len(lines[lineno - 1]))
        return len(data[:byte_col].decode("utf-8", errors="ignore"))

    return col


_C_LIKE_LITERAL = re.compile(r'"""(?:.|\n)*?"""|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|`(?:\\.|[^`\\])*`')


def c_like_snippets(path: str, source: str) -> list[Snippet]:
    """String and template literals of JavaScript/TypeScript, Go, Java, Ruby and PHP that hold SQL."""
    snippets = []
    for m in _C_LIKE_LITERAL.finditer(source):
        text = m.group(0)
        quote = '"""' if text.startswith('"""') else text[0]
        template = quote == "`" and not path.endswith(".go")  # Go's backquotes are raw, JS's interpolate
        raw = quote == "`" and path.endswith(".go")
        body, offsets = _literal_body(text, len(quote), quote, raw, False)
        if template:
            body, offsets = _js_template(body, offsets)
        if SQL_START.match(body):
            snippets.append(Snippet(path, body, offsets.shifted(m.start())))
    return snippets


def _js_template(body: str, offsets: OffsetMap) -> tuple[str, OffsetMap]:
    """${...} in a JavaScript template literal becomes $1."""
    spans, i = [], 0
    while (j := body.find("${", i)) >= 0:
        end = body.find("}", j)
        i = len(body) if end < 0 else end + 1
        spans.append((j, i))
    return _placeholders_put_in(body, offsets, spans)


def _placeholders_put_in(text: str, offsets: OffsetMap, spans: list[tuple[int, int]]) -> tuple[str, OffsetMap]:
    """The text with each span (in order, apart) replaced by $1, and its offsets to match."""
    if not spans:
        return text, offsets
    pieces, last = [], 0
    for start, end in spans:
        pieces += [text[last:start], PLACEHOLDER]
        last = end
    pieces.append(text[last:])
    return "".join(pieces), offsets.replaced(spans, len(PLACEHOLDER))


_DRIVER_PLACEHOLDER = re.compile(r"%\(\w+\)s|%s|\?|(?<![:\w]):[A-Za-z_]\w*")


def normalise_placeholders(snippet: Snippet) -> Snippet:
    """Driver placeholders (%s, %(name)s, ?, :name) become $1, which PostgreSQL's parser reads."""
    spans = [m.span() for m in _DRIVER_PLACEHOLDER.finditer(snippet.sql)]
    if not spans:
        return snippet
    return Snippet(snippet.path, *_placeholders_put_in(snippet.sql, snippet.offsets, spans))


def _read_head(path: str, limit: int) -> bytes:
    """The first `limit` bytes of a file, all of a smaller one: read(limit) alone would set aside
    `limit` bytes for each file, which costs more than reading a small one. A FIFO or device in
    the tree is never read: opened without O_NONBLOCK, a FIFO would hold the scan until someone
    writes to it (and a terminal, without O_NOCTTY, could become the scan's own)."""
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY), "rb") as fh:
        status = os.fstat(fh.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise OSError("not a regular file")
        wanted = min(limit, status.st_size + 1)
        data = _read_now(fh, wanted)
        if len(data) == wanted < limit:  # it grew, or its size was not known (a pipe, /proc)
            data += _read_now(fh, limit - wanted)
    return data


def _read_now(fh, size: int) -> bytes:
    data = fh.read(size)
    if data is None:  # a /proc file behind a link, with nothing to give yet: never waited on
        raise OSError("no data to read without waiting")
    return data


def file_snippets(path: str) -> tuple[list[Snippet], str | None, str | None]:
    """(snippets, text, why not scanned) of one file: text and snippets are None and empty for an
    unreadable, binary or oversized file and for Python that does not parse, and the reason says so."""
    try:
        data = _read_head(path, MAX_FILE_BYTES + 1)
    except OSError as exc:
        return [], None, f"not read: {exc.strerror or exc}"
    if len(data) > MAX_FILE_BYTES:
        return [], None, f"not read: larger than {MAX_FILE_BYTES >> 20} MiB"
    if b"\0" in data[:8192]:
        return [], None, "not read: binary"
    source = data.decode("utf-8", errors="replace")
    if path.endswith(".sql"):
        return sql_file_snippets(path, source), source, None
    if path.endswith(".py"):
        try:
            return python_snippets(path, source), source, None
        except (SyntaxError, tokenize.TokenError, ValueError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return [], None, f"not scanned: not valid Python ({why})"
    return c_like_snippets(path, source), source, None


# ---------------------------------------------------------------------------------------
# Checking names


@dataclass
class _Statement:
    relations: list = field(default_factory=list)  # (schema, name, alias, location)
    ctes: set = field(default_factory=set)
    subquery_aliases: set = field(default_factory=set)
    columns: list = field(default_factory=list)  # (qualifier, name, location)


@functools.cache
def _collector():
    """collect(sql) -> _Statement: the names of one statement, parsed by pglast. Made once, on
    first use (pglast is imported only when SQL is parsed). It reads libpg_query's JSON rather
    than pglast's node objects, whose construction costs five times the parse itself, and visits
    the nodes in the breadth-first order of pglast's Visitor."""
    from pglast import ast as pg
    from pglast.parser import parse_sql_json

    # In the JSON a member declared as one node type (InsertStmt.relation is RangeVar*) holds
    # that node's fields bare; a Node* member or a list item holds {"Type": fields}.
    bare: dict[tuple[str, str], str] = {}
    for name, kind in vars(pg).items():
        if isinstance(kind, type) and issubclass(kind, pg.Node) and isinstance(kind.__slots__, dict):
            for member, info in kind.__slots__.items():
                c_type = getattr(info, "c_type", "")
                target = vars(pg).get(c_type[:-1]) if c_type.endswith("*") else None
                if target is not None and isinstance(target.__slots__, dict):  # not Node* or Expr*
                    bare[name, member] = c_type[:-1]

    def collect(sql: str) -> _Statement:
        found = _Statement()
        chars = None if sql.isascii() else _char_offsets(sql)
        todo = deque([[{"RawStmt": stmt} for stmt in json.loads(parse_sql_json(sql)).get("stmts", ())]])
        while todo:
            item = todo.popleft()
            for wrapped in item if isinstance(item, list) else (item,):
                if isinstance(wrapped, list):
                    todo.extend(value for value in wrapped if isinstance(value, (dict, list)))
                    continue
                if not isinstance(wrapped, tuple):
                    if not isinstance(wrapped, dict) or len(wrapped) != 1:
                        continue
                    (kind, node), = wrapped.items()
                    if not isinstance(node, dict):
                        continue
                else:
                    kind, node = wrapped
                if kind == "RangeVar":
                    alias = node.get("alias")
                    found.relations.append((node.get("schemaname"), node.get("relname"),
                                            alias.get("aliasname") if alias else None,
                                            _location(node, chars)))
                elif kind == "CommonTableExpr":
                    found.ctes.add(node.get("ctename"))
                elif kind == "RangeSubselect":
                    if node.get("alias"):
                        found.subquery_aliases.add(node["alias"].get("aliasname"))
                elif kind == "ColumnRef":
                    fields = node.get("fields", ())
                    names = [f["String"].get("sval", "") for f in fields if "String" in f]
                    if names and len(names) == len(fields):
                        found.columns.append((names[-2] if len(names) > 1 else None, names[-1],
                                              _location(node, chars)))
                for member, value in node.items():
                    if isinstance(value, list):
                        todo.append(value)
                    elif isinstance(value, dict):
                        inner = bare.get((kind, member))
                        todo.append((inner, value) if inner else value)
        return found

    return collect


def _location(node: dict, chars: list[int] | None) -> int:
    """A node's location in characters (libpg_query counts bytes)."""
    location = node.get("location", -1)
    return location if chars is None or location < 0 else chars[location]


def _char_offsets(sql: str) -> list[int]:
    """The character offset of each byte offset of `sql` in UTF-8 (and one past its end)."""
    offsets = []
    for i, ch in enumerate(sql):
        offsets += [i] * len(ch.encode("utf-8"))
    offsets.append(len(sql))
    return offsets


def parse_snippets(snippets: list[Snippet], result: ScanResult, line_of) -> list[tuple[Snippet, _Statement]]:
    import pglast

    parsed, collect = [], _collector()
    for snippet in map(normalise_placeholders, snippets):
        try:
            parsed.append((snippet, collect(snippet.sql)))
        except pglast.parser.ParseError as exc:
            start = snippet.offsets.first_in_file() or 0
            result.unparsable.append((snippet.path, line_of(snippet.path, start)[0], str(exc).splitlines()[0]))
    return parsed


class Checker:
    """Names in statements against catalog facts and selfheal's aliases. Each verdict is worked out
    once per name (and table), however many statements use it."""

    def __init__(self, tables: tuple, aliases: tuple):
        self.tables = {t.name: t for t in tables}
        self.aliases = aliases
        self._by_key: dict[str, list] = {}
        for t in self.tables.values():
            self._by_key.setdefault(naming.fold_key(t.name), []).append(t)
        self._relations: dict[str, tuple] = {}
        self._columns: dict[tuple, tuple | None] = {}

    def relation(self, name: str) -> tuple[planner.Table | None, str | None, str]:
        """(table, canonical name if `name` is legacy, evidence)."""
        if name not in self._relations:
            self._relations[name] = self._relation(name)
        return self._relations[name]

    def _relation(self, name: str) -> tuple[planner.Table | None, str | None, str]:
        if name in self.tables:
            return self.tables[name], None, ""
        for alias in self.aliases:
            if alias.kind == "relation" and alias.legacy_name == name and alias.table in self.tables:
                return self.tables[alias.table], alias.table, "selfheal alias"
        matches = self._by_key.get(naming.fold_key(name), [])
        if len(matches) == 1:
            return matches[0], matches[0].name, f"normalisation {name} -> {matches[0].name}"
        return None, None, "no such table"

    def column(self, table: planner.Table, name: str) -> tuple[str | None, str, bool] | None:
        """None when the column exists; else (canonical, evidence, fixable by renaming)."""
        key = (id(table), name)
        if key not in self._columns:
            self._columns[key] = self._column(table, name)
        return self._columns[key]

    def _column(self, table: planner.Table, name: str) -> tuple[str | None, str, bool] | None:
        if table.column(name):
            return None
        for alias in self.aliases:
            if alias.kind == "column" and (alias.schema, alias.table) == (table.schema, table.name) \
                    and alias.legacy_name == name:
                plain = re.fullmatch(r'\(?"([^"]+)"\)?', alias.expression or "")
                return (plain.group(1) if plain else alias.expression), "selfheal alias", bool(plain)
        renamed = planner._rename_source(table, name)
        if renamed:
            return renamed.name, f"normalisation {name} -> {renamed.name}", True
        derived = planner._derived_source(table, name)
        if derived:
            return f"{derived.name}::integer", f"{name} beside {derived.name}", False
        return None, f"no column {name} on {table.name}", False


def check(parsed, checker: Checker, result: ScanResult, line_of) -> None:
    for snippet, statement in parsed:
        scope: dict[str, planner.Table] = {}
        known = []
        for schema, name, alias, location in statement.relations:
            if name in statement.ctes:
                continue
            table, canonical, evidence = checker.relation(name)
            if table is not None:
                scope[alias or name] = table
                scope.setdefault(name, table)
                known.append(table)
            if canonical or table is None:
                _add(result, snippet, "relation", name, canonical, evidence, location, bool(canonical), line_of)
        for qualifier, name, location in statement.columns:
            if qualifier in statement.subquery_aliases or (qualifier is None and statement.subquery_aliases):
                continue  # columns of a subquery are not the catalog's
            tables = [scope[qualifier]] if qualifier in scope else known if qualifier is None else []
            if not tables or any(t.column(name) for t in tables):
                continue
            verdicts = [(t, checker.column(t, name)) for t in tables]
            with_evidence = [(t, v) for t, v in verdicts if v and v[0]]
            table, verdict = (with_evidence or verdicts)[0]
            canonical, evidence, fixable = verdict
            _add(result, snippet, "column", name, canonical, evidence, location, fixable, line_of)


def _add(result, snippet: Snippet, kind, wrong, canonical, evidence, location, fixable, line_of):
    span = _name_span(snippet.sql, wrong, location)
    start, end = (span and snippet.offsets.span(*span)) or (None, None)
    anchor = start if start is not None else snippet.offsets.first_in_file(location) or 0
    line, column = line_of(snippet.path, anchor)
    result.findings.append(Finding(snippet.path, line, column, kind, wrong, canonical, evidence,
                                   fixable and start is not None, start, end))


def _name_span(sql: str, name: str, location: int) -> tuple[int, int] | None:
    """Where the name itself is written at or after `location`: "Quoted" or unquoted (any case)."""
    quoted = '"' + name.replace('"', '""') + '"'
    for m in re.finditer(re.escape(quoted) + "|" + r'(?<![\w"$])' + re.escape(name) + r'(?![\w"$])',
                         sql[location:], re.IGNORECASE):
        if m.group(0).startswith('"') and m.group(0) != quoted:
            continue
        return location + m.start(), location + m.end()
    return None


# ---------------------------------------------------------------------------------------
# Output and fixes


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts += [m.end() for m in re.finditer("\n", text)]
    return starts


# Line breaks, other control characters and bidirectional marks, as escapes: a file name or a
# quoted identifier in the code scanned could otherwise write lines of its own into the report.
# A name's bytes that are not UTF-8 (held as surrogates) are shown as the bytes they were, and a
# backslash is doubled, so no name can pass for an escape.
_UNPRINTABLE = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7f, 0xa0)]} | {
    c: f"\\u{c:04x}" for c in [0x061c, 0x200e, 0x200f, 0x2028, 0x2029, *range(0x202a, 0x202f),
                               *range(0x2066, 0x206a)]} | {
    c: f"\\x{c - 0xdc00:02x}" for c in range(0xdc80, 0xdd00)} | {ord("\\"): "\\\\"}


def _shown(text) -> str:
    return str(text).translate(_UNPRINTABLE)


def render_text(result: ScanResult) -> str:
    out = []
    for f in result.findings:
        target = f" -> {_shown(f.canonical)}" if f.canonical else ""
        out.append(f"{_shown(f.path)}:{f.line}:{f.column}: {f.kind} {_shown(f.wrong)}{target} ({_shown(f.evidence)})")
    for path, line, reason in result.unparsable:
        out.append(f"{_shown(path)}:{line}: SQL not parsed: {_shown(reason)}")
    for path, reason in result.unread:
        out.append(f"{_shown(path)}: {_shown(reason)}")
    files = len({f.path for f in result.findings})
    out.append(f"\n{plural(len(result.findings), 'wrong name')} in {plural(files, 'file')}; "
               f"{plural(result.snippets, 'SQL text')} in {plural(result.files, 'file')} scanned; "
               f"{len(result.unparsable)} not parsed"
               + (f"; {plural(len(result.unread), 'source file')} not scanned" if result.unread else ""))
    return "\n".join(out) + "\n"


def render_json(result: ScanResult) -> str:
    return json.dumps({
        "findings": [{k: v for k, v in vars(f).items() if k not in ("file_start", "file_end")} for f in result.findings],
        "unparsable": [{"path": p, "line": line, "reason": r} for p, line, r in result.unparsable],
        "unread": [{"path": p, "reason": r} for p, r in result.unread],
        "files": result.files, "snippets": result.snippets}, indent=2) + "\n"


def _uri(path: str) -> str:
    """A file's path as the URI reference SARIF asks for: a space, %, # or a byte that is not
    UTF-8 is percent-encoded."""
    return urllib.parse.quote(os.fsencode(path))


def render_sarif(result: ScanResult) -> str:
    rules = {"column": "selfheal/wrong-column", "relation": "selfheal/wrong-relation"}
    return json.dumps({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
        "runs": [{"columnKind": "unicodeCodePoints", "tool": {"driver": {"name": "selfheal", "rules": [
            {"id": rule, "shortDescription": {"text": f"{kind} name the schema does not have"}}
            for kind, rule in rules.items()]}},
            "results": [{
                "ruleId": rules[f.kind], "level": "error",
                "message": {"text": f"{f.kind} {f.wrong}" + (f" should be {f.canonical}" if f.canonical else "")
                            + f" ({f.evidence})"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(f.path)},
                                                    "region": {"startLine": f.line, "startColumn": f.column}}}],
            } for f in result.findings],
            # What was not looked at is said too, so that no findings never reads as no wrong names.
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": [
                *({"level": "warning", "message": {"text": f"SQL not parsed: {reason}"},
                   "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(path)}, "region": {"startLine": line}}}]}
                  for path, line, reason in result.unparsable),
                *({"level": "warning", "message": {"text": reason},
                   "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(path)}}}]}
                  for path, reason in result.unread)]}]}]}, indent=2) + "\n"


def fixes(result: ScanResult, texts: dict[str, str], snippets_by_path: dict) -> dict[str, str]:
    """New text of each file whose wrong names can be renamed; the patched SQL must still parse."""
    edits_by_path: dict[str, list] = {}
    for f in result.findings:
        if f.fixable:
            edits_by_path.setdefault(f.path, []).append((f.file_start, f.file_end, f.canonical))
    patched = {}
    for path in sorted(edits_by_path):
        text = _renamed(texts[path], sorted(edits_by_path[path], reverse=True))
        # Renaming never makes SQL unparsable; if it seems to, the file is left alone.
        if _unparsable(path, text) <= _unparsable(path, texts[path]):
            patched[path] = text
    return patched


def _renamed(text: str, edits: list[tuple[int, int, str]]) -> str:
    """text with each (start, end, canonical) edit made, edits given last first: in one pass, or
    one edit after another where two of them overlap."""
    if any(later[0] < earlier[1] for later, earlier in zip(edits, edits[1:])):
        for start, end, canonical in edits:
            text = text[:start] + _ident(canonical) + text[end:]
        return text
    pieces, kept_until = [], len(text)
    for start, end, canonical in edits:
        pieces += [text[end:kept_until], _ident(canonical)]
        kept_until = start
    pieces.append(text[:kept_until])
    return "".join(reversed(pieces))


def _ident(name: str) -> str:
    """The canonical name, quoted only where it needs to be."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _unparsable(path: str, text: str) -> int:
    import pglast

    count = 0
    for snippet in map(normalise_placeholders, file_snippets_from_text(path, text)):
        try:
            pglast.parse_sql(snippet.sql)
        except pglast.parser.ParseError:
            count += 1
    return count


def sql_file_snippets(path: str, source: str) -> list[Snippet]:
    """Each statement of a .sql file on its own, so one broken statement spoils only itself."""
    import pglast

    snippets, cursor = [], 0
    try:
        statements = pglast.split(source, with_parser=False)
    except pglast.parser.ParseError:
        statements = [source]
    for statement in statements:
        start = source.find(statement, cursor)
        if start < 0:
            continue
        cursor = start + len(statement)
        snippets.append(Snippet(path, statement, OffsetMap.run(start, cursor - start)))
    return snippets


def file_snippets_from_text(path: str, text: str) -> list[Snippet]:
    if path.endswith(".sql"):
        return sql_file_snippets(path, text)
    if path.endswith(".py"):
        return python_snippets(path, text)
    return c_like_snippets(path, text)


def unified_diff(root: str, originals: dict[str, str], patched: dict[str, str]) -> str:
    out = []
    for path, text in sorted(patched.items()):
        name = os.path.relpath(path, root if os.path.isdir(root) else os.path.dirname(root) or ".")
        out += difflib.unified_diff(originals[path].splitlines(keepends=True), text.splitlines(keepends=True),
                                    f"a/{name}", f"b/{name}")
    return "".join(out)


def scan(root: str, conn, progress: bool = False) -> tuple[ScanResult, dict, dict]:
    """Scan a tree against the database `conn` is connected to."""
    from . import emergency

    result = ScanResult()
    texts, snippets_by_path, all_snippets = {}, {}, []
    paths = source_files(root)
    with _garbage_collection_paused():
        for path in tqdm(paths, desc="selfheal scan", unit=" files", disable=not progress, file=sys.stderr,
                         leave=False):
            snippets, text, unread = file_snippets(path)
            if text is None:  # never without its reason
                result.unread.append((path, unread))
                continue
            result.files += 1
            texts[path] = text
            snippets_by_path[path] = snippets
            all_snippets += snippets
        result.snippets = len(all_snippets)
        starts: dict[str, list[int]] = {}  # line starts of the files that are reported on

        def line_of(path: str, offset: int) -> tuple[int, int]:
            if path not in starts:
                starts[path] = _line_starts(texts[path])
            line = bisect.bisect_right(starts[path], offset) - 1
            return line + 1, offset - starts[path][line] + 1

        parsed = parse_snippets(all_snippets, result, line_of)
        names = {r[1] for _, s in parsed for r in s.relations}
        tables = emergency.load_tables_named(conn, names)
        aliases = _aliases(conn)
        check(parsed, Checker(tables, aliases), result, line_of)
    result.findings.sort(key=lambda f: (f.path, f.line, f.column))
    return result, texts, snippets_by_path


@contextlib.contextmanager
def _garbage_collection_paused():
    """Python's garbage collector off while a scan parses files and SQL: that makes many objects
    and no reference cycles (refcounting frees each tree), so its passes would find nothing to
    free, and in a large file they cost as much again as the parsing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _aliases(conn) -> tuple:
    if conn.execute("SELECT to_regclass('selfheal.alias')").fetchone()[0] is None:
        return ()
    rows = conn.execute("SELECT schema_name, table_name, legacy_name, kind, expression, style FROM selfheal.alias "
                        "WHERE active").fetchall()
    return tuple(planner.Alias(r[0], r[1], r[2], kind=r[3], expression=r[4], style=r[5]) for r in rows)
