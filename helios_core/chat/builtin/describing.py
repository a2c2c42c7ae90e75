"""What was computed, in words, for the answer sentence."""

from __future__ import annotations

from helios_core.chat.builtin.plan import Cond, Dim, Plan, PlanMeasure
from helios_core.chat.builtin.vocabulary import name_words, stem


def describe(plan: Plan) -> str:
    """What was computed, in words: “number of purchases by day where currency is EUR in the last 7 days”."""
    if plan.rows:
        first = plan.order == "asc"
        if plan.sort_column == plan.time_column:
            text = f"{'earliest' if first else 'latest'} rows of {column_words(plan.table)}"
        else:
            text = (f"rows of {column_words(plan.table)} with the {'lowest' if first else 'highest'} "
                    f"{column_words(plan.sort_column)}")
    else:
        names = [_measure_words(m, plan) for m in plan.measures]
        text = " and ".join(names)
        counted = bool(plan.measures) and plan.measures[0].func in ("count", "uniq")
        if plan.limit == 1 and plan.dims:
            best = ("fewest" if counted else "lowest") if plan.order == "asc" else ("most" if counted else "highest")
            what = names[0][len("number of "):] if counted and names[0].startswith("number of ") else names[0]
            text = f"{' and '.join(_dim_words(d) for d in plan.dims if not d.auto)} with the {best} {what}"
            if any(d.auto for d in plan.dims):
                text += " in each currency"
        elif plan.dims:
            text += " by " + " and ".join(_dim_words(d) for d in plan.dims)
    shown = [f for f in plan.filters if not _says_itself(f, plan)]
    conds = [f.describe() for f in shown if not f.describe().startswith("in ")]
    if conds:
        text += " where " + " and ".join(conds)
    for f in shown:
        if f.describe().startswith("in "):
            text += " " + f.describe()  # "in EUR"
    if plan.window:
        text += f" {plan.window.describe()}"
    if plan.limit and not plan.rows and plan.limit != 1:
        text += f", {'top' if plan.order != 'asc' else 'bottom'} {plan.limit}"
        if any(d.auto for d in plan.dims) and len(plan.dims) > 1:
            text += " in each currency"
    elif plan.order == "asc" and plan.dims and not plan.rows and plan.limit != 1:
        text += ", smallest first"
    return text


def column_words(name: str) -> str:
    """A column or table name as words: payment_method → payment method, duration_ms → duration (ms)."""
    parts = name_words(name)
    if len(parts) > 1 and parts[-1] in ("ms", "s", "sec", "usd", "eur", "gbp"):
        return " ".join(parts[:-1]) + f" ({parts[-1]})"
    if len(parts) > 1 and parts[-1] in ("id", "uuid"):
        return " ".join(parts[:-1])
    return " ".join(parts) or name


def plural(phrase: str) -> str:
    if phrase.endswith(("s", ")")):
        return phrase
    if phrase.endswith("y") and not phrase.endswith(("ay", "ey", "oy", "uy")):
        return phrase[:-1] + "ies"
    return phrase + "s"


def _measure_words(m: PlanMeasure, plan: Plan) -> str:
    if m.func == "count":
        label = m.label if m.label and m.label != "rows" else ""
        if not label or label.endswith("ed"):  # "pages visited": rows of the table, not "number of visited"
            return f"number of {column_words(plan.table)} rows"
        if label.endswith("s"):
            return f"number of {label}"
        return f"number of {plural(label)}" if " " not in label else f"number of {label} rows"
    if m.func == "rate":
        num = m.num.values[0] if m.num else ""
        if m.den:
            return f"{num} rate ({num} ÷ {m.den.values[0]})"
        return f"share of rows with {column_words(m.num.column) if m.num else ''} {num}".replace("  ", " ")
    if m.func == "uniq":
        return f"number of distinct {plural(column_words(m.column))}"
    word = {"sum": "total", "avg": "average", "min": "minimum", "max": "maximum", "median": "median"}[m.func]
    return f"{word} {column_words(m.column)}"


def _dim_words(d: Dim) -> str:
    return d.grain or column_words(d.column)


def _says_itself(f: Cond, plan: Plan) -> bool:
    """ "number of logins where event type is login": the filter repeats the counted word."""
    labels = {stem(w) for m in plan.measures if m.func == "count" for w in name_words(m.label)}
    return f.op == "=" and len(f.values) == 1 and bool(labels) \
        and {stem(w) for w in name_words(str(f.values[0]))} <= labels
