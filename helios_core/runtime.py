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

    def start_api(self, host: str | None = None, port: int | None = None) -> Any:
        """Serve the HTTP API from this process, once (the app, with ``HELIOS_API_PORT``); None when unset.

        The embedded engine belongs to one process, so the API inside the app shares the app's
        connection and services instead of running beside it.
        """
        from helios_core.config import get_settings
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
