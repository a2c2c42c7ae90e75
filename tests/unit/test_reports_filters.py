"""helios_core.reports: a filter's value as a person types it → the values, or a message saying what to type
(no engine needed)."""

from __future__ import annotations

import pytest

from helios_core.errors import ValidationError
from helios_core.report_filters import (
    MAX_IN_VALUES,
    OPERATORS,
    Filter,
    filters_from_rows,
    parse_condition,
    parse_filter_values,
)


@pytest.mark.parametrize("op, text, column_type, values", [
    ("in", "US, GB,FR", "String", ["US", "GB", "FR"]),
    ("not in", " apple_pay ,", "LowCardinality(String)", ["apple_pay"]),
    ("in", "'US', \"GB\"", "String", ["US", "GB"]),            # quotes are the user's, not the value's
    ("in", "US, '', GB", "String", ["US", "", "GB"]),          # '' is the empty value, a blank is nothing
    ("between", "10 and 400", "Float64", ["10", "400"]),
    ("between", "10, 400", "Float64", ["10", "400"]),
    ("between", "10 AND 400", "Int32", ["10", "400"]),
    ("between", "2024-05-01 08:00 and 2024-05-02", "DateTime64(3, 'UTC')", ["2024-05-01 08:00", "2024-05-02"]),
    ("between", "rock and roll, zebra", "String", ["rock and roll", "zebra"]),  # a comma wins over "and"
    ("=", "  serve ", "String", ["serve"]),
    ("=", "Berlin, Germany", "String", ["Berlin, Germany"]),   # one text value may hold a comma
    ("contains", "sign", "Array(String)", ["sign"]),
    ("<>", "5", "Int64", ["5"]),                                # an alias of !=
    ("NOT  IN", "a", "", ["a"]),
])
def test_values_are_read_as_typed(op, text, column_type, values):
    assert parse_filter_values(op, text, column_type) == values


def _message(op: str, text: str, column_type: str = "") -> str:
    with pytest.raises(ValidationError) as info:
        parse_filter_values(op, text, column_type)
    return info.value.message


def test_between_needs_two_bounds_and_says_how_to_type_them():
    assert _message("between", "5", "Int32") == \
        "between needs two values, from and to, not '5': type them as 10 and 400 (or 10, 400)."
    assert "not '1', '2', '3'" in _message("between", "1, 2, 3", "Int32")
    assert "not nothing" in _message("between", " ", "Int32")
    assert "2024-05-01 and 2024-05-31" in _message("between", "2024-05-01", "Date")


def test_in_needs_a_value_and_has_a_ceiling():
    assert _message("in", " , ,", "String") == \
        "in needs at least one value: type them separated by commas, e.g. EUR, USD."
    assert "e.g. 10, 400" in _message("not in", "", "UInt8")
    assert f"at most {MAX_IN_VALUES:,} values" in _message("in", ",".join(map(str, range(MAX_IN_VALUES + 1))))


def test_a_single_value_operator_refuses_a_list_where_the_type_cannot_hold_one():
    message = _message("=", "1,000", "Int64")
    assert "takes one value, not '1,000'" in message and "choose the operator in" in message
    assert "needs a value" in _message(">", "", "Date")


def test_an_unknown_operator_names_the_known_ones():
    assert _message("like", "x") == f"Unknown operator 'like': use one of {', '.join(OPERATORS)}."



def test_rows_become_filters_and_blank_rows_are_skipped():
    rows = [("currency", "in", "USD, EUR"), ("", "", ""), ("amount", "between", "10 and 400")]
    assert filters_from_rows(rows, {"currency": "String", "amount": "Float64"}) == [
        Filter("currency", "in", ["USD", "EUR"]), Filter("amount", "between", ["10", "400"])]


def test_every_unusable_row_is_named():
    rows = [("", "=", "serve"), ("type", "=", "solve"), ("amount", "between", "5"), ("type", "in", "")]
    with pytest.raises(ValidationError) as info:
        filters_from_rows(rows, {"amount": "Int32", "type": "String"})
    assert info.value.message == "3 filter rows cannot be used; the report was not run."
    assert info.value.problems == [
        "Filter row 1 has no column: choose a column, or delete the row.",
        "Filter row 3 (amount): between needs two values, from and to, not '5': type them as 10 and 400 "
        "(or 10, 400).",
        "Filter row 4 (type) has no value: choose a value, or delete the row.",
    ]


def test_one_unusable_row_is_the_message():
    with pytest.raises(ValidationError) as info:
        filters_from_rows([("type", "", "")])
    assert info.value.message == "Filter row 1 (type) has no operator and no value: choose an operator and a " \
                                 "value, or delete the row."


def test_conditions_read_between_the_same_way():
    assert parse_condition("amount between 1 and 5") == Filter("amount", "between", ["1", "5"])
    assert parse_condition("country NOT IN US, 'GB'") == Filter("country", "not in", ["US", "GB"])
