"""Checkpoints and metrics of the ingester, in the ``helios`` metadata database.

A checkpoint row per (source, shard) holds:

* ``committed_seq`` — every record up to and including it is in the table or
  the quarantine table;
* ``pending_from``/``pending_seq`` — the intent written *before* a batch is inserted: the batch
  is exactly the records from ``pending_from`` up to ``pending_seq``. After a
  crash the consumer rebuilds that same batch and inserts it again with the same
  deduplication token, so ClickHouse drops it if the first attempt had landed;
* ``finished`` — the shard is closed and read to its end (its children may start).

Sequence numbers are compared as integers (Kinesis's are decimal strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from helios_core.metadata import METADATA_DB, next_version

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from helios_core.clickhouse import ClickHouse
    from helios_core.ingest.batch import RawRecord

CHECKPOINTS = f"{METADATA_DB}.ingest_checkpoints"
METRICS = f"{METADATA_DB}.ingest_metrics"

_CHECKPOINT_COLUMNS = ["source_id", "shard_id", "version", "committed_seq", "pending_from", "pending_seq",
                       "finished", "updated_at"]
_CHECKPOINT_TYPES = ["String", "String", "UInt64", "String", "String", "String", "UInt8", "DateTime64(3, 'UTC')"]

METADATA_TABLES = [
    f"""CREATE TABLE IF NOT EXISTS {CHECKPOINTS}
(
    source_id String,
    shard_id String,
    version UInt64,
    committed_seq String,
    pending_from String,
    pending_seq String,
    finished UInt8,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (source_id, shard_id)""",
    f"""CREATE TABLE IF NOT EXISTS {METRICS}
(
    ts DateTime64(3, 'UTC'),
    source_id String,
    rows_inserted UInt64,
    rows_quarantined UInt64,
    batches UInt64,
    errors UInt64,
    millis_behind UInt64,
    last_insert Nullable(DateTime64(3, 'UTC')),
    last_error String,
    records_read UInt64 DEFAULT 0,
    worker_id String DEFAULT ''
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (source_id, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY""",
]
# Headless workers' samples came later: a sample names the worker that took it ('' for the app's manager).
METADATA_ALTERS = [f"ALTER TABLE {METRICS} ADD COLUMN IF NOT EXISTS records_read UInt64 DEFAULT 0",
                   f"ALTER TABLE {METRICS} ADD COLUMN IF NOT EXISTS worker_id String DEFAULT ''"]


@dataclass
class Checkpoint:
    shard_id: str
    committed_seq: str = ""
    pending_seq: str = ""
    pending_from: str = ""
    finished: bool = False

    @property
    def has_pending(self) -> bool:
        return bool(self.pending_seq) and seq_int(self.pending_seq) > seq_int(self.committed_seq)


def seq_int(seq: str) -> int:
    return int(seq) if seq else -1


def records_after(records: list[RawRecord], seq: str) -> list[RawRecord]:
    """The records past ``seq`` ("": all). A shard's records come in order, so when the first is past it they
    all are, and the list itself comes back (the usual case: nothing of it was taken or stored yet)."""
    if not records or seq_int(records[0].sequence_number) > seq_int(seq):
        return records
    done = seq_int(seq)
    return [r for r in records if seq_int(r.sequence_number) > done]


def records_up_to(records: list[RawRecord], seq: str) -> list[RawRecord]:
    """The records up to and including ``seq`` (a range in flight, replayed as it was)."""
    limit = seq_int(seq)
    return [r for r in records if seq_int(r.sequence_number) <= limit]


class CheckpointStore:
    """Reads and writes one source's checkpoints through a given client handle."""

    def __init__(self, client: Client, source_id: str) -> None:
        self.client = client
        self.source_id = source_id

    def load(self) -> dict[str, Checkpoint]:
        result = self.client.query(
            f"SELECT shard_id, committed_seq, pending_seq, finished, pending_from FROM {CHECKPOINTS} FINAL "
            "WHERE source_id = {s:String}", parameters={"s": self.source_id})
        return {r[0]: Checkpoint(shard_id=r[0], committed_seq=r[1], pending_seq=r[2], finished=bool(r[3]),
                                 pending_from=r[4]) for r in result.result_rows}

    def load_one(self, shard_id: str) -> Checkpoint | None:
        result = self.client.query(
            f"SELECT shard_id, committed_seq, pending_seq, finished, pending_from FROM {CHECKPOINTS} FINAL "
            "WHERE source_id = {s:String} AND shard_id = {h:String}", parameters={"s": self.source_id, "h": shard_id})
        return next((Checkpoint(shard_id=r[0], committed_seq=r[1], pending_seq=r[2], finished=bool(r[3]),
                                pending_from=r[4]) for r in result.result_rows), None)

    def save(self, cp: Checkpoint) -> None:
        self.client.insert("ingest_checkpoints", [[self.source_id, cp.shard_id, next_version(), cp.committed_seq,
                                                   cp.pending_from, cp.pending_seq, int(cp.finished),
                                                   datetime.now(UTC)]],
                           column_names=_CHECKPOINT_COLUMNS, column_type_names=_CHECKPOINT_TYPES,
                           database=METADATA_DB)  # types given: no DESCRIBE round trip per save, on every runner


def load_checkpoints(ch: ClickHouse, source_id: str) -> dict[str, Checkpoint]:
    rows = ch.internal_query(f"SELECT shard_id, committed_seq, pending_seq, finished, pending_from FROM {CHECKPOINTS} "
                             "FINAL WHERE source_id = {s:String}", {"s": source_id})
    return {r["shard_id"]: Checkpoint(shard_id=r["shard_id"], committed_seq=r["committed_seq"],
                                      pending_seq=r["pending_seq"], finished=bool(r["finished"]),
                                      pending_from=r["pending_from"]) for r in rows}


def delete_checkpoints(ch: ClickHouse, source_id: str) -> None:
    ch.execute(f"DELETE FROM {CHECKPOINTS} WHERE source_id = {{s:String}}", {"s": source_id})


METRIC_COLUMNS = ["ts", "source_id", "rows_inserted", "rows_quarantined", "batches", "errors", "millis_behind",
                  "last_insert", "last_error", "records_read", "worker_id"]
METRIC_TYPES = ["DateTime64(3, 'UTC')", "String", "UInt64", "UInt64", "UInt64", "UInt64", "UInt64",
                "Nullable(DateTime64(3, 'UTC'))", "String", "UInt64", "String"]
_METRIC_DEFAULTS: dict[str, Any] = {"records_read": 0, "worker_id": ""}
# A worker whose newest sample is older than this is counted as gone (it samples every 30 s by default).
LIVE_WITHIN_S = 90.0


def metric_rows(samples: list[dict[str, Any]]) -> list[list[Any]]:
    """Samples (``SourceMetrics.sample_row`` dicts, perhaps with ``records_read``/``worker_id``) as insert rows."""
    return [[s[n] if n in s else _METRIC_DEFAULTS[n] for n in METRIC_COLUMNS] for s in samples]


def write_metrics(ch: ClickHouse, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    ch.insert_rows("ingest_metrics", metric_rows(rows), column_names=METRIC_COLUMNS, database=METADATA_DB)


def insert_metrics(client: Client, samples: list[dict[str, Any]]) -> None:
    """A headless worker's samples through its own clickhouse-connect client (a server's, not the app's)."""
    if samples:
        client.insert("ingest_metrics", metric_rows(samples), column_names=METRIC_COLUMNS,
                      column_type_names=METRIC_TYPES, database=METADATA_DB)


@dataclass
class WorkersCounters:
    """A ``workers`` source's counters: each worker's newest sample, summed (``millis_behind``: the largest).

    A worker's counters start at zero when its process starts, so a worker restarted under the same id
    counts from its restart on.
    """

    records_read: int = 0
    rows_inserted: int = 0
    rows_quarantined: int = 0
    batches: int = 0
    errors: int = 0
    millis_behind: int | None = None      # over the live workers; None when none is live
    last_insert: datetime | None = None
    last_sample: datetime | None = None
    workers: int = 0                      # workers that ever sampled the source (within the metrics' TTL)
    live_workers: int = 0                 # of them, those with a sample in the last ``LIVE_WITHIN_S``
    last_error: str = ""                  # the newest error any worker reported


def workers_counters(ch: ClickHouse, source_id: str, live_within_s: float = LIVE_WITHIN_S) -> WorkersCounters:
    rows = ch.internal_query(
        f"""SELECT worker_id, argMax(records_read, ts) AS records_read, argMax(rows_inserted, ts) AS rows_inserted,
       argMax(rows_quarantined, ts) AS rows_quarantined, argMax(batches, ts) AS batches,
       argMax(errors, ts) AS errors, argMax(millis_behind, ts) AS millis_behind, max(last_insert) AS last_insert,
       max(ts) AS last_sample, argMax(last_error, ts) AS last_error,
       dateDiff('millisecond', max(ts), now64(3)) <= {{live:Int64}} AS live
FROM {METRICS} WHERE source_id = {{s:String}} AND worker_id != '' GROUP BY worker_id ORDER BY last_sample""",
        {"s": source_id, "live": int(live_within_s * 1000)})
    out = WorkersCounters(workers=len(rows))
    for r in rows:  # oldest sample first: the newest error wins
        for name in ("records_read", "rows_inserted", "rows_quarantined", "batches", "errors"):
            setattr(out, name, getattr(out, name) + int(r[name]))
        if r["live"]:
            out.live_workers += 1
            out.millis_behind = max(out.millis_behind or 0, int(r["millis_behind"]))
        out.last_insert = _latest(out.last_insert, r["last_insert"])
        out.last_sample = _latest(out.last_sample, r["last_sample"])
        out.last_error = r["last_error"] or out.last_error
    return out


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a
