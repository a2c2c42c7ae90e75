"""helios_core.ingest.convert: one value or a column into its ClickHouse column's Arrow form, or the reason it does
not fit (the text a user reads in the quarantine)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from helios_core.chtypes import INT_RANGES, parse_type
from helios_core.ingest.convert import (
    BadValue,
    arrow_type,
    coerce,
    convert_column,
    convert_text_column,
    format_check,
    parse_time,
)


def value(type_name: str, raw, **kw):
    return coerce(parse_type(type_name), raw, **kw)


def problem(type_name: str, raw, **kw) -> str:
    with pytest.raises(BadValue) as info:
        coerce(parse_type(type_name), raw, **kw)
    return str(info.value)


def column(type_name: str, values, **kw):
    return convert_column(parse_type(type_name), values, **kw)


# ---- single values: integers ---------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(n for n in INT_RANGES if n in ("Int8", "Int16", "Int32", "Int64",
                                                                          "UInt8", "UInt16", "UInt32", "UInt64")))
def test_integer_range_edges(type_name):
    low, high = INT_RANGES[type_name]
    assert value(type_name, low) == low and value(type_name, high) == high
    assert problem(type_name, high + 1) == f"{high + 1} is out of range for {type_name}"
    assert problem(type_name, low - 1) == f"{low - 1} is out of range for {type_name}"


@pytest.mark.parametrize("raw, number", [(12, 12), ("12", 12), (" -7 ", -7), (2.0, 2), (Decimal("40"), 40)])
def test_integers_from_whole_numbers_in_any_form(raw, number):
    assert value("Int32", raw) == number


@pytest.mark.parametrize("raw, message", [
    (True, "a boolean (true) is not a whole number"),
    (False, "a boolean (false) is not a whole number"),
    (1.5, "1.5 is not a whole number"),
    ("1e3", "'1e3' is not a whole number"),
    ("", "'' is not a whole number"),
    ([1], "[1] is not a whole number"),
    (Decimal("1.5"), "Decimal('1.5') is not a whole number"),
])
def test_integers_refuse_what_is_not_a_whole_number(raw, message):
    assert problem("Int64", raw) == message


def test_long_values_are_cut_in_the_message():
    message = problem("Int32", "x" * 500)
    assert len(message) < 100 and "…" in message


# ---- single values: other scalars -------------------------------------------------------------------------


def test_floats_and_their_refusals():
    assert value("Float64", "2.5") == 2.5 and value("Float32", 3) == 3.0
    assert problem("Float64", "abc") == "'abc' is not a number"
    assert problem("Float64", False) == "a boolean is not a number"


@pytest.mark.parametrize("raw, result", [(True, True), (0, False), (1, True), ("TRUE", True), ("0", False)])
def test_booleans(raw, result):
    assert value("Bool", raw) is result


@pytest.mark.parametrize("raw", ["yes", 2, "maybe"])
def test_booleans_refuse_other_words(raw):
    assert problem("Bool", raw) == f"{raw!r} is not true/false"


@pytest.mark.parametrize("type_name, raw, message", [
    ("Date", "2024-02-30", "'2024-02-30' is not a date"),
    ("Date", "2024/01/01", "'2024/01/01' is not a date (YYYY-MM-DD)"),
    ("Date", "1969-12-31", "1969-12-31 is outside the range of Date"),
    ("Date", "2149-06-07", "2149-06-07 is outside the range of Date"),
    ("Date32", "1899-12-31", "1899-12-31 is outside the range of Date32"),
])
def test_dates_out_of_range_or_malformed(type_name, raw, message):
    assert problem(type_name, raw) == message


def test_dates_at_the_edges_of_their_range_are_kept_as_text():
    assert value("Date", "1970-01-01") == "1970-01-01" and value("Date", "2149-06-06") == "2149-06-06"
    assert value("Date32", "1900-01-01") == "1900-01-01"


def test_times_become_integers_in_the_columns_unit():
    assert value("DateTime64(3, 'UTC')", "2024-01-01T00:00:00Z") == 1_704_067_200_000
    assert value("DateTime64(6, 'UTC')", "2024-01-01T00:00:00.123456Z") == 1_704_067_200_123_456
    assert value("DateTime", "2024-01-01T01:00:00+01:00") == 1_704_067_200
    # epoch numbers: seconds or milliseconds by magnitude, unless the column declares its unit
    assert value("DateTime64(3, 'UTC')", 1_700_000_000) == value("DateTime64(3, 'UTC')", 1_700_000_000_000)
    assert value("DateTime64(3, 'UTC')", 1_700_000_000, epoch_unit="ms") == 1_700_000_000


@pytest.mark.parametrize("type_name, raw, message", [
    ("DateTime", "1969-12-31T23:59:59Z", "'1969-12-31T23:59:59Z' is outside the time range 1970–2106"),
    ("DateTime", "2106-02-08T00:00:00Z", "'2106-02-08T00:00:00Z' is outside the time range 1970–2106"),
    ("DateTime64(3, 'UTC')", "yesterday", "'yesterday' is not an ISO-8601 time (for example 2025-01-31T10:00:00Z)"),
])
def test_times_out_of_range_or_unreadable(type_name, raw, message):
    assert problem(type_name, raw) == message


def test_parse_time_refuses_a_number_beyond_every_range():
    with pytest.raises(BadValue, match="outside the time range 1900–2299"):
        parse_time(10**20)


@pytest.mark.parametrize("type_name, raw, message", [
    ("UUID", "not-a-uuid", "'not-a-uuid' is not a UUID"),
    ("IPv4", "::1", "'::1' is not an IPv4 address"),
    ("IPv4", "300.1.1.1", "'300.1.1.1' is not an IP address"),
    ("Decimal(5, 2)", "1234.5", "1234.5 has too many digits for Decimal(5, 2)"),
    ("Decimal(5, 2)", "1e3", "'1e3' is not a decimal number"),
    ("Decimal(5, 2)", "1.239", "'1.239' has more than 2 decimal places"),  # never cut silently
    ("FixedString(2)", "abc", "'abc' is longer than 2 bytes"),
    ("FixedString(1)", "é", "'é' is longer than 1 bytes"),
])
def test_text_carried_types_are_checked_before_clickhouse_sees_them(type_name, raw, message):
    assert problem(type_name, raw) == message


def test_text_carried_types_travel_as_text():
    assert value("UUID", "123e4567e89b12d3a456426614174000") == "123e4567e89b12d3a456426614174000"
    assert value("IPv6", "10.0.0.1") == "10.0.0.1"
    assert value("Decimal(5, 2)", 12.5) == "12.5"
    assert value("Decimal(5, 2)", "12.500") == "12.500"  # trailing zeros are not extra places


def test_json_objects_are_not_text_unless_declared():
    assert problem("String", {"a": 1}).startswith("{'a': 1} is a JSON object, not text (declare the column's format")
    assert problem("String", [1]).startswith("[1] is a JSON array, not text")
    assert value("String", {"a": 1}, json_text=True) == '{"a":1}'
    assert value("String", True) == "true" and value("String", 1.0) == "1.0"


def test_nested_values_are_converted_inside():
    assert value("Array(Nullable(Int8))", [1, None]) == [1, None]
    assert problem("Array(Int8)", [1, 300]) == "300 is out of range for Int8"
    assert problem("Array(Int8)", "1,2") == "'1,2' is not a list"
    assert value("Map(String, Int32)", {"a": "1"}) == [("a", 1)]
    assert problem("Map(String, Int32)", [1]) == "[1] is not an object"
    assert problem("JSON", [1]) == "[1] is not a JSON object"


def test_null_stays_null_for_every_type():
    for type_name in ("Int8", "String", "Date", "DateTime", "Array(Int8)", "UUID"):
        assert value(type_name, None) is None


# ---- columns --------------------------------------------------------------------------------------------


def test_a_column_keeps_its_good_values_and_names_each_bad_row():
    result = column("Int8", [1, 200, "x", True, None])
    assert result.array.type == pa.int8()
    assert result.array.to_pylist() == [1, None, None, None, None]
    assert result.errors == {1: "200 is out of range for Int8", 2: "'x' is not a whole number",
                             3: "a boolean (true) is not a whole number"}


def test_fill_replaces_missing_values_only():
    assert column("Int32", [1, None], fill=7).array.to_pylist() == [1, 7]
    assert column("Int32", [1, None]).array.to_pylist() == [1, None]


def test_time_columns_read_iso_text_with_or_without_an_offset_as_utc():
    result = column("DateTime64(3, 'UTC')", ["2024-01-01T00:00:00Z", "2024-01-01 10:00:00", None])
    assert result.errors == {}
    assert result.array.to_pylist() == [datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 10, tzinfo=UTC), None]


def test_time_columns_refuse_hour_only_times_arrow_would_accept():
    result = column("DateTime64(3, 'UTC')", ["2024-01-01T10"])
    assert result.array.to_pylist() == [None] and 0 in result.errors


def test_date_and_uuid_columns_name_the_culprit():
    assert column("Date", ["2024-01-01", "1900-01-01"]).errors == {1: "1900-01-01 is outside the range of Date"}
    assert column("UUID", ["123e4567-e89b-12d3-a456-426614174000", "nope"]).errors == {1: "'nope' is not a UUID"}


def test_map_columns_convert_their_values():
    result = column("Map(String, Int32)", [{"a": 1}, {"b": "x"}])
    assert result.array.to_pylist() == [[("a", 1)], None]
    assert result.errors == {1: "'x' is not a whole number"}


# ---- text columns (CSV) -----------------------------------------------------------------------------------


def text_column(type_name: str, values):
    return convert_text_column(parse_type(type_name), pa.array(values, pa.string()))


def test_text_integers_are_strict():
    assert text_column("Int32", ["1", "2", None]).array.to_pylist() == [1, 2, None]
    result = text_column("Int32", ["1", "2.5", ""])
    assert result.errors == {1: "'2.5' is not a whole number", 2: "'' is not a whole number"}


def test_text_booleans_read_the_words_files_use():
    assert text_column("Bool", ["t", "No", "ON", " yes ", None]).array.to_pylist() == [True, False, True, True, None]
    assert text_column("Bool", ["t", "maybe"]).errors == {1: "'maybe' is not true/false"}


def test_text_times_and_their_range():
    result = text_column("DateTime64(3, 'UTC')", ["2024-01-01 10:00:00", "2024-01-01T10:00:00+02:00"])
    assert result.array.to_pylist() == [datetime(2024, 1, 1, 10, tzinfo=UTC), datetime(2024, 1, 1, 8, tzinfo=UTC)]
    assert text_column("DateTime", ["1969-01-01T00:00:00Z"]).errors == {
        0: "'1969-01-01T00:00:00Z' is outside the time range 1970–2106"}


def test_text_strings_keep_empty_and_null_apart():
    assert text_column("String", ["", None]).array.to_pylist() == ["", None]


# ---- types and formats -------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name, arrow", [
    ("Nullable(DateTime64(6, 'UTC'))", pa.timestamp("us", tz="UTC")),
    ("DateTime64(9, 'UTC')", pa.timestamp("ns", tz="UTC")),
    ("DateTime", pa.timestamp("s", tz="UTC")),
    ("Array(Nullable(Int16))", pa.list_(pa.int16())),
    ("Map(String, Float32)", pa.map_(pa.string(), pa.float32())),
    ("LowCardinality(String)", pa.string()),
    ("UInt64", pa.uint64()),
    ("Decimal(10, 2)", pa.string()),
])
def test_arrow_types(type_name, arrow):
    assert arrow_type(parse_type(type_name)) == arrow


@pytest.mark.parametrize("fmt, good, bad", [
    ("uuid", "123e4567-e89b-12d3-a456-426614174000", "123"),
    ("email", "a@b.co", "a@b"),
    ("ip", "::1", "5"),
    ("iso_time", "2024-01-01T00:00:00Z", "2024-13-01"),
])
def test_format_checks(fmt, good, bad):
    check = format_check(fmt)
    assert check is not None and check(good) and not check(bad)


def test_an_unknown_format_has_no_check():
    assert format_check("colour") is None
