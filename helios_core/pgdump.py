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
   NULLs, backslash escapes including octal and hex) and plain ``INSERT``
   statements through :class:`helios_core.loading.RowSink`: the ingester's column converters,
   batched inserts through the one write path, and rows that do not fit go to ``<table>_quarantine``.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helios_core.chtypes import describe
from helios_core.ddl import DEDUP_WINDOW
from helios_core.errors import Conflict, ValidationError
from helios_core.identifiers import check_identifier, qualified, quote_ident, sanitize_name
from helios_core.loading import QuarantineRow, RowError, RowSink
from helios_core.wording import plural

LineSource = Callable[[], Iterator[str]]

# ---- reading the dump: statements and COPY data -------------------------------------------------------


@dataclass
class Statement:
    kind: str        # "sql", "copy" or "meta" (a psql backslash command such as \connect or \restrict)
    text: str
    line: int


class DumpScanner:
    """Splits dump text into statements, honouring quotes, dollar quotes and comments.

    After a ``COPY … FROM stdin`` statement is yielded, :meth:`copy_rows` gives
    its data lines; whatever the caller does not read is skipped.
    """

    _DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
    _COPY = re.compile(r"^\s*COPY\s.+\sFROM\s+stdin\b", re.IGNORECASE | re.DOTALL)

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.line_no = 0
        self._copy_open = False

    def _next_line(self) -> str | None:
        try:
            line = next(self._lines)
        except StopIteration:
            return None
        self.line_no += 1
        return line

    def copy_rows(self) -> Iterator[tuple[int, str]]:
        """Data lines of the COPY just yielded (without the line ending), up to ``\\.``."""
        while self._copy_open:
            line = self._next_line()
            if line is None:
                self._copy_open = False
                return
            text = line[:-1] if line.endswith("\n") else line
            if text.endswith("\r"):
                text = text[:-1]
            if text == "\\.":
                self._copy_open = False
                return
            yield self.line_no, text

    def statements(self) -> Iterator[Statement]:
        buf: list[str] = []
        state = ""          # "", "'", "E'", '"', "$", "/*"
        tag = ""            # the dollar-quote tag
        depth = 0           # nested block comments
        start_line = 0
        started = False     # the current statement has a non-blank character
        while True:
            line = self._next_line()
            if line is None:
                break
            if not state and not started and line.lstrip().startswith("\\"):
                yield Statement("meta", line.strip(), self.line_no)
                buf = []
                continue
            i, n = 0, len(line)
            while i < n:
                c = line[i]
                if not state:
                    if c == "-" and line.startswith("--", i):
                        buf.append("\n")
                        break
                    if c == "/" and line.startswith("/*", i):
                        state, depth = "/*", 1
                        i += 2
                        continue
                    if c == "'":
                        prev = "".join(buf[-2:])
                        e_string = len(prev) >= 1 and prev[-1] in "eE" and (len(prev) < 2 or not
                                                                             (prev[-2].isalnum() or prev[-2] == "_"))
                        state = "E'" if e_string else "'"
                    elif c == '"':
                        state = '"'
                    elif c == "$":
                        m = self._DOLLAR.match(line, i)
                        prev = "".join(buf[-1:])
                        if m and not (prev and (prev[-1].isalnum() or prev[-1] == "_")):
                            state, tag = "$", m.group(0)
                            buf.append(tag)
                            i += len(tag)
                            continue
                    elif c == ";":
                        text = "".join(buf).strip()
                        buf, started = [], False
                        if text:
                            if self._COPY.match(text):
                                self._copy_open = True
                                yield Statement("copy", text, start_line)
                                for _ in self.copy_rows():  # the caller did not read them: skip
                                    pass
                                break  # nothing follows ``FROM stdin;`` on its line
                            yield Statement("sql", text, start_line)
                        i += 1
                        continue
                    if not started and not c.isspace():
                        started, start_line = True, self.line_no
                    buf.append(c)
                    i += 1
                    continue
                if state == "/*":
                    if line.startswith("*/", i):
                        depth -= 1
                        i += 2
                        if depth == 0:
                            state = ""
                            buf.append(" ")
                        continue
                    if line.startswith("/*", i):
                        depth += 1
                        i += 2
                        continue
                    i += 1
                    continue
                if state == "$":
                    end = line.find(tag, i)
                    if end == -1:
                        buf.append(line[i:])
                        break
                    buf.append(line[i:end + len(tag)])
                    i = end + len(tag)
                    state = ""
                    continue
                if state == "E'" and c == "\\" and i + 1 < n:
                    buf.append(line[i:i + 2])
                    i += 2
                    continue
                quote = '"' if state == '"' else "'"
                if c == quote:
                    if i + 1 < n and line[i + 1] == quote:
                        buf.append(c + c)
                        i += 2
                        continue
                    state = ""
                buf.append(c)
                i += 1
        text = "".join(buf).strip()
        if text:
            yield Statement("sql", text, start_line or self.line_no)


# ---- COPY text format and array literals -------------------------------------------------------------

_COPY_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))", re.DOTALL)
_SIMPLE_ESCAPES = {"b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v"}


def decode_copy_field(raw: str, encoding: str = "utf-8") -> str | None:
    """One field of COPY text format: ``\\N`` is NULL; backslash escapes (also octal and hex) decoded."""
    if raw == "\\N":
        return None
    if "\\" not in raw:
        return raw
    # Octal/hex escapes denote bytes in the dump's encoding, so decode to bytes first.
    out = bytearray()
    pos = 0
    for m in _COPY_ESCAPE.finditer(raw):
        out += raw[pos:m.start()].encode(encoding, "surrogateescape")
        octal, hexa, char = m.groups()
        if octal:
            out.append(int(octal, 8) & 0xFF)
        elif hexa:
            out.append(int(hexa, 16))
        else:
            out += _SIMPLE_ESCAPES.get(char, char.encode(encoding, "surrogateescape"))
        pos = m.end()
    out += raw[pos:].encode(encoding, "surrogateescape")
    return out.decode(encoding, "replace")


def split_copy_line(line: str) -> list[str]:
    return line.split("\t")


def parse_pg_array(text: str) -> list[Any]:
    """A PostgreSQL array literal ``{a,"b c",NULL,{1,2}}`` → nested lists of text (None for NULL)."""
    text = text.strip()
    if text.startswith("[") and "=" in text[:40]:  # explicit bounds: [0:2]={1,2,3}
        text = text.split("=", 1)[1].strip()
    if not text.startswith("{"):
        raise ValueError(f"{text[:40]!r} is not an array literal (expected {{…}})")
    value, pos = _parse_array_at(text, 0)
    if text[pos:].strip():
        raise ValueError("unexpected text after the array's closing brace")
    return value


def _parse_array_at(text: str, pos: int) -> tuple[list[Any], int]:
    assert text[pos] == "{"
    pos += 1
    items: list[Any] = []
    n = len(text)
    expecting = True
    while pos < n:
        c = text[pos]
        if c.isspace():
            pos += 1
            continue
        if c == "}":
            return items, pos + 1
        if c == ",":
            pos += 1
            expecting = True
            continue
        if not expecting:
            raise ValueError("missing comma between array elements")
        if c == "{":
            inner, pos = _parse_array_at(text, pos)
            items.append(inner)
        elif c == '"':
            pos += 1
            chars: list[str] = []
            while pos < n and text[pos] != '"':
                if text[pos] == "\\" and pos + 1 < n:
                    pos += 1
                chars.append(text[pos])
                pos += 1
            if pos >= n:
                raise ValueError("unterminated quoted array element")
            items.append("".join(chars))
            pos += 1
        else:
            chars = []
            while pos < n and text[pos] not in ",}":
                if text[pos] == "\\" and pos + 1 < n:
                    pos += 1
                chars.append(text[pos])
                pos += 1
            word = "".join(chars).strip()
            items.append(None if word.upper() == "NULL" else word)
        expecting = False
    raise ValueError("unterminated array literal (missing })")


# ---- a small SQL tokenizer for the DDL and INSERT statements ------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<dq>"(?:[^"]|"")*")
  | (?P<estr>[Ee]'(?:[^'\\]|\\.|'')*')
  | (?P<str>'(?:[^']|'')*')
  | (?P<dollar>\$(?P<tag>(?:[A-Za-z_][A-Za-z0-9_]*)?)\$.*?\$(?P=tag)\$)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<cast>::)
  | (?P<punct>[(),;\[\].])
  | (?P<op>[-+*/<>=~!@#%^&|`?:]+)
""", re.VERBOSE | re.DOTALL)

_E_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


@dataclass
class Token:
    kind: str     # ident, word, str, num, cast, punct, op, dollar
    value: str    # idents: the name (unquoted); words: as written; strings: the decoded text

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.value.upper() in words


def _unescape_e_string(body: str) -> str:
    def repl(m: re.Match[str]) -> str:
        octal, hexa, char = m.groups()
        if octal:
            return chr(int(octal, 8))
        if hexa:
            return chr(int(hexa, 16))
        return _E_ESCAPES.get(char, char)
    return _COPY_ESCAPE.sub(repl, body.replace("''", "'"))


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot read the statement near {text[pos:pos + 30]!r}")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        if kind == "tag":
            kind = "dollar"
        value = m.group(0)
        if kind == "ws":
            continue
        if m.group("dollar") is not None:
            tokens.append(Token("dollar", value))
        elif kind == "dq":
            tokens.append(Token("ident", value[1:-1].replace('""', '"')))
        elif kind == "estr":
            tokens.append(Token("str", _unescape_e_string(value[2:-1])))
        elif kind == "str":
            tokens.append(Token("str", value[1:-1].replace("''", "'")))
        else:
            tokens.append(Token(kind, value))
    return tokens


def _name_value(tok: Token) -> str:
    # Unquoted identifiers fold to lower case in PostgreSQL.
    return tok.value if tok.kind == "ident" else tok.value.lower()


def _read_qualified(tokens: list[Token], pos: int) -> tuple[tuple[str, str], int]:
    parts = [_name_value(tokens[pos])]
    pos += 1
    while pos + 1 < len(tokens) and tokens[pos].value == "." and tokens[pos + 1].kind in ("ident", "word"):
        parts.append(_name_value(tokens[pos + 1]))
        pos += 2
    schema = parts[-2] if len(parts) >= 2 else "public"
    return (schema, parts[-1]), pos


def _matching_paren(tokens: list[Token], pos: int) -> int:
    depth = 0
    for i in range(pos, len(tokens)):
        if tokens[i].value == "(" and tokens[i].kind == "punct":
            depth += 1
        elif tokens[i].value == ")" and tokens[i].kind == "punct":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced parentheses")


def _split_top(tokens: list[Token]) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.kind == "punct" and tok.value in "([":
            depth += 1
        elif tok.kind == "punct" and tok.value in ")]":
            depth -= 1
        if tok.kind == "punct" and tok.value == "," and depth == 0:
            parts.append([])
            continue
        parts[-1].append(tok)
    return [p for p in parts if p]


def _render(tokens: list[Token]) -> str:
    text = " ".join(t.value if t.kind != "ident" else f'"{t.value}"' for t in tokens)
    text = re.sub(r"\s*([(\[])\s*", r"\1", text)      # numeric(12, 2), integer[]
    text = re.sub(r"\s*([)\]])", r"\1", text)          # keep the space in "timestamp(3) with time zone"
    text = re.sub(r"\s*,\s*", ",", text)
    return re.sub(r"\s*\.\s*", ".", text)


# ---- PostgreSQL → ClickHouse types --------------------------------------------------------------------

_SIMPLE_TYPES = {
    "smallint": "Int16", "int2": "Int16", "smallserial": "Int16", "serial2": "Int16",
    "integer": "Int32", "int": "Int32", "int4": "Int32", "serial": "Int32", "serial4": "Int32",
    "bigint": "Int64", "int8": "Int64", "bigserial": "Int64", "serial8": "Int64",
    "real": "Float32", "float4": "Float32", "double precision": "Float64", "float8": "Float64",
    "text": "String", "varchar": "String", "character varying": "String", "char": "String", "character": "String",
    "bpchar": "String", "name": "String", "citext": "String", '"char"': "String",
    "boolean": "Bool", "bool": "Bool",
    "date": "Date32",
    "uuid": "UUID",
    "json": "String", "jsonb": "String",
    "timestamp": "DateTime64(6, 'UTC')", "timestamp without time zone": "DateTime64(6, 'UTC')",
    "timestamp with time zone": "DateTime64(6, 'UTC')", "timestamptz": "DateTime64(6, 'UTC')",
}
# Types kept as their exact PostgreSQL text (a note says so).
_TEXT_TYPES = ("time", "time without time zone", "time with time zone", "timetz", "interval", "bytea", "inet", "cidr",
               "macaddr", "macaddr8", "money", "bit", "bit varying", "varbit", "xml", "tsvector", "tsquery", "point",
               "line", "lseg", "box", "path", "polygon", "circle", "int4range", "int8range", "numrange", "tsrange",
               "tstzrange", "daterange", "oid", "regclass", "pg_lsn", "hstore", "ltree")


@dataclass
class TypeMapping:
    ch_type: str            # without Nullable
    array_dims: int = 0
    note: str = ""          # a lossy or approximate mapping, said plainly
    supported: bool = True  # False: unknown type kept as text


def map_pg_type(pg_type: str, enums: dict[str, list[str]] | None = None,
                domains: dict[str, str] | None = None) -> TypeMapping:
    """A PostgreSQL column type (as pg_dump writes it) → its ClickHouse type."""
    enums, domains = enums or {}, domains or {}
    text = re.sub(r"\s+", " ", pg_type.strip().lower())
    dims = 0
    while True:
        m = re.search(r"\s*\[\d*\]$", text)
        if not m:
            break
        dims += 1
        text = text[:m.start()]
    if text.endswith(" array"):
        dims, text = dims + 1, text[:-6]
    text = re.sub(r"^(pg_catalog|public)\.", "", text)
    bare = text.strip('"')
    base, note, supported = _map_base(text, bare, enums, domains)
    return TypeMapping(base, dims, note, supported)


def _map_base(text: str, bare: str, enums: dict[str, list[str]], domains: dict[str, str]) -> tuple[str, str, bool]:
    simple = re.sub(r"\(\s*\d+\s*\)", "", text).replace("  ", " ").strip()
    if text in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[text], "", True
    m = re.match(r"^(numeric|decimal)(?:\((\d+)(?:,\s*(-?\d+))?\))?$", text)
    if m:
        if not m.group(2):
            return "Float64", "numeric without precision is stored as Float64 (about 15 significant digits)", True
        precision, scale = int(m.group(2)), int(m.group(3) or 0)
        if precision > 76 or scale < 0 or scale > precision:
            return "Float64", f"numeric({precision},{scale}) does not fit a ClickHouse Decimal: stored as Float64", True
        return f"Decimal({precision}, {scale})", "", True
    m = re.match(r"^float\((\d+)\)$", text)
    if m:
        return ("Float32" if int(m.group(1)) <= 24 else "Float64"), "", True
    m = re.match(r"^timestamp\(\d\)( with(out)? time zone)?$", text)
    if m:
        return "DateTime64(6, 'UTC')", "", True
    if simple in _SIMPLE_TYPES and simple not in ("timestamp", "timestamptz"):
        return _SIMPLE_TYPES[simple], "", True  # varchar(120), character(4), …
    if bare in enums or bare.split(".")[-1] in enums:
        return "LowCardinality(String)", f"enum type {bare} is stored as text", True
    key = bare if bare in domains else bare.split(".")[-1]
    if key in domains:
        inner = map_pg_type(domains[key], enums, {k: v for k, v in domains.items() if k != key})
        return inner.ch_type, f"domain {bare} over {domains[key]}; its checks are not enforced", inner.supported
    if simple.split("(")[0] in _TEXT_TYPES or re.sub(r"\(\d+\)", "", text) in _TEXT_TYPES:
        return "String", f"{text} is kept as PostgreSQL's text form", True
    return "String", f"unknown type {text}: kept as text", False


def clickhouse_column_type(mapping: TypeMapping, nullable: bool) -> str:
    if mapping.array_dims:
        inner = mapping.ch_type
        # Elements of a PostgreSQL array may always be NULL; the array itself cannot be Nullable in ClickHouse.
        t = "Nullable(String)" if describe(inner).low_cardinality else f"Nullable({inner})"
        for _ in range(mapping.array_dims):
            t = f"Array({t})"
        return t
    if nullable:
        if describe(mapping.ch_type).low_cardinality:
            return f"LowCardinality(Nullable({describe(mapping.ch_type).inner}))"
        return f"Nullable({mapping.ch_type})"
    return mapping.ch_type


# ---- the plan (pass 1) -------------------------------------------------------------------------------


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
    encoding: str = "utf-8"
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
    key, pos = _read_qualified(tokens, pos)
    if pos < len(tokens) and tokens[pos].is_word("PARTITION", "OF"):
        raise _Unsupported("a partition of another table (CREATE TABLE … PARTITION OF)")
    if pos >= len(tokens) or tokens[pos].value != "(":
        raise _Unsupported("CREATE TABLE without a column list (AS SELECT, OF type)")
    end = _matching_paren(tokens, pos)
    columns: list[PgColumn] = []
    primary: list[str] = []
    for element in _split_top(tokens[pos + 1:end]):
        first = element[0]
        if first.is_word("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE", "LIKE"):
            words = [t.value.upper() for t in element if t.kind == "word"]
            if "LIKE" == words[0]:
                raise _Unsupported("CREATE TABLE … (LIKE other)")
            if "PRIMARY" in words:
                i = next(i for i, t in enumerate(element) if t.is_word("KEY"))
                close = _matching_paren(element, i + 1)
                primary = [_name_value(t) for t in element[i + 2:close] if t.kind in ("ident", "word")]
            else:
                plan.ignored["constraints other than primary keys (not enforced by ClickHouse)"] += 1
            continue
        columns.append(_parse_column(element, plan))
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
    name = _name_value(element[0])
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
    pg_type = _render(element[1:i])
    words = [t.value.upper() for t in element[i:] if t.kind == "word"]
    not_null = any(words[j] == "NOT" and j + 1 < len(words) and words[j + 1] == "NULL" for j in range(len(words)))
    if "PRIMARY" in words:
        not_null = True
    if "GENERATED" in words and "STORED" in words:
        plan.notes.append(f"Column {name} is generated in PostgreSQL; pg_dump does not write its values, "
                          "so it is empty here.")
        not_null = False
    return PgColumn(name=name, ch_name="", pg_type=pg_type, ch_type="", not_null=not_null)


class _Unsupported(Exception):
    pass


def _handle_alter_table(tokens: list[Token], text: str, line: int, plan: DumpPlan) -> None:
    pos = 2
    if pos < len(tokens) and tokens[pos].is_word("ONLY"):
        pos += 1
    if pos < len(tokens) and tokens[pos].is_word("IF"):
        pos += 2
    key, pos = _read_qualified(tokens, pos)
    words = [t.value.upper() for t in tokens[pos:] if t.kind == "word"]
    if "PRIMARY" in words and "KEY" in words and "ADD" in words:
        i = next(i for i in range(pos, len(tokens)) if tokens[i].is_word("KEY"))
        close = _matching_paren(tokens, i + 1)
        plan._pending_pk.append((key, [_name_value(t) for t in tokens[i + 2:close] if t.kind in ("ident", "word")]))
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
        raise _Unsupported("attaching a partition: the partition is loaded as its own table")
    raise _Unsupported("this ALTER TABLE form")


def _handle_create_type(tokens: list[Token], plan: DumpPlan) -> None:
    key, pos = _read_qualified(tokens, 2)
    if pos + 1 < len(tokens) and tokens[pos].is_word("AS") and tokens[pos + 1].is_word("ENUM"):
        plan.enums[key[1]] = [t.value for t in tokens[pos + 2:] if t.kind == "str"]
        plan.ignored["enum types (stored as text)"] += 1
        return
    raise _Unsupported("composite, range and base types (columns of such a type are kept as text)")


def _handle_create_domain(tokens: list[Token], plan: DumpPlan) -> None:
    key, pos = _read_qualified(tokens, 2)
    if pos < len(tokens) and tokens[pos].is_word("AS"):
        pos += 1
    end = pos
    while end < len(tokens) and not tokens[end].is_word(*_COLUMN_STOP):
        end += 1
    plan.domains[key[1]] = _render(tokens[pos:end])
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


def _copy_target(text: str) -> tuple[tuple[str, str], list[str] | None]:
    tokens = tokenize(text)
    key, pos = _read_qualified(tokens, 1)
    cols = None
    if pos < len(tokens) and tokens[pos].value == "(":
        close = _matching_paren(tokens, pos)
        cols = [_name_value(t) for t in tokens[pos + 1:close] if t.kind in ("ident", "word")]
        pos = close + 1
    rest = " ".join(t.value.upper() for t in tokens[pos:])
    if re.search(r"\b(CSV|BINARY|DELIMITER|NULL|ENCODING|HEADER|FORMAT)\b", rest):
        raise _Unsupported("COPY options other than the text format pg_dump writes")
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


def _detect_encoding(head: str) -> str:
    m = re.search(r"SET\s+client_encoding\s*=\s*'([^']+)'", head, re.IGNORECASE)
    name = (m.group(1) if m else "UTF8").upper().replace("-", "").replace("_", "")
    return {"UTF8": "utf-8", "UNICODE": "utf-8", "LATIN1": "latin-1", "ISO88591": "latin-1", "WIN1252": "cp1252",
            "SQLASCII": "utf-8", "LATIN9": "iso8859-15", "WIN1251": "cp1251", "KOI8R": "koi8-r"}.get(name, "utf-8")


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
                key, cols = _copy_target(st.text)
            except (_Unsupported, ValueError) as exc:
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
        _plan_statement(st, plan)
    _finish_plan(plan)
    return plan


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
            key, cols, rows = _parse_insert(tokenize(text))
            if key in plan.tables:
                table = plan.tables[key]
                plan.tables[key].rows_in_dump += len(rows)
                _observe_arrays(_array_positions(table, cols or [c.name for c in table.columns]), rows)
            else:
                raise _Unsupported(f"INSERT into {key[0]}.{key[1]}, which the dump does not create")
        else:
            raise _Unsupported("not a statement Helios can load")
    except _Unsupported as exc:
        plan.unsupported.append(Issue(st.line, _short(text), str(exc)))
    except (ValueError, IndexError, StopIteration) as exc:
        plan.unsupported.append(Issue(st.line, _short(text), f"could not be read: {exc}"))


def _parse_insert(tokens: list[Token], with_values: bool = True
                  ) -> tuple[tuple[str, str], list[str] | None, Any]:
    """``INSERT INTO t [(cols)] VALUES (…), (…)`` → key, columns, rows (as text like COPY) or their count."""
    key, pos = _read_qualified(tokens, 2)
    cols = None
    if tokens[pos].value == "(":
        close = _matching_paren(tokens, pos)
        cols = [_name_value(t) for t in tokens[pos + 1:close] if t.kind in ("ident", "word")]
        pos = close + 1
    if tokens[pos].is_word("OVERRIDING"):
        pos += 3
    if not tokens[pos].is_word("VALUES"):
        raise _Unsupported("INSERT … SELECT (only INSERT … VALUES is loaded)")
    pos += 1
    rows: list[list[str | None]] = []
    count = 0
    while pos < len(tokens) and tokens[pos].value == "(":
        close = _matching_paren(tokens, pos)
        if with_values:
            rows.append([_literal(part) for part in _split_top(tokens[pos + 1:close])])
        count += 1
        pos = close + 1
        if pos < len(tokens) and tokens[pos].value == ",":
            pos += 1
    if pos < len(tokens) and not tokens[pos].is_word("ON", "RETURNING"):
        raise _Unsupported("an INSERT form Helios cannot read")
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
            raise _Unsupported(f"the value {tok.value!r} is an expression, not a literal")
    if len(tokens) == 2 and tokens[0].kind == "op" and tokens[0].value in "+-" and tokens[1].kind == "num":
        return tokens[0].value.replace("+", "") + tokens[1].value
    raise _Unsupported(f"the value {_render(tokens)!r} is an expression, not a literal")


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


def line_source(data: str | bytes | Path) -> LineSource:
    """A re-openable source of the dump's lines (a file path, bytes, or text)."""
    if isinstance(data, Path):
        path = data
        if not path.is_file():
            raise ValidationError(f"There is no file {path}.", "Check the path to the dump.")
        with path.open("rb") as fh:
            encoding = _detect_encoding(fh.read(65536).decode("latin-1"))

        def from_file() -> Iterator[str]:
            with path.open("r", encoding=encoding, errors="surrogateescape", newline="") as fh:
                yield from _lines(fh)
        return from_file
    if isinstance(data, bytes):
        encoding = _detect_encoding(data[:65536].decode("latin-1"))
        raw = data

        def from_bytes() -> Iterator[str]:
            yield from _lines(io.TextIOWrapper(io.BytesIO(raw), encoding=encoding, errors="surrogateescape",
                                               newline=""))
        return from_bytes
    text = data

    def from_text() -> Iterator[str]:
        yield from _lines(io.StringIO(text, newline=""))
    return from_text


def _lines(fh: io.TextIOBase) -> Iterator[str]:
    # newline="" keeps a bare "\r" inside a line; only "\n" ends a line (as in COPY data).
    pending = ""
    for chunk in iter(lambda: fh.read(1 << 16), ""):
        pending += chunk
        parts = pending.split("\n")
        pending = parts.pop()
        for part in parts:
            yield part + "\n"
    if pending:
        yield pending


def prepare_database(ch: Any, database: str, replace: bool = False, append: bool = False) -> None:
    problems = check_identifier(database, "database")
    if problems:
        raise ValidationError(problems[0], "Choose a database name of letters, digits and underscores.",
                              problems=problems)
    if database in ("system", "helios", "default", "information_schema", "INFORMATION_SCHEMA"):
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
                key, cols = _copy_target(st.text)
            except (_Unsupported, ValueError):
                continue
            if key not in plan.tables:
                continue
            table = plan.tables[key]
            cols = cols or [c.name for c in table.columns]
            unknown = [c for c in cols if c not in {x.name for x in table.columns}]
            for _line_no, text in scanner.copy_rows():
                row_index[key] += 1
                if unknown:
                    sink_for(key).reject(_bad_row(text, row_index[key], f"COPY names unknown columns {unknown}."))
                    continue
                fields = [decode_copy_field(f, plan.encoding) for f in split_copy_line(text)]
                add_row(key, cols, fields, text, row_index[key])
                if progress and row_index[key] % 5000 == 0:
                    progress(table.ch_name, row_index[key])
            if progress:
                progress(table.ch_name, row_index[key])
        elif st.kind == "sql" and re.match(r"^INSERT\s+INTO\s", st.text[:20], re.IGNORECASE):
            try:
                key, cols, rows = _parse_insert(tokenize(st.text))
            except (_Unsupported, ValueError, IndexError):
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
