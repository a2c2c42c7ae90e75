"""Headless workers' inserts (``python -m helios_core.ingest --worker-id ID --api-url …``), write token only.

Workers build and validate batches themselves; this process, which holds the embedded engine, inserts them
into a ``workers`` source's table or quarantine table with the worker's deduplication token
(:mod:`helios_core.ingest.remote`). A row ClickHouse refuses comes back as 422 with ClickHouse's error code,
so the worker splits the batch and quarantines exactly that row; anything else is retried by the worker.
Workers also send their counters here (``/api/ingest/metrics``), which the Sources page shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from helios_core.api.auth import require_write
from helios_core.api.errors import HttpError
from helios_core.errors import HeliosError, ValidationError
from helios_core.ingest.remote import accept_arrow, accept_metrics, accept_rows
from helios_core.ingest.sink import error_code, is_data_error
from helios_core.runtime import get_runtime

router = APIRouter(tags=["Headless workers"], dependencies=[Depends(require_write)])

Counter = Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]   # UInt64 columns; no floats, bools or text
MAX_SAMPLES = 1000   # a worker sends one per source it runs


class MetricSample(BaseModel):
    """One worker's counters for one source, since the worker started."""

    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(..., min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    source_id: str = Field(..., min_length=1, max_length=64)
    records_read: Counter = 0
    rows_inserted: Counter = 0
    rows_quarantined: Counter = 0
    batches: Counter = 0
    errors: Counter = 0
    millis_behind: Counter = 0
    last_insert: datetime | None = None
    last_error: str = Field("", max_length=1000)

    @field_validator("last_insert")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        if not 2000 <= value.astimezone(UTC).year <= 2200:  # DateTime64's range, and no worker ran before 2000
            raise ValueError("last_insert is out of range")
        return value


class MetricSamples(BaseModel):
    model_config = ConfigDict(extra="forbid")
    samples: list[MetricSample] = Field(..., min_length=1, max_length=MAX_SAMPLES)


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


@router.post("/api/ingest/metrics", summary="Record a worker's counters for its 'workers' sources")
async def ingest_metrics(body: MetricSamples) -> dict[str, Any]:
    ch = get_runtime().clickhouse
    samples = [s.model_dump() for s in body.samples]
    return await run_in_threadpool(_insert, lambda: accept_metrics(ch, samples))
