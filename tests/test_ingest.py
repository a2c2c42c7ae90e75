"""Ingestion reliability against a real moto server and the embedded engine.

Consumers are driven directly (``SourceConsumer``) so a test can crash them at
chosen points; the manager runs the same class.
"""

from __future__ import annotations

import gzip
import os
import random
import threading
import time
import uuid
from collections import OrderedDict

import orjson
import pytest
from helpers import WAIT, wait_until

from helios_core import sources
from helios_core.ddl import TableOptions
from helios_core.ingest.consumer import IngestConfig, SimulatedCrash, SourceConsumer
from helios_core.ingest.store import load_checkpoints
from helios_core.sandbox import generate_events
from helios_core.schema import ColumnSpec

# Consumers here are driven by hand: the app's process-wide manager must not run its own next to them.
pytestmark = pytest.mark.usefixtures("ingest_by_hand")

FAST = IngestConfig(batch_rows=40, flush_seconds=0.1, idle_sleep=0.02, max_backoff=0.5)


def activity_columns(**rules) -> list[ColumnSpec]:
    cols = [
        ColumnSpec("event_id", "UUID", "event_id", required=True),
        ColumnSpec("user_id", "UInt32", "user_id", required=True),
        ColumnSpec("event_type", "LowCardinality(String)", "event_type", required=True),
        ColumnSpec("timestamp", "DateTime64(3, 'UTC')", "timestamp", required=True),
        ColumnSpec("device", "LowCardinality(String)", "device"),
        ColumnSpec("ip", "IPv4", "ip"),
        ColumnSpec("screen_width", "UInt16", "screen.width"),
        ColumnSpec("referrer", "Nullable(String)", "referrer"),
        ColumnSpec("duration_ms", "UInt32", "duration_ms"),
        ColumnSpec("shard", "LowCardinality(String)", virtual="_shard_id"),
        ColumnSpec("seq", "String", virtual="_sequence_number"),
        ColumnSpec("arrived", "DateTime64(3, 'UTC')", virtual="_arrival_time"),
    ]
    for name, change in rules.items():
        for col in cols:
            if col.name == name:
                for key, value in change.items():
                    setattr(col, key, value)
    return cols


def make_source(ch, moto_server, stream: str, columns=None, table: str | None = None,
                start: str = "TRIM_HORIZON") -> sources.Source:
    table = table or f"t_{uuid.uuid4().hex[:8]}"
    req = sources.CreateRequest(
        stream_name=stream, stream_arn=f"arn:aws:kinesis:eu-west-1:123456789012:stream/{stream}",
        columns=columns or activity_columns(),
        options=TableOptions(database="ingest_test", table=table, order_by=["event_type", "timestamp"],
                             create_database=True),
        connection=sources.Connection(region="eu-west-1", endpoint_url=moto_server), start_position=start)
    result = sources.create_table_and_source(ch, req)
    return sources.get_source(ch, result.source_id)


def consumer(ch, aws_conn, source, hook=None, config: IngestConfig = FAST) -> SourceConsumer:
    return SourceConsumer(source, ch.new_client, lambda: aws_conn.client("kinesis"), config,
                          crash_hook=hook).start()


def put(aws_conn, stream: str, payloads: list[tuple[bytes, str]]) -> list[tuple[str, str]]:
    """PutRecords; returns (shard, sequence number) of each record, in order."""
    client = aws_conn.client("kinesis")
    out: list[tuple[str, str]] = []
    for i in range(0, len(payloads), 200):
        chunk = payloads[i:i + 200]
        reply = client.put_records(StreamName=stream, Records=[{"Data": d, "PartitionKey": k} for d, k in chunk])
        out += [(r["ShardId"], r["SequenceNumber"]) for r in reply["Records"]]
    return out


def landed(ch, source) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    db, t = source.database, source.table
    rows = ch.internal_query(f"SELECT shard, seq FROM `{db}`.`{t}`")
    quarantined = ch.internal_query(f"SELECT shard_id, sequence_number FROM `{db}`.`{t}_quarantine`")
    return ([(r["shard"], r["seq"]) for r in rows],
            [(r["shard_id"], r["sequence_number"]) for r in quarantined])


def wait_for(predicate, timeout: float = WAIT, step: float = 0.1) -> bool:
    """Old name for ``helpers.wait_until``, kept for tests written against it: a ``timeout`` shorter than the
    shared generous deadline is raised to it, and at the deadline the test fails with the last value seen."""
    return bool(wait_until(predicate, timeout=max(timeout, WAIT), interval=step))


def all_landed(ch, source, expected: int):
    def check() -> bool:
        rows, quarantined = landed(ch, source)
        return len(rows) + len(quarantined) >= expected
    return check


def checkpointed(ch, source, ids: list[tuple[str, str]]):
    """True once every shard's checkpoint is committed up to its last record in ``ids``, with no batch
    pending: the consumer has inserted all it will, so a duplicate would already be in the table."""
    last: dict[str, int] = {}
    for shard, seq in ids:
        last[shard] = max(last.get(shard, 0), int(seq))

    def check() -> bool:
        cps = load_checkpoints(ch, source.id)
        return all(shard in cps and cps[shard].committed_seq and int(cps[shard].committed_seq) >= seq
                   and not cps[shard].pending_seq for shard, seq in last.items())
    return check


def test_end_to_end_counts_match_exactly(ch, aws_conn, moto_server, kinesis_stream):
    events = generate_events("user_activity", 400, seed=11, bad_ratio=0.08)
    stream = kinesis_stream(shards=2)
    ids = put(aws_conn, stream, [(e.payload, e.partition_key) for e in events])
    source = make_source(ch, moto_server, stream)
    c = consumer(ch, aws_conn, source)
    try:
        wait_until(all_landed(ch, source, len(events)), message=f"{len(events)} events in table + quarantine")
    finally:
        c.stop()
    rows, quarantined = landed(ch, source)
    bad = [e for e in events if e.defect]
    assert len(quarantined) == len(bad) > 0
    assert len(rows) == len(events) - len(bad)
    assert sorted(rows + quarantined) == sorted(ids)
    # the right rows went to the right place, with their values
    by_id = {sid: e for sid, e in zip(ids, events, strict=False)}
    assert all(not by_id[r].defect for r in rows)
    table = ch.internal_query(f"SELECT toString(event_id) AS id, screen_width FROM ingest_test.`{source.table}`")
    good = {e.event["event_id"]: e.event for e in events if not e.defect}
    assert {r["id"] for r in table} == set(good)
    assert all(r["screen_width"] == good[r["id"]]["screen"]["width"] for r in table)
    expected_types = {"invalid_json": "decode_error", "missing_field": "missing_required",
                      "wrong_type": "type_mismatch", "bad_timestamp": "type_mismatch"}
    q = ch.internal_query(f"SELECT shard_id, sequence_number, error_type, column_name, raw "
                          f"FROM ingest_test.`{source.table}_quarantine`")
    for row in q:
        event = by_id[(row["shard_id"], row["sequence_number"])]
        assert row["error_type"] == expected_types[event.defect], (event.defect, row)
        assert row["raw"].encode() == event.payload
    cps = load_checkpoints(ch, source.id)
    assert set(cps) == {s for s, _ in ids} and all(not cp.pending_seq for cp in cps.values())


CRASH_POINTS = ("poll", "after_intent", "before_insert", "after_table_insert", "after_insert", "after_checkpoint")


def test_crash_safety_every_event_exactly_once(ch, aws_conn, moto_server, kinesis_stream):
    stream = kinesis_stream(shards=2)
    source = make_source(ch, moto_server, stream)
    rng = random.Random(5)
    events = generate_events("user_activity", 1400, seed=3, bad_ratio=0.05)
    produced: list[tuple[str, str]] = []
    stop_producing = threading.Event()

    def produce() -> None:
        i = 0
        while i < len(events) and not stop_producing.is_set():
            chunk = events[i:i + 35]
            produced.extend(put(aws_conn, stream, [(e.payload, e.partition_key) for e in chunk]))
            i += len(chunk)
            time.sleep(0.05)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    crashes = 0
    try:
        for round_ in range(20):
            point = rng.choice(CRASH_POINTS)
            after = rng.randint(0, 3)
            seen = {"n": 0}

            def hook(name: str, point=point, after=after, seen=seen) -> None:
                if name == point:
                    seen["n"] += 1
                    if seen["n"] > after:
                        raise SimulatedCrash(name)

            c = SourceConsumer(source, ch.new_client, lambda: aws_conn.client("kinesis"), FAST, crash_hook=hook)
            if point == "poll":  # abrupt stop while records sit in the buffer, between flushes
                original = c._poll

                def poll(state, original=original, hook=hook):
                    got = original(state)
                    if got:
                        hook("poll")
                    return got
                c._poll = poll
            c.start()
            # the round ends at its crash, or when no crash can come: everything is produced and in
            wait_until(lambda: c.crashed or not c.alive or (not producer.is_alive() and  # noqa: B023  (waited on here)
                                                           all_landed(ch, source, len(events))()),
                       interval=0.05, message=f"round {round_}: a crash at {point} (after {after})")
            c.stop(timeout=WAIT)
            crashes += int(c.crashed)
        wait_until(lambda: not producer.is_alive(), message="the producer to finish")
    finally:
        stop_producing.set()
    assert crashes >= 15  # nearly every round really crashed
    final = consumer(ch, aws_conn, source)
    try:
        wait_until(all_landed(ch, source, len(produced)), message="every produced event landed")
        wait_until(checkpointed(ch, source, produced), message="checkpoints at the last record")  # no more to come
    finally:
        final.stop()
    rows, quarantined = landed(ch, source)
    assert len(produced) == len(events)
    everything = rows + quarantined
    assert len(everything) == len(set(everything)), "an event landed twice"
    assert sorted(everything) == sorted(produced), "an event is missing"
    bad = sum(1 for e in events if e.defect)
    assert len(quarantined) == bad


def test_bad_input_kinds_land_in_quarantine_with_their_error_type(ch, aws_conn, moto_server, kinesis_stream):
    good = generate_events("user_activity", 6, seed=21, bad_ratio=0)
    base = dict(good[0].event)

    def variant(**changes) -> bytes:
        event = {**base, "event_id": str(uuid.uuid4()), **changes}
        return orjson.dumps({k: v for k, v in event.items() if v is not ...})

    cases = OrderedDict([
        ("good", (variant(), None)),
        ("good_gzip_lines", (gzip.compress(variant() + b"\n" + variant()), None)),
        ("good_json_lines", (variant() + b"\n" + variant(), None)),
        ("invalid_json", (variant()[:-5], "decode_error")),
        ("binary_garbage", (os.urandom(300).replace(b"\x1f\x8b", b"zz"), "decode_error")),
        ("corrupt_gzip", (b"\x1f\x8b" + os.urandom(100), "decode_error")),
        ("json_array_of_numbers", (b"[1, 2, 3]", "not_an_object")),
        ("json_string", (b'"hello"', "not_an_object")),
        ("missing_required", (variant(user_id=...), "missing_required")),
        ("null_required", (variant(event_type=None), "missing_required")),
        ("wrong_type", (variant(user_id="user-12"), "type_mismatch")),
        ("out_of_range", (variant(user_id=-5), "type_mismatch")),
        ("bad_time", (variant(timestamp="31/02/2025 10:00"), "type_mismatch")),
        ("bad_uuid", (variant(event_id="not-a-uuid"), "type_mismatch")),
        ("bad_ip", (variant(ip="999.1.1.1"), "type_mismatch")),
        ("not_allowed", (variant(device="toaster"), "not_allowed")),
        ("one_megabyte", (variant(referrer="x" * 1_000_100), "too_large")),
        ("rejected_by_clickhouse", (variant(duration_ms=4_000_000), "rejected_by_clickhouse")),
    ])
    expected_good = 1 + 2 + 2
    stream = kinesis_stream(shards=1)
    columns = activity_columns(device={"allowed_values": ["desktop", "mobile", "tablet"]})
    source = make_source(ch, moto_server, stream, columns=columns)
    # A rule only ClickHouse knows: it rejects the whole batch, which must be bisected.
    ch.execute(f"ALTER TABLE ingest_test.`{source.table}` ADD CONSTRAINT short_visits CHECK duration_ms < 3600000")
    ids = put(aws_conn, stream, [(payload, name) for name, (payload, _) in cases.items()])
    c = consumer(ch, aws_conn, source)
    try:
        wait_until(all_landed(ch, source, expected_good + len(cases) - 3), message="every case landed")
    finally:
        c.stop()
    by_seq = {seq: name for (_, seq), name in zip(ids, cases, strict=False)}
    q = ch.internal_query(f"SELECT sequence_number, error_type, column_name, error_message, length(raw) AS n "
                          f"FROM ingest_test.`{source.table}_quarantine`")
    got = {by_seq.get(r["sequence_number"], "?"): r for r in q}
    for name, (_payload, error_type) in cases.items():
        if error_type is None:
            assert name not in got
            continue
        assert name in got, f"{name} not quarantined"
        assert got[name]["error_type"] == error_type, (name, got[name])
    assert got["one_megabyte"]["n"] > 1_000_000  # the payload is kept whole
    assert got["not_allowed"]["column_name"] == "device"
    rows = ch.internal_query(f"SELECT count() AS n FROM ingest_test.`{source.table}`")[0]["n"]
    assert rows == expected_good


@pytest.fixture
def kinesis_resharding():
    """moto's split_shard moves the parent's records into the children and keeps routing new
    records to the closed parent; real Kinesis keeps the parent's records in the (closed)
    parent and routes new records to the children. Make moto behave as Kinesis does."""
    from moto.kinesis import models

    def split_shard(self, shard_to_split: str, new_starting_hash_key: str) -> None:
        shard = self.shards[shard_to_split]
        new_start = int(new_starting_hash_key)
        last_id = max(s._shard_id for s in self.shards.values())
        for i, (lo, hi) in enumerate(((shard.starting_hash, new_start), (new_start, shard.ending_hash)), 1):
            child = models.Shard(last_id + i, lo, hi, parent=shard.shard_id)
            self.shards[child.shard_id] = child
        shard.is_open = False

    def get_shard_for_key(self, partition_key: str, explicit_hash_key: str):
        import hashlib
        key = int(explicit_hash_key) if explicit_hash_key else int(hashlib.md5(partition_key.encode()).hexdigest(), 16)
        for s in self.shards.values():
            if s.is_open and s.starting_hash <= key < s.ending_hash:
                return s
        return None

    mp = pytest.MonkeyPatch()
    mp.setattr(models.Stream, "split_shard", split_shard)
    mp.setattr(models.Stream, "get_shard_for_key", get_shard_for_key)
    yield
    mp.undo()


def test_resharding_no_loss_and_order_per_key(ch, aws_conn, moto_server, kinesis_stream, kinesis_resharding):
    stream = kinesis_stream(shards=1)
    columns = [ColumnSpec("k", "String", "k", required=True), ColumnSpec("n", "UInt32", "n", required=True),
               ColumnSpec("event_type", "String", "k"), ColumnSpec("timestamp", "DateTime64(3, 'UTC')", "ts"),
               ColumnSpec("shard", "LowCardinality(String)", virtual="_shard_id"),
               ColumnSpec("seq", "String", virtual="_sequence_number")]
    source = make_source(ch, moto_server, stream, columns=columns)
    ch.execute(f"ALTER TABLE ingest_test.`{source.table}` ADD COLUMN landed_at DateTime64(6) DEFAULT now64(6)")
    counters = {f"key{i}": 0 for i in range(12)}

    def batch(count: int) -> list[tuple[bytes, str]]:
        out = []
        for j in range(count):
            key = f"key{j % 12}"
            counters[key] += 1
            out.append((orjson.dumps({"k": key, "n": counters[key], "ts": "2025-01-01T00:00:00Z"}), key))
        return out

    c = consumer(ch, aws_conn, source)
    try:
        produced = put(aws_conn, stream, batch(120))
        # part of the parent is read before the split
        wait_until(lambda: landed(ch, source)[0], interval=0.05, message="a first batch from the parent")
        client = aws_conn.client("kinesis")
        shard = client.list_shards(StreamName=stream)["Shards"][0]
        mid = (int(shard["HashKeyRange"]["StartingHashKey"]) + int(shard["HashKeyRange"]["EndingHashKey"])) // 2
        client.split_shard(StreamName=stream, ShardToSplit=shard["ShardId"], NewStartingHashKey=str(mid))
        produced += put(aws_conn, stream, batch(120))
        produced += put(aws_conn, stream, batch(60))
        wait_until(all_landed(ch, source, len(produced)), message="every event, parent and children")
    finally:
        c.stop()
    rows, quarantined = landed(ch, source)
    assert not quarantined
    assert sorted(rows) == sorted(produced) and len(set(rows)) == len(rows)
    assert len({s for s, _ in rows}) == 3  # the parent and both children were read
    table = ch.internal_query(f"SELECT k, n, landed_at FROM ingest_test.`{source.table}` ORDER BY k, n")
    last: dict[str, object] = {}
    for row in table:
        if row["k"] in last:
            assert row["landed_at"] >= last[row["k"]], f"{row['k']} #{row['n']} landed before an earlier event"
        last[row["k"]] = row["landed_at"]
    assert {r["k"]: r["n"] for r in table} == counters


def test_clickhouse_unavailable_retries_without_advancing(ch, aws_conn, moto_server, kinesis_stream):
    events = generate_events("user_activity", 60, seed=8, bad_ratio=0)
    stream = kinesis_stream(shards=1)
    source = make_source(ch, moto_server, stream)
    hidden = f"{source.table}_away"
    ch.execute(f"RENAME TABLE ingest_test.`{source.table}` TO ingest_test.`{hidden}`")
    ids = put(aws_conn, stream, [(e.payload, e.partition_key) for e in events])
    c = consumer(ch, aws_conn, source)
    try:
        wait_until(lambda: c.metrics.errors >= 2, message="two failed inserts")
        cps = load_checkpoints(ch, source.id)
        assert all(not cp.committed_seq for cp in cps.values())  # nothing advanced
        ch.execute(f"RENAME TABLE ingest_test.`{hidden}` TO ingest_test.`{source.table}`")
        wait_until(all_landed(ch, source, len(ids)), message="every event after ClickHouse came back")
    finally:
        c.stop()
    rows, quarantined = landed(ch, source)
    assert sorted(rows) == sorted(ids) and not quarantined
    assert "retrying" in c.metrics.last_error


def test_quarantine_browse_and_reprocess_after_fixing_rules(ch, aws_conn, moto_server, kinesis_stream):
    from helios_core import quarantine
    good = generate_events("user_activity", 30, seed=4, bad_ratio=0)
    payloads = [(e.payload, e.partition_key) for e in good]
    strange = [dict(e.event, device="smart_tv") for e in generate_events("user_activity", 5, seed=9, bad_ratio=0)]
    payloads += [(orjson.dumps(e), "k") for e in strange] + [(b"{not json", "k")]
    stream = kinesis_stream(shards=1)
    source = make_source(ch, moto_server, stream,
                         columns=activity_columns(device={"allowed_values": ["desktop", "mobile", "tablet"]}))
    put(aws_conn, stream, payloads)
    c = consumer(ch, aws_conn, source)
    try:
        wait_until(all_landed(ch, source, len(payloads)),
                   message=lambda: f"every event (last error: {c.metrics.last_error!r})")
    finally:
        c.stop()
    assert quarantine.quarantine_summary(ch, source) == {"not_allowed": 5, "decode_error": 1}
    frame = quarantine.quarantine_rows(ch, source, quarantine.QuarantineFilter(text="smart_tv"))
    assert len(frame) == 5 and set(frame["error_type"]) == {"not_allowed"}
    hostile = quarantine.quarantine_rows(ch, source, quarantine.QuarantineFilter(text="') OR 1=1 --"))
    assert hostile.empty
    unique = quarantine.quarantine_rows(ch, source, quarantine.QuarantineFilter(unique=True))
    assert sorted(unique["occurrences"].tolist()) == [1, 5]
    by_type = quarantine.quarantine_rows(ch, source, quarantine.QuarantineFilter(error_type="decode_error"))
    assert len(by_type) == 1

    sources.update_rules(ch, source.id, {"device": {"allowed_values": ["desktop", "mobile", "tablet", "smart_tv"]}})
    fixed = sources.get_source(ch, source.id)
    result = quarantine.reprocess(ch, fixed)
    assert result.inserted == 5 and result.still_invalid == 1
    again = quarantine.reprocess(ch, fixed)  # nothing moves twice
    assert again.inserted == 0
    rows, quarantined = landed(ch, source)
    assert len(rows) == 35 and len(set(rows)) == 35 and len(quarantined) == 1


# ---- LATEST is pinned once: a restart before the first checkpoint misses nothing --------------------

def _into_next_second() -> None:
    """moto reads GetShardIterator's Timestamp as whole seconds (Kinesis keeps milliseconds): events put
    before this call are then older than any anchor taken after it, in moto's eyes too."""
    second = int(time.time()) + 1
    wait_until(lambda: time.time() >= second + 0.02, interval=0.01, message="the next second")


def _no_clock_guard(monkeypatch) -> None:
    # moto stamps arrivals with this machine's clock: no skew to absorb, so LATEST means exactly "from creation"
    monkeypatch.setattr(sources, "LATEST_CLOCK_GUARD", sources.timedelta(0))


def test_latest_restart_before_first_checkpoint_misses_nothing(ch, aws_conn, moto_server, kinesis_stream,
                                                               monkeypatch):
    _no_clock_guard(monkeypatch)
    stream = kinesis_stream(shards=2)
    old = generate_events("user_activity", 30, seed=30, bad_ratio=0)
    put(aws_conn, stream, [(e.payload, e.partition_key) for e in old])  # before the source: not "latest"
    _into_next_second()
    source = make_source(ch, moto_server, stream, start="LATEST")
    assert source.start_position == "LATEST" and source.start_timestamp  # pinned when created, stored
    first = consumer(ch, aws_conn, source)
    try:
        wait_until(lambda: len(first.shards) == 2 and all(s.iterator for s in first.shards.values()),
                   message="both shards with an iterator")
    finally:
        first.stop()
    assert all(not cp.committed_seq for cp in load_checkpoints(ch, source.id).values())  # no checkpoint yet

    events = generate_events("user_activity", 80, seed=31, bad_ratio=0.05)
    ids = put(aws_conn, stream, [(e.payload, e.partition_key) for e in events])  # while nothing runs
    restarted = consumer(ch, aws_conn, sources.get_source(ch, source.id))
    try:
        wait_until(all_landed(ch, source, len(ids)), message="the events put while nothing ran")
        more = put(aws_conn, stream, [(e.payload, e.partition_key)
                                      for e in generate_events("user_activity", 20, seed=32, bad_ratio=0)])
        wait_until(all_landed(ch, source, len(ids) + len(more)), message="the events put after the restart")
        # a duplicate, or an event from before the source, would be in by the time the checkpoints are
        wait_until(checkpointed(ch, source, ids + more), message="checkpoints at the last record")
    finally:
        restarted.stop()
    rows, quarantined = landed(ch, source)
    everything = rows + quarantined
    assert len(everything) == len(set(everything)), "an event landed twice"
    assert sorted(everything) == sorted(ids + more), "an event is missing, or one from before the source came in"
    assert len(quarantined) == sum(1 for e in events if e.defect)


def test_latest_source_reads_children_of_a_shard_closed_before_it(ch, aws_conn, moto_server, kinesis_stream,
                                                                  kinesis_resharding, monkeypatch):
    """Closed shards are read from the anchor too (no longer skipped at a first start, which a restart
    repeated): one closed before the source ends at once and its children carry the new events."""
    _no_clock_guard(monkeypatch)
    stream = kinesis_stream(shards=1)
    put(aws_conn, stream, [(e.payload, e.partition_key)
                           for e in generate_events("user_activity", 20, seed=40, bad_ratio=0)])
    client = aws_conn.client("kinesis")
    shard = client.list_shards(StreamName=stream)["Shards"][0]
    mid = (int(shard["HashKeyRange"]["StartingHashKey"]) + int(shard["HashKeyRange"]["EndingHashKey"])) // 2
    client.split_shard(StreamName=stream, ShardToSplit=shard["ShardId"], NewStartingHashKey=str(mid))
    _into_next_second()
    source = make_source(ch, moto_server, stream, start="LATEST")
    c = consumer(ch, aws_conn, source)
    try:
        ids = put(aws_conn, stream, [(e.payload, e.partition_key)
                                     for e in generate_events("user_activity", 60, seed=41, bad_ratio=0)])
        wait_until(all_landed(ch, source, len(ids)), message="every event, from the children")
        wait_until(checkpointed(ch, source, ids), message="checkpoints at the last record")
    finally:
        c.stop()
    rows, quarantined = landed(ch, source)
    assert sorted(rows) == sorted(ids) and not quarantined
    assert load_checkpoints(ch, source.id)[shard["ShardId"]].finished


# ---- Kinesis faults moto never raises: a fault-injecting wrapper around the real client --------------

class FaultInjector:
    """The real boto3 Kinesis client (talking to moto), except that chosen GetRecords calls raise the real
    botocore ``ClientError`` Kinesis would send. Everything else passes through; calls are recorded."""

    def __init__(self, client) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.calls = 0
        self.planned: dict[int, str] = {}      # GetRecords call number -> error code to raise
        self.raised: list[str] = []
        self.iterator_requests: list[dict] = []

    def fail_next(self, code: str, times: int = 1) -> None:
        with self.lock:
            for n in range(self.calls + 1, self.calls + 1 + times):
                self.planned[n] = code

    def get_records(self, **kwargs):
        from botocore.exceptions import ClientError
        with self.lock:
            self.calls += 1
            code = self.planned.pop(self.calls, None)
            if code:
                self.raised.append(code)
        if code:
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "GetRecords")
        return self.client.get_records(**kwargs)

    def get_shard_iterator(self, **kwargs):
        with self.lock:
            self.iterator_requests.append(kwargs)
        return self.client.get_shard_iterator(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_throughput_exceeded_backs_off_and_loses_nothing(ch, aws_conn, moto_server, kinesis_stream):
    stream = kinesis_stream(shards=2)
    events = generate_events("user_activity", 150, seed=50, bad_ratio=0.05)
    ids = put(aws_conn, stream, [(e.payload, e.partition_key) for e in events])
    source = make_source(ch, moto_server, stream)
    faults = FaultInjector(aws_conn.client("kinesis"))
    faults.fail_next("ProvisionedThroughputExceededException", times=4)  # the first four GetRecords calls
    config = IngestConfig(batch_rows=40, flush_seconds=0.1, idle_sleep=0.02, max_backoff=0.2)
    c = SourceConsumer(source, ch.new_client, lambda: faults, config).start()
    try:
        wait_until(all_landed(ch, source, len(ids)),
                   message=lambda: f"every event (last error: {c.metrics.last_error!r})")
        wait_until(checkpointed(ch, source, ids), message="checkpoints at the last record")
    finally:
        c.stop()
    assert faults.raised == ["ProvisionedThroughputExceededException"] * 4
    assert c.metrics.throttled == 4 and c.metrics.throttle_wait_s > 0  # each one backed off (counted)
    assert c.metrics.errors == 0  # a throttle is handled, not an error
    rows, quarantined = landed(ch, source)
    everything = rows + quarantined
    assert len(everything) == len(set(everything)) and sorted(everything) == sorted(ids)


def test_expired_iterator_is_refreshed_from_the_checkpoint(ch, aws_conn, moto_server, kinesis_stream):
    stream = kinesis_stream(shards=1)
    source = make_source(ch, moto_server, stream)
    faults = FaultInjector(aws_conn.client("kinesis"))
    c = SourceConsumer(source, ch.new_client, lambda: faults, FAST).start()
    try:
        first = put(aws_conn, stream, [(e.payload, e.partition_key)
                                       for e in generate_events("user_activity", 50, seed=60, bad_ratio=0)])
        shard_id, last_seq = first[-1]
        wait_until(checkpointed(ch, source, first), message="the first events checkpointed")
        before = len(faults.iterator_requests)
        faults.fail_next("ExpiredIteratorException")
        wait_until(lambda: faults.raised, message="the injected ExpiredIteratorException")
        second = put(aws_conn, stream, [(e.payload, e.partition_key)
                                        for e in generate_events("user_activity", 50, seed=61, bad_ratio=0)])
        wait_until(all_landed(ch, source, len(first) + len(second)), message="the events after the refresh")
        wait_until(checkpointed(ch, source, first + second), message="checkpoints at the last record")
    finally:
        c.stop()
    assert faults.raised == ["ExpiredIteratorException"] and c.metrics.iterator_refreshes == 1
    refresh = faults.iterator_requests[before:]
    assert refresh == [{"StreamName": stream, "ShardId": shard_id, "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                        "StartingSequenceNumber": last_seq}]  # one fresh iterator, right after the checkpoint
    rows, quarantined = landed(ch, source)
    assert not quarantined and len(rows) == len(set(rows)) and sorted(rows) == sorted(first + second)


# ---- credentials are never stored: a keys source after a restart says so ---------------------------

def _manager(ch):
    from helios_core.ingest.manager import IngestManager
    return IngestManager(ch, FAST)  # its supervisor thread is not started: the test calls sync()


def test_keys_source_after_restart_needs_credentials_and_resumes_with_new_sign_in(ch, moto_server, kinesis_stream,
                                                                                   aws_conn):
    from helios_core.aws import AwsConnection
    from helios_core.errors import AwsError, ValidationError
    key_id, secret = "AKIAHELIOSKEY7Q3Z", "never-stored-secret-4f9c2e"
    keys = AwsConnection(region="eu-west-1", access_key_id=key_id, secret_access_key=secret,
                         endpoint_url=moto_server)
    stream = kinesis_stream(shards=1)
    req = sources.CreateRequest(
        stream_name=stream, stream_arn=f"arn:aws:kinesis:eu-west-1:123456789012:stream/{stream}",
        columns=activity_columns(),
        options=TableOptions(database="ingest_test", table=f"t_{uuid.uuid4().hex[:8]}",
                             order_by=["event_type", "timestamp"], create_database=True),
        connection=sources.Connection.from_aws(keys), source_id=sources.new_source_id())
    manager = _manager(ch)
    manager.register_connection(req.source_id, keys)  # as the wizard does, before the source exists
    source = sources.get_source(ch, sources.create_table_and_source(ch, req).source_id)
    assert source.connection.auth == "keys"
    ids = put(aws_conn, stream, [(e.payload, e.partition_key)
                                 for e in generate_events("user_activity", 40, seed=70, bad_ratio=0)])
    manager.sync()
    try:
        wait_until(all_landed(ch, source, len(ids)), message="the events read with the registered keys")
    finally:
        manager.shutdown()

    restarted = _manager(ch)  # a new process: no keys
    restarted.sync()
    failed = sources.get_source(ch, source.id)
    assert failed.status == "failed"
    assert "access keys" in failed.last_error and "Open Connect and sign in again; Helios never stores keys" \
        in failed.last_error
    assert restarted.metrics_for(source.id)["running"] is False
    assert "never stores keys" in restarted.metrics_for(source.id)["last_error"]
    restarted.sync()
    assert source.id not in restarted.consumers  # stays failed: not retried with other credentials

    with pytest.raises(AwsError) as refused:
        restarted.resume(source.id)  # no sign-in
    assert "sign in again" in refused.value.hint
    with pytest.raises(ValidationError):
        restarted.resume(source.id, AwsConnection(region="us-west-2", access_key_id=key_id,
                                                  secret_access_key=secret, endpoint_url=moto_server))
    assert sources.get_source(ch, source.id).status == "failed"

    more = put(aws_conn, stream, [(e.payload, e.partition_key)
                                  for e in generate_events("user_activity", 30, seed=71, bad_ratio=0)])
    try:
        assert restarted.resume(source.id, keys).status == "running"  # signed in again
        wait_until(all_landed(ch, source, len(ids) + len(more)), message="the events after signing in again")
        wait_until(checkpointed(ch, source, ids + more), message="checkpoints at the last record")
    finally:
        restarted.shutdown()
    rows, quarantined = landed(ch, source)
    assert sorted(rows) == sorted(ids + more) and not quarantined

    stored = [ch.internal_query(f"SELECT * FROM helios.{t} WHERE {c} = {{s:String}}", {"s": source.id})
              for t, c in (("sources", "id"), ("ingest_checkpoints", "source_id"), ("ingest_metrics", "source_id"))]
    assert stored[0] and stored[1]
    assert secret not in repr(stored) and key_id not in repr(stored)  # no key, ever


def test_rejected_credentials_fail_the_source_with_a_hint(ch, moto_server, kinesis_stream, request):
    """A source from before the sign-in method was recorded falls back to the default chain; when AWS keeps
    rejecting (or finding no) credentials the source is marked failed with what to do, not left "running"."""
    stream = kinesis_stream(shards=1)
    source = make_source(ch, moto_server, stream)
    request.getfixturevalue("moto_auth")  # from here moto checks credentials: the default chain's are rejected
    assert source.connection.auth == ""
    manager = _manager(ch)
    manager.sync()
    try:
        wait_until(lambda: sources.get_source(ch, source.id).status == "failed", message="the source marked failed")
    finally:
        manager.shutdown()
    failed = sources.get_source(ch, source.id)
    assert failed.last_error.startswith("Needs credentials") and "never stores keys" in failed.last_error
    assert manager.metrics_for(source.id)["errors"] >= 3
