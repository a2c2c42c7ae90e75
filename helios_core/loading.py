"""Loading rows from files into a ClickHouse table: typed validation, batches, quarantine.

Shared by import jobs (CSV, JSON lines, Parquet uploads) and PostgreSQL dump
loading. Each value is converted to the Python value ClickHouse's driver
expects for the column's type, or the row is rejected with the failing column
and why. Rejected rows go to ``<table>_quarantine`` (the layout of
:mod:`helios_core.ddl`, shared with the stream ingester) with the raw row and
where it came from — nothing is dropped. If ClickHouse refuses a whole batch,
the batch is bisected so the good rows still land.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from helios_core.clickhouse import table_columns, table_exists
from helios_core.ddl import QUARANTINE_COLUMNS, create_quarantine_sql, quarantine_name
from helios_core.errors import QueryError

Converter = Callable[[Any], Any]

_INT_RANGES = {f"{sign}Int{bits}": ((0, 2 ** bits - 1) if sign else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
               for sign in ("", "U") for bits in (8, 16, 32, 64, 128, 256)}
_TRUE = {"t", "true", "1", "yes", "y", "on"}
_FALSE = {"f", "false", "0", "no", "n", "off"}
DATE_MIN, DATE32_MIN, DATE_MAX, DATE32_MAX = date(1970, 1, 1), date(1900, 1, 1), date(2149, 6, 6), date(2299, 12, 31)
_TS = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*"
                 r"(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?$", re.IGNORECASE)
_EPOCH = re.compile(r"^-?\d{9,13}(\.\d+)?$")


class RowError(ValueError):
    """A value that does not fit its column: which column, what kind of problem, and why."""

    def __init__(self, column: str, error_type: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.error_type = error_type
        self.message = message


# ---- type parsing ---------------------------------------------------------------------------------


def split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments of a type, e.g. ``Decimal(12, 2)`` → ``['12', '2']``."""
    out, depth, current, quote = [], 0, [], False
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


def is_nullable(type_name: str) -> bool:
    head, args = unwrap(type_name)
    if head == "LowCardinality":
        return is_nullable(args[0])
    return head == "Nullable"


# ---- value conversion -----------------------------------------------------------------------------


def parse_timestamp(text: str) -> datetime:
    """ISO-ish date/time text (PostgreSQL's output included) → an aware UTC datetime."""
    match = _TS.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a date/time (expected YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM])")
    y, mo, d, h, mi, s, frac, tz = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    moment = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro)
    offset = timedelta(0)
    if tz and tz.upper() != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0), seconds=int(digits[4:6] or 0))
    return (moment - offset).replace(tzinfo=timezone.utc)


def _epoch_or_text_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, str) and _EPOCH.match(value.strip()):
        value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) > 10_000_000_000 else value  # epoch milliseconds vs seconds
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    return parse_timestamp(str(value))


def converter_for(type_name: str, column: str = "") -> Converter:
    """A function turning text or JSON values into what the driver inserts for ``type_name``.

    It raises :class:`RowError` naming ``column`` when the value does not fit.
    """
    head, args = unwrap(type_name)
    if head == "LowCardinality":
        return converter_for(args[0], column)
    if head == "Nullable":
        inner = converter_for(args[0], column)

        def nullable(value: Any) -> Any:
            return None if value is None else inner(value)
        return nullable
    base = _base_converter(head, args, type_name, column)

    def not_null(value: Any) -> Any:
        if value is None:
            raise RowError(column, "missing_required", f"{column} is empty, but the column does not allow NULL.")
        return base(value)
    return not_null


def _mismatch(column: str, type_name: str, value: Any, why: str = "") -> RowError:
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "…"
    return RowError(column, "type_mismatch", f"{column}: {shown} is not a valid {type_name}" + (f" ({why})" if why else ""))


def _base_converter(head: str, args: list[str], type_name: str, column: str) -> Converter:
    if head in _INT_RANGES:
        low, high = _INT_RANGES[head]

        def to_int(value: Any) -> int:
            try:
                if isinstance(value, bool):
                    number = int(value)
                elif isinstance(value, float):
                    if not value.is_integer():
                        raise ValueError("not a whole number")
                    number = int(value)
                elif isinstance(value, (int, Decimal)):
                    number = int(value)
                else:
                    number = int(str(value).strip())
            except (ValueError, TypeError, OverflowError) as exc:
                raise _mismatch(column, head, value) from exc
            if not low <= number <= high:
                raise _mismatch(column, head, value, f"out of range {low}..{high}")
            return number
        return to_int
    if head in ("Float32", "Float64", "BFloat16"):
        def to_float(value: Any) -> float:
            if isinstance(value, bool):
                raise _mismatch(column, head, value)
            try:
                return float(value) if isinstance(value, (int, float, Decimal)) else float(str(value).strip())
            except (ValueError, TypeError) as exc:
                raise _mismatch(column, head, value) from exc
        return to_float
    if head.startswith("Decimal"):
        precision, scale = (int(args[0]), int(args[1])) if len(args) == 2 else (int(args[0]), 0) if args else (10, 0)
        if head in ("Decimal32", "Decimal64", "Decimal128", "Decimal256"):
            precision, scale = {"Decimal32": 9, "Decimal64": 18, "Decimal128": 38, "Decimal256": 76}[head], int(args[0])

        def to_decimal(value: Any) -> Decimal:
            try:
                number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
            except (InvalidOperation, ValueError) as exc:
                raise _mismatch(column, type_name, value) from exc
            if isinstance(value, bool) or not number.is_finite():
                raise _mismatch(column, type_name, value, "not a finite number")
            exponent = number.as_tuple().exponent
            if isinstance(exponent, int) and -exponent > scale and number != number.quantize(Decimal(1).scaleb(-scale)):
                raise _mismatch(column, type_name, value, f"more than {scale} decimal places")
            number = number.quantize(Decimal(1).scaleb(-scale))
            if len(number.as_tuple().digits) > precision and number != 0:
                raise _mismatch(column, type_name, value, f"more than {precision} digits")
            return number
        return to_decimal
    if head == "Bool":
        def to_bool(value: Any) -> bool:
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise _mismatch(column, "Bool", value, "expected true/false")
        return to_bool
    if head in ("String", "JSON", "Object"):
        def to_text(value: Any) -> str:
            if isinstance(value, (dict, list)):
                return json.dumps(value, ensure_ascii=False, default=str)
            if isinstance(value, bytes):
                return value.decode("utf-8", "replace")
            if isinstance(value, (datetime, date)):
                return value.isoformat()
            return str(value)
        return to_text
    if head == "FixedString":
        size = int(args[0])

        def to_fixed(value: Any) -> str:
            text = str(value)
            if len(text.encode("utf-8")) > size:
                raise _mismatch(column, type_name, value, f"longer than {size} bytes")
            return text
        return to_fixed
    if head == "UUID":
        def to_uuid(value: Any) -> uuid.UUID:
            try:
                return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip())
            except (ValueError, AttributeError) as exc:
                raise _mismatch(column, "UUID", value) from exc
        return to_uuid
    if head in ("Date", "Date32"):
        low, high = (DATE_MIN, DATE_MAX) if head == "Date" else (DATE32_MIN, DATE32_MAX)

        def to_date(value: Any) -> date:
            try:
                if isinstance(value, datetime):
                    day = value.date()
                elif isinstance(value, date):
                    day = value
                else:
                    day = _epoch_or_text_timestamp(value).date() if not isinstance(value, str) \
                        else date.fromisoformat(value.strip()[:10])
            except (ValueError, TypeError, OverflowError, OSError) as exc:
                raise _mismatch(column, head, value, "expected YYYY-MM-DD") from exc
            if not low <= day <= high:
                raise _mismatch(column, head, value, f"outside {low}..{high}")
            return day
        return to_date
    if head in ("DateTime", "DateTime64"):
        low = datetime(1970 if head == "DateTime" else 1900, 1, 1, tzinfo=timezone.utc)
        high = datetime(2106 if head == "DateTime" else 2299, 12, 31, 23, 59, 59, tzinfo=timezone.utc)

        def to_datetime(value: Any) -> datetime:
            try:
                moment = _epoch_or_text_timestamp(value)
            except (ValueError, TypeError, OverflowError, OSError) as exc:
                raise _mismatch(column, head, value, str(exc) if "expected" in str(exc) else "") from exc
            if not low <= moment <= high:
                raise _mismatch(column, head, value, f"outside {low.year}..{high.year}")
            return moment
        return to_datetime
    if head in ("IPv4", "IPv6"):
        def to_ip(value: Any) -> str:
            try:
                addr = ipaddress.ip_address(str(value).strip())
            except ValueError as exc:
                raise _mismatch(column, head, value) from exc
            if head == "IPv4" and addr.version != 4:
                raise _mismatch(column, head, value, "an IPv6 address")
            return str(addr) if head == "IPv4" or addr.version == 6 else f"::ffff:{addr}"
        return to_ip
    if head.startswith("Enum"):
        names = {re.sub(r"^'(.*)'\s*(=.*)?$", r"\1", a.strip()).replace("\\'", "'") for a in args}

        def to_enum(value: Any) -> str:
            if str(value) not in names:
                raise RowError(column, "not_allowed", f"{column}: {value!r} is not one of {sorted(names)}")
            return str(value)
        return to_enum
    if head == "Array":
        element = converter_for(args[0], column)

        def to_array(value: Any) -> list[Any]:
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise _mismatch(column, type_name, value, "expected a JSON array") from exc
            if hasattr(value, "tolist"):
                value = value.tolist()
            if not isinstance(value, (list, tuple)):
                raise _mismatch(column, type_name, value, "expected a list")
            return [element(v) for v in value]
        return to_array
    if head == "Map":
        key, val = converter_for(args[0], column), converter_for(args[1], column)

        def to_map(value: Any) -> dict[Any, Any]:
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise _mismatch(column, type_name, value, "expected a JSON object") from exc
            if isinstance(value, list):  # Parquet maps arrive as [(k, v), ...]
                value = dict(value)
            if not isinstance(value, dict):
                raise _mismatch(column, type_name, value, "expected an object")
            return {key(k): val(v) for k, v in value.items()}
        return to_map
    # A type Helios has no converter for: ClickHouse itself checks it on insert.
    return lambda value: value


def is_missing(value: Any) -> bool:
    """None, NaN and pandas' missing markers count as NULL."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


# ---- the sink: validate, insert in batches, quarantine the rest ------------------------------------


@dataclass
class QuarantineRow:
    raw: str
    error_type: str
    error_message: str
    column_name: str = ""
    sub_index: int = 0


@dataclass
class SinkCounts:
    inserted: int = 0
    quarantined: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"inserted": self.inserted, "quarantined": self.quarantined, "errors_by_type": self.errors_by_type}


def ensure_quarantine(ch: Any, database: str, table: str) -> None:
    """Create ``<table>_quarantine`` with the shared layout unless it exists."""
    if not table_exists(ch, database, quarantine_name(table)):
        ch.execute(create_quarantine_sql(database, table).replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1))


class RowSink:
    """Rows for one table from one origin (an owner's file, a dump): convert, batch, insert, quarantine.

    ``client`` is a clickhouse-connect client (a worker's own handle) or None to
    use ``ch``'s writer.
    """

    def __init__(self, ch: Any, database: str, table: str, columns: list[tuple[str, str]], *,
                 source: str, source_id: str, origin: str, batch_rows: int = 5000, client: Any = None,
                 token_prefix: str | None = None) -> None:
        self.ch, self.database, self.table, self.columns = ch, database, table, columns
        self.names = [n for n, _ in columns]
        self.converters = [converter_for(t, n) for n, t in columns]
        # NULL for an Array/Map column (which cannot be Nullable) is stored as empty.
        self.empty = [[] if unwrap(t)[0] == "Array" else {} if unwrap(t)[0] == "Map" else None for _, t in columns]
        self.source, self.source_id, self.origin = source, source_id, origin
        self.batch_rows = batch_rows
        self.client = client if client is not None else ch.writer
        self.good: list[tuple[list[Any], str, int]] = []
        self.bad: list[QuarantineRow] = []
        self.counts = SinkCounts()
        self._quarantine_ready = False
        # With a token prefix every batch carries an insert_deduplication_token, so loading the same
        # file again (a job resumed after a restart) inserts nothing twice on tables with a dedup window.
        self.token_prefix = token_prefix
        self._received_at = datetime.now(timezone.utc)
        self._batches = 0
        self._bad_batches = 0

    def add(self, values: dict[str, Any] | list[Any], raw: str, index: int) -> None:
        """One row, by column name (missing keys = NULL) or in column order."""
        self.add_built(lambda: self.convert(values), raw, index)

    def add_built(self, build: Callable[[], list[Any]], raw: str, index: int) -> None:
        """One row made by ``build`` (in column order); a RowError it raises quarantines the row."""
        try:
            row = build()
        except RowError as exc:
            self.reject(QuarantineRow(raw, exc.error_type, exc.message, exc.column, index))
            return
        self.good.append((row, raw, index))
        if len(self.good) >= self.batch_rows:
            self.flush()

    def convert(self, values: dict[str, Any] | list[Any]) -> list[Any]:
        if isinstance(values, dict):
            items = [values.get(n) for n in self.names]
        else:
            if len(values) != len(self.names):
                raise RowError("", "type_mismatch", f"The row has {len(values)} values; the table has "
                                                    f"{len(self.names)} columns.")
            items = list(values)
        out = []
        for value, convert, empty in zip(items, self.converters, self.empty):
            if is_missing(value):
                value = None if empty is None else type(empty)()
            out.append(convert(value))
        return out

    def reject(self, row: QuarantineRow) -> None:
        self.bad.append(row)
        self.counts.quarantined += 1
        self.counts.errors_by_type[row.error_type] = self.counts.errors_by_type.get(row.error_type, 0) + 1
        if len(self.bad) >= self.batch_rows:
            self._flush_bad()

    def flush(self) -> None:
        if self.good:
            batch, self.good = self.good, []
            self._batches += 1
            self._insert(batch, f"{self._batches}")
        self._flush_bad()

    def _settings(self, token: str) -> dict[str, Any] | None:
        if not self.token_prefix:
            return None
        return {"insert_deduplication_token": f"{self.token_prefix}:{token}"}

    def _insert(self, batch: list[tuple[list[Any], str, int]], token: str) -> None:
        try:
            self.client.insert(self.table, [r for r, _, _ in batch], column_names=self.names, database=self.database,
                               settings=self._settings(token))
            self.counts.inserted += len(batch)
        except Exception as exc:  # noqa: BLE001 - ClickHouse or the driver refused the batch: find the bad rows
            if len(batch) == 1:
                row, raw, index = batch[0]
                message = str(exc).split("\n")[0][:500]
                self.reject(QuarantineRow(raw, "rejected_by_clickhouse", f"ClickHouse refused the row: {message}",
                                          "", index))
                return
            middle = len(batch) // 2
            self._insert(batch[:middle], f"{token}a")
            self._insert(batch[middle:], f"{token}b")

    def _flush_bad(self) -> None:
        if not self.bad:
            return
        if not self._quarantine_ready:
            ensure_quarantine(self.ch, self.database, self.table)
            self._quarantine_ready = True
        rows, self.bad = self.bad, []
        # A fixed time per origin keeps a re-sent quarantine batch identical (deduplicated).
        now = self._received_at
        data = [[now, self.source, self.source_id, self.origin, "", "", "", r.sub_index, "",
                 datetime(1970, 1, 1, tzinfo=timezone.utc), r.error_type, r.error_message, r.column_name, r.raw,
                 f"{self.source_id}:{self.origin}:{r.sub_index}"] for r in rows]
        names = [name for name, _ in QUARANTINE_COLUMNS]
        self._bad_batches += 1
        try:
            self.client.insert(quarantine_name(self.table), data, column_names=names, database=self.database,
                               settings=self._settings(f"q{self._bad_batches}"))
        except Exception as exc:  # noqa: BLE001
            raise QueryError(f"Could not write {len(rows)} rejected rows to "
                             f"{self.database}.{quarantine_name(self.table)}: {str(exc)[:300]}",
                             "Check that the quarantine table has the standard layout.") from exc


NOT_INSERTED = ("MATERIALIZED", "ALIAS", "EPHEMERAL")   # default kinds of columns an INSERT does not name


def table_schema(ch: Any, database: str, table: str) -> list[tuple[str, str]]:
    """Insertable columns (no MATERIALIZED/ALIAS/EPHEMERAL) and their types."""
    return [(c["name"], c["type"]) for c in table_columns(ch, database, table) if c["default_kind"] not in NOT_INSERTED]


def dedup_window(ch: Any, database: str, table: str) -> int:
    """The table's ``non_replicated_deduplication_window`` (0: a repeated insert is not deduplicated)."""
    rows = ch.internal_query("SELECT create_table_query AS q FROM system.tables WHERE database = {d:String} "
                             "AND name = {t:String}", {"d": database, "t": table})
    if not rows:
        return 0
    match = re.search(r"non_replicated_deduplication_window\s*=\s*(\d+)", rows[0]["q"])
    return int(match.group(1)) if match else 0
