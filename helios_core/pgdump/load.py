"""Pass 2 over a dump: COPY blocks and INSERT rows through :class:`helios_core.loading.RowSink` into the
tables the plan created; rows that do not fit go to ``<table>_quarantine``."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helios_core.errors import Conflict, ValidationError
from helios_core.identifiers import check_identifier, quote_ident
from helios_core.loading import QuarantineRow, RowError, RowSink
from helios_core.metadata import METADATA_DB
from helios_core.pgdump.plan import DumpPlan, PgColumn, Unsupported, copy_target, parse_insert, plan_dump
from helios_core.pgdump.scanner import (
    DumpScanner,
    LineSource,
    decode_copy_field,
    has_undecodable,
    line_source,
    parse_pg_array,
    show_undecodable,
    split_copy_line,
    tokenize,
)

# ---- values (text form) → what ClickHouse accepts --------------------------------------------------------


def value_converter(col: PgColumn) -> Callable[[str | None], Any]:
    """PostgreSQL's text form of a value → the value :class:`helios_core.loading.RowSink` converts for the column
    (arrays parsed into lists; times PostgreSQL has and ClickHouse has not refused here)."""
    is_time = "DateTime64" in col.ch_type or "Date32" in col.ch_type

    def check_time(text: str) -> None:
        low = text.strip().lower()
        if low in ("infinity", "-infinity") or low.endswith(" bc"):
            raise RowError(col.ch_name, "type_mismatch",
                           f"{col.ch_name}: {text!r} has no ClickHouse equivalent (dates span 1900–2299)")

    if col.array_dims:
        def convert_array(text: str | None) -> Any:
            if text is None:
                return []
            try:
                items = parse_pg_array(text)
            except ValueError as exc:
                raise RowError(col.ch_name, "type_mismatch", f"{col.ch_name}: {exc}") from exc
            if is_time:
                for item in _flatten(items):
                    if item is not None:
                        check_time(item)
            return items
        return convert_array

    def convert(text: str | None) -> Any:
        if text is not None and is_time:
            check_time(text)
        return text
    return convert


def _flatten(items: list[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


# ---- the load (pass 2) ---------------------------------------------------------------------------------


@dataclass
class TableLoad:
    table: str
    source: str
    rows_in_dump: int
    inserted: int = 0
    quarantined: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "source": self.source, "rows_in_dump": self.rows_in_dump,
                "inserted": self.inserted, "quarantined": self.quarantined}


@dataclass
class DumpReport:
    database: str
    tables: list[TableLoad]
    plan: DumpPlan

    @property
    def inserted(self) -> int:
        return sum(t.inserted for t in self.tables)

    @property
    def quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        return {"database": self.database, "tables": [t.to_json() for t in self.tables],
                "inserted": self.inserted, "quarantined": self.quarantined,
                "unsupported": [i.to_json() for i in self.plan.unsupported],
                "ignored": dict(self.plan.ignored), "notes": self.plan.notes}


def prepare_database(ch: Any, database: str, replace: bool = False, append: bool = False) -> None:
    problems = check_identifier(database, "database")
    if problems:
        raise ValidationError(problems[0], "Choose a database name of letters, digits and underscores.",
                              problems=problems)
    if database in ("system", METADATA_DB, "default", "information_schema", "INFORMATION_SCHEMA"):
        raise ValidationError(f"Helios will not load a dump into the {database!r} database.",
                              "Choose a new database name.")
    rows = ch.internal_query("SELECT count() AS n FROM system.tables WHERE database = {d:String}", {"d": database})
    if rows[0]["n"] and not (replace or append):
        raise Conflict(f"The database {database!r} already exists and has tables.",
                       "Choose a new database name, or replace it.")
    if replace:
        ch.execute(f"DROP DATABASE IF EXISTS {quote_ident(database)} SYNC")
    ch.execute(f"CREATE DATABASE IF NOT EXISTS {quote_ident(database)}")


def create_tables(ch: Any, database: str, plan: DumpPlan) -> None:
    """Create each planned table; an existing one (a second upload) is reused if its columns match."""
    from helios_core.clickhouse import table_exists
    from helios_core.loading import table_schema
    for table in plan.tables.values():
        if table_exists(ch, database, table.ch_name):
            existing = [n for n, _ in table_schema(ch, database, table.ch_name)]
            if existing != [c.ch_name for c in table.columns]:
                raise Conflict(f"The table {database}.{table.ch_name} already exists with other columns.",
                               "Load this dump into another database.")
            continue
        ch.execute(table.create_sql(database))


def load_dump(ch: Any, data: str | bytes | Path | LineSource, database: str, *, replace: bool = False,
              append: bool = False, source_id: str = "", origin: str = "dump", source: str = "import",
              client: Any = None, progress: Callable[[str, int], None] | None = None,
              batch_rows: int = 5000, token_prefix: str | None = None) -> DumpReport:
    """Load a ``pg_dump -F p`` dump into ``database`` (new unless ``replace``/``append``)."""
    lines = data if callable(data) else line_source(data)
    plan = plan_dump(lines)
    if not plan.tables:
        raise ValidationError("The dump creates no tables Helios can load.",
                              "Is it a plain-format dump (pg_dump -F p, not -F c)? "
                              + (f"First problem: line {plan.unsupported[0].line}: {plan.unsupported[0].reason}."
                                 if plan.unsupported else ""))
    prepare_database(ch, database, replace=replace, append=append)
    create_tables(ch, database, plan)
    loads = {key: TableLoad(t.ch_name, t.source_name, t.rows_in_dump) for key, t in plan.tables.items()}
    sinks: dict[tuple[str, str], RowSink] = {}
    converters: dict[tuple[str, str], dict[str, Callable[[str | None], Any]]] = {}

    def sink_for(key: tuple[str, str]) -> RowSink:
        if key not in sinks:
            table = plan.tables[key]
            sinks[key] = RowSink(ch, database, table.ch_name, [(c.ch_name, c.ch_type) for c in table.columns],
                                 source=source, source_id=source_id, origin=f"{origin}:{table.source_name}",
                                 batch_rows=batch_rows, client=client,
                                 token_prefix=f"{token_prefix}:{table.ch_name}" if token_prefix else None)
            converters[key] = {c.name: value_converter(c) for c in table.columns}
        return sinks[key]

    def add_row(key: tuple[str, str], cols: list[str], values: list[str | None], raw: str, index: int) -> None:
        sink = sink_for(key)
        table, convert = plan.tables[key], converters[key]
        raw = show_undecodable(raw)  # the quarantine stores text: undecodable bytes as \xNN
        if any(v is not None and has_undecodable(v) for v in values):
            # PostgreSQL would refuse these bytes too; replacing them would load text the source never had.
            sink.reject(_bad_row(raw, index,
                                 f"The row has bytes that are not {plan.encoding_name or 'UTF8'} text (the dump's "
                                 "client_encoding); they are shown as \\xNN."))
            return
        if len(values) != len(cols):
            sink.reject(_bad_row(raw, index, f"The row has {len(values)} fields; COPY lists {len(cols)} columns."))
            return
        given = dict(zip(cols, values, strict=False))
        sink.add_built(lambda: [convert[c.name](given.get(c.name)) for c in table.columns], raw, index)

    scanner = DumpScanner(lines())
    row_index: Counter = Counter()
    for st in scanner.statements():
        if st.kind == "copy":
            try:
                key, cols = copy_target(st.text)
            except (Unsupported, ValueError):
                continue
            if key not in plan.tables:
                continue
            table = plan.tables[key]
            cols = cols or [c.name for c in table.columns]
            unknown = [c for c in cols if c not in {x.name for x in table.columns}]
            for _line_no, text in scanner.copy_rows():
                row_index[key] += 1
                if unknown:
                    sink_for(key).reject(_bad_row(show_undecodable(text), row_index[key],
                                                  f"COPY names unknown columns {unknown}."))
                    continue
                fields = [decode_copy_field(f, plan.encoding) for f in split_copy_line(text)]
                add_row(key, cols, fields, text, row_index[key])
                if progress and row_index[key] % 5000 == 0:
                    progress(table.ch_name, row_index[key])
            if progress:
                progress(table.ch_name, row_index[key])
        elif st.kind == "sql" and re.match(r"^INSERT\s+INTO\s", st.text[:20], re.IGNORECASE):
            try:
                key, cols, rows = parse_insert(tokenize(st.text))
            except (Unsupported, ValueError, IndexError):
                continue  # already reported by the plan
            if key not in plan.tables:
                continue
            cols = cols or [c.name for c in plan.tables[key].columns]
            for values in rows:
                row_index[key] += 1
                add_row(key, cols, values, json.dumps(values, ensure_ascii=False), row_index[key])
    for key, sink in sinks.items():
        sink.flush()
        loads[key].inserted = sink.counts.inserted
        loads[key].quarantined = sink.counts.quarantined
    return DumpReport(database=database, tables=list(loads.values()), plan=plan)


def _bad_row(raw: str, index: int, message: str) -> QuarantineRow:
    return QuarantineRow(raw, "type_mismatch", message, "", index)
