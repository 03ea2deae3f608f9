"""`selfheal scan PATH`: find the wrong names in application code, and the diff that fixes them.

Client side only: it parses SQL with pglast (libpg_query), which must never be loaded into
the server. SQL is taken from .sql files and from string literals in Python (ast, with exact
positions), JavaScript/TypeScript, Go, Java, Ruby and PHP.
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import os
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass, field

from tqdm import tqdm

from . import naming, planner
from .wording import plural

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
    offsets: list


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


def _literal_body(text: str, start: int, quote: str, raw: bool, template: bool) -> tuple[str, list]:
    """Decode a literal's body beginning at `start`: characters and their file offsets."""
    out, offsets, i, end = [], [], start, len(text) - len(quote)
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
    return "".join(out), offsets


def python_snippets(path: str, source: str) -> list[Snippet]:
    """String literals (f-strings and adjacent literals too) that hold SQL, with exact offsets."""
    tree = ast.parse(source)
    line_starts = _line_starts(source)
    lines = source.splitlines(keepends=True) + [""]
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.STRING]
    snippets = []
    inside_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Constant, ast.JoinedStr)) or id(node) in inside_fstrings or (
                isinstance(node, ast.Constant) and not isinstance(node.value, str)):
            continue
        begin = line_starts[node.lineno - 1] + _char_col(lines[node.lineno - 1], node.col_offset)
        finish = line_starts[node.end_lineno - 1] + _char_col(lines[node.end_lineno - 1], node.end_col_offset)
        pieces = [t for t in tokens if begin <= line_starts[t.start[0] - 1] + t.start[1] < finish]
        sql, offsets = "", []
        for token in pieces:
            offset = line_starts[token.start[0] - 1] + token.start[1]
            text = token.string
            prefix = re.match(r"[A-Za-z]*", text).group(0).lower()
            quote = text[len(prefix):len(prefix) + 3] if text[len(prefix):len(prefix) + 3] in ('"""', "'''") \
                else text[len(prefix)]
            body, body_offsets = _literal_body(text, len(prefix) + len(quote), quote, "r" in prefix, "f" in prefix)
            sql += body
            offsets += [None if o is None else offset + o for o in body_offsets]
        if SQL_START.match(sql):
            snippets.append(Snippet(path, sql, offsets))
    return snippets


def _char_col(line: str, byte_col: int) -> int:
    """ast counts columns in UTF-8 bytes; tokenize and the file text count characters."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


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
            snippets.append(Snippet(path, body, [None if o is None else m.start() + o for o in offsets]))
    return snippets


def _js_template(body: str, offsets: list) -> tuple[str, list]:
    out, out_offsets, i = [], [], 0
    while i < len(body):
        if body.startswith("${", i):
            j = body.find("}", i)
            j = len(body) - 1 if j < 0 else j
            out.append(PLACEHOLDER)
            out_offsets += [None] * len(PLACEHOLDER)
            i = j + 1
            continue
        out.append(body[i])
        out_offsets.append(offsets[i])
        i += 1
    return "".join(out), out_offsets


_DRIVER_PLACEHOLDER = re.compile(r"%\(\w+\)s|%s|\?|(?<![:\w]):[A-Za-z_]\w*")


def normalise_placeholders(snippet: Snippet) -> Snippet:
    """Driver placeholders (%s, %(name)s, ?, :name) become $1, which PostgreSQL's parser reads."""
    sql, offsets, last = [], [], 0
    for m in _DRIVER_PLACEHOLDER.finditer(snippet.sql):
        sql.append(snippet.sql[last:m.start()])
        offsets += snippet.offsets[last:m.start()]
        sql.append(PLACEHOLDER)
        offsets += [None] * len(PLACEHOLDER)
        last = m.end()
    sql.append(snippet.sql[last:])
    offsets += snippet.offsets[last:]
    return Snippet(snippet.path, "".join(sql), offsets)


def file_snippets(path: str) -> tuple[list[Snippet], str | None]:
    """(snippets, text) of one file; text None for binary or oversized files."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        return [], None
    if len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
        return [], None
    source = data.decode("utf-8", errors="replace")
    if path.endswith(".sql"):
        return sql_file_snippets(path, source), source
    if path.endswith(".py"):
        try:
            return python_snippets(path, source), source
        except (SyntaxError, tokenize.TokenError, ValueError):
            return [], source
    return c_like_snippets(path, source), source


# ---------------------------------------------------------------------------------------
# Checking names


@dataclass
class _Statement:
    relations: list = field(default_factory=list)  # (schema, name, alias, location)
    ctes: set = field(default_factory=set)
    subquery_aliases: set = field(default_factory=set)
    columns: list = field(default_factory=list)  # (qualifier, name, location)


def _collect(tree) -> _Statement:
    from pglast import ast as pg
    from pglast.visitors import Visitor

    found = _Statement()

    class Collect(Visitor):
        def visit_RangeVar(self, parent, node):
            found.relations.append((node.schemaname, node.relname, node.alias.aliasname if node.alias else None,
                                    node.location))

        def visit_CommonTableExpr(self, parent, node):
            found.ctes.add(node.ctename)

        def visit_RangeSubselect(self, parent, node):
            if node.alias:
                found.subquery_aliases.add(node.alias.aliasname)

        def visit_ColumnRef(self, parent, node):
            names = [f.sval for f in node.fields if isinstance(f, pg.String)]
            if names and len(names) == len(node.fields):
                found.columns.append((names[-2] if len(names) > 1 else None, names[-1], node.location))

    Collect()(tree)
    return found


def parse_snippets(snippets: list[Snippet], result: ScanResult, line_of) -> list[tuple[Snippet, _Statement]]:
    import pglast

    parsed = []
    for snippet in map(normalise_placeholders, snippets):
        try:
            parsed.append((snippet, _collect(pglast.parse_sql(snippet.sql))))
        except pglast.parser.ParseError as exc:
            start = next((o for o in snippet.offsets if o is not None), 0)
            result.unparsable.append((snippet.path, line_of(snippet.path, start)[0], str(exc).splitlines()[0]))
    return parsed


class Checker:
    """Names in statements against catalog facts and selfheal's aliases."""

    def __init__(self, tables: tuple, aliases: tuple):
        self.tables = {t.name: t for t in tables}
        self.aliases = aliases

    def relation(self, name: str) -> tuple[planner.Table | None, str | None, str]:
        """(table, canonical name if `name` is legacy, evidence)."""
        if name in self.tables:
            return self.tables[name], None, ""
        for alias in self.aliases:
            if alias.kind == "relation" and alias.legacy_name == name and alias.table in self.tables:
                return self.tables[alias.table], alias.table, "selfheal alias"
        key = naming.fold_key(name)
        matches = [t for t in self.tables.values() if naming.fold_key(t.name) == key]
        if len(matches) == 1:
            return matches[0], matches[0].name, f"normalisation {name} -> {matches[0].name}"
        return None, None, "no such table"

    def column(self, table: planner.Table, name: str) -> tuple[str | None, str, bool] | None:
        """None when the column exists; else (canonical, evidence, fixable by renaming)."""
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
    start = end = None
    if span:
        pieces = snippet.offsets[span[0]:span[1]]
        if None not in pieces and pieces == list(range(pieces[0], pieces[0] + len(pieces))):
            start, end = pieces[0], pieces[-1] + 1
    anchor = start if start is not None else next((o for o in snippet.offsets[location:] if o is not None), 0)
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


def render_text(result: ScanResult) -> str:
    out = []
    for f in result.findings:
        target = f" -> {f.canonical}" if f.canonical else ""
        out.append(f"{f.path}:{f.line}:{f.column}: {f.kind} {f.wrong}{target} ({f.evidence})")
    for path, line, reason in result.unparsable:
        out.append(f"{path}:{line}: SQL not parsed: {reason}")
    files = len({f.path for f in result.findings})
    out.append(f"\n{plural(len(result.findings), 'wrong name')} in {plural(files, 'file')}; "
               f"{plural(result.snippets, 'SQL text')} in {plural(result.files, 'file')} scanned; "
               f"{len(result.unparsable)} not parsed")
    return "\n".join(out) + "\n"


def render_json(result: ScanResult) -> str:
    return json.dumps({
        "findings": [{k: v for k, v in vars(f).items() if k not in ("file_start", "file_end")} for f in result.findings],
        "unparsable": [{"path": p, "line": line, "reason": r} for p, line, r in result.unparsable],
        "files": result.files, "snippets": result.snippets}, indent=2) + "\n"


def render_sarif(result: ScanResult) -> str:
    rules = {"column": "selfheal/wrong-column", "relation": "selfheal/wrong-relation"}
    return json.dumps({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "selfheal", "rules": [
            {"id": rule, "shortDescription": {"text": f"{kind} name the schema does not have"}}
            for kind, rule in rules.items()]}},
            "results": [{
                "ruleId": rules[f.kind], "level": "error",
                "message": {"text": f"{f.kind} {f.wrong}" + (f" should be {f.canonical}" if f.canonical else "")
                            + f" ({f.evidence})"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.path},
                                                    "region": {"startLine": f.line, "startColumn": f.column}}}],
            } for f in result.findings]}]}, indent=2) + "\n"


def fixes(result: ScanResult, texts: dict[str, str], snippets_by_path: dict) -> dict[str, str]:
    """New text of each file whose wrong names can be renamed; the patched SQL must still parse."""
    patched = {}
    for path in sorted({f.path for f in result.findings if f.fixable}):
        text = texts[path]
        edits = sorted(((f.file_start, f.file_end, f.canonical) for f in result.findings
                        if f.path == path and f.fixable), reverse=True)
        for start, end, canonical in edits:
            text = text[:start] + _ident(canonical) + text[end:]
        # Renaming never makes SQL unparsable; if it seems to, the file is left alone.
        if _unparsable(path, text) <= _unparsable(path, texts[path]):
            patched[path] = text
    return patched


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
        snippets.append(Snippet(path, statement, list(range(start, cursor))))
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
    for path in tqdm(paths, desc="selfheal scan", unit=" files", disable=not progress, file=sys.stderr,
                     leave=False):
        snippets, text = file_snippets(path)
        if text is None:
            continue
        result.files += 1
        texts[path] = text
        snippets_by_path[path] = snippets
        all_snippets += snippets
    result.snippets = len(all_snippets)
    starts = {path: _line_starts(text) for path, text in texts.items()}

    def line_of(path: str, offset: int) -> tuple[int, int]:
        lines = starts[path]
        low, high = 0, len(lines) - 1
        while low < high:
            mid = (low + high + 1) // 2
            if lines[mid] <= offset:
                low = mid
            else:
                high = mid - 1
        return low + 1, offset - lines[low] + 1

    parsed = parse_snippets(all_snippets, result, line_of)
    names = {r[1] for _, s in parsed for r in s.relations}
    tables = emergency.load_tables_named(conn, names)
    aliases = _aliases(conn)
    check(parsed, Checker(tables, aliases), result, line_of)
    result.findings.sort(key=lambda f: (f.path, f.line, f.column))
    return result, texts, snippets_by_path


def _aliases(conn) -> tuple:
    if conn.execute("SELECT to_regclass('selfheal.alias')").fetchone()[0] is None:
        return ()
    rows = conn.execute("SELECT schema_name, table_name, legacy_name, kind, expression, style FROM selfheal.alias "
                        "WHERE active").fetchall()
    return tuple(planner.Alias(r[0], r[1], r[2], kind=r[3], expression=r[4], style=r[5]) for r in rows)
