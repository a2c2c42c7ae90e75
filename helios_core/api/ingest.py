"""Headless workers' inserts (``python -m helios_core.ingest --worker-id ID --api-url …``), write token only.

Workers build and validate batches themselves; this process, which holds the embedded engine, inserts them
into a ``workers`` source's table or quarantine table with the worker's deduplication token
(:mod:`helios_core.ingest.remote`). A row ClickHouse refuses comes back as 422 with ClickHouse's error code,
so the worker splits the batch and quarantines exactly that row; anything else is retried by the worker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from helios_core.api.auth import require_write
from helios_core.api.errors import HttpError
from helios_core.errors import HeliosError, ValidationError
from helios_core.ingest.remote import accept_arrow, accept_rows
from helios_core.ingest.sink import error_code, is_data_error
from helios_core.runtime import get_runtime

router = APIRouter(tags=["Headless workers"], dependencies=[Depends(require_write)])


def _insert(call: Callable[[], int]) -> dict[str, Any]:
    try:
        return {"inserted": call()}
    except HeliosError:
        raise
    except Exception as exc:  # the driver's error: the data's fault (split) or ClickHouse's (retry)
        if is_data_error(exc):
            raise HttpError(422, "ClickHouse refused the batch.", "The worker splits it and quarantines the "
                            "refused rows.", code=error_code(exc)) from None
        raise HttpError(503, "ClickHouse could not take the batch now.", "The worker retries it.") from None


@router.post("/api/ingest/arrow", summary="Insert a worker's Arrow batch into a 'workers' source's table")
async def ingest_arrow(request: Request, database: str = Query(..., max_length=256),
                       table: str = Query(..., max_length=256),
                       settings: str = Query("{}", max_length=4096)) -> dict[str, Any]:
    try:
        options = json.loads(settings)
    except ValueError:
        raise ValidationError("settings must be a JSON object.") from None
    if not isinstance(options, dict):
        raise ValidationError("settings must be a JSON object.")
    body = await request.body()
    ch = get_runtime().clickhouse
    return await run_in_threadpool(_insert, lambda: accept_arrow(ch, database, table, body, options))


@router.post("/api/ingest/rows", summary="Insert a worker's quarantine rows into a 'workers' source's table")
async def ingest_rows(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(await request.body())
    except ValueError:
        raise ValidationError("The body must be JSON: {database, table, column_names, rows, settings}.") from None
    if not isinstance(payload, dict):
        raise ValidationError("The body must be a JSON object.")
    ch = get_runtime().clickhouse
    return await run_in_threadpool(_insert, lambda: accept_rows(ch, payload))
