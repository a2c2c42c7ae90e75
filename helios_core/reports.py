"""Reports: a small, typed definition compiled to safe SQL, and saved definitions.

The IM-challenge seed pasted its filter text into SQL. Here every identifier
is checked against the table's real columns (``system.columns``) and quoted,
and every value is a server-side bound parameter ``{pN:Type}`` after being
parsed according to the column's type — so a filter value can never become
SQL, and a wrong column or a mistyped value gets a clear message instead.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from helios_core import chtypes
from helios_core.chtypes import base_type
from helios_core.clickhouse import ClickHouse, QueryResult, table_columns, table_exists
from helios_core.errors import NotFound, ValidationError
from helios_core.identifiers import check_identifier, quote_ident, sanitize_name
from helios_core.metadata import METADATA_DB, next_version
from helios_core.report_filters import (
    MAX_IN_VALUES,
    OPERATORS,
    Filter,
    jsonable,
    normal_operator,
    type_family,
)
from helios_core.timeparse import parse_iso
from helios_core.users import (
    LOCAL_ID,
    User,
    acting,
    check_change,
    check_read,
    clean_shared_with,
    owner_of,
    ownership_alters,
    visible_where,
)

GRAINS = ("hour", "day", "week", "month")
MEASURE_KINDS = ("count", "distinct", "sum", "avg", "min", "max", "ratio", "median_gap")
MEASURE_HELP = {
    "count": "rows (only those matching the condition, if any)",
    "distinct": "distinct values of a column",
    "sum": "sum of a numeric column", "avg": "average of a numeric column",
    "min": "minimum of a numeric column", "max": "maximum of a numeric column",
    "ratio": "rows matching the condition ÷ rows matching the second condition (all rows if empty)",
    "median_gap": "median seconds from rows matching the condition to the first row matching the second "
                  "condition with the same value of the column (e.g. serve → solve by correlation_id)",
}
MAX_DIMENSIONS = 2
MAX_MEASURES = 12

METADATA_TABLES = [
    """CREATE TABLE IF NOT EXISTS helios.reports (
        id String,
        name String,
        definition String,
        created_at DateTime64(3, 'UTC'),
        updated_at DateTime64(3, 'UTC'),
        deleted UInt8 DEFAULT 0,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id""",
]
METADATA_ALTERS = ownership_alters("helios.reports", shared=True)


# ---- the definition -------------------------------------------------------------------


@dataclass
class Measure:
    kind: str
    column: str = ""
    label: str = ""
    where: list[Filter] = field(default_factory=list)       # count/ratio numerator/median_gap start
    where_other: list[Filter] = field(default_factory=list)  # ratio denominator/median_gap end

    def output_name(self) -> str:
        if self.label:
            return self.label
        if self.kind == "count":
            return "count"
        # Real column names may hold characters a result label should not; the label is derived, not trusted.
        return sanitize_name(f"{self.kind}_{self.column}") if self.column else self.kind

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "column": self.column, "label": self.label,
                "where": [f.to_json() for f in self.where], "where_other": [f.to_json() for f in self.where_other]}

    @classmethod
    def from_json(cls, data: Any) -> Measure:
        if isinstance(data, str):
            return cls(kind=data)
        if not isinstance(data, dict):
            raise ValidationError(f"A measure must be an object with a kind, not {data!r}.")
        return cls(kind=str(data.get("kind", "")), column=str(data.get("column") or ""),
                   label=str(data.get("label") or ""),
                   where=[Filter.from_json(f) for f in _as_list(data.get("where"))],
                   where_other=[Filter.from_json(f) for f in _as_list(data.get("where_other"))])


@dataclass
class ReportDefinition:
    database: str
    table: str
    time_column: str
    grain: str = "day"
    measures: list[Measure] = field(default_factory=lambda: [Measure("count")])
    dimensions: list[str] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    time_from: str | None = None   # ISO date/time, inclusive
    time_to: str | None = None     # ISO date/time, exclusive
    name: str = ""
    limit: int = 5000

    def to_json(self) -> dict[str, Any]:
        return {"database": self.database, "table": self.table, "time_column": self.time_column,
                "grain": self.grain, "measures": [m.to_json() for m in self.measures],
                "dimensions": list(self.dimensions), "filters": [f.to_json() for f in self.filters],
                "time_from": self.time_from, "time_to": self.time_to, "name": self.name, "limit": self.limit}

    @classmethod
    def from_json(cls, data: Any) -> ReportDefinition:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"The report definition is not valid JSON ({exc.msg}).") from exc
        if not isinstance(data, dict):
            raise ValidationError("A report definition must be a JSON object.")
        missing = [k for k in ("database", "table", "time_column") if not data.get(k)]
        if missing:
            raise ValidationError("missing necessary fields", "Give the table and its time column.",
                                  missing_fields=missing)
        try:
            limit = int(data.get("limit") or 5000)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"limit must be a whole number, not {data.get('limit')!r}.") from exc
        return cls(database=str(data["database"]), table=str(data["table"]), time_column=str(data["time_column"]),
                   grain=str(data.get("grain") or "day"),
                   measures=[Measure.from_json(m) for m in _as_list(data.get("measures"))] or [Measure("count")],
                   dimensions=[str(d) for d in _as_list(data.get("dimensions")) if d],
                   filters=[Filter.from_json(f) for f in _as_list(data.get("filters"))],
                   time_from=data.get("time_from") or None, time_to=data.get("time_to") or None,
                   name=str(data.get("name") or ""), limit=limit)

    def to_query_param(self) -> str:
        """Compact JSON for the page's URL (``st.query_params``), so a link reopens the report."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


# ---- column types ---------------------------------------------------------------------


NUMERIC = ("int", "float", "decimal")
ORDERED = NUMERIC + ("date", "datetime", "string", "uuid", "ip", "enum")


def _array_element_type(t: str) -> str:
    described = chtypes.describe(t)
    return described.element.text if described.element is not None else described.inner


# ---- compiling --------------------------------------------------------------------------


@dataclass
class CompiledReport:
    sql: str
    parameters: dict[str, Any]
    definition: ReportDefinition
    bucket: str = "bucket"
    measure_names: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"sql": self.sql, "parameters": {k: jsonable(v) for k, v in self.parameters.items()}}


class _Params:
    """Hands out placeholder names and keeps the values (never pasted into the SQL)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any, ch_type: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return "{" + name + ":" + ch_type + "}"


class _Compiler:
    def __init__(self, definition: ReportDefinition, columns: dict[str, str]) -> None:
        self.d = definition
        self.columns = columns
        self.params = _Params()
        self.problems: list[str] = []

    # -- names
    def column(self, name: str, what: str) -> str | None:
        if name not in self.columns:
            near = [c for c in self.columns if c.lower() == str(name).lower()]
            hint = f" Did you mean {near[0]!r}?" if near else ""
            self.problems.append(f"The {what} {name!r} is not a column of {self.d.database}.{self.d.table}.{hint}")
            return None
        return name

    def ref(self, name: str, alias: str = "t") -> str:
        return f"{alias}.{quote_ident(name)}"

    # -- values
    def typed_value(self, column: str, raw: Any, family: str, ch_type: str) -> tuple[Any, str] | None:
        """The Python value and the placeholder type for ``raw`` compared with ``column``."""
        text = raw if isinstance(raw, str) else None
        try:
            if family == "int":
                if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                    raise ValueError
                value = int(str(raw).strip()) if text is not None else int(raw)
                return value, "Int64"
            if family in ("float", "decimal"):
                number = float(str(raw).strip()) if text is not None else float(raw)
                if number != number or number in (float("inf"), float("-inf")):
                    raise ValueError
                return number, "Float64"
            if family == "bool":
                word = str(raw).strip().lower()
                if word in ("1", "true", "yes", "t", "y"):
                    return True, "Bool"
                if word in ("0", "false", "no", "f", "n"):
                    return False, "Bool"
                raise ValueError
            if family == "uuid":
                return str(uuid.UUID(str(raw).strip())), "UUID"
            if family == "date":
                return parse_date(raw).isoformat(), "Date"
            if family == "datetime":
                return parse_datetime(raw), "String"  # converted in SQL: see _placeholder
            if family == "ip":
                import ipaddress
                addr = ipaddress.ip_address(str(raw).strip())
                return str(addr), "String"
            if family in ("string", "enum"):
                if isinstance(raw, (dict, list)):
                    raise ValueError
                return str(raw), "String"
        except (ValueError, TypeError, OverflowError):
            pass
        else:
            self.problems.append(f"Filtering on {column} ({ch_type}) is not supported.")
            return None
        expected = {"int": "a whole number", "float": "a number", "decimal": "a number", "bool": "true or false",
                    "uuid": "a UUID like 3f1c2a4e-8b7d-4c21-9a6e-0d5b7f3e2a11",
                    "date": "a date like 2024-05-31", "datetime": "a date/time like 2024-05-31 13:45:00",
                    "ip": "an IP address"}.get(family, "a value of that type")
        self.problems.append(f"{raw!r} is not a valid value for {column} ({base_type(ch_type)}): expected {expected}.")
        return None

    def placeholder(self, value: Any, bind_type: str, family: str, column_type: str) -> str:
        p = self.params.bind(value, bind_type)
        if family == "datetime":
            return f"toDateTime64({p}, 3, 'UTC')"
        if family == "ip":
            return f"to{base_type(column_type)}({p})"
        return p

    # -- filters
    def condition(self, f: Filter, alias: str = "t") -> str | None:
        op = normal_operator(f.op)
        if op not in OPERATORS:
            self.problems.append(f"Unknown operator {f.op!r}; use one of {', '.join(OPERATORS)}.")
            return None
        column = self.column(f.column, "filter column")
        if column is None:
            return None
        ch_type = self.columns[column]
        family = type_family(ch_type)
        col = self.ref(column, alias)
        values = list(f.values)
        need = {"between": 2}.get(op, None)
        if op in ("in", "not in"):
            if not values:
                self.problems.append(f"The filter {column} {op} needs at least one value.")
                return None
            if len(values) > MAX_IN_VALUES:
                self.problems.append(f"The filter {column} {op} has more than {MAX_IN_VALUES} values.")
                return None
        elif need and len(values) != need:
            self.problems.append(f"The filter {column} between needs exactly two values (from, to).")
            return None
        elif op not in ("in", "not in", "between") and len(values) != 1:
            self.problems.append(f"The filter {column} {op} needs exactly one value.")
            return None

        if op == "contains":
            if family in ("string", "enum"):
                p = self.params.bind(str(values[0]), "String")
                return f"positionCaseInsensitiveUTF8(toString({col}), {p}) > 0"
            if family == "array":
                element = _array_element_type(ch_type)
                typed = self.typed_value(column, values[0], type_family(element), element)
                if typed is None:
                    return None
                return f"has({col}, {self.placeholder(typed[0], typed[1], type_family(element), element)})"
            self.problems.append(f"contains works on text and array columns; {column} is {base_type(ch_type)}.")
            return None
        if family in ("array", "other"):
            self.problems.append(f"{column} ({base_type(ch_type)}) can only be filtered with contains.")
            return None
        if op in ("<", ">", "between") and family not in ORDERED:
            self.problems.append(f"{op} does not apply to {column} ({base_type(ch_type)}); use = or in.")
            return None

        maybe_typed = [self.typed_value(column, v, family, ch_type) for v in values]
        typed_values = [t for t in maybe_typed if t is not None]
        if len(typed_values) != len(maybe_typed):
            return None
        if op in ("in", "not in"):
            bind_types = {t[1] for t in typed_values}
            bind_type = bind_types.pop()
            p = self.params.bind([t[0] for t in typed_values], f"Array({bind_type})")
            if family == "datetime":
                p = f"arrayMap(x -> toDateTime64(x, 3, 'UTC'), {p})"
            elif family == "ip":
                p = f"arrayMap(x -> to{base_type(ch_type)}(x), {p})"
            negate = "NOT " if op == "not in" else ""
            return f"{negate}has({p}, {col})"
        holders = [self.placeholder(t[0], t[1], family, ch_type) for t in typed_values]
        if op == "between":
            return f"{col} BETWEEN {holders[0]} AND {holders[1]}"
        sql_op = {"=": "=", "!=": "!=", "<": "<", ">": ">"}[op]
        return f"{col} {sql_op} {holders[0]}"

    def conditions(self, filters: list[Filter], alias: str = "t") -> str | None:
        parts = [self.condition(f, alias) for f in filters]
        if any(p is None for p in parts):
            return None
        return " AND ".join(f"({p})" for p in parts) if parts else None

    # -- the whole query
    def compile(self) -> CompiledReport:
        d = self.d
        if d.grain not in GRAINS:
            self.problems.append(f"Unknown grain {d.grain!r}; use one of {', '.join(GRAINS)}.")
        time_col = self.column(d.time_column, "time column")
        if time_col and type_family(self.columns[time_col]) not in ("date", "datetime"):
            self.problems.append(f"The time column {time_col} is {self.columns[time_col]}, not a date or time.")
        if len(d.dimensions) > MAX_DIMENSIONS:
            self.problems.append(f"At most {MAX_DIMENSIONS} group-by dimensions, not {len(d.dimensions)}.")
        if len(set(d.dimensions)) != len(d.dimensions):
            self.problems.append("The same dimension is chosen twice.")
        dims = [self.column(dim, "dimension") for dim in d.dimensions]
        if not d.measures:
            self.problems.append("Choose at least one measure.")
        if len(d.measures) > MAX_MEASURES:
            self.problems.append(f"At most {MAX_MEASURES} measures.")
        if not (1 <= d.limit <= 1_000_000):
            self.problems.append("limit must be between 1 and 1,000,000.")

        names = ["bucket"] + [x for x in dims if x]
        joins: list[str] = []
        selects: list[str] = []
        for i, m in enumerate(d.measures):
            out = m.output_name()
            if m.label:
                self.problems.extend(check_identifier(out, "measure label"))
            if out in names:
                self.problems.append(f"Two result columns would be called {out!r}; give the measure another label.")
            names.append(out)
            expr = self.measure(i, m, joins, time_col)
            if expr is not None:
                selects.append(f"{expr} AS {quote_ident(out)}")

        where: list[str] = []
        if time_col:
            tfam = type_family(self.columns[time_col])
            for bound, op in ((d.time_from, ">="), (d.time_to, "<")):
                if bound:
                    typed = self.typed_value(f"{time_col} ({'from' if op == '>=' else 'to'})", bound, tfam,
                                             self.columns[time_col])
                    if typed is not None:
                        where.append(f"{self.ref(time_col)} {op} "
                                     f"{self.placeholder(typed[0], typed[1], tfam, self.columns[time_col])}")
        filters = self.conditions(d.filters)
        if filters:
            where.append(filters)

        if self.problems:
            raise ValidationError(self.problems[0], "Fix the report definition and run it again.",
                                  problems=self.problems)
        assert time_col is not None  # an unknown time column is a problem, raised just above

        bucket_fn = {"hour": "toStartOfHour({})", "day": "toStartOfDay({})", "week": "toStartOfWeek({}, 1)",
                     "month": "toStartOfMonth({})"}[d.grain]
        if type_family(self.columns[time_col]) == "date" and d.grain in ("hour", "day"):
            bucket_fn = "{}"
        group = [f"{bucket_fn.format(self.ref(time_col))} AS bucket"] + \
                [f"{self.ref(x)} AS {quote_ident(x)}" for x in dims if x]
        keys = ["bucket"] + [quote_ident(x) for x in dims if x]
        sql = "SELECT " + ",\n       ".join(group + selects)
        sql += f"\nFROM {quote_ident(d.database)}.{quote_ident(d.table)} AS t"
        for join in joins:
            sql += "\n" + join
        if where:
            sql += "\nWHERE " + "\n  AND ".join(where)
        sql += "\nGROUP BY " + ", ".join(keys) + "\nORDER BY " + ", ".join(keys)
        sql += f"\nLIMIT {int(d.limit)}"
        return CompiledReport(sql=sql, parameters=self.params.values, definition=d,
                              measure_names=[m.output_name() for m in d.measures])

    def measure(self, i: int, m: Measure, joins: list[str], time_col: str | None) -> str | None:
        if m.kind not in MEASURE_KINDS:
            self.problems.append(f"Unknown measure {m.kind!r}; use one of {', '.join(MEASURE_KINDS)}.")
            return None
        where = self.conditions(m.where)
        if m.kind == "count":
            if m.where_other:
                self.problems.append("A count has one condition; use a ratio to divide by a second one.")
            return f"countIf({where})" if where else "count()"
        if m.kind == "ratio":
            if not m.where:
                self.problems.append("A ratio needs a condition for the rows it counts (the numerator).")
                return None
            other = self.conditions(m.where_other)
            denominator = f"countIf({other})" if other else "count()"
            return f"round(countIf({where}) / nullIf({denominator}, 0), 4)" if where else None
        if not m.column:
            self.problems.append(f"The measure {m.kind} needs a column.")
            return None
        column = self.column(m.column, f"{m.kind} column")
        if column is None:
            return None
        family = type_family(self.columns[column])
        if m.kind == "distinct":
            return f"uniqExactIf({self.ref(column)}, {where})" if where else f"uniqExact({self.ref(column)})"
        if m.kind in ("sum", "avg", "min", "max"):
            if family not in NUMERIC:
                self.problems.append(f"{m.kind} needs a numeric column; {column} is {base_type(self.columns[column])}.")
                return None
            fn = {"sum": "sum", "avg": "avg", "min": "min", "max": "max"}[m.kind]
            expr = f"{fn}If({self.ref(column)}, {where})" if where else f"{fn}({self.ref(column)})"
            return f"round({expr}, 4)" if m.kind == "avg" else expr
        # median_gap: pair each start row with the first end row sharing the key column.
        if not m.where_other:
            self.problems.append("A median gap needs a second condition: the end event (e.g. type = solve).")
            return None
        end = self.conditions(m.where_other, alias="e")
        if time_col is None or end is None:
            return None
        alias = f"g{i}"
        t = self.ref(time_col)
        # The LEFT JOIN fills a missing partner with the epoch, which the end >= start test drops.
        joins.append(f"LEFT JOIN (SELECT e.{quote_ident(column)} AS k, min(e.{quote_ident(time_col)}) AS end_time "
                     f"FROM {quote_ident(self.d.database)}.{quote_ident(self.d.table)} AS e WHERE {end} "
                     f"GROUP BY k) AS {alias} ON {self.ref(column)} = {alias}.k")
        start = f"{where} AND " if where else ""
        return (f"round(quantileExactIf(0.5)(dateDiff('millisecond', {t}, {alias}.end_time) / 1000, "
                f"{start}{alias}.end_time >= {t}), 3)")


def parse_date(raw: Any) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = str(raw).strip()
    parse_iso(text)  # the one time parser decides which forms are times (raises ValueError otherwise)
    return date.fromisoformat(text[:10])  # the calendar day as written, whatever its offset


def parse_datetime(raw: Any) -> str:
    """An ISO date or date-time (naive = UTC) → ``YYYY-MM-DD HH:MM:SS.fff`` in UTC."""
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, date):
        moment = datetime(raw.year, raw.month, raw.day)
    else:
        moment = parse_iso(str(raw))  # the one time parser (helios_core.timeparse); ValueError when not a time
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def report_columns(ch: ClickHouse, database: str, table: str) -> dict[str, str]:
    """The table's real columns → types (the allow-list every name is checked against)."""
    if not table_exists(ch, database, table):
        raise NotFound(f"Table {database}.{table} does not exist.", "Pick a table from the Databases page.")
    return {c["name"]: c["type"] for c in table_columns(ch, database, table)}


def compile_report(ch: ClickHouse, definition: ReportDefinition) -> CompiledReport:
    return _Compiler(definition, report_columns(ch, definition.database, definition.table)).compile()


def report_json(compiled: CompiledReport, result: QueryResult) -> dict[str, Any]:
    """A run report as the seed's ``{metadata, data}`` plus the definition and the bound parameters."""
    payload = result.to_api()
    payload["definition"] = compiled.definition.to_json()
    payload["parameters"] = compiled.to_json()["parameters"]
    return payload


def run_report(ch: ClickHouse, definition: ReportDefinition) -> tuple[CompiledReport, QueryResult]:
    """Compile and run through the guarded (read-only, time- and row-limited) path."""
    compiled = compile_report(ch, definition)
    result = ch.query(compiled.sql, compiled.parameters, limit=definition.limit)
    return compiled, result


# ---- presets ------------------------------------------------------------------------------


def captcha_preset(database: str = "demo", table: str = "captcha_events") -> ReportDefinition:
    """The IM-challenge report: per site and day — serves, solves, solve rate, median seconds to solve."""
    serve, solve = Filter("type", "=", ["serve"]), Filter("type", "=", ["solve"])
    return ReportDefinition(
        database=database, table=table, time_column="time", grain="day", dimensions=["site_id"],
        measures=[Measure("count", label="serves", where=[serve]),
                  Measure("count", label="solves", where=[solve]),
                  Measure("ratio", label="solve_rate", where=[solve], where_other=[serve]),
                  Measure("median_gap", column="correlation_id", label="median_seconds_to_solve",
                          where=[serve], where_other=[solve])],
        name="Captcha solves per site and day")


PRESETS = {"captcha": captcha_preset}


# ---- saved definitions ---------------------------------------------------------------------


@dataclass
class SavedReport:
    id: str
    name: str
    definition: ReportDefinition
    created_at: str
    updated_at: str
    owner: str = LOCAL_ID                                   # the user who saved it
    shared_with: list[str] = field(default_factory=list)    # read-only: user ids, or "*" for everyone

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "definition": self.definition.to_json(),
                "created_at": self.created_at, "updated_at": self.updated_at, "owner": self.owner,
                "shared_with": list(self.shared_with)}


def _now() -> datetime:
    return datetime.now(UTC)



_REPORT_COLUMNS = ["id", "name", "definition", "created_at", "updated_at", "deleted", "version", "owner",
                   "shared_with"]


def _write_report(ch: ClickHouse, saved: SavedReport, created: datetime, deleted: bool = False) -> None:
    ch.insert_rows("reports", [[saved.id, saved.name, json.dumps(saved.definition.to_json()), created, _now(),
                                int(deleted), next_version(), saved.owner, list(saved.shared_with)]],
                   _REPORT_COLUMNS, database=METADATA_DB)


def save_report(ch: ClickHouse, definition: ReportDefinition, name: str | None = None,
                report_id: str | None = None, user: User | None = None) -> SavedReport:
    """Save (or overwrite, with ``report_id``: its owner or an admin) a definition after checking it compiles."""
    me = acting(user)
    name = (name or definition.name or "").strip()
    if not name:
        raise ValidationError("missing necessary fields", "Give the report a name.", missing_fields=["name"])
    compile_report(ch, definition)
    definition.name = name
    created = _now()
    saved = SavedReport(id=str(uuid.uuid4()), name=name, definition=definition, created_at="", updated_at="",
                        owner=me.id)
    if report_id:
        existing = _for_change(ch, report_id, me)
        created = datetime.fromisoformat(existing.created_at)
        saved.id, saved.owner, saved.shared_with = existing.id, existing.owner, existing.shared_with
    _write_report(ch, saved, created)
    return get_report(ch, saved.id, me)


def _row_to_saved(row: dict[str, Any]) -> SavedReport:
    return SavedReport(id=row["id"], name=row["name"], definition=ReportDefinition.from_json(row["definition"]),
                       created_at=_iso(row["created_at"]), updated_at=_iso(row["updated_at"]),
                       owner=owner_of(row.get("owner")), shared_with=list(row.get("shared_with") or []))


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    return str(value)


_SELECT = "SELECT id, name, definition, created_at, updated_at, owner, shared_with FROM helios.reports FINAL "


def list_reports(ch: ClickHouse, user: User | None = None, all_users: bool = False) -> list[SavedReport]:
    """The acting user's reports and those shared with them (an admin's ``all_users``: everyone's)."""
    where, params = visible_where(acting(user), shared=True, all_users=all_users)
    rows = ch.internal_query(_SELECT + f"WHERE deleted = 0 AND {where} ORDER BY name, id", params)
    return [_row_to_saved(r) for r in rows]


def _not_found(report_id: str) -> NotFound:
    return NotFound(f"No saved report with id {report_id!r}.", "List saved reports to see their ids.")


def get_report(ch: ClickHouse, report_id: str, user: User | None = None) -> SavedReport:
    rows = ch.internal_query(_SELECT + "WHERE id = {id:String} AND deleted = 0", {"id": str(report_id)})
    if not rows:
        raise _not_found(report_id)
    saved = _row_to_saved(rows[0])
    check_read(acting(user), saved.owner, saved.shared_with, _not_found(report_id))
    return saved


def _for_change(ch: ClickHouse, report_id: str, user: User) -> SavedReport:
    saved = get_report(ch, report_id, user)
    check_change(user, saved.owner, saved.shared_with, _not_found(report_id), f"the report {saved.name!r}")
    return saved


def share_report(ch: ClickHouse, report_id: str, shared_with: Any, user: User | None = None) -> SavedReport:
    """Share read-only with these users (``*``: everyone); an empty list stops sharing."""
    me = acting(user)
    saved = _for_change(ch, report_id, me)
    saved.shared_with = clean_shared_with(shared_with)
    _write_report(ch, saved, datetime.fromisoformat(saved.created_at))
    return get_report(ch, saved.id, me)


def delete_report(ch: ClickHouse, report_id: str, user: User | None = None) -> None:
    saved = _for_change(ch, report_id, acting(user))
    _write_report(ch, saved, datetime.fromisoformat(saved.created_at), deleted=True)
