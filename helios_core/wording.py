"""Small wording helpers for messages shown to users."""

from __future__ import annotations

from datetime import UTC, datetime


def plural(n: int | float, noun: str, many: str | None = None) -> str:
    """``plural(1, "row")`` → "1 row", ``plural(2000, "row")`` → "2,000 rows" (``many`` for irregular nouns)."""
    word = noun if n == 1 else (many or f"{noun}s")
    return f"{n:,} {word}"


def duration(seconds: float) -> str:
    """A lag or age for people: "4.2 s", "3 min 5 s", "2 h 10 min", "3 d 4 h"."""
    if seconds < 60:
        return f"{seconds:,.1f} s"
    whole = int(seconds)
    for size, unit, small, small_unit in ((86_400, "d", 3_600, "h"), (3_600, "h", 60, "min"), (60, "min", 1, "s")):
        if whole >= size:
            rest = (whole % size) // small
            return f"{whole // size} {unit}" + (f" {rest} {small_unit}" if rest else "")
    return f"{seconds:,.1f} s"


def when(value: datetime | str | None) -> str:
    """A moment to the second, ISO style, in UTC: "2025-01-31 14:05:09 UTC" ("" for none)."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
