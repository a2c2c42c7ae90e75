"""Ingest beyond one process: headless workers with 1, 2 and 4 shards, and the Lambda handler.

All in one run, one fresh embedded engine in a temporary data dir and a moto server on loopback:

1. Baseline: ClickHouse parsing the same events itself (``INSERT … FORMAT JSONEachRow`` via ``raw_insert``).
2. Headless workers end to end: N events prefilled on a stream of 1, 2 and 4 shards, one worker per shard
   (in-process threads; leases in moto's DynamoDB), timed until every event landed. moto serves Kinesis
   from one Python process, so these figures are bounded by the emulator, not by Helios: they show how the
   worker scales with shards, not what Kinesis would give.
3. Per batch: the worker's write step (build the Arrow batch, insert it and its quarantine rows, move the
   checkpoint: what ``SourceConsumer._flush`` does) against the Lambda handler on the same records as an
   event-source-mapping event (``process``: the same build and sink plus reading the shard's checkpoint).
   Both start from the base64 payloads on the wire; see the comment at part 3. Target: handler ≥ 0.8× the
   worker's per-batch rate.

    python bench/ingest_scale.py [--events 20000] [--batch 500] [--rounds 5] [--per-batch-only]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events per worker run (default 20,000)")
    parser.add_argument("--batch", type=int, default=500, help="records per batch / Lambda event (default 500)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-batch-only", action="store_true", help="only part 3 (handler against worker)")
    args = parser.parse_args()
    os.environ["HELIOS_DATA_DIR"] = tempfile.mkdtemp(prefix="helios-bench-scale-")
    os.environ.setdefault("HELIOS_SANDBOX_RATE", "0")

    import logging

    from moto.server import ThreadedMotoServer

    from helios_core import sources
    from helios_core.aws import AwsConnection
    from helios_core.ddl import TableOptions
    from helios_core.ingest.batch import BatchBuilder, RawRecord
    from helios_core.ingest.consumer import IngestConfig
    from helios_core.ingest.lambda_handler import HandlerEnv, process
    from helios_core.ingest.leases import LeaseTable
    from helios_core.ingest.mapping import MappingStore
    from helios_core.ingest.sink import write_range
    from helios_core.ingest.store import Checkpoint, CheckpointStore, records_after
    from helios_core.ingest.worker import Worker, WorkerConfig
    from helios_core.runtime import get_clickhouse
    from helios_core.sandbox import generate_events
    from helios_core.schema import ColumnSpec

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    conn = AwsConnection(region="eu-west-1", access_key_id="testing", secret_access_key="testing",
                         endpoint_url=f"http://{host}:{port}")
    ch = get_clickhouse()
    kinesis = conn.client("kinesis")
    dynamodb = conn.session().resource("dynamodb", endpoint_url=conn.endpoint_url)
    mappings = MappingStore(dynamodb, "bench-sources")
    mappings.ensure_table()
    columns = [ColumnSpec("event_id", "UUID", "event_id", required=True),
               ColumnSpec("user_id", "UInt32", "user_id", required=True),
               ColumnSpec("event_type", "LowCardinality(String)", "event_type", required=True),
               ColumnSpec("timestamp", "DateTime64(3, 'UTC')", "timestamp", required=True),
               ColumnSpec("device", "LowCardinality(String)", "device"),
               ColumnSpec("duration_ms", "UInt32", "duration_ms"),
               ColumnSpec("shard", "LowCardinality(String)", virtual="_shard_id"),
               ColumnSpec("seq", "String", virtual="_sequence_number")]
    events = generate_events("user_activity", args.events, seed=5, bad_ratio=0.0)
    payloads = [(e.payload, e.partition_key) for e in events]

    def new_source(stream: str, mode: str) -> sources.Source:
        arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"] \
            if stream else f"arn:aws:kinesis:eu-west-1:123456789012:stream/{uuid.uuid4().hex[:8]}"
        req = sources.CreateRequest(
            stream_name=stream or arn.rsplit("/", 1)[1], stream_arn=arn, columns=columns,
            options=TableOptions(database="bench_scale", table=f"t_{uuid.uuid4().hex[:8]}",
                                 order_by=["event_type", "timestamp"], create_database=True),
            connection=sources.Connection(region="eu-west-1"), mode=mode)
        source = sources.get_source(ch, sources.create_table_and_source(ch, req).source_id)
        mappings.put(source)
        return source

    def count(source: sources.Source) -> int:
        return ch.internal_query(f"SELECT count() AS n FROM `{source.database}`.`{source.table}`")[0]["n"]

    # 1. ClickHouse parsing JSONEachRow itself.
    baseline = new_source("", "lambda")
    times = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for i in range(0, len(payloads), args.batch):
            chunk = b"\n".join(p for p, _ in payloads[i:i + args.batch])
            ch.writer.raw_insert(f"`{baseline.database}`.`{baseline.table}`",
                                 ["event_id", "user_id", "event_type", "timestamp", "device", "duration_ms"],
                                 insert_block=chunk, fmt="JSONEachRow",
                                 settings={"input_format_skip_unknown_fields": 1,
                                           "date_time_input_format": "best_effort"})
        times.append(time.perf_counter() - started)
    ch_rate = len(payloads) / statistics.median(times)
    print(f"ClickHouse JSONEachRow (baseline):    {ch_rate:>10,.0f} rows/s")

    # 2. Headless workers end to end through moto, 1/2/4 shards.
    config = WorkerConfig(lease_timeout=6.0, sync_seconds=1.0,
                          ingest=IngestConfig(batch_rows=args.batch, flush_seconds=0.2, idle_sleep=0.01))
    for shards in () if args.per_batch_only else (1, 2, 4):
        stream = f"bench_{shards}_{uuid.uuid4().hex[:6]}"
        kinesis.create_stream(StreamName=stream, ShardCount=shards)
        for i in range(0, len(payloads), 500):
            kinesis.put_records(StreamName=stream, Records=[{"Data": d, "PartitionKey": k}
                                                            for d, k in payloads[i:i + 500]])
        leases = LeaseTable(dynamodb, f"bench-leases-{uuid.uuid4().hex[:6]}")
        leases.ensure_table()
        source = new_source(stream, "workers")
        started = time.perf_counter()
        workers = [Worker(f"w{i}", lambda: conn.client("kinesis"), ch.new_client, mappings, leases, config).start()
                   for i in range(shards)]
        try:
            while count(source) < len(payloads):
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
        finally:
            for worker in workers:
                worker.stop()
        mappings.delete(source.stream_arn, source.id)
        print(f"workers, {shards} shard(s), end to end:  {len(payloads) / elapsed:>10,.0f} rows/s "
              f"({len(payloads) / elapsed / ch_rate:.2f}x ClickHouse; bounded by moto's Kinesis)")

    # 3. Per batch: the worker's write step against the Lambda handler, same records, same work.
    # Both start from the records as they come over the wire — base64 payloads (GetRecords' JSON body, the
    # event-source-mapping event) — and each does what it does per batch in production:
    # * worker: decode the payloads (botocore does it inside get_records), SourceConsumer._poll's conversion
    #   and "never take a record twice" filter, then _flush's write_range (it holds the checkpoint in memory);
    # * handler: process() on the event: decode, read the shard's checkpoint, write_range.
    # The handler's container is warm (mapping cached, as a worker reads its sources once at start). The two
    # alternate batch by batch, taking turns going first, so both meet the same load on a shared machine and
    # the same background merges of ClickHouse.
    from datetime import datetime
    arrived = datetime.fromtimestamp(1_700_000_000, tz=UTC)
    seq = [str(10**20 + i) for i in range(len(payloads))]
    wire = [[{"Data": base64.b64encode(d).decode(), "SequenceNumber": seq[j], "PartitionKey": k,
              "ApproximateArrivalTimestamp": arrived}
             for j, (d, k) in enumerate(payloads[i:i + args.batch], i)]
            for i in range(0, len(payloads), args.batch)]
    shard = "shardId-000000000000"
    worker_times, lambda_times = [], []
    for r in range(args.rounds):
        client = ch.new_client()
        worker_source, lambda_source = new_source("", "workers"), new_source("", "lambda")
        store = CheckpointStore(client, worker_source.id)
        builder = BatchBuilder(worker_source.columns, shard)
        cp = Checkpoint(shard)
        last_seen = ""
        env = HandlerEnv(mappings, lambda c=client: c)
        env.sources_for(lambda_source.stream_arn)
        events_ = [{"Records": [{"kinesis": {"sequenceNumber": rec["SequenceNumber"],
                                             "partitionKey": rec["PartitionKey"], "data": rec["Data"],
                                             "approximateArrivalTimestamp": 1_700_000_000.0},
                                 "eventID": f"{shard}:{rec['SequenceNumber']}",
                                 "eventSourceARN": lambda_source.stream_arn} for rec in batch]} for batch in wire]
        spent = {"worker": 0.0, "lambda": 0.0}
        replies = [[dict(x) for x in got] for got in wire]   # the worker's copy, decoded in place
        for i, (got, event) in enumerate(zip(replies, events_, strict=True)):
            for side in (("worker", "lambda") if (i + r) % 2 == 0 else ("lambda", "worker")):
                started = time.perf_counter()
                if side == "worker":
                    for x in got:   # what botocore's parser does to a GetRecords reply's blobs
                        x["Data"] = base64.b64decode(x["Data"])
                    records = [RawRecord.from_kinesis(x) for x in got]
                    records = records_after(records, last_seen)   # the consumer's never-take-twice filter
                    last_seen = records[-1].sequence_number
                    write_range(client, store, worker_source, builder, shard, cp, records)
                else:
                    reply = process(event, env)
                    assert not reply["batchItemFailures"], reply
                spent[side] += time.perf_counter() - started
        worker_times.append(spent["worker"])
        lambda_times.append(spent["lambda"])
        assert count(worker_source) == count(lambda_source) == len(payloads), "both paths store every event"
        client.close()
    worker_rate = len(payloads) / statistics.median(worker_times)
    lambda_rate = len(payloads) / statistics.median(lambda_times)
    print(f"worker write step, per batch of {args.batch}: {worker_rate:>10,.0f} rows/s "
          f"({worker_rate / ch_rate:.2f}x ClickHouse)")
    print(f"Lambda handler, per event of {args.batch}:   {lambda_rate:>10,.0f} rows/s "
          f"({lambda_rate / ch_rate:.2f}x ClickHouse)")
    ratios = sorted(w / h for w, h in zip(worker_times, lambda_times, strict=True))
    ratio = statistics.median(ratios)   # per round: both sides met the same load in it
    print(f"handler / worker per-batch rate:      {ratio:>10.2f}x  (target >= 0.8x) "
          f"{'OK' if ratio >= 0.8 else 'BELOW TARGET'}; per round {', '.join(f'{x:.2f}' for x in ratios)}")
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
