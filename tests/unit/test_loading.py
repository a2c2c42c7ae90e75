"""helios_core.loading: the text forms files use (t/yes booleans, a Date written as a full time, JSON text in an
Array column, Parquet decimals) read as such, checked by the one converter, and the reason a value does not fit.

RowSink and add_csv_file write to a table, so they are tested against the engine (tests/test_jobs.py); here are
the pure parts: converter_for (one value checked as an import checks it), is_missing, the counts.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from helios_core.loading import NOT_INSERTED, QuarantineRow, RowError, SinkCounts, converter_for, is_missing


def load(type_name: str, value, column: str = "c", **kw):
    return converter_for(type_name, column, **kw)(value)


def refusal(type_name: str, value, column: str = "c", **kw) -> RowError:
    with pytest.raises(RowError) as info:
        converter_for(type_name, column, **kw)(value)
    return info.value


# ---- missing values --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, float("nan"), np.float64("nan"), pd.NA, pd.NaT])
def test_missing_markers_are_null(value):
    assert is_missing(value)
    assert load("Nullable(Int32)", value) is None


@pytest.mark.parametrize("value", [0, "", False, [], "NULL"])
def test_empty_looking_values_are_not_missing(value):
    assert not is_missing(value)


def test_a_missing_value_in_a_column_that_is_not_nullable_says_so():
    error = refusal("Int32", float("nan"), "amount")
    assert (error.column, error.error_type) == ("amount", "missing_required")
    assert error.message == ("missing field amount: it is empty or absent, and the column (Int32) is not Nullable "
                             "and has no default.")


# ---- booleans and dates as files write them -------------------------------------------------------------------


@pytest.mark.parametrize("text, result", [("yes", True), (" Off ", False), ("t", True), ("N", False), ("1", True)])
def test_boolean_words(text, result):
    assert load("Bool", text) is result


def test_an_unknown_boolean_word_is_a_type_mismatch_naming_the_column():
    error = refusal("Bool", "maybe", "active")
    assert (error.column, error.error_type, error.message) == ("active", "type_mismatch",
                                                               "active: 'maybe' is not true/false")


@pytest.mark.parametrize("value", [datetime(2024, 5, 1, 13), date(2024, 5, 1), "2024-05-01T10:00:00Z", "2024-05-01",
                                   1_714_521_600])
def test_a_date_column_takes_the_calendar_day_of_any_time_form(value):
    assert load("Date", value) == "2024-05-01"


@pytest.mark.parametrize("type_name, value, message", [
    ("Date", "2024-05-01 junk", "d: '2024-05-01 junk' is not a date (YYYY-MM-DD)"),
    ("Date", 10**20, "d: 100000000000000000000 is outside the time range 1900–2299"),
    ("Date", "1969-07-20", "d: 1969-07-20 is outside the range of Date"),
    ("DateTime", "1900-01-01T00:00:00Z", "d: '1900-01-01T00:00:00Z' is outside the time range 1970–2106"),
])
def test_dates_out_of_range_or_unreadable(type_name, value, message):
    error = refusal(type_name, value, "d")
    assert (error.error_type, error.message) == ("type_mismatch", message)


def test_times_become_the_columns_integer():
    assert load("DateTime64(3, 'UTC')", "2024-01-01T00:00:00Z") == 1_704_067_200_000


# ---- decimals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, stored", [("1.5", "1.50"), (Decimal("3.10"), "3.10"), (2, "2.00"),
                                           (" -0.25 ", "-0.25")])
def test_decimals_are_written_at_the_columns_scale(value, stored):
    assert load("Decimal(10, 2)", value) == stored


@pytest.mark.parametrize("value, message", [
    ("1.555", "c: '1.555' has more than 2 decimal places"),
    (True, "c: True is not a decimal number"),
    ("NaN", "c: 'NaN' is not a decimal number"),
    ("abc", "c: 'abc' is not a decimal number"),
    ([1], "c: [1] is not a decimal number"),
])
def test_decimals_never_round_or_guess(value, message):
    assert refusal("Decimal(10, 2)", value).message == message


def test_a_decimal_too_large_for_its_precision():
    assert "too many digits for Decimal(4, 2)" in refusal("Decimal(4, 2)", "123.4").message


# ---- nested values from text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["[1, 2]", (1, 2), np.array([1, 2]), [1, 2]])
def test_arrays_from_json_text_tuples_and_numpy(value):
    assert load("Array(Int32)", value) == [1, 2]


def test_array_elements_are_read_as_files_write_them():
    assert load("Array(Bool)", ["t", "no"]) == [True, False]
    assert load("Array(Nullable(Int32))", "[1, null]") == [1, None]


def test_text_that_is_not_a_json_array():
    error = refusal("Array(Int32)", "1,2")
    assert (error.error_type, error.message) == ("type_mismatch", "c: '1,2' is not a JSON array")


def test_maps_from_json_text_and_parquet_pairs():
    assert load("Map(String, Int32)", '{"a": 1}') == [("a", 1)]
    assert load("Map(String, Int32)", [("a", 1)]) == [("a", 1)]
    assert refusal("Map(String, Int32)", [1, 2, 3]).message == "c: [1, 2, 3] is not an object"


def test_json_columns_keep_objects_and_refuse_other_text():
    assert load("JSON", '{"a": 1}') == '{"a":1}'
    assert refusal("JSON", "not json").message == "c: 'not json' is not a JSON object"


def test_objects_in_text_columns_only_when_declared_json():
    assert load("String", {"a": 1}, json_text=True) == '{"a":1}'
    assert "is a JSON object, not text" in refusal("String", {"a": 1}).message


# ---- types outside the catalogue ------------------------------------------------------------------------------


def test_types_outside_the_catalogue_travel_as_text():
    assert load("IntervalDay", 5) == "5"
    assert load("Nullable(IntervalDay)", None) is None
    assert load("Enum8('a' = 1, 'b' = 2)", "b") == "b"


def test_an_enum_value_outside_its_names_is_refused_as_an_import_refuses_it():
    assert refusal("Enum8('a' = 1, 'b' = 2)", "c").error_type == "not_allowed"


# ---- integers ----------------------------------------------------------------------------------------------------


def test_integer_range_and_text_forms():
    assert load("Int8", "12") == 12
    error = refusal("Int8", 300, "qty")
    assert (error.column, error.error_type) == ("qty", "type_mismatch")
    assert error.message == "qty: 300 is out of range for Int8"


# ---- records of the outcome ---------------------------------------------------------------------------------------


def test_counts_as_json():
    assert SinkCounts(2, 1, {"type_mismatch": 1}).to_json() == {"inserted": 2, "quarantined": 1,
                                                                "errors_by_type": {"type_mismatch": 1}}
    assert SinkCounts().to_json() == {"inserted": 0, "quarantined": 0, "errors_by_type": {}}


def test_a_quarantine_row_defaults_to_no_column_and_index_zero():
    row = QuarantineRow("a,b", "decode_error", "the row has 2 fields; the header has 3")
    assert (row.column_name, row.sub_index) == ("", 0)


def test_columns_an_insert_never_names():
    assert set(NOT_INSERTED) == {"MATERIALIZED", "ALIAS", "EPHEMERAL"}
