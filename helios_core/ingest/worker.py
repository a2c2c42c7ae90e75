"""A headless worker: one of several processes sharing the shards of every ``workers`` source.

Sources come from the DynamoDB mapping table (as for Lambda), shards are divided by the leases in
:mod:`helios_core.ingest.leases`, and each source is read by the ingester's own
:class:`~helios_core.ingest.consumer.SourceConsumer`, restricted to the shards this worker leases and
keeping its checkpoints in those leases. Rows go to ClickHouse through ``clickhouse`` — a server's
client, or :class:`~helios_core.ingest.remote.RemoteClickHouse` writing through the HTTP API of the one
Helios process that holds an embedded engine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from helios_core.ingest.consumer import IngestConfig, SourceConsumer
from helios_core.ingest.leases import Coordinator, LeaseCheckpoints, LeaseTable
from helios_core.ingest.mapping import MappingStore, all_sources
from helios_core.ingest.metrics import SourceMetrics
from helios_core.sources import Source
from helios_core.streams import list_shards

log = logging.getLogger("helios.worker")


@dataclass
class WorkerConfig:
    lease_timeout: float = 10.0       # a lease not renewed for this long is taken over
    sync_seconds: float = 2.0         # how often sources are re-read from the mapping table
    ingest: IngestConfig | None = None


class Worker:
    def __init__(self, worker_id: str, kinesis: Callable[[], Any], clickhouse: Callable[[], Any],
                 mappings: MappingStore, leases: LeaseTable, config: WorkerConfig | None = None) -> None:
        self.worker_id = worker_id
        self.kinesis = kinesis
        self.clickhouse = clickhouse
        self.mappings = mappings
        self.leases = leases
        self.config = config or WorkerConfig()
        self.coordinator = Coordinator(leases, worker_id, self._shards_of, timeout=self.config.lease_timeout)
        self.consumers: dict[str, SourceConsumer] = {}
        self.metrics: dict[str, SourceMetrics] = {}
        self._sources: dict[str, Source] = {}
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _shards_of(self) -> dict[str, list[tuple[str, list[str]]]]:
        client = self.kinesis()
        out: dict[str, list[tuple[str, list[str]]]] = {}
        for source in list(self._sources.values()):
            shards = list_shards(client, source.stream_name)
            ids = {s["ShardId"] for s in shards}
            out[source.id] = [(s["ShardId"], [p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId"))
                                              if p and p in ids]) for s in shards]
        return out

    def sync(self) -> None:
        """Consumers for the running ``workers`` sources, none for the others."""
        sources = {s.id: s for s in all_sources(self.mappings, mode="workers")}
        for source_id in list(self.consumers):
            if source_id not in sources or _rules(self.consumers[source_id].source) != _rules(sources[source_id]):
                self.consumers.pop(source_id).stop()  # paused, deleted, or new rules: a fresh consumer has them
        # Only now may the coordinator hand a dropped source's leases back: its consumer has committed.
        self._sources = sources
        for source in sources.values():
            consumer = self.consumers.get(source.id)
            if consumer is not None and consumer.alive:
                continue
            metrics = self.metrics.setdefault(source.id, SourceMetrics(source.id))
            self.consumers[source.id] = SourceConsumer(
                source, self.clickhouse, self.kinesis, self.config.ingest or IngestConfig(), metrics,
                store_factory=self._store_factory(source.id), shard_filter=self._holds(source.id)).start()

    def _holds(self, source_id: str) -> Callable[[str], bool]:
        """Whether this worker holds the lease of one of the source's shards (asked at each use)."""
        def holds(shard: str) -> bool:
            return self.coordinator.holds(source_id, shard)
        return holds

    def _store_factory(self, source_id: str) -> Callable[[Any], LeaseCheckpoints]:
        def store(_client: Any) -> LeaseCheckpoints:
            return LeaseCheckpoints(self.leases, source_id, self.worker_id, self._holds(source_id))
        return store

    def start(self) -> Worker:
        self.leases.ensure_table()
        self.sync()
        self.coordinator.run()

        def loop() -> None:
            while not self._stop.wait(self.config.sync_seconds):
                try:
                    self.sync()
                except Exception as exc:  # the mapping table away for a moment
                    log.warning("worker %s: reading sources failed: %s", self.worker_id, exc)

        self.thread = threading.Thread(target=loop, name=f"worker-{self.worker_id}", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """A clean stop: flush and commit what was read, then hand the leases back at once."""
        self._stop.set()
        if self.thread:
            self.thread.join(self.config.sync_seconds * 2)
        for consumer in self.consumers.values():
            consumer.stop()
        self.coordinator.stop(release=True)


def _rules(source: Source) -> list[dict[str, Any]]:
    return [c.to_json() for c in source.columns]
