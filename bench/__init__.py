"""Benchmarks: each starts its own cluster and prints its figures beside their goal."""

import hashlib


def new_column_name(i: int) -> str:
    """The i-th genuinely missing column of a benchmark: names far apart from each other, since
    one within two edits of another is a probable typo, which selfheal only proposes."""
    return f"note_{hashlib.md5(str(i).encode()).hexdigest()[:12]}_data"
