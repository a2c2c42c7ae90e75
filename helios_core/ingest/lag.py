"""How far a stopped (paused, failed) source is behind its stream.

A running consumer learns its lag from each GetRecords reply. A stopped one
gets no replies, so its last figure would stay frozen (often 0.0 s) while the
producer keeps writing. Here the lag is measured from the checkpoints: per
shard, the oldest record the source has not read yet; its age is the lag.
One GetRecords call (Limit 1) per unfinished shard.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from helios_core.ingest.store import Checkpoint
from helios_core.sources import Source
from helios_core.streams import list_shards


def _iterator_args(source: Source, checkpoint: Checkpoint | None) -> dict[str, Any]:
    if checkpoint is not None and checkpoint.committed_seq:
        return {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": checkpoint.committed_seq}
    anchor = source.start_anchor()
    if anchor is not None:
        return {"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": anchor}
    return {"ShardIteratorType": "TRIM_HORIZON"}


def unread_lag_ms(source: Source, kinesis: Any, checkpoints: dict[str, Checkpoint],
                  now: datetime | None = None) -> int:
    """Milliseconds between now and the arrival of the oldest record the source has not read (0: none unread)."""
    now = now or datetime.now(UTC)
    lag = 0
    for shard in list_shards(kinesis, source.stream_name):
        checkpoint = checkpoints.get(shard["ShardId"])
        if checkpoint is not None and checkpoint.finished:
            continue
        iterator = kinesis.get_shard_iterator(StreamName=source.stream_name, ShardId=shard["ShardId"],
                                              **_iterator_args(source, checkpoint))["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator, Limit=1)
        if records.get("Records"):
            arrived = records["Records"][0]["ApproximateArrivalTimestamp"]
            lag = max(lag, int((now - arrived).total_seconds() * 1000))
        else:  # nothing within the first page: Kinesis's own estimate
            lag = max(lag, int(records.get("MillisBehindLatest", 0) or 0))
    return max(lag, 0)
