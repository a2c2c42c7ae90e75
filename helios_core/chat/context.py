"""What the assistant knows about the subject of a chat.

The subject is a database (its tables, columns and types) or a saved query
(its result columns, exposed as one table named ``result``). For each table we
also sample a few distinct values of its low-cardinality text columns: the
built-in assistant recognises them in questions ("purchases in EUR") and LLM
providers get them as context. The previous turn's SQL, columns and plan make
follow-ups possible.

Contexts are cached for a short while: building one costs a few queries, and a
chat asks many questions about the same subject.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from helios_core.chat.gate import QUERY_TABLE, GatePolicy, check_subject_sql
from helios_core.chtypes import base_type, describe
from helios_core.clickhouse import SYSTEM_DATABASES, ClickHouse
from helios_core.errors import NotFound, ValidationError
from helios_core.identifiers import RESERVED, quote_ident
from helios_core.metadata import METADATA_DB

MAX_VALUES = 20          # a text column with more distinct values than this is free text, not a category
SAMPLE_ROWS = 200_000
CACHE_SECONDS = 120.0

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sql_name(name: str) -> str:
    """A name as it reads best in generated SQL: bare when safe, backtick-quoted otherwise."""
    return name if _PLAIN.match(name) and name.lower() not in RESERVED else quote_ident(name)


def column_kind(name: str, ctype: str) -> str:
    """time | number | id | category | text | ip | array | other (category is refined by sampling)."""
    t = describe(ctype)
    lname = name.lower()
    if t.temporal:
        return "time"
    if t.base == "UUID" or lname == "id" or lname.endswith("_id") or lname.endswith("_uuid"):
        return "id"
    if t.numeric:
        return "number"
    if t.family == "ip":
        return "ip"
    if t.family in ("enum", "bool") or t.low_cardinality:
        return "category"
    if t.family == "string":
        return "text"
    if t.family == "array":
        return "array"
    return "other"


def _enum_values(ctype: str) -> list[str]:
    return re.findall(r"'((?:[^'\\]|\\.)*)'\s*=", base_type(ctype))


@dataclass
class ColumnInfo:
    name: str
    type: str
    kind: str
    values: list[str] = field(default_factory=list)  # all distinct values, when there are few
    distinct: int | None = None

    @property
    def is_category(self) -> bool:
        return self.kind == "category" and bool(self.values)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "kind": self.kind, "values": self.values}


@dataclass
class SubjectTable:
    name: str   # as people say it: users, result
    ref: str    # as SQL says it: demo.users, result
    columns: list[ColumnInfo]
    key: list[str] = field(default_factory=list)  # sorting key columns
    rows: int = 0

    def column(self, name: str) -> ColumnInfo | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def time_columns(self) -> list[ColumnInfo]:
        # DateTime before Date: an event's time is a better default axis than a signup date.
        cols = [c for c in self.columns if c.kind == "time"]
        return sorted(cols, key=lambda c: 0 if describe(c.type).family == "time" else 1)

    @property
    def is_keyed_by(self) -> str | None:
        """The column that identifies a row, when the table is a dimension table (users by user_id)."""
        singular = self.name[:-1] if self.name.endswith("s") else self.name
        for candidate in (f"{singular}_id", "id"):
            if self.column(candidate) is not None:
                return candidate
        if len(self.key) == 1 and self.column(self.key[0]) is not None and self.key[0].endswith("id"):
            return self.key[0]
        return None


@dataclass
class Subject:
    """What a chat is about: a database, or a saved query over it."""

    database: str
    sql: str = ""
    label: str = ""

    @property
    def is_query(self) -> bool:
        return bool(self.sql)


@dataclass
class PreviousTurn:
    question: str
    sql: str
    column_names: list[str]
    column_types: list[str]
    plan: dict[str, Any] | None = None
    chart: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PreviousTurn | None:
        if not data or not data.get("sql"):
            return None
        return cls(question=data.get("question", ""), sql=data["sql"],
                   column_names=list(data.get("column_names") or []),
                   column_types=list(data.get("column_types") or []), plan=data.get("plan"),
                   chart=data.get("chart"))


@dataclass
class SubjectContext:
    subject: Subject
    tables: list[SubjectTable]
    previous: PreviousTurn | None = None
    subject_sql: str = ""                                    # the saved query as the gate checked it
    subject_tables: list[str] = field(default_factory=list)  # the tables it reads

    def table(self, name: str) -> SubjectTable | None:
        for t in self.tables:
            if t.name == name or t.ref == name:
                return t
        return None

    def column(self, table: str, column: str) -> ColumnInfo | None:
        t = self.table(table)
        return t.column(column) if t else None

    def policy(self) -> GatePolicy:
        """What the gate lets a statement about this subject read."""
        if self.subject.is_query:
            return GatePolicy({QUERY_TABLE: {c.name for c in self.tables[0].columns}},
                              subject_sql=self.subject_sql, subject_tables=list(self.subject_tables))
        return GatePolicy({f"{self.subject.database}.{t.name}": {c.name for c in t.columns} for t in self.tables},
                          database=self.subject.database)

    def with_previous(self, previous: PreviousTurn | None) -> SubjectContext:
        return SubjectContext(self.subject, self.tables, previous, self.subject_sql, self.subject_tables)

    def describe(self, values: bool = True) -> str:
        """The schema as text for an LLM: tables, columns, types, sample values, join keys, the previous turn."""
        lines: list[str] = []
        if self.subject.is_query:
            lines.append(f"One table named {QUERY_TABLE}: the result of a saved query. "
                         f"Write FROM {QUERY_TABLE} (it is provided as a common table expression).")
        else:
            lines.append(f"Database {self.subject.database}. Always qualify tables as "
                         f"{self.subject.database}.<table>.")
        for t in self.tables:
            sorted_by = f", sorted by {', '.join(t.key)}" if t.key else ""
            lines.append(f"\nTable {t.ref} (about {t.rows:,} rows){sorted_by}")
            for c in t.columns:
                extra = ""
                if values and c.values:
                    shown = ", ".join(repr(v) for v in c.values[:MAX_VALUES])
                    extra = f"  -- values: {shown}"
                lines.append(f"  {c.name} {c.type}{extra}")
        joins = join_hints(self.tables)
        if joins:
            lines.append("\nJoin keys: " + "; ".join(joins))
        if self.previous:
            lines.append(f"\nPrevious question: {self.previous.question}")
            lines.append(f"Previous SQL:\n{self.previous.sql}")
            lines.append("Previous result columns: " + ", ".join(
                f"{n} {t}" for n, t in zip(self.previous.column_names, self.previous.column_types, strict=False)))
        return "\n".join(lines)


def join_hints(tables: list[SubjectTable]) -> list[str]:
    hints = []
    for dim in tables:
        key = dim.is_keyed_by
        if not key:
            continue
        for fact in tables:
            if fact is not dim and fact.column(key) is not None:
                hints.append(f"{fact.ref}.{key} = {dim.ref}.{key}")
    return hints


# ---- building -----------------------------------------------------------------------

_cache: dict[tuple[str, str], tuple[float, SubjectContext]] = {}
_cache_lock = threading.Lock()


def invalidate(database: str | None = None) -> None:
    with _cache_lock:
        for key in [k for k in _cache if database is None or k[0] == database]:
            _cache.pop(key, None)


def build_context(ch: ClickHouse, subject: Subject, previous: PreviousTurn | None = None,
                  max_age_s: float = CACHE_SECONDS) -> SubjectContext:
    key = (subject.database, subject.sql)
    with _cache_lock:
        cached = _cache.get(key)
    if cached and time.monotonic() - cached[0] < max_age_s:
        base = cached[1]
    else:
        if subject.is_query:
            base = _query_context(ch, subject)
        else:
            base = SubjectContext(subject, _database_tables(ch, subject.database))
        with _cache_lock:
            _cache[key] = (time.monotonic(), base)
    return SubjectContext(subject, base.tables, previous, base.subject_sql, base.subject_tables)


def _database_tables(ch: ClickHouse, database: str) -> list[SubjectTable]:
    if not database:
        raise ValidationError("Choose a database for this chat.")
    if database in SYSTEM_DATABASES or database == METADATA_DB:
        raise ValidationError(f"Chats are about your data, not the {database!r} database.",
                              "Pick one of your own databases.")
    rows = ch.internal_query(
        "SELECT t.name AS table, t.sorting_key AS sorting_key, toUInt64(ifNull(t.total_rows, 0)) AS rows, "
        "groupArray((c.name, c.type)) AS columns FROM system.tables AS t "
        "INNER JOIN (SELECT table, name, type, position FROM system.columns WHERE database = {db:String} "
        "ORDER BY table, position) AS c ON c.table = t.name "
        "WHERE t.database = {db:String} AND NOT t.is_temporary GROUP BY t.name, t.sorting_key, rows ORDER BY t.name",
        {"db": database})
    if not rows:
        exists = ch.internal_query("SELECT count() AS n FROM system.databases WHERE name = {db:String}",
                                   {"db": database})[0]["n"]
        if not exists:
            raise NotFound(f"There is no database {database!r}.", "Pick a database from the Databases page.")
        raise ValidationError(f"Database {database!r} has no tables yet.", "Create or load a table first.")
    tables = []
    for row in rows:
        columns = [ColumnInfo(name, ctype, column_kind(name, ctype)) for name, ctype in row["columns"]]
        key = [k.strip() for k in row["sorting_key"].split(",") if k.strip()]
        ref = f"{sql_name(database)}.{sql_name(row['table'])}"
        tables.append(SubjectTable(row["table"], ref, columns, key, int(row["rows"])))
    from helios_core.chat import live
    with live.sampling_errors(database):
        for table in tables:
            # A live database's stand-ins hold no rows: its values are sampled on its own server.
            _sample_values(ch, table, live.sample_source(database, table.name) or table.ref, internal=True)
            table.rows = live.row_estimate(database, table.name) or table.rows
    return tables


def _query_context(ch: ClickHouse, subject: Subject) -> SubjectContext:
    checked_sql = check_subject_sql(ch, subject.sql)
    checked = checked_sql.sql
    described = ch.query(f"DESCRIBE TABLE ({checked})", limit=1000)
    columns = [ColumnInfo(r["name"], r["type"], column_kind(r["name"], r["type"]))
               for r in described.frame.to_dict("records")]
    count = ch.query(f"SELECT count() AS n FROM ({checked})", limit=1).frame
    table = SubjectTable(QUERY_TABLE, QUERY_TABLE, columns, [], int(count.iloc[0, 0]) if len(count) else 0)
    _sample_values(ch, table, f"({checked})", internal=False)
    return SubjectContext(subject, [table], None, checked, checked_sql.tables)


def _sample_values(ch: ClickHouse, table: SubjectTable, source: str, internal: bool) -> None:
    """Fill in the distinct values of text-like columns that have few of them."""
    candidates = [c for c in table.columns if c.kind in ("category", "text")]
    for c in candidates:
        if describe(c.type).family == "enum":
            c.values = _enum_values(c.type)
            c.kind = "category"
    candidates = [c for c in candidates if not c.values]
    if not candidates:
        return
    parts = []
    for i, c in enumerate(candidates):
        parts.append(f"uniqExact({quote_ident(c.name)}) AS n{i}")
        parts.append(f"arraySort(groupUniqArray({MAX_VALUES + 1})(toString({quote_ident(c.name)}))) AS v{i}")
    sql = (f"SELECT {', '.join(parts)} FROM (SELECT {', '.join(quote_ident(c.name) for c in candidates)} "
           f"FROM {source} LIMIT {SAMPLE_ROWS})")
    if internal:
        row = ch.internal_query(sql)[0]
    else:
        frame = ch.query(sql, limit=1).frame
        if frame.empty:
            return
        row = frame.iloc[0].to_dict()
    for i, c in enumerate(candidates):
        values = [str(v) for v in list(row[f"v{i}"])]
        c.distinct = int(row[f"n{i}"])
        if 0 < c.distinct <= MAX_VALUES:
            c.values = values
            c.kind = "category"
        elif c.kind == "category":
            c.kind = "text"  # LowCardinality but many values: a name, not a category
