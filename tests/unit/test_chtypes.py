"""helios_core.chtypes: reading type names, families, ranges and the strict grammar (no engine needed)."""

from __future__ import annotations

from datetime import date

import pytest

from helios_core import chtypes
from helios_core.chtypes import (
    DATE_BOUNDS,
    DATETIME64_BOUNDS,
    DATETIME_BOUNDS,
    INT_RANGES,
    MAX_TYPE_DEPTH,
    ChType,
    describe,
    family_of,
    normalize_type,
    parse_type,
)
from helios_core.errors import ValidationError

# ---- describe: any type ClickHouse reports -----------------------------------------------------------


@pytest.mark.parametrize("text, inner, base, args, nullable, low_card", [
    ("String", "String", "String", (), False, False),
    ("Nullable(Int32)", "Int32", "Int32", (), True, False),
    ("LowCardinality(String)", "String", "String", (), False, True),
    ("LowCardinality(Nullable(String))", "String", "String", (), True, True),
    ("Nullable(Decimal(18, 2))", "Decimal(18, 2)", "Decimal", ("18", "2"), True, False),
    ("DateTime64(3, 'UTC')", "DateTime64(3, 'UTC')", "DateTime64", ("3", "'UTC'"), False, False),
    ("Enum8('a' = 1, 'b, c' = 2)", "Enum8('a' = 1, 'b, c' = 2)", "Enum8", ("'a' = 1", "'b, c' = 2"), False, False),
    ("Array(Nullable(String))", "Array(Nullable(String))", "Array", ("Nullable(String)",), False, False),
    ("Map(String, Array(Int64))", "Map(String, Array(Int64))", "Map", ("String", "Array(Int64)"), False, False),
    ("Tuple(a Int8, b String)", "Tuple(a Int8, b String)", "Tuple", ("a Int8", "b String"), False, False),
    ("  Nullable(UUID) ", "UUID", "UUID", (), True, False),
])
def test_describe_reads_base_arguments_and_wrappers(text, inner, base, args, nullable, low_card):
    t = describe(text)
    assert isinstance(t, ChType)
    assert (t.inner, t.base, t.args, t.nullable, t.low_cardinality) == (inner, base, args, nullable, low_card)
    assert chtypes.base_type(text) == inner
    assert chtypes.base_name(text) == base
    assert chtypes.is_nullable(text) is nullable


@pytest.mark.parametrize("text, family", [
    ("Int8", "integer"), ("UInt256", "integer"), ("Nullable(Int64)", "integer"),
    ("Float32", "float"), ("BFloat16", "float"), ("Decimal(9, 2)", "decimal"), ("Decimal64(4)", "decimal"),
    ("String", "string"), ("FixedString(3)", "string"), ("LowCardinality(Nullable(String))", "string"),
    ("DateTime", "time"), ("DateTime('UTC')", "time"), ("Nullable(DateTime64(6, 'UTC'))", "time"),
    ("Date", "date"), ("Date32", "date"), ("Bool", "bool"), ("UUID", "uuid"), ("IPv4", "ip"), ("IPv6", "ip"),
    ("Enum8('a' = 1)", "enum"), ("Enum16('a' = 1)", "enum"), ("Array(String)", "array"), ("Map(String, String)", "map"),
    ("Tuple(UInt8, String)", "tuple"), ("JSON", "json"), ("Object('json')", "json"),
    ("IntervalDay", "other"), ("Nothing", "other"), ("Nullable(Nothing)", "other"),
    ("AggregateFunction(uniq, String)", "other"), ("no such type", "other"), ("", "other"), ("Nullable(Int32", "other"),
])
def test_every_type_has_one_family(text, family):
    assert chtypes.family(text) == family
    assert family in chtypes.FAMILIES
    assert chtypes.is_numeric(text) is (family in ("integer", "float", "decimal"))
    assert chtypes.is_temporal(text) is (family in ("date", "time"))


def test_array_element_is_described_too():
    element = describe("Array(LowCardinality(String))").element
    assert element is not None and element.text == "LowCardinality(String)" and element.family == "string"
    assert describe("String").element is None


def test_describe_never_recurses_on_a_deep_type():
    deep = "Array(" * 3000 + "String" + ")" * 3000
    assert describe(deep).family == "array"
    assert describe("Nullable(" * 3000 + "String" + ")" * 3000).family == "string"


def test_unwrap_and_split_args_keep_quoted_commas_and_nesting():
    assert chtypes.unwrap("Decimal(12, 2)") == ("Decimal", ["12", "2"])
    assert chtypes.unwrap("String") == ("String", [])
    assert chtypes.split_args("'a,b' = 1, 'it\\'s' = 2") == ["'a,b' = 1", "'it\\'s' = 2"]
    assert chtypes.split_args("Map(String, Int8), Array(Tuple(a UInt8, b String))") == [
        "Map(String, Int8)", "Array(Tuple(a UInt8, b String))"]


# ---- the one table of ranges ---------------------------------------------------------------------------


def test_integer_ranges():
    assert INT_RANGES["Int8"] == (-128, 127)
    assert INT_RANGES["UInt8"] == (0, 255)
    assert INT_RANGES["Int64"] == (-2 ** 63, 2 ** 63 - 1)
    assert INT_RANGES["UInt64"] == (0, 2 ** 64 - 1)
    assert INT_RANGES["Int256"][0] == -2 ** 255 and INT_RANGES["UInt128"][1] == 2 ** 128 - 1
    assert all(family_of(name) == "integer" for name in INT_RANGES)
    assert set(chtypes.INTEGER_TYPES) <= set(INT_RANGES)


def test_date_and_time_bounds():
    assert DATE_BOUNDS["Date"] == (date(1970, 1, 1), date(2149, 6, 6))
    assert DATE_BOUNDS["Date32"] == (date(1900, 1, 1), date(2299, 12, 31))
    assert DATETIME_BOUNDS == (0, 4_294_967_295)          # DateTime is an unsigned 32-bit second count
    assert DATETIME64_BOUNDS == (-2_208_988_800, 10_413_791_999)   # 1900-01-01 .. 2299-12-31 23:59:59
    assert chtypes.TIME_BOUNDS == {"DateTime": DATETIME_BOUNDS, "DateTime64": DATETIME64_BOUNDS}


def test_the_other_modules_use_the_one_table():
    from helios_core import loading, timeparse
    from helios_core.ingest import convert
    assert timeparse.DATETIME_BOUNDS is DATETIME_BOUNDS and timeparse.DATETIME64_BOUNDS is DATETIME64_BOUNDS
    assert not hasattr(loading, "DATE_MIN") and not hasattr(loading, "_INT_RANGES")  # imports convert with the sink
    assert convert.INT_RANGES is INT_RANGES and convert.DATE_BOUNDS is DATE_BOUNDS


# ---- the strict grammar for types a user chooses -------------------------------------------------------


@pytest.mark.parametrize("text, canonical", [
    ("String", "String"),
    ("Nullable( Int32 )", "Nullable(Int32)"),
    ("LowCardinality(Nullable(String))", "LowCardinality(Nullable(String))"),
    ("Decimal(18,2)", "Decimal(18, 2)"),
    ("DateTime64(3)", "DateTime64(3, 'UTC')"),
    ("DateTime64(6, 'UTC')", "DateTime64(6, 'UTC')"),
    ("DateTime('UTC')", "DateTime('UTC')"),
    ("Array(Map(String, Array(Nullable(Float64))))", "Array(Map(String, Array(Nullable(Float64))))"),
    ("FixedString(16)", "FixedString(16)"),
])
def test_normalize_type_renders_canonically(text, canonical):
    assert normalize_type(text) == canonical
    assert normalize_type(canonical) == canonical


def test_type_node_knows_wrappers_and_family():
    node = parse_type("LowCardinality(Nullable(String))")
    assert node.nullable and node.low_cardinality and node.family == "string" and node.base().name == "String"
    node = parse_type("Nullable(Decimal(9, 2))")
    assert node.nullable and not node.low_cardinality and node.base().args == (9, 2) and node.family == "decimal"
    assert parse_type("DateTime64(9)").base().args == (9,)
    assert parse_type("Array(Date)").family == "array"


@pytest.mark.parametrize("text, message", [
    ("", "A column has no type."),
    ("Foo", "The type 'Foo' is not valid: 'Foo' is not a type Helios offers."),
    ("Enum8('a' = 1)", "The type \"Enum8('a' = 1)\" has an unexpected character at position 7."),
    ("Decimal(80, 2)", "The type 'Decimal(80, 2)' is not valid: the precision must be between 1 and 76."),
    ("Decimal(5, 6)", "The type 'Decimal(5, 6)' is not valid: the scale must be between 0 and 5."),
    ("DateTime64(10)", "The type 'DateTime64(10)' is not valid: the precision must be between 0 and 9."),
    ("Nullable(Array(String))", "The type 'Nullable(Array(String))' is not valid: Array cannot be inside Nullable."),
    ("Nullable(Nullable(String))",
     "The type 'Nullable(Nullable(String))' is not valid: Nullable cannot be inside Nullable."),
    ("LowCardinality(Float64)",
     "The type 'LowCardinality(Float64)' is not valid: LowCardinality suits String and small number or date types."),
    ("Map(Int32, String)", "The type 'Map(Int32, String)' is not valid: Map keys must be String."),
    ("Array(String", "The type 'Array(String' is not valid: expected ')' at the end."),
    ("String)", "The type 'String)' is not valid: unexpected ')' after the type."),
    ("Tuple(String)", "The type 'Tuple(String)' is not valid: 'Tuple' is not a type Helios offers."),
])
def test_invalid_types_get_the_users_message(text, message):
    with pytest.raises(ValidationError) as info:
        parse_type(text)
    assert info.value.message == message


def test_nesting_limit():
    assert MAX_TYPE_DEPTH == 16
    ok = "Array(" * (MAX_TYPE_DEPTH - 1) + "String" + ")" * (MAX_TYPE_DEPTH - 1)
    assert parse_type(ok).render() == ok
    too_deep = "Array(" * MAX_TYPE_DEPTH + "String" + ")" * MAX_TYPE_DEPTH
    with pytest.raises(ValidationError, match="nests more than 16 levels deep"):
        parse_type(too_deep)
    with pytest.raises(ValidationError, match="nests more than 16 levels deep"):
        parse_type("Array(" * 3000 + "String" + ")" * 3000)


def test_ddl_keeps_its_names():
    from helios_core import ddl
    assert ddl.parse_type is parse_type and ddl.normalize_type is normalize_type
    assert ddl.TypeNode is chtypes.TypeNode and ddl.MAX_TYPE_DEPTH == MAX_TYPE_DEPTH
    assert ddl.base_type("Nullable(Int8)") == "Int8"


@pytest.mark.parametrize("text", [
    "Int8", "UInt256", "Float32", "BFloat16", "Decimal(18, 2)", "String", "FixedString(16)", "LowCardinality(String)",
    "LowCardinality(Nullable(String))", "Nullable(Int32)", "Nullable(DateTime64(3, 'UTC'))", "DateTime('UTC')",
    "Date32", "Bool", "UUID", "IPv6", "Enum8('a' = 1, 'b' = 2)", "Array(Nullable(Int8))", "Map(String, Int64)",
    "Tuple(a Int8, b String)", "JSON", "IntervalDay", "LowCardinality(Nullable(FixedString(3)))", "Dynamic",
])
def test_describe_agrees_with_clickhouse_connects_registry(text):
    from clickhouse_connect.datatypes.registry import get_from_name
    theirs = get_from_name(text)
    ours = describe(text)
    assert (ours.base, ours.nullable, ours.low_cardinality) == (theirs.base_type, theirs.nullable, theirs.low_card)
