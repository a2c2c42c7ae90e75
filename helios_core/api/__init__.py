"""The HTTP API: the four seeds' endpoints over the same core as the pages and the CLI.

A thin layer (FastAPI under uvicorn): handlers parse the request, call
``helios_core`` and return its seed-shaped JSON. Every endpoint but
``/healthz`` needs a bearer token (:mod:`helios_core.tokens`); the OpenAPI
description is at ``/docs``. Errors are ``{"error", "hint"}`` with their status.

Run it with ``python -m helios_core serve`` or, inside the app, with
``HELIOS_API_PORT`` (:meth:`helios_core.runtime.Runtime.start_api`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import FastAPI

from helios_core.api.errors import BodyLimit, install_error_handlers

log = logging.getLogger("helios.api")


def create_app(max_body_bytes: int | None = None) -> FastAPI:
    from helios_core import __version__
    from helios_core.api import backend, chats, events, ingest, jobs
    from helios_core.config import get_settings

    app = FastAPI(title="Helios API", version=__version__, docs_url="/docs", redoc_url=None,
                  description="The Helios backend, IM-challenge, DB chat and QueryShield endpoints over Helios. "
                              "Send `Authorization: Bearer <token>` (python -m helios_core tokens create --name "
                              "NAME [--write]). Errors are `{\"error\", \"hint\"}`.")
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=max_body_bytes or get_settings().api_max_body_bytes)

    @app.get("/healthz", tags=["Health"], summary="Liveness: no token needed")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    for module in (backend, events, chats, jobs, ingest):
        app.include_router(module.router)
    return app


class ApiServer:
    """uvicorn in a background thread (the app's runtime service ``"api"``); :meth:`stop` ends it."""

    def __init__(self, host: str, port: int) -> None:
        import uvicorn

        self.host, self.port = host, port
        config = uvicorn.Config(create_app(), host=host, port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="helios-api", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run()
        except (SystemExit, Exception):  # uvicorn exits when it cannot bind: start() reports that
            log.warning("the HTTP API on %s:%s stopped", self.host, self.port, exc_info=True)

    def start(self, wait_s: float = 30.0) -> ApiServer:
        """Start serving; returns once the port is bound (or raises if it cannot be)."""
        import time

        from helios_core.errors import ConfigError

        self.thread.start()
        deadline = time.monotonic() + wait_s
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            self.stop(1.0)
            raise ConfigError(f"The HTTP API could not listen on {self.host}:{self.port}.",
                              "Is another program using that port? Choose another HELIOS_API_PORT.")
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve(host: str, port: int) -> None:
    """Run the API in this process until interrupted (``python -m helios_core serve``)."""
    import uvicorn

    from helios_core.runtime import get_runtime

    get_runtime()  # open ClickHouse first: a data dir in use fails here, with its message
    from helios_core.ingest.manager import get_ingest_manager
    from helios_core.jobs import get_job_service
    manager = get_ingest_manager()  # like the app: running sources ingest, and interrupted jobs resume
    jobs = get_job_service()
    try:
        uvicorn.run(create_app(), host=host, port=port, log_level="warning", access_log=False)
    finally:  # Ctrl-C or SIGTERM: consumers flush what they buffered and move their checkpoints
        manager.shutdown()
        jobs.stop()
