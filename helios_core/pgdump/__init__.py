"""PostgreSQL plain dumps (``pg_dump -F p``) into a new ClickHouse database, without a PostgreSQL server.

Two passes over the dump text:

1. **Plan** — read the DDL: ``CREATE TABLE`` (columns, types, NOT NULL, primary
   keys inline or from ``ALTER TABLE … ADD CONSTRAINT … PRIMARY KEY``),
   ``CREATE TYPE … AS ENUM`` and ``CREATE DOMAIN`` (mapped to their base type),
   and map each PostgreSQL type to a ClickHouse type. Every statement is
   classified: used, ignored for a stated reason (``SET``, ownership, sequences,
   indexes, constraints ClickHouse does not enforce), or *unsupported* (views,
   functions, triggers, …) — unsupported statements are listed in the report,
   never silently dropped.
2. **Load** — stream the ``COPY … FROM stdin`` blocks (text format: ``\\N``
   NULLs, backslash escapes including octal and hex, read in the dump's ``client_encoding``; SQL_ASCII and
   encodings Python cannot read are refused by name) and plain ``INSERT``
   statements through :class:`helios_core.loading.RowSink`: the ingester's column converters,
   batched inserts through the one write path, and rows that do not fit go to ``<table>_quarantine``.

The package's parts: :mod:`~helios_core.pgdump.scanner` (line sources, statements, COPY fields, array literals,
the tokenizer), :mod:`~helios_core.pgdump.typemap` (PostgreSQL → ClickHouse types), :mod:`~helios_core.pgdump.plan`
(pass 1) and :mod:`~helios_core.pgdump.load` (pass 2).
"""

from __future__ import annotations

from helios_core.pgdump.load import (
    DumpReport,
    TableLoad,
    create_tables,
    load_dump,
    prepare_database,
    value_converter,
)
from helios_core.pgdump.plan import DumpPlan, Issue, PgColumn, PgTable, Unsupported, plan_dump
from helios_core.pgdump.scanner import (
    DumpScanner,
    LineSource,
    Statement,
    Token,
    decode_copy_field,
    detect_encoding,
    line_source,
    parse_pg_array,
    pg_codec,
    split_copy_line,
    tokenize,
)
from helios_core.pgdump.typemap import TypeMapping, clickhouse_column_type, map_pg_type

__all__ = [
    "DumpPlan", "DumpReport", "DumpScanner", "Issue", "LineSource", "PgColumn", "PgTable", "Statement",
    "TableLoad", "Token", "TypeMapping", "Unsupported", "clickhouse_column_type", "create_tables",
    "decode_copy_field", "detect_encoding", "line_source", "load_dump", "map_pg_type", "parse_pg_array",
    "pg_codec", "plan_dump", "prepare_database", "split_copy_line", "tokenize", "value_converter",
]
