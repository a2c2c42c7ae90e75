"""The process-wide runtime: one ClickHouse connection, the sandbox, the workers.

The app holds it in ``st.cache_resource``; the CLI and tests use it directly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from helios_core.clickhouse import ClickHouse, get_clickhouse


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


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(clickhouse=get_clickhouse())
        return _runtime
