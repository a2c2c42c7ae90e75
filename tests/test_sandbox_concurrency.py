"""The sandbox's moto server serves a producer and readers at once without moto's iteration errors."""

from __future__ import annotations

import sys
import threading
import time
import uuid

from helios_core.sandbox import Producer, generate_events, put_events


def test_concurrent_producer_and_readers_log_no_moto_errors(aws_sandbox, capfd):
    client = aws_sandbox.client("kinesis")
    name = f"busy_{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=1)
    # A long shard: each GetRecords from LATEST walks every record while the producer appends.
    put_events(client, name, generate_events("user_activity", 20_000, seed=5, bad_ratio=0))
    producer = Producer(aws_sandbox.connection(), rate_per_s=500.0, tick_s=0.02, bad_ratio=0,
                        targets={name: "user_activity"})
    stop = threading.Event()
    failures: list[str] = []
    reads = [0]

    def read() -> None:
        reader = aws_sandbox.connection().client("kinesis", retries={"max_attempts": 1, "mode": "standard"})
        shard = reader.list_shards(StreamName=name)["Shards"][0]["ShardId"]
        while not stop.is_set():
            try:
                iterator = reader.get_shard_iterator(StreamName=name, ShardId=shard,
                                                     ShardIteratorType="LATEST")["ShardIterator"]
                reader.get_records(ShardIterator=iterator, Limit=100)
                reads[0] += 1
            except Exception as exc:  # noqa: BLE001 - any failure is what the test looks for
                failures.append(str(exc)[:300])

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads interleave often, so a race shows within seconds if there is one
    producer.start()
    readers = [threading.Thread(target=read, daemon=True) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        deadline = time.monotonic() + 120
        while reads[0] < 200 and time.monotonic() < deadline and not failures:
            time.sleep(0.05)
    finally:
        stop.set()
        sys.setswitchinterval(switch)
        producer.stop()
        for t in readers:
            t.join(30)
        client.delete_stream(StreamName=name)
    sent = producer.snapshot()["streams"][name]["sent"]
    assert sent > 0 and reads[0] > 0
    assert not failures, failures[:3]
    assert "mutated during iteration" not in capfd.readouterr().err
    assert producer.snapshot()["streams"][name]["errors"] == 0
