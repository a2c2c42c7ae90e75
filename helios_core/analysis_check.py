"""The rules an analysis job's SQL must pass before it may run, and the query Helios actually runs.

ClickHouse parses everything (no regex over the user's text decides what is allowed):

1. ``formatQuery`` (through :func:`helios_core.chat.gate.canonical`): exactly one statement, in canonical form —
   one clause keyword per line at column 0, which is how clauses are told apart here.
2. ``EXPLAIN AST`` of that text: one SELECT reading only the job's table by its bare name; no ``*``, joins,
   subqueries, ARRAY JOIN, table functions, window functions, SETTINGS/FORMAT/INTO; every aggregate takes bare
   columns; ``min``/``max``/quantiles never on an identifier column; at ``mal`` an allow-list of functions.
3. ``EXPLAIN QUERY TREE`` with the job's table attached as a common table expression *without* the owner
   column: every name resolves (so the owner column cannot be selected, grouped or filtered by), the query
   is an aggregation, only allowed aggregate functions appear (after ClickHouse's own rewrites).

The query that runs is Helios's wrapper around the checked text: the input table as a CTE (owner column
included, rows clipped per owner at ``mal``) and two hidden aggregates appended to the SELECT list,
``uniqExact(owner)`` and ``count()``, which the release step uses to suppress small groups.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from helios_core.chat.gate import canonical
from helios_core.clickhouse import ClickHouse
from helios_core.errors import QueryError, ValidationError
from helios_core.identifiers import quote_ident
from helios_core.sqlguard import SqlRefused

Bounds = dict[str, Sequence[float]]  # column → (low, high)
OWNER_COLUMN = "__helios_owner"
HIDDEN_OWNERS, HIDDEN_ROWS = "__helios_owners", "__helios_rows"
SEMI, MAL = "semi", "mal"
LEVELS = (SEMI, MAL)

# Aggregates a semi analysis may use (lower-case; ClickHouse's rewrites of them included).
SEMI_AGGREGATES = {"count", "sum", "avg", "min", "max", "uniq", "uniqexact", "uniqcombined", "uniqcombined64",
                   "uniqhll12", "countdistinct", "quantile", "quantiles", "median", "quantileexact",
                   "quantilesexact", "medianexact", "quantiletdigest", "quantilestdigest", "mediantdigest"}
MAL_AGGREGATES = {"count", "sum", "avg"}
VALUE_AGGREGATES = {"min", "max", "quantile", "quantiles", "median", "quantileexact", "quantilesexact",
                    "medianexact", "quantiletdigest", "quantilestdigest", "mediantdigest"}
DISTINCT_AGGREGATES = {"uniq", "uniqexact", "uniqcombined", "uniqcombined64", "uniqhll12", "countdistinct"}
# Ordinary functions no analysis may use: row-by-row output, reads outside the table, oracles, timing.
DENIED_FUNCTIONS = {
    "arrayjoin": "it turns one row into many and can list values row by row",
    "initializeaggregation": "it builds raw aggregate states, which can carry individual values",
    "finalizeaggregation": "it unpacks aggregate states", "runningaccumulate": "it works row by row",
    "neighbor": "it reads the neighbouring row", "runningdifference": "it works row by row",
    "runningdifferencestartingwithfirstvalue": "it works row by row",
    "rownumberinblock": "it numbers individual rows", "rownumberinallblocks": "it numbers individual rows",
    "blocknumber": "it exposes how rows are stored", "throwif": "its error message can reveal a row's value",
    "sleep": "its timing can reveal a row's value", "sleepeachrow": "its timing can reveal a row's value",
    "file": "it reads files outside this job", "joinget": "it reads other tables",
    "joingetornull": "it reads other tables", "getsetting": "it reads server settings",
    "getsettingordefault": "it reads server settings",
}
MAL_FUNCTIONS = {
    "equals", "notequals", "less", "greater", "lessorequals", "greaterorequals", "and", "or", "not", "in",
    "notin", "tuple", "array", "plus", "minus", "multiply", "divide", "intdiv", "modulo", "negate", "abs",
    "round", "floor", "ceil", "isnull", "isnotnull", "coalesce", "like", "notlike", "ilike", "lower", "upper",
    "tostring", "tofloat64", "toint64", "todate", "todatetime", "tostartofhour", "tostartofday",
    "tostartofweek", "tostartofmonth", "tostartofquarter", "tostartofyear", "toyear", "toquarter",
    "tomonth", "todayofweek", "tohour", "toyyyymm", "toyyyymmdd", "_cast", "cast", "length",
    *MAL_AGGREGATES,
}
ALLOWED_CLAUSES = ("SELECT", "FROM", "WHERE", "GROUP BY", "HAVING", "ORDER BY", "LIMIT")
FILTER_CLAUSES = ("WHERE", "HAVING", "ORDER BY", "LIMIT")
# Units that make a column text (for the creation-time check; uploads decide the real type) and identifiers.
TEXT_UNITS = {"text", "string", "category", "categorical", "label", "name", "id", "identifier", "code", "email",
              "key", "zip", "city", "country", "region", "state", "url"}
IDENTIFIER_UNITS = {"id", "identifier", "name", "email", "key", "code", "zip", "url"}
DATE_UNITS = {"date": "Nullable(Date32)", "datetime": "Nullable(DateTime64(3, 'UTC'))",
              "timestamp": "Nullable(DateTime64(3, 'UTC'))", "time": "Nullable(DateTime64(3, 'UTC'))"}


class AnalysisRefused(ValidationError):
    """The analysis breaks a rule; ``rule`` names it, the message explains it to a data owner."""

    def __init__(self, rule: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint or "Change the analysis and check it again.", problems=[message], rule=rule)


def _gate_rule(exc: SqlRefused) -> str:
    """The analysis rule behind a refusal of the shared statement gate (helios_core.sqlguard)."""
    text = exc.message.lower()
    if "table function" in text or "reaches files" in text:
        return "table_function"
    if "setting" in text or "into outfile" in text or "format" in text:
        return "outer_clause"
    if exc.name == "READONLY" or "read-only" in text:
        return "select_only"
    if "system table" in text or "other people" in text:
        return "other_table"
    if "statement" in text:
        return "single_statement"
    return "sql_gate"


def unit_type(unit: str) -> str:
    """The column type the creation-time check assumes for a unit (uploads decide the stored type)."""
    u = str(unit or "").strip().lower()
    if u in DATE_UNITS:
        return DATE_UNITS[u]
    return "Nullable(String)" if u in TEXT_UNITS else "Nullable(Float64)"


def is_identifier_unit(unit: str) -> bool:
    return str(unit or "").strip().lower() in IDENTIFIER_UNITS


@dataclass
class InputTable:
    """The analysis's view of the job's input: the name used in SQL, column units and types, where it lives."""

    name: str
    units: dict[str, str]
    types: dict[str, str] = field(default_factory=dict)   # empty: assumed from the units
    source: str = ""                                       # quoted db.table once loaded

    def type_of(self, column: str) -> str:
        return self.types.get(column) or unit_type(self.units.get(column, ""))


@dataclass
class OutputColumn:
    kind: str          # group | count | sum | avg | min | … | expression
    column: str = ""   # the column it is computed from, when there is one
    unit: str = ""

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "column": self.column, "unit": self.unit}


@dataclass
class CheckedAnalysis:
    sql: str                                  # ClickHouse's canonical text of the analysis
    level: str
    outputs: list[OutputColumn]
    shape: str                                # the analysis without its filters (differencing check)

    def to_json(self) -> dict[str, object]:
        return {"sql": self.sql, "level": self.level, "outputs": [o.to_json() for o in self.outputs]}


# ---- the canonical text's clauses ---------------------------------------------------------------------

_CLAUSE_RE = re.compile(r"^(SELECT|FROM|PREWHERE|WHERE|GROUP BY|HAVING|ORDER BY|LIMIT|WINDOW|QUALIFY|SETTINGS|"
                        r"FORMAT|INTO|WITH|UNION|EXCEPT|INTERSECT|FINAL|SAMPLE|(?:LEFT |INNER )?ARRAY JOIN|"
                        r"[A-Z ]*JOIN|[A-Z]+)\b")


def clauses(text: str) -> list[tuple[str, str]]:
    """(keyword, full text) of each top-level clause: ClickHouse's format starts each at column 0."""
    out: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if line and not line[0].isspace() and line[0] not in "()":
            match = _CLAUSE_RE.match(line)
            out.append((match.group(1).strip() if match else line.split(" ")[0], line))
        elif out:
            kw, body = out[-1]
            out[-1] = (kw, body + "\n" + line)
    return out


# ---- EXPLAIN AST as a tree ------------------------------------------------------------------------------


@dataclass
class Node:
    kind: str
    name: str
    alias: str
    children: list[Node] = field(default_factory=list)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


def parse_ast(lines: list[str]) -> Node:
    root = Node("root", "", "")
    stack: list[tuple[int, Node]] = [(-1, root)]
    for line in lines:
        depth = len(line) - len(line.lstrip(" "))
        label = re.sub(r" \(children \d+\)$", "", line.strip())
        alias = ""
        match = re.search(r" \(alias ([^)]*)\)$", label)
        if match:
            alias, label = match.group(1), label[:match.start()]
        parts = label.split(" ", 1)
        node = Node(parts[0], parts[1] if len(parts) > 1 else "", alias)
        while stack[-1][0] >= depth:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((depth, node))
    return root


def _column_name(identifier: str) -> str:
    return identifier.rsplit(".", 1)[-1].strip("`")


def _args(fn: Node) -> list[Node]:
    """A function's arguments (its parameters, as in quantile(0.9)(x), are the second list)."""
    lists = [c for c in fn.children if c.kind == "ExpressionList"]
    return lists[0].children if lists else []


def _has_aggregate(node: Node, aggregates: set[str]) -> bool:
    return any(n.kind == "Function" and n.name.lower() in aggregates for n in node.walk())


# ---- the checks ---------------------------------------------------------------------------------------------


def explain_lines(ch: ClickHouse, sql: str) -> list[str]:
    # The analysis text already passed the statement gate (canonical()); this EXPLAIN is Helios's own.
    result = ch.run_guarded(sql, limit=100_000)
    return [] if result.frame.empty else [str(v) for v in result.frame.iloc[:, 0].tolist()]


def _check_clauses(parts: list[tuple[str, str]], table: str) -> None:
    keywords = [k for k, _ in parts]
    if not keywords or keywords[0] != "SELECT":
        first = keywords[0] if keywords else "nothing"
        if first == "WITH":
            raise AnalysisRefused("with", "WITH clauses (common table expressions) are not allowed: write one "
                                          f"SELECT over {table}.")
        raise AnalysisRefused("select_only", f"An analysis must be one SELECT that computes aggregates, not {first}.")
    if keywords.count("SELECT") > 1 or any(k in ("UNION", "EXCEPT", "INTERSECT") for k in keywords):
        raise AnalysisRefused("union", "UNION, EXCEPT and INTERSECT are not allowed: an analysis is one SELECT, so "
                                       "the rows of one query cannot be slipped in beside another's.")
    if parts[0][1].startswith("SELECT DISTINCT"):
        raise AnalysisRefused("raw_rows", "SELECT DISTINCT lists individual values; use GROUP BY with an aggregate "
                                          "such as count() so each row of the result summarises many rows.")
    for kw, body in parts:
        if kw in ("SETTINGS", "FORMAT", "INTO"):
            raise AnalysisRefused("outer_clause", "SETTINGS, FORMAT and INTO OUTFILE are not allowed in an analysis.")
        if "JOIN" in kw:
            raise AnalysisRefused("join", f"Joins are not allowed: an analysis reads only {table}, so no other "
                                          "table (system tables included) can be joined to data owners' rows.")
        if kw not in ALLOWED_CLAUSES:
            raise AnalysisRefused("clause", f"The {kw} clause is not supported in an analysis; use WHERE, GROUP BY, "
                                            "HAVING, ORDER BY and LIMIT.")
        if kw == "LIMIT" and re.search(r"\bBY\b", body):
            raise AnalysisRefused("limit_by", "LIMIT … BY keeps individual rows per value; it is not allowed.")
        if kw == "GROUP BY" and re.search(r"^\s*(WITH (TOTALS|ROLLUP|CUBE)|GROUPING SETS)", body, re.M):
            raise AnalysisRefused("group_modifier", "WITH TOTALS, ROLLUP, CUBE and GROUPING SETS are not supported; "
                                                    "run one GROUP BY per analysis.")


def _check_ast(root: Node, table: InputTable, level: str, bounds: Bounds) -> Node:
    """Structure rules on the parsed statement; returns the SELECT list node."""
    top = root.children[0] if root.children else Node("", "", "")
    union = top.children[0] if top.children else Node("", "", "")
    if top.kind != "SelectWithUnionQuery" or len(union.children) != 1:
        raise AnalysisRefused("union", "An analysis must be exactly one SELECT (no UNION).")
    select = union.children[0]
    for node in select.walk():
        if node.kind in ("Asterisk", "QualifiedAsterisk", "ColumnsRegexpMatcher", "ColumnsListMatcher",
                         "QualifiedColumnsRegexpMatcher", "QualifiedColumnsListMatcher"):
            raise AnalysisRefused("select_star", "SELECT * (or COLUMNS(…), t.*) would return data owners' raw "
                                                 "rows; name the aggregates you want, such as count() or avg(x).")
        if node.kind in ("Subquery", "SelectWithUnionQuery", "SelectQuery") and node is not select:
            raise AnalysisRefused("subquery", "Subqueries are not allowed: they could return raw rows or read "
                                              "other tables. Use one SELECT with GROUP BY.")
        if node.kind == "TableJoin" or node.kind == "ArrayJoin":
            raise AnalysisRefused("join" if node.kind == "TableJoin" else "array_join",
                                  "ARRAY JOIN turns one row into many and can list values row by row."
                                  if node.kind == "ArrayJoin" else
                                  f"Joins are not allowed: an analysis reads only {table.name}.")
        if node.kind == "TableExpression":
            inner = node.children[0] if node.children else None
            if inner is not None and inner.kind == "Function":
                raise AnalysisRefused("table_function", f"Table functions such as {inner.name}() read data outside "
                                                        f"this job; an analysis reads only {table.name}.")
            if inner is not None and inner.kind == "TableIdentifier" and inner.name != table.name:
                raise AnalysisRefused("other_table", f"The analysis reads {inner.name}; it may read only this job's "
                                                     f"table, {table.name}.")
        if node.kind == "WindowDefinition" or node.kind == "WindowListElement":
            raise AnalysisRefused("window", "Window functions (… OVER …) compute a value for every input row, so "
                                            "they would expose rows; use GROUP BY aggregates instead.")
        if (node.kind == "Identifier" and "__helios" in node.name.lower()) or "__helios" in node.alias.lower():
            raise AnalysisRefused("owner", "Names starting with __helios are Helios's own and cannot be used.")
        if node.kind in ("Set", "SetQuery"):
            raise AnalysisRefused("outer_clause", "SETTINGS are not allowed in an analysis.")
        if node.kind == "Function":
            _check_function(node, table, level, bounds)
    lists = [c for c in select.children if c.kind == "ExpressionList"]
    if not lists:
        raise AnalysisRefused("select_only", "The analysis has no SELECT list.")
    return lists[0]


_COMBINATORS = ("If", "Array", "Map", "SimpleState", "State", "MergeState", "Merge", "ForEach", "OrNull",
                "OrDefault", "Resample", "Distinct", "ArgMin", "ArgMax")
_aggregate_names: set[str] = set()


def _load_aggregate_names(ch: ClickHouse) -> None:
    if not _aggregate_names:
        rows = ch.internal_query("SELECT name FROM system.functions WHERE is_aggregate")
        _aggregate_names.update(r["name"].lower() for r in rows)


def is_aggregate_name(name: str) -> bool:
    """An aggregate function, with or without combinators (sumIf, uniqState, groupArrayForEach …)."""
    if name.lower() in _aggregate_names:
        return True
    for suffix in _COMBINATORS:
        if name.endswith(suffix) and len(name) > len(suffix) and is_aggregate_name(name[:-len(suffix)]):
            return True
    return False


def _check_function(node: Node, table: InputTable, level: str, bounds: Bounds) -> None:
    name = node.name.lower()
    if name not in SEMI_AGGREGATES and is_aggregate_name(node.name):
        allowed = MAL_AGGREGATES if level == MAL else SEMI_AGGREGATES
        picks = any(w in name for w in ("array", "any", "arg", "top", "first", "last", "uniqarray", "map"))
        why = "it lists or picks individual rows' values" if picks else \
            "it is not one of the summaries Helios can release safely"
        raise AnalysisRefused("aggregate", f"{node.name}() is not an allowed aggregate: {why}. Allowed: "
                                           f"{', '.join(sorted(allowed))}.")
    if name in DENIED_FUNCTIONS:
        raise AnalysisRefused("function", f"{node.name}() is not allowed in an analysis: {DENIED_FUNCTIONS[name]}.")
    if name.startswith("dict"):
        raise AnalysisRefused("function", f"{node.name}() is not allowed: it reads dictionaries outside this job.")
    if level == MAL and name not in MAL_FUNCTIONS:
        raise AnalysisRefused("mal_function", f"At security level mal only allow-listed functions may be used, and "
                                              f"{node.name}() is not one of them. Allowed: "
                                              f"{', '.join(sorted(MAL_FUNCTIONS - {'_cast'}))}.")
    if name in SEMI_AGGREGATES:
        args = _args(node)
        if any(a.kind not in ("Identifier", "Literal") for a in args):
            raise AnalysisRefused("aggregate_argument",
                                  f"Aggregates take columns as they are, not expressions ({node.name}(…) here): an "
                                  "expression inside an aggregate can single out one person's row, as in "
                                  "sum(if(name = 'Ann', salary, 0)). Filter with WHERE instead.")
        for arg in args:
            if arg.kind != "Identifier":
                continue
            column = _column_name(arg.name)
            if name in VALUE_AGGREGATES and is_identifier_unit(table.units.get(column, "")):
                raise AnalysisRefused("identifier_value",
                                      f"{node.name}({column}) would reveal one row's exact {column}, an identifier "
                                      f"(unit {table.units[column]!r}); use uniq({column}) or count() instead.")
            if level == MAL and name in ("sum", "avg") and column not in bounds:
                raise AnalysisRefused("mal_bounds",
                                      f"At security level mal, {node.name}({column}) needs bounds for {column} so "
                                      "Helios can clip each value and calibrate the noise: add "
                                      f'"bounds": {{"{column}": [low, high]}} to the job.')


def _outputs(items: Node, table: InputTable, level: str) -> list[OutputColumn]:
    out = []
    for item in items.children:
        name = item.name.lower() if item.kind == "Function" else ""
        if item.kind == "Function" and name in SEMI_AGGREGATES:
            args = [a for a in _args(item) if a.kind == "Identifier"]
            column = _column_name(args[0].name) if args else ""
            kind = "count" if name in ("count",) else ("uniq" if name in DISTINCT_AGGREGATES else name)
            unit = "rows" if kind == "count" else "distinct values" if kind == "uniq" else table.units.get(column, "")
            out.append(OutputColumn(kind, column, unit))
        elif not _has_aggregate(item, SEMI_AGGREGATES):
            # a group key built from one column (toStartOfMonth(day)) keeps that column's unit
            used = {_column_name(n.name) for n in item.walk() if n.kind == "Identifier"}
            column = used.pop() if len(used) == 1 else ""
            out.append(OutputColumn("group", column, table.units.get(column, "")))
        else:
            out.append(OutputColumn("expression"))
    if level == MAL:
        bad = [o for o in out if o.kind not in ("group", *MAL_AGGREGATES)]
        if bad:
            raise AnalysisRefused("mal_output", "At security level mal every output column is a GROUP BY column or "
                                                "exactly one count(), sum(column) or avg(column), so Helios can add "
                                                "calibrated noise to it.")
    return out


_TREE_ERRORS = {"UNKNOWN_IDENTIFIER", "UNKNOWN_TABLE", "UNKNOWN_DATABASE", "UNKNOWN_FUNCTION",
                "NO_SUCH_COLUMN_IN_TABLE", "UNKNOWN_AGGREGATE_FUNCTION"}


def _check_tree(ch: ClickHouse, sql: str, table: InputTable, level: str) -> None:
    try:
        lines = explain_lines(ch, f"EXPLAIN QUERY TREE {sql}")
    except QueryError as exc:
        columns = ", ".join(table.units)
        if exc.name in _TREE_ERRORS:
            raise AnalysisRefused("unknown_name", f"The analysis names something {table.name} does not have: "
                                                  f"{exc.message.split('. In scope')[0]}. Its columns are {columns} "
                                                  "(who uploaded a row is never visible).") from exc
        if exc.name == "NOT_AN_AGGREGATE":
            raise _raw_rows() from exc
        if exc.name in ("ILLEGAL_TYPE_OF_ARGUMENT", "NO_COMMON_TYPE", "TYPE_MISMATCH", "CANNOT_CONVERT_TYPE"):
            raise AnalysisRefused("types", f"The analysis does not fit the columns' types: {exc.message}",
                                  "Columns with units such as category, text or id are text; date/datetime are "
                                  "dates; other units are numbers.") from exc
        raise AnalysisRefused("clickhouse", f"ClickHouse cannot run this analysis: {exc.message}") from exc
    cte_depth: int | None = None
    aggregated = False
    for line in lines:
        depth = len(line) - len(line.lstrip(" "))
        text = line.strip()
        if cte_depth is not None:
            if depth > cte_depth:
                continue   # inside Helios's own input table expression
            cte_depth = None
        if "is_cte: 1" in text:
            cte_depth = depth
            continue
        if text.startswith("TABLE_FUNCTION"):
            raise AnalysisRefused("table_function", "Table functions read data outside this job.")
        if text.startswith("TABLE ") and "system.one" not in text:
            raise AnalysisRefused("other_table", f"The analysis may read only this job's table, {table.name}.")
        if text == "GROUP BY" and depth == 2:
            aggregated = True
        match = re.match(r"FUNCTION id: \d+, function_name: ([^,]+), function_type: (\w+)", text)
        if match:
            fname, ftype = match.group(1), match.group(2)
            if ftype == "window":
                raise AnalysisRefused("window", "Window functions (… OVER …) compute a value for every input row, "
                                                "so they would expose rows; use GROUP BY aggregates instead.")
            if ftype == "aggregate":
                aggregated = True
                allowed = MAL_AGGREGATES if level == MAL else SEMI_AGGREGATES
                if fname.lower() not in allowed:
                    raise AnalysisRefused("aggregate", f"{fname}() is not an allowed aggregate here ("
                                                       f"{', '.join(sorted(allowed))}): it can return individual "
                                                       "values rather than a summary of many rows.")
            elif fname.lower() in DENIED_FUNCTIONS:
                raise AnalysisRefused("function", f"{fname}() is not allowed in an analysis: "
                                                  f"{DENIED_FUNCTIONS[fname.lower()]}.")
    if not aggregated:
        raise _raw_rows()


def _raw_rows() -> AnalysisRefused:
    return AnalysisRefused("raw_rows", "The analysis would return raw rows: every output column must be an aggregate "
                                       "(count, sum, avg, min, max, uniq, quantiles) or a GROUP BY column.")


def shape_of(parts: list[tuple[str, str]]) -> str:
    """The analysis without its filters and aliases: two analyses with the same shape differ only by a filter."""
    kept = []
    for kw, body in parts:
        if kw in FILTER_CLAUSES:
            continue
        if kw == "SELECT":
            items = sorted(re.sub(r"\s+AS\s+[`\w]+$", "", i.strip()) for i in _split_items(body[len("SELECT"):]))
            body = "SELECT " + ", ".join(items)
        kept.append(re.sub(r"\s+", " ", body).strip())
    return "\n".join(kept)


def _split_items(text: str) -> list[str]:
    items, depth, current, quote = [], 0, "", ""
    for ch_ in text:
        if quote:
            current += ch_
            if ch_ == quote:
                quote = ""
            continue
        if ch_ in "'`\"":
            quote = ch_
        elif ch_ in "([":
            depth += 1
        elif ch_ in ")]":
            depth -= 1
        elif ch_ == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        current += ch_
    return [i for i in items + [current] if i.strip()]


def check_analysis(ch: ClickHouse, sql: str, table: InputTable, level: str,
                   bounds: Bounds | None = None) -> CheckedAnalysis:
    """Every rule, in order; raises :class:`AnalysisRefused` naming the first one broken."""
    bounds = bounds or {}
    if level not in LEVELS:
        raise ValidationError(f"Unknown security level {level!r}.", "Use semi or mal.")
    _load_aggregate_names(ch)
    try:
        text = canonical(ch, sql)
    except SqlRefused as exc:  # the shared statement gate said no first: name the analysis rule it breaks
        raise AnalysisRefused(_gate_rule(exc), exc.message, exc.hint) from exc
    parts = clauses(text)
    _check_clauses(parts, table.name)
    try:
        root = parse_ast(explain_lines(ch, f"EXPLAIN AST {text}"))
    except QueryError as exc:
        if exc.name == "READONLY":
            raise AnalysisRefused("outer_clause", "SETTINGS are not allowed in an analysis.") from exc
        raise AnalysisRefused("clickhouse", f"ClickHouse cannot read this analysis: {exc.message}") from exc
    items = _check_ast(root, table, level, bounds)
    outputs = _outputs(items, table, level)
    _check_tree(ch, f"{input_cte(table, placeholder=not table.source)}\n{text}", table, level)
    return CheckedAnalysis(text, level, outputs, shape_of(parts))


# ---- what runs ------------------------------------------------------------------------------------------------


def input_cte(table: InputTable, *, placeholder: bool = False, with_owner: bool = False,
              rows_per_owner: int | None = None, bounds: Bounds | None = None) -> str:
    """``WITH <name> AS (…)``: the job's table as the analysis sees it.

    ``placeholder``: typed NULL columns and no rows (the check at creation, before any upload). Otherwise the
    loaded table; ``with_owner`` adds the owner column for Helios's wrapper, ``rows_per_owner`` keeps at most
    that many rows of each owner, ``bounds`` clips each value into [low, high].
    """
    bounds = bounds or {}
    if placeholder:
        nulls = ", ".join(f"CAST(NULL, '{table.type_of(c)}') AS {quote_ident(c)}" for c in table.units)
        return f"WITH {quote_ident(table.name)} AS (SELECT {nulls} WHERE 0)"
    cols: list[str] = []
    for c in table.units:
        if c in bounds:
            low, high = (float(v) for v in bounds[c])
            cols.append(f"least(greatest(toFloat64(src.{quote_ident(c)}), {low!r}), {high!r}) AS {quote_ident(c)}")
        else:
            cols.append(f"src.{quote_ident(c)} AS {quote_ident(c)}")
    if with_owner:
        cols.append(f"src.{quote_ident(OWNER_COLUMN)} AS {quote_ident(OWNER_COLUMN)}")
    clip = f" LIMIT {int(rows_per_owner)} BY src.{quote_ident(OWNER_COLUMN)}" if rows_per_owner else ""
    return f"WITH {quote_ident(table.name)} AS (SELECT {', '.join(cols)} FROM {table.source} AS src{clip})"


def release_sql(checked: CheckedAnalysis, table: InputTable, rows_per_owner: int | None = None,
                bounds: Bounds | None = None) -> str:
    """The checked analysis with the input attached and the two hidden per-group counts appended."""
    parts = clauses(checked.sql)
    select = parts[0][1] + (f",\n    uniqExact({quote_ident(OWNER_COLUMN)}) AS {HIDDEN_OWNERS},"
                            f"\n    count() AS {HIDDEN_ROWS}")
    body = "\n".join([select] + [b for _, b in parts[1:]])
    cte = input_cte(table, with_owner=True, rows_per_owner=rows_per_owner, bounds=bounds)
    return f"{cte}\n{body}"
