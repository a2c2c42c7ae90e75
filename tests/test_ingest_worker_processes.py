"""Headless workers as real processes, killed with SIGKILL while events flow.

Three ``python -m helios_core.ingest --worker-id …`` processes share a 4-shard moto Kinesis stream through
leases in moto's DynamoDB. The embedded engine allows one process per data dir, so the workers write
through the HTTP API of one ``python -m helios_core serve`` process that holds it (``--api-url``); no
ClickHouse server can be installed on these machines (Debian's is 18.16, too old for clickhouse-connect).

Asserted: every event lands exactly once (table or quarantine), after a kill the dead worker's leases
move to living workers, and no shard is ever read by two workers at once: each worker journals its
GetRecords calls (``HELIOS_WORKER_JOURNAL``) with the lease it believed it held, and the journals show
every read inside its lease and no two workers' leases of a shard overlapping. Everything waits on
conditions with generous deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from helpers import WAIT, wait_until

from helios_core.sandbox import generate_events
from tests.api_server import ROOT, api_server
from tests.test_ingest import activity_columns

LEASE_TIMEOUT = 4.0


def wait_for(predicate, timeout: float = WAIT):
    """The shared :func:`helpers.wait_until` (never a shorter deadline than its generous default)."""
    return wait_until(predicate, timeout=max(timeout, WAIT))


@pytest.fixture(scope="module")
def server(moto_server):
    with api_server(moto_server) as srv:
        yield srv


class Workers:
    def __init__(self, server, moto_server: str, lease_table: str, log_dir: Path) -> None:
        self.env = {**os.environ, "HELIOS_API_TOKEN": server.tokens["write"], "HELIOS_AWS_ENDPOINT_URL": moto_server,
                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "eu-west-1", "HELIOS_DATA_DIR": str(log_dir / "unused"),
                    "HELIOS_WORKER_JOURNAL": str(log_dir / "journal")}
        self.env.pop("HELIOS_CLICKHOUSE_URL", None)
        self.url = server.url
        self.lease_table = lease_table
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, worker_id: str) -> None:
        log = (self.log_dir / f"{worker_id}.log").open("ab")
        self.procs[worker_id] = subprocess.Popen(
            [sys.executable, "-m", "helios_core.ingest", "--worker-id", worker_id, "--api-url", self.url,
             "--lease-timeout", str(LEASE_TIMEOUT), "--lease-table", self.lease_table, "--batch-rows", "100",
             "--flush-seconds", "0.2", "--status-every", "2"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self, worker_id: str) -> None:
        proc = self.procs.pop(worker_id)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    def alive(self) -> set[str]:
        return {w for w, p in self.procs.items() if p.poll() is None}

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def journal(directory: Path) -> list[dict]:
    """Every GetRecords the workers journaled (a line cut by a SIGKILL mid-write is left out)."""
    reads = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                reads.append(json.loads(line))
            except ValueError:
                pass
    return reads


def lease_violations(reads: list[dict]) -> list[str]:
    """Reads outside the lease their worker believed it held, and shards two workers held (and read) at once.

    A worker's hold of a shard runs from when it took the lease to its last read under it; a new owner may
    take it only after the old owner's lease expired as the old owner saw it, or after the old owner handed
    it over or released it (its reads done). So, per shard, the holds must not overlap.
    """
    problems = [f"{r['worker']} read {r['shard']} at {r['read']:.3f}, its lease expired at {r['expires']:.3f}"
                for r in reads if not r["taken"] <= r["read"] < r["expires"]]
    holds: dict[tuple[str, str, float], float] = {}   # (shard, worker, taken) → last read
    for r in reads:
        key = (r["shard"], r["worker"], r["taken"])
        holds[key] = max(holds.get(key, r["read"]), r["read"])
    last: dict[str, tuple[str, float]] = {}           # shard → (worker, end of the latest hold so far)
    for (shard, worker, taken), end in sorted(holds.items(), key=lambda h: (h[0][0], h[0][2])):
        before = last.get(shard)
        if before is not None and taken <= before[1]:
            problems.append(f"{shard}: {worker} took it at {taken:.3f} while {before[0]} read it until "
                            f"{before[1]:.3f}")
        if before is None or end > before[1]:
            last[shard] = (worker, end)
    return problems


def test_killed_workers_lose_nothing_and_double_nothing(server, aws_conn, moto_server, kinesis_stream, tmp_path):
    api = server.client("write")
    stream = kinesis_stream(shards=4)
    table = f"w_{uuid.uuid4().hex[:8]}"
    created = api.post("/api/create-table", json={
        "streamName": stream, "databaseName": "workers_proc", "tableName": table, "mode": "workers",
        "schema": [c.to_json() for c in activity_columns()], "orderBy": ["event_type", "timestamp"]})
    assert created.status_code == 200, created.text
    source_id = created.json()["sourceId"]
    dynamodb = aws_conn.session().resource("dynamodb", endpoint_url=moto_server)
    lease_table = f"helios-leases-{uuid.uuid4().hex[:6]}"
    workers = Workers(server, moto_server, lease_table, tmp_path)
    kinesis = aws_conn.client("kinesis")
    expected: list[tuple[str, str]] = []   # (shard, sequence number): moto numbers each shard from 1

    def put(n: int, seed: int) -> None:
        events = generate_events("user_activity", n, seed=seed, bad_ratio=0.05)
        reply = kinesis.put_records(StreamName=stream, Records=[{"Data": e.payload, "PartitionKey": e.partition_key}
                                                               for e in events])
        expected.extend((r["ShardId"], r["SequenceNumber"]) for r in reply["Records"])

    def landed() -> list[tuple[str, str]]:
        sql = (f"SELECT toString(shard) AS shard, seq FROM workers_proc.{table} UNION ALL "
               f"SELECT shard_id AS shard, sequence_number AS seq FROM workers_proc.{table}_quarantine")
        reply = api.post("/api/query", json={"query": sql, "limit": 100_000})
        assert reply.status_code == 200, reply.text
        return [(row["shard"], row["seq"]) for row in reply.json()["data"]]

    def owners() -> dict[str, str]:
        items = dynamodb.Table(lease_table).scan(ConsistentRead=True).get("Items", []) \
            if lease_table in dynamodb.meta.client.list_tables()["TableNames"] else []
        # This source's shards only: the workers also run any other workers source in the shared mapping table.
        return {i["shard_id"]: i.get("owner", "") for i in items
                if i.get("source_id") == source_id and not i.get("finished")}

    try:
        for worker_id in ("w1", "w2", "w3"):
            workers.start(worker_id)
        assert wait_for(lambda: len(owners()) == 4 and set(owners().values()) == {"w1", "w2", "w3"}), \
            f"the three workers share the four shards: {owners()}"
        round_no = 0
        for victim in ("w2", "w1"):
            for _ in range(3):
                round_no += 1
                put(150, seed=100 + round_no)
            workers.kill(victim)   # SIGKILL: no flush, no lease handed back
            put(150, seed=200 + round_no)
            alive = workers.alive()
            moved = wait_for(lambda: owners() and set(owners().values()) <= alive)  # noqa: B023  (waited on here)
            assert moved, \
                f"{victim}'s shards moved to living workers within the lease timeout: {owners()}"
            workers.start(f"{victim}b")
        put(150, seed=300)
        assert wait_for(lambda: len(landed()) >= len(expected), timeout=240), \
            f"{len(landed())} of {len(expected)} events landed"
        got = landed()
        assert len(got) == len(set(got)), "no event landed twice"
        assert sorted(got) == sorted(expected), "every event landed (table or quarantine)"
    finally:
        workers.stop_all()
    reads = [r for r in journal(tmp_path / "journal") if r["shard"].startswith(f"{source_id}:")]  # this source's
    readers: dict[str, set[str]] = {}
    for r in reads:
        readers.setdefault(r["shard"], set()).add(r["worker"])
    assert len(readers) == 4 and any(len(w) > 1 for w in readers.values()), \
        f"every shard was read, and shards moved between workers: {readers}"
    assert lease_violations(reads) == [], "no shard was read by two workers at once, nor past a lease"
