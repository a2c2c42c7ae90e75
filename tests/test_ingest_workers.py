"""Headless workers sharing shards through DynamoDB leases (moto's DynamoDB and Kinesis, embedded ClickHouse).

The lease rules are tested with a hand-moved clock (deterministic); the workers themselves run as
threads of this process writing to the session's embedded engine, and wait on conditions.
"""

from __future__ import annotations

import uuid

import pytest
from helpers import WAIT, wait_until

from helios_core import sources
from helios_core.ddl import TableOptions
from helios_core.ingest.consumer import IngestConfig
from helios_core.ingest.leases import Coordinator, LeaseLost, LeaseTable
from helios_core.ingest.mapping import MappingStore
from helios_core.ingest.store import Checkpoint
from helios_core.ingest.worker import Worker, WorkerConfig
from helios_core.sandbox import generate_events
from tests.test_ingest import activity_columns


def wait_for(predicate, timeout: float = WAIT):
    """The shared :func:`helpers.wait_until` (never a shorter deadline than its generous default)."""
    return wait_until(predicate, timeout=max(timeout, WAIT))


@pytest.fixture
def leases(dynamodb):
    table = LeaseTable(dynamodb, f"helios-leases-{uuid.uuid4().hex[:6]}")
    table.ensure_table()
    return table


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def shards(*ids: str, parents: dict[str, list[str]] | None = None):
    parents = parents or {}
    return lambda: {"src": [(i, parents.get(i, [])) for i in ids]}


def test_two_workers_split_the_shards_and_a_silent_one_is_taken_over(leases):
    clock = Clock()
    a = Coordinator(leases, "a", shards("s0", "s1", "s2", "s3"), timeout=10, clock=clock)
    b = Coordinator(leases, "b", shards("s0", "s1", "s2", "s3"), timeout=10, clock=clock)
    a.tick()
    assert len(a.held_keys()) == 4           # alone: everything
    b.tick()                                  # b sees a alive and asks for one (a holds more than its share)
    for _ in range(2):                        # a hands it over at its next round, b takes it, asks again
        a.tick()
        b.tick()
    assert len(a.held_keys()) == 2 and len(b.held_keys()) == 2
    assert not a.held_keys() & b.held_keys()
    # a stops renewing: b takes over only after the timeout.
    clock.now += 5
    b.tick()
    assert len(b.held_keys()) == 2
    clock.now += 6
    b.tick()
    assert len(b.held_keys()) == 4
    # a wakes up: its leases are gone; it fences itself by time too.
    assert not a.holds("src", "s0") and not any(a.holds("src", s) for s in ("s1", "s2", "s3"))
    a.tick()   # a, alive again, asks for its share back; b hands one over at its next round, a takes it
    b.tick()
    a.tick()
    assert not (a.held_keys() & b.held_keys()) and len(a.held_keys() | b.held_keys()) == 4
    assert a.held_keys()


def test_a_lease_is_handed_over_only_after_the_read_in_flight(leases):
    import threading

    clock = Clock()
    a = Coordinator(leases, "a", shards("s0", "s1"), timeout=10, clock=clock)
    b = Coordinator(leases, "b", shards("s0", "s1"), timeout=10, clock=clock)
    a.tick()
    b.tick()                                  # b asks a for s1
    assert leases.get("src", "s1").handoff == "b" and leases.get("src", "s1").owner == "a"
    reading = a.reading("src", "s1")
    held = reading.__enter__()                # a is reading s1 when its next round comes
    assert held.counter == leases.get("src", "s1").counter and held.expires == clock.now + 10
    round_done = threading.Event()
    threading.Thread(target=lambda: (a.tick(), round_done.set()), daemon=True).start()
    assert not round_done.wait(0.5) and leases.get("src", "s1").owner == "a", "the hand-over waits for the read"
    reading.__exit__(None, None, None)
    assert round_done.wait(WAIT)
    assert leases.get("src", "s1").owner == "b" and not a.holds("src", "s1")
    with pytest.raises(LeaseLost):
        with a.reading("src", "s1"):
            pass
    b.tick()
    assert b.held_keys() == {"src:s1"} and a.held_keys() == {"src:s0"}


def test_only_the_owner_moves_a_checkpoint(leases):
    clock = Clock()
    a = Coordinator(leases, "a", shards("s0"), timeout=10, clock=clock)
    a.tick()
    leases.save_checkpoint("src", "a", Checkpoint("s0", committed_seq="5"))
    with pytest.raises(LeaseLost):
        leases.save_checkpoint("src", "b", Checkpoint("s0", committed_seq="9"))
    assert leases.get("src", "s0").committed_seq == "5"


def test_children_wait_for_their_parents_to_finish(leases):
    clock = Clock()
    tree = shards("p", "c1", "c2", parents={"c1": ["p"], "c2": ["p"]})
    a = Coordinator(leases, "a", tree, timeout=10, clock=clock)
    a.tick()
    assert a.held_keys() == {"src:p"}
    leases.save_checkpoint("src", "a", Checkpoint("p", committed_seq="7", finished=True))
    a.tick()
    assert a.held_keys() >= {"src:c1", "src:c2"}


# ---- workers over real streams ----

def make_source(ch, aws_conn, stream: str, mode: str, mappings: MappingStore | None = None) -> sources.Source:
    """A source on ``stream`` (its table in a new table of ``workers_test``), published to ``mappings`` if given."""
    arn = aws_conn.client("kinesis").describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
        "StreamARN"]
    req = sources.CreateRequest(
        stream_name=stream, stream_arn=arn, columns=activity_columns(),
        options=TableOptions(database="workers_test", table=f"t_{uuid.uuid4().hex[:8]}",
                             order_by=["event_type", "timestamp"], create_database=True),
        connection=sources.Connection.from_aws(aws_conn), mode=mode)  # keys: given again on every change
    source_id = sources.create_table_and_source(ch, req).source_id
    if mappings is not None:
        sources.record_mapping_table(ch, source_id, mappings.table_name)
        mappings.put(sources.get_source(ch, source_id))
    return sources.get_source(ch, source_id)


def landed(ch, source) -> list[str]:
    db, t = source.database, source.table
    rows = ch.internal_query(f"SELECT seq FROM `{db}`.`{t}`")
    bad = ch.internal_query(f"SELECT sequence_number AS seq FROM `{db}`.`{t}_quarantine`")
    return [r["seq"] for r in rows + bad]


def put(aws_conn, stream: str, n: int, seed: int) -> list[str]:
    client = aws_conn.client("kinesis")
    events = generate_events("user_activity", n, seed=seed, bad_ratio=0.05)
    seqs = []
    for i in range(0, n, 250):
        reply = client.put_records(StreamName=stream, Records=[{"Data": e.payload, "PartitionKey": e.partition_key}
                                                               for e in events[i:i + 250]])
        seqs += [r["SequenceNumber"] for r in reply["Records"]]
    return seqs


def test_three_workers_ingest_every_event_once_and_survive_one_going_silent(ch, aws_conn, mappings, leases,
                                                                            kinesis_stream):
    stream = kinesis_stream(shards=4)
    source = make_source(ch, aws_conn, stream, "workers", mappings)
    expected = put(aws_conn, stream, 600, seed=31)
    config = WorkerConfig(lease_timeout=3.0, sync_seconds=1.0,
                          ingest=IngestConfig(batch_rows=50, flush_seconds=0.2, idle_sleep=0.02, max_backoff=0.5))
    workers = [Worker(f"w{i}", lambda: aws_conn.client("kinesis"), ch.new_client, mappings, leases, config).start()
               for i in range(3)]
    try:
        assert wait_for(lambda: len(landed(ch, source)) >= len(expected)), "every event lands"
        held = wait_for(lambda: [len(w.coordinator.held_keys()) for w in workers]
                        if sorted(len(w.coordinator.held_keys()) for w in workers) == [1, 1, 2] else None)
        assert held, "the four shards are spread over the three workers"
        # One worker goes silent (stops renewing, keeps nothing): its shards move to the others.
        silent = max(workers, key=lambda w: len(w.coordinator.held_keys()))
        silent._stop.set()
        silent.coordinator.stop(release=False)
        for consumer in silent.consumers.values():
            consumer.stop()
        others = [w for w in workers if w is not silent]
        assert wait_for(lambda: sum(len(w.coordinator.held_keys()) for w in others) == 4), "shards rebalanced"
        expected += put(aws_conn, stream, 400, seed=32)
        assert wait_for(lambda: len(landed(ch, source)) >= len(expected))
    finally:
        for w in workers:
            w.stop()
    got = landed(ch, source)
    assert sorted(got) == sorted(expected), "every event exactly once (table or quarantine)"


def metric_samples(ch, source) -> list[dict]:
    return ch.internal_query("SELECT worker_id, rows_inserted, rows_quarantined, records_read FROM "
                             "helios.ingest_metrics WHERE source_id = {s:String} ORDER BY ts", {"s": source.id})


def test_workers_sample_their_counters_and_the_sums_match_what_landed(ch, aws_conn, mappings, leases,
                                                                      kinesis_stream):
    from helios_core.ingest.store import workers_counters

    stream = kinesis_stream(shards=2)
    source = make_source(ch, aws_conn, stream, "workers", mappings)
    config = WorkerConfig(lease_timeout=3.0, sync_seconds=0.5, metrics_seconds=0.5,
                          ingest=IngestConfig(batch_rows=50, flush_seconds=0.2, idle_sleep=0.02, max_backoff=0.5))
    workers = [Worker(f"m{i}", lambda: aws_conn.client("kinesis"), ch.new_client, mappings, leases, config).start()
               for i in range(2)]
    try:
        # Events only once the shards are split: no lease moves while they flow, so no batch is read twice
        # (a re-read batch is deduplicated by ClickHouse but counted by both workers).
        assert wait_for(lambda: sorted(len(w.coordinator.held_keys()) for w in workers) == [1, 1])
        expected = put(aws_conn, stream, 400, seed=41)
        assert wait_for(lambda: len(landed(ch, source)) >= len(expected)), "every event lands"
        db, t = source.database, source.table
        rows = ch.internal_query(f"SELECT count() AS n FROM `{db}`.`{t}`")[0]["n"]
        bad = ch.internal_query(f"SELECT count() AS n FROM `{db}`.`{t}_quarantine`")[0]["n"]
        assert rows and bad, "the 5% bad events give both tables rows"

        def summed():
            m = workers_counters(ch, source.id)
            return m if (m.rows_inserted, m.rows_quarantined, m.records_read) == (rows, bad, len(expected)) else None

        counters = wait_for(summed)
        assert counters.workers == 2 and counters.live_workers == 2
        assert counters.last_insert is not None and counters.millis_behind is not None
        by_worker = {s["worker_id"] for s in metric_samples(ch, source)}
        assert by_worker == {"m0", "m1"}, "every sample names its worker"
        assert all(w.metrics[source.id].rows_inserted for w in workers), "both workers inserted rows"
    finally:
        for w in workers:
            w.stop()
    # The final samples, written on a clean stop, hold the same totals; nothing but live workers is counted live.
    final = workers_counters(ch, source.id, live_within_s=3600)
    assert (final.rows_inserted, final.rows_quarantined) == (rows, bad)
    assert workers_counters(ch, source.id, live_within_s=0).live_workers == 0



def test_the_metrics_columns_are_added_to_an_older_table(ch):
    """Data dirs made before workers sampled: the ALTERs add records_read and worker_id, old rows read as the app's."""
    from helios_core.ingest.store import METADATA_ALTERS, METRICS

    old = f"metrics_upgrade.m_{uuid.uuid4().hex[:6]}"
    ch.execute("CREATE DATABASE IF NOT EXISTS metrics_upgrade")
    ch.execute(f"""CREATE TABLE {old} (ts DateTime64(3, 'UTC'), source_id String, rows_inserted UInt64,
        rows_quarantined UInt64, batches UInt64, errors UInt64, millis_behind UInt64,
        last_insert Nullable(DateTime64(3, 'UTC')), last_error String) ENGINE = MergeTree ORDER BY (source_id, ts)""")
    try:
        ch.execute(f"INSERT INTO {old} VALUES (now64(3), 'old', 5, 0, 1, 0, 0, NULL, '')")
        for alter in METADATA_ALTERS * 2:  # idempotent: every start-up runs them
            ch.execute(alter.replace(METRICS, old))
        assert ch.internal_query(f"SELECT worker_id, records_read, rows_inserted FROM {old}") == \
            [{"worker_id": "", "records_read": 0, "rows_inserted": 5}]
    finally:
        ch.execute("DROP DATABASE IF EXISTS metrics_upgrade")
