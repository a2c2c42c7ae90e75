"""Report filters as a person types them: ``country in US, GB``, ``amount between 5 and 10``.

The filter language of :mod:`helios_core.reports` (its compiler types and binds every value): operators and
their spellings, conditions read from text, the builder's rows read into filters with messages that say what to
type, and reports' names for column type families.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from helios_core import chtypes
from helios_core.errors import ValidationError

OPERATORS = ("=", "!=", "in", "not in", "<", ">", "between", "contains")
_OPERATOR_ALIASES = {"≠": "!=", "<>": "!=", "==": "=", "not_in": "not in", "notin": "not in"}
MAX_IN_VALUES = 1000


@dataclass
class Filter:
    column: str
    op: str
    values: list[Any] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"column": self.column, "op": self.op, "values": [jsonable(v) for v in self.values]}

    @classmethod
    def from_json(cls, data: Any) -> Filter:
        if isinstance(data, str):
            return parse_condition(data)
        if not isinstance(data, dict):
            raise ValidationError(f"A filter must be an object with column, op and values, not {data!r}.")
        values = data.get("values", data.get("value", []))
        if not isinstance(values, list):
            values = [values]
        return cls(column=str(data.get("column", "")), op=str(data.get("op", "=")), values=values)

    def describe(self) -> str:
        shown = ", ".join(str(v) for v in self.values)
        return f"{self.column} {self.op} {shown}"


def jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def parse_condition(text: str) -> Filter:
    """``"type = solve"``, ``"country in US, GB"``, ``"amount between 5, 10"`` → a Filter.

    A convenience for the page and the CLI; values still go through typing and binding.
    """
    text = str(text).strip()
    match = re.match(r"^\s*(`[^`]+`|[^\s=!<>≠]+)\s*(not\s+in|between|contains|in|!=|<>|≠|==|=|<|>)\s*(.*)$",
                     text, flags=re.IGNORECASE | re.DOTALL)
    if not match:
        raise ValidationError(f"Cannot read the condition {text!r}.",
                              "Write it as: column operator value, e.g. type = solve, or country in US, GB.")
    column, op = match.group(1).strip("`"), normal_operator(match.group(2))
    return Filter(column, op, _split_values(op, match.group(3)))


def parse_conditions(text: str) -> list[Filter]:
    """Several conditions separated by ``;`` (all must hold)."""
    return [parse_condition(part) for part in str(text or "").split(";") if part.strip()]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


# ---- filter values as a person types them ------------------------------------------------------


def normal_operator(op: str) -> str:
    """``NOT  IN`` → ``not in``, ``<>`` → ``!=``: the operator's one spelling (unknown ones come back as typed)."""
    op = re.sub(r"\s+", " ", str(op).strip().lower())
    return _OPERATOR_ALIASES.get(op, op)


def _split_values(op: str, text: str) -> list[str]:
    """The values typed for ``op``, trimmed, unquoted, blanks dropped (``''`` is an empty value); not counted."""
    text = str(text or "").strip()
    if op in ("in", "not in"):
        parts = text.split(",")
    elif op == "between":
        parts = text.split(",") if "," in text else re.split(r"\s+and\s+", text, flags=re.IGNORECASE)
    else:
        parts = [text]
    return [_unquote(p.strip()) for p in parts if p.strip() != ""]


# Two values of each family, for the examples in the messages (in order, so they also make a range).
_EXAMPLES = {"int": ("10", "400"), "float": ("0.5", "2.5"), "decimal": ("9.99", "100"),
             "date": ("2024-05-01", "2024-05-31"), "datetime": ("2024-05-01 08:00", "2024-05-01 18:00"),
             "bool": ("true", "false"), "ip": ("10.0.0.1", "10.0.0.255")}
# Families whose single value never holds a comma: one there means several values were typed.
_NO_COMMA = ("int", "float", "decimal", "date", "datetime", "bool", "uuid", "ip")


def parse_filter_values(op: str, text: str, column_type: str = "") -> list[str]:
    """A filter's value as typed → its values: ``in``: comma-separated; ``between``: ``a and b`` or ``a, b``.

    Other operators take one value; quotes around a value are removed. The values stay text (the compiler types
    them); a wrong count raises a ValidationError that says what to type, with an example for ``column_type``.
    """
    op = normal_operator(op)
    if op not in OPERATORS:
        raise ValidationError(f"Unknown operator {op!r}: use one of {', '.join(OPERATORS)}.")
    values = _split_values(op, text)
    family = type_family(column_type) if column_type else "string"
    first, second = _EXAMPLES.get(family, ("EUR", "USD"))
    if op in ("in", "not in"):
        if not values:
            raise ValidationError(f"{op} needs at least one value: type them separated by commas, "
                                  f"e.g. {first}, {second}.")
        if len(values) > MAX_IN_VALUES:
            raise ValidationError(f"{op} takes at most {MAX_IN_VALUES:,} values, not {len(values):,}: "
                                  "narrow the list, or filter with between, < or >.")
    elif op == "between":
        if len(values) != 2:
            got = ", ".join(repr(v) for v in values) or "nothing"
            raise ValidationError(f"between needs two values, from and to, not {got}: type them as "
                                  f"{first} and {second} (or {first}, {second}).")
    elif not values:
        raise ValidationError(f"{op} needs a value: type one, e.g. {first}.")
    elif family in _NO_COMMA and "," in values[0]:
        raise ValidationError(f"{op} takes one value, not {values[0]!r}: for several values choose the "
                              "operator in; numbers are typed without thousands separators.")
    return values


def filters_from_rows(rows: Iterable[tuple[str, str, str]], column_types: Mapping[str, str] | None = None
                      ) -> list[Filter]:
    """The builder's filter rows (column, operator, value as typed) → filters; blank rows are skipped.

    A row missing a part or with unreadable values is never dropped or guessed (the report would not be what
    the user asked for): every such row is named in one ValidationError.
    """
    types = column_types or {}
    filters: list[Filter] = []
    problems: list[str] = []
    for number, (column, op, value) in enumerate(rows, start=1):
        if not (column or op or value):
            continue
        missing = [name for name, given in (("a column", column), ("an operator", op), ("a value", value))
                   if not given]
        where = f"Filter row {number}" + (f" ({column})" if column else "")
        if missing:
            problems.append(f"{where} has no " + " and no ".join(m.split(" ", 1)[1] for m in missing)
                            + f": choose {' and '.join(missing)}, or delete the row.")
            continue
        try:
            filters.append(Filter(column, normal_operator(op), parse_filter_values(op, value, types.get(column, ""))))
        except ValidationError as exc:
            problems.append(f"{where}: {exc.message}")
    if problems:
        raise ValidationError(problems[0] if len(problems) == 1 else
                              f"{len(problems)} filter rows cannot be used; the report was not run.",
                              "Complete each filter row (column, operator and value) or delete it.",
                              problems=problems)
    return filters


# Reports' names for chtypes' families (maps, tuples and JSON are not filtered or grouped: "other").
_FAMILY_NAMES = {"integer": "int", "time": "datetime", "map": "other", "tuple": "other", "json": "other"}


def type_family(t: str) -> str:
    """int, float, decimal, string, uuid, date, datetime, bool, ip, array, enum or other."""
    fam = chtypes.family(t)
    return _FAMILY_NAMES.get(fam, fam)
