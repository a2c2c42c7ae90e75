"""The suggested chart for a SELECT * never colours (or measures) by an id column."""

from __future__ import annotations

import pandas as pd

from helios_core.charts import ChartSpec, is_id_column, suggest_chart

ACTIVITY = (["event_id", "user_id", "event_type", "timestamp", "duration_ms"],
            ["UUID", "UInt64", "LowCardinality(String)", "DateTime64(3, 'UTC')", "UInt32"])


def test_select_star_is_coloured_by_a_category_not_the_uuid():
    assert suggest_chart(*ACTIVITY) == ChartSpec("line", "timestamp", "duration_ms", "event_type")


def test_no_colour_rather_than_an_id():
    assert suggest_chart(["event_id", "ts", "n"], ["UUID", "DateTime", "UInt64"]).color is None
    assert suggest_chart(["orderId", "ts", "n"], ["String", "DateTime", "UInt64"]).color is None
    assert is_id_column("site_id", "String") and is_id_column("x", "Nullable(UUID)")
    assert not is_id_column("paid", "Bool") and not is_id_column("country", "String")


def test_high_cardinality_is_not_a_colour_when_the_data_is_known():
    frame = pd.DataFrame({"ts": pd.date_range("2025-01-01", periods=40, freq="h"), "n": range(40),
                          "page": [f"/p/{i}" for i in range(40)], "device": ["mobile", "desktop"] * 20})
    names, types = ["ts", "n", "page", "device"], ["DateTime", "UInt64", "String", "LowCardinality(String)"]
    assert suggest_chart(names, types, frame).color == "device"
    assert suggest_chart(names, types).color == "page"  # without data only ids are ruled out
