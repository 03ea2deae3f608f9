"""Decide how to repair one error. Pure: it reads catalog facts and returns a plan.

The planner never talks to the database. The server package gathers the facts,
asks for a plan, applies its DDL under a lock and records it in the audit.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from . import errors, naming, sqlscan

COMPAT_SCHEMA = "selfheal_compat"
MAX_COLUMNS = 1600  # PostgreSQL's limit, dropped columns included
MODES = ("observe", "propose", "auto")
BYTES_PER_ROW_ALLOWED = 256  # with generated_column_row_limit, the largest size a STORED rewrite may copy
INTEGER_TYPES = ("smallint", "integer", "bigint")
TEXT_TYPES = ("text", "character varying", "character")

INTEGER_BOUNDS = {"smallint": (-2**15, 2**15 - 1), "integer": (-2**31, 2**31 - 1), "bigint": (-2**63, 2**63 - 1)}


def quote_ident(name: str) -> str:
    """Quote an identifier the way PostgreSQL's quote_ident does, always."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Column(NamedTuple):
    """One column of a table. A named tuple: a table of 400 columns is read twice a repair, and a
    frozen dataclass cost four times as much to make."""

    name: str
    type: str  # format_type() output
    attnum: int = 0
    default: str | None = None  # for a generated column, its expression
    identity: str = ""  # pg_attribute.attidentity: 'a' always, 'd' by default
    generated: str = ""  # pg_attribute.attgenerated: 's' stored


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    row_estimate: float = 0  # the density ANALYZE saw times the pages there are now
    row_bound: float = 0  # the most rows the table's pages can hold: what a rewrite is judged by
    total_bytes: float = 0  # heap, TOAST and indexes: a rewrite copies all of it
    attnum_high: int = 0  # highest attnum ever used, dropped columns included
    columns_added_by_selfheal: int = 0
    named_objects: tuple = ()  # (constraint, index or sequence name, the columns it is on)
    indexed_columns: frozenset = frozenset()  # columns that lead a valid index
    defaults_read: bool = True  # False: plain columns' defaults were left unread (catalog.DEFAULT_TEXT)

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def key_type(self) -> str | None:
        if len(self.primary_key) == 1:
            col = self.column(self.primary_key[0])
            return col.type if col else None
        return None


@dataclass(frozen=True)
class Alias:
    """A legacy name served by the compat layer.

    kind 'column': legacy_name on table is `expression` (SQL over the table's columns).
    kind 'relation': legacy_name is a relation name for table, its columns in `style`.
    """

    schema: str
    table: str
    legacy_name: str
    kind: str = "column"
    expression: str | None = None
    style: str = "same"
    source: str = "user"
    id: int = 0
    writable: bool = False  # the table's compat views take writes through INSTEAD OF triggers


@dataclass(frozen=True)
class Policy:
    """Limits an administrator sets in selfheal.policy."""

    column_budget_per_table: int = 10
    add_column: str = "auto"  # mode per action class: observe, propose or auto
    alias: str = "auto"
    derived_alias: str = "auto"
    column_headroom: int = 100  # never bring a table within this many attnums of 1600
    derived_columns: str = "view"  # 'view': compat view column; 'table': a real column in the table
    generated_column_row_limit: int = 100_000  # above it an in-table derived column is never STORED
    value_check_rows: int = 100_000  # rows whose values a derived name's cast is tried on before serving it
    scope: tuple[str, ...] = ("public",)  # schemas or schema.table names selfheal may change; * for all

    def in_scope(self, schema: str, table: str) -> bool:
        return "*" in self.scope or schema in self.scope or f"{schema}.{table}" in self.scope

    def mode_for(self, action_class: str) -> str:
        return {"add_column": self.add_column, "alias": self.alias, "derived_alias": self.derived_alias}.get(
            action_class, "auto")

    @classmethod
    def from_settings(cls, settings: dict[str, str]) -> "Policy":
        def flag(name: str, default: bool) -> bool:
            value = settings.get(name)
            return default if value is None else value.strip().lower() in ("on", "true", "yes", "1")

        def number(name: str, default: int) -> int:
            value = settings.get(name)
            return default if value is None else int(value)

        def mode(name: str, default: str) -> str:
            value = (settings.get(name) or default).strip().lower()
            return value if value in MODES else "propose"  # an unknown mode never means auto

        return cls(
            column_budget_per_table=number("column_budget_per_table", cls.column_budget_per_table),
            add_column=mode("add_column", cls.add_column),
            alias=mode("alias", cls.alias),
            derived_alias=mode("derived_alias", cls.derived_alias),
            column_headroom=number("column_headroom", cls.column_headroom),
            derived_columns=settings.get("derived_columns", cls.derived_columns),
            generated_column_row_limit=number("generated_column_row_limit", cls.generated_column_row_limit),
            value_check_rows=number("value_check_rows", cls.value_check_rows),
            scope=_scope_entries(settings.get("scope", ",".join(cls.scope))),
        )


def _scope_entries(value: str) -> tuple[str, ...]:
    """Entries of the scope setting; a double-quoted entry keeps its case and commas."""
    entries, current, quoted = [], "", False
    for ch in value or "":
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            entries.append(current.strip())
            current = ""
        else:
            current += ch
    entries.append(current.strip())
    return tuple(e for e in entries if e)


@dataclass(frozen=True)
class Event:
    sqlstate: str
    message: str
    statement: str | None = None
    hint: str | None = None
    context: str | None = None  # CONTEXT from the log: set when raised inside a function
    source: str = "client"  # client (reported by the app) or log (read from the server log)
    related_statements: tuple[str, ...] = ()  # other statements seen with the same error: type evidence


@dataclass(frozen=True)
class Catalog:
    tables: tuple[Table, ...]
    aliases: tuple[Alias, ...] = ()
    views: dict = field(default_factory=dict)  # compat view name -> its column names, as they are now
    dropped: frozenset = frozenset()  # (schema, table, column) the drift timeline saw dropped
    rejected: dict = field(default_factory=dict)  # (schema, table, name, action) -> audit id of the decision
    relations: frozenset = frozenset()  # (schema, name) of relations and types, in schemas routed roles search

    def find(self, name: str, schema: str | None = None) -> list[Table]:
        return [t for t in self.tables if t.name == name and (schema is None or t.schema == schema)]

    def table(self, schema: str, name: str) -> Table | None:
        return next(iter(self.find(name, schema)), None)

    def table_aliases(self, table: Table) -> list[Alias]:
        return [a for a in self.aliases if a.schema == table.schema and a.table == table.name]


@dataclass
class Plan:
    """What to do about one error, and why.

    status: apply | resolved | needs_review | refused | not_schema
    """

    status: str
    reason: str
    action: str = "none"
    table: Table | None = None
    column: str | None = None
    alias: Alias | None = None
    ddl: list[str] = field(default_factory=list)
    undo_ddl: list[str] = field(default_factory=list)
    lock_profile: str | None = None
    evidence: dict = field(default_factory=dict)
    backfill: dict | None = None  # for an in-table derived column filled in batches afterwards
    value_check: dict | None = None  # existing values server/apply.py must find convertible first


class _Stop(Exception):
    """Planning ends early with this plan."""

    def __init__(self, plan: Plan):
        super().__init__(plan.reason)
        self.plan = plan


class _NotFound(_Stop):
    """A name in the statement is no table (a CTE, a subquery alias, a dropped table)."""


class _Guess(Exception):
    """The table was chosen by evidence among several in scope: plan on, but only as a proposal."""

    def __init__(self, table: "Table", why: str):
        super().__init__(why)
        self.table, self.why = table, why


def _review(reason: str, **evidence) -> _Stop:
    return _Stop(Plan("needs_review", reason, evidence=evidence))


def _refuse(reason: str, **evidence) -> _Stop:
    return _Stop(Plan("refused", reason, action="refuse", evidence=evidence))


# ---------------------------------------------------------------------------------------
# What the server must load


def candidate_relation_names(event: Event) -> tuple[set[str], set[str]]:
    """(exact names, fold keys) of the relations this event could concern."""
    names: set[str] = set()
    for ref in sqlscan.relations(event.statement or ""):
        names.add(ref.name)
    view = errors.parse_copy_to_view(event.sqlstate, event.message) or \
        (errors.parse_view_write(event.sqlstate, event.message) or (None, None))[1]
    if view:
        names.add(view)
    try:
        missing = errors.parse_missing(event.sqlstate, event.message, event.hint)
    except errors.UnreadableMessage:
        return names, set()
    for value in (missing.relation, missing.qualifier):
        if value:
            names.add(value)
    if missing.kind == "relation":
        names.add(missing.name)
        names.add(naming.snake_case(missing.name))
    if missing.kind == "column" and missing.name.lower().endswith("_id"):
        names |= naming.singular_forms(missing.name[:-3])
    return names, {naming.fold_key(n) for n in names}


# ---------------------------------------------------------------------------------------
# Compat views: a pure function of a table and its active aliases


def compat_schema(source_schema: str) -> str:
    """The compat schema of one source schema. A routed role finds it just before that schema,
    so its views answer for that schema's names only and the role's resolution order is kept."""
    name = naming.COMPAT_SCHEMA_PREFIX + source_schema
    if len(name.encode("utf-8")) < naming.MAX_IDENTIFIER_BYTES:
        return name
    return naming.COMPAT_SCHEMA_PREFIX + _short_hash(source_schema)


def is_compat_schema(name: str) -> bool:
    return name == COMPAT_SCHEMA or name.startswith(naming.COMPAT_SCHEMA_PREFIX)


# Aliases that are the column's own legacy name: shown in its place, so SELECT * keeps the legacy
# shape. The drift timeline's exact old name ("rename") wins over one the code wrote.
IN_PLACE_SOURCES = ("rename", "normalisation", "hint", "leftover", "position")


def plain_column(expression: str | None) -> str | None:
    """The column an alias expression is, when it is nothing but one quoted column."""
    found = re.fullmatch(r'"((?:[^"]|"")+)"', expression or "")
    return found.group(1).replace('""', '"') if found else None


def _view_select(table: Table, outputs: list[tuple[str, str]]) -> str:
    columns = ",\n    ".join(
        expr if expr == quote_ident(name) else f"{expr} AS {quote_ident(name)}" for name, expr in outputs
    )
    return f"SELECT\n    {columns}\n  FROM {table.qualified}"


def _column_outputs(table: Table, aliases: list[Alias], style: str) -> list[tuple[str, str]]:
    """The view's columns: the table's own, in order, each under its legacy name where a rename
    alias gives one (else in the view's style), then derived and other names."""
    column_aliases = [a for a in aliases if a.kind == "column"]
    renames = sorted((a for a in column_aliases if a.source in IN_PLACE_SOURCES
                      and table.column(plain_column(a.expression) or "") is not None),
                     key=lambda a: (a.source != "rename", a.id or MAX_ALIAS_ID))
    in_place: dict[str, str] = {}
    for alias in renames:
        column = plain_column(alias.expression)
        if column not in in_place:
            in_place[column] = alias.legacy_name
    claimed = {a.legacy_name for a in column_aliases}
    outputs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for col in table.columns:
        exposed = in_place.get(col.name) or naming.apply_style(style, col.name)
        if exposed in seen or (col.name not in in_place and exposed in claimed):
            continue
        outputs.append((exposed, quote_ident(col.name)))
        seen.add(exposed)
    for alias in column_aliases:
        if alias.legacy_name not in seen:
            outputs.append((alias.legacy_name, alias.expression or "NULL"))
            seen.add(alias.legacy_name)
    return outputs


MAX_ALIAS_ID = 2**63 - 1  # an alias not saved yet is the newest


def own_style(table: Table, aliases: list[Alias]) -> Alias | None:
    """The alias that shows the table under its own name in its legacy naming style."""
    return next((a for a in aliases if a.kind == "relation" and a.legacy_name == table.name), None)


def compat_view_columns(table: Table, aliases: list[Alias]) -> dict[str, list[tuple[str, str]]]:
    """Name -> (column, expression) pairs of every compat view the table's aliases call for."""
    views: dict[str, list[tuple[str, str]]] = {}
    own = own_style(table, aliases)
    if own or any(a.kind == "column" for a in aliases):
        views[table.name] = _column_outputs(table, aliases, own.style if own else "same")
    for alias in aliases:
        if alias.kind == "relation" and alias is not own:
            views[alias.legacy_name] = _column_outputs(table, aliases, alias.style)
    return views


def compat_views(table: Table, aliases: list[Alias]) -> dict[str, str]:
    """Name -> SELECT of every compat view the table's aliases call for."""
    return {name: _view_select(table, outputs) for name, outputs in compat_view_columns(table, aliases).items()}


def exposed_names(table: Table, relation: str, catalog: Catalog) -> set[str]:
    """The column names a routed role sees through `relation` (the table or a legacy name of it)."""
    views = compat_view_columns(table, catalog.table_aliases(table))
    if relation in views:
        return {name for name, _ in views[relation]}
    return {c.name for c in table.columns}


def compat_view(source_schema: str, name: str) -> str:
    return f"{quote_ident(compat_schema(source_schema))}.{quote_ident(name)}"


def drop_view_ddl(source_schema: str, name: str) -> str:
    return f"DROP VIEW IF EXISTS {compat_view(source_schema, name)}"


def compat_schema_ddl(source_schema: str) -> list[str]:
    """The compat schema, made on first use. USAGE for all is harmless: it holds only
    security_invoker views, which grant nothing the caller lacks on the table."""
    schema = quote_ident(compat_schema(source_schema))
    return [f"CREATE SCHEMA IF NOT EXISTS {schema}", f"GRANT USAGE ON SCHEMA {schema} TO PUBLIC"]


def _create_view(name: str, outputs: list[tuple[str, str]], table: Table, writable: bool) -> list[str]:
    view = compat_view(table.schema, name)
    # security_invoker: the view must never grant more than the caller has on the table.
    ddl = [
        f"CREATE VIEW {view} WITH (security_invoker = true) AS\n  {_view_select(table, outputs)}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {view} TO PUBLIC",
        f"COMMENT ON VIEW {view} IS "
        + quote_literal(f"selfheal compat view over {table.label}; rebuilt by selfheal, do not edit"),
    ]
    return ddl + (write_trigger_ddl(table, name, outputs) if writable else [])


def rebuild_compat(table: Table, before: list[Alias], after: list[Alias]) -> list[str]:
    """DDL that turns the compat views for `before` into those for `after`."""
    old, new = compat_view_columns(table, before), compat_view_columns(table, after)
    ddl = [drop_view_ddl(table.schema, name) for name in old]
    if any(a.writable for a in before):
        ddl += drop_write_functions_ddl(table, old)
    if new:
        ddl += compat_schema_ddl(table.schema)
    writable = any(a.writable for a in after)
    for name, outputs in new.items():
        ddl.extend(_create_view(name, outputs, table, writable))
    return ddl


# ---------------------------------------------------------------------------------------
# Writes through a compat view's derived names


def source_columns(expression: str | None, table: Table) -> list[str]:
    """The table's columns an alias expression reads, quoted or not: the columns to write instead."""
    tokens = sqlscan.tokenize(expression or "")
    return sorted({t.value for i, t in enumerate(tokens)
                   if t.kind in ("quoted", "ident") and table.column(t.value) is not None
                   and not (i + 1 < len(tokens) and tokens[i + 1].value == "(")  # a function
                   and not (i > 0 and tokens[i - 1].kind == "cast")})  # a type


def drop_write_functions_ddl(table: Table, views) -> list[str]:
    return [f"DROP FUNCTION IF EXISTS {write_function(table, view)}()" for view in views]


def write_function(table: Table, view: str) -> str:
    name = "write_" + _short_hash(f"{table.schema}.{table.name}.{view}")
    return f"{quote_ident(compat_schema(table.schema))}.{quote_ident(name)}"


def inverse_of(expression: str | None, table: Table) -> tuple[Column, str] | None:
    """(source column, type read) when a derived name is a plain cast of one column, whose write
    is the value cast back: `"service_type"::integer`, or `(service_type::integer)` as an
    administrator declares it, is written as `(value)::text`."""
    tokens = sqlscan.tokenize(expression or "")
    while len(tokens) > 2 and tokens[0].value == "(" and sqlscan.matching_paren(tokens, 0) == len(tokens) - 1:
        tokens = tokens[1:-1]
    if len(tokens) > 3 and tokens[0].value == "(" and tokens[2].value == ")":
        tokens = tokens[1:2] + tokens[3:]
    if (len(tokens) < 3 or tokens[0].kind not in ("quoted", "ident") or tokens[1].kind != "cast"
            or any(t.kind != "ident" for t in tokens[2:])):
        return None
    type_read = " ".join(t.value for t in tokens[2:])
    if len(tokens) > 3 and type_read not in MULTI_WORD_TYPES:
        return None  # `flag::boolean OR enabled`, `x::text COLLATE c`: more than a cast
    column = table.column(tokens[0].value)
    return (column, type_read) if column is not None else None


MULTI_WORD_TYPES = frozenset({"double precision", "character varying", "bit varying", "timestamp with time zone",
                              "timestamp without time zone", "time with time zone", "time without time zone"})


def write_trigger_ddl(table: Table, view_name: str, outputs: list[tuple[str, str]]) -> list[str]:
    """An INSTEAD OF INSERT and UPDATE trigger that lands a write through the view in the table:
    a renamed column as itself, a derived name cast back into its source column (read back to
    check it round-trips), and any other derived name refused with the column to write instead.

    The view takes the table's defaults, so an omitted column gets the table's default. A view
    with such triggers refuses INSERT ... ON CONFLICT (PostgreSQL finds no constraint on a view):
    that is why an administrator approves it. UPDATE needs the primary key in the view."""
    if not table.defaults_read:  # an omitted column would lose the table's default
        raise ValueError(f"the defaults of {table.label} were not read; a write trigger needs them")
    view = compat_view(table.schema, view_name)
    fn = write_function(table, view_name)
    new = {name: f"NEW.{quote_ident(name)}" for name, _ in outputs}
    old = {name: f"OLD.{quote_ident(name)}" for name, _ in outputs}
    plain: dict[str, list[str]] = {}
    derived: dict[str, list[tuple[str, str]]] = {}
    read_only: list[tuple[str, str]] = []
    for name, expr in outputs:
        column, inverse = plain_column(expr), inverse_of(expr, table)
        if column is not None and table.column(column) is not None:
            plain.setdefault(column, []).append(name)
        elif inverse is not None:
            derived.setdefault(inverse[0].name, []).append((name, inverse[1]))
        else:
            read_only.append((name, expr))
    checks_insert, checks_update, ddl = [], [], []
    insert_cols, insert_vals, sets = [], [], []
    by_default: tuple[str, int] | None = None
    for col in table.columns:
        if col.name not in plain and col.name not in derived:
            continue
        ident = quote_ident(col.name)
        writers = [(new[n], f"({new[n]})::{col.type}", old[n]) for n, _ in derived.get(col.name, [])] + \
                  [(new[n], new[n], old[n]) for n in plain.get(col.name, [])]
        if col.identity == "a" or col.generated:
            for value, _, before in writers:
                checks_insert.append(_raise_if(f"{value} IS NOT NULL", f"column {col.name} can only be DEFAULT"))
                checks_update.append(_raise_if(f"{value} IS DISTINCT FROM {before}",
                                               f"column {col.name} can only be updated to DEFAULT"))
            continue
        for name, read_type in derived.get(col.name, []):
            round_trip = f"{new[name]} IS NOT NULL AND ({new[name]})::{col.type}::{read_type} IS DISTINCT FROM {new[name]}"
            message = quote_literal(f"{_percent(name)} = % does not read back the same through {_percent(col.name)}")
            for checks in (checks_insert, checks_update):
                checks.append(f"IF {round_trip} THEN RAISE EXCEPTION {message}, {new[name]} "
                              "USING ERRCODE = 'data_exception'; END IF;")
        for (a, a_value, a_old), (b, b_value, b_old) in zip(writers, writers[1:]):
            why = f"two names of column {col.name} were given different values"
            checks_insert.append(_raise_if(f"{a} IS NOT NULL AND {b} IS NOT NULL "
                                           f"AND {a_value} IS DISTINCT FROM {b_value}", why))
            checks_update.append(_raise_if(f"{a} IS DISTINCT FROM {a_old} AND {b} IS DISTINCT FROM {b_old} "
                                           f"AND {a_value} IS DISTINCT FROM {b_value}", why))
        fallback = [col.default] if col.default and len(writers) > 1 else []
        insert_cols.append(ident)
        insert_vals.append(f"COALESCE({', '.join([v for _, v, _ in writers] + fallback)})"
                           if len(writers) > 1 else writers[0][1])
        changed = " ".join(f"WHEN {value} IS DISTINCT FROM {before} THEN {converted}"
                           for value, converted, before in writers)
        sets.append(f"{ident} = CASE {changed} ELSE {ident} END")
        if col.identity == "d" and len(writers) == 1 and by_default is None:
            by_default = (writers[0][0], len(insert_cols) - 1)  # left out when NULL: the table numbers it
        for name in plain.get(col.name, []):
            if col.default and len(writers) == 1:
                ddl.append(f"ALTER VIEW {view} ALTER COLUMN {quote_ident(name)} SET DEFAULT {col.default}")
    for name, expr in read_only:
        instead = ", ".join(source_columns(expr, table)) or "the table"
        why = f"{name} is derived as {expr} and cannot be written; write {instead} instead"
        checks_insert.append(_raise_if(f"{new[name]} IS NOT NULL", why, "feature_not_supported"))
        checks_update.append(_raise_if(f"{new[name]} IS DISTINCT FROM {old[name]}", why, "feature_not_supported"))
    returning = f"RETURNING {', '.join(expr for _, expr in outputs)} INTO {', '.join(new[n] for n, _ in outputs)}"
    keys = [plain[k][0] for k in table.primary_key if k in plain]
    updatable = bool(table.primary_key) and len(keys) == len(table.primary_key)
    where = " AND ".join(f"{quote_ident(k)} = {old[plain[k][0]]}" for k in table.primary_key) if updatable else ""

    def insert(cols: list[str], vals: list[str]) -> list[str]:
        values = f"({', '.join(cols)}) VALUES ({', '.join(vals)})" if cols else "DEFAULT VALUES"
        return [f"    INSERT INTO {table.qualified} {values}", f"      {returning};"]

    body = ["BEGIN", "  IF TG_OP = 'INSERT' THEN", *("    " + c for c in checks_insert)]
    if by_default is None:
        body += insert(insert_cols, insert_vals)
    else:  # an identity column takes the table's next number only where it is left out
        value, at = by_default
        body += [f"    IF {value} IS NULL THEN", *insert(insert_cols[:at] + insert_cols[at + 1:],
                                                       insert_vals[:at] + insert_vals[at + 1:]),
                 "    ELSE", *insert(insert_cols, insert_vals), "    END IF;"]
    if updatable:
        body += ["  ELSE", *("    " + c for c in checks_update),
                 f"    UPDATE {table.qualified} SET {', '.join(sets)}", f"      WHERE {where}", f"      {returning};",
                 "    IF NOT FOUND THEN",
                 "      RETURN NULL;  -- the caller may not update it (row security), or it is gone",
                 "    END IF;"]
    body += ["  END IF;", "  RETURN NEW;", "END"]
    text, tag = "\n".join(body), "$selfheal$"
    while tag in text:  # a served name may hold any character, a dollar quote's tag too
        tag = f"$selfheal_{_short_hash(tag + text)}$"
    events = "INSERT OR UPDATE" if updatable else "INSERT"
    return [
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp "
        f"AS {tag}\n{text}\n{tag}",
        f"COMMENT ON FUNCTION {fn}() IS "
        + quote_literal(f"selfheal: writes through compat view {view_name} land in {table.label}; rebuilt by selfheal"),
        f"CREATE TRIGGER selfheal_write INSTEAD OF {events} ON {view} FOR EACH ROW EXECUTE FUNCTION {fn}()",
        *ddl,
    ]


def _raise_if(condition: str, message: str, errcode: str = "data_exception") -> str:
    return f"IF {condition} THEN RAISE EXCEPTION {quote_literal(_percent(message))} USING ERRCODE = '{errcode}'; END IF;"


def _percent(text: str) -> str:
    """Text that RAISE prints as written: % is its placeholder."""
    return text.replace("%", "%%")


# ---------------------------------------------------------------------------------------
# Planning


def plan(event: Event, catalog: Catalog, policy: Policy = Policy(), approved: bool = False) -> Plan:
    """Decide what to do about one reported error.

    A repair is applied by itself only when its evidence is conclusive and policy says auto;
    otherwise it is proposed (or observed) with its DDL. `approved`: an administrator approved
    this repair, so it is applied whatever its risk and mode.
    """
    decided = _decide(event, catalog, policy)
    return _gate(decided, policy, catalog, approved)


def _decide(event: Event, catalog: Catalog, policy: Policy) -> Plan:
    view_write = errors.parse_view_write(event.sqlstate, event.message)
    if view_write:
        return _plan_view_write(*view_write, catalog, policy)
    copy_to = errors.parse_copy_to_view(event.sqlstate, event.message)
    if copy_to:
        return _plan_copy_to_view(copy_to, catalog, policy)
    if not errors.is_schema_error(event.sqlstate):
        kind = errors.classify(event.sqlstate)
        return Plan(
            "not_schema",
            f"{kind} ({event.sqlstate or 'no sqlstate'}) is not a schema error; recorded, never repaired",
            action="classify",
            evidence={"class": kind},
        )
    try:
        missing = errors.parse_missing(event.sqlstate, event.message, event.hint)
        _check_evidence(missing, event)
        if missing.kind == "relation":
            return _plan_relation(missing, catalog, policy)
        return _plan_column(missing, event, catalog, policy)
    except errors.UnreadableMessage as exc:
        return Plan("needs_review", str(exc))
    except naming.RefusedName as exc:
        return Plan("refused", f"refused: {exc}", action="refuse")
    except _Stop as stop:
        return stop.plan


def _check_evidence(missing: errors.MissingName, event: Event) -> None:
    """Only a real error of the statement is evidence: not one raised inside a function (RAISE,
    a trigger), and not one whose statement never names the missing identifier."""
    function = errors.raised_inside(event.context)
    if function:
        raise _review(f"raised inside function {function}, not by the statement itself (RAISE or a function's "
                      "own query); never repaired automatically", function=function)
    if missing.kind == "column":
        naming.validate_identifier(missing.name, "column name", served=True)
    statement = event.statement
    if not statement:
        if event.source == "log":
            raise _review("the log entry carries no statement to check the error against; "
                          "set log_min_error_statement = error")
        return
    qualifier = missing.qualifier or (missing.schema if missing.kind == "relation" else None)
    named = sqlscan.names_identifier(statement, missing.name, qualifier)
    if named and missing.relation:
        named = sqlscan.names_identifier(statement, missing.relation)
    if not named:
        raise _review(f"the statement does not name {missing.name!r} where PostgreSQL would report it, "
                      "so the error is no evidence about it", missing=missing.name)


_NOT_COLUMNS = sqlscan.CLAUSE_WORDS | {"BY", "ASC", "DESC", "IN", "IS", "NULL", "LIKE", "ILIKE", "BETWEEN",
                                       "DISTINCT", "ALL", "ANY", "SOME", "EXISTS", "CASE", "TRUE", "FALSE",
                                       "NULLS", "FIRST", "LAST", "ASYMMETRIC", "SYMMETRIC", "COLLATE"}


def remaining_legacy_names(event: Event, catalog: Catalog) -> list[tuple[str, str]]:
    """(sqlstate, message) of each error the statement would still raise for a routed role, as
    far as the catalog shows: a relation that is a legacy spelling of a table, and a column name
    that is a legacy spelling of a column of the one relation it can belong to, which no compat
    view serves yet. Healing them now heals the whole statement in one round."""
    statement = event.statement or ""
    found: list[tuple[str, str]] = []
    scope: list[tuple[sqlscan.RelationRef, Table, set[str]]] = []
    for ref in sqlscan.relations(statement):
        try:
            table = _resolve_relation(catalog, ref.name, ref.schema)
        except _Stop:
            key = naming.fold_key(ref.name)
            if ref.schema is None and len([t for t in catalog.tables if naming.fold_key(t.name) == key]) == 1:
                found.append((errors.UNDEFINED_TABLE, f'relation "{ref.name}" does not exist'))
            continue
        scope.append((ref, table, exposed_names(table, ref.name, catalog)))
    relation_names = {n for ref, _, _ in scope for n in (ref.name, ref.alias) if n} | sqlscan.scope_names(statement)
    tokens = sqlscan.tokenize(statement)
    in_using = {k for i, tok in enumerate(tokens) if tok.is_word("USING") and i + 1 < len(tokens)
                and tokens[i + 1].value == "(" for k in range(i + 2, sqlscan.matching_paren(tokens, i + 1))}

    sources_of: dict[str, list[sqlscan.RelationRef]] = {}  # each scanned once per statement
    sides_of: dict[str, tuple[list[sqlscan.RelationRef], list[sqlscan.RelationRef]]] = {}

    def unserved(candidates, name: str) -> bool:
        """No relation here serves the name, and exactly one has a column it is a spelling of."""
        if any(name in exposed for _, _, exposed in candidates):
            return False
        key = naming.fold_key(name)
        owners = [ref for ref, table, _ in candidates if any(naming.fold_key(c.name) == key for c in table.columns)]
        return len(owners) == 1

    for i, tok in enumerate(tokens):
        if not tok.is_name or tok.value in relation_names or '"' in tok.value or "." in tok.value \
                or (tok.kind == "ident" and tok.value.upper() in _NOT_COLUMNS):
            continue
        after = tokens[i + 1].value if i + 1 < len(tokens) else None
        before = tokens[i - 1] if i else None
        if after in ("(", ".") or (before is not None and before.is_word("AS")):
            continue  # a function, a qualifier or an output name
        if i in in_using:  # PostgreSQL looks the name up in each side of the join
            if tok.value not in sides_of:
                sides_of[tok.value] = sqlscan.using_sides(statement, tok.value)
            left, right = sides_of[tok.value]
            messages = [f'column "{tok.value}" specified in USING clause does not exist in {side} table'
                        for side, refs in (("left", left), ("right", right))
                        if unserved([entry for entry in scope if entry[0] in refs], tok.value)]
        else:
            qualifier = tokens[i - 2].value if before is not None and before.value == "." and i >= 2 else None
            if qualifier and qualifier not in sources_of:
                sources_of[qualifier] = sqlscan.qualifier_sources(statement, qualifier)
            sources = sources_of[qualifier] if qualifier else None
            candidates = [entry for entry in scope if sources is None or entry[0] in sources]
            messages = [f"column {qualifier}.{tok.value} does not exist" if qualifier
                        else f'column "{tok.value}" does not exist'] if unserved(candidates, tok.value) else []
        for message in messages:
            if (errors.UNDEFINED_COLUMN, message) not in found:
                found.append((errors.UNDEFINED_COLUMN, message))
    return found


def _action_class(plan: Plan) -> str:
    """Which policy mode governs a plan: add_column, alias or derived_alias."""
    if plan.evidence.get("strategy") in DERIVED_IN_TABLE:
        return "derived_alias"
    if plan.action == "add_alias" and plan.alias is not None:
        alias = plan.alias
        plain = alias.kind == "relation" or bool(re.fullmatch(r'"(?:[^"]|"")+"', alias.expression or ""))
        return "alias" if plain else "derived_alias"
    return plan.action


def _gate(plan: Plan, policy: Policy, catalog: Catalog, approved: bool) -> Plan:
    """Apply only conclusive evidence under an auto mode; otherwise propose or observe, with the DDL."""
    if plan.status != "apply" or plan.action == "refresh_compat" or approved:
        return plan
    table = plan.table
    rejected = catalog.rejected.get((table.schema, table.name, plan.column, decision_action(plan.action, plan.evidence))
                                    ) if table else None
    if rejected:
        return replace(plan, status="refused", reason=f"an administrator rejected or undid this repair (audit "
                       f"{rejected}); selfheal.approve({rejected}) applies it", evidence={**plan.evidence,
                                                                                           "rejected_by": rejected})
    risks = plan.evidence.get("risk", [])
    action_class = _action_class(plan)
    mode = policy.mode_for(action_class)
    if risks:
        why = "the evidence is not conclusive (" + "; ".join(risks) + ")"
        mode = "observe" if mode == "observe" else "propose"
    elif mode == "auto":
        return plan
    else:
        why = f"policy {action_class} is {mode}"
    if mode == "observe":
        return replace(plan, status="observed", reason=f"observed only, {why}: {plan.reason}")
    return replace(plan, status="pending_approval", reason=f"proposed, {why}: {plan.reason}; approve with "
                   "selfheal.approve(audit id)")


def _pick_table(candidates: list[Table], what: str) -> Table:
    if len(candidates) == 1:
        return candidates[0]
    # Several schemas hold the name: which one the app meant depends on its search_path.
    if not candidates:
        raise _review(f"no table named {what} was found")
    raise _review(f"{what} is ambiguous: " + ", ".join(sorted(t.label for t in candidates)))


def _resolve_relation(catalog: Catalog, name: str, schema: str | None = None) -> Table:
    """The base table a name in a statement means, following legacy relation aliases."""
    direct = catalog.find(name, schema)
    if direct:
        return _pick_table(direct, name)
    for alias in catalog.aliases:
        if alias.kind == "relation" and alias.legacy_name == name:
            return _pick_table(catalog.find(alias.table, alias.schema), alias.table)
    raise _NotFound(Plan("needs_review", f"relation {name!r} named in the statement was not found"))


def statement_refs(missing: errors.MissingName, statement: str) -> list[sqlscan.RelationRef]:
    """The relations of the statement a missing name can belong to: the one named, the ones a
    qualifier reads through (alias, CTE, subquery), a USING join's side, or all of them."""
    if missing.kind == "relation":
        return [sqlscan.RelationRef(missing.name, missing.schema)]
    if missing.relation:
        return [sqlscan.RelationRef(missing.relation)]
    if missing.qualifier:
        return sqlscan.qualifier_sources(statement, missing.qualifier)
    if missing.using_side:
        left, right = sqlscan.using_sides(statement, missing.name)
        return left if missing.using_side == "left" else right
    return sqlscan.relations(statement)


def _target_table(missing: errors.MissingName, event: Event, catalog: Catalog) -> Table:
    if missing.relation:
        return _resolve_relation(catalog, missing.relation)
    statement = event.statement or ""
    refs = statement_refs(missing, statement)
    if missing.qualifier and len(refs) == 1:
        return _resolve_relation(catalog, refs[0].name, refs[0].schema)
    if missing.qualifier and not refs:
        if not statement:
            raise _review(f"no statement was reported, so {missing.qualifier!r} cannot be resolved")
        raise _review(f"{missing.qualifier!r} is not an alias, table, CTE or subquery of the statement that "
                      "passes the relation's columns through")
    if not refs:
        raise _review("the statement was not reported or names no table, so the table is unknown")
    tables, serving = [], []
    for ref in refs:
        try:
            table = _resolve_relation(catalog, ref.name, ref.schema)
        except _NotFound:
            continue
        if table not in tables:
            tables.append(table)
        if table.column(missing.name) is None and missing.name in exposed_names(table, ref.name, catalog):
            serving.append(ref.name)
    if len(tables) == 1:
        return tables[0]
    if serving:
        raise _Stop(Plan("resolved", f"{missing.name!r} is already served by the compat view of "
                         f"{', '.join(serving)}; a role that still fails needs selfheal.enable_compat()"))
    if not tables:
        raise _review("no table named in the statement was found")
    # Several tables: the name could be any one's. One with evidence for it is only a guess
    # (the table the code meant may have lost the column), so it is proposed, never applied.
    with_evidence = [t for t in tables if _rename_source(t, missing.name) or _derived_source(t, missing.name)]
    if len(with_evidence) == 1:
        raise _Guess(with_evidence[0], f"{missing.name!r} is unqualified and the statement names "
                     + ", ".join(t.label for t in tables))
    raise _review(
        f"column {missing.name!r} could belong to any of " + ", ".join(t.label for t in tables)
    )


def _rename_source(table: Table, name: str) -> Column | None:
    """A column that is the same name spelled differently (UnitPrice, unitprice -> unit_price)."""
    key = naming.fold_key(name)
    matches = [c for c in table.columns if naming.fold_key(c.name) == key and c.name != name]
    return matches[0] if len(matches) == 1 else None


def _derived_source(table: Table, name: str) -> Column | None:
    """For x_id, the column x beside it."""
    if name.lower().endswith("_id") and len(name) > 3:
        return table.column(name[:-3])
    return None


def _key_type_for(name: str, table: Table, catalog: Catalog) -> str:
    """The type an *_id column should have: the referenced table's key, else this table's key."""
    if name.lower().endswith("_id"):
        for form in naming.singular_forms(name[:-3]):
            for referenced in catalog.find(form):
                key = referenced.key_type()
                if key in INTEGER_TYPES or key == "uuid":
                    return key
    key = table.key_type()
    return key if key in INTEGER_TYPES or key == "uuid" else "integer"


def derived_cast(column: str, source_type: str, target_type: str) -> tuple[str, str | None]:
    """(expression, unconvertible): the cast that serves a derived name, and a condition true for
    a value it cannot cast (None when every value casts).

    The cast raises on a value it cannot convert: a derived name never reads a made-up NULL.
    The condition never raises, so the server can count such values before serving the name.
    """
    ident = quote_ident(column)
    source_type = source_type.split("(")[0]  # character varying(20) is a text type too
    if source_type == target_type:
        return ident, None
    if target_type in INTEGER_TYPES and source_type in INTEGER_TYPES \
            and INTEGER_TYPES.index(target_type) >= INTEGER_TYPES.index(source_type):
        return f"{ident}::{target_type}", None
    if target_type == "text":
        return f"{ident}::text", None
    if target_type in INTEGER_TYPES and source_type in TEXT_TYPES:
        low, high = INTEGER_BOUNDS[target_type]
        # The integer input functions accept surrounding white space and a sign; numeric takes
        # any number of digits, so the bound is checked without overflow.
        integer = r"'^\s*[-+]?[0-9]+\s*$'"
        return (f"{ident}::{target_type}",
                f"CASE WHEN {ident} ~ {integer} THEN {ident}::numeric NOT BETWEEN {low} AND {high} "
                f"ELSE {ident} IS NOT NULL END")
    raise _review(f"no checked cast from {source_type} to {target_type} for {column!r}")


def judge_values(plan: Plan, checked: int, unconvertible: int) -> Plan:
    """The plan once the server has tried its cast on `checked` existing rows."""
    check = plan.value_check
    evidence = {**plan.evidence, "values_checked": checked}
    if unconvertible:
        return Plan("needs_review",
                    f"{unconvertible} of the {checked} rows checked hold {check['source']} values that do not "
                    f"convert to {check['target']}: served as {plan.column!r} they would fail to read; the code "
                    f"needs changing, or an administrator declares what {plan.column!r} means with "
                    "selfheal.add_alias()", table=plan.table, column=plan.column,
                    evidence={**evidence, "unconvertible": unconvertible})
    if checked >= check["rows"]:
        evidence["values_unchecked"] = (f"only the first {checked} rows were checked; a later value that does "
                                        "not convert raises when read, it never reads as NULL")
    return replace(plan, evidence=evidence)


def _plan_alias(table: Table, alias: Alias, catalog: Catalog, policy: Policy, reason: str,
                evidence: dict) -> Plan:
    before = catalog.table_aliases(table)
    after = [a for a in before if (a.kind, a.legacy_name) != (alias.kind, alias.legacy_name)] + [alias]
    conflicts = alias_conflicts(table, after, catalog)
    if conflicts:
        raise _review("the compat views cannot be built: " + "; ".join(conflicts), **evidence)
    lock_profile = ("catalog only: compat views rebuilt; the table is read under ACCESS SHARE, "
                    "never rewritten")
    return Plan(
        "apply", reason, action="add_alias", table=table, column=alias.legacy_name, alias=alias,
        ddl=rebuild_compat(table, before, after), undo_ddl=rebuild_compat(table, after, before),
        lock_profile=lock_profile, evidence=evidence,
    )


def compat_view_name(alias: Alias) -> str:
    """The compat view that serves an alias: the table's own name for a column alias, the legacy
    name for a relation alias."""
    return alias.table if alias.kind == "column" else alias.legacy_name


def alias_conflicts(table: Table, aliases: list[Alias], catalog: Catalog) -> list[str]:
    """Why the compat views for these aliases must not be built: a view name that already serves
    another table of the schema, or one that would hide another relation or type of the schema
    from routed roles (they find its compat schema just before it)."""
    claimed = {compat_view_name(a): f"{a.schema}.{a.table}" for a in catalog.aliases
               if a.schema == table.schema and a.table != table.name}
    views = compat_views(table, aliases)
    problems = [f"{view} already serves {claimed[view]}" for view in sorted(views) if view in claimed]
    problems += [f"{compat_schema(table.schema)}.{view} would hide {schema}.{name} from routed roles"
                 for view in sorted(views) for schema, name in sorted(catalog.relations)
                 if name == view and schema == table.schema and name != table.name]
    return problems


def _stale_views_serving(table: Table, name: str, catalog: Catalog) -> list[str]:
    """Compat views that would serve `name` if rebuilt, but do not today."""
    expected = compat_view_columns(table, catalog.table_aliases(table))
    return sorted(view for view, outputs in expected.items()
                  if name in [column for column, _ in outputs]
                  and name not in catalog.views.get((table.schema, view), ()))


def _plan_column(missing: errors.MissingName, event: Event, catalog: Catalog, policy: Policy) -> Plan:
    risks: list[str] = []
    try:
        table = _target_table(missing, event, catalog)
    except _Guess as guess:
        table = guess.table
        risks.append(f"table chosen among several: {guess.why}")
    naming.validate_schema(table.schema)
    name = missing.name
    evidence: dict = {"table": table.label, "missing": name}
    if risks:
        evidence["risk"] = risks
    hinted = [c for _, c in missing.hint_candidates]
    if hinted:
        evidence["hint"] = hinted

    stale = _stale_views_serving(table, name, catalog)
    if stale:
        aliases = catalog.table_aliases(table)
        return Plan("apply", f"compat view {', '.join(stale)} is behind {table.label} (its columns changed "
                    f"since it was built); rebuilt so {name!r} is served",
                    action="refresh_compat", table=table, column=name, ddl=rebuild_compat(table, aliases, aliases),
                    lock_profile="catalog only: compat views rebuilt", evidence=evidence)

    views = compat_view_columns(table, catalog.table_aliases(table))
    if any(name in [column for column, _ in outputs] for outputs in views.values()):
        return Plan("resolved", f"{name!r} is already served by the compat view of {table.label}; "
                    "a role that still fails needs selfheal.enable_compat()",
                    table=table, column=name, evidence=evidence)
    if table.column(name):
        if views:
            # Its compat view shows a legacy name in its place; newer code of a routed role uses it.
            alias = Alias(table.schema, table.name, name, expression=quote_ident(name), source="current")
            return _plan_alias(table, alias, catalog, policy, f"{name!r} is {table.label}'s own column, which its "
                               "compat view shows under a legacy name; served by that view too", evidence)
        return Plan("resolved", f"{name!r} already exists on {table.label}",
                    table=table, column=name, evidence=evidence)

    if (table.schema, table.name, name) in catalog.dropped:
        raise _review(f"{table.label}.{name} was dropped (see selfheal.schema_event): its data is gone, and a new "
                      "empty column would read NULL where values were; the code needs changing", **evidence)
    renamed = _rename_source(table, name)
    if renamed:
        evidence["normalisation"] = f"{name} -> {renamed.name}"
        style = _legacy_convention(table, name, renamed, [event.statement or ""] + list(event.related_statements),
                                   catalog)
        if style:
            evidence["column_style"] = style
            alias = Alias(table.schema, table.name, table.name, kind="relation", style=style, source="style")
            return _plan_alias(table, alias, catalog, policy,
                               f"{name!r} is {renamed.name} in the {style} naming {table.label} had before it "
                               f"moved to snake_case; the compat view shows every column of {table.label} in "
                               "that naming, in place", evidence)
        alias = Alias(table.schema, table.name, name, expression=quote_ident(renamed.name),
                      source="hint" if renamed.name in hinted else "normalisation")
        return _plan_alias(table, alias, catalog, policy,
                           f"{name!r} is the legacy spelling of {table.label}.{renamed.name}; served by the compat view",
                           evidence)

    # A plain rename (above) reads the real values; a derived value or a new column is made up.
    if sqlscan.in_write_predicate(event.statement or "", name, missing.qualifier):
        evidence.setdefault("risk", []).append("the write's row choice (WHERE, ON CONFLICT, MERGE) uses it: a "
                                               "made-up value would change which rows it touches")
    source = _derived_source(table, name)
    if source:
        target = sqlscan.infer_usage_type(event.statement or "", name, missing.qualifier)
        if target not in INTEGER_TYPES and target != "uuid":
            target = _key_type_for(name, table, catalog)
        evidence["convention"] = f"{name} beside {source.name} ({source.type})"
        if missing.relation:
            # "column x of relation t" is PostgreSQL's wording for a write's target (INSERT's
            # columns, UPDATE's SET): a derived name can be read, never written.
            raise _review(f"{name!r} is written, and it would be derived from {table.label}.{source.name}, "
                          f"which a derived name cannot take a write for; write {source.name} instead", **evidence)
        expression, unconvertible = derived_cast(source.name, source.type, target)
        in_table = policy.derived_columns == "table"
        index = index_ddl(table, name, quote_ident(name) if in_table else expression) \
            if source.name in table.indexed_columns and table.row_estimate >= INDEX_WORTH_ROWS else None
        if index:
            # Reads that filter on the name would scan the whole table where the source is indexed.
            evidence["index"] = index
        if in_table:
            plan = plan_derived_column(table, name, target, expression, [source.name], policy, evidence)
        else:
            alias = Alias(table.schema, table.name, name, expression=expression,
                          source="hint" if source.name in hinted else "convention")
            plan = _plan_alias(table, alias, catalog, policy,
                               f"{name!r} is derived from {table.label}.{source.name} as {target}; a value that "
                               "cannot be cast raises when read, it never reads as NULL", evidence)
        if index:
            plan.reason += (f"; {source.name} is indexed, so reads that filter on {name} want an index too: "
                            "selfheal indexes --apply builds it CONCURRENTLY")
        if unconvertible:
            plan.value_check = {"source": source.name, "target": target, "unconvertible": unconvertible,
                                "rows": policy.value_check_rows}
        return plan

    def proposed_alias(column: str, risk: str, source: str, reason: str) -> Plan:
        evidence.setdefault("risk", []).append(risk)
        alias = Alias(table.schema, table.name, name, expression=quote_ident(column), source=source)
        return _plan_alias(table, alias, catalog, policy, reason, evidence)

    left = _leftover_source(table, name)
    if left:
        return proposed_alias(left[0], f"{left[1]} still carries the name: a rename to {left[0]}?", "leftover",
                              f"{name!r} was probably renamed to {table.label}.{left[0]}: {left[1]} on it still "
                              f"carries the old name; served as {left[0]}, never as a new empty column")
    meant = _probable_typo(table, name, missing, catalog)
    if meant:
        return proposed_alias(meant, f"probable typo of {meant}", "typo",
                              f"did the code mean {table.label}.{meant}? {name!r} would be served as {meant}")
    moved = _renamed_column(table, name, event.statement or "")
    if moved:
        return proposed_alias(moved[0], f"{moved[1]}: a rename to {moved[0]}?", "position",
                              f"{name!r} was probably renamed to {table.label}.{moved[0]} ({moved[1]}); served "
                              f"as {moved[0]}, never as a new empty column")

    return _plan_add_column(table, name, event, missing, catalog, policy, evidence)


def _legacy_convention(table: Table, name: str, renamed: Column, statements: list[str],
                       catalog: Catalog) -> str | None:
    """The naming the whole table had before it moved to snake_case, when the evidence says so:
    - 'flat': the code writes `name` in mixed case without quotes (Chinook's AlbumId, which
      PostgreSQL folded to albumid);
    - 'pascal': the code quotes it in PascalCase ("AlbumId"), spells every name it quotes that
      way ("CustomerID" beside it says the naming was not regular), and quotes a one-word column
      so too ("Title") if the table has any: `name` is no evidence of "Name", and restyling it
      would break code that reads `name` and change the keys `SELECT *` gives it;
    and in both, the table name not in snake_case, no column in snake_case where the naming
    differs, every column snake_case and reading back one-to-one. A table that mixed
    conventions ("UnitPrice" beside invoice_line_id) gets no such view."""
    style = naming.legacy_style(name, renamed.name)
    if style not in ("flat", "pascal") or "_" not in renamed.name:
        return None
    if style == "flat":
        written_as = re.findall(rf'(?<![\w"$]){re.escape(name)}(?![\w"$])', statements[0], re.I)
        if not written_as or not all(any(ch.isupper() for ch in w[1:]) for w in written_as):
            return None  # written flat, or quoted: one column may have moved, not the naming
    if any(a.kind == "column" and a.source == "current" for a in catalog.table_aliases(table)):
        return None  # code of a routed role already uses the new names
    names = [c.name for c in table.columns]
    styled = [naming.apply_style(style, n) for n in names]
    taken = set(names)
    if any(n != naming.snake_case(n) for n in names) or len(set(styled)) != len(styled) \
            or any(f != n and f in taken for n, f in zip(names, styled)):
        return None  # not snake_case throughout, or two columns would read as one name
    moved = {n for n, f in zip(names, styled) if n != f} | ({table.name} if "_" in table.name else set())
    tokens = [t for statement in statements for t in sqlscan.tokenize(statement) if t.is_name]
    if {t.value for t in tokens} & moved:
        return None
    if style == "pascal":
        quoted = {t.value for t in tokens if t.kind == "quoted"}
        styled_by_key = {naming.fold_key(f): f for f in styled}
        if any(styled_by_key.get(naming.fold_key(q), q) != q for q in quoted):
            return None  # an acronym ("CustomerID") or another spelling: the naming was not regular
        one_word = {f for n, f in zip(names, styled) if "_" not in n}
        if one_word and not one_word & quoted:
            return None
    return style


def _leftover_source(table: Table, name: str) -> tuple[str, str] | None:
    """(column, object) when a constraint, index or owned sequence on exactly one other column
    still carries `name` (orders_customer_id_fkey on client_id): evidence of a rename."""
    marker = re.compile(rf"(^|_){re.escape(name.lower())}(_|$)")
    found = {(columns[0], obj) for obj, columns in table.named_objects
             if len(columns) == 1 and columns[0] != name and marker.search(obj.lower().split(".")[-1].strip('"'))}
    columns = {column for column, _ in found}
    if len(columns) != 1:
        return None
    return sorted(found)[0]


# Types a new column gets a default for that reads as a real value. Not timestamps: code ahead
# of the schema adds one beside a created_at far more often than a rename leaves one behind.
MADE_UP_DEFAULT_TYPES = ("boolean", "jsonb")


def _renamed_column(table: Table, name: str, statement: str) -> tuple[str, str] | None:
    """(column, why) when the table holds one column that looks like `name` renamed: the only
    column the statement does not name between the names it lists around `name` (an ORM lists
    its model in the table's order), the only column that keeps `name` as a word of its own
    (name -> full_name), or, where the name gives boolean or jsonb, the only column of that
    type the statement does not name. Where the name gives a type, the column has it."""
    expected = naming.type_from_name(name)
    fits = (lambda c: c.type == expected[0]) if expected else (lambda c: True)
    named = {t.value for t in sqlscan.tokenize(statement) if t.is_name}
    neighbours = sqlscan.select_list_neighbours(statement, name)
    if neighbours and neighbours != (None, None):
        before, after = (table.column(n) if n else None for n in neighbours)
        if (before or not neighbours[0]) and (after or not neighbours[1]):
            low, high = before.attnum if before else 0, after.attnum if after else MAX_COLUMNS + 1
            between = [c for c in table.columns if low < c.attnum < high and c.name not in named]
            if len(between) == 1 and fits(between[0]):
                listed = " and ".join(repr(n) for n in neighbours if n)
                return between[0].name, f"the only column the statement leaves out beside {listed}"
    lower = name.lower()
    word = re.compile(rf"(^|_){re.escape(lower)}(_|$)")
    # The substring test first: on a wide table it leaves out nearly every column without a regex.
    carriers = [c for c in table.columns
                if lower in (folded := c.name.lower()) and c.name not in named and word.search(folded)]
    if len(carriers) == 1 and fits(carriers[0]):
        return carriers[0].name, f"{carriers[0].name} keeps {name!r} as a word"
    if expected and expected[0] in MADE_UP_DEFAULT_TYPES:
        # A new column would read a made-up default (false, {}) where the renamed one has values.
        typed = [c for c in table.columns if fits(c) and c.name not in named]
        if len(typed) == 1:
            return typed[0].name, (f"the only {expected[0]} column the statement does not name; a new "
                                   f"{name!r} would read {expected[1]} where it has values")
    return None


def _probable_typo(table: Table, name: str, missing: errors.MissingName, catalog: Catalog) -> str | None:
    """The column the code probably meant: the one PostgreSQL's HINT names on this table, else the
    only name within a small edit distance. A typo is never added as a column of its own."""
    names = [c.name for c in table.columns] + [a.legacy_name for a in catalog.table_aliases(table)
                                                if a.kind == "column"]
    hinted = [c for _, c in missing.hint_candidates if c in names]
    if hinted:
        return hinted[0]
    close = naming.probable_typo(name, names)
    if len(close) > 1:
        raise _review(f"{name!r} is close to several columns of {table.label} ({', '.join(sorted(close))}); "
                      "which one the code meant is for a person to say", probable_typo_of=sorted(close))
    return close[0] if close else None


def infer_column_type(name: str, statements: list[str], qualifier: str | None, table: Table,
                      catalog: Catalog) -> tuple[str, str | None, str]:
    """(type, constant default, why) for a genuinely missing column, from every statement seen
    for the error (the failing one first): a type the application declared, then how the
    statements use it, then the name. Statements that disagree are no evidence to act on."""
    declared = {sqlscan.declared_types(s).get(name) for s in statements} - {None}
    if len(declared) == 1:
        found = declared.pop()
        return found, naming.USAGE_DEFAULTS.get(found), f"the application declares it as {found}"
    usages = {sqlscan.infer_usage_type(s, name, qualifier) for s in statements} - {None}
    if len(declared) > 1 or len(usages) > 1:
        raise _review(f"the statements seen for this error disagree on the type of {name!r}: "
                      + ", ".join(sorted(declared | usages)), missing=name)
    if usages:
        usage = usages.pop()
        return usage, naming.USAGE_DEFAULTS.get(usage), f"the statement uses it as {usage}"
    by_name = naming.type_from_name(name)
    if by_name:
        return by_name[0], by_name[1], f"the name {name!r} conventionally means {by_name[0]}"
    if name.lower().endswith("_id"):
        key = _key_type_for(name, table, catalog)
        return key, None, f"{name!r} names a key, typed like the key ({key})"
    return "text", None, WEAK_TYPE


WEAK_TYPE = "weak evidence: no statement seen declares or uses it with a type, and its name says nothing, so text"


def _plan_add_column(table: Table, name: str, event: Event, missing: errors.MissingName, catalog: Catalog,
                     policy: Policy, evidence: dict) -> Plan:
    naming.validate_identifier(name, "column name")  # a new column: served names may be any
    _check_column_budget(table, policy, evidence)
    statements = [event.statement or ""] + list(event.related_statements)
    col_type, default, why = infer_column_type(name, statements, missing.qualifier, table, catalog)
    evidence["type"] = why
    evidence["added_as"] = {"type": col_type, "default": default}
    if why == WEAK_TYPE:
        # A guessed type is a guess: a boolean added as text reads 'false' as true and fails
        # every later filter, and a log-mode app never declares what it meant.
        evidence.setdefault("risk", []).append("its type is unknown: it would be added as text")
    default_sql = f" DEFAULT {default}" if default else ""
    column = quote_ident(name)
    added = replace(table, columns=table.columns + (Column(name, col_type, table.attnum_high + 1, default),))
    aliases = catalog.table_aliases(table)
    ddl = [f"ALTER TABLE {table.qualified} ADD COLUMN IF NOT EXISTS {column} {col_type}{default_sql}",
           f"COMMENT ON COLUMN {table.qualified}.{column} IS "
           + quote_literal(f"added by selfheal: {why}")]
    ddl += rebuild_compat(added, aliases, aliases)
    return Plan(
        "apply",
        f"{name!r} is missing from {table.label} and nothing maps to it; added as {col_type}{default_sql}",
        action="add_column", table=table, column=name,
        ddl=ddl, undo_ddl=drop_column_ddl(added, name, aliases),
        lock_profile="catalog only: brief ACCESS EXCLUSIVE for a metadata-only ADD COLUMN with a "
                     "constant default; no rewrite, no scan",
        evidence=evidence,
    )


def _check_column_budget(table: Table, policy: Policy, evidence: dict) -> None:
    if table.columns_added_by_selfheal >= policy.column_budget_per_table:
        raise _refuse(
            f"{table.label} has used its budget of {policy.column_budget_per_table} new columns "
            "(policy column_budget_per_table)", **evidence)
    if table.attnum_high + 1 > MAX_COLUMNS - policy.column_headroom:
        raise _refuse(f"{table.label} has used {table.attnum_high} of PostgreSQL's {MAX_COLUMNS} column slots",
                      **evidence)


def drop_column_ddl(table: Table, name: str, aliases: list[Alias]) -> list[str]:
    """Undo of an added column: compat views first (they pin their columns), then the column."""
    ddl = []
    if aliases:
        ddl = rebuild_compat(replace(table, columns=tuple(c for c in table.columns if c.name != name)), aliases, aliases)
    return ddl + [f"ALTER TABLE {table.qualified} DROP COLUMN IF EXISTS {quote_ident(name)}"]


def _plan_relation(missing: errors.MissingName, catalog: Catalog, policy: Policy) -> Plan:
    name = missing.name
    evidence: dict = {"missing": name}
    if missing.schema:
        naming.validate_schema(missing.schema)
        raise _review(f"{missing.schema}.{name} is schema-qualified; the compat schema serves unqualified "
                      "names only", **evidence)
    existing = [a for a in catalog.aliases if a.kind == "relation" and a.legacy_name == name
                and a.table != name]
    if existing:
        return Plan("resolved", f"{name!r} is already served by the compat layer; a role that still "
                    "fails needs selfheal.enable_compat()", evidence=evidence)
    exact = catalog.find(name)
    if exact:
        raise _review(f"{name!r} exists in schema {exact[0].schema}; the role may lack it on its search_path",
                      **evidence)
    naming.validate_identifier(name, "relation name", served=True)
    key = naming.fold_key(name)
    candidates = [t for t in catalog.tables if naming.fold_key(t.name) == key
                  and (missing.schema is None or t.schema == missing.schema)]
    if not candidates:
        raise _review(f"relation {name!r} does not exist and nothing maps to it; selfheal never creates "
                      "a table without evidence", **evidence)
    table = _pick_table(candidates, name)
    naming.validate_schema(table.schema)
    if any(a.kind == "relation" for a in catalog.aliases if a.legacy_name == table.name) or \
            table.name == name:
        raise _review(f"{name!r} would collide with a compat view", **evidence)
    style = naming.legacy_style(name, table.name)
    evidence.update(normalisation=f"{name} -> {table.label}", column_style=style)
    alias = Alias(table.schema, table.name, name, kind="relation", style=style, source="normalisation")
    return _plan_alias(table, alias, catalog, policy,
                       f"{name!r} is the legacy name of {table.label}; served by a compat view with "
                       f"{style} column names, no data copied", evidence)


def plan_declared_alias(table: Table, alias: Alias, catalog: Catalog) -> Plan:
    """An alias an administrator declares; it replaces an alias of the same name.

    A declared alias may shadow a real column of that name in the compat view: the
    administrator said what the legacy name means.
    """
    shadows = table.column(alias.legacy_name) is not None
    reason = f"{alias.legacy_name!r} declared on {table.label} as {alias.expression}"
    if shadows:
        reason += "; routed roles see this expression instead of the table's own column"
    return _plan_alias(table, alias, catalog, Policy(), reason, {"declared": alias.expression})


def search_path_names(path: str) -> list[str]:
    """The names a search_path setting lists, in order, unquoted as PostgreSQL reads them."""
    elements = [e.strip() for e in (path or "").split(",") if e.strip()]
    return [e[1:-1].replace('""', '"') if e.startswith('"') else e.lower() for e in elements]


def search_path_schemas(path: str, role: str) -> list[str]:
    """Schemas a search_path setting names, in order, as PostgreSQL reads it for `role`:
    "$user" is the role's own name, and pg_catalog comes first unless the path places it."""
    schemas = [role if name == "$user" else name for name in search_path_names(path)]
    return schemas if "pg_catalog" in schemas else ["pg_catalog"] + schemas


def compat_search_path(current: str | None, role: str) -> str | None:
    """The search_path a routed role gets: each schema's compat schema just before it, the rest
    as it was. None when the role already reads through the compat schemas this way."""
    names = search_path_names(current or DEFAULT_SEARCH_PATH)
    routed: list[str] = []
    for name in (n for n in names if not is_compat_schema(n)):
        schema = role if name == "$user" else name
        if not (schema.startswith("pg_") or schema in naming.SYSTEM_SCHEMAS or schema in naming.SELFHEAL_SCHEMAS):
            routed.append(compat_schema(schema))
        routed.append(name)
    return None if routed == names else ", ".join(quote_ident(n) for n in routed)


def uncompat_search_path(current: str | None) -> str | None:
    """The search_path without its compat schemas; None when it has none."""
    names = search_path_names(current or DEFAULT_SEARCH_PATH)
    kept = [n for n in names if not is_compat_schema(n)]
    return None if kept == names else ", ".join(quote_ident(n) for n in kept)


def routed(path: str | None) -> bool:
    return any(is_compat_schema(n) for n in search_path_names(path or DEFAULT_SEARCH_PATH))


DEFAULT_SEARCH_PATH = '"$user", public'


def _plan_view_write(column: str, view: str, catalog: Catalog, policy: Policy) -> Plan:
    """A write to a derived alias: a plain cast is written back into its source column once an
    administrator approves the view's write triggers; otherwise say which column to write."""
    for alias in catalog.aliases:
        if alias.kind == "column" and alias.legacy_name == column and (
                alias.table == view or any(r.legacy_name == view and r.table == alias.table
                                           for r in catalog.aliases if r.kind == "relation")):
            table = next(iter(catalog.find(alias.table, alias.schema)), None)
            inverse = inverse_of(alias.expression, table) if table else None
            if inverse is not None and not alias.writable:
                return _plan_writable(table, alias, catalog, policy,
                                      f"{column!r} is {alias.expression}: a write to it can land in "
                                      f"{table.label}.{inverse[0].name} as the value cast back to {inverse[0].type}")
            sources = source_columns(alias.expression, table) if table else []
            canonical = ", ".join(sources) or "the columns it is computed from"
            return Plan("needs_review",
                        f"{column!r} on {alias.schema}.{alias.table} is read-only: it is derived from "
                        f"{canonical} as {alias.expression}; write {canonical} instead",
                        evidence={"alias": column, "expression": alias.expression, "canonical": sources})
    return Plan("not_schema", f"write to computed column {column!r} of view {view!r}; not selfheal's",
                action="classify", evidence={"class": "feature not supported"})


def _plan_copy_to_view(view: str, catalog: Catalog, policy: Policy) -> Plan:
    """COPY FROM into a name a compat view serves: PostgreSQL copies into a view only through an
    INSTEAD OF INSERT trigger."""
    serving = [(table, aliases) for table in catalog.tables for aliases in [catalog.table_aliases(table)]
               if view in compat_views(table, aliases)]
    if not serving:
        return Plan("not_schema", f"COPY into view {view!r}, which is not a selfheal compat view; not selfheal's",
                    action="classify", evidence={"class": "wrong object type"})
    if len(serving) > 1:
        return Plan("needs_review", f"compat views named {view!r} serve " + ", ".join(t.label for t, _ in serving)
                    + "; COPY into the table itself")
    table, aliases = serving[0]
    if any(a.writable for a in aliases):
        return Plan("resolved", f"the compat views of {table.label} already take writes")
    return _plan_writable(table, aliases[0], catalog, policy,
                          f"COPY FROM into {view!r} needs the compat view to take writes: rows land in {table.label}")


def _plan_writable(table: Table, alias: Alias, catalog: Catalog, policy: Policy, reason: str) -> Plan:
    """The table's compat views made writable through INSTEAD OF triggers: always proposed, since
    such a view refuses INSERT ... ON CONFLICT, which the app may use elsewhere."""
    evidence = {"write_triggers": True,
                "risk": [f"with write triggers, INSERT ... ON CONFLICT through the compat views of {table.label} "
                         "fails (PostgreSQL finds no constraint on a view); run upserts as an unrouted role"]}
    if not table.primary_key:
        evidence["risk"].append(f"{table.label} has no primary key, so UPDATE through its compat views stays "
                                "as it is and only INSERT and COPY take the trigger")
    return _plan_alias(table, replace(alias, writable=True, id=0), catalog, policy, reason, evidence)


def decision_action(action: str, evidence: dict | str | None) -> str:
    """What a rejection is kept under: a view's write triggers apart from serving its names, so
    rejecting the writes never stops the name being read."""
    if isinstance(evidence, str):
        evidence = json.loads(evidence)
    return f"{action} writes" if (evidence or {}).get("write_triggers") else action


def _short_hash(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()[:12]


INDEX_WORTH_ROWS = 10_000  # below this a scan is as quick as an index


def index_ddl(table: Table, name: str, expression: str) -> str:
    """The index that lets a filter on a derived name use an index as its source's does: on the
    expression the compat view computes (PostgreSQL matches it), or on the in-table column.
    CONCURRENTLY: it never blocks writers, so it cannot run inside heal()'s transaction."""
    key = expression if expression == quote_ident(name) else f"({expression})"
    return f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(index_name(table, name))} ON {table.qualified} ({key})"


def index_name(table: Table, name: str) -> str:
    return f"selfheal_{_short_hash(f'{table.schema}.{table.name}.{name}.index')}"


def sync_function_name(table: Table, column: str) -> str:
    """Identifiers stay far below 63 bytes whatever the table and column are called."""
    return f"sync_{_short_hash(f'{table.schema}.{table.name}.{column}')}"


def plan_derived_column(table: Table, name: str, col_type: str, expression: str, sources: list[str],
                        policy: Policy, evidence: dict) -> Plan:
    """A derived column in the table itself, for roles that are not routed through compat views.

    Below the row limit: a STORED generated column (it rewrites the table, which is small).
    Above it: a plain column (metadata only), a trigger that keeps it in sync on every write,
    and a backfill that fills existing rows in batches with commits (CALL selfheal.backfill()).
    """
    naming.validate_identifier(name, "column name")  # a real column, not a served name
    _check_column_budget(table, policy, evidence)
    column = quote_ident(name)
    limit = policy.generated_column_row_limit
    # Small by the files alone: a stale ANALYZE must never make a large table look small.
    if table.row_bound <= limit and table.total_bytes <= limit * BYTES_PER_ROW_ALLOWED:
        return Plan(
            "apply", f"{name!r} is derived from {', '.join(sources)} and {table.label} is small "
            f"(at most {table.row_bound:.0f} rows, {table.total_bytes / 1024:.0f} kB): a STORED generated column",
            action="add_column", table=table, column=name,
            ddl=[f"ALTER TABLE {table.qualified} ADD COLUMN IF NOT EXISTS {column} {col_type} "
                 f"GENERATED ALWAYS AS ({expression}) STORED"],
            undo_ddl=[f"ALTER TABLE {table.qualified} DROP COLUMN IF EXISTS {column}"],
            lock_profile=f"rewrites at most {table.row_bound:.0f} rows under ACCESS EXCLUSIVE; allowed up to "
                         f"generated_column_row_limit ({limit}) rows and {limit * BYTES_PER_ROW_ALLOWED // 1024} kB",
            evidence={**evidence, "strategy": "stored generated column"})
    if len(table.primary_key) != 1:
        raise _review(f"{table.label} is large and has no single-column primary key to backfill by", **evidence)
    function, trigger = _sync_names(table, name)
    on_new = expression
    for source in sources:
        on_new = sqlscan.replace_column(on_new, source, f"NEW.{quote_ident(source)}")
    refusal = quote_literal(f"selfheal: {name} on {table.label} is derived from {', '.join(sources)}; "
                            f"write {', '.join(sources)} instead")
    return Plan(
        "apply", f"{name!r} is derived from {', '.join(sources)} and {table.label} is large "
        f"(about {table.row_estimate:.0f} rows, at most {table.row_bound:.0f}): a column kept in sync by a trigger, "
        "filled by a batched backfill",
        action="add_column", table=table, column=name,
        ddl=[f"ALTER TABLE {table.qualified} ADD COLUMN IF NOT EXISTS {column} {col_type}",
             # A value written to the column itself is refused unless it is what the source gives:
             # overwriting it silently would lose the write.
             f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp "
             f"AS $sync$ DECLARE selfheal_derived {col_type} := {on_new}; BEGIN "
             f"IF (TG_OP = 'INSERT' AND NEW.{column} IS NOT NULL OR TG_OP = 'UPDATE' AND NEW.{column} IS DISTINCT "
             f"FROM OLD.{column}) AND NEW.{column} IS DISTINCT FROM selfheal_derived THEN "
             f"RAISE EXCEPTION USING ERRCODE = 'generated_always', MESSAGE = {refusal}; END IF; "
             f"NEW.{column} := selfheal_derived; RETURN NEW; END $sync$",
             f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC",
             f"CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {table.qualified} "
             f"FOR EACH ROW{_unless_already(column, on_new)} EXECUTE FUNCTION {function}()"],
        undo_ddl=drop_sync_ddl(table, name) + [f"ALTER TABLE {table.qualified} DROP COLUMN IF EXISTS {column}"],
        lock_profile="catalog only: ADD COLUMN without a default and CREATE TRIGGER; existing rows are "
                     "filled by CALL selfheal.backfill() in batches, each its own transaction",
        evidence={**evidence, "strategy": "column + sync trigger + batched backfill"},
        backfill={"key": table.primary_key[0], "expression": expression})


def _unless_already(column: str, on_new: str) -> str:
    """The sync trigger's WHEN: a row whose column already holds what the source gives (every
    row backfill() writes) never enters PL/pgSQL. A WHEN takes no subquery, so an expression
    with one keeps the trigger firing on every row."""
    if any(t.is_word("SELECT") for t in sqlscan.tokenize(on_new)):
        return ""
    return f" WHEN (NEW.{column} IS DISTINCT FROM ({on_new}))"


def _sync_names(table: Table, column: str) -> tuple[str, str]:
    name = sync_function_name(table, column)
    return f"{quote_ident(COMPAT_SCHEMA)}.{quote_ident(name)}", quote_ident(f"selfheal_{name}")


def drop_sync_ddl(table: Table, column: str) -> list[str]:
    """The sync trigger and its function go before the column they write."""
    function, trigger = _sync_names(table, column)
    return [f"DROP TRIGGER IF EXISTS {trigger} ON {table.qualified}", f"DROP FUNCTION IF EXISTS {function}()"]


DERIVED_IN_TABLE = ("stored generated column", "column + sync trigger + batched backfill")


def relations_to_lock(plan: Plan) -> list[str]:
    """Relations the plan's DDL needs ACCESS EXCLUSIVE on: its table when the DDL alters it, and
    each compat view it drops. server/apply.py takes them with NOWAIT before any DDL runs."""
    targets = []
    table = plan.table.qualified if plan.table else None
    alters_table = any(s.startswith(("ALTER TABLE ", "CREATE TRIGGER ", "DROP TRIGGER ")) for s in plan.ddl)
    if table and alters_table:
        targets.append(table)
    drop_view = "DROP VIEW IF EXISTS "
    targets += [s[len(drop_view):] for s in plan.ddl if s.startswith(drop_view)]
    return targets
