"""The ``helios`` metadata database: created idempotently at start-up.

Each concern module that keeps records declares ``METADATA_TABLES`` (a list of
``CREATE TABLE IF NOT EXISTS`` statements); this module creates them all.
Mutable records are ReplacingMergeTree rows keyed by id with a version column
(read with FINAL); append-only facts are plain MergeTree. No secrets here.
"""

from __future__ import annotations

import importlib
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from helios_core.clickhouse import ClickHouse

METADATA_DB = "helios"
_RECORD_MODULES = (
    "helios_core.sources",
    "helios_core.ingest.store",
    "helios_core.chat.store",
    "helios_core.jobs",
    "helios_core.reports",
    "helios_core.analysis",
    "helios_core.tokens",
)


_version_lock = threading.Lock()
_last_version = 0


def next_version() -> int:
    """A version for a ReplacingMergeTree row: nanoseconds, strictly increasing in this process.

    Two writes of the same record within one clock tick must still be ordered,
    or FINAL could keep the older one.
    """
    global _last_version
    with _version_lock:
        _last_version = max(_last_version + 1, time.time_ns())
        return _last_version


def ensure_metadata(ch: "ClickHouse") -> None:
    from helios_core.cluster import ClusterSpec, database_sql, replicated

    name = getattr(ch.settings, "clickhouse_cluster", None)
    spec = ClusterSpec(name) if name else None  # every replica keeps a full copy of Helios's records
    ch.execute(database_sql(METADATA_DB, spec) if spec else f"CREATE DATABASE IF NOT EXISTS {METADATA_DB}")
    for name in _RECORD_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that concern is not built yet
            raise
        for ddl in getattr(module, "METADATA_TABLES", ()):
            ch.execute(replicated(ddl, spec) if spec else ddl)
        # Columns added later (ALTER … ADD COLUMN IF NOT EXISTS), so data dirs made before them keep working.
        for alter in getattr(module, "METADATA_ALTERS", ()):
            ch.execute(_on_cluster(alter, spec.name) if spec else alter)


def _on_cluster(alter: str, cluster: str) -> str:
    from helios_core.identifiers import quote_ident
    head, rest = alter.split(" ADD ", 1)
    return f"{head} ON CLUSTER {quote_ident(cluster)} ADD {rest}"
