"""PostgreSQL column types (as pg_dump writes them) → ClickHouse column types, with a note for every lossy one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from helios_core.chtypes import describe

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
