"""Pass 1 over a dump: tables, types and every statement's fate (used, ignored with a reason, or unsupported).

COPY rows are counted, not kept; array columns note how deeply their data nests.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from helios_core.ddl import DEDUP_WINDOW
from helios_core.identifiers import check_identifier, qualified, quote_ident, sanitize_name
from helios_core.pgdump.scanner import (
    DumpScanner,
    LineSource,
    Statement,
    Token,
    client_encoding,
    matching_paren,
    name_value,
    pg_codec,
    read_qualified,
    render_tokens,
    split_top,
    tokenize,
)
from helios_core.pgdump.typemap import clickhouse_column_type, map_pg_type
from helios_core.wording import plural


@dataclass
class PgColumn:
    name: str          # as in PostgreSQL
    ch_name: str
    pg_type: str
    ch_type: str
    not_null: bool
    array_dims: int = 0
    note: str = ""
    seen_dims: int = 0   # the deepest array nesting met in the data (PostgreSQL ignores declared dimensions)

    def to_json(self) -> dict[str, Any]:
        out = {"name": self.ch_name, "postgres_name": self.name, "postgres_type": self.pg_type,
               "clickhouse_type": self.ch_type}
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class PgTable:
    schema: str
    name: str
    ch_name: str
    columns: list[PgColumn]
    line: int
    primary_key: list[str] = field(default_factory=list)   # PostgreSQL column names
    rows_in_dump: int = 0

    @property
    def source_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def order_by(self) -> list[str]:
        by_name = {c.name: c for c in self.columns}
        key = [by_name[k] for k in self.primary_key if k in by_name]
        if key and len(key) == len(self.primary_key) and all(c.not_null and not c.array_dims for c in key):
            return [c.ch_name for c in key]
        return []

    def create_sql(self, database: str) -> str:
        body = ",\n".join(f"    {quote_ident(c.ch_name)} {c.ch_type}" for c in self.columns)
        order = ", ".join(quote_ident(c) for c in self.order_by())
        # The deduplication window lets a resumed import re-send batches without duplicating them.
        return (f"CREATE TABLE {qualified(database, self.ch_name)}\n(\n{body}\n)\nENGINE = MergeTree\n"
                f"ORDER BY {'(' + order + ')' if order else 'tuple()'}\n"
                f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}")


@dataclass
class Issue:
    line: int
    statement: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "statement": self.statement, "reason": self.reason}


@dataclass
class DumpPlan:
    tables: dict[tuple[str, str], PgTable] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)
    unsupported: list[Issue] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    encoding: str = "utf-8"   # the Python codec of the dump's client_encoding: what COPY's byte escapes mean
    encoding_name: str = ""   # that client_encoding as the dump wrote it ("" until a SET names one)
    _pending_pk: list[tuple[tuple[str, str], list[str]]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"tables": [{"table": t.ch_name, "source": t.source_name, "rows_in_dump": t.rows_in_dump,
                            "order_by": t.order_by(), "columns": [c.to_json() for c in t.columns]}
                           for t in self.tables.values()],
                "unsupported": [i.to_json() for i in self.unsupported], "ignored": dict(self.ignored),
                "notes": self.notes}


def _short(text: str, limit: int = 160) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


_IGNORED = [
    (re.compile(r"^SET\s", re.I), "SET statements (session settings)"),
    (re.compile(r"^SELECT\s+pg_catalog\.set_config\s*\(", re.I), "SET statements (session settings)"),
    (re.compile(r"^SELECT\s+pg_catalog\.setval\s*\(", re.I), "sequence values (setval)"),
    (re.compile(r"^ALTER\s+\w+(\s+\w+)?\s+.+\sOWNER\s+TO\s", re.I | re.S), "ownership (ALTER … OWNER TO)"),
    (re.compile(r"^(CREATE|ALTER)\s+SEQUENCE\s", re.I),
     "sequences (ClickHouse has none; values are loaded as written)"),
    (re.compile(r"^CREATE\s+(UNIQUE\s+)?INDEX\s", re.I), "indexes (ClickHouse sorts by the primary key instead)"),
    (re.compile(r"^COMMENT\s+ON\s", re.I), "comments (COMMENT ON)"),
    (re.compile(r"^(GRANT|REVOKE)\s", re.I), "privileges (GRANT/REVOKE)"),
    (re.compile(r"^ALTER\s+DEFAULT\s+PRIVILEGES\s", re.I), "privileges (GRANT/REVOKE)"),
    (re.compile(r"^CREATE\s+SCHEMA\s", re.I), "schemas (tables outside public are prefixed with their schema)"),
    (re.compile(r"^CREATE\s+EXTENSION\s", re.I), "extensions"),
    (re.compile(r"^(BEGIN|COMMIT|START\s+TRANSACTION|END)\b", re.I), "transaction control"),
    (re.compile(r"^SELECT\s+pg_catalog\.(lo_|binary_upgrade)", re.I), "large objects / upgrade helpers"),
]


def _classify_ignored(text: str) -> str | None:
    for pattern, category in _IGNORED:
        if pattern.match(text):
            return category
    return None


def _parse_create_table(tokens: list[Token], line: int, plan: DumpPlan) -> None:
    pos = 2  # CREATE … TABLE: skip modifiers
    while not tokens[pos - 1].is_word("TABLE"):
        pos += 1
    if tokens[pos].is_word("IF"):
        pos += 3
    key, pos = read_qualified(tokens, pos)
    if pos < len(tokens) and tokens[pos].is_word("PARTITION", "OF"):
        raise Unsupported("a partition of another table (CREATE TABLE … PARTITION OF)")
    if pos >= len(tokens) or tokens[pos].value != "(":
        raise Unsupported("CREATE TABLE without a column list (AS SELECT, OF type)")
    end = matching_paren(tokens, pos)
    columns: list[PgColumn] = []
    primary: list[str] = []
    for element in split_top(tokens[pos + 1:end]):
        first = element[0]
        if first.is_word("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE", "LIKE"):
            words = [t.value.upper() for t in element if t.kind == "word"]
            if "LIKE" == words[0]:
                raise Unsupported("CREATE TABLE … (LIKE other)")
            if "PRIMARY" in words:
                i = next(i for i, t in enumerate(element) if t.is_word("KEY"))
                close = matching_paren(element, i + 1)
                primary = [name_value(t) for t in element[i + 2:close] if t.kind in ("ident", "word")]
            else:
                plan.ignored["constraints other than primary keys (not enforced by ClickHouse)"] += 1
            continue
        column = _parse_column(element, plan)
        if any(t.is_word("PRIMARY") for t in element[1:]):  # ``id bigint PRIMARY KEY``: the key written inline
            primary = [column.name]
        columns.append(column)
    rest = tokens[end + 1:]
    if any(t.is_word("PARTITION") for t in rest):
        plan.notes.append(f"{key[0]}.{key[1]} is partitioned in PostgreSQL; its partitions load as separate tables.")
    if any(t.is_word("INHERITS") for t in rest):
        plan.notes.append(f"{key[0]}.{key[1]} inherits columns from another table; only its own columns are read.")
    table = PgTable(schema=key[0], name=key[1], ch_name="", columns=columns, line=line)
    for name in primary:
        for col in columns:
            if col.name == name:
                col.not_null = True
    table.primary_key = primary
    plan.tables[key] = table


_COLUMN_STOP = ("CONSTRAINT", "NOT", "NULL", "DEFAULT", "PRIMARY", "UNIQUE", "CHECK", "REFERENCES", "COLLATE",
                "GENERATED")


def _parse_column(element: list[Token], plan: DumpPlan) -> PgColumn:
    name = name_value(element[0])
    i, depth = 1, 0
    while i < len(element):
        tok = element[i]
        if tok.kind == "punct" and tok.value in "([":
            depth += 1
        elif tok.kind == "punct" and tok.value in ")]":
            depth -= 1
        elif depth == 0 and tok.is_word(*_COLUMN_STOP):
            break
        i += 1
    pg_type = render_tokens(element[1:i])
    words = [t.value.upper() for t in element[i:] if t.kind == "word"]
    not_null = any(words[j] == "NOT" and j + 1 < len(words) and words[j + 1] == "NULL" for j in range(len(words)))
    if "PRIMARY" in words:
        not_null = True
    if "GENERATED" in words and "STORED" in words:
        plan.notes.append(f"Column {name} is generated in PostgreSQL; pg_dump does not write its values, "
                          "so it is empty here.")
        not_null = False
    return PgColumn(name=name, ch_name="", pg_type=pg_type, ch_type="", not_null=not_null)


class Unsupported(Exception):
    pass


def _handle_alter_table(tokens: list[Token], text: str, line: int, plan: DumpPlan) -> None:
    pos = 2
    if pos < len(tokens) and tokens[pos].is_word("ONLY"):
        pos += 1
    if pos < len(tokens) and tokens[pos].is_word("IF"):
        pos += 2
    key, pos = read_qualified(tokens, pos)
    words = [t.value.upper() for t in tokens[pos:] if t.kind == "word"]
    if "PRIMARY" in words and "KEY" in words and "ADD" in words:
        i = next(i for i in range(pos, len(tokens)) if tokens[i].is_word("KEY"))
        close = matching_paren(tokens, i + 1)
        plan._pending_pk.append((key, [name_value(t) for t in tokens[i + 2:close] if t.kind in ("ident", "word")]))
        plan.ignored["primary keys (used as the ClickHouse sorting key)"] += 1
        return
    if "ADD" in words and ("FOREIGN" in words or "UNIQUE" in words or "CHECK" in words or "EXCLUDE" in words):
        plan.ignored["constraints other than primary keys (not enforced by ClickHouse)"] += 1
        return
    if "ALTER" in words and "DEFAULT" in words and "SET" in words:
        plan.ignored["column defaults (values are loaded as written)"] += 1
        return
    if "IDENTITY" in words:
        plan.ignored["identity columns (values are loaded as written)"] += 1
        return
    if "CLUSTER" in words or "REPLICA" in words or ("SET" in words and "STATISTICS" in words):
        plan.ignored["storage settings (CLUSTER, REPLICA IDENTITY, STATISTICS)"] += 1
        return
    if "ATTACH" in words and "PARTITION" in words:
        raise Unsupported("attaching a partition: the partition is loaded as its own table")
    raise Unsupported("this ALTER TABLE form")


def _handle_create_type(tokens: list[Token], plan: DumpPlan) -> None:
    key, pos = read_qualified(tokens, 2)
    if pos + 1 < len(tokens) and tokens[pos].is_word("AS") and tokens[pos + 1].is_word("ENUM"):
        plan.enums[key[1]] = [t.value for t in tokens[pos + 2:] if t.kind == "str"]
        plan.ignored["enum types (stored as text)"] += 1
        return
    raise Unsupported("composite, range and base types (columns of such a type are kept as text)")


def _handle_create_domain(tokens: list[Token], plan: DumpPlan) -> None:
    key, pos = read_qualified(tokens, 2)
    if pos < len(tokens) and tokens[pos].is_word("AS"):
        pos += 1
    end = pos
    while end < len(tokens) and not tokens[end].is_word(*_COLUMN_STOP):
        end += 1
    plan.domains[key[1]] = render_tokens(tokens[pos:end])
    plan.ignored["domains (mapped to their base type)"] += 1


_UNSUPPORTED_KINDS = [
    (re.compile(r"^CREATE\s+(OR\s+REPLACE\s+)?(MATERIALIZED\s+)?VIEW\s", re.I), "views are not loaded (only tables)"),
    (re.compile(r"^CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE|AGGREGATE)\s", re.I),
     "functions and procedures are not loaded"),
    (re.compile(r"^CREATE\s+(OR\s+REPLACE\s+)?(CONSTRAINT\s+)?TRIGGER\s", re.I), "triggers are not loaded"),
    (re.compile(r"^CREATE\s+(OR\s+REPLACE\s+)?RULE\s", re.I), "rules are not loaded"),
    (re.compile(r"^CREATE\s+POLICY\s", re.I), "row-level security policies are not loaded"),
    (re.compile(r"^ALTER\s+TABLE\s.+ENABLE\s+ROW\s+LEVEL", re.I | re.S), "row-level security is not loaded"),
    (re.compile(r"^CREATE\s+(OPERATOR|CAST|COLLATION|CONVERSION|TEXT\s+SEARCH|PUBLICATION|SUBSCRIPTION|"
                r"EVENT\s+TRIGGER|FOREIGN|SERVER|USER\s+MAPPING|LANGUAGE|STATISTICS|ACCESS\s+METHOD)\b", re.I),
     "this kind of object has no ClickHouse equivalent"),
    (re.compile(r"^REFRESH\s+MATERIALIZED\s+VIEW\s", re.I), "views are not loaded (only tables)"),
]


def copy_target(text: str) -> tuple[tuple[str, str], list[str] | None]:
    tokens = tokenize(text)
    key, pos = read_qualified(tokens, 1)
    cols = None
    if pos < len(tokens) and tokens[pos].value == "(":
        close = matching_paren(tokens, pos)
        cols = [name_value(t) for t in tokens[pos + 1:close] if t.kind in ("ident", "word")]
        pos = close + 1
    rest = " ".join(t.value.upper() for t in tokens[pos:])
    if re.search(r"\b(CSV|BINARY|DELIMITER|NULL|ENCODING|HEADER|FORMAT)\b", rest):
        raise Unsupported("COPY options other than the text format pg_dump writes")
    return key, cols


def _finish_plan(plan: DumpPlan) -> None:
    for key, columns in plan._pending_pk:
        if key in plan.tables:
            plan.tables[key].primary_key = columns
            for col in plan.tables[key].columns:
                if col.name in columns:
                    col.not_null = True
    schemas = {k[0] for k in plan.tables}
    used: set[str] = set()
    for (schema, name), table in plan.tables.items():
        wanted = name if schema == "public" or len(schemas) == 1 else f"{schema}_{name}"
        ch_name = wanted if not check_identifier(wanted, "table") else sanitize_name(wanted)
        base, n = ch_name, 2
        while ch_name.lower() in used or ch_name.endswith("_quarantine"):
            ch_name, n = f"{base}_{n}", n + 1
        used.add(ch_name.lower())
        table.ch_name = ch_name
        if ch_name != name:
            plan.notes.append(f"Table {schema}.{name} is loaded as {ch_name}.")
        seen: set[str] = set()
        for col in table.columns:
            mapping = map_pg_type(col.pg_type, plan.enums, plan.domains)
            if mapping.array_dims and col.seen_dims > mapping.array_dims:
                mapping.array_dims = col.seen_dims
            col.ch_type = clickhouse_column_type(mapping, nullable=not col.not_null)
            col.array_dims = mapping.array_dims
            col.note = mapping.note
            if mapping.array_dims and col.not_null is False:
                col.note = (col.note + "; " if col.note else "") + "a NULL array is stored as an empty array"
            if not mapping.supported:
                plan.unsupported.append(Issue(table.line, f"column {table.source_name}.{col.name} {col.pg_type}",
                                              f"unknown type {col.pg_type}: its values are kept as text"))
            ch_col = col.name if not check_identifier(col.name, "column") else sanitize_name(col.name)
            base, n = ch_col, 2
            while ch_col.lower() in seen:
                ch_col, n = f"{base}_{n}", n + 1
            seen.add(ch_col.lower())
            col.ch_name = ch_col
            if ch_col != col.name:
                plan.notes.append(f"Column {table.source_name}.{col.name} is loaded as {ch_col}.")


def _array_depth(text: str | None) -> int:
    if not text:
        return 0
    return len(text) - len(text.lstrip("{"))


def _array_positions(table: PgTable, cols: list[str]) -> list[tuple[int, PgColumn]]:
    """(position in ``cols``, column) for each column declared as an array."""
    arrays = {c.name: c for c in table.columns if re.search(r"(\[\d*\]|\barray)$", c.pg_type.strip().lower())}
    return [(i, arrays[name]) for i, name in enumerate(cols) if name in arrays]


def _observe_arrays(positions: list[tuple[int, PgColumn]], rows: Sequence[Sequence[str | None]]) -> None:
    """Note how deeply each array column's values nest (PostgreSQL ignores declared dimensions)."""
    for row in rows:
        for i, col in positions:
            if i < len(row):
                col.seen_dims = max(col.seen_dims, _array_depth(row[i]))


def _scan_copy_rows(table: PgTable, cols: list[str] | None, scanner: DumpScanner) -> int:
    """Count a COPY block's rows; for array columns, also note how deeply the data nests."""
    positions = _array_positions(table, cols or [c.name for c in table.columns])
    count = 0
    for _, text in scanner.copy_rows():
        count += 1
        if positions:
            _observe_arrays(positions, [text.split("\t")])
    return count


def plan_dump(source: LineSource) -> DumpPlan:
    """Pass 1: tables, types and every statement's fate; COPY rows are counted, not kept."""
    plan = DumpPlan()
    scanner = DumpScanner(source())
    for st in scanner.statements():
        if st.kind == "meta":
            plan.ignored["psql meta-commands (\\connect, \\restrict, …)"] += 1
            if st.text.startswith("\\connect"):
                plan.notes.append(f"Line {st.line}: the dump switches database ({_short(st.text, 60)}); all tables "
                                  "load into the one database you chose.")
            continue
        if st.kind == "copy":
            try:
                key, cols = copy_target(st.text)
            except (Unsupported, ValueError) as exc:
                plan.unsupported.append(Issue(st.line, _short(st.text), str(exc)))
                continue
            if key in plan.tables:
                rows = _scan_copy_rows(plan.tables[key], cols, scanner)
                plan.tables[key].rows_in_dump += rows
            else:
                rows = sum(1 for _ in scanner.copy_rows())
                plan.unsupported.append(Issue(st.line, _short(st.text),
                                              f"COPY into {key[0]}.{key[1]}, which the dump does not create "
                                              f"({plural(rows, 'row')} not loaded)"))
            continue
        encoding = client_encoding(st.text)
        if encoding is not None:
            _set_encoding(plan, encoding, st)
        _plan_statement(st, plan)
    _finish_plan(plan)
    return plan


def _set_encoding(plan: DumpPlan, name: str, st: Statement) -> None:
    codec = pg_codec(name)  # an encoding Helios cannot read stops the load before anything is written
    if not plan.encoding_name:
        plan.encoding, plan.encoding_name = codec, name
    elif codec != plan.encoding:
        # line_source decoded the whole file in the first encoding it found; a switch midway is not followed.
        plan.unsupported.append(Issue(st.line, _short(st.text),
                                      f"a second client_encoding: the whole dump is read as {plan.encoding_name}"))


def _plan_statement(st: Statement, plan: DumpPlan) -> None:
    text = st.text
    category = _classify_ignored(text)
    if category and not re.match(r"^ALTER\s+TABLE\s.+ADD\s", text, re.I | re.S):
        plan.ignored[category] += 1
        return
    for pattern, reason in _UNSUPPORTED_KINDS:
        if pattern.match(text):
            plan.unsupported.append(Issue(st.line, _short(text), reason))
            return
    try:
        upper = text[:60].upper()
        if re.match(r"^CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?(?:UNLOGGED\s+|TEMP\s+|TEMPORARY\s+)?TABLE\s", upper):
            _parse_create_table(tokenize(text), st.line, plan)
        elif re.match(r"^CREATE\s+TYPE\s", upper):
            _handle_create_type(tokenize(text), plan)
        elif re.match(r"^CREATE\s+DOMAIN\s", upper):
            _handle_create_domain(tokenize(text), plan)
        elif re.match(r"^ALTER\s+(FOREIGN\s+)?TABLE\s", upper):
            _handle_alter_table(tokenize(text), text, st.line, plan)
        elif re.match(r"^INSERT\s+INTO\s", upper):
            key, cols, rows = parse_insert(tokenize(text))
            if key in plan.tables:
                table = plan.tables[key]
                plan.tables[key].rows_in_dump += len(rows)
                _observe_arrays(_array_positions(table, cols or [c.name for c in table.columns]), rows)
            else:
                raise Unsupported(f"INSERT into {key[0]}.{key[1]}, which the dump does not create")
        else:
            raise Unsupported("not a statement Helios can load")
    except Unsupported as exc:
        plan.unsupported.append(Issue(st.line, _short(text), str(exc)))
    except (ValueError, IndexError, StopIteration) as exc:
        plan.unsupported.append(Issue(st.line, _short(text), f"could not be read: {exc}"))


def parse_insert(tokens: list[Token], with_values: bool = True
                  ) -> tuple[tuple[str, str], list[str] | None, Any]:
    """``INSERT INTO t [(cols)] VALUES (…), (…)`` → key, columns, rows (as text like COPY) or their count."""
    key, pos = read_qualified(tokens, 2)
    cols = None
    if tokens[pos].value == "(":
        close = matching_paren(tokens, pos)
        cols = [name_value(t) for t in tokens[pos + 1:close] if t.kind in ("ident", "word")]
        pos = close + 1
    if tokens[pos].is_word("OVERRIDING"):
        pos += 3
    if not tokens[pos].is_word("VALUES"):
        raise Unsupported("INSERT … SELECT (only INSERT … VALUES is loaded)")
    pos += 1
    rows: list[list[str | None]] = []
    count = 0
    while pos < len(tokens) and tokens[pos].value == "(":
        close = matching_paren(tokens, pos)
        if with_values:
            rows.append([_literal(part) for part in split_top(tokens[pos + 1:close])])
        count += 1
        pos = close + 1
        if pos < len(tokens) and tokens[pos].value == ",":
            pos += 1
    if pos < len(tokens) and not tokens[pos].is_word("ON", "RETURNING"):
        raise Unsupported("an INSERT form Helios cannot read")
    return key, cols, (rows if with_values else count)


def _literal(tokens: list[Token]) -> str | None:
    """A VALUES item → PostgreSQL's text form of it (as COPY would write), or None for NULL."""
    # Drop a trailing cast: 'x'::jsonb, '{1,2}'::integer[]
    for i, tok in enumerate(tokens):
        if tok.kind == "cast":
            tokens = tokens[:i]
            break
    if len(tokens) == 1:
        tok = tokens[0]
        if tok.kind in ("str", "num"):
            return tok.value
        if tok.is_word("NULL"):
            return None
        if tok.is_word("TRUE"):
            return "t"
        if tok.is_word("FALSE"):
            return "f"
        if tok.kind == "ident" or tok.kind == "word":
            raise Unsupported(f"the value {tok.value!r} is an expression, not a literal")
    if len(tokens) == 2 and tokens[0].kind == "op" and tokens[0].value in "+-" and tokens[1].kind == "num":
        return tokens[0].value.replace("+", "") + tokens[1].value
    raise Unsupported(f"the value {render_tokens(tokens)!r} is an expression, not a literal")
