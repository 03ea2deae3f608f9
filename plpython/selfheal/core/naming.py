"""Names: validation of names taken from error text, normalisation, and inference from a name."""

from __future__ import annotations

import re

MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: longer names are silently truncated by PostgreSQL
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})
SELFHEAL_SCHEMAS = frozenset({"selfheal", "selfheal_compat"})
COMPAT_SCHEMA_PREFIX = "selfheal_compat_"  # one compat schema per source schema
_SANE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RefusedName(ValueError):
    """A name that selfheal will not put into DDL."""


def validate_identifier(name: str, what: str = "name", served: bool = False) -> str:
    """Return the name if it is safe to create; raise RefusedName saying why not.

    served: a legacy name the compat layer serves, always quoted, so any identifier PostgreSQL
    allows ("Order Details") except control characters. A new column keeps to [A-Za-z0-9_].
    """
    if not name:
        raise RefusedName(f"empty {what}")
    size = len(name.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise RefusedName(f"{what} is longer than {MAX_IDENTIFIER_BYTES} bytes; PostgreSQL would truncate it")
    if size == MAX_IDENTIFIER_BYTES:
        # PostgreSQL reports a longer name already cut to 63 bytes: the code means something else.
        raise RefusedName(f"{what} is exactly {MAX_IDENTIFIER_BYTES} bytes, so it was probably truncated")
    if served and _CONTROL.search(name):
        raise RefusedName(f"{what} {name!r} holds control characters")
    if not served and not _SANE_NAME.match(name):
        raise RefusedName(f"{what} {name!r} has characters outside [A-Za-z0-9_]")
    if name.lower().startswith("pg_"):
        raise RefusedName(f"{what} {name!r} starts with pg_, which PostgreSQL reserves")
    if name.lower().startswith("selfheal"):
        raise RefusedName(f"{what} {name!r} is reserved for selfheal's own objects")
    return name


def validate_schema(schema: str) -> str:
    if schema in SYSTEM_SCHEMAS or schema.startswith("pg_"):
        raise RefusedName(f"schema {schema!r} is a system schema")
    if schema in SELFHEAL_SCHEMAS or schema.startswith(COMPAT_SCHEMA_PREFIX):
        raise RefusedName(f"schema {schema!r} belongs to selfheal")
    return schema


def fold_key(name: str) -> str:
    """The key two spellings of one name share: InvoiceLine, invoiceline, invoice_line and
    "Invoice Line"."""
    return name.replace("_", "").replace(" ", "").lower()


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """InvoiceLine -> invoice_line, AlbumId -> album_id, HTTPCode -> http_code."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def pascal_case(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def legacy_style(legacy: str, canonical: str) -> str:
    """How a legacy relation name relates to its snake_case canonical name.

    The same style is applied to the columns a legacy relation exposes, so code that wrote
    "InvoiceLine" also finds "UnitPrice", and code that wrote invoiceline finds unitprice.
    """
    if legacy == canonical:
        return "same"
    if legacy == pascal_case(canonical):
        return "pascal"
    if legacy == canonical.replace("_", ""):
        return "flat"
    return "same"


def apply_style(style: str, name: str) -> str:
    if style == "pascal":
        return pascal_case(name)
    if style == "flat":
        return name.replace("_", "")
    return name


def singular_forms(name: str) -> set[str]:
    """service_types -> {service_types, service_type}; for finding the table an *_id points at."""
    forms = {name, name + "s"}
    if name.endswith("y"):
        forms.add(name[:-1] + "ies")
    return forms


def type_from_name(name: str) -> tuple[str, str | None] | None:
    """(type, constant default) that a column name conventionally means, or None.

    `*_id` is left to the caller, which knows the key type.
    """
    lower = name.lower()
    if lower.endswith(("_data", "_json")) or lower in ("metadata", "data", "json"):
        return "jsonb", "'{}'::jsonb"
    if lower.startswith(("is_", "has_")):
        return "boolean", "false"
    if lower.endswith("_at"):
        return "timestamp with time zone", None
    if lower.endswith("_count"):
        return "integer", "0"
    if lower in ("name", "title", "description") or lower.endswith(("_name", "_title", "_description")):
        return "text", None
    return None


USAGE_DEFAULTS = {
    "jsonb": "'{}'::jsonb",
    "boolean": "false",
}


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, transpositions.

    With a limit, any distance above it comes back as limit + 1, found early: a table's columns
    are compared with every missing name. The common prefix and suffix are set aside first, and
    only the cells within `limit` of the diagonal are worked out (any other is over the limit):
    names that share a convention (note_..._count) cost a few cells, not their whole square.
    """
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a, end_b = end_a - 1, end_b - 1
    a, b = a[start:end_a], b[start:end_b]
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    band = max(len(a), len(b)) if limit is None else limit
    over = band + 1
    previous2: list[int] = []
    previous = [j if j <= band else over for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        current = [over] * (len(b) + 1)
        if i <= band:
            current[0] = i
        for j in range(max(1, i - band), min(len(b), i + band) + 1):
            cb = b[j - 1]
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current[j] = min(value, over)
        if limit is not None and min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1] if limit is None else min(previous[-1], limit + 1)


def probable_typo(name: str, candidates: list[str]) -> list[str]:
    """Candidates within a small edit distance of name: one edit for short names, two otherwise."""
    limit = 1 if len(name) <= 4 else 2
    lower, length = name.lower(), len(name)
    # Names whose lengths differ by more than the limit never get near: on a table of 400
    # columns most are left out without a call.
    return [c for c in candidates if c != name and abs(len(c) - length) <= limit
            and edit_distance(c.lower(), lower, limit) <= limit]
