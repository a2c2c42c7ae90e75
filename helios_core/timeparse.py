"""The one parser of time values: ISO-8601 text and epoch numbers.

Used by inference (:mod:`helios_core.schema`), the stream ingester
(:mod:`helios_core.ingest.convert`), import jobs and dumps
(:mod:`helios_core.loading`) and reports, so that a value one of them accepts
is accepted by all of them, and means the same instant.

Accepted text (``ISO_DATETIME`` / ``ISO_DATE``)::

    2025-01-31
    2025-01-31T10:00            2025-01-31 10:00
    2025-01-31T10:00:05         2025-01-31T10:00:05.123456789   (1–9 fraction digits, '.' or ',')
    … followed by nothing (UTC), Z / z, +05, +0530, +05:30, -08:00, "UTC" or " UTC"

Refused: anything else (words like "yesterday", day-first dates, ISO week or
ordinal dates, the basic form ``20250131T100000``, one-digit months or days,
hour 24, leap second 60, month 13, …).

Epoch numbers (and numeric text of at least 9 digits): the unit is the column's declared one (``s``, ``ms``, ``us``,
``ns``) when it has one, else chosen by magnitude with one cut-off,
:data:`EPOCH_MS_CUTOFF`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

# ClickHouse's time ranges live in the one table of helios_core.chtypes.
from helios_core.chtypes import DATETIME64_BOUNDS
from helios_core.chtypes import DATETIME_BOUNDS as DATETIME_BOUNDS

ISO_DATETIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?"
                          r"(Z|z|[+-]\d\d(?::?\d\d)?| ?UTC)?")
ISO_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)")
# Numeric text is an epoch only with at least 9 digits (1973 on in seconds): "2025" or "12" are not times.
_NUMBER = re.compile(r"\s*-?\d{9,}(\.\d+)?\s*")

UNITS = ("s", "ms", "us", "ns")
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
SCALE = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
# Epoch numbers with no declared unit: at most 1e10 is seconds, above it milliseconds. 1e10 seconds is
# the year 2286, beyond any real event time, while 1e10 milliseconds is 1970-04-26, before any; so no
# plausible time is read in the wrong unit. (Microseconds and nanoseconds must be declared: read as
# milliseconds they fall far outside ClickHouse's range and are refused, never stored wrong.)
EPOCH_MS_CUTOFF = 10_000_000_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
class TimeError(ValueError):
    """A value that is not a time Helios accepts; the message says why, for a person."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _iso_seconds(text: str) -> tuple[int, int]:
    """ISO text → (whole seconds since the epoch, nanoseconds within the second), UTC."""
    text = text.strip()
    m = ISO_DATETIME.fullmatch(text)
    groups: tuple[Any, ...]
    if m is None:
        d = ISO_DATE.fullmatch(text)
        if d is None:
            raise TimeError(f"{_short(text)} is not an ISO-8601 time (for example 2025-01-31T10:00:00Z)")
        groups = (d.group(1), d.group(2), d.group(3), "0", "0", None, None, None)
    else:
        groups = m.groups()
    y, mo, day, h, mi, s, frac, tz = groups
    try:
        moment = datetime(int(y), int(mo), int(day), int(h), int(mi), int(s or 0), tzinfo=UTC)
    except ValueError as exc:
        raise TimeError(f"{_short(text)} is not a valid time ({exc})") from None
    offset = 0
    if tz and tz.strip() not in ("Z", "z", "UTC"):
        digits = tz[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise TimeError(f"{_short(text)} has an impossible UTC offset {tz}")
        offset = (hours * 3600 + minutes * 60) * (-1 if tz[0] == "-" else 1)
    delta = moment - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds - offset
    return seconds, int((frac or "0").ljust(9, "0"))


def is_iso(value: Any) -> bool:
    """True when ``value`` is ISO text this module accepts."""
    if not isinstance(value, str):
        return False
    try:
        _iso_seconds(value)
        return True
    except TimeError:
        return False


def parse_iso(text: str) -> datetime:
    """ISO text → an aware UTC datetime (fractions beyond microseconds are cut). No epoch numbers."""
    if not isinstance(text, str):
        raise TimeError(f"{_short(text)} is not ISO-8601 text")
    seconds, nanos = _iso_seconds(text)
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def epoch_unit(value: float, declared: str = "") -> str:
    """The unit of an epoch number: the declared one, else by magnitude (:data:`EPOCH_MS_CUTOFF`)."""
    if declared:
        if declared not in SCALE:
            raise TimeError(f"{declared!r} is not a time unit; use one of {', '.join(UNITS)}")
        return declared
    return "ms" if abs(value) > EPOCH_MS_CUTOFF else "s"


def to_epoch(value: Any, unit: str = "ms", declared: str = "",
             bounds: tuple[int, int] | None = DATETIME64_BOUNDS) -> int:
    """A time value (ISO text, an epoch number or numeric text, a datetime/date) → an integer count of
    ``unit`` since the epoch, UTC. ``declared`` is the column's epoch unit ('' = decide by magnitude).
    Raises :class:`TimeError` when it is not a time, or (with ``bounds``, in seconds) out of range."""
    scale = SCALE[unit]
    if isinstance(value, bool):
        raise TimeError("a boolean is not a time")
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        value = float(value) if "." in value else int(value)
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise TimeError(f"{value} is not a time")
        source = SCALE[epoch_unit(value, declared)]
        if isinstance(value, int):
            result = value * scale // source if scale < source else value * (scale // source)
        else:
            result = int(round(value * scale / source))
        whole = result // scale
    elif isinstance(value, str):
        if not value.strip():
            raise TimeError("an empty string is not a time")
        whole, nanos = _iso_seconds(value)
        result = whole * scale + nanos * scale // 1_000_000_000
    elif isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        delta = aware - _EPOCH
        whole = delta.days * 86_400 + delta.seconds
        result = whole * scale + delta.microseconds * scale // 1_000_000
    elif isinstance(value, date):
        whole = (date(value.year, value.month, value.day) - date(1970, 1, 1)).days * 86_400
        result = whole * scale
    else:
        raise TimeError(f"a {type(value).__name__} is not a time")
    if bounds is not None and not bounds[0] <= whole <= bounds[1]:
        low, high = (_EPOCH + timedelta(seconds=b) for b in bounds)
        raise TimeError(f"{_short(value)} is outside the time range {low.year}–{high.year}")
    return result


def to_datetime(value: Any, declared: str = "", bounds: tuple[int, int] | None = DATETIME64_BOUNDS) -> datetime:
    """:func:`to_epoch` as an aware UTC datetime (microseconds)."""
    return _EPOCH + timedelta(microseconds=to_epoch(value, "us", declared, bounds))
