"""Ingest throughput and latency.

1. Throughput: N realistic purchase events (~240 B) through the engine's own path
   (decode + map + validate into Arrow, ``insert_arrow`` with a deduplication
   token, in the consumer's batch size) against ClickHouse parsing the same raw
   bytes itself (``INSERT … FORMAT JSONEachRow`` via ``raw_insert``), same batch
   size, same table layout, same run, interleaved rounds. Target: engine ≥ 0.6×.
2. Latency: put_record → row visible in the table, through the sandbox (moto
   server in this process), a real source and the ingest manager. Target p50 < 2 s.

Runs in a fresh embedded engine in a temporary data dir (a separate process
from any running app):

    python bench/ingest.py [--events 200000] [--batch 20000] [--latency-samples 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COLUMNS = [
    ("order_id", "UUID", "order_id", True, []),
    ("user_id", "UInt32", "user_id", True, []),
    ("amount", "Float64", "amount", True, []),
    ("currency", "LowCardinality(String)", "currency", True, ["USD", "EUR", "GBP"]),
    ("items", "Array(String)", "items", False, []),
    ("item_count", "UInt8", "item_count", False, []),
    ("payment_method", "LowCardinality(String)", "payment_method", False, []),
    ("status", "LowCardinality(String)", "status", False, []),
    ("coupon", "Nullable(String)", "coupon", False, []),
    ("timestamp", "DateTime64(3, 'UTC')", "timestamp", True, []),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-samples", type=int, default=40)
    args = parser.parse_args()
    os.environ["HELIOS_DATA_DIR"] = tempfile.mkdtemp(prefix="helios-bench-ingest-")
    os.environ.setdefault("HELIOS_SANDBOX_RATE", "0")

    from helios_core import sources
    from helios_core.ddl import TableOptions
    from helios_core.ingest.batch import BatchBuilder, RawRecord, build_records
    from helios_core.runtime import get_clickhouse
    from helios_core.sandbox import generate_events
    from helios_core.schema import ColumnSpec

    ch = get_clickhouse()
    columns = [ColumnSpec(n, t, p, required=r, allowed_values=a) for n, t, p, r, a in COLUMNS]
    print(f"generating {args.events:,} purchase events…", flush=True)
    events = generate_events("purchase_events", args.events, seed=1, bad_ratio=0)
    payloads = [e.payload for e in events]
    print(f"average event size {sum(map(len, payloads)) / len(payloads):.0f} bytes; batches of {args.batch:,}")

    def table(name: str) -> None:
        req = sources.CreateRequest(stream_name="bench", stream_arn="arn:aws:kinesis:us-east-1:0:stream/bench",
                                    columns=columns, options=TableOptions(
                                        database="bench", table=name, order_by=["currency", "timestamp"],
                                        create_database=True))
        sources.create_table_and_source(ch, req)
        sources.pause_source(ch, sources.source_for_table(ch, "bench", name).id)

    engine_s: list[float] = []
    native_s: list[float] = []
    client = ch.new_client()
    for r in range(args.rounds):
        table(f"engine_{r}")
        table(f"native_{r}")
        records = [RawRecord(p, str(i + 1), "k", 1_735_689_600_000 + i) for i, p in enumerate(payloads)]
        builder = BatchBuilder(columns, "shardId-000000000000")
        started = time.perf_counter()
        for i in range(0, len(records), args.batch):
            built = build_records(builder, records[i:i + args.batch])
            client.insert_arrow(f"engine_{r}", built.table, database="bench",
                                settings={"insert_deduplication_token": f"bench:{r}:{i}"})
        engine_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(0, len(payloads), args.batch):
            client.raw_insert(f"`bench`.`native_{r}`", None, insert_block=b"\n".join(payloads[i:i + args.batch]),
                              fmt="JSONEachRow", settings={"date_time_input_format": "best_effort",
                                                           "insert_deduplication_token": f"native:{r}:{i}"})
        native_s.append(time.perf_counter() - started)
        n_engine = ch.internal_query(f"SELECT count() AS n FROM bench.engine_{r}")[0]["n"]
        n_native = ch.internal_query(f"SELECT count() AS n FROM bench.native_{r}")[0]["n"]
        assert n_engine == n_native == args.events, (n_engine, n_native)
        print(f"round {r + 1}: engine {args.events / engine_s[-1]:,.0f} rows/s, "
              f"ClickHouse JSONEachRow {args.events / native_s[-1]:,.0f} rows/s", flush=True)
    engine_rate = args.events / statistics.median(engine_s)
    native_rate = args.events / statistics.median(native_s)
    ratio = engine_rate / native_rate
    print(f"\nthroughput (median of {args.rounds}): engine {engine_rate:,.0f} rows/s (decode+validate+insert) vs "
          f"ClickHouse parsing itself {native_rate:,.0f} rows/s → ratio {ratio:.2f}× (target ≥ 0.60×) "
          f"{'OK' if ratio >= 0.6 else 'BELOW TARGET'}")

    if args.latency_samples:
        latency(ch, columns, args.latency_samples)
    return 0


def latency(ch, columns, samples: int) -> None:
    import orjson

    from helios_core import sources
    from helios_core.ddl import TableOptions
    from helios_core.ingest.manager import get_ingest_manager
    from helios_core.sandbox import get_sandbox

    sandbox = get_sandbox()
    client = sandbox.client("kinesis")
    stream = f"latency_{uuid.uuid4().hex[:6]}"
    client.create_stream(StreamName=stream, ShardCount=2)
    time.sleep(0.2)
    conn = sandbox.connection()
    req = sources.CreateRequest(stream_name=stream, stream_arn=f"arn:aws:kinesis:us-east-1:0:stream/{stream}",
                                columns=columns, options=TableOptions(database="bench", table="latency",
                                                                      order_by=["timestamp"]),
                                connection=sources.Connection(region=conn.region, sandbox=True))
    sources.create_table_and_source(ch, req)
    manager = get_ingest_manager()
    manager.sync()
    time.sleep(1.0)
    waits: list[float] = []
    for i in range(samples):
        order_id = str(uuid.uuid4())
        event = {"order_id": order_id, "user_id": i, "amount": 1.5, "currency": "USD", "items": ["mug"],
                 "item_count": 1, "payment_method": "card", "status": "completed", "coupon": None,
                 "timestamp": "2025-01-01T00:00:00.000Z"}
        started = time.perf_counter()
        client.put_record(StreamName=stream, Data=orjson.dumps(event), PartitionKey=str(i))
        deadline = started + 15
        while time.perf_counter() < deadline:
            if ch.internal_query("SELECT count() AS n FROM bench.latency WHERE order_id = toUUID({o:String})",
                                 {"o": order_id})[0]["n"]:
                break
            time.sleep(0.02)
        waits.append(time.perf_counter() - started)
        time.sleep(0.05)
    manager.shutdown()
    sandbox.stop()
    waits.sort()
    p50 = statistics.median(waits)
    p95 = waits[min(len(waits) - 1, int(len(waits) * 0.95))]
    print(f"latency put_record → visible ({samples} events, flush every "
          f"{manager.config.flush_seconds:.1f} s): p50 {p50:.2f} s, p95 {p95:.2f} s, max {waits[-1]:.2f} s "
          f"(target p50 < 2 s) {'OK' if p50 < 2 else 'ABOVE TARGET'}")


if __name__ == "__main__":
    sys.exit(main())
