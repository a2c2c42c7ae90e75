"""helios_core.pgdump.typemap: PostgreSQL column types → ClickHouse types, every lossy mapping said plainly."""

from __future__ import annotations

import pytest

from helios_core.chtypes import parse_type
from helios_core.pgdump.typemap import TypeMapping, clickhouse_column_type, map_pg_type


@pytest.mark.parametrize("pg, clickhouse", [
    ("smallint", "Int16"), ("integer", "Int32"), ("int", "Int32"), ("serial", "Int32"), ("bigint", "Int64"),
    ("bigserial", "Int64"), ("pg_catalog.int8", "Int64"), ("real", "Float32"), ("double precision", "Float64"),
    ("float(10)", "Float32"), ("float(30)", "Float64"), ("boolean", "Bool"), ("date", "Date32"), ("uuid", "UUID"),
    ("text", "String"), ("varchar(120)", "String"), ("character varying(40)", "String"), ("character(4)", "String"),
    ('"char"', "String"), ("jsonb", "String"), ("numeric(12,2)", "Decimal(12, 2)"), ("numeric(5)", "Decimal(5, 0)"),
    ("timestamp with time zone", "DateTime64(6, 'UTC')"), ("timestamp(3) without time zone", "DateTime64(6, 'UTC')"),
    ("  TIMESTAMPTZ ", "DateTime64(6, 'UTC')"),
])
def test_exact_mappings(pg, clickhouse):
    assert map_pg_type(pg) == TypeMapping(clickhouse)


@pytest.mark.parametrize("pg, note", [
    ("numeric", "numeric without precision is stored as Float64 (about 15 significant digits)"),
    ("numeric(80,2)", "numeric(80,2) does not fit a ClickHouse Decimal: stored as Float64"),
    ("numeric(5,-1)", "numeric(5,-1) does not fit a ClickHouse Decimal: stored as Float64"),
])
def test_numerics_clickhouse_cannot_hold_exactly_become_float_with_a_note(pg, note):
    assert map_pg_type(pg) == TypeMapping("Float64", note=note)


@pytest.mark.parametrize("pg", ["interval", "time(3) with time zone", "bit varying(5)", "int4range", "money", "inet",
                                "bytea", "tsvector", "hstore"])
def test_types_without_an_equivalent_keep_postgres_text(pg):
    mapping = map_pg_type(pg)
    assert (mapping.ch_type, mapping.supported) == ("String", True)
    assert mapping.note == f"{pg} is kept as PostgreSQL's text form"


def test_an_unknown_type_is_text_and_marked_unsupported():
    assert map_pg_type("public.geometry") == TypeMapping("String", 0, "unknown type geometry: kept as text", False)


@pytest.mark.parametrize("pg, clickhouse, dims", [
    ("integer[]", "Int32", 1), ("text[][]", "String", 2), ("integer ARRAY", "Int32", 1), ("numeric(4,1)[3]",
                                                                                          "Decimal(4, 1)", 1),
])
def test_array_dimensions(pg, clickhouse, dims):
    mapping = map_pg_type(pg)
    assert (mapping.ch_type, mapping.array_dims) == (clickhouse, dims)


def test_enums_become_low_cardinality_text():
    enums = {"mood": ["sad", "ok"]}
    assert map_pg_type("public.mood", enums) == TypeMapping("LowCardinality(String)", 0,
                                                            "enum type mood is stored as text")
    assert map_pg_type("mood[]", enums).array_dims == 1


def test_domains_take_their_base_type_and_say_checks_are_not_enforced():
    mapping = map_pg_type("public.posint", domains={"posint": "integer"})
    assert mapping == TypeMapping("Int32", 0, "domain posint over integer; its checks are not enforced")


def test_a_domain_over_itself_does_not_loop():
    assert map_pg_type("d", domains={"d": "d"}).supported is False


@pytest.mark.parametrize("mapping, nullable, clickhouse", [
    (TypeMapping("Int32"), False, "Int32"),
    (TypeMapping("Int32"), True, "Nullable(Int32)"),
    (TypeMapping("LowCardinality(String)"), True, "LowCardinality(Nullable(String))"),
    (TypeMapping("Int32", 1), True, "Array(Nullable(Int32))"),        # an array column itself is never Nullable
    (TypeMapping("Int32", 2), False, "Array(Array(Nullable(Int32)))"),  # its elements always may be NULL
    (TypeMapping("LowCardinality(String)", 1), False, "Array(Nullable(String))"),
])
def test_clickhouse_column_types(mapping, nullable, clickhouse):
    assert clickhouse_column_type(mapping, nullable) == clickhouse
    parse_type(clickhouse)  # a type Helios's own grammar accepts
