"""Writing through another Helios process: workers without their own ClickHouse connection.

The embedded engine can be opened by one process only, so headless workers on other hosts (or in
other processes) send their already-built batches to the Helios process that holds it, over its HTTP
API (``POST /api/ingest/arrow`` and ``/api/ingest/rows``, write token). The worker side,
:class:`RemoteClickHouse`, offers the two calls the ingest sink and the lease store make
(``insert_arrow``, ``insert``); the server side, :func:`accept_arrow` and :func:`accept_rows`, inserts
into a ``workers`` source's table or quarantine table only, with the deduplication token the worker chose.
The worker's counters go the same way (``POST /api/ingest/metrics``, :func:`accept_metrics`) into
``helios.ingest_metrics``, for ``workers`` sources only.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from typing import Any
from urllib import error as urlerror
from urllib import request as urlrequest

import pyarrow as pa

from helios_core.errors import NotFound, ValidationError

ALLOWED_SETTINGS = {"insert_deduplication_token", "distributed_foreground_insert"}


class RemoteInsertError(Exception):
    """The Helios process refused a batch; ``code`` is ClickHouse's error code when the data was at fault."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, (bytes, bytearray)):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    if isinstance(value, dict) and "$b64" in value:
        return base64.b64decode(value["$b64"])
    return value


class RemoteClickHouse:
    """The slice of a clickhouse-connect client that ingest uses, spoken over a Helios API."""

    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _post(self, path: str, body: bytes, content_type: str, query: dict[str, str]) -> dict[str, Any]:
        from urllib.parse import urlencode

        req = urlrequest.Request(f"{self.base_url}{path}?{urlencode(query)}", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type})
        try:
            with urlrequest.urlopen(req, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urlerror.HTTPError as exc:
            try:
                detail = json.loads(exc.read() or b"{}")
            except ValueError:
                detail = {}
            if 400 <= exc.code < 500:
                raise RemoteInsertError(str(detail.get("error") or exc), detail.get("code")) from None
            raise ConnectionError(f"Helios API answered {exc.code}: {detail.get('error', '')}") from None
        except (urlerror.URLError, OSError) as exc:
            raise ConnectionError(f"Helios API not reachable: {exc}") from None

    def insert_arrow(self, table: str, arrow_table: pa.Table, database: str = "",
                     settings: dict[str, Any] | None = None) -> None:
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, arrow_table.schema) as writer:
            writer.write_table(arrow_table)
        self._post("/api/ingest/arrow", sink.getvalue(), "application/vnd.apache.arrow.stream",
                   {"database": database, "table": table, "settings": json.dumps(settings or {})})

    def insert(self, table: str, rows: list[list[Any]], column_names: list[str], database: str = "",
               settings: dict[str, Any] | None = None) -> None:
        body = json.dumps({"database": database, "table": table, "column_names": column_names,
                           "rows": [[_encode(v) for v in row] for row in rows], "settings": settings or {}})
        self._post("/api/ingest/rows", body.encode(), "application/json", {})

    def insert_metrics(self, samples: list[dict[str, Any]]) -> None:
        """The worker's metrics samples; the receiving process stamps them with its own clock."""
        body = json.dumps({"samples": [{n: _iso(v) for n, v in s.items() if n in SAMPLE_FIELDS} for s in samples]})
        self._post("/api/ingest/metrics", body.encode(), "application/json", {})

    def close(self) -> None:
        pass


SAMPLE_FIELDS = ("worker_id", "source_id", "records_read", "rows_inserted", "rows_quarantined", "batches", "errors",
                 "millis_behind", "last_insert", "last_error")


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# ---- the server side ----------------------------------------------------------------------------

def _check_target(ch: Any, database: str, table: str, settings: dict[str, Any]) -> dict[str, Any]:
    from helios_core.ddl import QUARANTINE_SUFFIX
    from helios_core.sources import source_for_table

    base = table[: -len(QUARANTINE_SUFFIX)] if table.endswith(QUARANTINE_SUFFIX) else table
    source = source_for_table(ch, database, base)
    if source is None or source.mode != "workers":
        raise NotFound(f"{database}.{table} is not the table of a source ingested by headless workers.",
                       "Create the source with mode 'workers'.")
    unknown = set(settings) - ALLOWED_SETTINGS
    if unknown:
        raise ValidationError(f"These insert settings are not accepted: {', '.join(sorted(unknown))}.")
    return settings


def accept_arrow(ch: Any, database: str, table: str, body: bytes, settings: dict[str, Any]) -> int:
    """Insert a worker's Arrow batch (IPC stream) into a ``workers`` source's table; returns the row count."""
    settings = _check_target(ch, database, table, settings)
    try:
        arrow_table = pa.ipc.open_stream(io.BytesIO(body)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"The batch is not an Arrow IPC stream: {exc}.") from exc
    ch.insert_arrow(table, arrow_table, database=database, settings=settings)
    return arrow_table.num_rows


def accept_rows(ch: Any, payload: dict[str, Any]) -> int:
    """Insert a worker's rows (quarantine rows, checkpoints stay in the leases) into a ``workers`` source's table."""
    try:
        database, table = str(payload["database"]), str(payload["table"])
        names = [str(n) for n in payload["column_names"]]
        rows = [[_decode(v) for v in row] for row in payload["rows"]]
    except (KeyError, TypeError) as exc:
        raise ValidationError("The rows batch needs database, table, column_names and rows.") from exc
    settings = _check_target(ch, database, table, dict(payload.get("settings") or {}))
    ch.insert_rows(table, rows, column_names=names, database=database, settings=settings)
    return len(rows)


def accept_metrics(ch: Any, samples: list[dict[str, Any]]) -> int:
    """Write workers' metrics samples (fields of :data:`SAMPLE_FIELDS`, validated by the route) for ``workers``
    sources only, stamped with this process's clock so that "live" compares times of one clock."""
    from helios_core.ingest.store import write_metrics
    from helios_core.sources import list_sources

    known = {s.id for s in list_sources(ch) if s.mode == "workers"}
    unknown = sorted({str(s["source_id"]) for s in samples} - known)
    if unknown:
        raise NotFound(f"These are not sources ingested by headless workers: {', '.join(unknown[:5])}.",
                       "Create the source with mode 'workers'; a deleted source's samples are not kept.")
    now = datetime.now(UTC)
    write_metrics(ch, [{**{n: s[n] for n in SAMPLE_FIELDS}, "ts": now} for s in samples])
    return len(samples)
