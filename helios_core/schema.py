"""Schema model shared by inference, the wizard, DDL generation and the ingester.

A :class:`ColumnSpec` says where a column's value comes from in each event
(``json_path``), its ClickHouse type, and the validation rules the ingester
enforces. Inference (``infer_schema``) lives in this module too; DDL generation
and the type catalogue live in :mod:`helios_core.ddl`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from helios_core.chtypes import INT_RANGES, family, is_nullable

# Virtual columns filled from Kinesis record metadata rather than the payload (as ClickPipes offers).
VIRTUAL_SOURCES = {
    "_arrival_time": "DateTime64(3, 'UTC')",
    "_partition_key": "String",
    "_shard_id": "LowCardinality(String)",
    "_sequence_number": "String",
    "_raw_message": "String",
}
# A column's format: an extra check beyond the type, or (json) a declaration: a String column of JSON text,
# where objects and arrays are kept as their JSON text (otherwise they are bad events, not silently text).
FORMATS = ("", "uuid", "iso_time", "email", "ip", "json")
TIME_UNITS = ("", "s", "ms", "us", "ns")   # a time column's unit for epoch numbers ('' = by magnitude)


@dataclass
class ColumnSpec:
    name: str
    type: str
    json_path: str = ""           # dotted path into the event, e.g. "device.os"; "" for virtual columns
    required: bool = False        # missing or null → quarantined; the switch for Nullable columns (see rejects_missing)
    allowed_values: list[str] = field(default_factory=list)  # enum-like columns; empty = any
    default: str | None = None    # a literal value used when the field is missing (not an SQL expression)
    format: str = ""              # one of FORMATS: extra check beyond the type
    virtual: str = ""             # one of VIRTUAL_SOURCES when filled from record metadata
    present_in_all: bool = True   # inference: seen in every sampled event
    reason: str = ""              # inference: why this type was chosen
    time_unit: str = ""           # one of TIME_UNITS: the unit of epoch numbers in a time column (inference sets
                                  # it; '' decides by magnitude, see helios_core.timeparse)
    examples: list[str] = field(default_factory=list)  # inference: a few values seen, for display

    @property
    def nullable(self) -> bool:
        return is_nullable_type(self.type)

    @property
    def json_text(self) -> bool:
        """Declared String-of-JSON: objects and arrays are kept as their JSON text."""
        return self.format == "json"

    @property
    def rejects_missing(self) -> bool:
        """A missing or null value makes the event bad: the column is required, or it is not Nullable and
        has no default (its type's zero value — 0, '', 1970-01-01 — is never made up)."""
        return not self.virtual and (self.required or (not self.nullable and self.default in (None, "")))

    def missing_reason(self) -> str:
        """Why an event without this column's value is bad, for the quarantine."""
        path = self.json_path or self.name
        why = ("the column is required" if self.required
               else f"the column {self.name} ({self.type}) is not Nullable and has no default")
        return f"missing field {path}: it is absent or null, and {why}."

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "json_path" not in known and "virtual" not in known:
            known["json_path"] = data.get("path", data.get("name", ""))
        return cls(**known)


def is_nullable_type(type_text: str) -> bool:
    """``Nullable(X)`` or ``LowCardinality(Nullable(X))``."""
    return is_nullable(type_text)


@dataclass
class InferredSchema:
    columns: list[ColumnSpec]
    order_by: list[str] = field(default_factory=list)       # suggested sorting key
    partition_by: str = ""                                   # suggested partition expression
    time_column: str | None = None
    conflicts: list[str] = field(default_factory=list)       # type conflicts that were widened
    sample_size: int = 0
    notes: list[str] = field(default_factory=list)           # why the sorting key / partition were chosen

    def to_api(self) -> list[dict[str, str]]:
        """The seed's ``inferredSchema``: ``[{name, type}]``."""
        return [{"name": c.name, "type": c.type} for c in self.columns]

    def to_json(self) -> dict[str, Any]:
        return {"inferredSchema": [c.to_json() for c in self.columns], "orderBy": self.order_by,
                "partitionBy": self.partition_by, "timeColumn": self.time_column,
                "conflicts": self.conflicts, "sampleSize": self.sample_size, "notes": self.notes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InferredSchema:
        return cls(columns=[ColumnSpec.from_json(c) for c in data.get("inferredSchema", data.get("columns", []))],
                   order_by=list(data.get("orderBy", [])), partition_by=data.get("partitionBy", ""),
                   time_column=data.get("timeColumn"), conflicts=list(data.get("conflicts", [])),
                   sample_size=int(data.get("sampleSize", 0)), notes=list(data.get("notes", [])))


# ================================================================ inference
#
# One pass over the events builds a tree of per-path statistics (kinds seen,
# number ranges, distinct strings up to a cap, which string formats still fit);
# types are decided from those statistics at the end. String formats are tested
# once per distinct value and dropped after a few misses, so free text costs
# almost nothing and 10k events of ~20 fields take well under a second.

import ipaddress  # noqa: E402  (kept next to the code that uses it)
import re  # noqa: E402
from collections.abc import Iterable  # noqa: E402

from helios_core.identifiers import sanitize_name  # noqa: E402
from helios_core.timeparse import ISO_DATE, ISO_DATETIME, is_iso, parse_iso  # noqa: E402

MAX_DISTINCT = 10_000          # distinct strings tracked per column (LowCardinality stays below this)
MAX_MISSES = 3                 # distinct values that may miss a format before it is ruled out …
OBSERVE_OUTLIER_SHARE = 0.05   # … unless they are at most this share of the distinct values seen
OUTLIER_MIN_EVENTS = 50        # outliers are only called outliers with this much evidence
WIDE_OBJECT_KEYS = 40          # objects with more keys are kept as one JSON column
DAILY_PARTITION_RATE = 1000.0  # events per second above which daily partitions beat monthly ones

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")
_DATETIME, _DATE = ISO_DATETIME, ISO_DATE   # the one time parser's forms (helios_core.timeparse)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_TIME_NAME = re.compile(r"(^|_)(time|timestamp|ts|date|datetime|at|epoch|created|updated|modified|occurred|"
                        r"received|sent|seen|started|ended|expires|expiry|when)(_|$)|(time|stamp|date)$")
_COUNT_NAME = re.compile(r"(^|_)(id|count|cnt|num|number|qty|quantity|size|bytes|length|len|duration|ms|millis|"
                         r"seconds|secs|total|width|height|port|age|views|clicks|hits|retries|attempts|seq|"
                         r"sequence|offset|index|idx|rank|position|items|version|status|code|level|pages)$")
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|hash|token)$")
_BOUNDED = (  # name pattern, (low, high) the values must stay within, type, what
    (re.compile(r"(^|_)age$"), (0, 150), "UInt8", "an age"),
    (re.compile(r"(^|_)(hour|minute|second|month|day|weekday|dow|quarter|percent|pct)$"), (0, 100), "UInt8",
     "a clock/calendar part or percentage"),
    (re.compile(r"(^|_)(status|status_code|http_status|code)$"), (100, 599), "UInt16", "an HTTP status"),
    (re.compile(r"(^|_)port$"), (0, 65535), "UInt16", "a network port"),
)
_MONEY_NAME = re.compile(r"(^|_)(amount|price|cost|total|revenue|fee|tax|discount|balance|subtotal)$")
_EPOCH_RANGES = (("s", 946_684_800, 4_102_444_800, 0), ("ms", 946_684_800_000, 4_102_444_800_000, 3),
                 ("us", 946_684_800_000_000, 4_102_444_800_000_000, 6),
                 ("ns", 946_684_800_000_000_000, 4_102_444_800_000_000_000, 9))
F_UUID, F_IP, F_DATETIME, F_DATE, F_EMAIL = 1, 2, 4, 8, 16
_ALL_FORMATS = F_UUID | F_IP | F_DATETIME | F_DATE | F_EMAIL
_FORMAT_WORDS = {F_UUID: "UUIDs", F_IP: "IP addresses", F_DATETIME: "ISO-8601 times", F_DATE: "dates",
                 F_EMAIL: "email addresses"}


class _Node:
    """Statistics for one JSON path (or for the elements of an array)."""

    __slots__ = ("path", "present", "nulls", "bools", "ints", "floats", "strs", "objs", "arrs", "others",
                 "imin", "imax", "fmin", "fmax", "seen", "overflow", "formats", "misses", "miss_example",
                 "classified", "frac", "naive", "v6", "year_min", "year_max", "len_total", "children", "elem",
                 "empty_arrays", "firsts")

    def __init__(self, path: tuple[str, ...]) -> None:
        self.path = path
        self.present = self.nulls = self.bools = self.ints = self.floats = self.strs = 0
        self.objs = self.arrs = self.others = self.classified = self.len_total = self.empty_arrays = 0
        self.imin: int | None = None
        self.imax: int | None = None
        self.fmin: float | None = None
        self.fmax: float | None = None
        self.seen: set[str] = set()
        self.overflow = False
        self.formats = _ALL_FORMATS
        self.misses: dict[int, int] = {}
        self.miss_example: dict[int, str] = {}
        self.frac = 0
        self.naive = False
        self.v6 = False
        self.year_min = 9999
        self.year_max = 0
        self.children: dict[str, _Node] | None = None
        self.elem: _Node | None = None
        self.firsts: dict[str, Any] = {}   # first value of each kind, for conflict messages


def _observe_object(node: _Node, obj: dict) -> None:
    children = node.children
    if children is None:
        children = node.children = {}
    for key, value in obj.items():
        child = children.get(key)
        if child is None:
            child = children[key] = _Node(node.path + (str(key),))
        _observe(child, value)


def _observe(node: _Node, v: Any) -> None:
    node.present += 1
    t = type(v)
    if t is str:
        node.strs += 1
        seen = node.seen
        if v not in seen:
            if len(seen) < MAX_DISTINCT:
                seen.add(v)
                node.len_total += len(v)
            else:
                node.overflow = True
            if node.formats:
                _classify(node, v)
        if node.strs == 1:
            node.firsts["string"] = v
    elif t is int:
        node.ints += 1
        if node.ints == 1:
            node.imin = node.imax = v
            node.firsts["number"] = v
        elif v < node.imin:
            node.imin = v
        elif v > node.imax:
            node.imax = v
    elif t is float:
        node.floats += 1
        if node.floats == 1:
            node.fmin = node.fmax = v
            node.firsts.setdefault("number", v)
        elif v < node.fmin:
            node.fmin = v
        elif v > node.fmax:
            node.fmax = v
    elif v is None:
        node.nulls += 1
    elif t is bool:
        node.bools += 1
        node.firsts.setdefault("boolean", v)
    elif t is dict:
        node.objs += 1
        node.firsts.setdefault("object", v)
        _observe_object(node, v)
    elif t is list:
        node.arrs += 1
        node.firsts.setdefault("array", v)
        if not v:
            node.empty_arrays += 1
        elem = node.elem
        if elem is None:
            elem = node.elem = _Node(node.path)
        for item in v:
            _observe(elem, item)
    else:  # not from JSON (datetime, Decimal, …): judge it by its text
        node.present -= 1
        _observe(node, v.isoformat() if hasattr(v, "isoformat") else str(v))


def _miss(node: _Node, flag: int, value: str, formats: int) -> int:
    count = node.misses.get(flag, 0) + 1
    node.misses[flag] = count
    if count == 1:
        node.miss_example[flag] = value
    # Rule a format out after a few misses, unless they stay a small share (outliers in a big sample);
    # infer_schema's outlier_ratio makes the final call.
    if count > MAX_MISSES and count > OBSERVE_OUTLIER_SHARE * node.classified:
        return formats & ~flag
    return formats


def _classify(node: _Node, v: str) -> None:
    """Test one new distinct string against the formats still possible."""
    f = node.formats
    n = len(v)
    node.classified += 1
    if f & F_UUID and not (n == 36 and _UUID.fullmatch(v)):
        f = _miss(node, F_UUID, v, f)
    if f & F_IP:
        if n <= 15 and _IPV4.fullmatch(v):
            pass
        elif ":" in v and _is_ipv6(v):
            node.v6 = True
        else:
            f = _miss(node, F_IP, v, f)
    if f & F_DATETIME:
        m = _DATETIME.fullmatch(v) if 16 <= n <= 40 else None
        if m is not None and is_iso(v):
            frac = m.group(7)
            if frac and len(frac) > node.frac:
                node.frac = len(frac)
            if not m.group(8):
                node.naive = True
            year = int(m.group(1))
            node.year_min = min(node.year_min, year)
            node.year_max = max(node.year_max, year)
        else:
            f = _miss(node, F_DATETIME, v, f)
    if f & F_DATE:
        m = _DATE.fullmatch(v) if n == 10 else None
        if m is not None and is_iso(v):
            year = int(m.group(1))
            node.year_min = min(node.year_min, year)
            node.year_max = max(node.year_max, year)
        else:
            f = _miss(node, F_DATE, v, f)
    if f & F_EMAIL and not _EMAIL.fullmatch(v):
        f = _miss(node, F_EMAIL, v, f)
    node.formats = f


def _is_ipv6(v: str) -> bool:
    try:
        ipaddress.IPv6Address(v.split("%", 1)[0])
        return True
    except ValueError:
        return False


def _words(path: tuple[str, ...]) -> str:
    """The last key as snake_case words, for name-based hints (createdAt → created_at)."""
    key = path[-1] if path else ""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower().replace("-", "_")


def _epoch_unit(low: float, high: float) -> tuple[str, int] | None:
    for unit, lo, hi, precision in _EPOCH_RANGES:
        if lo <= low and high <= hi:
            return unit, precision
    return None


def _precision(digits: int) -> int:
    return 0 if digits == 0 else 3 if digits <= 3 else 6 if digits <= 6 else 9


@dataclass
class _Choice:
    type: str
    reason: str
    format: str = ""
    time_unit: str = ""
    low_cardinality: bool = False
    distinct: int | None = None
    can_be_nullable: bool = True
    examples: list[str] = field(default_factory=list)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _kinds(node: _Node) -> dict[str, int]:
    kinds = {"boolean": node.bools, "number": node.ints + node.floats, "string": node.strs, "object": node.objs,
             "array": node.arrs}
    return {k: c for k, c in kinds.items() if c}


class _Inferrer:
    def __init__(self, total: int, outlier_ratio: float, decimal: bool,
                 min_evidence: int = OUTLIER_MIN_EVENTS) -> None:
        self.total = total
        self.outlier_ratio = outlier_ratio
        self.min_evidence = min_evidence
        self.decimal = decimal
        self.conflicts: list[str] = []
        self.columns: list[ColumnSpec] = []
        self.distinct: dict[str, int | None] = {}
        self.names: set[str] = set()
        self.time_spans: dict[str, tuple[float, float]] = {}

    def outliers_ok(self, minority: int, base: int) -> bool:
        return base >= self.min_evidence and 0 < minority <= self.outlier_ratio * base

    def name_for(self, path: tuple[str, ...]) -> str:
        base = sanitize_name("_".join(path))
        name, i = base, 2
        while name.lower() in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name.lower())
        return name

    # ---- one column per leaf, recursing into objects ----
    def visit(self, node: _Node) -> None:
        label = ".".join(node.path)
        kinds = _kinds(node)
        if set(kinds) == {"object"} or (kinds.get("object") and self._dominant(node, kinds, label) == "object"):
            reason = self._json_reason(node)
            if reason is None:
                for child in (node.children or {}).values():
                    self.visit(child)
                return
            self.add(node, _Choice("JSON", reason, can_be_nullable=False))
            return
        self.add(node, self.choose(node, label))

    def _json_reason(self, node: _Node) -> str | None:
        """Why an object is kept as one JSON column, or None to flatten it."""
        children = node.children or {}
        if not children:
            return "only empty objects seen: kept as JSON"
        keys = list(children)
        if len(keys) > WIDE_OBJECT_KEYS:
            return f"wide object ({len(keys)} different keys): kept as JSON rather than {len(keys)} columns"
        data_like = sum(1 for k in keys if k.isdigit() or _UUID.fullmatch(k) or _DATE.match(k))
        if len(keys) >= 3 and data_like * 2 > len(keys):
            return "its keys are data (ids, numbers, dates), not field names: kept as JSON"
        if len(keys) >= 10:
            presence = sum(c.present for c in children.values()) / (len(keys) * max(node.objs, 1))
            if presence < 0.5:
                return (f"irregular object ({len(keys)} keys, each in {presence:.0%} of objects on average): "
                        "kept as JSON")
        return None

    def _dominant(self, node: _Node, kinds: dict[str, int], label: str) -> str | None:
        """With several kinds of value: the kind kept (outliers are reported), or None to widen."""
        base = sum(kinds.values())
        kind, count = max(kinds.items(), key=lambda kv: kv[1])
        minority = base - count
        if len(kinds) > 1 and self.outliers_ok(minority, base):
            others = ", ".join(f"{c} {k}{'s' if c > 1 else ''} (e.g. {_short(node.firsts.get(k))})"
                               for k, c in kinds.items() if k != kind)
            self.conflicts.append(f"{label}: {others} among {count} {kind} values; kept {kind}s "
                                  "(those events will be quarantined)")
            return kind
        return None

    def choose(self, node: _Node, label: str) -> _Choice:
        kinds = _kinds(node)
        if not kinds:
            return _Choice("String", "only nulls seen: String until real values arrive")
        if len(kinds) > 1:
            kept = self._dominant(node, kinds, label)
            if kept is None:
                described = " and ".join(f"{c} {k}{'s' if c > 1 else ''}" for k, c in kinds.items())
                examples = ", ".join(_short(node.firsts.get(k)) for k in kinds)
                self.conflicts.append(f"{label}: {described} ({examples}) → String")
                structured = bool({"object", "array"} & set(kinds))
                return _Choice("String", f"mixed {', '.join(kinds)} values: widened to String"
                               + (" (objects/arrays stored as JSON text: format json)" if structured else ""),
                               "json" if structured else "")
            kinds = {kept: kinds[kept]}
        kind = next(iter(kinds))
        if kind == "boolean":
            return _Choice("Bool", "true/false values", examples=["true", "false"][: 1 + (node.bools > 1)])
        if kind == "number":
            return self._number(node, label)
        if kind == "string":
            return self._string(node, label)
        if kind == "array":
            return self._array(node, label)
        return _Choice("JSON", "objects", can_be_nullable=False)

    def _number(self, node: _Node, label: str) -> _Choice:
        words = _words(node.path)
        timeish = bool(_TIME_NAME.search(words))
        lows = [x for x in (node.imin, node.fmin) if x is not None]
        highs = [x for x in (node.imax, node.fmax) if x is not None]
        low, high = min(lows), max(highs)
        examples = [str(low), str(high)] if low != high else [str(low)]
        epoch = _epoch_unit(low, high)
        if epoch and (timeish or epoch[0] != "s"):
            unit, precision = epoch
            if node.floats and unit == "s":
                precision = 3
            why = "the name says time and " if timeish else ""
            self.time_spans[label] = (low / 10 ** precision if unit != "s" else low,
                                      high / 10 ** precision if unit != "s" else high)
            words_unit = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}[unit]
            years = sorted({_year(low, unit), _year(high, unit)})
            span = f"year {years[0]}" if len(years) == 1 else f"years {years[0]}–{years[1]}"
            return _Choice(f"DateTime64({precision}, 'UTC')", f"{why}values are epoch {words_unit} ({span})",
                           time_unit=unit, examples=examples)
        if node.floats:
            if node.ints:
                self.conflicts.append(f"{label}: whole and decimal numbers ({node.ints} and {node.floats}) → Float64")
            if self.decimal and _MONEY_NAME.search(words):
                return _Choice("Decimal(18, 4)", "money amounts kept exact as asked (4 decimal places)",
                               examples=examples)
            return _Choice("Float64", "decimal numbers" + (" mixed with whole numbers" if node.ints else ""),
                           examples=examples)
        if high > INT_RANGES["UInt64"][1] or low < INT_RANGES["Int64"][0]:
            return _Choice("String", "whole numbers beyond 64 bits: kept as text", examples=examples)
        if low >= 0:
            for pattern, (lo, hi), ch_type, what in _BOUNDED:
                if pattern.search(words) and lo <= low and high <= hi:
                    return _Choice(ch_type, f"clearly bounded: {what} ({low}–{high})", examples=examples)
            if high > INT_RANGES["Int64"][1]:
                return _Choice("UInt64", "whole numbers beyond Int64", examples=examples)
            if _COUNT_NAME.search(words):
                return _Choice("UInt64", f"non-negative whole numbers ({low}–{high}); an id/count by name",
                               examples=examples)
            return _Choice("Int64", f"whole numbers ({low}–{high}); signed as the name does not rule out negatives",
                           examples=examples)
        return _Choice("Int64", f"whole numbers ({low}–{high})", examples=examples)

    def _format_holds(self, node: _Node, flag: int, label: str) -> bool:
        if not node.formats & flag:
            return False
        misses = node.misses.get(flag, 0)
        if node.classified - misses <= 0:
            return False
        if misses == 0:
            return True
        if self.outliers_ok(misses, node.strs):
            self.conflicts.append(f"{label}: {misses} value{'s' if misses > 1 else ''} such as "
                                  f"{_short(node.miss_example[flag])} among {node.strs} {_FORMAT_WORDS[flag]}; "
                                  "kept the type (those events will be quarantined)")
            return True
        return False

    def _string(self, node: _Node, label: str) -> _Choice:
        distinct = None if node.overflow else len(node.seen)
        examples = [str(v) for v in list(node.seen)[:3]]
        count = (f"{_plural(node.strs, 'value')}, "
                 f"{distinct if distinct is not None else f'over {MAX_DISTINCT:,}'} distinct")
        if self._format_holds(node, F_UUID, label):
            return _Choice("UUID", f"UUID strings ({count})", "uuid", distinct=distinct, examples=examples)
        if self._format_holds(node, F_IP, label):
            if node.v6:
                return _Choice("IPv6", "IP addresses including IPv6 (IPv4 ones are stored mapped)", "ip",
                               distinct=distinct, examples=examples)
            return _Choice("IPv4", "IPv4 addresses", "ip", distinct=distinct, examples=examples)
        if self._format_holds(node, F_DATETIME, label):
            precision = _precision(node.frac)
            detail = f"{node.frac} fractional digits → precision {precision}" if node.frac else "whole seconds"
            zone = "; no time zone in the data: read as UTC" if node.naive else ""
            self._iso_span(node, label)
            return _Choice(f"DateTime64({precision}, 'UTC')", f"ISO-8601 times ({detail}){zone}", "iso_time",
                           distinct=distinct, examples=examples)
        if self._format_holds(node, F_DATE, label):
            if node.year_min < 1970 or node.year_max > 2149:
                return _Choice("Date32", f"dates from {node.year_min} to {node.year_max}, outside Date's 1970–2149",
                               distinct=distinct, examples=examples)
            return _Choice("Date", "calendar dates (YYYY-MM-DD)", distinct=distinct, examples=examples)
        fmt = "email" if self._format_holds(node, F_EMAIL, label) else ""
        avg_len = node.len_total / max(len(node.seen), 1)
        words = _words(node.path)
        if distinct is not None and not fmt and avg_len <= 64 and not _ID_NAME.search(words) and (
                (distinct <= 256 and distinct * 2 <= node.strs) or distinct <= node.strs * 0.05):
            return _Choice("LowCardinality(String)", f"repeated values: {count}", distinct=distinct,
                           low_cardinality=True, examples=examples)
        if fmt:
            return _Choice("String", f"email addresses ({count})", fmt, distinct=distinct, examples=examples)
        why = ("an identifier" if _ID_NAME.search(words) else "long text" if avg_len > 64
               else "values rarely repeat" if distinct is None or distinct * 2 > node.strs
               else "too many distinct values for LowCardinality")
        return _Choice("String", f"text, {why} ({count})", distinct=distinct, examples=examples)

    def _iso_span(self, node: _Node, label: str) -> None:
        if not node.seen:
            return
        valid = [v for v in node.seen if _DATETIME.fullmatch(v)]
        try:
            first = _parse_iso(min(valid))
            last = _parse_iso(max(valid))
        except ValueError:  # mixed offsets or formats: no rate estimate
            return
        self.time_spans[label] = (first, last)

    def _array(self, node: _Node, label: str) -> _Choice:
        elem = node.elem
        lengths = f"{node.arrs} arrays, {node.empty_arrays} empty" if node.empty_arrays else f"{node.arrs} arrays"
        if elem is None or not _kinds(elem):
            return _Choice("Array(String)", f"only empty arrays seen ({lengths}): Array(String) until values arrive",
                           can_be_nullable=False)
        kinds = _kinds(elem)
        if "object" in kinds and (len(kinds) == 1 or self._dominant(elem, kinds, label + "[]") == "object"):
            return _Choice("Array(JSON)", f"arrays of objects ({lengths}): kept as Array(JSON)",
                           can_be_nullable=False)
        inner = self.choose(elem, label + "[]")
        inner_type = inner.type
        if elem.nulls and not inner.low_cardinality and inner.can_be_nullable and not inner_type.startswith("Array"):
            inner_type = f"Nullable({inner_type})"
        elif elem.nulls and inner.low_cardinality:
            inner_type = "LowCardinality(Nullable(String))"
        return _Choice(f"Array({inner_type})", f"arrays ({lengths}) of {inner.reason}", inner.format,
                       inner.time_unit, can_be_nullable=False, examples=[_short(node.firsts.get("array"))])

    # ---- nullability and the column itself ----
    def add(self, node: _Node, choice: _Choice) -> None:
        label = ".".join(node.path)
        missing = self.total - node.present
        absent = missing + node.nulls
        type_, reason, required, default = choice.type, choice.reason, True, None
        if absent:
            parts = []
            if missing:
                parts.append(f"missing in {missing}")
            if node.nulls:
                parts.append(f"null in {node.nulls}")
            seen_absent = " and ".join(parts) + f" of {self.total} events"
            if self.outliers_ok(absent, self.total) and node.present > node.nulls:
                self.conflicts.append(f"{label}: {seen_absent}; kept required (those events will be quarantined)")
                reason += f"; {seen_absent}: treated as required"
            elif not choice.can_be_nullable:  # Array/JSON cannot be Nullable: an explicit empty default instead
                required = False
                default = "[]" if type_.startswith("Array") else "{}"
                reason += f"; {seen_absent} (default {default}: {'empty array' if default == '[]' else 'empty'} then)"
            else:
                required = False
                type_ = "LowCardinality(Nullable(String))" if choice.low_cardinality else f"Nullable({type_})"
                reason += f"; Nullable: {seen_absent}"
        name = self.name_for(node.path)
        self.distinct[name] = choice.distinct
        if label in self.time_spans:
            self.time_spans[name] = self.time_spans.pop(label)
        self.columns.append(ColumnSpec(name=name, type=type_, json_path=label, required=required,
                                       default=default, format=choice.format, present_in_all=missing == 0,
                                       reason=reason, time_unit=choice.time_unit, examples=choice.examples[:3]))


def _year(value: float, unit: str) -> int:
    scale = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]
    return 1970 + int(value / scale // 31_556_952)


def _parse_iso(text: str) -> float:
    return parse_iso(text).timestamp()


PREFERRED_TIME = ("event_time", "timestamp", "time", "ts", "event_timestamp", "occurred_at", "created_at",
                   "received_at", "datetime", "date")


def _pick_time(columns: list[ColumnSpec]) -> ColumnSpec | None:
    candidates = [c for c in columns if c.type.startswith("DateTime64")]  # unwrapped: never Nullable
    if not candidates:
        return None

    def score(c: ColumnSpec) -> tuple:
        words = c.name.lower()
        preferred = PREFERRED_TIME.index(words) if words in PREFERRED_TIME else len(PREFERRED_TIME)
        return (c.type.startswith("Nullable"), "." in c.json_path, preferred, columns.index(c))

    return min(candidates, key=score)


def _sorting_key(inf: _Inferrer, time_col: ColumnSpec | None) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    dims = []
    for c in inf.columns:
        distinct = inf.distinct.get(c.name)
        if is_nullable(c.type) or distinct is None or distinct < 2:
            continue
        if c.type == "LowCardinality(String)" or (c.type in ("UUID", "String", "Int64", "UInt64")
                                                    and distinct <= 50 and distinct * 10 <= inf.total):
            dims.append((distinct, c.name))
    dims.sort()
    order = [name for _, name in dims[:2]]
    if order:
        notes.append(f"Sorting key starts with the lowest-cardinality dimensions ({', '.join(order)}): "
                     "queries filtering on them read less.")
    if time_col is not None:
        order.append(time_col.name)
        notes.append(f"{time_col.name} ends the sorting key so time ranges within each group are contiguous.")
    if not order:
        keyable = [c for c in inf.columns if not is_nullable(c.type) and family(c.type) not in ("array", "json", "map")]
        fallback = next((c for c in keyable if family(c.type) != "float"), keyable[0] if keyable else None)
        if fallback is not None:
            order.append(fallback.name)
            notes.append(f"No time or low-cardinality column found: sorting by {fallback.name}.")
    return order, notes


def infer_schema(events: Iterable[dict[str, Any]], outlier_ratio: float = 0.02,
                 decimal: bool = False, min_evidence: int = OUTLIER_MIN_EVENTS) -> InferredSchema:
    """Infer a ClickHouse schema from decoded events (dicts), the way an expert would.

    Columns come in order of first appearance; nested objects are flattened to
    ``parent_child`` names with a dotted ``json_path`` (or kept as one JSON
    column when wide or irregular). ``Nullable`` only where nulls or missing
    keys were seen. With at least 50 events, up to ``outlier_ratio`` of
    values of another kind (or missing) are treated as bad events rather than
    widening the type; every such decision and every widening is listed in
    ``conflicts`` (``min_evidence`` lowers the 50 for data that is complete rather than a sample, such as an
    uploaded file). ``decimal=True`` types money-like decimal fields as
    ``Decimal(18, 4)`` instead of Float64.
    """
    root = _Node(())
    total = 0
    skipped = 0
    for event in events:
        if type(event) is not dict:
            skipped += 1
            continue
        total += 1
        root.present += 1
        _observe_object(root, event)
    inf = _Inferrer(total, outlier_ratio, decimal, min_evidence)
    for child in (root.children or {}).values():
        inf.visit(child)
    time_col = _pick_time(inf.columns)
    order_by, notes = _sorting_key(inf, time_col)
    partition = ""
    if time_col is not None:
        partition, why = _partition(inf, time_col)
        notes.append(why)
    if skipped:
        inf.conflicts.append(f"{skipped} item{'s' if skipped > 1 else ''} that are not JSON objects were ignored")
    if total == 0:
        notes.append("No events to infer from.")
    return InferredSchema(columns=inf.columns, order_by=order_by, partition_by=partition,
                          time_column=time_col.name if time_col else None, conflicts=inf.conflicts,
                          sample_size=total, notes=notes)


def _partition(inf: _Inferrer, time_col: ColumnSpec) -> tuple[str, str]:
    span = inf.time_spans.get(time_col.name)
    rate = None
    if span and span[1] > span[0] and inf.total > 1:
        rate = (inf.total - 1) / (span[1] - span[0])
    if rate is not None and rate > DAILY_PARTITION_RATE:
        return (f"toYYYYMMDD({time_col.name})",
                f"Daily partitions on {time_col.name}: the sample arrives at about {rate:,.0f} events/s, "
                "so a month would be one very large partition.")
    rate_text = f" (the sample arrives at about {rate:,.1f} events/s)" if rate is not None else ""
    return (f"toYYYYMM({time_col.name})",
            f"Monthly partitions on {time_col.name}{rate_text}: few, large partitions merge best; "
            "switch to daily only for very high volumes or day-level TTLs.")


def clickhouse_describe(ch: Any, events: list[dict[str, Any]]) -> list[dict[str, str]]:
    """ClickHouse's own inference, ``DESCRIBE format(JSONEachRow, …)``, for comparison.

    The events travel as a bound parameter, never pasted into the SQL.
    """
    import orjson

    data = "\n".join(orjson.dumps(e).decode() for e in events)
    rows = ch.internal_query("DESCRIBE format(JSONEachRow, {data:String})", {"data": data})
    return [{"name": r["name"], "type": r["type"]} for r in rows]
