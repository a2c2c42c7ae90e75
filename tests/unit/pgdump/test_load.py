"""helios_core.pgdump.load: the pure part of pass 2, PostgreSQL's text form of a value → what the row sink takes."""

from __future__ import annotations

import pytest

from helios_core.loading import RowError
from helios_core.pgdump.load import DumpReport, TableLoad, value_converter
from helios_core.pgdump.plan import DumpPlan, PgColumn


def col(ch_type: str, dims: int = 0) -> PgColumn:
    return PgColumn(name="c", ch_name="c", pg_type="", ch_type=ch_type, not_null=False, array_dims=dims)


def test_scalars_pass_through_as_text():
    convert = value_converter(col("Nullable(Int32)"))
    assert convert("12") == "12" and convert(None) is None


def test_arrays_are_parsed_and_a_null_array_is_empty():
    convert = value_converter(col("Array(Array(Nullable(String)))", 2))
    assert convert("{{a,b},{c,NULL}}") == [["a", "b"], ["c", None]]
    assert convert(None) == []


def test_a_bad_array_literal_is_a_type_mismatch_naming_the_column():
    with pytest.raises(RowError) as info:
        value_converter(col("Array(Nullable(Int32))", 1))("{1,")
    assert (info.value.column, info.value.error_type, info.value.message) == (
        "c", "type_mismatch", "c: unterminated array literal (missing })")


@pytest.mark.parametrize("text", ["infinity", "-infinity", "0044-03-15 BC", "2000-01-01 00:00:00 BC"])
def test_times_postgres_has_and_clickhouse_has_not_are_refused(text):
    for ch_type in ("Nullable(Date32)", "DateTime64(6, 'UTC')"):
        with pytest.raises(RowError, match="has no ClickHouse equivalent"):
            value_converter(col(ch_type))(text)


def test_times_inside_arrays_are_checked_too():
    convert = value_converter(col("Array(Nullable(Date32))", 1))
    assert convert("{2000-01-01,NULL}") == ["2000-01-01", None]
    with pytest.raises(RowError, match="'infinity' has no ClickHouse equivalent"):
        convert("{2000-01-01,infinity}")


def test_the_report_sums_its_tables():
    report = DumpReport("shop", [TableLoad("a", "public.a", 3, 2, 1), TableLoad("b", "public.b", 4, 4, 0)], DumpPlan())
    assert (report.inserted, report.quarantined) == (6, 1)
    assert report.to_json()["tables"][0] == {"table": "a", "source": "public.a", "rows_in_dump": 3, "inserted": 2,
                                             "quarantined": 1}
