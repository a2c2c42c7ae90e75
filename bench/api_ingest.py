"""Events through the HTTP API against the ingester's batch code called directly.

1. Throughput: N realistic purchase events (~240 B), in batches of 500, POSTed as JSON lines and as JSON
   arrays to ``/api/event`` of a real ``python -m helios_core serve`` process (its own embedded engine), against
   the same events and batches through :func:`helios_core.ingest.sink.insert_payloads` (the ingester's
   build + insert + quarantine path) in this process's embedded engine. Same table layout, same run,
   batches interleaved (API lines, API array, direct, next batch…). Target: API ≥ 0.5× direct.
2. Latency: p50/p99 of single-event POSTs (one event per request, one client, keep-alive).

    python bench/api_ingest.py [--events 20000] [--batch 500] [--rounds 5] [--singles 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

COLUMNS = [
    {"name": "order_id", "type": "UUID", "required": True},
    {"name": "user_id", "type": "UInt32", "required": True},
    {"name": "amount", "type": "Float64", "required": True},
    {"name": "currency", "type": "LowCardinality(String)", "required": True, "allowed_values": ["USD", "EUR", "GBP"]},
    {"name": "items", "type": "Array(String)"},
    {"name": "item_count", "type": "UInt8"},
    {"name": "payment_method", "type": "LowCardinality(String)"},
    {"name": "status", "type": "LowCardinality(String)"},
    {"name": "coupon", "type": "Nullable(String)"},
    {"name": "timestamp", "type": "DateTime64(3, 'UTC')", "required": True},
]

# Creates the source (the table and its quarantine table) and a write token; prints both as JSON.
SETUP = """
import json, sys
from helios_core.runtime import get_clickhouse
from helios_core.ddl import TableOptions
from helios_core.schema import ColumnSpec
from helios_core import sources
from helios_core.tokens import create_token
ch = get_clickhouse()
columns = [ColumnSpec.from_json(c) for c in json.loads(sys.argv[1])]
out = {}
for name in sys.argv[2:]:
    req = sources.CreateRequest(stream_name="bench", stream_arn="arn:aws:kinesis:us-east-1:0:stream/bench",
                                columns=columns, options=TableOptions(database="bench", table=name,
                                order_by=["currency", "timestamp"], create_database=True))
    out[name] = sources.create_table_and_source(ch, req).source_id
    sources.pause_source(ch, out[name])   # no Kinesis consumer: only what is posted lands
out["token"] = create_token(ch, "bench", write=True).token
print(json.dumps(out))
"""


def setup_data_dir(tables: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    data_dir = tempfile.mkdtemp(prefix="helios-bench-api-")
    env = {**os.environ, "HELIOS_DATA_DIR": data_dir, "HELIOS_SANDBOX_RATE": "0"}
    env.pop("HELIOS_CLICKHOUSE_URL", None)
    done = subprocess.run([sys.executable, "-c", SETUP, json.dumps(COLUMNS), *tables], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), env


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--singles", type=int, default=300)
    args = parser.parse_args()

    import httpx
    from api_server import free_port, wait_healthy

    from helios_core.sandbox import generate_events

    api_tables = [f"{kind}_{r}" for r in range(args.rounds) for kind in ("lines", "array")] + ["singles"]
    served, server_env = setup_data_dir(api_tables)
    port = free_port()
    log = Path(server_env["HELIOS_DATA_DIR"]) / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "helios_core", "serve", "--port", str(port)],
                                  env=server_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server, log)
        os.environ["HELIOS_DATA_DIR"] = tempfile.mkdtemp(prefix="helios-bench-direct-")
        os.environ.pop("HELIOS_CLICKHOUSE_URL", None)
        from helios_core import sources
        from helios_core.ddl import TableOptions
        from helios_core.ingest.sink import insert_payloads
        from helios_core.runtime import get_clickhouse
        from helios_core.schema import ColumnSpec

        ch = get_clickhouse()
        columns = [ColumnSpec.from_json(c) for c in COLUMNS]
        print(f"generating {args.events:,} purchase events…", flush=True)
        payloads = [e.payload for e in generate_events("purchase_events", args.events, seed=1, bad_ratio=0)]
        batches = [payloads[i:i + args.batch] for i in range(0, len(payloads), args.batch)]
        bodies = {"lines": [b"\n".join(batch) for batch in batches],
                  "array": [b"[" + b",".join(batch) + b"]" for batch in batches]}
        print(f"average event size {sum(map(len, payloads)) / len(payloads):.0f} bytes; "
              f"{len(batches)} batches of {args.batch}", flush=True)
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {served['token']}",
                                                     "Content-Type": "application/json"}, timeout=120)
        client.get("/api/sources").raise_for_status()  # warm the token cache and the connection
        for body in bodies["lines"][:5]:  # warm both paths (first inserts into a new table are slower)
            client.post("/api/event", content=body, params={"source": served["singles"]}).raise_for_status()

        def post(kind: str, r: int, n: int) -> None:
            reply = client.post("/api/event", content=bodies[kind][n], params={"source": served[f"{kind}_{r}"]},
                                headers={"Idempotency-Key": f"bench-{r}-{n}"})
            if reply.status_code != 200 or reply.json()["quarantined"]:
                raise SystemExit(f"unexpected answer: {reply.status_code} {reply.text[:300]}")

        # Batch by batch, the three paths take turns, so a burst of load elsewhere on the machine
        # falls on all of them alike; each path's time is the sum of its own batches.
        api_s: dict[str, list[float]] = {"lines": [], "array": []}
        direct_s: list[float] = []
        for r in range(args.rounds):
            req = sources.CreateRequest(stream_name="bench", stream_arn="arn:aws:kinesis:us-east-1:0:stream/bench",
                                        columns=columns, options=TableOptions(
                                            database="bench", table=f"direct_{r}",
                                            order_by=["currency", "timestamp"], create_database=True))
            source = sources.get_source(ch, sources.create_table_and_source(ch, req).source_id)
            if r == 0:
                for n, batch in enumerate(batches[:5]):
                    insert_payloads(ch, source, batch, f"bench-warm-{n}-{uuid.uuid4().hex}")
                ch.execute(f"TRUNCATE TABLE bench.{source.table}")
            spent = {"lines": 0.0, "array": 0.0, "direct": 0.0}
            for n, batch in enumerate(batches):
                for kind in ("lines", "array"):
                    started = time.perf_counter()
                    post(kind, r, n)
                    spent[kind] += time.perf_counter() - started
                started = time.perf_counter()
                insert_payloads(ch, source, batch, f"bench-direct-{r}-{n}-{uuid.uuid4().hex}")
                spent["direct"] += time.perf_counter() - started
            api_s["lines"].append(spent["lines"])
            api_s["array"].append(spent["array"])
            direct_s.append(spent["direct"])
            print(f"round {r + 1}: API JSON lines {args.events / api_s['lines'][-1]:,.0f} events/s, "
                  f"API arrays {args.events / api_s['array'][-1]:,.0f} events/s, "
                  f"direct {args.events / direct_s[-1]:,.0f} events/s", flush=True)

        landed = [client.post("/api/query", json={"query": f"SELECT count() AS n FROM bench.{kind}_0"}).json()
                  ["data"][0]["n"] for kind in bodies]
        latencies: list[float] = []
        for i in range(args.singles):
            body = payloads[i % len(payloads)]
            started = time.perf_counter()
            reply = client.post("/api/event", content=body, params={"source": served["singles"]})
            latencies.append((time.perf_counter() - started) * 1000)
            if reply.status_code != 200:
                raise SystemExit(f"unexpected answer: {reply.status_code} {reply.text[:300]}")
        client.close()
    finally:
        server.terminate()
        server.wait(30)

    direct_rate = args.events / statistics.median(direct_s)
    print()
    print(f"rows landed through the API (round 1, lines and arrays): {landed} of {args.events:,} each")
    print(f"ingester batch code directly:                  {direct_rate:>10,.0f} events/s (median of {args.rounds})")
    for kind, label in (("lines", "JSON lines"), ("array", "JSON arrays")):
        rate = args.events / statistics.median(api_s[kind])
        ratio = rate / direct_rate
        print(f"POST /api/event, {label:<11}, batches of {args.batch}: {rate:>10,.0f} events/s, "
              f"{ratio:.2f}x direct (target >= 0.5x) {'OK' if ratio >= 0.5 else 'BELOW TARGET'}")
    print(f"single-event POST latency over {args.singles}: p50 {percentile(latencies, 0.5):.1f} ms, "
          f"p99 {percentile(latencies, 0.99):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
