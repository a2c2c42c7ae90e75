"""helios_core.export: the CSV and Parquet downloads read back to the same data."""

from __future__ import annotations

import io
import ipaddress
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pyarrow.parquet as pq

from helios_core.export import to_csv_bytes, to_parquet_bytes


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [1, 2, 3],
        "name": ["Ann", "Bo, the \"second\"", "Łukasz ☃"],
        "amount": [1.5, None, -2.25],
        "day": pd.to_datetime(["2024-05-01", "2024-05-02", "2024-05-03"]),
    })


def test_csv_round_trip_keeps_values_quotes_and_unicode():
    data = to_csv_bytes(_frame())
    back = pd.read_csv(io.BytesIO(data), parse_dates=["day"])
    pd.testing.assert_frame_equal(back, _frame(), check_dtype=False)


def test_csv_is_utf8_with_a_header_and_no_index():
    text = to_csv_bytes(_frame()).decode("utf-8")
    assert text.splitlines()[0] == "id,name,amount,day"
    assert "Łukasz ☃" in text
    assert '"Bo, the ""second"""' in text


def test_csv_of_an_empty_result_is_just_the_header():
    assert to_csv_bytes(pd.DataFrame({"a": [], "b": []})) == b"a,b\n"


def test_csv_writes_missing_values_as_empty_fields():
    text = to_csv_bytes(pd.DataFrame({"a": [1, None], "b": ["x", None]})).decode()
    assert text.splitlines()[1:] == ["1.0,x", ","]


def test_parquet_round_trip_keeps_types_and_values():
    frame = _frame()
    back = pd.read_parquet(io.BytesIO(to_parquet_bytes(frame)))
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert back["id"].dtype.kind == "i" and back["amount"].dtype.kind == "f"


def test_parquet_is_a_parquet_file_without_an_index_column():
    data = to_parquet_bytes(_frame())
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1"
    assert pq.read_table(io.BytesIO(data)).column_names == ["id", "name", "amount", "day"]


def test_parquet_writes_python_objects_as_text_and_keeps_nulls():
    ids = [uuid.UUID(int=1), None, uuid.UUID(int=3)]
    frame = pd.DataFrame({"id": ids, "ip": [ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("::1"), None],
                          "price": [Decimal("1.10"), Decimal("2"), None]})
    back = pq.read_table(io.BytesIO(to_parquet_bytes(frame))).to_pydict()
    assert back["id"] == [str(ids[0]), None, str(ids[2])]
    assert back["ip"] == ["10.0.0.1", "::1", None]
    assert back["price"] == ["1.10", "2", None]


def test_parquet_keeps_lists_and_times_as_they_are():
    frame = pd.DataFrame({"tags": [["a", "b"], [], None], "at": [datetime(2024, 1, 1, 12, tzinfo=UTC)] * 3})
    back = pq.read_table(io.BytesIO(to_parquet_bytes(frame)))
    assert back.column("tags").to_pylist() == [["a", "b"], [], None]
    assert back.column("at").type.tz == "UTC"
    assert back.column("at").to_pylist()[0] == datetime(2024, 1, 1, 12, tzinfo=UTC)


def test_parquet_writes_python_dates_as_dates_and_datetimes_as_timestamps():
    frame = pd.DataFrame({
        "day": [date(2024, 5, 1), None, date(1999, 12, 31)],
        "at": [datetime(2024, 1, 1, 12), None, datetime(2024, 1, 2)],
        "zoned": [datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
                  None],
    })
    table = pq.read_table(io.BytesIO(to_parquet_bytes(frame)))
    assert str(table.schema.field("day").type) == "date32[day]"
    assert str(table.schema.field("at").type) == "timestamp[us]"
    assert table.schema.field("zoned").type.tz == "UTC"
    assert table.column("day").to_pylist() == [date(2024, 5, 1), None, date(1999, 12, 31)]
    assert table.column("zoned").to_pylist()[1] == datetime(2024, 1, 1, tzinfo=UTC)


def test_parquet_writes_mixed_dates_and_datetimes_as_text():
    # Naive beside zoned datetimes: Arrow would drop the zones, so the text keeps them.
    frame = pd.DataFrame({"mixed": [date(2024, 1, 1), datetime(2024, 1, 1, 6)],
                          "zones": [datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=UTC)]})
    back = pq.read_table(io.BytesIO(to_parquet_bytes(frame))).to_pydict()
    assert back == {"mixed": ["2024-01-01", "2024-01-01 06:00:00"],
                    "zones": ["2024-01-01 00:00:00", "2024-01-01 00:00:00+00:00"]}


def test_parquet_does_not_change_the_callers_frame():
    frame = pd.DataFrame({"id": [uuid.UUID(int=7)]})
    to_parquet_bytes(frame)
    assert isinstance(frame["id"].iloc[0], uuid.UUID)


def test_parquet_of_an_empty_result_keeps_the_columns():
    back = pd.read_parquet(io.BytesIO(to_parquet_bytes(pd.DataFrame({"a": pd.Series([], dtype="int64")}))))
    assert list(back.columns) == ["a"] and len(back) == 0
