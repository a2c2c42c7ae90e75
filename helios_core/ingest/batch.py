"""Records → a columnar batch for the table plus quarantine rows.

Work is column by column over plain lists (C-level comprehensions and one
``pa.array`` per column), never a Python object per row and field.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from helios_core.chtypes import parse_type
from helios_core.ingest.convert import (
    DATE_RE,
    TEXT_CARRIED,
    UUID_RE,
    BadValue,
    arrow_type,
    cast_time_strings,
    check_text,
    coerce,
    convert_column,
    format_check,
    parse_time,
    time_bounds,
)
from helios_core.schema import ColumnSpec
from helios_core.streams import DecodeError, decode_record

MAX_EVENT_BYTES = 1_000_000  # larger records are quarantined as too_large (Kinesis allows up to 1 MiB)
_MISSING = object()


@dataclass
class RawRecord:
    """One Kinesis record as Helios keeps it."""

    data: bytes
    sequence_number: str
    partition_key: str = ""
    arrival_ms: int = 0       # ApproximateArrivalTimestamp, epoch milliseconds

    @classmethod
    def from_kinesis(cls, record: dict[str, Any]) -> RawRecord:
        arrival = record.get("ApproximateArrivalTimestamp")
        if isinstance(arrival, datetime):
            if arrival.tzinfo is None:
                arrival = arrival.replace(tzinfo=UTC)
            ms = int(arrival.timestamp() * 1000)
        else:
            ms = int(float(arrival or 0) * 1000)
        return cls(record["Data"], record["SequenceNumber"], record.get("PartitionKey", ""), ms)

    def problem(self, error_type: str = "", message: str = "", column: str = "") -> Problem:
        """The whole record on its way to quarantine (or, with no error, where a row came from)."""
        return Problem(self.data, self.sequence_number, 0, self.partition_key, self.arrival_ms, error_type, message,
                       column)


@dataclass
class Events:
    """Decoded events in parallel lists (one entry per event; a record may hold several)."""

    objs: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    seq: list[str] = field(default_factory=list)
    sub: list[int] = field(default_factory=list)
    pkey: list[str] = field(default_factory=list)
    arrival_ms: list[int] = field(default_factory=list)
    rec: list[int] = field(default_factory=list)   # index of the record each event came from

    def problem(self, i: int, error_type: str = "", message: str = "", column: str = "") -> Problem:
        """Event ``i`` on its way to quarantine (or, with no error, where a row came from)."""
        return Problem(self.raw[i], self.seq[i], self.sub[i], self.pkey[i], self.arrival_ms[i], error_type, message,
                       column)


@dataclass
class Problem:
    """An event (or undecodable record) on its way to quarantine."""

    raw: bytes
    seq: str
    sub: int
    pkey: str
    arrival_ms: int
    error_type: str
    message: str
    column: str = ""
    record_id: str = ""   # set by callers that name their rows (imports, dumps, re-processing); else derived


def decode(records: list[RawRecord], max_event_bytes: int = MAX_EVENT_BYTES) -> tuple[Events, list[Problem]]:
    events = Events()
    problems: list[Problem] = []
    loads = orjson.loads
    for rec_index, rec in enumerate(records):
        data = rec.data
        if len(data) > max_event_bytes:
            problems.append(rec.problem("too_large",
                                        f"The record has {len(data):,} bytes; the limit is {max_event_bytes:,}."))
            continue
        try:
            obj = loads(data)  # the common case: one JSON object per record
            values = [obj]
            single = True
        except orjson.JSONDecodeError:
            single = False
            try:
                values = decode_record(data)
            except DecodeError as exc:
                kind = "not_an_object" if "not an object" in exc.reason else "decode_error"
                problems.append(rec.problem(kind, f"The record cannot be decoded: {exc.reason}."))
                continue
            except Exception as exc:  # noqa: BLE001 - any payload at all must end in quarantine, not a crash
                problems.append(rec.problem("decode_error", f"The record cannot be decoded: {exc}."))
                continue
        for i, value in enumerate(values):
            raw = data if single else orjson.dumps(value)
            if not isinstance(value, dict):
                problems.append(Problem(raw, rec.sequence_number, i, rec.partition_key, rec.arrival_ms,
                                        "not_an_object", f"The event is a JSON {type(value).__name__}, "
                                                         "not an object."))
                continue
            events.objs.append(value)
            events.raw.append(raw)
            events.seq.append(rec.sequence_number)
            events.sub.append(i)
            events.pkey.append(rec.partition_key)
            events.arrival_ms.append(rec.arrival_ms)
            events.rec.append(rec_index)
    return events, problems


class _NotObject:
    """A JSON path that runs through a value that is not an object (``screen.width`` with ``screen`` a string)."""

    __slots__ = ("at", "kind")

    def __init__(self, at: str, kind: str) -> None:
        self.at = at
        self.kind = kind

    def reason(self, path: str) -> str:
        return f"{self.at} is a JSON {self.kind}, not an object, so {path} cannot be read from it"


_KINDS = {str: "string", list: "array", bool: "boolean", int: "number", float: "number"}


def _extract(objs: list[dict[str, Any]], path: str) -> list[Any]:
    if "." not in path:
        return [o.get(path, _MISSING) for o in objs]
    parts = path.split(".")
    out = []
    for o in objs:
        value: Any = o
        for depth, part in enumerate(parts):
            if isinstance(value, dict):
                value = value.get(part, _MISSING)
            elif isinstance(value, list) and part.isdigit():
                value = value[int(part)] if int(part) < len(value) else _MISSING
            elif value is None:
                value = _MISSING
            else:  # a string, number or array where the path needs an object: a bad event, never a zero
                value = _NotObject(".".join(parts[:depth]), _KINDS.get(type(value), type(value).__name__))
                break
            if value is _MISSING:
                break
        out.append(value)
    return out


Origin = Callable[..., Problem]  # (event index, error_type="", message="", column="") -> Problem


class RowOrigin(Protocol):
    """Where each valid row of a batch came from: ``origin[i]`` and the input positions of all rows."""

    def __getitem__(self, i: int) -> Problem: ...

    def record_positions(self, n_valid: int) -> list[int]: ...


class _LazyOrigin:
    """Maps a valid row's position back to its record without building a list per batch."""

    def __init__(self, kept: list[int] | None, make: Origin, record_of: list[int] | None = None) -> None:
        self.kept = kept
        self.make = make
        self.record_of = record_of

    def record_positions(self, n_valid: int) -> list[int]:
        """For each valid row, the index of the input record it came from."""
        rows = self.kept if self.kept is not None else list(range(n_valid))
        return [self.record_of[i] for i in rows] if self.record_of is not None else rows

    def __getitem__(self, i: int) -> Problem:
        return self.make(self.kept[i] if self.kept is not None else i)


@dataclass
class Built:
    table: pa.Table | None          # valid rows, in event order
    problems: list[Problem]
    origin: RowOrigin | None = None  # per valid row: where it came from (made on demand, for rejects)

    def row_origin(self, i: int) -> Problem:
        return self.origin[i] if self.origin else Problem(b"", "", 0, "", 0, "", "")


def _built(columns: list[ColumnSpec], arrays: list[pa.Array], bad: dict[int, tuple[str, str, str]],
           origin: Origin, record_of: list[int] | None = None) -> Built:
    """The valid rows as a table and the bad ones as problems (in event order), each traced by ``origin``."""
    table = pa.Table.from_arrays(arrays, names=[c.name for c in columns])
    problems: list[Problem] = []
    kept = None
    if bad:
        n = table.num_rows
        table = table.filter(pa.array([i not in bad for i in range(n)]))
        kept = [i for i in range(n) if i not in bad]
        problems = [origin(i, *bad[i]) for i in sorted(bad)]
    return Built(table if table.num_rows else None, problems, _LazyOrigin(kept, origin, record_of))


class BatchBuilder:
    """Maps and validates events for one source's columns."""

    def __init__(self, columns: list[ColumnSpec], shard_id: str = "") -> None:
        self.columns = columns
        self.shard_id = shard_id
        self.nodes = [parse_type(c.type) for c in columns]
        self.fills: list[Any] = []
        for col, node in zip(columns, self.nodes, strict=False):
            fill = None
            if col.default:  # neither None nor empty
                default = col.default
                if node.base().name in ("Array", "Map", "JSON"):
                    try:
                        default = orjson.loads(default)
                    except orjson.JSONDecodeError:
                        pass
                try:
                    fill = coerce(node, default, col.json_text, col.time_unit)
                except (BadValue, TypeError, ValueError):
                    fill = None
                if isinstance(fill, list) and node.base().name == "Map":
                    fill = None  # pa.scalar cannot take map pairs; ClickHouse's DEFAULT covers it
            self.fills.append(fill)
        # A missing value is a bad event unless the column may be NULL (and is not required) or has a
        # default (see ColumnSpec.rejects_missing); the type's zero value is never made up.
        self.rejects_missing = [c.rejects_missing for c in columns]
        self.allowed = [set(map(str, c.allowed_values)) if c.allowed_values else None for c in columns]
        self.formats = [format_check(c.format) if c.format else None for c in columns]
        self.fast = FastPath(self)

    def build(self, events: Events) -> Built:
        n = len(events.objs)
        if n == 0:
            return Built(None, [])
        bad: dict[int, tuple[str, str, str]] = {}  # row → (error_type, message, column)
        arrays: list[pa.Array] = []
        for col, node, fill, allowed, fmt, rejects in zip(self.columns, self.nodes, self.fills, self.allowed,
                                                          self.formats, self.rejects_missing, strict=False):
            if col.virtual:
                values = self._virtual(col.virtual, events)
            else:
                path = col.json_path or col.name
                values = _extract(events.objs, path)
                missing = [i for i, v in enumerate(values) if v is _MISSING or v is None or type(v) is _NotObject] \
                    if (rejects or _MISSING in values or None in values or "." in path) else []
                for i in missing:
                    value = values[i]
                    if type(value) is _NotObject:
                        bad.setdefault(i, ("type_mismatch", f"{col.name}: {value.reason(path)}.", col.name))
                    elif rejects:
                        bad.setdefault(i, ("missing_required", col.missing_reason(), col.name))
                    values[i] = None
                if allowed is not None:
                    for i, v in enumerate(values):
                        if v is not None and str(v) not in allowed and i not in bad:
                            bad[i] = ("not_allowed", f"{v!r} is not one of the allowed values "
                                                     f"({', '.join(sorted(allowed)[:10])}).", col.name)
                if fmt is not None:
                    for i, v in enumerate(values):
                        if v is not None and i not in bad and not fmt(v):
                            bad[i] = ("bad_format", f"{str(v)[:80]!r} is not a valid {col.format}.", col.name)
            converted = convert_column(node, values, fill, col.json_text, col.time_unit)
            for i, message in converted.errors.items():
                bad.setdefault(i, ("type_mismatch", f"{col.name}: {message}.", col.name))
            arrays.append(converted.array)
        return _built(self.columns, arrays, bad, events.problem, events.rec)

    def _virtual(self, kind: str, events: Events) -> list[Any]:
        if kind == "_arrival_time":
            return events.arrival_ms
        if kind == "_partition_key":
            return events.pkey
        if kind == "_shard_id":
            return [self.shard_id] * len(events.objs)
        if kind == "_sequence_number":
            return events.seq
        if kind == "_raw_message":
            return [r.decode("utf-8", "replace") for r in events.raw]
        return [None] * len(events.objs)


# ---- the fast path: Arrow's C++ JSON reader over the whole batch -----------------------------------

_NO_FAST = ("Map", "JSON")


def _contains(node, names) -> bool:
    if node.name in names:
        return True
    return any(_contains(a, names) for a in node.args if hasattr(a, "args"))


class FastPath:
    """Parses a batch of one-object-per-record payloads with ``pyarrow.json`` and validates column-wise.

    Any surprise (a value of the wrong kind, a nested conflict) makes :meth:`build`
    return None and the caller uses the per-record path, which finds the culprits.
    """

    def __init__(self, builder: BatchBuilder) -> None:
        self.b = builder
        self.ok = True
        tree: dict[str, Any] = {}
        for col, node in zip(builder.columns, builder.nodes, strict=False):
            if col.virtual:
                continue
            if _contains(node, _NO_FAST):
                self.ok = False
                return
            parts = (col.json_path or col.name).split(".")
            level = tree
            for part in parts[:-1]:
                nxt = level.setdefault(part, {})
                if not isinstance(nxt, dict):
                    self.ok = False
                    return
                level = nxt
            if parts[-1] in level:  # two columns read the same path, or a path is both leaf and parent
                self.ok = False
                return
            level[parts[-1]] = self._read_type(node)
        self.schema = pa.schema(self._fields(tree))

    @staticmethod
    def _read_type(node) -> pa.DataType:
        base = node.base()
        if base.name in ("DateTime", "DateTime64"):
            return pa.string()  # converted afterwards: ISO text with or without an offset
        return arrow_type(node)

    def _fields(self, tree: dict[str, Any]) -> list[pa.Field]:
        return [pa.field(k, pa.struct(self._fields(v)) if isinstance(v, dict) else v) for k, v in tree.items()]

    def build(self, records: list[RawRecord], max_event_bytes: int) -> Built | None:
        datas = [r.data for r in records]
        if not self.ok or not datas:
            return None
        if max(map(len, datas)) > max_event_bytes:
            return None
        blob = b"\n".join(datas)
        if blob.count(b"\n") != len(datas) - 1:  # a record spans lines: JSON lines or pretty-printed
            return None
        try:
            parsed = pa_json.read_json(io.BytesIO(blob),
                                       read_options=pa_json.ReadOptions(block_size=1 << 22, use_threads=True),
                                       parse_options=pa_json.ParseOptions(explicit_schema=self.schema,
                                                                          unexpected_field_behavior="ignore"))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return None
        n = len(datas)
        if parsed.num_rows != n:
            return None
        bad: dict[int, tuple[str, str, str]] = {}
        arrays: list[pa.Array] = []
        b = self.b
        for col, node, fill, allowed, fmt, rejects in zip(b.columns, b.nodes, b.fills, b.allowed, b.formats,
                                                          b.rejects_missing, strict=False):
            if col.virtual:
                arrays.append(self._virtual(col, node, records))
                continue
            array = self._column(parsed, col.json_path or col.name)
            base = node.base()
            if rejects and array.null_count:
                reason = col.missing_reason()
                for i in pc.indices_nonzero(pc.is_null(array)).to_pylist():
                    bad.setdefault(i, ("missing_required", reason, col.name))
            if allowed is not None:
                as_text = array if pa.types.is_string(array.type) else pc.cast(array, pa.string())
                outside = pc.and_(pc.invert(pc.is_in(as_text, pa.array(sorted(allowed)))), pc.is_valid(as_text))
                for i in pc.indices_nonzero(pc.fill_null(outside, False)).to_pylist():
                    bad.setdefault(i, ("not_allowed", f"{as_text[i].as_py()!r} is not one of the allowed values "
                                                      f"({', '.join(sorted(allowed)[:10])}).", col.name))
            if fmt is not None:
                self._check_unique(array, col, fmt, bad, "bad_format")
            if base.name in ("DateTime", "DateTime64"):
                array = self._times(array, node, col, bad)
                if array is None:
                    return None
            elif base.name in TEXT_CARRIED or base.name == "FixedString":
                self._check_text(array, base, col, bad)
            if array.null_count and fill is not None:
                array = pc.fill_null(array, pa.scalar(fill, type=array.type))
            arrays.append(array)
        return _built(b.columns, arrays, bad, lambda i, *why: records[i].problem(*why))

    @staticmethod
    def _column(parsed: pa.Table, path: str) -> pa.Array:
        parts = path.split(".")
        array = parsed.column(parts[0]).combine_chunks()
        for part in parts[1:]:
            array = pc.struct_field(array, part)
        return array

    def _virtual(self, col: ColumnSpec, node, records: list[RawRecord]) -> pa.Array:
        if col.virtual == "_arrival_time":
            values: list[Any] = [r.arrival_ms for r in records]
        elif col.virtual == "_partition_key":
            values = [r.partition_key for r in records]
        elif col.virtual == "_shard_id":
            values = [self.b.shard_id] * len(records)
        elif col.virtual == "_sequence_number":
            values = [r.sequence_number for r in records]
        elif col.virtual == "_raw_message":
            values = [r.data.decode("utf-8", "replace") for r in records]
        else:
            values = [None] * len(records)
        return convert_column(node, values).array

    @staticmethod
    def _times(array: pa.Array, node, col: ColumnSpec, bad: dict) -> pa.Array | None:
        target = arrow_type(node)
        bounds = time_bounds(node.base())
        parsed = cast_time_strings(array, target, bounds)
        if parsed is not None:
            return parsed
        # Mixed forms: convert value by value, reporting those that are not times.
        unit = target.unit
        out = []
        for i, value in enumerate(array.to_pylist()):
            try:
                out.append(None if value is None else parse_time(value, unit, col.time_unit, bounds))
            except ValueError as exc:
                bad.setdefault(i, ("type_mismatch", f"{col.name}: {exc}.", col.name))
                out.append(None)
        return pa.array(out, type=target)

    @staticmethod
    def _check_text(array: pa.Array, base, col: ColumnSpec, bad: dict) -> None:
        if base.name == "UUID":
            wrong = pc.invert(pc.match_substring_regex(array, UUID_RE.pattern))
        elif base.name in ("Date", "Date32"):
            wrong = pc.invert(pc.match_substring_regex(array, DATE_RE.pattern))
        elif base.name == "FixedString":
            wrong = pc.greater(pc.binary_length(array), base.args[0])
        else:
            wrong = None
        if wrong is not None:
            for i in pc.indices_nonzero(pc.fill_null(wrong, False)).to_pylist():
                bad.setdefault(i, ("type_mismatch", f"{col.name}: {array[i].as_py()!r} does not fit "
                                                    f"{base.render()}.", col.name))
        if base.name in ("IPv4", "IPv6", "Decimal", "Date", "Date32"):
            def fits(value: str) -> bool:
                try:
                    check_text(base, value)
                    return True
                except ValueError:
                    return False
            FastPath._check_unique(array, col, fits, bad, "type_mismatch")

    @staticmethod
    def _check_unique(array: pa.Array, col: ColumnSpec, check, bad: dict, error_type: str) -> None:
        if check is None:
            return
        uniques = pc.unique(array.drop_null()).to_pylist()
        wrong = [u for u in uniques if not check(u)]
        if not wrong:
            return
        mask = pc.fill_null(pc.is_in(array, pa.array(wrong, type=array.type)), False)
        what = col.format or col.type
        for i in pc.indices_nonzero(mask).to_pylist():
            bad.setdefault(i, (error_type, f"{str(array[i].as_py())[:80]!r} is not a valid {what}.", col.name))


def build_records(builder: BatchBuilder, records: list[RawRecord],
                  max_event_bytes: int = MAX_EVENT_BYTES) -> Built:
    """The batch for these records: the fast path when it applies, else record by record."""
    fast = builder.fast
    if fast.ok:
        built = fast.build(records, max_event_bytes)
        if built is not None:
            return built
    events, problems = decode(records, max_event_bytes)
    built = builder.build(events)
    built.problems = problems + built.problems
    return built
