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
from helios_core.chat.currency import are_currency_codes, is_currency_name, is_money_name

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
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars, as result frames hold
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, bool):
        return "yes" if value else "no"
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
    """A result column as words: avg_amount → average amount, duration_ms → duration (ms)."""
    words = name.split("_")
    if words and words[0] in _PREFIXES:
        words[0] = _PREFIXES[words[0]]
    if len(words) > 1 and words[-1] in ("ms", "s", "sec"):
        return " ".join(words[:-1]) + f" ({words[-1]})"
    return " ".join(w for w in words if w)


_PREFIXES = {"avg": "average", "min": "minimum", "max": "maximum", "uniq": "unique", "cnt": "count"}
_GRAINS = {"minute", "hour", "day", "week", "month", "year"}


def _is_id(column: str) -> bool:
    name = column.lower()
    return name == "id" or name.endswith(("_id", "_uuid"))


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def currency_column(frame: pd.DataFrame, dims: list[str]) -> str | None:
    """The result column naming each row's currency, when amounts are split by currency."""
    for d in dims:
        if is_currency_name(d) or are_currency_codes(frame[d].dropna().unique()):
            return d
    return None


def summarize(frame: pd.DataFrame, names: list[str], types: list[str], description: str = "",
              truncated: bool = False) -> str:
    """One or two sentences about the result, with its numbers taken from the rows."""
    frame = frame.reset_index(drop=True)
    n = len(frame)
    what = description[:1].upper() + description[1:] if description else ""
    if n == 0:
        return f"No rows matched ({description})." if description else "The query returned no rows."
    measures = [c for c, t in zip(names, types, strict=False) if is_numeric_type(t) and not _is_id(c)]
    times = [c for c, t in zip(names, types, strict=False) if is_time_type(t)]
    dims = [c for c in names if c not in measures]
    more = " (more rows exist than are shown)" if truncated else ""
    if n == 1 and len(names) == 1:
        value = fmt(frame.iloc[0, 0], names[0])
        return f"{what}: {value}." if what else f"{_label(names[0]).capitalize()}: {value}."
    if n == 1 and not dims:
        shown = ", ".join(f"{_label(c)} {fmt(frame.iloc[0][c], c)}" for c in names[:4])
        return f"{what}: {shown}." if what else f"{shown[:1].upper()}{shown[1:]}."
    if not measures or len(dims) > 2 or (len(names) > 4 and len(dims) > 1):
        if description.startswith(("rows ", "latest rows ", "earliest rows ")):
            return f"{n:,} {description}{more}." if n != 1 else f"1 of the {description}{more}."
        return f"{what}: {_rows(n)}{more}." if what else f"{_rows(n)}{more}."
    m = measures[0]
    values = pd.to_numeric(frame[m], errors="coerce")
    if values.isna().all():
        return f"{_rows(n)}{more}."
    counted = description.lower().startswith("number of")

    def key(pos: int, skip: str = "") -> str:
        return ", ".join(str(frame.iloc[pos][d]) if _is_id(d) else fmt(frame.iloc[pos][d], d)
                         for d in dims if d != skip)

    currency = currency_column(frame, dims)
    money = not counted and not any(h in m.lower() for h in RATE_HINTS) and is_money_name(m)
    if currency is not None and (money or dims == [currency]):
        return _by_currency(frame, dims, m, values, currency, what, more, key, money)
    hi_pos, lo_pos = int(values.idxmax()), int(values.idxmin())
    if n == 1:
        if what:
            return f"{what}: {key(0)} ({fmt(frame.iloc[0][m], m)})."
        return f"{key(0)} with {_label(m)} {fmt(frame.iloc[0][m], m)}."
    high, low = ("most", "fewest") if counted else ("highest", "lowest")
    if times and dims and dims[0] in times:
        first, last = fmt(frame.iloc[0][dims[0]]), fmt(frame.iloc[-1][dims[0]])
        unit = f"{n:,} {dims[0]}s" if dims[0] in _GRAINS and len(dims) == 1 else _rows(n)
        lead = f"{what} — " if what else f"{_label(m).capitalize()} over "
        sentence = (f"{lead}{unit} from {first} to {last}{more}: highest {fmt(values.iloc[hi_pos], m)} "
                    f"({key(hi_pos)}), lowest {fmt(values.iloc[lo_pos], m)} ({key(lo_pos)}).")
        if _additive(m, description) and len(dims) == 1 and not truncated:
            sentence += f" Total: {fmt(_total(values), m)}."
        return sentence
    groups = f"{n:,} " + " × ".join(_label(d) for d in dims) + " groups"
    if what:
        sentence = (f"{what} — {groups}{more}: {key(hi_pos)} has the {high} ({fmt(values.iloc[hi_pos], m)}), "
                    f"{key(lo_pos)} the {low} ({fmt(values.iloc[lo_pos], m)}).")
    else:
        sentence = (f"{groups[:1].upper()}{groups[1:]}{more}: {key(hi_pos)} has the highest {_label(m)} "
                    f"({fmt(values.iloc[hi_pos], m)}), {key(lo_pos)} the lowest ({fmt(values.iloc[lo_pos], m)}).")
    if _additive(m, description) and len(dims) == 1 and not truncated:
        sentence += f" Total: {fmt(_total(values), m)}."
    return sentence


def _by_currency(frame: pd.DataFrame, dims: list[str], m: str, values: pd.Series, currency: str, what: str,
                 more: str, key: Any, money: bool) -> str:
    """Amounts in several currencies: each with its code, never added up or ranked across currencies."""
    lead = f"{what}" if what else _label(m).capitalize()
    codes = list(dict.fromkeys(str(c) for c in frame[currency]))
    if dims == [currency]:
        shown = ", ".join(f"{fmt(v, m)} {c}" if money else f"{c} {fmt(v, m)}"
                          for c, v in zip(frame[currency], frame[m], strict=False))
        return f"{lead}: {shown}{more}."
    best = []
    for code in codes[:4]:
        rows = values[frame[currency].astype(str) == code]
        pos = int(rows.idxmax())
        best.append(f"{key(pos, currency)} ({fmt(values.iloc[pos], m)} {code})")
    extra = f" and {len(codes) - 4} more currencies" if len(codes) > 4 else ""
    if len(frame) == len(codes):  # one row per currency ("plan with the highest revenue"): the rows are the answer
        return f"{lead}{more}: {', '.join(best)}{extra}."
    return f"{lead} — {_rows(len(frame))}{more}; the highest in each currency: {', '.join(best)}{extra}."


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
