"""Questions the assistant can answer about a subject (offered when it cannot answer one)."""

from __future__ import annotations

import re
from collections.abc import Callable

from helios_core.chat.context import SubjectContext


def suggestions(ctx: SubjectContext, answers: Callable[[str], bool], n: int = 3) -> list[str]:
    """Questions about this subject that ``answers`` (the assistant reading them) says it can answer."""
    tables = sorted(ctx.tables, key=lambda t: (-(len(t.time_columns) > 0), -t.rows))
    kinds: dict[str, list[tuple[str, str]]] = {"count": [], "measure": [], "time": [], "filter": []}
    for t in tables:
        label = _label(t.name)
        cats = [c for c in t.columns if c.is_category]
        nums = [c for c in t.columns if c.kind == "number"]
        if cats:
            kinds["count"].append((t.name, f"{label.capitalize()} by {_label(cats[0].name)}"))
        if nums and cats:
            kinds["measure"].append((t.name, f"Average {_label(_short(nums[0].name))} by {_label(cats[-1].name)}"))
        if t.time_columns:
            kinds["time"].append((t.name, f"{label.capitalize()} per day in the last 7 days"))
        for c in cats:
            plain = [v for v in c.values if re.fullmatch(r"[A-Za-z][A-Za-z_ ]+", v)]
            if plain:
                kinds["filter"].append((t.name, f"How many {label} with {_label(c.name)} {plain[0]}?"))
                break
    out: list[str] = []
    used: set[str] = set()
    for kind in ("count", "measure", "time", "filter"):
        options = sorted(kinds[kind], key=lambda o: o[0] in used)  # prefer a table not shown yet
        for table, q in options:
            if q not in out and answers(q):
                out.append(q)
                used.add(table)
                break
        if len(out) >= n:
            break
    if not out and ctx.tables:
        out.append(f"How many rows are in {ctx.tables[0].name}?")
    return out[:n]


def _label(name: str) -> str:
    return name.replace("_", " ").strip()


def _short(name: str) -> str:
    words = name.split("_")
    return "_".join(words[:-1]) if len(words) > 1 and words[-1] in ("ms", "s", "sec", "usd", "eur") else name
