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
    last_error String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (source_id, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY""",
]


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


def write_metrics(ch: ClickHouse, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = ["ts", "source_id", "rows_inserted", "rows_quarantined", "batches", "errors", "millis_behind",
             "last_insert", "last_error"]
    ch.insert_rows("ingest_metrics", [[r[n] for n in names] for r in rows], column_names=names, database=METADATA_DB)
