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
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from helios_core.chtypes import DATE_BOUNDS, INT_RANGES, unwrap
from helios_core.chtypes import is_nullable as is_nullable, split_args as split_args  # re-exported for callers
from helios_core.clickhouse import table_columns, table_exists
from helios_core.ddl import QUARANTINE_COLUMNS, create_quarantine_sql, quarantine_name
from helios_core.errors import QueryError
from helios_core.timeparse import DATETIME64_BOUNDS, DATETIME_BOUNDS, TimeError, is_iso, to_datetime

Converter = Callable[[Any], Any]

_INT_RANGES = INT_RANGES
_TRUE = {"t", "true", "1", "yes", "y", "on"}
_FALSE = {"f", "false", "0", "no", "n", "off"}
(DATE_MIN, DATE_MAX), (DATE32_MIN, DATE32_MAX) = DATE_BOUNDS["Date"], DATE_BOUNDS["Date32"]


class RowError(ValueError):
    """A value that does not fit its column: which column, what kind of problem, and why."""

    def __init__(self, column: str, error_type: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.error_type = error_type
        self.message = message


# ---- value conversion -----------------------------------------------------------------------------


def parse_timestamp(value: Any, bounds: tuple[int, int] | None = None) -> datetime:
    """A time value (ISO text, PostgreSQL's output included; epoch numbers; datetimes) → an aware UTC datetime.

    The one parser of :mod:`helios_core.timeparse` (epoch units by magnitude: import files declare none).
    """
    try:
        return to_datetime(value, bounds=bounds)
    except TimeError as exc:
        raise ValueError(f"{exc} (expected YYYY-MM-DD[ HH:MM[:SS[.fffffffff]]][Z|+HH:MM] or epoch seconds/"
                         "milliseconds)") from None


def converter_for(type_name: str, column: str = "", json_text: bool = False) -> Converter:
    """A function turning text or JSON values into what the driver inserts for ``type_name``.

    It raises :class:`RowError` naming ``column`` when the value does not fit. Nothing is guessed: a
    boolean is not a number, NULL is not a zero, and an object or array is not text unless the column is
    JSON or declared String-of-JSON (``json_text``).
    """
    head, args = unwrap(type_name)
    if head == "LowCardinality":
        return converter_for(args[0], column, json_text)
    if head == "Nullable":
        inner = converter_for(args[0], column, json_text)

        def nullable(value: Any) -> Any:
            return None if value is None else inner(value)
        return nullable
    base = _base_converter(head, args, type_name, column, json_text)

    def not_null(value: Any) -> Any:
        if value is None:
            raise RowError(column, "missing_required", f"missing field {column}: it is empty or absent, and the "
                                                       f"column ({type_name}) is not Nullable and has no default.")
        return base(value)
    return not_null


def _mismatch(column: str, type_name: str, value: Any, why: str = "") -> RowError:
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "…"
    return RowError(column, "type_mismatch", f"{column}: {shown} is not a valid {type_name}" + (f" ({why})" if why else ""))


def _base_converter(head: str, args: list[str], type_name: str, column: str, json_text: bool = False) -> Converter:
    if head in _INT_RANGES:
        low, high = _INT_RANGES[head]

        def to_int(value: Any) -> int:
            try:
                if isinstance(value, bool):
                    raise ValueError("a boolean is not a whole number")
                elif isinstance(value, float):
                    if not value.is_integer():
                        raise ValueError("not a whole number")
                    number = int(value)
                elif isinstance(value, (int, Decimal)):
                    number = int(value)
                else:
                    number = int(str(value).strip())
            except (ValueError, TypeError, OverflowError) as exc:
                raise _mismatch(column, head, value, "a boolean" if isinstance(value, bool) else "") from exc
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
        keeps_json = json_text or head != "String"

        def to_text(value: Any) -> str:
            if isinstance(value, (dict, list)):
                if not keeps_json:
                    raise _mismatch(column, head, value, "an object or array is not text; declare the column's "
                                                         "format as json to keep it as JSON text")
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
                elif isinstance(value, str):  # ISO text only: 20250131 is not a day count or epoch here
                    if not is_iso(value):
                        raise ValueError("not an ISO date")
                    day = date.fromisoformat(value.strip()[:10])  # the calendar day as written
                else:
                    day = parse_timestamp(value).date()  # epoch numbers
            except (ValueError, TypeError, OverflowError, OSError) as exc:
                raise _mismatch(column, head, value, "expected YYYY-MM-DD") from exc
            if not low <= day <= high:
                raise _mismatch(column, head, value, f"outside {low}..{high}")
            return day
        return to_date
    if head in ("DateTime", "DateTime64"):
        bounds = DATETIME_BOUNDS if head == "DateTime" else DATETIME64_BOUNDS

        def to_moment(value: Any) -> datetime:
            try:
                return parse_timestamp(value, bounds)
            except (ValueError, TypeError, OverflowError, OSError) as exc:
                raise _mismatch(column, head, value, str(exc).split(" (expected")[0]) from exc
        return to_moment
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
                 token_prefix: str | None = None, json_columns: set[str] | frozenset[str] = frozenset()) -> None:
        self.ch, self.database, self.table, self.columns = ch, database, table, columns
        self.names = [n for n, _ in columns]
        # ``json_columns``: String columns declared String-of-JSON (objects/arrays kept as JSON text).
        self.converters = [converter_for(t, n, n in json_columns) for n, t in columns]
        # A missing value in a column with a DEFAULT is left to ClickHouse (the row is inserted without that
        # column); in any other non-Nullable column it makes the row bad. Nothing is zero-filled.
        self.defaulted = _default_columns(ch, database, table)
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
        for name, value, convert in zip(self.names, items, self.converters):
            if is_missing(value):
                if name in self.defaulted:
                    out.append(USE_DEFAULT)
                    continue
                value = None
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
        """Insert rows grouped by which DEFAULT columns they leave to ClickHouse (one INSERT per group)."""
        groups: dict[tuple[int, ...], list[tuple[list[Any], str, int]]] = {}
        for item in batch:
            omitted = tuple(i for i, v in enumerate(item[0]) if v is USE_DEFAULT) if self.defaulted else ()
            groups.setdefault(omitted, []).append(item)
        for omitted, items in groups.items():
            if omitted:  # a deterministic token per group keeps a re-sent batch deduplicated
                items = [([v for i, v in enumerate(r) if i not in omitted], raw, n) for r, raw, n in items]
                names = [n for i, n in enumerate(self.names) if i not in omitted]
                self._insert_rows(items, names, f"{token}:d{'-'.join(map(str, omitted))}")
            else:
                self._insert_rows(items, self.names, token)

    def _insert_rows(self, batch: list[tuple[list[Any], str, int]], names: list[str], token: str) -> None:
        try:
            self.client.insert(self.table, [r for r, _, _ in batch], column_names=names, database=self.database,
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
            self._insert_rows(batch[:middle], names, f"{token}a")
            self._insert_rows(batch[middle:], names, f"{token}b")

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
USE_DEFAULT = object()   # a converted row's marker: this column is left to its DEFAULT in ClickHouse


def _default_columns(ch: Any, database: str, table: str) -> set[str]:
    """The table's columns with a DEFAULT expression (empty when the table does not exist yet)."""
    try:
        return {c["name"] for c in table_columns(ch, database, table) if c["default_kind"] == "DEFAULT"}
    except QueryError:
        return set()


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
