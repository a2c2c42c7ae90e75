"""The process-wide runtime: one ClickHouse connection, the sandbox, the workers.

The app holds it in ``st.cache_resource``; the CLI and tests use it directly.
It sits above every module that keeps records in the ``helios`` database:
:data:`RECORD_MODULES` lists them, and :func:`get_clickhouse` creates their
tables when it opens the connection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from helios_core import analysis, jobs, reports, sources, tokens
from helios_core.chat import live as chat_live
from helios_core.chat import store as chat_store
from helios_core.clickhouse import ClickHouse
from helios_core.cluster import ClusterSpec, database_sql, replicated
from helios_core.config import Settings, get_settings
from helios_core.identifiers import quote_ident
from helios_core.ingest import store as ingest_store
from helios_core.metadata import METADATA_DB

# Every module that keeps records in the helios database (each declares METADATA_TABLES): the one list.
RECORD_MODULES: tuple[ModuleType, ...] = (sources, ingest_store, chat_store, chat_live, jobs, reports, analysis,
                                          tokens)


def metadata_tables() -> list[str]:
    """The ``CREATE TABLE IF NOT EXISTS`` statements of every record module, in order."""
    return [ddl for module in RECORD_MODULES for ddl in module.METADATA_TABLES]


def metadata_alters() -> list[str]:
    """Columns added after a table first shipped (``ALTER … ADD COLUMN IF NOT EXISTS``), so older data dirs work."""
    return [alter for module in RECORD_MODULES for alter in getattr(module, "METADATA_ALTERS", ())]


def _on_cluster(alter: str, cluster: str) -> str:
    head, rest = alter.split(" ADD ", 1)
    return f"{head} ON CLUSTER {quote_ident(cluster)} ADD {rest}"


def ensure_metadata(ch: ClickHouse, tables: Iterable[str] | None = None) -> None:
    """Create the ``helios`` database and its tables (idempotent); on a cluster, replicated on every node."""
    name = ch.settings.clickhouse_cluster
    spec = ClusterSpec(name) if name else None  # every replica keeps a full copy of Helios's records
    ch.execute(database_sql(METADATA_DB, spec) if spec else f"CREATE DATABASE IF NOT EXISTS {METADATA_DB}")
    for ddl in metadata_tables() if tables is None else tables:
        ch.execute(replicated(ddl, spec) if spec else ddl)
    if tables is None:
        for alter in metadata_alters():
            ch.execute(_on_cluster(alter, spec.name) if spec else alter)


_instance: ClickHouse | None = None
_instance_lock = threading.Lock()


def get_clickhouse(settings: Settings | None = None) -> ClickHouse:
    """The process-wide connection (the embedded engine allows one per process), with Helios's tables created."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = ClickHouse(settings or get_settings())
            ensure_metadata(_instance)
        return _instance


@dataclass
class Runtime:
    clickhouse: ClickHouse
    services: dict[str, Any] = field(default_factory=dict)  # ingest manager, job runner (the sandbox: see sandbox.py)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def service(self, name: str, factory):
        """Create a named process-wide service once (thread-safe) and return it."""
        with self.lock:
            if name not in self.services:
                self.services[name] = factory()
            return self.services[name]

    def start_api(self, host: str | None = None, port: int | None = None) -> Any:
        """Serve the HTTP API from this process, once (the app, with ``HELIOS_API_PORT``); None when unset.

        The embedded engine belongs to one process, so the API inside the app shares the app's
        connection and services instead of running beside it.
        """
        settings = get_settings()
        port = port or settings.api_port
        if not port:
            return None

        def factory() -> Any:
            from helios_core.api import ApiServer
            return ApiServer(host or settings.api_host, port).start()
        return self.service("api", factory)


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(clickhouse=get_clickhouse())
        return _runtime
