"""Benchmarks: each starts its own cluster and prints its figures beside their goal."""

from __future__ import annotations

import hashlib

# Benchmarks run on durable settings unless a figure says otherwise (the test clusters turn
# these off for speed; a benchmark that did would flatter every write).
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def new_column_name(i: int | str) -> str:
    """The i-th genuinely missing column of a benchmark: names far apart from each other, since
    one within two edits of another is a probable typo, which selfheal only proposes. Not
    `_data`: that reads as jsonb, and beside the table's one other jsonb column that the
    statement does not name, selfheal proposes a rename rather than adds."""
    return f"note_{hashlib.md5(str(i).encode()).hexdigest()[:12]}_count"


def print_goals(title: str, rows: list[tuple[str, float, float, str]]) -> None:
    """A table of figures beside their goals: (what, measured, goal, unit), where a figure meets
    its goal when it is at most the goal (write ratios and times so that lower is better)."""
    print(f"\n{title}\n\n| figure | measured | goal | met |\n|---|---|---|---|")
    for what, measured, goal, unit in rows:
        print(f"| {what} | {measured:.2f}{unit} | <= {goal:g}{unit} | {'yes' if measured <= goal else 'NO'} |")
