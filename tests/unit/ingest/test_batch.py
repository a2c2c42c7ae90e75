"""helios_core.ingest.batch: Kinesis records → the table's rows plus quarantine rows, each with its reason.

The fast path (Arrow's JSON reader over the whole batch) and the record-by-record path must agree: every test that
builds a batch runs both.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from helios_core.ingest.batch import BatchBuilder, RawRecord, build_records, decode
from helios_core.schema import ColumnSpec

COLUMNS = [
    ColumnSpec("id", "Int32"),
    ColumnSpec("name", "Nullable(String)"),
    ColumnSpec("os", "LowCardinality(String)", json_path="device.os", default="unknown"),
    ColumnSpec("level", "String", allowed_values=["info", "warn"]),
    ColumnSpec("mail", "Nullable(String)", format="email"),
]

ARRIVAL_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def records(*payloads: bytes) -> list[RawRecord]:
    return [RawRecord(p, str(i), f"pk{i}", ARRIVAL_MS + i) for i, p in enumerate(payloads)]


def build(columns, recs, path: str, max_event_bytes: int = 1_000_000):
    builder = BatchBuilder(columns, "shard-7")
    if path == "fast":
        built = builder.fast.build(recs, max_event_bytes)
        assert built is not None, "the fast path gave up on a batch it should read"
        return built
    events, problems = decode(recs, max_event_bytes)
    built = builder.build(events)
    built.problems = problems + built.problems
    return built


def rows(built) -> list[dict]:
    return built.table.to_pylist() if built.table is not None else []


def reasons(built) -> list[tuple[str, str, str, str]]:
    return [(p.seq, p.error_type, p.column, p.message) for p in built.problems]


PATHS = pytest.mark.parametrize("path", ["fast", "by_record"])


@PATHS
def test_good_events_become_rows_with_defaults_and_nulls(path):
    built = build(COLUMNS, records(b'{"id":1,"name":"a","device":{"os":"ios"},"level":"info","mail":"a@b.co"}',
                                   b'{"id":2,"level":"warn"}'), path)
    assert rows(built) == [{"id": 1, "name": "a", "os": "ios", "level": "info", "mail": "a@b.co"},
                           {"id": 2, "name": None, "os": "unknown", "level": "warn", "mail": None}]
    assert built.problems == []


@PATHS
def test_each_bad_event_is_quarantined_with_its_reason(path):
    built = build(COLUMNS, records(b'{"id":1,"level":"info"}',
                                   b'{"name":"no id","level":"info"}',
                                   b'{"id":3,"level":"debug"}',
                                   b'{"id":4,"level":"info","mail":"nope"}'), path)
    assert [r["id"] for r in rows(built)] == [1]
    assert reasons(built) == [
        ("1", "missing_required", "id", "missing field id: it is absent or null, and the column id (Int32) is not "
                                        "Nullable and has no default."),
        ("2", "not_allowed", "level", "'debug' is not one of the allowed values (info, warn)."),
        ("3", "bad_format", "mail", "'nope' is not a valid email."),
    ]


def test_a_value_of_the_wrong_kind_is_named_by_the_record_path():
    recs = records(b'{"id":1,"level":"info"}', b'{"id":"x","level":"info"}')
    assert BatchBuilder(COLUMNS).fast.build(recs, 1_000_000) is None  # the fast path hands over
    built = build_records(BatchBuilder(COLUMNS), recs)
    assert [r["id"] for r in rows(built)] == [1]
    assert reasons(built) == [("1", "type_mismatch", "id", "id: 'x' is not a whole number.")]


def test_a_string_where_an_object_was_expected_is_a_type_mismatch():
    built = build(COLUMNS, records(b'{"id":5,"level":"info","device":"android"}'), "by_record")
    assert reasons(built) == [("0", "type_mismatch", "os",
                               "os: device is a JSON string, not an object, so device.os cannot be read from it.")]
    assert rows(built) == []


def test_a_required_nullable_column_rejects_null():
    columns = [ColumnSpec("id", "Int32"), ColumnSpec("user", "Nullable(String)", required=True)]
    built = build(columns, records(b'{"id":1,"user":null}', b'{"id":2,"user":"u"}'), "by_record")
    assert [r["id"] for r in rows(built)] == [2]
    assert reasons(built) == [("0", "missing_required", "user",
                               "missing field user: it is absent or null, and the column is required.")]


def test_records_that_are_not_events_are_quarantined_whole():
    recs = records(b"[1,2]", b"not json", b"x" * 2_000, b'{"id":1,"level":"info"}')
    built = build_records(BatchBuilder(COLUMNS), recs, max_event_bytes=1_000)
    assert [(p.seq, p.error_type) for p in built.problems] == [("0", "not_an_object"), ("1", "decode_error"),
                                                               ("2", "too_large")]
    assert built.problems[0].message == "The event is a JSON list, not an object."
    assert built.problems[1].message.startswith("The record cannot be decoded: ")
    assert built.problems[2].message == "The record has 2,000 bytes; the limit is 1,000."
    assert [r["id"] for r in rows(built)] == [1]


def test_one_record_of_json_lines_gives_several_events_traced_to_it():
    recs = records(b'{"id":1,"level":"info"}', b'{"id":6,"level":"warn"}\n{"id":7,"level":"oops"}')
    built = build_records(BatchBuilder(COLUMNS), recs)
    assert [r["id"] for r in rows(built)] == [1, 6]
    assert [(p.seq, p.sub, p.error_type) for p in built.problems] == [("1", 1, "not_allowed")]
    assert built.origin is not None and built.origin.record_positions(2) == [0, 1]
    assert built.row_origin(1).seq == "1"


@PATHS
def test_rows_trace_back_to_their_records(path):
    built = build(COLUMNS, records(b'{"id":1,"level":"info"}', b'{"level":"info"}', b'{"id":3,"level":"warn"}'),
                  path)
    assert [r["id"] for r in rows(built)] == [1, 3]
    origin = built.row_origin(1)
    assert (origin.seq, origin.pkey, origin.arrival_ms) == ("2", "pk2", ARRIVAL_MS + 2)
    assert origin.raw == b'{"id":3,"level":"warn"}'
    assert built.origin is not None and built.origin.record_positions(2) == [0, 2]


@PATHS
def test_virtual_columns_come_from_the_record(path):
    columns = [ColumnSpec("id", "Int32"), ColumnSpec("seq", "String", virtual="_sequence_number"),
               ColumnSpec("pk", "String", virtual="_partition_key"), ColumnSpec("shard", "String", virtual="_shard_id"),
               ColumnSpec("arrived", "DateTime64(3, 'UTC')", virtual="_arrival_time"),
               ColumnSpec("raw", "String", virtual="_raw_message")]
    built = build(columns, records(b'{"id":1}'), path)
    assert rows(built) == [{"id": 1, "seq": "0", "pk": "pk0", "shard": "shard-7",
                            "arrived": datetime(2024, 1, 1, tzinfo=UTC), "raw": '{"id":1}'}]


@PATHS
def test_times_are_read_as_utc_and_bad_ones_named(path):
    columns = [ColumnSpec("id", "Int32"), ColumnSpec("at", "DateTime64(3, 'UTC')")]
    recs = records(b'{"id":1,"at":"2024-01-01T00:00:00Z"}', b'{"id":2,"at":"2024-01-01T02:00:00+02:00"}')
    assert [r["at"] for r in rows(build(columns, recs, path))] == [datetime(2024, 1, 1, tzinfo=UTC)] * 2
    bad = build(columns, records(b'{"id":1,"at":"2024-01-01T00:00:00Z"}', b'{"id":2,"at":"soon"}'), path)
    assert [r["id"] for r in rows(bad)] == [1]
    assert [(p.error_type, p.column) for p in bad.problems] == [("type_mismatch", "at")]
    assert "'soon' is not an ISO-8601 time" in bad.problems[0].message


@PATHS
def test_uuid_and_date_columns_are_checked(path):
    columns = [ColumnSpec("u", "UUID"), ColumnSpec("d", "Date")]
    built = build(columns, records(b'{"u":"123e4567-e89b-12d3-a456-426614174000","d":"2024-01-01"}',
                                   b'{"u":"nope","d":"2024-01-01"}', b'{"u":"123e4567e89b12d3a456426614174000",'
                                                                       b'"d":"1960-01-01"}'), path)
    assert len(rows(built)) == 1
    assert [(p.seq, p.error_type, p.column) for p in built.problems] == [("1", "type_mismatch", "u"),
                                                                         ("2", "type_mismatch", "d")]


def test_the_fast_path_steps_aside_for_what_it_cannot_read():
    assert BatchBuilder([ColumnSpec("m", "Map(String, Int32)")]).fast.ok is False
    assert BatchBuilder([ColumnSpec("a", "Int32", json_path="x"), ColumnSpec("b", "Int32", json_path="x")]).fast.ok \
        is False
    builder = BatchBuilder(COLUMNS)
    assert builder.fast.build(records(b'{"id":1}', b"not json"), 1_000_000) is None
    assert builder.fast.build(records(b'{"id":1,\n"level":"info"}'), 1_000_000) is None  # spans lines


def test_an_empty_batch_has_no_rows_and_no_problems():
    built = build_records(BatchBuilder(COLUMNS), [])
    assert built.table is None and built.problems == []


def test_kinesis_records_keep_their_arrival_time_in_milliseconds():
    record = RawRecord.from_kinesis({"Data": b"{}", "SequenceNumber": "9", "PartitionKey": "k",
                                     "ApproximateArrivalTimestamp": datetime(2024, 1, 1)})
    assert (record.sequence_number, record.partition_key, record.arrival_ms) == ("9", "k", 1_704_067_200_000)
    assert RawRecord.from_kinesis({"Data": b"", "SequenceNumber": "1", "ApproximateArrivalTimestamp": 1.5}).arrival_ms \
        == 1_500
    assert RawRecord.from_kinesis({"Data": b"", "SequenceNumber": "1"}).arrival_ms == 0
