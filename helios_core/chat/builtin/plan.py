"""The plan a question is read into: what is measured, grouped, filtered, ordered (kept for follow-ups)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Cond:
    table: str
    column: str
    op: str                      # = != in not in > >= < <= between
    values: list[Any] = field(default_factory=list)

    def describe(self) -> str:
        """In words: "currency is EUR", "device is not desktop", "amount over 400", "plan is pro or free"."""
        name = self.column.replace("_", " ")
        shown = [str(v) for v in self.values]
        if self.op in ("=", "in") and "currency" in self.column.lower():
            return "in " + " or ".join(shown)
        if self.op == "in":
            return f"{name} is " + (" or ".join(shown) if len(shown) <= 3 else f"one of {', '.join(shown)}")
        if self.op == "not in":
            return f"{name} is not " + " or ".join(shown)
        if self.op == "between":
            return f"{name} between {shown[0]} and {shown[1]}"
        op = {"=": "is", "!=": "is not", ">": "is over", ">=": "is at least", "<": "is under", "<=": "is at most"}
        return f"{name} {op.get(self.op, self.op)} {shown[0]}"


@dataclass
class PlanMeasure:
    func: str                    # count uniq sum avg min max median rate
    table: str = ""
    column: str = ""
    num: Cond | None = None      # rate: rows matching num ÷ rows matching den (all rows when None)
    den: Cond | None = None
    label: str = ""              # the word the user used ("purchases", "revenue")


@dataclass
class Dim:
    table: str
    column: str
    grain: str = ""              # hour day week month (time columns)
    auto: bool = False           # added by the assistant (amounts split by their currency), not asked for


@dataclass
class Window:
    kind: str                    # last | today | yesterday | this
    amount: int = 1
    unit: str = "day"            # minute hour day week month year

    def describe(self) -> str:
        if self.kind == "last":
            return f"in the last {self.amount} {self.unit}s" if self.amount != 1 else f"in the last {self.unit}"
        if self.kind == "this":
            return f"this {self.unit}"
        return self.kind


@dataclass
class Plan:
    table: str
    measures: list[PlanMeasure] = field(default_factory=list)
    dims: list[Dim] = field(default_factory=list)
    filters: list[Cond] = field(default_factory=list)
    window: Window | None = None
    time_table: str = ""
    time_column: str = ""
    order: str = ""              # desc | asc (by the first measure, or by sort_column for rows)
    limit: int = 0
    chart: str = ""              # a chart kind the user asked for
    rows: bool = False           # list rows instead of aggregating
    sort_column: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        def cond(d: dict | None) -> Cond | None:
            return Cond(**d) if d else None
        measures = [PlanMeasure(func=m["func"], table=m.get("table", ""), column=m.get("column", ""),
                            num=cond(m.get("num")), den=cond(m.get("den")), label=m.get("label", ""))
                    for m in data.get("measures", [])]
        window = Window(**data["window"]) if data.get("window") else None
        return cls(table=data["table"], measures=measures, dims=[Dim(**d) for d in data.get("dims", [])],
                   filters=[Cond(**f) for f in data.get("filters", [])], window=window,
                   time_table=data.get("time_table", ""), time_column=data.get("time_column", ""),
                   order=data.get("order", ""), limit=int(data.get("limit", 0) or 0), chart=data.get("chart", ""),
                   rows=bool(data.get("rows")), sort_column=data.get("sort_column", ""))


@dataclass
class BuiltinAnswer:
    ok: bool
    sql: str = ""
    plan: Plan | None = None
    description: str = ""        # what was computed, in words
    chart: str = ""
    message: str = ""            # when not ok: what was not understood
    suggestions: list[str] = field(default_factory=list)
    refused: bool = False        # a kind of question it never answers (forecasts): message leads the suggestions


class NotUnderstood(Exception):
    pass
