"""The plan compiled to one SELECT (values as escaped literals: the SQL is shown and can be edited)."""

from __future__ import annotations

from helios_core.chat.builtin.describing import column_words, plural
from helios_core.chat.builtin.joins import Resolver
from helios_core.chat.builtin.plan import Cond, NotUnderstood, Plan, PlanMeasure, Window
from helios_core.chat.builtin.vocabulary import CONCEPTS, name_words, quote_literal, stem
from helios_core.chat.context import SubjectContext, sql_name
from helios_core.chtypes import family
from helios_core.identifiers import sanitize_name

# The first word of each everyday concept ("revenue", "sales"): a sum labelled so keeps the user's word.
_CONCEPT_STEMS = {stem(words[0]) for words, _candidates, _agg in CONCEPTS}


class Compiler:
    def __init__(self, ctx: SubjectContext) -> None:
        self.ctx = ctx
        self.res = Resolver(ctx)

    def compile(self, plan: Plan) -> str:
        main = self.ctx.table(plan.table)
        if main is None:
            raise NotUnderstood(f"There is no table {plan.table!r} here.")
        used = {plan.table}
        semi: list[Cond] = []
        for d in plan.dims:
            used.add(d.table)
        for f in plan.filters:
            if f.table != plan.table and not self.res.joinable(plan.table, f.table):
                semi.append(f)
            else:
                used.add(f.table)
        for m in plan.measures:
            if m.table:
                used.add(m.table)
        if plan.time_table:
            used.add(plan.time_table)
        joins = [t for t in sorted(used) if t != plan.table]
        aliases: dict[str, str] = {}
        if joins:
            for t in [plan.table] + joins:
                aliases[t] = self._alias(t, set(aliases.values()))
        taken = {c.name.lower() for t in used for c in self.ctx.table(t).columns}  # type: ignore[union-attr]

        def col(table: str, column: str) -> str:
            return f"{aliases[table]}.{sql_name(column)}" if aliases else sql_name(column)

        select: list[str] = []
        group: list[str] = []
        order: list[str] = []
        names: set[str] = set()

        def alias(name: str) -> str:
            base = sanitize_name(name.lower())
            if base.lower() in taken or base in names:
                base = f"{base}_value" if base.lower() in taken else base
            n, candidate = 2, base
            while candidate in names or candidate.lower() in taken:
                candidate = f"{base}_{n}"
                n += 1
            names.add(candidate)
            return candidate

        if plan.rows:
            select.append("*" if not aliases else f"{aliases[plan.table]}.*")
        time_aliases = []
        for d in plan.dims:
            if d.grain:
                expr = self._grain(col(d.table, d.column), d.grain, self._is_date(d.table, d.column))
                a = alias(d.grain)
                select.append(f"{expr} AS {a}")
                group.append(a)
                time_aliases.append(a)
            else:
                expr = col(d.table, d.column)
                select.append(expr)
                group.append(expr)
        measure_aliases = []
        for m in plan.measures:
            expr = self._measure(m, col)
            a = alias(self._measure_name(m))
            select.append(f"{expr} AS {a}")
            measure_aliases.append(a)
        where = [self._cond(f, col) for f in plan.filters if f not in semi]
        for f in semi:
            key = self.res.semi_joinable(plan.table, f.table)
            other = self.ctx.table(f.table)
            if not key or other is None:
                raise NotUnderstood(f"I do not know how to relate {plan.table} to {f.table}.")
            inner = self._cond(f, lambda _t, c: sql_name(c))
            where.append(f"{col(plan.table, key)} IN (SELECT {sql_name(key)} FROM {other.ref} WHERE {inner})")
        if plan.window and plan.time_column:
            where.append(self._window(col(plan.time_table, plan.time_column), plan.window,
                                      self._is_date(plan.time_table, plan.time_column)))
        direction = "ASC" if plan.order == "asc" else "DESC"
        # Top N of amounts split by currency: N per currency (amounts in different currencies do not rank).
        per = [col(d.table, d.column) for d in plan.dims if d.auto and not d.grain] \
            if plan.limit and len(plan.dims) > 1 else []
        if plan.rows:
            order.append(f"{col(plan.table, plan.sort_column)} {direction}")
        elif plan.limit and measure_aliases:
            order += per + [f"{measure_aliases[0]} {direction}"] + [g for g in group if g not in per]
        elif time_aliases:
            order += group
        elif group and measure_aliases:
            order.append(f"{measure_aliases[0]} {direction}")
            order += group
        lines = ["SELECT " + ",\n       ".join(select)]
        lines.append(f"FROM {main.ref}" + (f" AS {aliases[plan.table]}" if aliases else ""))
        for t in joins:
            key = self.res.joinable(plan.table, t)
            other = self.ctx.table(t)
            if not key or other is None:
                raise NotUnderstood(f"I do not know how to join {plan.table} with {t}.")
            lines.append(f"INNER JOIN {other.ref} AS {aliases[t]} ON {aliases[plan.table]}.{sql_name(key)} = "
                         f"{aliases[t]}.{sql_name(key)}")
        if where:
            lines.append("WHERE " + "\n  AND ".join(where))
        if group:
            lines.append("GROUP BY " + ", ".join(group))
        if order:
            lines.append("ORDER BY " + ", ".join(order))
        if plan.limit and per:
            lines.append(f"LIMIT {int(plan.limit)} BY {', '.join(per)}")
        elif plan.limit:
            lines.append(f"LIMIT {int(plan.limit)}")
        elif plan.rows:
            lines.append("LIMIT 10")
        return "\n".join(lines)

    @staticmethod
    def _alias(table: str, taken: set[str]) -> str:
        words = name_words(table) or ["t"]
        base = "".join(w[0] for w in words if w[0].isalpha()) or "t"
        if base.lower() in {"as", "by", "in", "on", "or", "to", "is", "if", "at", "of"}:
            base += "t"
        candidate, n = base, 2
        while candidate in taken:
            candidate = f"{base}{n}"
            n += 1
        return candidate

    def _is_date(self, table: str, column: str) -> bool:
        c = self.ctx.column(table, column)
        return bool(c and family(c.type) != "time")

    @staticmethod
    def _grain(expr: str, grain: str, is_date: bool) -> str:
        if is_date and grain in ("minute", "hour"):
            grain = "day"
        return {"minute": f"toStartOfMinute({expr})", "hour": f"toStartOfHour({expr})",
                "day": f"toDate({expr})", "week": f"toStartOfWeek({expr}, 1)", "month": f"toStartOfMonth({expr})",
                "year": f"toStartOfYear({expr})"}[grain]

    @staticmethod
    def _window(expr: str, w: Window, is_date: bool) -> str:
        if w.kind == "today":
            return f"toDate({expr}) = today()"
        if w.kind == "yesterday":
            return f"toDate({expr}) = yesterday()"
        if w.kind == "this":
            start = {"week": "toStartOfWeek({x}, 1)", "month": "toStartOfMonth({x})", "year": "toStartOfYear({x})"}
            f = start.get(w.unit, "toDate({x})")
            return f"{f.format(x=expr)} = {f.format(x='today()')}"
        unit = w.unit.upper()
        if is_date:
            if w.unit in ("minute", "hour"):
                return f"{expr} >= today() - 1"
            return f"{expr} > today() - INTERVAL {int(w.amount)} {unit}"
        return f"{expr} >= now() - INTERVAL {int(w.amount)} {unit}"

    def _measure(self, m: PlanMeasure, col) -> str:
        if m.func == "count":
            return "count()"
        if m.func == "rate":
            num = self._cond(m.num, col) if m.num else "1"
            if m.den:
                return f"countIf({num}) / countIf({self._cond(m.den, col)})"
            return f"countIf({num}) / count()"
        c = col(m.table, m.column)
        return {"uniq": f"uniqExact({c})", "sum": f"sum({c})", "avg": f"avg({c})", "min": f"min({c})",
                "max": f"max({c})", "median": f"quantileExactInclusive(0.5)({c})"}[m.func]

    @staticmethod
    def _measure_name(m: PlanMeasure) -> str:
        if m.func == "count":
            return m.label if m.label and m.label != "rows" else "count"
        if m.func == "rate":
            return f"{m.num.values[0] if m.num else ''}_rate"
        if m.func == "uniq":
            return "unique_" + plural(column_words(m.column)).replace(" (", "_").rstrip(")")
        prefix = {"sum": "total", "avg": "avg", "min": "min", "max": "max", "median": "median"}[m.func]
        if m.func == "sum" and m.label and m.label != m.column and stem(m.label) in _CONCEPT_STEMS:
            return m.label
        return f"{prefix}_{m.column}"

    def _cond(self, f: Cond, col) -> str:
        c = col(f.table, f.column)
        literal = [quote_literal(v) for v in f.values]
        if f.op in ("in", "not in"):
            return f"{c} {f.op.upper()} ({', '.join(literal)})"
        if f.op == "between":
            return f"{c} BETWEEN {literal[0]} AND {literal[1]}"
        return f"{c} {f.op} {literal[0]}"
