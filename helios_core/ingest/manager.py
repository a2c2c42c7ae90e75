"""The process-wide ingest manager: one consumer thread per running source.

Started once per process (``get_ingest_manager()`` registers it as the runtime
service ``"ingest"``). A supervisor thread keeps consumers in line with the
source records every few seconds — starting running sources, stopping paused or
deleted ones, restarting a consumer whose rules changed — and writes metrics
samples to ``helios.ingest_metrics``. Pausing, resuming, deleting and new rules
go through :mod:`helios_core.ingest.control`, which tells this manager when the
process has one, so they take effect at once.

Credentials are never stored: a source connected with explicit keys gets them
from :meth:`register_connection` (in memory, for this process); otherwise the
stored connection is rebuilt from its region / profile / endpoint, and sandbox
sources use the running sandbox. After a restart a keys source has no keys: it
is not started with some other credentials but marked failed, with a message
telling the user to sign in again; :meth:`resume` with their new connection
starts it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from helios_core.clickhouse import ClickHouse
from helios_core.errors import AwsError, HeliosError, ValidationError
from helios_core.ingest.consumer import KEYS_HINT, IngestConfig, SourceConsumer
from helios_core.ingest.lag import unread_lag_ms
from helios_core.ingest.metrics import SourceMetrics
from helios_core.ingest.store import load_checkpoints, write_metrics
from helios_core.runtime import get_runtime
from helios_core.sources import (
    Source,
    get_source,
    list_sources,
    pin_latest_start,
    resume_source,
    set_status,
    source_for_change,
)

log = logging.getLogger("helios.ingest")
LAG_CACHE_SECONDS = 10.0  # a stopped source's lag is measured with Kinesis calls: not on every page refresh
LAG_RETRY_SECONDS = 60.0  # … and after a failed measurement, not for a minute

NO_KEYS = ("Needs credentials: this source was connected with access keys, which Helios keeps in memory only, "
           "so since Helios restarted it has none to read the stream with. " + KEYS_HINT)


def connection_for(source: Source, registered: Any = None):
    """An AwsConnection for a source (never from stored secrets: there are none)."""
    from helios_core.aws import AwsConnection
    if registered is not None:
        return registered
    conn = source.connection
    if conn.sandbox:
        from helios_core.sandbox import get_sandbox, sandbox_if_running
        sandbox = sandbox_if_running() or get_sandbox()
        return sandbox.connection()
    return AwsConnection(region=conn.region, profile=conn.profile or None, endpoint_url=conn.endpoint_url or None)


class IngestManager:
    def __init__(self, ch: ClickHouse, config: IngestConfig | None = None, poll_seconds: float = 3.0,
                 metrics_every: float = 30.0) -> None:
        self.ch = ch
        self.config = config or IngestConfig()
        self.poll_seconds = poll_seconds
        self.metrics_every = metrics_every
        self.consumers: dict[str, SourceConsumer] = {}
        self.metrics: dict[str, SourceMetrics] = {}
        self.connections: dict[str, Any] = {}
        self.crash_hooks: dict[str, Callable[[str], None]] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_metrics = time.monotonic()
        self._last_warning = ""
        self._lag_cache: dict[str, tuple[float, int | None]] = {}

    # ---- lifecycle --------------------------------------------------------------------------------

    def start(self) -> IngestManager:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self.sync()
                self._thread = threading.Thread(target=self._supervise, name="ingest-manager", daemon=True)
                self._thread.start()
        return self

    def shutdown(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        with self._lock:
            for source_id in list(self.consumers):
                self.stop_source(source_id, timeout)
        self._write_metrics()

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def _supervise(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            if getattr(self.ch, "_closed", False) or (self.ch.embedded and
                                                      not self.ch.settings.clickhouse_dir.exists()):
                return  # the process is shutting down (or its data dir is gone)
            try:
                self.sync()
                if time.monotonic() - self._last_metrics >= self.metrics_every:
                    self._write_metrics()
            except HeliosError as exc:  # ClickHouse away for a moment: try again next round
                message = str(exc)
                level = logging.DEBUG if message == self._last_warning else logging.WARNING
                self._last_warning = message
                log.log(level, "ingest supervisor: %s", message[:300])
            except Exception:
                log.exception("ingest supervisor")

    # ---- consumers --------------------------------------------------------------------------------

    def sync(self) -> None:
        """Make consumers match the source records."""
        sources = {s.id: s for s in list_sources(self.ch)}
        with self._lock:
            for source_id, consumer in list(self.consumers.items()):
                source = sources.get(source_id)
                if source is None or source.status != "running" or source.mode != "app":
                    self.stop_source(source_id)
                elif consumer.source.version != source.version and _rules_changed(consumer.source, source):
                    self.stop_source(source_id)
            for source in sources.values():
                if source.status != "running" or source.mode != "app":  # Lambda sources ingest in AWS
                    continue
                current = self.consumers.get(source.id)
                if current is not None and (current.alive or current.crashed):
                    continue
                self._start(source)

    def _start(self, source: Source) -> None:
        metrics = self.metrics.setdefault(source.id, SourceMetrics(source.id))
        registered = self.connections.get(source.id)
        if registered is None and source.connection.needs_keys:
            # Not the default chain instead (it would read with someone else's rights, or fail on
            # every call while the source looks "running"): tell the user what to do.
            metrics.record_error(NO_KEYS)
            try:
                set_status(self.ch, source.id, "failed", NO_KEYS)
            except HeliosError as exc:
                log.warning("could not mark source %s failed: %s", source.id, exc)
            return
        if source.start_position == "LATEST" and not source.start_timestamp:
            source = pin_latest_start(self.ch, source.id)  # made before LATEST was pinned at creation

        def kinesis():
            return connection_for(source, registered).client("kinesis")

        def fatal(message: str) -> None:
            try:
                set_status(self.ch, source.id, "failed", message)
            except HeliosError:
                pass

        consumer = SourceConsumer(source, self.ch.new_client, kinesis, self.config, metrics,
                                  crash_hook=self.crash_hooks.get(source.id), on_fatal=fatal)
        self.consumers[source.id] = consumer.start()

    def stop_source(self, source_id: str, timeout: float = 30.0) -> None:
        with self._lock:
            consumer = self.consumers.pop(source_id, None)
        if consumer is not None:
            consumer.stop(timeout)

    def restart_source(self, source_id: str) -> None:
        """Drop the consumer (as after a crash) and start a fresh one from the checkpoints."""
        self.stop_source(source_id)
        self.sync()

    def register_connection(self, source_id: str, connection: Any) -> None:
        """Credentials for a source, kept in memory for this process only."""
        self.connections[source_id] = connection

    def resume(self, source_id: str, connection: Any = None, user: Any = None) -> Source:
        """Set a paused or failed source running again, with ``connection`` (the user's sign-in) if given.

        A source connected with access keys cannot run without them: refused with
        the hint to sign in again, rather than started to fail on every call.
        """
        source = source_for_change(self.ch, source_id, user)
        if connection is not None and source.connection.needs_keys:
            check_connection_fits(source, connection)
            self.register_connection(source_id, connection)
        elif connection is not None and source.connection.auth == "" and not source.connection.sandbox:
            try:  # made before the sign-in method was recorded: it may have been keys
                check_connection_fits(source, connection)
                self.register_connection(source_id, connection)
            except ValidationError:
                pass
        elif source.connection.needs_keys and source_id not in self.connections:
            raise AwsError("This source reads its stream with access keys, and Helios has none for it now "
                           "(keys live in memory only and are gone after a restart).", KEYS_HINT)
        source = resume_source(self.ch, source_id, user)
        metrics = self.metrics.get(source_id)
        if metrics is not None:
            with metrics.lock:
                metrics.last_error = ""
        self.sync()
        return source

    def metrics_for(self, source_id: str) -> dict[str, Any]:
        """Live metrics; for a source with no running consumer, ``millis_behind`` is measured from its
        checkpoints (None when it cannot be: no credentials, stream unreachable) and ``lag_measured`` is True."""
        metrics = self.metrics.get(source_id)
        consumer = self.consumers.get(source_id)
        snap = metrics.snapshot() if metrics else SourceMetrics(source_id).snapshot()
        snap["running"] = bool(consumer and consumer.alive)
        snap["lag_measured"] = False
        if not snap["running"]:
            snap["millis_behind"] = self.stopped_lag(source_id)
            snap["lag_measured"] = True
        return snap

    def stopped_lag(self, source_id: str, max_age_s: float = LAG_CACHE_SECONDS) -> int | None:
        """How far a source without a consumer is behind its stream (ms), re-measured at most every ``max_age_s``."""
        cached = self._lag_cache.get(source_id)
        if cached is not None and time.monotonic() - cached[0] < max_age_s:
            return cached[1]
        lag: int | None = None
        try:
            source = get_source(self.ch, source_id)
            registered = self.connections.get(source_id)
            if registered is not None or not source.connection.needs_keys:
                # Short timeouts, no retries: the Sources page waits for this while it draws.
                kinesis = connection_for(source, registered).client(
                    "kinesis", connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 1})
                lag = unread_lag_ms(source, kinesis, load_checkpoints(self.ch, source_id))
        except Exception as exc:  # best effort: the page shows "unknown" rather than a wrong figure
            log.debug("lag of stopped source %s: %s", source_id, exc)
        # An unreachable stream is asked again only after a longer pause, so the page never waits on it often.
        stamp = time.monotonic() if lag is not None else time.monotonic() + LAG_RETRY_SECONDS - max_age_s
        self._lag_cache[source_id] = (stamp, lag)
        return lag

    def _write_metrics(self) -> None:
        self._last_metrics = time.monotonic()
        try:
            write_metrics(self.ch, [m.sample_row() for m in self.metrics.values()])
        except Exception as exc:  # metrics are best effort
            log.warning("could not write ingest metrics: %s", exc)


def check_connection_fits(source: Source, connection: Any) -> None:
    """The user's connection must reach the source's stream: same region and endpoint, not the sandbox."""
    stored = source.connection
    if connection.sandbox or connection.region != stored.region or \
            (connection.endpoint_url or None) != (stored.endpoint_url or None):
        where = f"{stored.region}" + (f" via {stored.endpoint_url}" if stored.endpoint_url else "")
        raise ValidationError(f"You are connected to {connection.describe()}, but this source reads the stream "
                              f"{source.stream_name} in {where}.",
                              f"Open Connect and sign in for {where}, then resume the source.")


def _rules_changed(old: Source, new: Source) -> bool:
    return [c.to_json() for c in old.columns] != [c.to_json() for c in new.columns] or \
        old.connection != new.connection


def get_ingest_manager(start: bool = True) -> IngestManager:
    """The process-wide manager (runtime service ``"ingest"``), started on first use."""
    runtime = get_runtime()
    manager: IngestManager = runtime.service("ingest", lambda: IngestManager(runtime.clickhouse))
    if start and not manager.running:
        manager.start()
    return manager
