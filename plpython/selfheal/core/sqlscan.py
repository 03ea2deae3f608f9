"""Scan SQL text without a parser.

The server must not load libpg_query (it is PostgreSQL's own parser loaded twice and
crashes the backend), so this is a small tokenizer plus the few patterns selfheal needs:
which relations a statement reads, what an alias stands for, and how a column is used.
It reads untrusted text and never executes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_STATEMENT_CHARS = 200_000

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<line_comment>--[^\n]*)
  | (?P<block_comment>/\*)
  | (?P<estring>[eE]'(?:[^'\\]|\\.|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)?\$)
  | (?P<param>\$\d+)
  | (?P<quoted>"(?:[^"]|"")+")
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*)
  | (?P<cast>::)
  | (?P<op>[<>=!~+\-*/%^|&#@?]+)
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # ident, quoted, string, number, param, op, cast, punct
    value: str  # identifiers folded as PostgreSQL folds them

    def is_word(self, *words: str) -> bool:
        return self.kind == "ident" and self.value.upper() in words

    @property
    def is_name(self) -> bool:
        return self.kind in ("ident", "quoted")


def _skip_block_comment(sql: str, start: int) -> int:
    depth, i = 1, start
    while i < len(sql) and depth:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def tokenize(sql: str) -> list[Token]:
    """Tokens of a statement; comments and whitespace dropped, identifiers case-folded."""
    sql = (sql or "")[:MAX_STATEMENT_CHARS]
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if not m:  # pragma: no cover - the punct branch matches any character
            break
        kind = m.lastgroup
        pos = m.end()
        if kind == "tag":
            kind = "dollar"
        if kind in ("space", "line_comment"):
            continue
        if kind == "block_comment":
            pos = _skip_block_comment(sql, pos)
            continue
        if kind == "dollar":
            end = sql.find(m.group(0), pos)
            end = len(sql) if end < 0 else end
            tokens.append(Token("string", sql[pos:end]))
            pos = end + len(m.group(0))
            continue
        text = m.group(0)
        if kind == "ident":
            tokens.append(Token("ident", text.lower()))
        elif kind == "quoted":
            tokens.append(Token("quoted", text[1:-1].replace('""', '"')))
        elif kind in ("string", "estring"):
            tokens.append(Token("string", text[text.index("'") + 1:-1]))
        else:
            tokens.append(Token(kind, text))
    return tokens


def shape(sql: str) -> str:
    """The statement with its constants folded, as pg_stat_statements groups statements: the
    same query with other values fails the same way and gets the same repair. A number keeps
    the type its size gives it (integer, bigint, numeric), which is what type evidence reads;
    comments are dropped but a client's declared types are kept."""
    if len(sql) > MAX_STATEMENT_CHARS:
        return sql  # tokenize reads no further: never fold two statements that may differ there
    tokens = tokenize(sql)
    parts = [f"<{_literal_type(tokens, i)}>" if t.kind == "number" else "''" if t.kind == "string"
             else f"{t.kind[0]}{t.value}" for i, t in enumerate(tokens)]
    declared = declared_types(sql)
    return " ".join(parts) + (f" /* {sorted(declared.items())} */" if declared else "")


# Words that end a relation list or cannot be an alias.
CLAUSE_WORDS = {
    "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "UNION", "INTERSECT", "EXCEPT",
    "ON", "USING", "SET", "RETURNING", "VALUES", "WINDOW", "FOR", "JOIN", "INNER", "LEFT",
    "RIGHT", "FULL", "CROSS", "NATURAL", "OUTER", "LATERAL", "SELECT", "DEFAULT", "FETCH",
    "TABLESAMPLE", "DO", "CONFLICT", "OVERRIDING", "QUERY", "FROM", "INTO", "UPDATE", "DELETE",
    "INSERT", "WITH", "AS", "ONLY", "AND", "OR", "NOT", "WHEN", "THEN", "ELSE", "END",
}
_RELATION_STARTERS = ("FROM", "JOIN", "UPDATE", "INTO", "TABLE")


@dataclass(frozen=True)
class RelationRef:
    """A relation named in a statement, with the alias it was given."""

    name: str
    schema: str | None = None
    alias: str | None = None


def matching_paren(tokens: list[Token], i: int) -> int:
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].value == "(" and tokens[j].kind == "punct":
            depth += 1
        elif tokens[j].value == ")" and tokens[j].kind == "punct":
            depth -= 1
            if depth == 0:
                return j
    return len(tokens) - 1


def _read_relation(tokens: list[Token], i: int, in_from: bool) -> tuple[RelationRef | None, int]:
    """Read `[ONLY] [schema.]name [[AS] alias]` at i; return the ref and the next index.

    A parenthesis right after the name is a function call in FROM, a column list elsewhere.
    """
    n = len(tokens)
    while i < n and tokens[i].is_word("ONLY", "LATERAL"):
        i += 1
    if i >= n or not tokens[i].is_name or (
            tokens[i].kind == "ident" and tokens[i].value.upper() in CLAUSE_WORDS):
        return None, i  # a subquery or nothing: the caller scans on
    parts = [tokens[i].value]
    i += 1
    while i + 1 < n and tokens[i].value == "." and tokens[i + 1].is_name:
        parts.append(tokens[i + 1].value)
        i += 2
    if in_from and i < n and tokens[i].value == "(":
        return None, matching_paren(tokens, i) + 1
    alias = None
    if i < n and tokens[i].is_word("AS"):
        i += 1
    if i < n and tokens[i].is_name and not (
        tokens[i].kind == "ident" and tokens[i].value.upper() in CLAUSE_WORDS
    ):
        alias = tokens[i].value
        i += 1
    schema = parts[-2] if len(parts) >= 2 else None
    return RelationRef(parts[-1], schema, alias), i


_FROM_ENDS = ("WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "UNION", "INTERSECT", "EXCEPT",
              "WINDOW", "RETURNING", "SET", "FOR", "FETCH", "VALUES", "SELECT")


def _relation_spans(tokens: list[Token]) -> list[tuple[RelationRef, int, int]]:
    """(ref, index of the token that introduced it, parenthesis depth) of each relation named
    after FROM, JOIN, UPDATE, INTO or in a FROM list."""
    found: list[tuple[RelationRef, int, int]] = []
    depth, from_depth, i = 0, None, 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "punct" and tok.value in "()":
            depth += 1 if tok.value == "(" else -1
            if from_depth is not None and depth < from_depth:
                from_depth = None
            i += 1
            continue
        starts = tok.is_word(*_RELATION_STARTERS)
        continues = tok.kind == "punct" and tok.value == "," and from_depth == depth
        if starts or continues:
            if tok.is_word("FROM", "JOIN"):
                from_depth = depth
            ref, after = _read_relation(tokens, i + 1, in_from=from_depth == depth)
            if ref:
                found.append((ref, i, depth))
            i = after
            continue
        if from_depth == depth and tok.is_word(*_FROM_ENDS):
            from_depth = None
        i += 1
    return found


def relations(sql: str) -> list[RelationRef]:
    """Every table or view a statement names after FROM, JOIN, UPDATE, INTO or in a FROM list.
    A name the statement's own WITH defines is a CTE, not a relation, and is left out."""
    tokens = tokenize(sql)
    ctes = {name for name, (_, _, kind, _) in _derived_scopes(tokens).items() if kind == "cte"}
    return [ref for ref, _, _ in _relation_spans(tokens) if ref.schema is not None or ref.name not in ctes]


def _derived_scopes(tokens: list[Token]) -> dict[str, tuple[int, int, str, bool]]:
    """Name -> (open, close, kind, passes) of each scope a statement defines over a query of its
    own: a CTE (`WITH name AS (query)`, kind "cte") or a subquery in FROM (`(query) [AS] name`,
    kind "subquery"). `passes` says its columns are its relations' own: the query selects `*`
    and the scope renames none of them (`name(a, b)`)."""
    found: dict[str, tuple[int, int, str, bool]] = {}
    cte_ends: set[int] = set()
    for i, tok in enumerate(tokens):
        if tok.is_word("WITH") or (tok.kind == "punct" and tok.value == "," and i - 1 in cte_ends):
            j = i + 1
            if j < len(tokens) and tokens[j].is_word("RECURSIVE"):
                j += 1
            if j >= len(tokens) or not tokens[j].is_name:
                continue
            k, renamed = j + 1, False
            if k < len(tokens) and tokens[k].value == "(" and tokens[k].kind == "punct":
                k, renamed = matching_paren(tokens, k) + 1, True
            if k >= len(tokens) or not tokens[k].is_word("AS"):
                continue
            k += 1
            while k < len(tokens) and tokens[k].is_word("NOT", "MATERIALIZED"):
                k += 1
            if k < len(tokens) and tokens[k].value == "(" and tokens[k].kind == "punct":
                close = matching_paren(tokens, k)
                cte_ends.add(close)
                found.setdefault(tokens[j].value, (k, close, "cte", not renamed and _passes_every_column(tokens, k, close)))
        elif tok.kind == "punct" and tok.value == "(" and i + 1 < len(tokens) and tokens[i + 1].is_word("SELECT") \
                and i > 0 and (tokens[i - 1].is_word("FROM", "JOIN", "LATERAL") or tokens[i - 1].value == ","):
            close = matching_paren(tokens, i)
            j = close + 1
            if j < len(tokens) and tokens[j].is_word("AS"):
                j += 1
            if j < len(tokens) and tokens[j].is_name and not (
                    tokens[j].kind == "ident" and tokens[j].value.upper() in CLAUSE_WORDS):
                renamed = j + 1 < len(tokens) and tokens[j + 1].value == "("
                found.setdefault(tokens[j].value, (i, close, "subquery",
                                                   not renamed and _passes_every_column(tokens, i, close)))
    return found


def _passes_every_column(tokens: list[Token], open_: int, close: int) -> bool:
    """Whether a scope's query selects `*` or `x.*`: then its columns are its relations' own."""
    body = tokens[open_ + 1:close]
    depth = 0
    for k, tok in enumerate(body):
        if tok.kind == "punct" and tok.value in "()":
            depth += 1 if tok.value == "(" else -1
        elif depth == 0 and tok.is_word("FROM"):
            return False
        elif depth == 0 and tok.kind == "op" and tok.value == "*" and k > 0 and (
                body[k - 1].is_word("SELECT", "DISTINCT", "ALL") or body[k - 1].value in (",", ".")):
            return True
    return False


def qualifier_sources(sql: str, qualifier: str) -> list[RelationRef]:
    """The relations a qualifier (`q.column`) reads a column from: the relation it aliases or
    names, or the relations a CTE or subquery of that name passes all their columns through.
    Empty when the statement does not say."""
    tokens = tokenize(sql)
    scopes = _derived_scopes(tokens)
    spans = [ref for ref, _, _ in _relation_spans(tokens)]

    named = [ref for ref in spans if ref.alias == qualifier]
    if not named and scopes.get(qualifier, (0, 0, "", False))[2] == "subquery":
        return _unique(_passed_through(tokens, scopes, qualifier, frozenset()))
    named = named or [ref for ref in spans if ref.alias is None and ref.name == qualifier]
    return _through_scopes(tokens, scopes, named)


def _passed_through(tokens: list[Token], scopes: dict, name: str, seen: frozenset[str]) -> list[RelationRef]:
    open_, close, _, passes = scopes[name]
    if not passes:
        return []
    inner = [ref for ref, _, _ in _relation_spans(tokens[open_ + 1:_first_branch_end(tokens, open_, close)])]
    return _through_scopes(tokens, scopes, inner, seen | {name})


def _first_branch_end(tokens: list[Token], open_: int, close: int) -> int:
    """Where a scope's first SELECT ends: a UNION, INTERSECT or EXCEPT takes its column names
    from its first branch alone, so only that branch's relations name the scope's columns."""
    depth = 0
    for k in range(open_ + 1, close):
        tok = tokens[k]
        if tok.kind == "punct" and tok.value in "()":
            depth += 1 if tok.value == "(" else -1
        elif depth == 0 and tok.is_word("UNION", "INTERSECT", "EXCEPT"):
            return k
    return close


def _through_scopes(tokens: list[Token], scopes: dict, refs: list[RelationRef],
                    seen: frozenset[str] = frozenset()) -> list[RelationRef]:
    """The relations behind refs, a CTE's name replaced by what its query passes through."""
    found: list[RelationRef] = []
    for ref in refs:
        if ref.schema is None and scopes.get(ref.name, (0, 0, "", False))[2] == "cte":
            if ref.name not in seen:  # a recursive CTE's reference to itself reads no table
                found += _passed_through(tokens, scopes, ref.name, seen)
        else:
            found.append(ref)
    return _unique(found)


def _unique(refs: list[RelationRef]) -> list[RelationRef]:
    return list(dict.fromkeys(refs))


def scope_names(sql: str) -> set[str]:
    """The names of the CTEs and subqueries a statement defines."""
    return set(_derived_scopes(tokenize(sql)))


def resolve_qualifier(sql: str, qualifier: str) -> RelationRef | None:
    """The one relation an alias, a bare table name, a CTE or a subquery stands for here."""
    found = qualifier_sources(sql, qualifier)
    return found[0] if len(found) == 1 else None


def using_sides(sql: str, column: str) -> tuple[list[RelationRef], list[RelationRef]]:
    """(left, right) relations of the join whose USING list names `column`: PostgreSQL looks
    for it in each side. Empty lists when the statement has no such join."""
    tokens = tokenize(sql)
    spans = _relation_spans(tokens)
    depths = {i: depth for i, _, depth in _outside_parens(tokens)}
    for i, tok, depth in _outside_parens(tokens):
        if not (tok.is_word("USING") and i + 1 < len(tokens) and tokens[i + 1].value == "("):
            continue
        close = matching_paren(tokens, i + 1)
        if not any(t.is_name and t.value == column for t in tokens[i + 2:close]):
            continue
        joins = [k for k in range(i) if tokens[k].is_word("JOIN") and depths[k] == depth]
        froms = [k for k in range(i) if tokens[k].is_word("FROM") and depths[k] == depth]
        if not joins or not froms:
            break
        join, start = joins[-1], froms[-1]
        scopes = _derived_scopes(tokens)
        left = [ref for ref, at, d in spans if d == depth and start <= at < join]
        right = [ref for ref, at, d in spans if d == depth and at == join]
        return _through_scopes(tokens, scopes, left), _through_scopes(tokens, scopes, right)
    return [], []


def _outside_parens(tokens: list[Token]):
    """(index, token, parenthesis depth) of each token that is not a parenthesis."""
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.kind == "punct" and tok.value in "()":
            depth += 1 if tok.value == "(" else -1
            continue
        yield i, tok, depth


def _literal_type(tokens: list[Token], i: int) -> str | None:
    """The type a literal (or cast expression) at i has, if it is one."""
    if i >= len(tokens):
        return None
    tok = tokens[i]
    negative = tok.kind == "op" and tok.value == "-" and i + 1 < len(tokens)
    if negative:
        i += 1
        tok = tokens[i]
    explicit = _cast_after(tokens, i)
    if explicit:
        return explicit
    end = _placeholder_end(tokens, i)
    if end is not None:  # a driver's parameter says its type only by a cast: %s::jsonb
        return _cast_after(tokens, end)
    if tok.is_word("CAST") and i + 1 < len(tokens) and tokens[i + 1].value == "(":
        close = matching_paren(tokens, i + 1)
        if close - 2 > i and tokens[close - 2].is_word("AS"):
            return CAST_TYPES.get(tokens[close - 1].value)
    if tok.kind == "number":
        if re.fullmatch(r"\d{1,19}", tok.value):  # never int() on a huge literal: Python refuses 4,300 digits
            value = int(tok.value)
            return "integer" if value <= 2_147_483_647 else "bigint" if value <= 9_223_372_036_854_775_807 else "numeric"
        return "numeric"
    if tok.kind == "string":
        return "text"
    if tok.is_word("TRUE", "FALSE"):
        return "boolean"
    if tok.is_word("NOW", "CURRENT_TIMESTAMP"):
        return "timestamp with time zone"
    if tok.is_word("CURRENT_DATE"):
        return "date"
    return None


def _placeholder_end(tokens: list[Token], i: int) -> int | None:
    """Where a parameter placeholder starting at i ends: $1, %s, %(name)s, ? or :name."""
    tok = tokens[i]
    following = tokens[i + 1] if i + 1 < len(tokens) else None
    if tok.kind == "param" or (tok.kind == "op" and tok.value == "?"):
        return i
    if tok.kind == "op" and tok.value == "%" and following is not None:
        if following.kind == "ident" and following.value == "s":
            return i + 1
        if following.value == "(" and i + 4 < len(tokens) and tokens[i + 3].value == ")" and tokens[i + 4].value == "s":
            return i + 4
    if tok.kind == "punct" and tok.value == ":" and following is not None and following.kind == "ident":
        return i + 1
    return None


CAST_TYPES = {
    "int": "integer", "int4": "integer", "integer": "integer", "int8": "bigint", "bigint": "bigint",
    "smallint": "smallint", "int2": "smallint", "text": "text", "varchar": "text",
    "numeric": "numeric", "decimal": "numeric", "bool": "boolean", "boolean": "boolean",
    "jsonb": "jsonb", "json": "jsonb", "uuid": "uuid", "date": "date",
    "timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone",
}


# What a client integration knows of the application's own types, appended to the statement it
# reports: /* selfheal:declared gift_wrap=boolean preferences=jsonb */. Only the type names of
# CAST_TYPES are read, so nothing from here reaches DDL but a known type.
DECLARED_MARK = "selfheal:declared"
_DECLARED = re.compile(r"/\*\s*" + re.escape(DECLARED_MARK) + r"((?:\s+[A-Za-z_][A-Za-z0-9_]*=[a-z0-9]+)+)\s*\*/")


def declared_types(sql: str) -> dict[str, str]:
    """Column name -> type that a client integration declared in the reported statement."""
    found: dict[str, str] = {}
    for match in _DECLARED.finditer(sql[-4000:]):  # a client appends it at the end
        for pair in match.group(1).split():
            name, _, type_name = pair.partition("=")
            if type_name in CAST_TYPES:
                found[name] = CAST_TYPES[type_name]
    return found


def declare_types(sql: str, types: dict[str, str]) -> str:
    """The statement with its declared types appended, for a client to report."""
    pairs = " ".join(f"{name}={type_name}" for name, type_name in sorted(types.items())
                     if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and type_name in CAST_TYPES)
    return f"{sql}\n/* {DECLARED_MARK} {pairs} */" if pairs else sql


def _cast_after(tokens: list[Token], i: int) -> str | None:
    if i + 2 < len(tokens) and tokens[i + 1].kind == "cast" and tokens[i + 2].kind == "ident":
        return CAST_TYPES.get(tokens[i + 2].value)
    return None


_COMPARISON = {"=", "<>", "!=", "<", ">", "<=", ">="}
_JSON_OPERATORS = {"->", "->>", "#>", "#>>", "@>", "?", "?|", "?&"}


def _column_positions(tokens: list[Token], column: str, qualifier: str | None) -> list[int]:
    hits = []
    for i, tok in enumerate(tokens):
        if not tok.is_name or tok.value != column:
            continue
        if i > 0 and tokens[i - 1].value == ".":
            if qualifier is not None and (i < 2 or tokens[i - 2].value != qualifier):
                continue
        elif qualifier is not None:
            continue
        hits.append(i)
    return hits


def _insert_value_type(tokens: list[Token], column: str) -> str | None:
    """In INSERT INTO t (a, col) VALUES (x, y): the type of y."""
    for i, tok in enumerate(tokens):
        if not tok.is_word("INTO"):
            continue
        j = i + 1
        while j < len(tokens) and tokens[j].value != "(":
            j += 1
        if j >= len(tokens):
            return None
        close = matching_paren(tokens, j)
        names = [t.value for t in tokens[j + 1:close] if t.is_name]
        if column not in names or close + 2 >= len(tokens) or not tokens[close + 1].is_word("VALUES"):
            return None
        values_open = close + 2
        position, depth, index = names.index(column), 0, 0
        start = values_open + 1
        for k in range(values_open + 1, len(tokens)):
            t = tokens[k]
            if t.value == "(" and t.kind == "punct":
                depth += 1
            elif t.value == ")" and t.kind == "punct":
                if depth == 0:
                    break
                depth -= 1
            elif t.value == "," and depth == 0:
                if index == position:
                    break
                index, start = index + 1, k + 1
        return _literal_type(tokens, start) if index == position else None
    return None


def infer_usage_type(sql: str, column: str, qualifier: str | None = None) -> str | None:
    """The type a statement's own use of a column implies, or None when it does not say.

    Comparison with a literal, assignment in UPDATE SET, the VALUES of an INSERT, and JSON
    operators are read; anything else says nothing.
    """
    tokens = tokenize(sql)
    inserted = _insert_value_type(tokens, column)
    if inserted:
        return inserted
    for i in _column_positions(tokens, column, qualifier):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if nxt is not None and nxt.kind == "op":
            if nxt.value in _JSON_OPERATORS:
                return "jsonb"
            if nxt.value in _COMPARISON:
                found = _literal_type(tokens, i + 2)
                if found:
                    return found
        if nxt is not None and nxt.is_word("IN") and i + 3 < len(tokens) and tokens[i + 2].value == "(":
            found = _literal_type(tokens, i + 3)
            if found:
                return found
        prev = tokens[i - 1] if i > 0 else None
        if prev is not None and prev.kind == "op" and prev.value in _COMPARISON and i >= 2:
            found = _literal_type(tokens, i - 2)
            if found:
                return found
    return None


def ddl_targets(sql: str) -> list[RelationRef]:
    """Tables named by ALTER TABLE and DROP TABLE statements in a query string."""
    tokens = tokenize(sql)
    found: list[RelationRef] = []
    i = 0
    while i < len(tokens):
        if tokens[i].is_word("ALTER", "DROP") and i + 1 < len(tokens) and tokens[i + 1].is_word("TABLE"):
            dropping = tokens[i].is_word("DROP")
            i += 2
            if i + 1 < len(tokens) and tokens[i].is_word("IF") and tokens[i + 1].is_word("EXISTS"):
                i += 2
            while True:
                ref, i = _read_relation(tokens, i, in_from=False)
                if ref:
                    found.append(RelationRef(ref.name, ref.schema))
                if not (dropping and i < len(tokens) and tokens[i].value == ","):
                    break
                i += 1
            continue
        i += 1
    return found


def mentions_rename(sql: str) -> bool:
    return any(t.is_word("RENAME") for t in tokenize(sql))


_DROP_NOT_COLUMN = ("CONSTRAINT", "DEFAULT", "NOT", "EXPRESSION", "IDENTITY", "TABLE")


def mentions_drop_column(sql: str) -> bool:
    """ALTER TABLE ... DROP [COLUMN] name: the word COLUMN is optional."""
    tokens = tokenize(sql)
    altering = any(t.is_word("ALTER") and i + 1 < len(tokens) and tokens[i + 1].is_word("TABLE")
                   for i, t in enumerate(tokens))
    return altering and any(t.is_word("DROP") and i + 1 < len(tokens) and not tokens[i + 1].is_word(*_DROP_NOT_COLUMN)
                            for i, t in enumerate(tokens))


def replace_column(expression: str, column: str, replacement: str) -> str:
    """The expression with references to `column` (quoted, or unquoted if it folds to itself)
    replaced by `replacement` verbatim; string literals are left alone."""
    quoted = '"' + column.replace('"', '""') + '"'
    pieces = re.split(r"('(?:[^']|'')*')", expression)
    for i in range(0, len(pieces), 2):  # even pieces are outside string literals
        text = pieces[i].replace(quoted, "\0")
        if re.fullmatch(r"[a-z_][a-z0-9_$]*", column):
            text = re.sub(rf'(?<![\w"$.]){re.escape(column)}(?![\w"$])', "\1", text)
        pieces[i] = text.replace("\0", replacement).replace("\1", replacement)
    return "".join(pieces)


_COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE", "COPY")


def command(sql: str) -> tuple[str | None, RelationRef | None]:
    """(verb, target) of the top-level command: INSERT/UPDATE/DELETE/MERGE, or COPY ... FROM,
    with the table it writes, or SELECT with no target. A WITH clause's bodies are skipped: they
    sit in parentheses."""
    tokens = tokenize(sql)
    for i, tok, depth in _outside_parens(tokens):
        if depth or not tok.is_word(*_COMMANDS):
            continue
        verb = tok.value.upper()
        if verb in ("VALUES", "TABLE"):
            return "SELECT", None
        if verb == "COPY":
            ref, after = _read_relation(tokens, i + 1, in_from=False)
            if after < len(tokens) and tokens[after].value == "(":
                after = matching_paren(tokens, after) + 1
            loads = ref is not None and after < len(tokens) and tokens[after].is_word("FROM")
            return ("COPY", ref) if loads else ("SELECT", None)
        if verb == "SELECT":
            return verb, None
        j = i + 1
        if verb == "DELETE" and j < len(tokens) and tokens[j].is_word("FROM"):
            j += 1
        if verb in ("INSERT", "MERGE") and j < len(tokens) and tokens[j].is_word("INTO"):
            j += 1
        ref, _ = _read_relation(tokens, j, in_from=False)
        return verb, ref
    return None, None


def _fits(token_value: str, name: str) -> bool:
    """A name as written fits the name PostgreSQL reports, which is cut to 63 bytes."""
    return token_value == name or token_value.encode()[:63].decode("utf-8", "ignore") == name


def names_identifier(sql: str, name: str, qualifier: str | None = None) -> bool:
    """Whether the statement names `name` as an identifier (not inside a string or a comment),
    after `qualifier.` when one is given: the evidence that PostgreSQL's error is about it."""
    tokens = tokenize(sql)
    for i, tok in enumerate(tokens):
        if not tok.is_name or not _fits(tok.value, name):
            continue
        if qualifier is None:
            return True
        if i >= 2 and tokens[i - 1].value == "." and tokens[i - 2].is_name and _fits(tokens[i - 2].value, qualifier):
            return True
    return False


def select_list_neighbours(sql: str, column: str) -> tuple[str | None, str | None] | None:
    """The columns listed just before and after `column` in the statement's first SELECT list,
    with the same qualifier as `column` (a join lists another table's columns next to it), or
    None unless that list holds only plain column references (`c`, `t.c`, `c AS x`), as an ORM
    writes them: in its model's order, which is usually the table's."""
    tokens = tokenize(sql)
    start = next((i for i, t in enumerate(tokens) if t.is_word("SELECT")), None)
    if start is None:
        return None
    items: list[tuple[str | None, str]] = []
    i = start + 1
    while i < len(tokens) and not tokens[i].is_word("FROM"):
        j, qualifier = i, None
        if j + 2 < len(tokens) and tokens[j].is_name and tokens[j + 1].value == ".":
            qualifier, j = tokens[j].value, j + 2
        if not tokens[j].is_name or tokens[j].kind == "ident" and tokens[j].value.upper() in CLAUSE_WORDS:
            return None
        items.append((qualifier, tokens[j].value))
        j += 1
        if j + 1 < len(tokens) and tokens[j].is_word("AS") and tokens[j + 1].is_name:
            j += 2
        if j < len(tokens) and tokens[j].value == ",":
            j += 1
        elif j < len(tokens) and not tokens[j].is_word("FROM"):
            return None
        i = j
    at = [k for k, (_, name) in enumerate(items) if name == column]
    if len(at) != 1:
        return None
    qualifier = items[at[0]][0]
    own = [name for q, name in items if q == qualifier]
    k = own.index(column)
    return (own[k - 1] if k > 0 else None, own[k + 1] if k + 1 < len(own) else None)


def in_write_predicate(sql: str, column: str, qualifier: str | None = None) -> bool:
    """Whether a write's row choice uses the column: the WHERE of an UPDATE or DELETE, an ON
    CONFLICT clause, or anywhere in a MERGE. There a made-up value changes which rows it touches."""
    verb, _ = command(sql)
    if verb not in ("UPDATE", "DELETE", "INSERT", "MERGE"):
        return False
    tokens = tokenize(sql)
    positions = _column_positions(tokens, column, qualifier)
    if verb == "MERGE":
        return bool(positions)
    starts = [i for i, tok in enumerate(tokens)
              if (verb != "INSERT" and tok.is_word("WHERE"))
              or (tok.is_word("CONFLICT") and i > 0 and tokens[i - 1].is_word("ON"))]
    # RETURNING reports rows already chosen: what follows it chooses none.
    ends = [i for i, tok in enumerate(tokens) if tok.is_word("RETURNING")] + [len(tokens)]
    return bool(starts) and any(starts[0] < p < ends[0] for p in positions)



def ddl_added_columns(sql: str) -> list[tuple[RelationRef, str]]:
    """(table, column) for each ALTER TABLE ... ADD [COLUMN] [IF NOT EXISTS] name in the text."""
    tokens = tokenize(sql)
    found: list[tuple[RelationRef, str]] = []
    i = 0
    while i < len(tokens):
        if not (tokens[i].is_word("ALTER") and i + 1 < len(tokens) and tokens[i + 1].is_word("TABLE")):
            i += 1
            continue
        i += 2
        if i + 1 < len(tokens) and tokens[i].is_word("IF") and tokens[i + 1].is_word("EXISTS"):
            i += 2
        if i < len(tokens) and tokens[i].is_word("ONLY"):
            i += 1
        parts = []
        while i < len(tokens) and tokens[i].is_name:  # [schema.]name: what follows is no alias here
            parts.append(tokens[i].value)
            if not (i + 1 < len(tokens) and tokens[i + 1].value == "."):
                i += 1
                break
            i += 2
        ref = RelationRef(parts[-1], parts[-2] if len(parts) > 1 else None) if parts else None
        depth = 0
        while ref and i < len(tokens) and not (tokens[i].value == ";" and tokens[i].kind == "punct"):
            tok = tokens[i]
            if tok.kind == "punct" and tok.value in "()":
                depth += 1 if tok.value == "(" else -1
            elif depth == 0 and tok.is_word("ADD"):
                j = i + 1
                if j < len(tokens) and tokens[j].is_word("COLUMN"):
                    j += 1
                if j + 2 < len(tokens) and tokens[j].is_word("IF") and tokens[j + 1].is_word("NOT"):
                    j += 3
                if j < len(tokens) and tokens[j].is_name and not tokens[j].is_word(
                        "CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE"):
                    found.append((RelationRef(ref.name, ref.schema), tokens[j].value))
            i += 1
    return found


def extension_drop(sql: str, extension: str) -> bool | None:
    """Whether a DROP EXTENSION statement in sql names `extension`: None if none does, else
    whether that statement says CASCADE (another statement's CASCADE does not count).

    current_query() is the whole string a client sent, which may hold several statements."""
    found = None
    tokens = tokenize(sql)
    for i, tok in enumerate(tokens):
        if not (tok.is_word("DROP") and i + 1 < len(tokens) and tokens[i + 1].is_word("EXTENSION")
                and (i == 0 or tokens[i - 1].value == ";")):
            continue
        j = i + 2
        if j + 1 < len(tokens) and tokens[j].is_word("IF") and tokens[j + 1].is_word("EXISTS"):
            j += 2
        names = set()
        while j < len(tokens) and tokens[j].is_name:
            names.add(tokens[j].value)
            j += 1
            if j >= len(tokens) or tokens[j].value != ",":
                break
            j += 1
        if extension in names:
            found = bool(found) or (j < len(tokens) and tokens[j].is_word("CASCADE"))
    return found
