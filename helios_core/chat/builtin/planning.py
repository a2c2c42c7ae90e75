"""Building the plan: choosing the main table, the measures, groups, filters, time axis and rows mode;
amounts in several currencies split by currency."""

from __future__ import annotations

from helios_core.chat.builtin.interpreting import Parts
from helios_core.chat.builtin.joins import Resolver
from helios_core.chat.builtin.lexicon import Lexicon, Meaning, column_kind_of
from helios_core.chat.builtin.plan import Cond, Dim, NotUnderstood, Plan, PlanMeasure
from helios_core.chat.builtin.reading import Item, Reading
from helios_core.chat.builtin.vocabulary import ACTIVE_TABLE_WORDS, ADDITIVE_HINTS
from helios_core.chat.context import SubjectContext, SubjectTable
from helios_core.chat.currency import are_currency_codes, is_currency_name, is_money_name
from helios_core.chtypes import family


class Builder:
    def __init__(self, ctx: SubjectContext, lex: Lexicon) -> None:
        self.ctx = ctx
        self.lex = lex
        self.res = Resolver(ctx)

    # -- choosing the main table ------------------------------------------------------

    def candidates(self, parts: Parts) -> list[tuple[float, str]]:
        scored = []
        for t in self.ctx.tables:
            score = self._score(t, parts)
            if score is not None:
                scored.append((score, t))
        scored.sort(key=lambda s: (-s[0], -s[1].rows))
        return [(score, t.name) for score, t in scored]

    def _score(self, t: SubjectTable, parts: Parts) -> float | None:
        name = t.name
        score = 0.0
        for func, target, head in parts.aggs:
            if target is None:
                continue
            if func in ("sum", "avg", "median", "min", "max") or (func == "" and head is None):
                m, s, how = self.res.reach(target, name, ("column",), numeric=True)
                if m is None or how != "direct":
                    return None
                score += s + 1.0
            else:  # count / uniq of a noun
                noun = self._noun_score(target, t)
                if noun is None:
                    return None
                score += noun
        if parts.head is not None and not parts.aggs:
            noun = self._noun_score(parts.head, t)
            if noun is None:
                return None
            score += noun
        if parts.rate and parts.rate[0] is not None:
            m, s, how = self.res.reach(parts.rate[0], name, ("value",))
            if m is None or how != "direct":
                return None
            score += s
        for d in parts.dims:
            m, s, how = self.res.reach(d, name, ("column",))
            if m is None:
                return None
            score += s
        for f, _neg in parts.filters:
            if f is parts.head:
                continue
            m, s, how = self.res.reach(f, name, ("value",))
            if m is None:
                return None
            score += s
        for cmp, col in parts.compares:
            if col is not None:
                m, s, how = self.res.reach(col, name, ("column",), numeric=True)
                if m is None:
                    return None
                score += s
            elif cmp.data[1]:
                if not self._concept_column(t, cmp.data[1]) and not self._joined_concept(t, cmp.data[1]):
                    return None
            elif self.primary_numeric(t) is None:
                return None
        for e in parts.evidence:
            best = 0.0
            for m in e.meanings:
                if m.table == name:
                    best = max(best, m.strength)
            score += best
        if parts.active:
            # "active users" live in activity tables; a generic events table is a weaker guess
            if any(w in name.lower() for w in ACTIVE_TABLE_WORDS if w != "event"):
                score += 2.0
            elif "event" in name.lower():
                score += 1.0
        if (parts.aggs or parts.head or parts.dims or parts.filters or parts.rate) and score <= 0 \
                and len(self.ctx.tables) > 1:
            return None
        return score

    def _noun_score(self, noun: Item, t: SubjectTable) -> float | None:
        scores = [m.strength for m in noun.meanings if m.table == t.name]
        if scores:
            return max(scores)
        if len(self.ctx.tables) == 1 and not noun.meanings:
            return 0.0
        return None

    def primary_numeric(self, t: SubjectTable) -> str | None:
        numbers = [c for c in t.columns if c.kind == "number"]
        if not numbers:
            return None
        for hint in ("amount", "revenue", "price", "value", "total", "duration"):
            for c in numbers:
                if hint in c.name.lower():
                    return c.name
        floats = [c for c in numbers if family(c.type) in ("float", "decimal")]
        return (floats or numbers)[0].name

    def _concept_column(self, t: SubjectTable, hint: str) -> str | None:
        for c in t.columns:
            if c.kind == "number" and hint in c.name.lower():
                return c.name
        return None

    def _joined_concept(self, t: SubjectTable, hint: str) -> tuple[str, str] | None:
        for other in self.ctx.tables:
            if self.res.joinable(t.name, other.name):
                col = self._concept_column(other, hint)
                if col:
                    return other.name, col
        return None

    # -- the plan ------------------------------------------------------------------------

    def build(self, reading: Reading, parts: Parts) -> Plan:
        scored = self.candidates(parts)
        if not scored:
            raise NotUnderstood(self._why_not(parts))
        main = scored[0][1]
        table = self.ctx.table(main)
        assert table is not None
        plan = Plan(table=main)
        plan.measures = self.measures(parts, table, reading)
        for d in parts.dims:
            m, _s, _how = self.res.reach(d, main, ("column",))
            if m is not None and not any(x.table == m.table and x.column == m.column for x in plan.dims):
                plan.dims.append(self.dim(m))
        plan.filters = self.filters(parts, main)
        plan.filters += self.compares(parts, table)
        self.set_time_axis(plan, parts, reading, table)
        for g in reading.grains:
            if plan.time_column:
                plan.dims = [d for d in plan.dims if not d.grain] + [Dim(plan.time_table, plan.time_column, g)]
                plan.dims.sort(key=lambda d: 0 if d.grain else 1)
        plan.window = reading.window
        if plan.window and not plan.time_column:
            raise NotUnderstood(f"{main} has no date or time column, so I cannot apply “{plan.window.describe()}”.")
        if reading.grains and not plan.time_column:
            raise NotUnderstood(f"{main} has no date or time column to group by {reading.grains[0]}.")
        plan.limit = reading.limit
        plan.order = reading.order
        plan.chart = reading.chart
        self._rows_mode(plan, parts, reading, table)
        if reading.superlative and not plan.dims and not plan.rows:
            # "what is the highest amount": a maximum, not a ranking of one
            for measure in plan.measures:
                if measure.column and measure.func in ("sum", "avg", ""):
                    measure.func = "min" if plan.order == "asc" else "max"
            plan.limit, plan.order = 0, ""
        return plan

    def dim(self, m: Meaning) -> Dim:
        """Grouping by a column; a time column is grouped by day unless a grain is asked for."""
        return Dim(m.table, m.column, "day" if column_kind_of(m, self.ctx) == "time" else "")

    def _why_not(self, parts: Parts) -> str:
        mentioned = [m.text for m in parts.mentions()]
        if mentioned:
            return (f"I recognised {', '.join(repr(m) for m in mentioned)}, but not in one table "
                    "(or in tables I know how to join).")
        return "I did not recognise any table, column or value of this subject in the question."

    def measures(self, parts: Parts, table: SubjectTable, reading: Reading) -> list[PlanMeasure]:
        measures: list[PlanMeasure] = []
        main = table.name
        for func, target, head in parts.aggs:
            if target is None:
                if func in ("count", ""):
                    measures.append(PlanMeasure("count", label=self._rows_label(parts, table)))
                elif func == "uniq":
                    continue
                else:
                    col = self.primary_numeric(table)
                    if col is None:
                        raise NotUnderstood(f"{main} has no numeric column to take the {func} of.")
                    measures.append(PlanMeasure(func, main, col, label=col))
                continue
            if head is not None and func in ("count", "uniq"):
                measures.append(self._count_noun(func, head, table, parts))
                continue
            m, _s, _how = self.res.reach(target, main, ("column",), numeric=True)
            if m is None:
                raise NotUnderstood(f"I could not find {target.text!r} as a number in {main}.")
            chosen = func or m.agg or self._default_agg(m.column)
            measures.append(PlanMeasure(chosen, m.table, m.column, label=target.text.lower()))
        if parts.rate is not None:
            measures.insert(0, self._rate(parts, table))
        if not measures:
            if parts.head is not None:
                measures.append(self._count_noun("count", parts.head, table, parts))
            else:
                measures.append(PlanMeasure("count", label=self._rows_label(parts, table)))
        return measures

    def _default_agg(self, column: str) -> str:
        """Amounts and counts add up ("revenue by plan"); ages and scores average."""
        name = column.lower()
        last = name.split("_")[-1]
        counted = name in ("n", "cnt", "c") or (len(last) > 3 and last.endswith("s") and not last.endswith("ss"))
        return "sum" if counted or any(h in name for h in ADDITIVE_HINTS) else "avg"

    def _rows_label(self, parts: Parts, table: SubjectTable) -> str:
        if parts.head is not None:
            return parts.head.text.lower()
        return "rows"

    def _count_noun(self, func: str, noun: Item, table: SubjectTable, parts: Parts) -> PlanMeasure:
        main = table.name
        label = noun.text.lower()
        direct = [m for m in noun.meanings if m.table == main and (m.kind != "table" or m.strength >= 1)]
        kinds = {m.kind for m in direct}
        entity = [m for m in direct if m.entity and m.kind == "column" and table.is_keyed_by != m.column]
        if entity and "table" not in kinds and "value" not in kinds:
            # "users" counted in a table of their events: distinct users, not rows
            return PlanMeasure("uniq", main, entity[0].column, label=label)
        if func == "uniq" or ("column" in kinds and "table" not in kinds and "rows" not in kinds
                              and "value" not in kinds):
            cols = [m for m in direct if m.kind == "column"]
            if cols:
                col = max(cols, key=lambda m: m.strength)
                ckind = column_kind_of(col, self.ctx)
                if ckind == "time" and func != "uniq":
                    return PlanMeasure("count", label=label)
                if table.is_keyed_by == col.column and func != "uniq":
                    return PlanMeasure("count", label=label)
                return PlanMeasure("uniq", main, col.column, label=f"unique {label}" if func == "uniq" else label)
            if func == "uniq":
                raise NotUnderstood(f"I do not know which column of {main} holds distinct {label}.")
        return PlanMeasure("count", label=label)

    def _rate(self, parts: Parts, table: SubjectTable) -> PlanMeasure:
        mention, negated = parts.rate or (None, False)
        if mention is None:
            raise NotUnderstood("A rate of what? Name a value, for example “refund rate” or “solve rate”.")
        m, _s, how = self.res.reach(mention, table.name, ("value",))
        if m is None or how != "direct":
            raise NotUnderstood(f"I could not find {mention.text!r} in {table.name}.")
        num = Cond(m.table, m.column, "!=" if negated else "=", [m.value])
        col = table.column(m.column)
        values = col.values if col else []
        den = None
        if len(values) == 2 and not negated:
            other = [v for v in values if v != m.value][0]
            den = Cond(m.table, m.column, "=", [other])
        return PlanMeasure("rate", m.table, m.column, num=num, den=den, label=f"{m.value} rate")

    def filters(self, parts: Parts, main: str) -> list[Cond]:
        by_column: dict[tuple[str, str, bool], list[str]] = {}
        for item, negated in parts.filters:
            m, _s, _how = self.res.reach(item, main, ("value",))
            if m is None:
                where = sorted({f"{x.column} of {x.table}" for x in item.meanings if x.kind == "value"})
                raise NotUnderstood(f"{item.text!r} is a value of {' and '.join(where) or 'another table'}, "
                                    f"which I cannot relate to {main}.")
            key = (m.table, m.column, negated)
            if m.value not in by_column.setdefault(key, []):
                by_column[key].append(m.value)
        out = []
        for (table, column, negated), values in by_column.items():
            if len(values) == 1:
                out.append(Cond(table, column, "!=" if negated else "=", values))
            else:
                out.append(Cond(table, column, "not in" if negated else "in", values))
        return out

    def compares(self, parts: Parts, table: SubjectTable) -> list[Cond]:
        out = []
        for cmp, col in parts.compares:
            values, hint = cmp.data
            if col is not None:
                m, _s, _how = self.res.reach(col, table.name, ("column",), numeric=True)
                if m is None:
                    continue
                target = (m.table, m.column)
            elif hint:
                name = self._concept_column(table, hint)
                target = (table.name, name) if name else self._joined_concept(table, hint)  # type: ignore[assignment]
            else:
                name = self.primary_numeric(table)
                target = (table.name, name) if name else None  # type: ignore[assignment]
            if not target:
                raise NotUnderstood(f"I could not tell which number “{cmp.arg} {values[0]}” is about.")
            out.append(Cond(target[0], target[1], cmp.arg, list(values)))
        return out

    def set_time_axis(self, plan: Plan, parts: Parts, reading: Reading, table: SubjectTable) -> None:
        # A date column named in the question ("signups per month") is the time axis; else the table's own.
        for item in [h for _, _, h in parts.aggs if h] + ([parts.head] if parts.head else []) + parts.evidence:
            for m in item.meanings:
                if m.kind == "column" and column_kind_of(m, self.ctx) == "time" and \
                        (m.table == table.name or self.res.joinable(table.name, m.table)):
                    plan.time_table, plan.time_column = m.table, m.column
                    return
        times = table.time_columns
        if times:
            plan.time_table, plan.time_column = table.name, times[0].name

    def _rows_mode(self, plan: Plan, parts: Parts, reading: Reading, table: SubjectTable) -> None:
        """ "the 10 largest purchases", "latest 5 logins": rows, not an aggregate."""
        explicit_agg = any(func for func, _t, _h in parts.aggs) or parts.rate is not None
        if plan.dims or explicit_agg:
            return
        numeric_target = [t for f, t, h in parts.aggs if f == "" and t is not None]
        if parts.latest and (reading.limit or parts.show):
            plan.rows = True
            plan.sort_column = plan.time_column
            plan.order = "asc" if parts.latest == "asc" else "desc"
            plan.limit = reading.limit or 10
        elif reading.limit and not reading.superlative and not reading.rank_by_count and parts.head is not None:
            plan.rows = True
            col = None
            if numeric_target:
                m, _s, _how = self.res.reach(numeric_target[0], table.name, ("column",), numeric=True)
                col = m.column if m else None
            plan.sort_column = col or self.primary_numeric(table) or plan.time_column
        if plan.rows:
            plan.measures = []
            if not plan.sort_column:
                raise NotUnderstood(f"I do not know how to order the rows of {table.name}.")


# ---------------------------------------------------------------------------- currencies

_MONEY_FUNCS = ("sum", "avg", "min", "max", "median")


def currency_column(table: SubjectTable) -> str | None:
    """The column that says which currency a row's amounts are in, if the table has one."""
    for c in table.columns:
        if c.kind in ("category", "text") and is_currency_name(c.name):
            return c.name
    for c in table.columns:
        if c.is_category and are_currency_codes(c.values):
            return c.name
    return None


def split_by_currency(plan: Plan, ctx: SubjectContext) -> None:
    """Amounts in several currencies are never added together: group by the currency unless one is chosen."""
    plan.dims = [d for d in plan.dims if not d.auto]
    if plan.rows:
        return
    money = [m for m in plan.measures if m.func in _MONEY_FUNCS and m.column and is_money_name(m.column)]
    table = ctx.table(money[0].table) if money else None
    column = currency_column(table) if table is not None else None
    if table is None or column is None:
        return
    if any(d.table == table.name and d.column == column for d in plan.dims):
        return
    if any(f.table == table.name and f.column == column and f.op in ("=", "in") and len(f.values) == 1
           for f in plan.filters):
        return
    plan.dims.append(Dim(table.name, column, auto=True))
