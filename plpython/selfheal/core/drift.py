"""What the application's own DDL did to a table, and what that means for its aliases. Pure.

The event triggers snapshot a table (attnum -> name) before ALTER TABLE runs; attnums survive
renames, so comparing the snapshot with the table afterwards tells renames from drops.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from . import sqlscan
from .planner import Alias, quote_ident

# Aliases selfheal found by itself give way to a real object of the same name; an alias an
# administrator declared keeps shadowing, because that was asked for.
AUTOMATIC_SOURCES = {"rename", "hint", "normalisation", "convention"}


@dataclass(frozen=True)
class Shape:
    schema: str
    name: str
    columns: dict  # attnum -> column name


@dataclass
class Drift:
    events: list[tuple[str, dict]] = field(default_factory=list)  # (change, detail) for the timeline
    added: list[Alias] = field(default_factory=list)  # legacy names to serve from now on
    rewritten: list[tuple[Alias, Alias]] = field(default_factory=list)  # (alias, its new form)
    broken: list[tuple[Alias, str]] = field(default_factory=list)  # aliases that lost their source
    retired: list[tuple[Alias, str]] = field(default_factory=list)  # aliases a real object now replaces


def references(expression: str, column: str) -> bool:
    """Whether an alias expression names a column (quoted, or unquoted as PostgreSQL folds it)."""
    return any(t.value == column and t.kind in ("ident", "quoted") for t in sqlscan.tokenize(expression or ""))


def rewrite(expression: str, old: str, new: str) -> str:
    """The expression with column `old` renamed to `new`; string literals are left alone."""
    return sqlscan.replace_column(expression, old, quote_ident(new))


def compare(before: Shape, after: Shape, aliases: list[Alias]) -> Drift:
    """Renames and drops between two shapes of one table, and what its aliases must become."""
    drift = Drift()
    current = [replace(a, schema=after.schema, table=after.name) for a in aliases]
    if (before.schema, before.name) != (after.schema, after.name):
        drift.events.append(("table renamed", {"from": f"{before.schema}.{before.name}",
                                               "to": f"{after.schema}.{after.name}"}))
        drift.rewritten += [(old, new) for old, new in zip(aliases, current)]
        if not any(a.kind == "relation" and a.legacy_name == before.name for a in current):
            drift.added.append(Alias(after.schema, after.name, before.name, kind="relation", style="same",
                                     source="rename"))
    live = {a.legacy_name: a for a in current if a.kind == "column"}
    for attnum, old_name in sorted(before.columns.items()):
        new_name = after.columns.get(attnum)
        if new_name == old_name:
            continue
        if new_name is None:
            drift.events.append(("column dropped", {"column": old_name}))
            for alias in current:
                if alias.kind == "column" and references(alias.expression, old_name):
                    drift.broken.append((alias, f"its source column {old_name} was dropped"))
            continue
        drift.events.append(("column renamed", {"from": old_name, "to": new_name}))
        # Back to a name it had (a -> b -> a): the alias for it retires below, and b, a name it
        # held only between two migrations, is not served.
        returning = new_name in live and references(live[new_name].expression, old_name)
        for i, alias in enumerate(current):
            if alias.kind == "column" and references(alias.expression, old_name):
                changed = replace(alias, expression=rewrite(alias.expression, old_name, new_name))
                drift.rewritten.append((alias, changed))
                current[i] = changed
        if not returning and old_name not in live and old_name not in after.columns.values():
            drift.added.append(Alias(after.schema, after.name, old_name, expression=quote_ident(new_name),
                                     source="rename"))
    for attnum, name in sorted(after.columns.items()):
        if attnum not in before.columns:
            drift.events.append(("column added", {"column": name}))
    real = set(after.columns.values())
    broken = {id(a) for a, _ in drift.broken}
    for alias in current:
        if alias.kind == "column" and alias.legacy_name in real and alias.source in AUTOMATIC_SOURCES \
                and id(alias) not in broken:
            drift.retired.append((alias, f"a real column {alias.legacy_name} exists on {after.schema}.{after.name}"))
    return drift
