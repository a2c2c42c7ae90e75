"""ClickHouse types: one place that reads a type name, and one table of value ranges.

Two readers, for two kinds of input:

* :func:`describe` reads any type ClickHouse reports (``system.columns``, query results): base name, its
  arguments as text, Nullable, LowCardinality and a family. It never raises: what it cannot read is
  family ``other``.
* :func:`parse_type` is the strict grammar for types a *user* chooses (the wizard, the CLI, the API): only
  the catalogue Helios offers, re-rendered canonically by :meth:`TypeNode.render`, with messages written
  for the user and a nesting limit (:data:`MAX_TYPE_DEPTH`) so a hostile type is refused, not a
  RecursionError.

Both share :func:`family_of`, so "is this a number / a time" has one answer everywhere.

clickhouse-connect's own registry (``clickhouse_connect.datatypes.registry.get_from_name``) was considered:
it knows every type, but it raises internal errors (and logs them) for names it does not know, exposes
arguments differently per type class, and has no notion of Helios's catalogue; so Helios reads names itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from helios_core.errors import ValidationError

# ---- the one table of ranges ----------------------------------------------------------------------

INT_RANGES: dict[str, tuple[int, int]] = {
    f"{sign}Int{bits}": ((0, 2 ** bits - 1) if sign else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    for sign in ("", "U") for bits in (8, 16, 32, 64, 128, 256)}
DATE_BOUNDS: dict[str, tuple[date, date]] = {"Date": (date(1970, 1, 1), date(2149, 6, 6)),
                                             "Date32": (date(1900, 1, 1), date(2299, 12, 31))}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# DateTime's and DateTime64's ranges in ClickHouse, as seconds since the epoch.
DATETIME_BOUNDS = (0, int((datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC) - _EPOCH).total_seconds()))
DATETIME64_BOUNDS = (int((datetime(1900, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()),
                     int((datetime(2300, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()) - 1)
TIME_BOUNDS = {"DateTime": DATETIME_BOUNDS, "DateTime64": DATETIME64_BOUNDS}

# ---- the catalogue Helios offers ------------------------------------------------------------------

INTEGER_TYPES = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64")
FLOAT_TYPES = ("Float32", "Float64")
SCALAR_TYPES = INTEGER_TYPES + FLOAT_TYPES + (
    "Bool", "String", "UUID", "IPv4", "IPv6", "Date", "Date32", "DateTime", "JSON")
PARAMETRIC = ("Decimal", "FixedString", "DateTime64")
WRAPPERS = ("Nullable", "LowCardinality", "Array", "Map")
TIME_TYPES = ("Date", "Date32", "DateTime", "DateTime64")

# ---- families -------------------------------------------------------------------------------------

FAMILIES = ("integer", "float", "decimal", "string", "time", "date", "bool", "uuid", "ip", "enum", "array", "map",
            "tuple", "json", "other")
NUMERIC_FAMILIES = ("integer", "float", "decimal")
TEMPORAL_FAMILIES = ("date", "time")
_FAMILY = {**{name: "integer" for name in INT_RANGES},
           "Float32": "float", "Float64": "float", "BFloat16": "float",
           "Decimal": "decimal", "Decimal32": "decimal", "Decimal64": "decimal", "Decimal128": "decimal",
           "Decimal256": "decimal",
           "String": "string", "FixedString": "string",
           "DateTime": "time", "DateTime32": "time", "DateTime64": "time", "Date": "date", "Date32": "date",
           "Bool": "bool", "UUID": "uuid", "IPv4": "ip", "IPv6": "ip",
           "Enum": "enum", "Enum8": "enum", "Enum16": "enum",
           "Array": "array", "Map": "map", "Tuple": "tuple", "JSON": "json", "Object": "json"}


def family_of(base: str) -> str:
    """The family of a base type name (no wrappers, no arguments): one of :data:`FAMILIES`."""
    return _FAMILY.get(base, "other")


# ---- reading any type ClickHouse reports ----------------------------------------------------------


def split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments of a type, e.g. ``Decimal(12, 2)`` → ``['12', '2']``."""
    out: list[str] = []
    current: list[str] = []
    depth, quote = 0, False
    for ch in text:
        if ch == "'" and (not current or current[-1] != "\\"):
            quote = not quote
        if not quote:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 0:
                out.append("".join(current).strip())
                current = []
                continue
        current.append(ch)
    if current or out:
        out.append("".join(current).strip())
    return out


def unwrap(type_name: str) -> tuple[str, list[str]]:
    """``Nullable(Int32)`` → ``('Nullable', ['Int32'])``; ``String`` → ``('String', [])``."""
    type_name = type_name.strip()
    if "(" not in type_name or not type_name.endswith(")"):
        return type_name, []
    head, rest = type_name.split("(", 1)
    return head.strip(), split_args(rest[:-1])


@dataclass(frozen=True)
class ChType:
    """A type as ClickHouse spells it, read once."""

    text: str                  # the whole type, e.g. ``LowCardinality(Nullable(String))``
    inner: str                 # the type under Nullable / LowCardinality, e.g. ``Decimal(18, 2)``
    base: str                  # the inner type's name, e.g. ``Decimal``
    args: tuple[str, ...]      # the inner type's arguments as text, e.g. ``('18', '2')``
    nullable: bool
    low_cardinality: bool

    @property
    def family(self) -> str:
        return family_of(self.base)

    @property
    def numeric(self) -> bool:
        return self.family in NUMERIC_FAMILIES

    @property
    def temporal(self) -> bool:
        """A date or a time (``Date``, ``Date32``, ``DateTime``, ``DateTime64``)."""
        return self.family in TEMPORAL_FAMILIES

    @property
    def element(self) -> ChType | None:
        """An Array's element type (None for other types)."""
        return describe(self.args[0]) if self.base == "Array" and self.args else None


@lru_cache(maxsize=4096)
def describe(text: str) -> ChType:
    """Read a type ClickHouse reports; never raises (an unreadable name is family ``other``)."""
    inner, nullable, low_cardinality = text.strip(), False, False
    head, args = unwrap(inner)
    while head in ("Nullable", "LowCardinality") and len(args) == 1:
        nullable = nullable or head == "Nullable"
        low_cardinality = low_cardinality or head == "LowCardinality"
        inner = args[0]
        head, args = unwrap(inner)
    return ChType(text, inner, head, tuple(args), nullable, low_cardinality)


def base_type(text: str) -> str:
    """A type without its Nullable/LowCardinality wrappers, in any order (``LowCardinality(Nullable(X))`` → X)."""
    return describe(text).inner


def base_name(text: str) -> str:
    """The name of the type under its wrappers: ``Nullable(Decimal(9, 2))`` → ``Decimal``."""
    return describe(text).base


def is_nullable(text: str) -> bool:
    """``Nullable(X)`` or ``LowCardinality(Nullable(X))``."""
    return describe(text).nullable


def family(text: str) -> str:
    return describe(text).family


def is_numeric(text: str) -> bool:
    return describe(text).numeric


def is_temporal(text: str) -> bool:
    return describe(text).temporal


# ---- the strict grammar for types a user chooses --------------------------------------------------


@dataclass(frozen=True)
class TypeNode:
    """A parsed type: ``name`` plus arguments (nested types, ints or the 'UTC' time zone)."""

    name: str
    args: tuple[Any, ...] = ()

    def render(self) -> str:
        if self.name == "DateTime64":
            return f"DateTime64({self.args[0]}, 'UTC')"
        if self.name == "DateTime" and self.args:
            return "DateTime('UTC')"
        if not self.args:
            return self.name
        return f"{self.name}({', '.join(a.render() if isinstance(a, TypeNode) else str(a) for a in self.args)})"

    @property
    def nullable(self) -> bool:
        return self.name == "Nullable" or (self.name == "LowCardinality" and self.args[0].name == "Nullable")

    @property
    def low_cardinality(self) -> bool:
        return self.name == "LowCardinality"

    @property
    def family(self) -> str:
        return family_of(self.base().name)

    def base(self) -> TypeNode:
        """The type under any Nullable / LowCardinality wrapper."""
        node = self
        while node.name in ("Nullable", "LowCardinality"):
            node = node.args[0]
        return node


_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z][A-Za-z0-9]*)|(?P<int>\d+)|(?P<tz>'UTC')|(?P<punct>[(),]))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValidationError(f"The type {text!r} has an unexpected character at position {pos + 1}.",
                                  "Pick a type from the list.", problems=[f"Unknown type {text!r}."])
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


MAX_TYPE_DEPTH = 16   # nesting levels a type may have (Array(Array(…))); deeper is refused, not a RecursionError


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def fail(self, why: str) -> ValidationError:
        msg = f"The type {self.text!r} is not valid: {why}."
        return ValidationError(msg, "Pick a type from the list.", problems=[msg])

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            want = value or kind
            raise self.fail(f"expected {want!r}" + (f" but found {tok[1]!r}" if tok else " at the end"))
        self.i += 1
        return tok[1]

    def number(self, low: int, high: int, what: str) -> int:
        n = int(self.take("int"))
        if not low <= n <= high:
            raise self.fail(f"{what} must be between {low} and {high}")
        return n

    def parse(self) -> TypeNode:
        node = self.type_()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r} after the type")  # type: ignore[index]
        return node

    def type_(self) -> TypeNode:
        self.depth += 1
        if self.depth > MAX_TYPE_DEPTH:
            raise ValidationError(f"The type {self.text[:60]!r}… nests more than {MAX_TYPE_DEPTH} levels deep.",
                                  "Use a flatter type (for example JSON or a String of JSON text).",
                                  problems=[f"A type nests more than {MAX_TYPE_DEPTH} levels deep."])
        node = self._type()
        self.depth -= 1
        return node

    def _type(self) -> TypeNode:
        name = self.take("name")
        if name in SCALAR_TYPES:
            if name == "DateTime" and self.peek() == ("punct", "("):
                self.take("punct", "(")
                self.take("tz")
                self.take("punct", ")")
                return TypeNode("DateTime", ("'UTC'",))
            return TypeNode(name)
        if name not in PARAMETRIC + WRAPPERS:
            raise self.fail(f"{name!r} is not a type Helios offers")
        self.take("punct", "(")
        if name == "Decimal":
            p = self.number(1, 76, "the precision")
            self.take("punct", ",")
            s = self.number(0, p, "the scale")
            node = TypeNode("Decimal", (p, s))
        elif name == "FixedString":
            node = TypeNode("FixedString", (self.number(1, 65535, "the length"),))
        elif name == "DateTime64":
            p = self.number(0, 9, "the precision")
            if self.peek() == ("punct", ","):
                self.take("punct", ",")
                self.take("tz")
            node = TypeNode("DateTime64", (p,))
        elif name == "Map":
            key = self.take("name")
            if key != "String":
                raise self.fail("Map keys must be String")
            self.take("punct", ",")
            node = TypeNode("Map", (TypeNode("String"), self.type_()))
        else:
            inner = self.type_()
            if name == "Nullable" and inner.name in ("Nullable", "Array", "Map", "LowCardinality", "JSON"):
                raise self.fail(f"{inner.name} cannot be inside Nullable")
            if name == "LowCardinality" and inner.base().name not in ("String", "FixedString") + INTEGER_TYPES + (
                    "Date", "Date32", "DateTime"):
                raise self.fail("LowCardinality suits String and small number or date types")
            node = TypeNode(name, (inner,))
        self.take("punct", ")")
        return node


def parse_type(text: str) -> TypeNode:
    """A type the user chose, checked against Helios's catalogue (raises ValidationError for the user)."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("A column has no type.", "Pick a type from the list.", problems=["A column has no type."])
    return _Parser(text.strip()).parse()


def normalize_type(text: str) -> str:
    """The canonical spelling of a catalogue type (raises ValidationError if it is not one)."""
    return parse_type(text).render()
