"""AWS Lambda: a Kinesis event-source-mapping batch into ClickHouse, through the ingester's own transform.

Per stream shard in the event, for every source mapped to the stream (the DynamoDB
mapping table, the Helios seed's "mapping added to dynamo"):

1. drop records at or before the shard's committed checkpoint (a retry after another
   source's failure, or a batch re-sent by Lambda, inserts nothing twice);
2. if an insert was in flight when the last attempt failed (the checkpoint's intent),
   rebuild exactly that range first, with the same deduplication token;
3. write the intent, build the Arrow batch (:func:`~helios_core.ingest.batch.build_records`),
   insert it and its quarantine rows (:mod:`helios_core.ingest.sink`), move the checkpoint.

Checkpoints are the ingester's own (``helios.ingest_checkpoints`` on the target ClickHouse),
so the token for a range is the same whichever runner wrote it.

A malformed record never raises: it goes to quarantine with its reason. When ClickHouse
cannot take a batch, the handler reports the first record it did not store in
``batchItemFailures`` (the mapping has ``ReportBatchItemFailures``), so Lambda retries
from there and nothing is reported done that was not stored.

ClickHouse is reached with a URL kept in Secrets Manager (``HELIOS_CLICKHOUSE_SECRET_ARN``),
never in the function's environment in clear.
"""

from __future__ import annotations

import binascii
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from helios_core.config import load_settings, setting
from helios_core.errors import ConfigError
from helios_core.ingest.batch import MAX_EVENT_BYTES, BatchBuilder, Built, RawRecord, build_records
from helios_core.ingest.mapping import MappingStore
from helios_core.ingest.sink import write_range
from helios_core.ingest.store import Checkpoint, CheckpointStore, records_after, records_up_to, seq_int
from helios_core.sources import Source

log = logging.getLogger("helios.lambda")

# The function's environment, set by helios_core.serverless (declared with every other setting in config.SETTINGS).
MAPPING_TABLE_ENV = setting("mapping_table").env[0]
SECRET_ENV = setting("clickhouse_secret_arn").env[0]


@dataclass
class ShardRecords:
    stream_arn: str
    shard_id: str
    records: list[RawRecord] = field(default_factory=list)


def shard_of(event_id: str) -> str:
    """``shardId-000000000001:4959…`` → ``shardId-000000000001``."""
    return event_id.split(":", 1)[0]


def group_records(event: dict[str, Any]) -> list[ShardRecords]:
    """The event's records per (stream, shard), in the order Lambda gave them."""
    groups: dict[tuple[str, str], ShardRecords] = {}   # dicts keep insertion order
    a2b, record = binascii.a2b_base64, RawRecord
    last_key: tuple[str, str] | None = None
    records: list[RawRecord] = []
    for item in event.get("Records") or ():
        kinesis = item.get("kinesis") or {}
        key = (item.get("eventSourceARN", ""), shard_of(item.get("eventID", "")))
        if key != last_key:  # an event is usually one shard: look the group up only when it changes
            group = groups.get(key)
            if group is None:
                group = groups[key] = ShardRecords(*key)
            records, last_key = group.records, key
        raw = kinesis.get("data") or ""
        try:
            data = a2b(raw)
        except (binascii.Error, ValueError, TypeError):
            data = str(raw).encode()  # undecodable base64 still goes to quarantine, with the reason
        records.append(record(data, str(kinesis.get("sequenceNumber", "")), str(kinesis.get("partitionKey", "")),
                              int(float(kinesis.get("approximateArrivalTimestamp") or 0) * 1000)))
    return list(groups.values())


@dataclass
class HandlerEnv:
    """What one invocation needs: the mapping table and a ClickHouse client (both reused across invocations).

    A warm Lambda container keeps a stream's mapping for ``mapping_ttl_s`` seconds instead of asking DynamoDB on
    every batch; a changed rule reaches the function within that time. The batch builder of each (source, shard)
    is kept as long as the mapping's definition of the source is (it depends on nothing else).

    Shard checkpoints are deliberately *not* kept across invocations: see :func:`_checkpoint`.
    """

    mappings: MappingStore
    clickhouse: Callable[[], Any]
    max_event_bytes: int = MAX_EVENT_BYTES
    mapping_ttl_s: float = 30.0
    _cache: dict[str, tuple[float, list[Source]]] = field(default_factory=dict)
    _builders: dict[tuple[str, str], tuple[Source, BatchBuilder]] = field(default_factory=dict)
    _reader: ThreadPoolExecutor | None = None

    def sources_for(self, stream_arn: str) -> list[Source]:
        now = time.monotonic()
        hit = self._cache.get(stream_arn)
        if hit is not None and now - hit[0] < self.mapping_ttl_s:
            return hit[1]
        # Only lambda sources: a workers source on the same stream is read by the workers, with their own checkpoints.
        found = [s for s in self.mappings.sources_for(stream_arn) if s.mode == "lambda"]
        self._cache[stream_arn] = (now, found)
        return found

    def reader(self) -> ThreadPoolExecutor:
        """One thread that reads checkpoints while the invocation builds its batch."""
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="helios-checkpoint")
        return self._reader

    def builder(self, source: Source, shard_id: str) -> BatchBuilder:
        """The source's compiled batch builder for the shard (rebuilt when the mapping brought a new definition)."""
        key = (source.id, shard_id)
        hit = self._builders.get(key)
        if hit is not None and hit[0] is source:
            return hit[1]
        built = BatchBuilder(source.columns, shard_id)
        self._builders[key] = (source, built)
        return built


def process(event: dict[str, Any], env: HandlerEnv) -> dict[str, Any]:
    """Store the event's records; the partial-batch response names the first record of each shard not stored."""
    failures: list[str] = []
    for group in group_records(event):
        first_unstored = _store_group(group, env)
        if first_unstored:
            failures.append(first_unstored)
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failures]}


def _store_group(group: ShardRecords, env: HandlerEnv) -> str:
    """Every mapped source gets the shard's records; returns the earliest sequence number not stored ("": all)."""
    try:
        sources = env.sources_for(group.stream_arn)
    except Exception as exc:  # DynamoDB away: nothing is stored, Lambda retries the whole shard batch
        log.error("reading the mapping for %s failed: %s", group.stream_arn, exc)
        return group.records[0].sequence_number
    if not sources:
        log.error("no Helios source is mapped to %s; the records are kept in the stream", group.stream_arn)
        return group.records[0].sequence_number
    earliest = ""
    for source in sources:
        unstored = _store_for_source(source, group, env)
        if unstored and (not earliest or seq_int(unstored) < seq_int(earliest)):
            earliest = unstored
    return earliest


def _store_for_source(source: Source, group: ShardRecords, env: HandlerEnv) -> str:
    builder = env.builder(source, group.shard_id)
    try:
        client = env.clickhouse()
        store = CheckpointStore(client, source.id)
        # The checkpoint read is a round trip: the batch is built meanwhile, and used as it is in the usual
        # case (nothing of it stored yet, no other container's intent to replay).
        reading = env.reader().submit(_checkpoint, store, group.shard_id)
        prebuilt: Built | None = build_records(builder, group.records, env.max_event_bytes)
        cp = reading.result()
    except Exception as exc:
        log.error("ClickHouse is not reachable for source %s: %s", source.id, exc)
        return group.records[0].sequence_number
    todo = records_after(group.records, cp.committed_seq)
    while todo:
        batch = _next_batch(todo, cp)
        built, prebuilt = (prebuilt if batch is group.records else None), None
        try:
            write_range(client, store, source, builder, group.shard_id, cp, batch, env.max_event_bytes,
                        built=built)
        except Exception as exc:  # ClickHouse refused to take the batch at all: retry from its first record
            log.error("source %s shard %s: batch %s..%s not stored: %s", source.id, group.shard_id,
                      batch[0].sequence_number, batch[-1].sequence_number, exc)
            return batch[0].sequence_number
        todo = todo[len(batch):]
    return ""


def _checkpoint(store: CheckpointStore, shard_id: str) -> Checkpoint:
    """The shard's committed checkpoint and intent, read at every invocation.

    A copy kept in the container from its last invocation cannot be trusted, and no test on the event tells
    when it is stale: with one batch per shard at a time, Lambda still hands a shard's next batch to any warm
    container. Say this container stored a shard up to C; the next batch went to another container, which
    wrote its intent (C+1..D), inserted the rows and failed before the quarantine insert, reporting C+1.
    Lambda's retry from C+1 may then come here — its first record is exactly the one after the cached C, so
    it looks like the plain next batch — and the cached copy (C, no intent) would insert C+1..E under a new
    token: the rows of C+1..D twice. Only the stored intent says to replay C+1..D with the other container's
    token. So the checkpoint is read each time (one point query on the shard's key); everything else the
    worker does once — the mapping, the client, the compiled builder — is kept.
    """
    return store.load_one(shard_id) or Checkpoint(shard_id)


def _next_batch(todo: list[RawRecord], cp: Checkpoint) -> list[RawRecord]:
    """The in-flight range first (same records → same token), else everything left."""
    if cp.has_pending and todo[0].sequence_number == cp.pending_from:
        replay = records_up_to(todo, cp.pending_seq)
        if replay and replay[-1].sequence_number == cp.pending_seq:
            return replay
    return todo


# ---- the Lambda entry point --------------------------------------------------------------------

_env: HandlerEnv | None = None


def _clickhouse_url(secret_arn: str) -> str:
    import boto3

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    try:
        return str(json.loads(secret)["url"])
    except (ValueError, KeyError, TypeError):
        return secret.strip()


def _environment() -> HandlerEnv:
    global _env
    if _env is None:
        import boto3
        import clickhouse_connect

        settings = load_settings(secrets_paths=[])  # a Lambda function has its environment only
        client: list[Any] = []

        def clickhouse() -> Any:
            if not client:
                if not settings.clickhouse_secret_arn:
                    raise ConfigError(f"{SECRET_ENV} is not set.",
                                      "Deploy the function with python -m helios_core lambda deploy SOURCE_ID.")
                client.append(clickhouse_connect.get_client(dsn=_clickhouse_url(settings.clickhouse_secret_arn),
                                                            autogenerate_session_id=False))
            return client[0]

        mappings = MappingStore(boto3.resource("dynamodb"), settings.mapping_table or MappingStore.DEFAULT_TABLE)
        _env = HandlerEnv(mappings, clickhouse)
    return _env


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda's entry point (``helios_core.ingest.lambda_handler.handler``)."""
    return process(event, _environment())
