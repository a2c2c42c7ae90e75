"""A headless worker: one of several processes sharing the shards of every ``workers`` source.

Sources come from the DynamoDB mapping table (as for Lambda), shards are divided by the leases in
:mod:`helios_core.ingest.leases`, and each source is read by the ingester's own
:class:`~helios_core.ingest.consumer.SourceConsumer`, restricted to the shards this worker leases and
keeping its checkpoints in those leases. Rows go to ClickHouse through ``clickhouse`` — a server's
client, or :class:`~helios_core.ingest.remote.RemoteClickHouse` writing through the HTTP API of the one
Helios process that holds an embedded engine.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helios_core.config import get_settings
from helios_core.ingest.consumer import IngestConfig, SourceConsumer
from helios_core.ingest.leases import Coordinator, HeldLease, LeaseCheckpoints, LeaseTable
from helios_core.ingest.mapping import MappingStore, mapped_sources
from helios_core.ingest.metrics import SourceMetrics
from helios_core.ingest.remote import RemoteClickHouse
from helios_core.ingest.store import insert_metrics
from helios_core.sources import Source
from helios_core.streams import list_shards

log = logging.getLogger("helios.worker")


@dataclass
class WorkerConfig:
    lease_timeout: float = 10.0       # a lease not renewed for this long is taken over
    sync_seconds: float = 2.0         # how often sources are re-read from the mapping table
    ingest: IngestConfig | None = None
    journal_dir: Path | None = None   # None: HELIOS_WORKER_JOURNAL (unset: no journal)
    metrics_seconds: float = 30.0     # how often counters are sampled into helios.ingest_metrics (as the app does)


class Journal:
    """One line per GetRecords a worker does, appended to ``<dir>/<worker id>.jsonl``.

    ``shard`` is the lease key (source:shard), ``counter`` the lease's counter as the worker last wrote it,
    ``taken``/``read``/``expires`` wall-clock seconds: when it took the lease, when it read, and until when it
    believed it held the lease. A line is written before the read, in one ``write`` call, so a worker killed
    at any point leaves whole lines for every read it started.
    """

    def __init__(self, directory: Path, worker_id: str, clock: Callable[[], float]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(directory / f"{worker_id}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.worker_id = worker_id
        self.clock = clock
        # The coordinator's clock → wall clock (comparable across processes), fixed once so that one lease's
        # ``taken`` is the same number on every line.
        self.wall = time.time() - clock()

    def read(self, held: HeldLease) -> None:
        line = {"worker": self.worker_id, "shard": held.key, "counter": held.counter, "taken": self.wall + held.taken,
                "read": self.wall + self.clock(), "expires": self.wall + held.expires}
        os.write(self.fd, (json.dumps(line) + "\n").encode())

    def close(self) -> None:
        os.close(self.fd)


class LeasedKinesis:
    """A worker's Kinesis client for one source: every GetRecords runs under the shard's lease.

    The consumer checks the lease before it polls a shard; here it is checked again at the moment of the read
    and held while the read runs (:meth:`Coordinator.reading`), so a lease handed over in between stops the
    read (:class:`~helios_core.ingest.leases.LeaseLost`, which the consumer takes as the lease gone).
    Iterators are traced to their shard: GetRecords names only the iterator.
    """

    def __init__(self, client: Any, source_id: str, coordinator: Coordinator, journal: Journal | None) -> None:
        self.client = client
        self.source_id = source_id
        self.coordinator = coordinator
        self.journal = journal
        self._shard_of: dict[str, str] = {}      # iterator → shard: the newest iterator of each shard only
        self._newest: dict[str, str] = {}        # shard → its newest iterator

    def _trace(self, iterator: str | None, shard: str) -> None:
        old = self._newest.pop(shard, None)
        if old is not None:
            self._shard_of.pop(old, None)
        if iterator:
            self._shard_of[iterator] = shard
            self._newest[shard] = iterator

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        reply: dict[str, Any] = self.client.get_shard_iterator(**kwargs)
        self._trace(reply["ShardIterator"], kwargs["ShardId"])
        return reply

    def get_records(self, **kwargs: Any) -> dict[str, Any]:
        shard = self._shard_of.get(kwargs["ShardIterator"])
        if shard is None:  # the consumer reads only iterators it got here: this is a programming error
            raise ValueError("GetRecords with an iterator this worker did not obtain")
        with self.coordinator.reading(self.source_id, shard) as held:
            if self.journal is not None:
                self.journal.read(held)
            reply: dict[str, Any] = self.client.get_records(**kwargs)
        self._trace(reply.get("NextShardIterator"), shard)
        return reply

    def __getattr__(self, name: str) -> Any:   # ListShards and the rest: as they are
        return getattr(self.client, name)


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
        self._metrics_client: Any = None
        self._last_metrics = time.monotonic()
        journal_dir = self.config.journal_dir or get_settings().worker_journal
        self.journal = Journal(journal_dir, worker_id, self.coordinator.clock) if journal_dir else None

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
        running, mapped = mapped_sources(self.mappings, mode="workers")
        sources = {s.id: s for s in running}
        self.coordinator.forget_sources({sid for sid in self._sources if sid not in mapped})  # deleted, not paused
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
                source, self.clickhouse, self._kinesis_for(source.id), self.config.ingest or IngestConfig(), metrics,
                store_factory=self._store_factory(source.id), shard_filter=self._holds(source.id)).start()

    def _kinesis_for(self, source_id: str) -> Callable[[], LeasedKinesis]:
        return lambda: LeasedKinesis(self.kinesis(), source_id, self.coordinator, self.journal)

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
                if time.monotonic() - self._last_metrics >= self.config.metrics_seconds:
                    self.write_metrics()

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
        self.write_metrics()  # the final counters, after the consumers flushed
        if self._metrics_client is not None:
            self._metrics_client.close()
            self._metrics_client = None
        self.coordinator.stop(release=True)
        if self.journal is not None:  # no read can start any more: every lease was dropped
            self.journal.close()
            self.journal = None

    def samples(self) -> list[dict[str, Any]]:
        """A metrics sample of each source this worker runs, tagged with its id."""
        out = []
        for source_id in list(self.consumers):
            metrics = self.metrics[source_id]
            out.append({**metrics.sample_row(), "worker_id": self.worker_id})
        return out

    def write_metrics(self) -> None:
        """Samples into ``helios.ingest_metrics``: directly, or through the Helios API (best effort, as in the app)."""
        self._last_metrics = time.monotonic()
        samples = self.samples()
        if not samples:
            return
        try:
            if self._metrics_client is None:
                self._metrics_client = self.clickhouse()
            client = self._metrics_client
            if isinstance(client, RemoteClickHouse):
                client.insert_metrics(samples)
            else:
                insert_metrics(client, samples)
        except Exception as exc:  # a fresh client next time: this one may be broken
            log.warning("worker %s: could not write ingest metrics: %s", self.worker_id, exc)
            client, self._metrics_client = self._metrics_client, None
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a broken client is best effort
                    pass


def _rules(source: Source) -> list[dict[str, Any]]:
    return [c.to_json() for c in source.columns]
