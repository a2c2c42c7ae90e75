"""Follow-ups: whether a question modifies the previous answer, and applying it to the previous plan."""

from __future__ import annotations

from helios_core.chat.builtin.interpreting import Parts
from helios_core.chat.builtin.plan import Dim, NotUnderstood, Plan, PlanMeasure
from helios_core.chat.builtin.planning import Builder
from helios_core.chat.builtin.reading import Reading


def merge_follow_up(prev: Plan, reading: Reading, parts: Parts, builder: Builder) -> Plan:
    """Apply a short follow-up ("now by day", "only mobile", "top 5 instead") to the previous plan."""
    ctx = builder.ctx
    plan = Plan.from_json(prev.to_json())
    table = ctx.table(plan.table)
    if table is None:
        raise NotUnderstood("The previous answer was about a table that is no longer there.")
    res = builder.res
    # What is measured
    if parts.aggs or parts.rate is not None:
        # "how many of them are on mobile": a value counted is a filter, not a new measure
        filtered = [f for f, _neg in parts.filters]
        explicit_targets = [t for _f, t, _h in parts.aggs if t is not None and t not in filtered]
        if explicit_targets or parts.rate is not None:
            trial = Parts(aggs=parts.aggs, rate=parts.rate)
            plan.measures = builder.measures(trial, table, reading)
            plan.rows = False
        else:
            new = []
            for func, _t, _h in parts.aggs:
                if func in ("count", ""):
                    new.append(PlanMeasure("count", label=next((m.label for m in plan.measures if m.func == "count"),
                                                           "rows")))
                elif func == "uniq":
                    continue
                else:
                    cols = [m for m in plan.measures if m.column and m.func != "rate"]
                    col = cols[0].column if cols else builder.primary_numeric(table)
                    if not col:
                        raise NotUnderstood(f"{table.name} has no numeric column for “{func}”.")
                    new.append(PlanMeasure(func, cols[0].table if cols else table.name, col, label=col))
            if new:
                plan.measures = new
                plan.rows = False
    # Grouping
    new_dims: list[Dim] = []
    for d in parts.dims:
        m, _s, _how = res.reach(d, plan.table, ("column",))
        if m is None:
            raise NotUnderstood(f"I cannot group {plan.table} by {d.text!r}.")
        new_dims.append(builder.dim(m))
    if reading.grains:
        if not plan.time_column:
            builder.set_time_axis(plan, parts, reading, table)
        if not plan.time_column:
            raise NotUnderstood(f"{plan.table} has no date or time column to group by {reading.grains[0]}.")
        new_dims = [Dim(plan.time_table, plan.time_column, g) for g in reading.grains] + new_dims
    if new_dims:
        if parts.also or reading.question_lower.startswith(("and by", "and per", "and for each")):
            kept = [d for d in plan.dims if not (d.grain and any(n.grain for n in new_dims))]
            plan.dims = kept + [d for d in new_dims if d not in kept]
        else:
            plan.dims = new_dims
        plan.dims.sort(key=lambda d: 0 if d.grain else 1)
        plan.rows = False
        if not reading.limit:
            plan.limit, plan.order = 0, ""
    # Filters
    if parts.clear_filters:
        plan.filters = []
    for c in parts.clear_columns:
        cleared = {(m.table, m.column) for m in c.meanings if m.kind == "column"}
        plan.filters = [f for f in plan.filters if (f.table, f.column) not in cleared]
    new_filters = builder.filters(parts, plan.table) + builder.compares(parts, table) if (
        parts.filters or parts.compares) else []
    for f in new_filters:
        if parts.also:
            same = [g for g in plan.filters if (g.table, g.column) == (f.table, f.column) and g.op in ("=", "in")
                    and f.op in ("=", "in")]
            if same:
                g = same[0]
                g.values = list(dict.fromkeys(g.values + f.values))
                g.op = "in" if len(g.values) > 1 else "="
                continue
        plan.filters = [g for g in plan.filters
                        if not ((g.table, g.column) == (f.table, f.column) and _same_direction(g.op, f.op))]
        plan.filters.append(f)
    # Window, order, limit, chart
    if reading.window:
        if not plan.time_column:
            builder.set_time_axis(plan, parts, reading, table)
        if not plan.time_column:
            raise NotUnderstood(f"{plan.table} has no date or time column for “{reading.window.describe()}”.")
        plan.window = reading.window
    elif reading.clear_window:
        plan.window = None
    if reading.limit:
        plan.limit = reading.limit
        plan.order = reading.order or "desc"
    elif reading.order:
        plan.order = reading.order
    if reading.chart:
        plan.chart = reading.chart
    return plan


def _same_direction(a: str, b: str) -> bool:
    groups = [{"=", "!=", "in", "not in"}, {">", ">="}, {"<", "<="}, {"between"}]
    return any(a in g and b in g for g in groups)


def is_follow_up(reading: Reading, parts: Parts, prev: Plan, builder: Builder) -> bool:
    """A short modification of the previous answer, rather than a question of its own?"""
    res = builder.res
    related = {prev.table} | {t.name for t in builder.ctx.tables if res.joinable(prev.table, t.name)
                              or res.semi_joinable(prev.table, t.name)}
    named = {m.table for item in parts.evidence + ([parts.head] if parts.head else [])
             for m in item.meanings if m.kind == "table" and m.strength >= 2}
    if named and not (named & related):
        return False  # "now purchases by day" after a question about events: a new question
    if reading.follow_marker:
        return True  # "now …", "only …", "… instead", "what about …", "and for …", "it", "them"
    # A question with its own subject ("top 5 countries by revenue") is a new question, even when it
    # starts like a modifier; a bare modifier ("top 5", "by device", "in the last 7 days") follows up.
    has_target = any(t is not None for _f, t, _h in parts.aggs) or parts.head is not None \
        or (parts.rate is not None and parts.rate[0] is not None)
    if named or has_target:
        return False
    return True
