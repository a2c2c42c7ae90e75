"""Small wording helpers for messages shown to users."""

from __future__ import annotations


def plural(n: int | float, noun: str, many: str | None = None) -> str:
    """``plural(1, "row")`` → "1 row", ``plural(2000, "row")`` → "2,000 rows" (``many`` for irregular nouns)."""
    word = noun if n == 1 else (many or f"{noun}s")
    return f"{n:,} {word}"
