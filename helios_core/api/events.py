"""The IM-challenge seed: events in (validated, quarantined, exactly once on retries), reports out."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from helios_core.api.auth import require_token, require_user, require_write
from helios_core.api.errors import HttpError
from helios_core.errors import NotFound, ValidationError
from helios_core.runtime import get_runtime

router = APIRouter(tags=["Events and reports (IM-challenge)"], dependencies=[Depends(require_token)])

MAX_KEY_LENGTH = 200
SOURCE_CACHE_SECONDS = 2.0   # a source's new rules (or its deletion) reach /api/event within this
_EVENT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "JSON lines: one event per line"}}}}}


def split_events(body: bytes) -> list[bytes]:
    """One payload per event: a JSON object, a JSON array of them, or JSON lines (bad lines kept, to quarantine)."""
    text = body.strip()
    if not text:
        raise ValidationError("The request has no events.", "Send a JSON object, a JSON array or JSON lines.")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
        lines = [line for line in text.split(b"\n") if line.strip()]
        if len(lines) < 2 or not any(_is_json(line) for line in lines):
            raise ValidationError("The request body is not valid JSON (nor JSON lines).",
                                  "Send one event as a JSON object, a JSON array of events, or one event per line."
                                  ) from None
        return [line.strip() for line in lines]
    if isinstance(value, dict):
        return [text]
    if isinstance(value, list):
        if not value:
            raise ValidationError("The request's event array is empty.", "Send at least one event.")
        return [orjson.dumps(v) for v in value]
    raise ValidationError(f"An event must be a JSON object, not a JSON {type(value).__name__}.",
                          "Send a JSON object, a JSON array of objects, or JSON lines.")


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
        return True
    except orjson.JSONDecodeError:
        return False


_sources: dict[str, tuple[float, Any]] = {}
_sources_lock = threading.Lock()


def resolve_source(ch: Any, wanted: str | None) -> Any:
    """A source by id or ``database.table`` (looked up at most every few seconds: producers post often)."""
    key = wanted or ""
    with _sources_lock:
        hit = _sources.get(key)
    if hit is not None and time.monotonic() - hit[0] < SOURCE_CACHE_SECONDS:
        return hit[1]
    source = _lookup_source(ch, wanted)
    with _sources_lock:
        if len(_sources) > 1000:
            _sources.clear()
        _sources[key] = (time.monotonic(), source)
    return source


def _lookup_source(ch: Any, wanted: str | None) -> Any:
    """A source by id or ``database.table``; with none named, the only source there is."""
    from helios_core.sources import get_source, list_sources
    if wanted:
        if "." in wanted:
            database, table = wanted.split(".", 1)
            for source in list_sources(ch):
                if source.database == database and source.table == table:
                    return source
            raise NotFound(f"No source feeds the table {wanted[:120]!r}.", "GET /api/sources lists the sources.")
        return get_source(ch, wanted)
    sources = list_sources(ch)
    if len(sources) == 1:
        return sources[0]
    raise ValidationError("Say which source the events are for: ?source=ID or ?source=database.table.",
                          "GET /api/sources lists them." if sources else "Create a source first (/api/create-table).",
                          missing_fields=["source"])


def dedup_token(source_id: str, key: str | None, body: bytes) -> str:
    """Same key and same body: the same token, so a retried request is dropped by ClickHouse."""
    if not key:
        return f"api:{source_id}:{uuid.uuid4().hex}"  # no key: every request is new
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"The Idempotency-Key is longer than {MAX_KEY_LENGTH} characters.")
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"api:{source_id}:{digest}:{hashlib.sha256(body).hexdigest()[:16]}"


def ingest(source_ref: str | None, key: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
    from helios_core.ingest.sink import insert_payloads
    ch = get_runtime().clickhouse
    payloads = split_events(body)  # before anything else: a malformed request writes nothing
    source = resolve_source(ch, source_ref)
    outcome = insert_payloads(ch, source, payloads, dedup_token(source.id, key, body))
    rejected = [{"index": i, "error_type": p.error_type, "column": p.column, "reason": p.message}
                for i, p in sorted(outcome.problems.items())]
    payload: dict[str, Any] = {"source": source.id, "table": f"{source.database}.{source.table}",
                               "received": len(payloads), "inserted": outcome.inserted,
                               "quarantined": len(rejected), "rejected": rejected,
                               "quarantineTable": f"{source.database}.{source.quarantine_table}",
                               "idempotencyKey": key or None}
    if rejected and not outcome.inserted:
        first = rejected[0]
        payload = {"error": f"No event was accepted: {first['reason']}" if len(rejected) == 1 else
                   f"None of the {len(rejected)} events was accepted; each is listed in rejected.",
                   "hint": f"They are kept in {payload['quarantineTable']} with the reason.", **payload}
        return 422, payload
    return 200, payload


@router.post("/api/event", summary="Ingest one event, a JSON array or JSON lines into a source's table",
             dependencies=[Depends(require_write)], openapi_extra=_EVENT_BODY)
async def post_event(request: Request, source: str | None = Query(None, max_length=300),
                     idempotency_key: str | None = Header(None, alias="Idempotency-Key")) -> JSONResponse:
    body = await request.body()
    status, payload = await run_in_threadpool(ingest, source, idempotency_key, body)
    return JSONResponse(payload, status_code=status)


@router.api_route("/api/event/{event:path}", methods=["GET", "POST"], dependencies=[Depends(require_write)],
                  summary="The seed's form: the event as URL-encoded JSON in the path")
def event_in_path(event: str, source: str | None = Query(None, max_length=300),
                  idempotency_key: str | None = Header(None, alias="Idempotency-Key")) -> JSONResponse:
    status, payload = ingest(source, idempotency_key, event.encode("utf-8", "surrogatepass"))
    return JSONResponse(payload, status_code=status)


# ---- reports --------------------------------------------------------------------------------------

_RESERVED = {"report", "preset", "where", "time_from", "time_to"}


def _definition(report: str | None, preset: str | None, user: Any) -> Any:
    from helios_core.reports import PRESETS, get_report, list_reports
    ch = get_runtime().clickhouse
    if report:
        try:
            return get_report(ch, report, user).definition
        except NotFound:
            named = [r for r in list_reports(ch, user) if r.name == report]
            if not named:
                raise NotFound(f"No saved report has the id or name {report[:120]!r}.",
                               "Save one on the Reports page or with python -m helios_core reports save.") from None
            return named[0].definition
    name = preset or "captcha"
    if name not in PRESETS:
        raise NotFound(f"There is no report preset {name[:60]!r}.", f"Presets: {', '.join(sorted(PRESETS))}.")
    return PRESETS[name]()


def _run(definition: Any, conditions: list[str], columns: list[tuple[str, list[str]]],
         time_from: str | None, time_to: str | None) -> dict[str, Any]:
    from helios_core.report_filters import Filter, parse_conditions
    from helios_core.reports import report_json, run_report
    for text in conditions:
        definition.filters.extend(parse_conditions(text))
    for column, values in columns:
        definition.filters.append(Filter(column, "=" if len(values) == 1 else "in", values))
    if time_from:
        definition.time_from = time_from
    if time_to:
        definition.time_to = time_to
    compiled, result = run_report(get_runtime().clickhouse, definition)
    return report_json(compiled, result)


_REPORT_PARAMS = dict(report=Query(None, max_length=300, description="a saved report's id or name"),
                      preset=Query(None, max_length=60, description="a built-in report (default: captcha)"),
                      time_from=Query(None, max_length=64), time_to=Query(None, max_length=64))


@router.get("/api/report", summary="Run a saved report (or a preset); filters are bound parameters")
def report(report: str | None = _REPORT_PARAMS["report"], preset: str | None = _REPORT_PARAMS["preset"],
           where: list[str] = Query([], description="conditions such as site_id = 3f1c…; type in serve, solve"),
           time_from: str | None = _REPORT_PARAMS["time_from"],
           time_to: str | None = _REPORT_PARAMS["time_to"], user: Any = Depends(require_user)) -> dict[str, Any]:
    return _run(_definition(report, preset, user), where, [], time_from, time_to)


@router.get("/api/report/filter", summary="The report filtered: every other query parameter is column=value")
def report_filter(request: Request, report: str | None = _REPORT_PARAMS["report"],
                  preset: str | None = _REPORT_PARAMS["preset"], where: list[str] = Query([]),
                  time_from: str | None = _REPORT_PARAMS["time_from"],
                  time_to: str | None = _REPORT_PARAMS["time_to"], user: Any = Depends(require_user)) -> dict[str, Any]:
    columns: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in _RESERVED:
            columns.setdefault(key, []).append(value)
    if not columns and not where:
        raise ValidationError("Give at least one filter, e.g. /api/report/filter?site_id=3f1c…",
                              "Each query parameter other than report, preset, where, time_from and time_to "
                              "is a column = value filter.", missing_fields=["filter"])
    return _run(_definition(report, preset, user), where, list(columns.items()), time_from, time_to)


@router.get("/api/report/{condition}", summary="The seed's form: /api/report/site_id='…' (a bound filter)")
def report_condition(condition: str, report: str | None = _REPORT_PARAMS["report"],
                     preset: str | None = _REPORT_PARAMS["preset"],
                     user: Any = Depends(require_user)) -> dict[str, Any]:
    if len(condition) > 2000:
        raise HttpError(400, "The filter is too long.", "Filter on a few columns at a time.")
    return _run(_definition(report, preset, user), [condition], [], None, None)
