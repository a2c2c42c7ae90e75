"""The one- or two-sentence answer, computed from the result rows (never invented).

Every number in the sentence is read from the result frame; the description of
what was computed (from the built-in assistant's plan) only supplies words.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pandas as pd

from helios_core.charts import is_numeric_type, is_time_type
from helios_core.wording import plural

RATE_HINTS = ("rate", "ratio", "share", "percent", "pct", "fraction")


def fmt(value: Any, column: str = "") -> str:
    """A value as a person reads it: 12,345 · 2,020,496.37 · 71.3% · 2024-05-01."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no value"
    if isinstance(value, pd.Timestamp) or isinstance(value, datetime):
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isinf(value):
            return "infinite"
        if any(h in column.lower() for h in RATE_HINTS) and 0 <= value <= 1.5:
            return f"{value * 100:.1f}%"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        return f"{value:.4g}"
    return str(value)


def _label(name: str) -> str:
    return name.replace("_", " ")


def summarize(frame: pd.DataFrame, names: list[str], types: list[str], description: str = "",
              truncated: bool = False) -> str:
    """One or two sentences about the result, with its numbers taken from the rows."""
    frame = frame.reset_index(drop=True)
    n = len(frame)
    what = description[:1].upper() + description[1:] if description else ""
    if n == 0:
        return f"No rows matched ({description})." if description else "The query returned no rows."
    measures = [c for c, t in zip(names, types) if is_numeric_type(t) and not c.lower().endswith("_id")
                and c.lower() != "id"]
    times = [c for c, t in zip(names, types) if is_time_type(t)]
    dims = [c for c in names if c not in measures]
    more = " (more rows exist than are shown)" if truncated else ""
    if n == 1 and len(names) == 1:
        value = fmt(frame.iloc[0, 0], names[0])
        return f"{what}: {value}." if what else f"{_label(names[0]).capitalize()}: {value}."
    if n == 1 and not dims:
        shown = ", ".join(f"{_label(c)} {fmt(frame.iloc[0][c], c)}" for c in names[:4])
        return f"{what}: {shown}." if what else f"{shown[:1].upper()}{shown[1:]}."
    if not measures or len(dims) > 2 or (len(names) > 4 and len(dims) > 1):
        lead = plural(n, "row") + (f" of {description}" if description else "")
        return f"{lead}{more}."
    m = measures[0]
    values = pd.to_numeric(frame[m], errors="coerce")
    if values.isna().all():
        return f"{plural(n, 'row')}{more}."
    hi_pos, lo_pos = int(values.idxmax()), int(values.idxmin())

    def key(pos: int) -> str:
        return ", ".join(fmt(frame.iloc[pos][d], d) for d in dims)

    if n == 1:
        return f"{what + ': ' if what else ''}{key(0)} with {_label(m)} {fmt(frame.iloc[0][m], m)}."
    if times and dims and dims[0] in times:
        first, last = fmt(frame.iloc[0][dims[0]]), fmt(frame.iloc[-1][dims[0]])
        sentence = (f"{what + ' — ' if what else ''}{n:,} rows from {first} to {last}{more}; "
                    f"{_label(m)} was highest at {fmt(values.iloc[hi_pos], m)} ({key(hi_pos)}) "
                    f"and lowest at {fmt(values.iloc[lo_pos], m)} ({key(lo_pos)}).")
        if _additive(m, description) and len(dims) == 1:
            sentence += f" Total: {fmt(_total(values), m)}."
        return sentence
    groups = f"{n:,} " + " × ".join(_label(d) for d in dims) + " groups"
    sentence = (f"{what + ' — ' if what else ''}{groups}{more}: {key(hi_pos)} has the highest {_label(m)} "
                f"({fmt(values.iloc[hi_pos], m)}), {key(lo_pos)} the lowest ({fmt(values.iloc[lo_pos], m)}).")
    if _additive(m, description) and len(dims) == 1 and not truncated:
        sentence += f" Total: {fmt(_total(values), m)}."
    return sentence


def _total(values: pd.Series) -> Any:
    total = values.sum()
    return int(total) if float(total).is_integer() else float(total)


def _additive(column: str, description: str) -> bool:
    name = column.lower()
    if any(h in name for h in RATE_HINTS) or name.startswith(("avg", "average", "median", "min", "max", "unique")):
        return False
    d = description.lower()
    if d.startswith(("average", "median", "minimum", "maximum", "distinct")):
        return False
    return d.startswith(("number of", "total")) or name.startswith(("count", "total", "sum"))
