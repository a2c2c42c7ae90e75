"""ClickHouse types, table options and CREATE TABLE generation.

Nothing the user types is pasted into SQL:

* names are checked by :mod:`helios_core.identifiers` and always backtick-quoted;
* types are parsed by a small grammar covering the catalogue (:mod:`helios_core.chtypes`) and
  re-rendered canonically, then checked by ClickHouse itself
  (``defaultValueOfTypeName`` with the type as a bound parameter);
* partition keys and TTLs are structured choices (a column plus a function or
  interval unit from an allow-list), never free SQL;
* column defaults are literal values: ClickHouse checks that they convert to
  the column's type (bound parameters), and they appear in the DDL only as an
  escaped string literal inside ``CAST(… AS type)``.

The quarantine table ``<table>_quarantine`` receives every event Helios could
not put into the table. Its layout, shared by the ingester and import jobs:

=================  ==============================  ===========================================
column             type                            meaning
=================  ==============================  ===========================================
received_at        DateTime64(3, 'UTC')            when Helios quarantined the row
source             LowCardinality(String)          ``kinesis`` or ``import`` (or another feeder)
source_id          String                          the source's id, or the import job's id
origin             String                          free text naming where it came from: the
                                                   stream name for Kinesis, ``owner/file`` for
                                                   imports (never empty, never NULL)
stream             String                          Kinesis stream name ('' for imports)
shard_id           String                          Kinesis shard ('' for imports)
sequence_number    String                          Kinesis sequence number ('' for imports)
sub_index          UInt32                          event index inside a multi-event record /
                                                   row number inside an imported file
partition_key      String                          Kinesis partition key ('' for imports)
arrival_time       DateTime64(3, 'UTC')            when the record reached the stream (0 if unknown)
error_type         LowCardinality(String)          a short machine name, see ``ERROR_TYPES``
error_message      String                          what was wrong, for a person
column_name        String                          the failing column ('' when not one column)
raw                String                          the payload exactly as received (bytes)
record_id          String                          a unique id for the row: re-processing and
                                                   deduplication use it
=================  ==============================  ===========================================

All quarantine columns are non-Nullable: feeders put ``''`` / ``0`` when a field
does not apply.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from helios_core.chtypes import INTEGER_TYPES, TIME_TYPES, TypeNode, normalize_type, parse_type
from helios_core.chtypes import MAX_TYPE_DEPTH as MAX_TYPE_DEPTH  # re-exported for callers
from helios_core.chtypes import base_type as base_type
from helios_core.errors import QueryError, ValidationError
from helios_core.identifiers import MAX_LENGTH, check_identifier, qualified, quote_ident
from helios_core.metadata import METADATA_DB
from helios_core.schema import FORMATS, PREFERRED_TIME, TIME_UNITS, VIRTUAL_SOURCES, ColumnSpec

if TYPE_CHECKING:
    from helios_core.clickhouse import ClickHouse

# ---- the type catalogue (the grammar itself lives in helios_core.chtypes) ------------------------

# A handy list for select boxes; any type the grammar accepts is allowed, not just these.
_COMMON = ["String", "LowCardinality(String)", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32",
           "UInt64", "Float32", "Float64", "Decimal(18, 2)", "Decimal(38, 6)", "Bool", "UUID", "IPv4", "IPv6",
           "Date", "Date32", "DateTime", "DateTime64(3, 'UTC')", "DateTime64(6, 'UTC')", "FixedString(16)", "JSON",
           "Array(String)", "Array(Int64)", "Array(Float64)", "Map(String, String)", "Map(String, Int64)",
           "Map(String, Float64)"]


def type_catalogue(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Types offered in the wizard's select: common ones, their Nullable forms, and ``extra``."""
    out = list(_COMMON)
    for t in _COMMON:
        if t.startswith(("Array", "Map", "JSON")):
            continue
        if t.startswith("LowCardinality"):
            out.append("LowCardinality(Nullable(String))")
        else:
            out.append(f"Nullable({t})")
    for t in extra:
        try:
            canonical = normalize_type(t)
        except ValidationError:
            continue
        if canonical not in out:
            out.append(canonical)
    return out


_checked_types: dict[str, str] = {}


def clickhouse_type_problem(ch: ClickHouse, type_text: str) -> str:
    """'' when ClickHouse accepts the type, else its reason. The type travels as a bound parameter."""
    if type_text in _checked_types:
        return _checked_types[type_text]
    try:
        ch.internal_query("SELECT toTypeName(defaultValueOfTypeName({t:String})) AS t", {"t": type_text})
        problem = ""
    except QueryError as exc:
        problem = f"ClickHouse does not accept the type {type_text!r}: {exc.message}"
    _checked_types[type_text] = problem
    return problem


def default_literal_problem(ch: ClickHouse, value: str, type_text: str) -> str:
    """'' when ``value`` fits ``type_text`` exactly, else why.

    A plain CAST wraps out-of-range numbers (``CAST('300' AS UInt8)`` is 44), so three checks: ClickHouse
    parses it (CAST), ClickHouse converts it without loss (``accurateCastOrNull`` on the scalar type), and
    the ingester's own conversion, which fills the default into events, accepts it (ranges inside arrays,
    Date bounds, Decimal digits).
    """
    try:
        ch.internal_query("SELECT toString(CAST({v:String}, {t:String})) AS v", {"v": value, "t": type_text})
    except QueryError as exc:
        return f"The default {value!r} does not fit the type {type_text}: {exc.message}"
    try:
        node = parse_type(type_text)
    except ValidationError as exc:
        return exc.message
    base = node.base()
    if base.name not in ("Array", "Map", "JSON"):
        try:
            rows = ch.internal_query("SELECT accurateCastOrNull({v:String}, {t:String}) IS NULL AS bad",
                                     {"v": value, "t": base.render()})
        except QueryError:
            rows = []
        if rows and rows[0]["bad"]:
            return f"The default {value!r} does not fit the type {type_text}: it is out of range or not a {base.name}."
    from helios_core.ingest.convert import BadValue, coerce  # the ingester imports this module

    literal: Any = value
    if base.name in ("Array", "Map", "JSON"):
        try:
            literal = json.loads(value)
        except ValueError:
            return f"The default {value!r} for {type_text} must be JSON (for example [] or {{}})."
    try:
        coerce(node, literal)
    except (BadValue, TypeError, ValueError, OverflowError) as exc:
        return f"The default {value!r} does not fit the type {type_text}: {exc}."
    return ""


def sql_string(value: str) -> str:
    """A ClickHouse string literal: backslashes and quotes escaped, so it cannot end early."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---- table options --------------------------------------------------------------------------------

PARTITION_FUNCTIONS = {
    "": "the value itself (for a low-cardinality column)",
    "toYYYYMM": "by month",
    "toYYYYMMDD": "by day",
    "toMonday": "by week",
    "toYear": "by year",
}
TTL_UNITS = ("HOUR", "DAY", "WEEK", "MONTH", "YEAR")
ENGINES = ("MergeTree", "ReplacingMergeTree")
DEDUP_WINDOW = 10_000
# Databases no table may be created in: ClickHouse's own (names compared without case) and Helios's records.
PROTECTED_DATABASES = frozenset({"system", "information_schema", METADATA_DB})
QUARANTINE_SUFFIX = "_quarantine"
ERROR_TYPES = {
    "decode_error": "the payload is not JSON / gzip JSON / JSON lines",
    "not_an_object": "the event is JSON but not an object",
    "missing_required": "a field is missing or null, and its column is required or not Nullable without a default",
    "type_mismatch": "a value does not fit the column's type",
    "not_allowed": "a value is not in the column's allowed values",
    "bad_format": "a value does not match the column's format (uuid, iso_time, …)",
    "too_large": "the record is larger than Helios accepts",
    "rejected_by_clickhouse": "ClickHouse refused the row on insert",
    "import_error": "an import job could not load the row",
}


@dataclass
class PartitionSpec:
    column: str
    function: str = ""   # a key of PARTITION_FUNCTIONS


@dataclass
class TtlSpec:
    column: str
    amount: int
    unit: str = "DAY"     # one of TTL_UNITS


@dataclass
class TableOptions:
    database: str
    table: str
    order_by: list[str] = field(default_factory=list)
    engine: str = "MergeTree"
    version_column: str = ""                # ReplacingMergeTree only
    partition: PartitionSpec | None = None
    ttl: TtlSpec | None = None
    create_database: bool = False           # the database is new
    dedup_window: int = DEDUP_WINDOW
    cluster: str = ""                       # ON CLUSTER with replicated engines (helios_core.cluster)
    distributed: bool = False               # with a cluster: a Distributed table over <table>_local

    @property
    def quarantine_table(self) -> str:
        return quarantine_name(self.table)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableOptions:
        data = dict(data)
        if isinstance(data.get("partition"), dict):
            data["partition"] = PartitionSpec(**data["partition"])
        if isinstance(data.get("ttl"), dict):
            data["ttl"] = TtlSpec(**data["ttl"])
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def default_partition(columns: list[ColumnSpec], time_column: str | None = None) -> PartitionSpec | None:
    """Monthly partitions on the time column (``time_column`` when it fits, else the first non-Nullable date or
    time column); None when there is none. Never another column: partitioning by an id makes one partition
    per event."""
    def fits(col: ColumnSpec) -> bool:
        try:
            node = parse_type(col.type)
        except ValidationError:
            return False
        return not node.nullable and node.base().name in TIME_TYPES

    candidates = [c for c in columns if fits(c)]
    chosen = next((c for c in candidates if c.name == time_column), candidates[0] if candidates else None)
    return PartitionSpec(chosen.name, "toYYYYMM") if chosen is not None else None


def quarantine_name(table: str) -> str:
    return f"{table}{QUARANTINE_SUFFIX}"


# ---- validation -----------------------------------------------------------------------------------


def check_columns(columns: list[ColumnSpec]) -> list[str]:
    """Problems with the columns that need no database: names, types, duplicates, rules."""
    problems: list[str] = []
    if not columns:
        return ["The table has no columns; keep or add at least one."]
    seen: set[str] = set()
    for col in columns:
        problems += check_identifier(col.name, "column")
        if col.name.lower() in seen:
            problems.append(f"The column name {col.name!r} is used twice (names are compared without case).")
        seen.add(col.name.lower())
        try:
            node = parse_type(col.type)
        except ValidationError as exc:
            problems.append(f"Column {col.name!r}: {exc.message}")
            continue
        if col.virtual:
            if col.virtual not in VIRTUAL_SOURCES:
                problems.append(f"Column {col.name!r}: unknown virtual source {col.virtual!r}.")
        elif not col.json_path:
            problems.append(f"Column {col.name!r} reads no JSON path; set one (for example {col.name}).")
        if col.format not in FORMATS:
            problems.append(f"Column {col.name!r}: unknown format {col.format!r}.")
        if col.allowed_values and node.base().name not in ("String", "FixedString") + INTEGER_TYPES:
            problems.append(f"Column {col.name!r}: allowed values suit text or whole-number columns, "
                            f"not {node.render()}.")
        if col.required and col.default not in (None, ""):
            problems.append(f"Column {col.name!r} is required and also has a default; choose one.")
        if col.format == "json" and node.base().name not in ("String", "FixedString"):
            problems.append(f"Column {col.name!r}: the json format declares a String column of JSON text, "
                            f"not {node.render()} (a JSON column keeps objects already).")
        if col.time_unit not in TIME_UNITS:
            problems.append(f"Column {col.name!r}: unknown time unit {col.time_unit!r}; use one of "
                            f"{', '.join(u for u in TIME_UNITS if u)} (or nothing to decide by magnitude).")
    return problems


def time_column(columns: list[ColumnSpec]) -> ColumnSpec | None:
    """The schema's time column: a non-Nullable date/time column, by the names inference prefers."""
    candidates = []
    for col in columns:
        try:
            node = parse_type(col.type)
        except ValidationError:
            continue
        if not node.nullable and node.base().name in TIME_TYPES and not col.virtual:
            candidates.append(col)
    if not candidates:
        return None

    def score(col: ColumnSpec) -> tuple:
        name = col.name.lower()
        preferred = PREFERRED_TIME.index(name) if name in PREFERRED_TIME else len(PREFERRED_TIME)
        return (not parse_type(col.type).base().name.startswith("DateTime"), preferred, columns.index(col))

    return min(candidates, key=score)


def sorting_key(options: TableOptions, columns: list[ColumnSpec]) -> tuple[list[str], str]:
    """The sorting key the table gets and why: the one chosen, else the schema's time column, else none
    (``ORDER BY tuple()``: rows kept in insertion order)."""
    if options.order_by:
        return list(options.order_by), "as chosen"
    col = time_column(columns)
    if col is not None:
        return [col.name], f"no sorting key was given: the schema's time column {col.name} is used"
    return [], "no sorting key was given and the schema has no time column: ORDER BY tuple() (insertion order)"


def check_options(options: TableOptions, columns: list[ColumnSpec]) -> list[str]:
    problems = check_identifier(options.database, "database") + check_identifier(options.table, "table")
    if len(options.table) + len(QUARANTINE_SUFFIX) > MAX_LENGTH and not check_identifier(options.table, "table"):
        problems.append("The table name is too long to add the quarantine suffix; shorten it.")
    types = {c.name: c.type for c in columns}
    nodes: dict[str, TypeNode] = {}
    for name, text in types.items():
        try:
            nodes[name] = parse_type(text)
        except ValidationError:
            pass
    if options.database.lower() in PROTECTED_DATABASES:
        problems.append(f"The database {options.database!r} belongs to "
                        f"{'Helios (its own records)' if options.database.lower() == METADATA_DB else 'ClickHouse'}; "
                        "tables cannot be created there. Choose another database.")
    for name in options.order_by:
        if name not in types:
            problems.append(f"The sorting key uses {name!r}, which is not a column of the table.")
        elif name in nodes and nodes[name].base().name in ("JSON", "Map", "Array"):
            problems.append(f"The sorting key cannot use {name!r} of type {nodes[name].render()}.")
    if len(set(options.order_by)) != len(options.order_by):
        problems.append("The sorting key lists a column twice.")
    if options.engine not in ENGINES:
        problems.append(f"Unknown engine {options.engine!r}; choose one of {', '.join(ENGINES)}.")
    if options.engine == "ReplacingMergeTree" and options.version_column:
        node = nodes.get(options.version_column)
        if options.version_column not in types:
            problems.append(f"The version column {options.version_column!r} is not a column of the table.")
        elif node and (node.nullable or not (node.name.startswith("UInt") or node.name in TIME_TYPES)):
            problems.append(f"The version column {options.version_column!r} must be a non-Nullable UInt, Date or "
                            f"DateTime column, not {node.render()}.")
    if options.partition:
        p = options.partition
        if p.column not in types:
            problems.append(f"The partition key uses {p.column!r}, which is not a column of the table.")
        elif p.function not in PARTITION_FUNCTIONS:
            problems.append(f"Unknown partition function {p.function!r}.")
        elif p.column in nodes:
            base = nodes[p.column].base().name
            if p.function and base not in TIME_TYPES:
                problems.append(f"Partitioning {p.column!r} {PARTITION_FUNCTIONS[p.function]} needs a date or time "
                                "column.")
            if base in ("JSON", "Map", "Array", "Float32", "Float64"):
                problems.append(f"The partition key cannot use {p.column!r} of type {base}.")
    if options.ttl:
        t = options.ttl
        if t.column not in types:
            problems.append(f"The TTL uses {t.column!r}, which is not a column of the table.")
        elif t.column in nodes and (nodes[t.column].nullable or nodes[t.column].base().name not in TIME_TYPES):
            problems.append(f"The TTL column {t.column!r} must be a non-Nullable date or time column.")
        if t.unit not in TTL_UNITS:
            problems.append(f"Unknown TTL unit {t.unit!r}; choose one of {', '.join(TTL_UNITS)}.")
        if not isinstance(t.amount, int) or isinstance(t.amount, bool) or not 1 <= t.amount <= 100_000:
            problems.append("The TTL amount must be a whole number between 1 and 100000.")
    if not isinstance(options.dedup_window, int) or options.dedup_window <= 0:
        problems.append("The deduplication window must be a positive whole number.")
    if options.cluster:
        problems += check_identifier(options.cluster, "cluster")
    elif options.distributed:
        problems.append("A Distributed table needs a cluster name.")
    return problems


def check_with_clickhouse(ch: ClickHouse, options: TableOptions, columns: list[ColumnSpec]) -> list[str]:
    """Problems only the database can tell: types and defaults it refuses, names already taken."""
    from helios_core.clickhouse import table_exists
    problems: list[str] = []
    for col in columns:
        try:
            canonical = normalize_type(col.type)
        except ValidationError:
            continue
        reason = clickhouse_type_problem(ch, canonical)
        if reason:
            problems.append(f"Column {col.name!r}: {reason}")
        elif col.default not in (None, ""):
            reason = default_literal_problem(ch, str(col.default), canonical)
            if reason:
                problems.append(f"Column {col.name!r}: {reason}")
    if not check_identifier(options.database, "database") and not check_identifier(options.table, "table"):
        exists = database_exists(ch, options.database)
        if not options.create_database and not exists:  # a "new" one that exists is fine: nothing to create
            problems.append(f"The database {options.database!r} does not exist; choose 'new database' to create it.")
        if exists:
            for name in (options.table, options.quarantine_table):
                if table_exists(ch, options.database, name):
                    problems.append(f"The table {options.database}.{name} already exists; Helios will not "
                                    "overwrite it. Choose another table name.")
    return problems


def database_exists(ch: ClickHouse, database: str) -> bool:
    rows = ch.internal_query("SELECT count() AS n FROM system.databases WHERE name = {d:String}", {"d": database})
    return bool(rows[0]["n"])


def validate_table(ch: ClickHouse | None, options: TableOptions, columns: list[ColumnSpec]) -> list[str]:
    """Every problem with this table definition (empty list when it can be created)."""
    problems = check_columns(columns) + check_options(options, columns)
    if ch is not None:
        problems += check_with_clickhouse(ch, options, columns)
    return problems


# ---- DDL ------------------------------------------------------------------------------------------


def _column_sql(col: ColumnSpec) -> str:
    type_sql = normalize_type(col.type)
    line = f"    {quote_ident(col.name)} {type_sql}"
    if col.default not in (None, ""):
        line += f" DEFAULT CAST({sql_string(str(col.default))} AS {type_sql})"
    return line


def _partition_sql(p: PartitionSpec) -> str:
    return f"{p.function}({quote_ident(p.column)})" if p.function else quote_ident(p.column)


def _ttl_sql(t: TtlSpec, columns: list[ColumnSpec]) -> str:
    type_name = next(parse_type(c.type).base().name for c in columns if c.name == t.column)
    expr = quote_ident(t.column)
    if type_name in ("DateTime64", "Date32"):
        expr = f"toDateTime({expr})"
    return f"{expr} + INTERVAL {int(t.amount)} {t.unit}"


def create_table_sql(options: TableOptions, columns: list[ColumnSpec]) -> str:
    """The main table's CREATE TABLE statement (call validate_table first)."""
    problems = check_columns(columns) + check_options(options, columns)
    if problems:
        raise ValidationError(problems[0], "Fix the table definition and try again.", problems=problems)
    body = ",\n".join(_column_sql(c) for c in columns)
    if options.engine == "ReplacingMergeTree":
        engine = f"ReplacingMergeTree({quote_ident(options.version_column)})" if options.version_column \
            else "ReplacingMergeTree"
    else:
        engine = "MergeTree"
    parts = [f"CREATE TABLE {qualified(options.database, options.table)}\n(\n{body}\n)", f"ENGINE = {engine}"]
    if options.partition:
        parts.append(f"PARTITION BY {_partition_sql(options.partition)}")
    order_by, _ = sorting_key(options, columns)
    parts.append(f"ORDER BY ({', '.join(quote_ident(c) for c in order_by)})" if order_by else "ORDER BY tuple()")
    if options.ttl:
        parts.append(f"TTL {_ttl_sql(options.ttl, columns)}")
    settings = [f"non_replicated_deduplication_window = {int(options.dedup_window)}"]
    nullable_keys = [c for c in columns if c.name in order_by and parse_type(c.type).nullable]
    if nullable_keys or (options.partition and any(
            c.name == options.partition.column and parse_type(c.type).nullable for c in columns)):
        settings.append("allow_nullable_key = 1")
    parts.append("SETTINGS " + ", ".join(settings))
    return "\n".join(parts)


QUARANTINE_COLUMNS = [
    ("received_at", "DateTime64(3, 'UTC') DEFAULT now64(3)"),
    ("source", "LowCardinality(String)"),
    ("source_id", "String"),
    ("origin", "String"),
    ("stream", "String"),
    ("shard_id", "String"),
    ("sequence_number", "String"),
    ("sub_index", "UInt32"),
    ("partition_key", "String"),
    ("arrival_time", "DateTime64(3, 'UTC')"),
    ("error_type", "LowCardinality(String)"),
    ("error_message", "String"),
    ("column_name", "String"),
    ("raw", "String"),
    ("record_id", "String"),
]
QUARANTINE_COLUMN_NAMES = [name for name, _ in QUARANTINE_COLUMNS]


def create_quarantine_sql(database: str, table: str, dedup_window: int = DEDUP_WINDOW) -> str:
    """The quarantine table for ``table`` (layout in the module docstring)."""
    body = ",\n".join(f"    {quote_ident(n)} {t}" for n, t in QUARANTINE_COLUMNS)
    return (f"CREATE TABLE {qualified(database, quarantine_name(table))}\n(\n{body}\n)\n"
            "ENGINE = MergeTree\nPARTITION BY toYYYYMM(`received_at`)\nORDER BY (`received_at`, `error_type`)\n"
            f"SETTINGS non_replicated_deduplication_window = {int(dedup_window)}")


def create_database_sql(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {quote_ident(database)}"
