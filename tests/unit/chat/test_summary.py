"""helios_core.chat.summary: the sentence under every chat answer. Its numbers come from the result rows only."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from helios_core.chat.summary import currency_column, fmt, summarize

# ---- one value as a person reads it ----------------------------------------------------------------------


@pytest.mark.parametrize("value, column, text", [
    (12345, "", "12,345"),
    (np.int64(7), "", "7"),
    (2020496.371, "", "2,020,496.37"),
    (2.0, "", "2"),
    (np.float64(1.25), "", "1.25"),
    (0.000123456, "", "0.0001235"),
    (0.713, "", "0.713"),
    (0.713, "conversion_rate", "71.3%"),
    (1.4, "share", "140.0%"),
    (2.0, "share", "2"),          # beyond 150% it is not read as a share
    (None, "", "no value"),
    (float("nan"), "", "no value"),
    (math.inf, "", "infinite"),
    (True, "", "yes"),
    (False, "", "no"),
    (date(2024, 5, 1), "", "2024-05-01"),
    (pd.Timestamp("2024-05-01"), "", "2024-05-01"),
    (pd.Timestamp("2024-05-01 10:30"), "", "2024-05-01 10:30"),
    ("text", "", "text"),
])
def test_fmt(value, column, text):
    assert fmt(value, column) == text


def test_a_boolean_from_a_result_frame_reads_yes_or_no():
    assert summarize(pd.DataFrame({"active": [True]}), ["active"], ["Bool"]) == "Active: yes."


# ---- no rows, one value, one row ----------------------------------------------------------------------------


def test_no_rows():
    frame = pd.DataFrame({"n": []})
    assert summarize(frame, ["n"], ["UInt64"]) == "The query returned no rows."
    assert summarize(frame, ["n"], ["UInt64"], "number of events") == "No rows matched (number of events)."


def test_one_value_with_and_without_a_description():
    frame = pd.DataFrame({"n": [42]})
    assert summarize(frame, ["n"], ["UInt64"], "number of events") == "Number of events: 42."
    assert summarize(pd.DataFrame({"avg_amount": [3.5]}), ["avg_amount"], ["Float64"]) == "Average amount: 3.50."


def test_one_row_of_several_measures_names_each():
    frame = pd.DataFrame({"cnt": [3], "avg_amount": [2.5]})
    assert summarize(frame, ["cnt", "avg_amount"], ["UInt64", "Float64"]) == "Count 3, average amount 2.50."


def test_one_group():
    frame = pd.DataFrame({"country": ["US"], "count": [10]})
    assert summarize(frame, ["country", "count"], ["String", "UInt64"]) == "US with count 10."
    assert summarize(frame, ["country", "count"], ["String", "UInt64"], "number of events by country") \
        == "Number of events by country: US (10)."


# ---- groups ----------------------------------------------------------------------------------------------------

COUNTRIES = pd.DataFrame({"country": ["US", "DE", "FR"], "count": [10, 30, 5]})


def test_groups_name_the_highest_and_lowest_with_a_total():
    assert summarize(COUNTRIES, ["country", "count"], ["String", "UInt64"]) == \
        "3 country groups: DE has the highest count (30), FR the lowest (5). Total: 45."


def test_counted_groups_say_most_and_fewest():
    assert summarize(COUNTRIES, ["country", "count"], ["String", "UInt64"], "number of events by country") == \
        "Number of events by country — 3 country groups: DE has the most (30), FR the fewest (5). Total: 45."


def test_a_truncated_result_says_so_and_gives_no_total():
    sentence = summarize(COUNTRIES, ["country", "count"], ["String", "UInt64"], "number of events by country", True)
    assert "(more rows exist than are shown)" in sentence and "Total" not in sentence


def test_averages_are_not_added_up():
    frame = pd.DataFrame({"country": ["US", "DE"], "avg_amount": [10.0, 20.0]})
    assert "Total" not in summarize(frame, ["country", "avg_amount"], ["String", "Float64"])
    assert "Total" not in summarize(frame, ["country", "avg_amount"], ["String", "Float64"],
                                    "average amount by country")


def test_ids_are_shown_as_written_not_as_numbers():
    frame = pd.DataFrame({"user_id": [7000, 9000], "n": [3, 4]})
    assert summarize(frame, ["user_id", "n"], ["UInt64", "UInt64"]) == \
        "2 user id groups: 9000 has the highest n (4), 7000 the lowest (3)."


# ---- time series ------------------------------------------------------------------------------------------------

DAYS = pd.DataFrame({"day": pd.to_datetime(["2024-05-01", "2024-05-02", "2024-05-03"]),
                     "revenue": [100.0, 250.5, 80.0]})


def test_a_time_series_gives_its_span_peak_and_low():
    assert summarize(DAYS, ["day", "revenue"], ["Date", "Float64"]) == (
        "Revenue over 3 days from 2024-05-01 to 2024-05-03: highest 250.50 (2024-05-02), lowest 80 (2024-05-03).")


def test_a_total_over_time_is_added_when_the_description_asks_for_one():
    assert summarize(DAYS, ["day", "revenue"], ["Date", "Float64"], "total revenue by day").endswith(
        "lowest 80 (2024-05-03). Total: 430.50.")


def test_a_truncated_time_series_gives_no_total():
    assert "Total:" not in summarize(DAYS, ["day", "revenue"], ["Date", "Float64"], "total revenue by day", True)


def test_hours_are_shown_with_their_time():
    frame = pd.DataFrame({"hour": pd.to_datetime(["2024-05-01 10:00", "2024-05-01 11:00"]), "avg_ms": [3.0, 4.0]})
    assert "2 hours from 2024-05-01 10:00 to 2024-05-01 11:00" in summarize(frame, ["hour", "avg_ms"],
                                                                           ["DateTime", "Float64"])


# ---- rows without measures ----------------------------------------------------------------------------------------


def test_plain_rows_are_counted():
    frame = pd.DataFrame({"id": [1, 2], "name": ["a", "b"]})
    assert summarize(frame, ["id", "name"], ["UInt64", "String"]) == "2 rows."
    assert summarize(frame, ["id", "name"], ["UInt64", "String"], "rows of events", truncated=True) == \
        "2 rows of events (more rows exist than are shown)."
    assert summarize(frame.head(1), ["id", "name"], ["UInt64", "String"], "rows of events") == \
        "1 of the rows of events."


def test_a_measure_with_no_numbers_falls_back_to_the_row_count():
    frame = pd.DataFrame({"country": ["US", "DE"], "x": ["a", "b"]})
    assert summarize(frame, ["country", "x"], ["String", "Float64"]) == "2 rows."


# ---- money in several currencies ----------------------------------------------------------------------------------


def test_amounts_by_currency_are_never_added_up():
    frame = pd.DataFrame({"currency": ["USD", "EUR"], "revenue": [100.0, 90.0]})
    assert summarize(frame, ["currency", "revenue"], ["String", "Float64"]) == "Revenue: 100 USD, 90 EUR."
    assert summarize(frame, ["currency", "revenue"], ["String", "Float64"], "total revenue by currency") == \
        "Total revenue by currency: 100 USD, 90 EUR."


def test_the_highest_in_each_currency_is_named_not_one_across_currencies():
    frame = pd.DataFrame({"plan": ["a", "b", "c", "d"], "currency": ["USD", "USD", "EUR", "EUR"],
                          "revenue": [1.0, 5.0, 3.0, 2.0]})
    assert summarize(frame, ["plan", "currency", "revenue"], ["String", "String", "Float64"]) == \
        "Revenue — 4 rows; the highest in each currency: b (5 USD), c (3 EUR)."


def test_the_currency_column_is_found_by_name_or_by_its_codes():
    assert currency_column(pd.DataFrame({"currency": ["x"]}), ["currency"]) == "currency"
    assert currency_column(pd.DataFrame({"code": ["USD", "EUR"]}), ["code"]) == "code"
    assert currency_column(pd.DataFrame({"country": ["US", "DE"]}), ["country"]) is None
