"""The one time parser: which forms are accepted (and as what instant), which are refused, and that every
place that reads times (inference, the ingester, import jobs, reports) agrees with it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from helios_core import timeparse
from helios_core.timeparse import TimeError, parse_iso, to_datetime, to_epoch

UTC = UTC
T0 = datetime(2025, 1, 31, 10, 0, 5, tzinfo=UTC)

ACCEPTED = [  # value, declared unit, the instant (UTC)
    ("2025-01-31", "", datetime(2025, 1, 31, tzinfo=UTC)),
    ("2025-01-31T10:00", "", datetime(2025, 1, 31, 10, 0, tzinfo=UTC)),
    ("2025-01-31 10:00", "", datetime(2025, 1, 31, 10, 0, tzinfo=UTC)),
    ("2025-01-31T10:00:05", "", T0),
    ("2025-01-31T10:00:05Z", "", T0),
    ("2025-01-31T10:00:05z", "", T0),
    ("2025-01-31 10:00:05 UTC", "", T0),
    ("2025-01-31T10:00:05UTC", "", T0),
    ("2025-01-31T11:00:05+01:00", "", T0),
    ("2025-01-31T11:00:05+01", "", T0),
    ("2025-01-31T15:30:05+0530", "", T0),
    ("2025-01-31T02:00:05-08:00", "", T0),
    ("2025-01-31T10:00:05.123Z", "", datetime(2025, 1, 31, 10, 0, 5, 123000, tzinfo=UTC)),
    ("2025-01-31T10:00:05,5Z", "", datetime(2025, 1, 31, 10, 0, 5, 500000, tzinfo=UTC)),
    ("2025-01-31T10:00:05.123456789Z", "", datetime(2025, 1, 31, 10, 0, 5, 123456, tzinfo=UTC)),
    (" 2025-01-31T10:00:05Z ", "", T0),
    (1738317605, "", T0),                       # seconds (below the 1e10 cut-off)
    (1738317605000, "", T0),                    # milliseconds (above it)
    (1738317605.5, "", datetime(2025, 1, 31, 10, 0, 5, 500000, tzinfo=UTC)),
    ("1738317605", "", T0),                     # numeric text is an epoch number too
    (50_000_000_000, "", datetime(1971, 8, 2, 16, 53, 20, tzinfo=UTC)),  # 5e10: milliseconds, 1971
    (10_000_000_000, "", datetime(2286, 11, 20, 17, 46, 40, tzinfo=UTC)),  # the cut-off itself: seconds
    (1738317605, "s", T0),
    (1738317605000, "ms", T0),
    (1738317605000000, "us", T0),
    (1738317605000000000, "ns", T0),
    (1738317, "ms", datetime(1970, 1, 1, 0, 28, 58, 317000, tzinfo=UTC)),  # declared beats magnitude
    (T0, "", T0),
    (date(2025, 1, 31), "", datetime(2025, 1, 31, tzinfo=UTC)),
    (datetime(2025, 1, 31, 10, 0, 5), "", T0),  # naive = UTC
]

REFUSED = [
    "", "   ", "yesterday", "now", "31/02/2025 10:00", "01/31/2025", "2025-13-45T25:61:00Z", "2025-02-30",
    "2025-01-31T24:00:00Z", "2025-01-31T10:00:60Z", "2025-1-31", "2025-01-31T10", "2025-01-31T10Z",
    "2025-01-31 10", "2025-01-31T10+01:00", "20250131T100005",
    "2025-W05-5", "2025-031", "2025-01-31T10:00:05+25:00", "2025-01-31T10:00:05 PST", "2025-01-31T10:00:05.Z",
    "2025-01-31T10:00:05.1234567890Z", "1e10", "2025", "12", "-1", True, False, None, [2025], {"t": 1}, float("nan"),
    1738317605000000,           # epoch microseconds without a declared unit: read as ms, year ~57000: refused
    "2400-01-01T00:00:00Z",     # outside DateTime64's 1900–2299
]


@pytest.mark.parametrize("value,declared,expected", ACCEPTED, ids=[repr(a[0])[:40] + a[1] for a in ACCEPTED])
def test_accepted_forms(value, declared, expected):
    assert to_datetime(value, declared) == expected
    micros = to_epoch(value, "us", declared)
    assert micros == int((expected - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


@pytest.mark.parametrize("value", REFUSED, ids=[repr(v)[:40] for v in REFUSED])
def test_refused_forms(value):
    with pytest.raises(TimeError):
        to_epoch(value, "ms")


def test_nanoseconds_are_kept_in_nanosecond_units():
    assert to_epoch("2025-01-31T10:00:05.123456789Z", "ns") % 1_000_000_000 == 123_456_789
    assert to_epoch(1738317605123456789, "ns", "ns") == 1738317605123456789


def test_parse_iso_refuses_epoch_numbers():
    with pytest.raises(TimeError):
        parse_iso("1738317605")
    assert parse_iso("2025-01-31") == datetime(2025, 1, 31, tzinfo=UTC)


def test_every_reader_agrees_with_the_one_parser():
    """The ingester, import loading, reports and inference accept and refuse the same forms."""
    import pyarrow as pa

    from helios_core.ddl import parse_type
    from helios_core.ingest.convert import BadValue, coerce, convert_column
    from helios_core.loading import RowError, converter_for
    from helios_core.reports import parse_datetime
    from helios_core.schema import infer_schema

    node = parse_type("DateTime64(6, 'UTC')")
    load = converter_for("DateTime64(6, 'UTC')", "t")
    for value, declared, _expected in ACCEPTED:
        if declared:
            continue
        assert coerce(node, value) == to_epoch(value, "us")
        assert load(value) == to_epoch(value, "us")  # import loading uses the ingester's converter
    for value in REFUSED:
        if value is None:
            continue
        with pytest.raises(BadValue):
            coerce(node, value)
        with pytest.raises(RowError):
            load(value)
    # the Arrow fast path refuses what the parser refuses, and reads the same instants
    texts = [v for v, d, _ in ACCEPTED if isinstance(v, str) and not d and not v.strip().isdigit()]
    converted = convert_column(node, texts)
    assert not converted.errors
    assert converted.array.cast(pa.int64()).to_pylist() == [to_epoch(v, "us") for v in texts]
    bad = convert_column(node, ["2025-01-31T10:00:05Z", "2025-01-31T10", "20250131T100005", "2025-01-31T10Z",
                                "2025-01-31 10", "2025-01-31T10+01:00"])
    assert sorted(bad.errors) == [1, 2, 3, 4, 5]  # Arrow alone would take the hour-only forms
    # reports read ISO text with the same parser (and no epoch numbers: a report filter is a date)
    assert parse_datetime("2025-01-31T11:00:05+01:00") == "2025-01-31 10:00:05.000"
    with pytest.raises(ValueError):
        parse_datetime("20250131")
    # inference calls a column an ISO time only when the parser accepts its values
    events = [{"t": v} for v in ("2025-01-31T10:00:05Z", "2025-01-31 10:00:05.5+01:00", "2025-01-31T10:00")]
    assert infer_schema(events).columns[0].type.startswith("DateTime64")
    assert infer_schema([{"t": "20250131T100005"}, {"t": "20250131T100006"}]).columns[0].type == "String"


def test_cutoff_is_documented_in_one_place():
    assert timeparse.EPOCH_MS_CUTOFF == 10_000_000_000


def test_import_date_columns_take_iso_text_only():
    from helios_core.loading import RowError, converter_for

    to_day = converter_for("Date", "d")
    assert to_day("2025-01-31") == "2025-01-31"  # Date travels as ISO text (ClickHouse parses it)
    assert to_day("2025-01-31T23:00:00-05:00") == "2025-01-31"  # the calendar day as written
    for text in ("2025-01-31garbage", "20250131", "2025-02-30", "31/01/2025"):
        with pytest.raises(RowError):
            to_day(text)
