"""Column values → Arrow arrays for ``insert_arrow``, checked on the way.

Each column is converted in one C-level call (``pa.array(values, type)``);
only when that fails (a value of the wrong kind somewhere) does a per-value
path run to find and report the bad rows. Types ClickHouse parses well from
text (UUID, IPs, Date, Decimal, JSON) travel as strings after a Python check,
so ClickHouse never rejects a whole batch for one bad value.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from helios_core.chtypes import DATE_BOUNDS, INT_RANGES, INTEGER_TYPES, TypeNode
from helios_core.timeparse import (
    DATETIME64_BOUNDS,
    DATETIME_BOUNDS,
    EPOCH_MS_CUTOFF,
    SCALE,
    TimeError,
    is_iso,
    to_epoch,
)

_INT_ARROW = {"Int8": pa.int8(), "Int16": pa.int16(), "Int32": pa.int32(), "Int64": pa.int64(),
              "UInt8": pa.uint8(), "UInt16": pa.uint16(), "UInt32": pa.uint32(), "UInt64": pa.uint64()}
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Types carried to ClickHouse as text (it parses them) after a Python check.
TEXT_CARRIED = {"UUID", "IPv4", "IPv6", "Date", "Date32", "Decimal", "JSON"}


class BadValue(ValueError):
    """A value that does not fit its column."""


def _unit(node: TypeNode) -> str:
    if node.name == "DateTime":
        return "s"
    precision = node.args[0] if node.args else 3
    return "s" if precision == 0 else "ms" if precision <= 3 else "us" if precision <= 6 else "ns"


def arrow_type(node: TypeNode) -> pa.DataType:
    base = node.base()
    name = base.name
    if name in _INT_ARROW:
        return _INT_ARROW[name]
    if name == "Float32":
        return pa.float32()
    if name == "Float64":
        return pa.float64()
    if name == "Bool":
        return pa.bool_()
    if name in ("DateTime", "DateTime64"):
        return pa.timestamp(_unit(base), tz="UTC")
    if name == "Array":
        return pa.list_(arrow_type(base.args[0]))
    if name == "Map":
        return pa.map_(pa.string(), arrow_type(base.args[1]))
    return pa.string()  # String, FixedString, and the text-carried types


def time_bounds(base: TypeNode) -> tuple[int, int]:
    """The column type's time range, in seconds since the epoch."""
    return DATETIME_BOUNDS if base.name == "DateTime" else DATETIME64_BOUNDS


def parse_time(value: Any, unit: str = "ms", epoch_unit: str = "",
               bounds: tuple[int, int] = DATETIME64_BOUNDS) -> int:
    """A time value as an integer in ``unit`` since the epoch, UTC (:func:`helios_core.timeparse.to_epoch`).

    ``epoch_unit`` is the column's declared unit of epoch numbers ('' = decided by magnitude).
    """
    try:
        return to_epoch(value, unit, epoch_unit, bounds)
    except TimeError as exc:
        raise BadValue(str(exc)) from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    # values from files (Parquet, dumps) rather than JSON events
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return orjson.dumps(value).decode()


def coerce(node: TypeNode, value: Any, json_text: bool = False, epoch_unit: str = "") -> Any:
    """One value converted for ``arrow_type(node)``; raises BadValue when it cannot fit.

    Nothing is guessed: a boolean is not a number, and an object or array is not text unless the column
    is declared String-of-JSON (``json_text``: format ``json``), where it is kept as JSON text.
    """
    if value is None:
        return None
    base = node.base()
    name = base.name
    if name in INTEGER_TYPES:
        if isinstance(value, bool):
            raise BadValue(f"a boolean ({'true' if value else 'false'}) is not a whole number")
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            number = int(value)
        elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
            number = int(value)  # Parquet decimals
        else:
            raise BadValue(f"{_short(value)} is not a whole number")
        low, high = INT_RANGES[name]
        if not low <= number <= high:
            raise BadValue(f"{number} is out of range for {name}")
        return number
    if name in ("Float32", "Float64"):
        if isinstance(value, bool):
            raise BadValue("a boolean is not a number")
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise BadValue(f"{_short(value)} is not a number") from None
    if name == "Bool":
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false", "0", "1"):
            return value.lower() in ("true", "1")
        raise BadValue(f"{_short(value)} is not true/false")
    if name in ("DateTime", "DateTime64"):
        return parse_time(value, _unit(base), epoch_unit, time_bounds(base))
    if name == "Array":
        if not isinstance(value, list):
            raise BadValue(f"{_short(value)} is not a list")
        return [coerce(base.args[0], v, json_text, epoch_unit) for v in value]
    if name == "Map":
        if not isinstance(value, dict):
            raise BadValue(f"{_short(value)} is not an object")
        return [(str(k), coerce(base.args[1], v, json_text, epoch_unit)) for k, v in value.items()]
    if name == "JSON":
        if not isinstance(value, dict):
            raise BadValue(f"{_short(value)} is not a JSON object")
        return orjson.dumps(value).decode()
    if isinstance(value, (dict, list)) and not json_text:
        raise BadValue(f"{_short(value)} is a JSON {'object' if isinstance(value, dict) else 'array'}, not "
                       "text (declare the column's format as json to keep such values as JSON text)")
    text = _text(value)
    check_text(base, text)
    return text


def check_text(base: TypeNode, text: str) -> None:
    name = base.name
    if name == "UUID" and not UUID_RE.match(text):
        raise BadValue(f"{_short(text)} is not a UUID")
    if name in ("IPv4", "IPv6"):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise BadValue(f"{_short(text)} is not an IP address") from None
        if name == "IPv4" and address.version != 4:
            raise BadValue(f"{_short(text)} is not an IPv4 address")
    if name in ("Date", "Date32"):
        if not DATE_RE.match(text):
            raise BadValue(f"{_short(text)} is not a date (YYYY-MM-DD)")
        try:
            parsed = date.fromisoformat(text)
        except ValueError:
            raise BadValue(f"{_short(text)} is not a date") from None
        low, high = DATE_BOUNDS[name]
        if not low <= parsed <= high:
            raise BadValue(f"{text} is outside the range of {name}")
    if name == "Decimal":
        precision, scale = base.args
        if not re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", text):
            raise BadValue(f"{_short(text)} is not a decimal number")
        whole = text.strip().lstrip("-").split(".")[0].lstrip("0")
        if len(whole) > precision - scale:
            raise BadValue(f"{text} has too many digits for Decimal({precision}, {scale})")
        fraction = text.strip().partition(".")[2].rstrip("0")
        if len(fraction) > scale:  # ClickHouse would cut the extra places silently; an import refuses them too
            raise BadValue(f"{_short(text)} has more than {scale} decimal places")
    if name == "FixedString" and len(text.encode()) > base.args[0]:
        raise BadValue(f"{_short(text)} is longer than {base.args[0]} bytes")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


@dataclass
class Converted:
    array: pa.Array
    errors: dict[int, str]   # row index → why the value did not fit


def convert_column(node: TypeNode, values: list[Any], fill: Any = None, json_text: bool = False,
                   epoch_unit: str = "") -> Converted:
    """Convert a column's values; ``fill`` replaces missing values (already coerced).

    ``json_text`` and ``epoch_unit`` are the column's declarations (see :func:`coerce`).
    """
    target = arrow_type(node)
    base = node.base()
    fast = _fast_path(base, values, target, epoch_unit)
    if fast is not None:
        array = fast
        errors: dict[int, str] = {}
    else:
        out: list[Any] = []
        errors = {}
        for i, value in enumerate(values):
            try:
                out.append(coerce(node, value, json_text, epoch_unit))
            except BadValue as exc:
                errors[i] = str(exc)
                out.append(None)
            except (TypeError, ValueError, OverflowError) as exc:
                errors[i] = f"{_short(value)} does not fit {node.render()}: {exc}"
                out.append(None)
        try:
            array = pa.array(out, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:  # should not happen after coerce
            array = pa.array([None] * len(out), type=target)
            errors.update({i: f"cannot convert: {exc}" for i in range(len(out))})
    if array.null_count and fill is not None:
        array = pc.fill_null(array, pa.scalar(fill, type=target))
    return Converted(array, errors)


def _fast_path(base: TypeNode, values: list[Any], target: pa.DataType, epoch_unit: str = "") -> pa.Array | None:
    """One C-level conversion when every value already has the right kind, else None."""
    name = base.name
    try:
        if name in INTEGER_TYPES:
            array = pa.array(values, type=target)  # raises on floats, strings and overflow
            return array
        if name in ("Float32", "Float64"):
            array = pa.array(values, type=pa.float64())
            if array.type != pa.float64():
                return None
            return array.cast(target) if target != pa.float64() else array
        if name == "Bool":
            if any(v is not None and not isinstance(v, bool) for v in values):
                return None
            return pa.array(values, type=target)
        if name in ("String", "LowCardinality", "FixedString", "UUID", "IPv4", "IPv6", "Date", "Date32",
                    "Decimal"):
            array = pa.array(values, type=pa.string())  # raises on any non-string value
            if name == "String":
                return array
            if name == "UUID":
                ok = pc.match_substring_regex(array, UUID_RE.pattern)
                return array if pc.all(pc.fill_null(ok, True)).as_py() else None
            if name == "Date" or name == "Date32":
                ok = pc.match_substring_regex(array, DATE_RE.pattern)
                if not pc.all(pc.fill_null(ok, True)).as_py():
                    return None
                low, high = (d.isoformat() for d in DATE_BOUNDS[name])  # YYYY-MM-DD text compares as dates
                in_range = pc.and_(pc.greater_equal(array, low), pc.less_equal(array, high))
                return array if pc.all(pc.fill_null(in_range, True)).as_py() else None
            return None  # IPs, Decimal, FixedString: check each value
        if name in ("DateTime", "DateTime64"):
            return _fast_time(values, target, epoch_unit, time_bounds(base))
        if name in ("Array", "Map"):
            return None if name == "Map" else pa.array(values, type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
        return None
    return None


def _in_bounds(parsed: pa.Array, bounds: tuple[int, int]) -> bool:
    """Every (nanosecond) timestamp within ``bounds`` (seconds)."""
    low_high = pc.min_max(parsed.cast(pa.int64())).as_py()
    low, high = low_high["min"], low_high["max"]
    return low is None or (bounds[0] * 1_000_000_000 <= low and high < (bounds[1] + 1) * 1_000_000_000)


def cast_time_strings(array: pa.Array, target: pa.TimestampType,
                      bounds: tuple[int, int] = DATETIME64_BOUNDS) -> pa.Array | None:
    """ISO-8601 strings → UTC timestamps in Arrow's C++ parser, or None when any value is not one.

    Only forms :mod:`helios_core.timeparse` accepts pass: Arrow's parser takes a subset of them plus
    hour-only times (``2025-01-31T10``, ``…T10Z``), which a cheap check refuses first (every accepted time
    has ':' at position 13; a full regex would cost ~5× the cast). None sends the column to the per-value
    path, which names the culprits. Strings without an offset are UTC, as DateTime64(p, 'UTC') says.
    """
    hour_only = pc.and_(pc.greater(pc.binary_length(array), 10),
                        pc.not_equal(pc.utf8_slice_codeunits(array, 13, 14), ":"))
    if pc.any(pc.fill_null(hour_only, False)).as_py():
        return None
    # Try first the form the column's first value has: a failed cast costs as much as a good one.
    first = next((v for v in array.slice(0, 64).to_pylist() if v), "")
    order = (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns"))
    if not re.search(r"(Z|[+-]\d\d(:?\d\d)?)$", first.strip()):
        order = order[::-1]
    for parse_as in order:
        try:
            parsed = pc.cast(array, parse_as)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if parse_as.tz is None:
            parsed = pc.assume_timezone(parsed, "UTC")
        return pc.cast(parsed, target, safe=False) if _in_bounds(parsed, bounds) else None
    return None


def _fast_time(values: list[Any], target: pa.TimestampType, epoch_unit: str = "",
               bounds: tuple[int, int] = DATETIME64_BOUNDS) -> pa.Array | None:
    array = pa.array(values)
    if pa.types.is_null(array.type):
        return pa.array(values, type=target)
    if pa.types.is_string(array.type):
        return cast_time_strings(array, target, bounds)
    if pa.types.is_integer(array.type):
        if not len(array) or array.null_count == len(array):
            return None
        unit = epoch_unit
        if not unit:  # the same cut-off as timeparse.epoch_unit, for the whole column or not at all
            high = pc.max(pc.abs(array)).as_py()
            low = pc.min(pc.abs(array)).as_py()
            if (low > EPOCH_MS_CUTOFF) != (high > EPOCH_MS_CUTOFF):
                return None
            unit = "ms" if high > EPOCH_MS_CUTOFF else "s"
        if unit not in SCALE:
            return None
        seconds = pc.min_max(array).as_py()
        scale = SCALE[unit]
        if not (bounds[0] * scale <= seconds["min"] and seconds["max"] <= bounds[1] * scale):
            return None
        return pc.cast(pc.cast(array, pa.timestamp(unit, tz="UTC")), target, safe=False)
    return None


_TRUE_WORDS = ["t", "true", "1", "yes", "y", "on"]
_FALSE_WORDS = ["f", "false", "0", "no", "n", "off"]


def convert_text_column(node: TypeNode, text: pa.Array, json_text: bool = False) -> Converted:
    """A column of text from a file (CSV) converted in Arrow; nulls are missing values.

    Numbers, booleans (t/f, yes/no, on/off too: files write them so) and ISO times are cast in Arrow's C++
    code; when a value does not cast, the column goes through :func:`convert_column`, which names the culprits.
    """
    base = node.base()
    name = base.name
    target = arrow_type(node)
    try:
        if name == "String":
            return Converted(text, {})
        if name in INTEGER_TYPES or name in ("Float32", "Float64"):
            return Converted(pc.cast(text, target), {})  # strict: no blanks, no fractions into integers
        if name == "Bool":
            words = pc.utf8_lower(pc.utf8_trim_whitespace(text))
            true, false = pc.is_in(words, pa.array(_TRUE_WORDS)), pc.is_in(words, pa.array(_FALSE_WORDS))
            known = pc.or_(true, false)
            if pc.all(pc.fill_null(known, True)).as_py():
                return Converted(pc.if_else(pc.is_null(text), pa.scalar(None, pa.bool_()), true), {})
        elif name in ("DateTime", "DateTime64"):
            cast = cast_time_strings(text, target, time_bounds(base))
            if cast is not None:
                return Converted(cast, {})
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    values = text.to_pylist()
    if name == "Bool":
        values = [True if isinstance(v, str) and v.strip().lower() in _TRUE_WORDS else
                  False if isinstance(v, str) and v.strip().lower() in _FALSE_WORDS else v for v in values]
    return convert_column(node, values, json_text=json_text)


def format_check(fmt: str) -> Callable[[Any], bool] | None:
    if fmt == "uuid":
        return lambda v: isinstance(v, str) and bool(UUID_RE.match(v))
    if fmt == "iso_time":
        return is_iso
    if fmt == "email":
        return lambda v: isinstance(v, str) and bool(EMAIL_RE.match(v))
    if fmt == "ip":
        def ip(v: Any) -> bool:
            try:
                ipaddress.ip_address(str(v))
                return True
            except ValueError:
                return False
        return ip
    return None
