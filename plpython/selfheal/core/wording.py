"""Words for people: counts with the right plural."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """'1 error', '2 errors', '0 errors'; `many` for irregular nouns ('1 entry', '3 entries')."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"
