import pandas as pd

from helios_core.charts import ChartSpec, build_chart, is_numeric_type, is_time_type, suggest_chart


def test_types_are_read_through_their_wrappers_in_any_order():
    assert is_time_type("LowCardinality(Nullable(Date))") and is_time_type("Nullable(DateTime64(3, 'UTC'))")
    assert is_numeric_type("LowCardinality(Nullable(UInt8))") and is_numeric_type("Nullable(Decimal(10, 2))")
    assert not is_time_type("LowCardinality(String)") and not is_numeric_type("String")


def test_suggestions_follow_the_shape_of_the_result():
    assert suggest_chart(["day", "n"], ["Date", "UInt64"]) == ChartSpec("line", "day", "n", None)
    assert suggest_chart(["plan", "n"], ["LowCardinality(String)", "UInt64"]) == ChartSpec("bar", "plan", "n", None)
    assert suggest_chart(["a", "b"], ["Float64", "Int32"]) == ChartSpec("scatter", "a", "b", None)
    assert suggest_chart(["name"], ["String"]) is None


def test_line_charts_are_drawn_in_x_order():
    frame = pd.DataFrame({"day": pd.to_datetime(["2026-01-03", "2026-01-01", "2026-01-02"]), "n": [3, 1, 2]})
    figure = build_chart(frame, ChartSpec("line", "day", "n"))
    assert list(figure.data[0].y) == [1, 2, 3]
