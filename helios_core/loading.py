"""Loading rows from files into a ClickHouse table: typed validation, batches, quarantine.

Shared by import jobs (CSV, JSON lines, Parquet uploads), analyses and PostgreSQL dump loading. Rows are
gathered into column batches and converted by the ingester's column converters
(:func:`helios_core.ingest.convert.convert_column`), after the text forms files use and events do not
(``t``/``yes`` booleans, a date written as a full time, JSON text in an Array column) are read as such.
A row with a value that does not fit is rejected with the failing column and why. Good rows go through
the one write path (:func:`helios_core.ingest.sink.insert_built`: Arrow, split and retried when ClickHouse
refuses, deduplication tokens); rejected rows go to ``<table>_quarantine`` through
:func:`helios_core.ingest.sink.insert_quarantine` — nothing is dropped.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from helios_core.chtypes import is_nullable as is_nullable  # re-exported for callers
from helios_core.chtypes import split_args as split_args
from helios_core.chtypes import unwrap
from helios_core.clickhouse import table_columns, table_exists
from helios_core.ddl import TypeNode, create_quarantine_sql, parse_type, quarantine_name
from helios_core.errors import HeliosError, QueryError, ValidationError
from helios_core.ingest.batch import Built, Problem
from helios_core.ingest.convert import BadValue, coerce, convert_column, convert_text_column
from helios_core.ingest.sink import RowOrigins, Target, Writer, insert_built, insert_quarantine
from helios_core.timeparse import TimeError, is_iso, to_datetime

Converter = Callable[[Any], Any]

_TRUE = {"t", "true", "1", "yes", "y", "on"}
_FALSE = {"f", "false", "0", "no", "n", "off"}


class RowError(ValueError):
    """A value that does not fit its column: which column, what kind of problem, and why."""

    def __init__(self, column: str, error_type: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.error_type = error_type
        self.message = message


# ---- file text forms → what the column converters read ----------------------------------------------
#
# Files carry forms events do not: booleans written t/f or yes/no, a Date written as a full time, JSON
# text in an Array or Map column, Parquet's Decimal and date objects. These are read as such here; the
# value is then checked and converted by the one converter (helios_core.ingest.convert).

Prepare = Callable[[Any], Any]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _node(type_name: str) -> TypeNode | None:
    """The parsed type, or None for a type outside Helios's catalogue (carried as text: ClickHouse checks it)."""
    try:
        return parse_type(type_name)
    except ValidationError:
        return None


def _prepare_for(node: TypeNode) -> Prepare | None:
    base = node.base()
    name = base.name
    if name == "Bool":
        def to_bool(value: Any) -> Any:
            if isinstance(value, str):
                word = value.strip().lower()
                if word in _TRUE:
                    return True
                if word in _FALSE:
                    return False
            return value
        return to_bool
    if name in ("Date", "Date32"):
        def to_day(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.date().isoformat()
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, str):
                text = value.strip()
                return text[:10] if len(text) > 10 and is_iso(text) else text   # the calendar day as written
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                try:
                    return to_datetime(value).date().isoformat()   # epoch numbers
                except TimeError as exc:
                    raise BadValue(str(exc)) from None
            return value
        return to_day
    if name == "Decimal":
        scale = base.args[1]
        step = Decimal(1).scaleb(-scale)

        def to_decimal(value: Any) -> Any:
            if isinstance(value, bool) or isinstance(value, (dict, list)):
                raise BadValue(f"{_short(value)} is not a decimal number")
            try:
                number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
                if not number.is_finite():
                    raise BadValue(f"{_short(value)} is not a finite number")
                exact = number.quantize(step)
            except (InvalidOperation, ValueError):
                raise BadValue(f"{_short(value)} is not a decimal number") from None
            if exact != number:
                raise BadValue(f"{_short(value)} has more than {scale} decimal places")
            return format(exact, "f")
        return to_decimal
    if name in ("Array", "Map", "JSON"):
        inner = _prepare_for(base.args[-1]) if name != "JSON" else None

        def to_nested(value: Any) -> Any:
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    if name == "JSON":
                        return value
                    raise BadValue(f"{_short(value)} is not a JSON {'array' if name == 'Array' else 'object'}") \
                        from None
            if hasattr(value, "tolist"):
                value = value.tolist()
            if isinstance(value, tuple):
                value = list(value)
            if name == "Map" and isinstance(value, list):   # Parquet maps arrive as [(k, v), ...]
                try:
                    value = dict(value)
                except (TypeError, ValueError):
                    raise BadValue(f"{_short(value)} is not an object") from None
            if inner is not None:
                if isinstance(value, list):
                    value = [None if v is None else inner(v) for v in value]
                elif isinstance(value, dict):
                    value = {k: None if v is None else inner(v) for k, v in value.items()}
            return value
        return to_nested
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def converter_for(type_name: str, column: str = "", json_text: bool = False) -> Callable[[Any], Any]:
    """One value checked as an import would check it: the value :func:`convert_column` stores, or RowError.

    For single values (a cell in a report, a test); rows are loaded in column batches by :class:`RowSink`.
    """
    node = _node(type_name)
    nullable = node.nullable if node is not None else is_nullable(type_name)
    prepare = _prepare_for(node) if node is not None else None
    names = _enum_names(type_name) if node is None else None

    def convert(value: Any) -> Any:
        if is_missing(value):
            if nullable:
                return None
            raise RowError(column, "missing_required", _missing_message(column, type_name))
        if node is None:
            text = _as_text(value)
            if names is not None and text not in names:  # as _carried_as_text refuses it in an import
                raise RowError(column, "not_allowed", f"{column}: {text!r} is not one of {sorted(names)}")
            return text
        try:
            return coerce(node, prepare(value) if prepare else value, json_text)
        except BadValue as exc:
            raise RowError(column, "type_mismatch", f"{column}: {exc}") from None
        except (TypeError, ValueError, OverflowError) as exc:
            raise RowError(column, "type_mismatch", f"{column}: {_short(value)} does not fit {type_name}: {exc}") \
                from None
    return convert


def _missing_message(column: str, type_name: str) -> str:
    return (f"missing field {column}: it is empty or absent, and the column ({type_name}) is not Nullable and has "
            "no default.")


def is_missing(value: Any) -> bool:
    """None, NaN and pandas' missing markers count as NULL."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


# ---- the sink: gather rows into column batches, convert, write through the one write path ---------------


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


@dataclass
class _Column:
    name: str
    type_name: str
    node: TypeNode | None       # None: outside the catalogue, carried as text for ClickHouse to check
    nullable: bool
    defaulted: bool             # a missing value is left to the column's DEFAULT in ClickHouse
    json_text: bool
    prepare: Prepare | None


class RowSink:
    """Rows for one table from one origin (an owner's file, a dump's table): convert, batch, insert, quarantine.

    ``client`` is the writer (anything with ``insert_arrow``: a worker's own clickhouse-connect handle) or None
    for ``ch`` itself. ``source`` is the quarantine rows' origin kind ('import', 'dump'). With a
    ``token_prefix`` every insert carries a deduplication token, so loading the same file again (a job resumed
    after a restart) inserts nothing twice on tables with a deduplication window.
    """

    def __init__(self, ch: Any, database: str, table: str, columns: list[tuple[str, str]], *,
                 source: str, source_id: str, origin: str, batch_rows: int = 5000, client: Any = None,
                 token_prefix: str | None = None, json_columns: set[str] | frozenset[str] = frozenset()) -> None:
        self.ch, self.database, self.table = ch, database, table
        self.names = [n for n, _ in columns]
        defaulted = _default_columns(ch, database, table)
        self.columns: list[_Column] = []
        for name, type_name in columns:
            node = _node(type_name)
            self.columns.append(_Column(name, type_name, node,
                                        node.nullable if node is not None else is_nullable(type_name),
                                        name in defaulted, name in json_columns,
                                        _prepare_for(node) if node is not None else None))
        self.source_id, self.origin = source_id, origin
        self.target = Target.of_import(database, table, source_id, origin, source)
        self.batch_rows = batch_rows
        self.writer: Writer = client if client is not None else ch
        self.token_prefix = token_prefix
        self.rows: list[list[Any]] = []
        self.raws: list[str] = []
        self.indexes: list[int] = []
        self.bad: list[Problem] = []
        self.counts = SinkCounts()
        self._quarantine_ready = False
        self._batches = 0
        self._bad_writes = 0

    # -- taking rows

    def add(self, values: dict[str, Any] | list[Any], raw: str, index: int) -> None:
        """One row, by column name (missing keys = NULL) or in column order."""
        if isinstance(values, dict):
            row = [values.get(n) for n in self.names]
        elif len(values) != len(self.names):
            self.reject(QuarantineRow(raw, "type_mismatch", f"The row has {len(values)} values; the table has "
                                                            f"{len(self.names)} columns.", "", index))
            return
        else:
            row = list(values)
        self._take(row, raw, index)

    def add_built(self, build: Callable[[], list[Any]], raw: str, index: int) -> None:
        """One row made by ``build`` (in column order); a RowError it raises quarantines the row."""
        try:
            row = build()
        except RowError as exc:
            self.reject(QuarantineRow(raw, exc.error_type, exc.message, exc.column, index))
            return
        self._take(row, raw, index)

    def _take(self, row: list[Any], raw: str, index: int) -> None:
        self.rows.append(row)
        self.raws.append(raw)
        self.indexes.append(index)
        if len(self.rows) >= self.batch_rows:
            self.flush()

    def add_text_columns(self, texts: list[pa.Array | None], raw_of: Callable[[int], str],
                         indexes: Sequence[int]) -> None:
        """A batch of rows as text columns (a CSV block), in column order; None = the file lacks the column.

        Nulls are missing values. Converted column by column in Arrow; only columns with a bad value are
        looked at value by value.
        """
        self.flush()
        n = len(indexes)
        arrays: list[Any] = []
        bad: dict[int, tuple[int, str, str, str]] = {}
        missing: list[Any] = []
        for j, col in enumerate(self.columns):
            text = texts[j]
            if text is None:
                text = pa.nulls(n, pa.string())
            missing.append(text.is_null().to_pylist() if text.null_count else None)
            if col.node is None:
                arrays.append(_carried_as_text(col, text.to_pylist(), bad, j) if _enum_names(col.type_name) else text)
                continue
            if col.prepare is not None and col.node.base().name != "Bool" and text.null_count < n:
                converted = _convert_values(col, text.to_pylist(), bad, j)
            else:  # Bool: text words are read in Arrow (convert_text_column)
                result = convert_text_column(col.node, text, col.json_text)
                for i, why in result.errors.items():
                    bad.setdefault(i, (j, "type_mismatch", f"{col.name}: {why}", col.name))
                converted = result.array
            arrays.append(converted)
        self._write(arrays, bad, missing, n, lambda i: (raw_of(i), indexes[i]))

    def reject(self, row: QuarantineRow) -> None:
        self._reject(Problem(row.raw.encode("utf-8", "replace"), "", row.sub_index, "", 0, row.error_type,
                             row.error_message, row.column_name, self._record_id(row.sub_index)))
        if len(self.bad) >= self.batch_rows:
            self._write_bad_alone()

    def _reject(self, problem: Problem) -> None:
        self.bad.append(problem)
        self.counts.quarantined += 1
        self.counts.errors_by_type[problem.error_type] = self.counts.errors_by_type.get(problem.error_type, 0) + 1

    def _write_bad_alone(self) -> None:
        """Rejected rows written between batches (a file of unreadable lines is not kept in memory)."""
        self._bad_writes += 1
        self._write_bad(f"{self.token_prefix}:r{self._bad_writes}" if self.token_prefix else None)

    def _record_id(self, index: int) -> str:
        return f"{self.source_id}:{self.origin}:{index}"

    # -- writing

    def flush(self) -> None:
        """Convert and insert the gathered rows; write the rows rejected so far to quarantine."""
        if self.rows:
            rows, raws, indexes = self.rows, self.raws, self.indexes
            self.rows, self.raws, self.indexes = [], [], []
            arrays: list[Any] = []
            bad: dict[int, tuple[int, str, str, str]] = {}
            missing: list[Any] = []
            for j, col in enumerate(self.columns):
                values = [None if is_missing(r[j]) else r[j] for r in rows]
                missing.append([v is None for v in values] if any(v is None for v in values) else None)
                arrays.append(_convert_values(col, values, bad, j))
            self._write(arrays, bad, missing, len(rows), lambda i: (raws[i], indexes[i]))
        elif self.bad:
            self._write_bad_alone()

    def _write(self, arrays: list[pa.Array], bad: dict[int, tuple[int, str, str, str]], missing: list[Any], n: int,
               origin_of: Callable[[int], tuple[str, int]]) -> None:
        """Insert a converted batch: rows grouped by the DEFAULT columns they leave to ClickHouse."""
        self._batches += 1
        token = f"{self.token_prefix}:{self._batches}" if self.token_prefix else None
        groups: dict[tuple[int, ...], list[int]] = {}
        omitted_of: dict[int, list[int]] = {}
        for j, col in enumerate(self.columns):
            if missing[j] is None or col.nullable:
                continue
            for i, absent in enumerate(missing[j]):
                if not absent or (i in bad and bad[i][0] <= j):   # a row's reason is its first failing column
                    continue
                if col.defaulted:
                    omitted_of.setdefault(i, []).append(j)
                else:
                    bad[i] = (j, "missing_required", _missing_message(col.name, col.type_name), col.name)
        for i in bad:
            omitted_of.pop(i, None)
        for i in sorted(bad):
            _, error_type, message, column = bad[i]
            raw, index = origin_of(i)
            self._reject(Problem(raw.encode("utf-8", "replace"), "", index, "", 0, error_type, message, column,
                                 self._record_id(index)))
        if not omitted_of:
            groups[()] = [i for i in range(n) if i not in bad] if bad else []
            whole = not bad
        else:
            whole = False
            for i in range(n):
                if i not in bad:
                    groups.setdefault(tuple(omitted_of.get(i, ())), []).append(i)

        def problem(i: int) -> Problem:
            raw, index = origin_of(i)
            return Problem(raw.encode("utf-8", "replace"), "", index, "", 0, "", "", "", self._record_id(index))

        for omitted, rows in groups.items():
            keep = [j for j in range(len(self.columns)) if j not in omitted]
            if whole:
                table = pa.Table.from_arrays(arrays, names=self.names)
                origins = RowOrigins(problem, None)
            elif not rows:
                continue
            else:
                take = pa.array(rows, type=pa.int64())
                table = pa.Table.from_arrays([arrays[j].take(take) for j in keep], names=[self.names[j] for j in keep])
                origins = RowOrigins(problem, rows)
            group_token = token and (f"{token}:d{'-'.join(map(str, omitted))}" if omitted else token)
            inserted, refused = insert_built(self.writer, self.target, Built(table, [], origins), group_token)
            self.counts.inserted += inserted
            for p in refused:
                self._reject(p)
        self._write_bad(token)

    def _write_bad(self, token: str | None) -> None:
        if not self.bad:
            return
        if not self._quarantine_ready:
            ensure_quarantine(self.ch, self.database, self.table)
            self._quarantine_ready = True
        problems, self.bad = self.bad, []
        try:
            insert_quarantine(self.writer, self.target, "", problems, token)
        except Exception as exc:  # noqa: BLE001
            detail = exc.message if isinstance(exc, HeliosError) else str(exc)[:300]
            raise QueryError(f"Could not write {len(problems)} rejected rows to "
                             f"{self.database}.{quarantine_name(self.table)}: {detail}",
                             "Check that the quarantine table has the standard layout.") from exc


def _enum_names(type_name: str) -> set[str] | None:
    """An Enum column's names (None for other types)."""
    head, args = unwrap(type_name)
    while head in ("Nullable", "LowCardinality") and args:
        head, args = unwrap(args[0])
    if not head.startswith("Enum"):
        return None
    return {re.sub(r"^'(.*)'\s*(=.*)?$", r"\1", a.strip()).replace("\\'", "'") for a in args}


def _carried_as_text(col: _Column, values: list[Any], bad: dict[int, tuple[int, str, str, str]], j: int) -> pa.Array:
    """A type outside the catalogue travels as text for ClickHouse to parse; an Enum's names are checked here."""
    texts = [None if v is None else _as_text(v) for v in values]
    names = _enum_names(col.type_name)
    if names is not None:
        for i, text in enumerate(texts):
            if text is not None and text not in names:
                bad.setdefault(i, (j, "not_allowed", f"{col.name}: {text!r} is not one of {sorted(names)}", col.name))
    return pa.array(texts, type=pa.string())


def _convert_values(col: _Column, values: list[Any], bad: dict[int, tuple[int, str, str, str]], j: int) -> pa.Array:
    """One column of Python values (None = missing) → its Arrow array; bad values noted in ``bad``."""
    if col.node is None:
        return _carried_as_text(col, values, bad, j)
    if col.prepare is not None:
        prepared: list[Any] = []
        for i, value in enumerate(values):
            if value is None:
                prepared.append(None)
                continue
            try:
                prepared.append(col.prepare(value))
            except BadValue as exc:
                bad.setdefault(i, (j, "type_mismatch", f"{col.name}: {exc}", col.name))
                prepared.append(None)
        values = prepared
    result = convert_column(col.node, values, json_text=col.json_text)
    for i, why in result.errors.items():
        bad.setdefault(i, (j, "type_mismatch", f"{col.name}: {why}", col.name))
    return result.array


def add_csv_file(sink: RowSink, path: Any, sources: list[str | None], text_columns: set[str],
                 on_rows: Callable[[int], None] | None = None) -> int:
    """Read a CSV file (a header row, then rows) in blocks into ``sink``; returns the number of rows read.

    ``sources[j]`` is the header field feeding the sink's column ``j`` (None: the file lacks it). CSV cannot
    tell an empty string from a missing value: empty is NULL except in ``text_columns``. A row with another
    number of fields than the header goes to quarantine (``decode_error``). Rows are numbered from 1 after
    the header, blank lines not counted.
    """
    import csv
    import io

    import pyarrow.csv as pcsv

    with open(path, encoding="utf-8-sig", errors="strict", newline="") as fh:
        header = [h.strip() for h in next(csv.reader(fh), [])]
        sample = fh.read(1 << 16)
    row_bytes = max(16, len(sample.encode()) // max(1, sample.count("\n")))
    names = [f"c{i}" for i in range(len(header))]
    position = {name: i for i, name in reversed(list(enumerate(header)))}   # the first of repeated names
    wanted = [position.get(source) if source is not None else None for source in sources]
    invalid: list[tuple[int, str, str]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((int(row.number or 0) - 1, row.text or "",
                        f"the row has {row.actual_columns} fields; the header has {row.expected_columns}"))
        return "skip"

    reader = pcsv.open_csv(
        path, read_options=pcsv.ReadOptions(column_names=names, skip_rows=1, use_threads=False,
                                            block_size=max(1 << 20, row_bytes * sink.batch_rows)),
        parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
        convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                                            quoted_strings_can_be_null=False, null_values=[]))
    number, rows, done = 0, 0, 0
    taken: set[int] = set()
    held: list[pa.RecordBatch] = []   # rows read but not yet a whole batch (blocks do not fall on batch edges)

    def send(part: pa.RecordBatch) -> None:
        nonlocal number, rows
        indexes: Sequence[int]
        if not taken or max(taken) <= number:
            indexes = range(number + 1, number + 1 + part.num_rows)
            number += part.num_rows
        else:
            indexes = []
            for _ in range(part.num_rows):
                number += 1
                while number in taken:
                    number += 1
                indexes.append(number)
        texts: list[pa.Array | None] = []
        for j, k in enumerate(wanted):
            if k is None:
                texts.append(None)
                continue
            column = part.column(k)
            if sink.columns[j].name not in text_columns:
                column = _empty_as_null(column)
            texts.append(column)

        def raw_of(i: int) -> str:
            out = io.StringIO()
            csv.writer(out, lineterminator="").writerow([part.column(k)[i].as_py() for k in range(len(names))])
            return out.getvalue()
        sink.add_text_columns(texts, raw_of, indexes)
        rows += part.num_rows
        if on_rows:
            on_rows(rows)

    def take(count: int) -> pa.RecordBatch:
        table = pa.Table.from_batches(held).combine_chunks()
        held.clear()
        if table.num_rows > count:
            held.extend(table.slice(count).to_batches())
        return table.slice(0, count).to_batches()[0] if count else table.to_batches()[0]

    try:
        for batch in reader:
            # bad rows reported while this block was read keep the numbers they had in the file
            for bad_number, text, why in invalid[done:]:
                sink.reject(QuarantineRow(text, "decode_error", why, "", bad_number))
                taken.add(bad_number)
            rows += len(invalid) - done
            done = len(invalid)
            if batch.num_rows:
                held.append(batch)
            while sum(b.num_rows for b in held) >= sink.batch_rows:
                send(take(sink.batch_rows))
        if held:
            send(take(0))
    except pa.ArrowInvalid as exc:
        raise ValueError(f"the CSV file could not be read: {str(exc)[:200]}") from exc
    for bad_number, text, why in invalid[done:]:
        sink.reject(QuarantineRow(text, "decode_error", why, "", bad_number))
    rows += len(invalid) - done
    return rows


def _empty_as_null(column: pa.Array) -> pa.Array:
    """Empty strings as nulls."""
    import pyarrow.compute as pc
    empty = pc.equal(pc.binary_length(column), 0)
    if not pc.any(empty).as_py():
        return column
    return pc.if_else(empty, pa.scalar(None, pa.string()), column)


NOT_INSERTED = ("MATERIALIZED", "ALIAS", "EPHEMERAL")   # default kinds of columns an INSERT does not name


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
