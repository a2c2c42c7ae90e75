"""The Helios backend seed: databases, query, authenticate, kinesis-sample, create-table, sources (and pausing,
resuming, deleting a source or changing its rules, through :mod:`helios_core.ingest.control` like the pages)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from helios_core.api.auth import require_token, require_user, require_write
from helios_core.api.errors import HttpError
from helios_core.errors import AwsError
from helios_core.runtime import get_runtime
from helios_core.tokens import ApiToken
from helios_core.users import User

router = APIRouter(tags=["Helios backend"], dependencies=[Depends(require_token)])


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AwsKeys(_Body):
    """Optional AWS keys: used for this request only, never stored or logged."""

    accessKey: str | None = Field(None, max_length=256)
    secretKey: str | None = Field(None, max_length=256)
    sessionToken: str | None = Field(None, max_length=4096)
    region: str | None = Field(None, max_length=64)


class QueryRequest(_Body):
    query: str = Field(..., max_length=1_000_000)
    write: bool = False
    limit: int | None = Field(None, ge=1)


class AuthRequest(_Body):
    accessKey: str = Field(..., max_length=256)
    secretKey: str = Field(..., max_length=256)
    sessionToken: str | None = Field(None, max_length=4096)
    region: str | None = Field(None, max_length=64)


class SampleRequest(AwsKeys):
    streamName: str = Field(..., min_length=1, max_length=128)
    n: int = Field(100, ge=1, le=10_000)
    start: str = Field("trim_horizon", max_length=20)
    at: str | None = Field(None, max_length=64)
    wait: float = Field(2.0, ge=0, le=30)


class CreateTableRequest(AwsKeys):
    streamName: str = Field(..., max_length=128)
    tableName: str = Field(..., max_length=512)
    databaseName: str = Field(..., max_length=512)
    schema_: Any = Field(..., alias="schema")
    orderBy: list[str] | str | None = None
    partitionBy: str | None = Field(None, max_length=300)
    ttl: str | None = Field(None, max_length=300)
    engine: str = Field("MergeTree", max_length=64)
    versionColumn: str = Field("", max_length=512)
    startPosition: str = Field("TRIM_HORIZON", max_length=20)
    startTimestamp: str = Field("", max_length=64)
    streamARN: str = Field("", max_length=2048)
    mode: str = Field("app", max_length=16, description="app (this Helios ingests) or workers (headless workers)")
    cluster: str = Field("", max_length=128)
    distributed: bool = False


def aws_connection(keys: AwsKeys | AuthRequest | None = None) -> Any:
    """The request's keys (for this request only), else the server's AWS settings, else this process's sandbox."""
    from helios_core.aws import AwsConnection, connection_from_settings, default_credentials_available
    from helios_core.config import get_settings

    settings = get_settings()
    region = (keys.region if keys is not None else None) or settings.aws_region
    if keys is not None and (keys.accessKey or keys.secretKey):
        return AwsConnection(region=region, access_key_id=keys.accessKey or None,
                             secret_access_key=keys.secretKey or None, session_token=keys.sessionToken or None,
                             endpoint_url=settings.aws_endpoint_url)
    if not settings.aws_endpoint_url and not default_credentials_available():
        from helios_core.sandbox import sandbox_if_running
        sandbox = sandbox_if_running()
        if sandbox is not None:
            return sandbox.connection()
    return connection_from_settings(region=region)


@router.get("/api/databases", summary="Databases and their tables: {database: [tables]}")
def databases() -> dict[str, list[str]]:
    from helios_core.clickhouse import list_databases
    return list_databases(get_runtime().clickhouse)


@router.post("/api/query", summary="Run SQL under the explorer's guards (read-only unless write is asked for)")
def query(body: QueryRequest, token: ApiToken = Depends(require_token)) -> dict[str, Any]:
    if body.write and not token.write:
        raise HttpError(403, f"The token {token.name!r} is read-only; \"write\": true needs a write token.",
                        "Leave out write to run the query read-only, or use a token created with --write.")
    return get_runtime().clickhouse.query(body.query, write=body.write, limit=body.limit).to_api()


@router.post("/api/authenticate", summary="Check AWS keys (used for this request only) and list Kinesis streams")
def authenticate(body: AuthRequest) -> dict[str, Any]:
    from helios_core.aws import authenticate as aws_authenticate
    conn = aws_connection(body)
    try:
        return aws_authenticate(conn, details=False)
    except AwsError as exc:
        raise HttpError(401, exc.message, exc.hint, authenticated=False) from None


@router.post("/api/kinesis-sample", summary="Sample events from a stream and infer a ClickHouse schema")
def kinesis_sample(body: SampleRequest) -> dict[str, Any]:
    from helios_core.schema import infer_schema
    from helios_core.streams import sample_stream
    sample = sample_stream(aws_connection(body), body.streamName, n=body.n, start=body.start, at=body.at,
                           wait_s=body.wait)
    return sample.to_json(infer_schema(sample.events) if sample.events else None)


@router.post("/api/create-table", summary="Create a table, its quarantine table and the stream-to-table source",
             dependencies=[Depends(require_write)])
def create_table(body: CreateTableRequest, user: User = Depends(require_user)) -> dict[str, Any]:
    from helios_core.table_request import (
        build_create_request,
        columns_from_json,
        create_and_start,
        default_order_by,
        order_list,
        parse_partition,
        parse_ttl,
    )
    ch = get_runtime().clickhouse
    columns, suggested = columns_from_json(body.schema_, "schema")
    order = order_list(body.orderBy) if body.orderBy else suggested.get("order_by") or default_order_by(columns)
    conn = aws_connection(body)
    request = build_create_request(ch, conn, stream=body.streamName, database=body.databaseName,
                                   table=body.tableName, columns=columns, order_by=order,
                                   partition=parse_partition(body.partitionBy or suggested.get("partition_by")),
                                   ttl=parse_ttl(body.ttl), engine=body.engine, version_column=body.versionColumn,
                                   start_position=body.startPosition, start_timestamp=body.startTimestamp,
                                   stream_arn=body.streamARN, cluster=body.cluster,
                                   distributed=body.distributed, mode=body.mode)
    if request.mode == "lambda":
        raise HttpError(400, "Lambda sources are deployed from the command line or the app.",
                        "python -m helios_core create-table --mode lambda (or --template for CloudFormation).")
    return create_and_start(ch, request, conn, user)


@router.get("/api/sources", summary="Every stream-to-table source with its status")
def sources() -> list[dict[str, Any]]:
    from helios_core.sources import sources_to_api
    return sources_to_api(get_runtime().clickhouse)


class RulesRequest(AwsKeys):
    rules: dict[str, dict[str, Any]] = Field(..., description="{column: {required, allowed_values, format, default}}; "
                                                           "allowed_values may be a list or one comma-separated text")


class DeleteRequest(AwsKeys):
    dropTable: bool = False


_SOURCE_ID = Path(..., max_length=64)


@router.post("/api/sources/{source_id}/pause", summary="Pause a source (workers and Lambda too: send AWS keys when "
                                                        "the source was connected with keys)",
             dependencies=[Depends(require_write)])
def pause_source(source_id: str = _SOURCE_ID, body: AwsKeys | None = None,
                 user: User = Depends(require_user)) -> dict[str, Any]:
    from helios_core.ingest.control import pause
    return pause(get_runtime().clickhouse, source_id, user, aws=_keys_or_settings(body)).to_api()


@router.post("/api/sources/{source_id}/resume", summary="Resume a paused or failed source",
             dependencies=[Depends(require_write)])
def resume_source(source_id: str = _SOURCE_ID, body: AwsKeys | None = None,
                  user: User = Depends(require_user)) -> dict[str, Any]:
    from helios_core.ingest.control import resume
    return resume(get_runtime().clickhouse, source_id, user, aws=_keys_or_settings(body)).to_api()


@router.post("/api/sources/{source_id}/rules", summary="Change a source's validation rules",
             dependencies=[Depends(require_write)])
def source_rules(body: RulesRequest, source_id: str = _SOURCE_ID, user: User = Depends(require_user)) -> dict[str, Any]:
    from helios_core.ingest.control import update_rules
    return update_rules(get_runtime().clickhouse, source_id, body.rules, user, aws=_keys_or_settings(body)).to_api()


@router.post("/api/sources/{source_id}/delete", summary="Delete a source (its table stays unless dropTable)",
             dependencies=[Depends(require_write)])
def delete_source(source_id: str = _SOURCE_ID, body: DeleteRequest | None = None,
                  user: User = Depends(require_user)) -> dict[str, Any]:
    from helios_core.ingest.control import delete
    drop = bool(body and body.dropTable)
    source = delete(get_runtime().clickhouse, source_id, drop, user, aws=_keys_or_settings(body))
    return {"deleted": source.id, "droppedTable": drop}


def _keys_or_settings(body: AwsKeys | None) -> Any:
    """The request's keys when it sent some; else the server's own AWS settings (no sandbox stand-in here)."""
    from helios_core.aws import connection_from_settings

    if body is not None and (body.accessKey or body.secretKey):
        return aws_connection(body)
    return connection_from_settings(region=body.region if body is not None else None)
