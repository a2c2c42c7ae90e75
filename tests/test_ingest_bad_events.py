"""Bad events are quarantined with their reason, never zero-filled or coerced, on every conversion path:
the ingester's Arrow fast path and its per-record path, import loading, and a real stream with crashes."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from helpers import WAIT, wait_until

from helios_core import sources
from helios_core.cli.sources import read_schema_file
from helios_core.ddl import TableOptions
from helios_core.ingest.batch import BatchBuilder, RawRecord, build_records
from helios_core.ingest.consumer import IngestConfig, SimulatedCrash, SourceConsumer
from helios_core.schema import ColumnSpec, infer_schema

# The CLI's plain column list (the Helios seed's /api/create-table shape): no required flags, no defaults.
PLAIN = [{"name": "event_id", "type": "UUID"}, {"name": "user_id", "type": "UInt32"},
         {"name": "kind", "type": "LowCardinality(String)"}, {"name": "note", "type": "String"},
         {"name": "ts", "type": "DateTime64(3, 'UTC')"},
         {"name": "width", "type": "UInt16", "json_path": "screen.width"},
         {"name": "tags", "type": "Array(String)"}, {"name": "referrer", "type": "Nullable(String)"},
         {"name": "plan", "type": "String", "default": "free"},
         {"name": "props", "type": "String", "format": "json"}]


def plain_columns(tmp_path) -> list[ColumnSpec]:
    path = tmp_path / "cols.json"
    path.write_text(orjson.dumps(PLAIN).decode())
    return read_schema_file(str(path))[0]


def good_event(i: int, start: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> dict:
    return {"event_id": str(uuid.UUID(int=i + 1)), "user_id": i, "kind": "click", "note": f"n{i}",
            "ts": (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"), "screen": {"width": 1280},
            "tags": ["a"], "referrer": None, "plan": "pro", "props": "{}"}


BAD = {  # kind → (change to a good event, error_type, text the reason contains)
    "missing_time": (lambda e: e.pop("ts"), "missing_required", "missing field ts"),
    "null_time": (lambda e: e.update(ts=None), "missing_required", "missing field ts"),
    "missing_int": (lambda e: e.pop("user_id"), "missing_required", "missing field user_id"),
    "missing_text": (lambda e: e.pop("note"), "missing_required", "missing field note"),
    "missing_uuid": (lambda e: e.pop("event_id"), "missing_required", "missing field event_id"),
    "missing_array": (lambda e: e.pop("tags"), "missing_required", "missing field tags"),
    "missing_parent": (lambda e: e.pop("screen"), "missing_required", "missing field screen.width"),
    "bool_into_int": (lambda e: e.update(user_id=True), "type_mismatch", "boolean"),
    "object_into_string": (lambda e: e.update(note={"a": 1}), "type_mismatch", "JSON object"),
    "array_into_string": (lambda e: e.update(kind=["click"]), "type_mismatch", "JSON array"),
    "parent_is_string": (lambda e: e.update(screen="big"), "type_mismatch", "screen is a JSON string"),
    "parent_is_array": (lambda e: e.update(screen=[1280, 800]), "type_mismatch", "screen is a JSON array"),
    "wrong_type": (lambda e: e.update(user_id="user-12"), "type_mismatch", "whole number"),
    "bad_time": (lambda e: e.update(ts="31/02/2025 10:00"), "type_mismatch", "ISO-8601"),
    "bool_time": (lambda e: e.update(ts=False), "type_mismatch", "boolean"),
}


def spoil(i: int, kind: str) -> dict:
    event = good_event(i)
    BAD[kind][0](event)
    return event


def records(events: list[dict]) -> list[RawRecord]:
    return [RawRecord(orjson.dumps(e), str(i)) for i, e in enumerate(events)]


def test_cli_plain_column_list_needs_every_non_nullable_field(tmp_path):
    columns = plain_columns(tmp_path)
    by_name = {c.name: c for c in columns}
    assert by_name["ts"].rejects_missing and by_name["user_id"].rejects_missing and by_name["tags"].rejects_missing
    assert not by_name["referrer"].rejects_missing and not by_name["plan"].rejects_missing
    builder = BatchBuilder(columns)
    # a batch of only timestamp-less events: the Arrow fast path
    built = build_records(builder, records([spoil(i, "missing_time") for i in range(5)]))
    assert built.table is None
    assert [p.error_type for p in built.problems] == ["missing_required"] * 5
    assert all(p.message.startswith("missing field ts") and p.column == "ts" for p in built.problems)


@pytest.mark.parametrize("path", ["fast", "per_record"])
def test_every_bad_kind_is_refused_with_its_reason(tmp_path, path):
    builder = BatchBuilder(plain_columns(tmp_path))
    events = [good_event(0)]
    kinds = list(BAD)
    events += [spoil(i + 1, kind) for i, kind in enumerate(kinds)]
    optional = good_event(99)
    for key in ("referrer", "plan"):
        optional.pop(key)  # a Nullable column and one with a default may be absent
    events.append(optional)
    events.append({**good_event(100), "props": {"nested": [1, 2]}})  # declared json: kept as JSON text
    recs = records(events)
    if path == "per_record":  # a record of JSON lines turns the fast path off for the batch
        recs.append(RawRecord(orjson.dumps(good_event(101)) + b"\n" + orjson.dumps(good_event(102)), "x"))
    built = build_records(builder, recs)
    reasons = {int(p.seq): p for p in built.problems}
    for i, kind in enumerate(kinds, 1):
        error_type, text = BAD[kind][1:]
        assert i in reasons, f"{kind} was not quarantined"
        assert reasons[i].error_type == error_type, (kind, reasons[i])
        assert text in reasons[i].message, (kind, reasons[i].message)
    assert len(built.problems) == len(kinds)
    table = built.table.to_pylist()
    assert [r["user_id"] for r in table] == [0, 99, 100] + ([101, 102] if path == "per_record" else [])
    assert table[1]["plan"] == "free" and table[1]["referrer"] is None
    assert orjson.loads(table[2]["props"]) == {"nested": [1, 2]}


def test_inference_declares_what_the_ingester_needs():
    """Columns inference makes: arrays seen missing get an explicit [] default, mixed text/objects get format
    json, epoch columns their unit — so the inferred schema ingests its own sample without quarantine."""
    sample = [{"ts": 1738317605000000 + i, "tags": ["x"] if i % 2 else None, "blob": "text" if i % 3 else {"a": i},
               "n": i} for i in range(60)]
    for i in range(0, 60, 7):
        sample[i].pop("tags")
    schema = infer_schema(sample)
    by_name = {c.name: c for c in schema.columns}
    assert by_name["ts"].time_unit == "us" and by_name["ts"].type.startswith("DateTime64(6")
    assert by_name["tags"].default == "[]" and not by_name["tags"].rejects_missing
    assert by_name["blob"].format == "json"
    built = build_records(BatchBuilder(schema.columns), records(sample))
    assert not built.problems, built.problems[:3]
    first = built.table.to_pylist()[0]
    assert first["ts"] == datetime(2025, 1, 31, 10, 0, 5, tzinfo=UTC)
    assert first["tags"] == [] and orjson.loads(first["blob"]) == {"a": 0}
    # the same epoch numbers without the declared unit are refused, not stored in the year 56000
    undeclared = [ColumnSpec("ts", "DateTime64(6, 'UTC')", "ts")]
    built = build_records(BatchBuilder(undeclared), records([{"ts": 1738317605000000}]))
    assert built.table is None and "outside the time range" in built.problems[0].message


def test_import_loading_follows_the_same_rules(ch):
    from helios_core.loading import RowSink

    ch.execute("CREATE DATABASE IF NOT EXISTS bad_events")
    ch.execute("CREATE TABLE bad_events.people (id UInt32, name String, tags Array(String), "
               "score Float64 DEFAULT 1.5, props String, nick Nullable(String), ts DateTime64(3, 'UTC')) "
               "ENGINE = MergeTree ORDER BY id")
    columns = [("id", "UInt32"), ("name", "String"), ("tags", "Array(String)"), ("score", "Float64"),
               ("props", "String"), ("nick", "Nullable(String)"), ("ts", "DateTime64(3, 'UTC')")]
    sink = RowSink(ch, "bad_events", "people", columns, source="import", source_id="j1", origin="test",
                   json_columns={"props"})
    base = {"id": 1, "name": "a", "tags": [], "score": 2.0, "props": "x", "nick": None, "ts": "2025-01-01T00:00:00Z"}
    rows = [base, {**base, "id": 2, "score": None, "props": {"k": 1}},          # default; declared json
            {**base, "id": True}, {**base, "name": {"o": 1}}, {**base, "ts": None}, {**base, "tags": None},
            {**base, "ts": 50_000_000_000}]
    for n, row in enumerate(rows):
        sink.add(row, orjson.dumps(row).decode(), n)
    sink.flush()
    assert (sink.counts.inserted, sink.counts.quarantined) == (3, 4)
    got = ch.internal_query("SELECT id, score, props, toString(ts) AS ts FROM bad_events.people ORDER BY id, ts")
    assert [(r["id"], r["score"], r["props"], r["ts"][:10]) for r in got] == [
        (1, 2.0, "x", "1971-08-02"),   # 5e10 is epoch milliseconds, as in the ingester
        (1, 2.0, "x", "2025-01-01"), (2, 1.5, '{"k":1}', "2025-01-01")]  # JSON text as the ingester writes it
    q = ch.internal_query("SELECT error_type, column_name, error_message FROM bad_events.people_quarantine "
                          "ORDER BY sub_index")
    assert [(r["error_type"], r["column_name"]) for r in q] == [
        ("type_mismatch", "id"), ("type_mismatch", "name"), ("missing_required", "ts"), ("missing_required", "tags")]
    assert q[2]["error_message"].startswith("missing field ts")


# ---- the crash test: a real stream, malformed events of every kind, the consumer killed mid-way ------------

CRASH_CONFIG = IngestConfig(batch_rows=150, flush_seconds=0.1, idle_sleep=0.02, max_backoff=0.5)


def wait_for(predicate, timeout: float = WAIT):
    """The shared :func:`helpers.wait_until` (never a shorter deadline than its generous default)."""
    return wait_until(predicate, timeout=max(timeout, WAIT))


def test_crash_mid_stream_every_bad_event_quarantined_every_good_one_once(ch, aws_conn, moto_server, kinesis_stream,
                                                                          tmp_path):
    rng = random.Random(16)
    stream = kinesis_stream(shards=2)
    columns = plain_columns(tmp_path) + [ColumnSpec("seq", "String", virtual="_sequence_number"),
                                         ColumnSpec("shard", "LowCardinality(String)", virtual="_shard_id")]
    req = sources.CreateRequest(
        stream_name=stream, stream_arn=f"arn:aws:kinesis:eu-west-1:123456789012:stream/{stream}", columns=columns,
        options=TableOptions(database="bad_events", table=f"crash_{uuid.uuid4().hex[:6]}", create_database=True),
        connection=sources.Connection(region="eu-west-1", endpoint_url=moto_server))
    result = sources.create_table_and_source(ch, req)
    assert result.order_by == ["ts"]  # no sorting key given: the time column
    source = sources.get_source(ch, result.source_id)

    n_good, n_bad = 3000, 300
    payloads: list[tuple[bytes, str, str]] = []  # payload, partition key, expected outcome ("" good, else kind)
    kinds = list(BAD) + ["bad_json"]
    for i in range(n_good):
        payloads.append((orjson.dumps(good_event(i)), str(i % 97), ""))
    for j in range(n_bad):
        kind = kinds[j % len(kinds)]
        i = n_good + j
        raw = orjson.dumps(good_event(i))[:-7] if kind == "bad_json" else orjson.dumps(spoil(i, kind))
        payloads.append((raw, str(i % 97), kind))
    rng.shuffle(payloads)

    client = aws_conn.client("kinesis")
    outcome: dict[tuple[str, str], str] = {}

    def put(chunk: list[tuple[bytes, str, str]]) -> None:
        for k in range(0, len(chunk), 250):
            part = chunk[k:k + 250]
            reply = client.put_records(StreamName=stream, Records=[{"Data": d, "PartitionKey": p} for d, p, _ in part])
            assert not reply.get("FailedRecordCount")
            for (_, _, kind), r in zip(part, reply["Records"], strict=False):
                outcome[(r["ShardId"], r["SequenceNumber"])] = kind

    half = len(payloads) // 2
    put(payloads[:half])

    def landed() -> int:
        rows = ch.internal_query(f"SELECT count() AS n FROM bad_events.`{source.table}`")[0]["n"]
        quarantined = ch.internal_query(f"SELECT count() AS n FROM bad_events.`{source.quarantine_table}`")[0]["n"]
        return rows + quarantined

    kill = threading.Event()

    def crash(point: str) -> None:
        # Abrupt: the process dies after a batch reached the table but before its quarantine rows and
        # checkpoint were written (the worst moment for duplicates and for losing bad events).
        if kill.is_set() and point == "after_table_insert":
            raise SimulatedCrash(point)

    first = SourceConsumer(source, ch.new_client, lambda: aws_conn.client("kinesis"), CRASH_CONFIG,
                           crash_hook=crash).start()
    try:
        assert wait_for(lambda: landed() >= 300), "the first consumer made no progress"
        kill.set()  # the next batch to reach the table kills it (at the latest one of the half still to come)
        put(payloads[half:])
        assert wait_for(lambda: first.crashed or not first.alive, timeout=60)
        assert first.crashed
    finally:
        first.stop(timeout=30)
    second = SourceConsumer(source, ch.new_client, lambda: aws_conn.client("kinesis"), CRASH_CONFIG).start()
    try:
        assert wait_for(lambda: landed() >= len(payloads), timeout=180), f"only {landed()} of {len(payloads)} landed"
        assert wait_for(lambda: all(not cp.pending_seq for cp in _checkpoints(ch, source.id).values()), timeout=60)
    finally:
        second.stop()

    rows = ch.internal_query(f"SELECT shard, seq, user_id, toString(ts) AS ts FROM bad_events.`{source.table}`")
    quarantined = ch.internal_query(f"SELECT shard_id, sequence_number, error_type, error_message "
                                    f"FROM bad_events.`{source.quarantine_table}`")
    keys = [(r["shard"], r["seq"]) for r in rows]
    assert len(keys) == len(set(keys)) == n_good  # every good event exactly once
    assert all(outcome[k] == "" for k in keys)
    assert not any(r["ts"].startswith("1970") for r in rows)
    q_keys = [(r["shard_id"], r["sequence_number"]) for r in quarantined]
    assert len(q_keys) == len(set(q_keys)) == n_bad  # every malformed event in quarantine, once
    for r in quarantined:
        kind = outcome[(r["shard_id"], r["sequence_number"])]
        assert kind, r
        if kind == "bad_json":
            assert r["error_type"] == "decode_error"
        else:
            assert r["error_type"] == BAD[kind][1] and BAD[kind][2] in r["error_message"], (kind, r)


def _checkpoints(ch, source_id: str):
    from helios_core.ingest.store import load_checkpoints
    return load_checkpoints(ch, source_id)
