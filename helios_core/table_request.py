"""Create-table requests from plain data: the CLI's flags and the HTTP API's JSON read the same way.

Only parsing lives here; every check of names, types and options is
:func:`helios_core.sources.create_table_and_source`'s (the wizard's).
"""

from __future__ import annotations

import re
from typing import Any

from helios_core.ddl import PARTITION_FUNCTIONS, PartitionSpec, TableOptions, TtlSpec, database_exists
from helios_core.errors import ValidationError
from helios_core.schema import ColumnSpec
from helios_core.sources import Connection, CreateRequest

_COLUMN_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "type": (str,), "json_path": (str,), "path": (str,), "virtual": (str,), "format": (str,),
    "required": (bool,), "allowed_values": (list,), "default": (str, int, float, type(None)),
    "present_in_all": (bool,), "reason": (str,), "time_unit": (str,), "examples": (list,),
}
COLUMN_EXAMPLE = '[{"name": "user_id", "type": "UInt64", "json_path": "user_id"}]'


def columns_from_json(data: Any, where: str = "The schema") -> tuple[list[ColumnSpec], dict[str, Any]]:
    """Columns from ``infer`` output, ``{"inferredSchema": […]}`` or a list; plus any suggested sorting/partition."""
    extra: dict[str, Any] = {}
    if isinstance(data, dict):
        schema = data.get("schema", data)
        if isinstance(schema, dict):
            extra = {"order_by": schema.get("orderBy") or [], "partition_by": schema.get("partitionBy") or ""}
            schema = schema.get("inferredSchema", schema.get("columns"))
        data = schema
    if not isinstance(data, list) or not data or not all(isinstance(c, dict) and c.get("name") for c in data):
        raise ValidationError(f"{where} must be a list of columns with name and type.", f"Example: {COLUMN_EXAMPLE}")
    problems = []
    for i, column in enumerate(data):
        for key, kinds in _COLUMN_FIELD_TYPES.items():
            if key in column and not isinstance(column[key], kinds):
                problems.append(f"Column {i + 1}: {key} must be {' or '.join(k.__name__ for k in kinds)}, "
                                f"not {type(column[key]).__name__}.")
        if not column.get("type"):
            problems.append(f"Column {i + 1} ({str(column.get('name'))[:40]!r}) has no type.")
    if problems:
        raise ValidationError(problems[0], f"Example: {COLUMN_EXAMPLE}", problems=problems)
    return [ColumnSpec.from_json(c) for c in data], extra


def parse_partition(text: str | None) -> PartitionSpec | None:
    """``column`` or ``function(column)`` / ``column:function`` from the allow-list."""
    if not text:
        return None
    text = str(text).strip()
    if text.endswith(")") and "(" in text:
        function, column = text[:-1].split("(", 1)
    elif ":" in text:
        column, function = text.split(":", 1)
    else:
        column, function = text, ""
    function = function.strip()
    if function not in PARTITION_FUNCTIONS:
        raise ValidationError(f"Unknown partition function {function[:40]!r}.",
                              f"Use one of: {', '.join(f for f in PARTITION_FUNCTIONS if f)}, or a bare column.")
    return PartitionSpec(column.strip().strip("`"), function)


def parse_ttl(text: str | None) -> TtlSpec | None:
    """``COLUMN:AMOUNT:UNIT``, e.g. ``ts:30:DAY``."""
    if not text:
        return None
    parts = str(text).split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        raise ValidationError(f"The TTL must be COLUMN:AMOUNT:UNIT (for example ts:30:DAY), not {str(text)[:60]!r}.")
    return TtlSpec(parts[0], int(parts[1]), parts[2].upper())


def order_list(value: Any) -> list[str]:
    """A sorting key from ``"a,b"`` or ``["a", "b"]``."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    if isinstance(value, list) and all(isinstance(c, str) for c in value):
        return [c.strip() for c in value if c.strip()]
    raise ValidationError("The sorting key must be column names: a list, or text separated by commas.")


def default_order_by(columns: list[ColumnSpec]) -> list[str]:
    """A sorting key when the request names none (the seeds' clients never do): the first time column,
    else the first column that is not Nullable."""
    from helios_core.chtypes import describe
    for col in columns:
        described = describe(str(col.type))
        if described.temporal and not described.nullable:
            return [col.name]
    plain = [c.name for c in columns if not describe(str(c.type)).nullable]
    return plain[:1]


_STREAM_ARN = re.compile(r"arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/(?P<name>[A-Za-z0-9_.-]{1,128})")


def check_stream_arn(arn: str, stream: str) -> None:
    """A caller's ARN keys the Lambda/worker mapping, so it must be a Kinesis stream ARN naming this stream.

    Checked offline (a source can be created for a Lambda deployed elsewhere, with no AWS access here).
    """
    match = _STREAM_ARN.fullmatch(arn)
    if match is None or match.group("name") != stream:
        raise ValidationError(f"The stream ARN {arn!r} is not an ARN of stream {stream!r}.",
                              "Leave the stream ARN out and Helios looks it up, or give "
                              f"arn:aws:kinesis:REGION:ACCOUNT:stream/{stream}.")


def build_create_request(ch: Any, aws: Any, *, stream: str, database: str, table: str, columns: list[ColumnSpec],
                         order_by: list[str], partition: PartitionSpec | None = None, ttl: TtlSpec | None = None,
                         engine: str = "MergeTree", version_column: str = "", start_position: str = "TRIM_HORIZON",
                         start_timestamp: str = "", stream_arn: str = "", cluster: str = "",
                         distributed: bool = False, mode: str = "app") -> CreateRequest:
    """The wizard's request: options, the stream's ARN (looked up unless given) and the storable connection."""
    for label, value in (("stream", stream), ("database", database), ("table", table)):
        if not isinstance(value, str) or not value:
            raise ValidationError("missing necessary fields", "Name the stream, the database and the table.",
                                  missing_fields=[label])
    options = TableOptions(database=database, table=table, order_by=order_by, engine=engine,
                           version_column=version_column or "", partition=partition, ttl=ttl,
                           create_database=not database_exists(ch, database), cluster=cluster or "",
                           distributed=distributed)
    if stream_arn:
        check_stream_arn(stream_arn, stream)
    else:
        from helios_core.streams import stream_arn as lookup_arn
        stream_arn = lookup_arn(aws, stream)
    return CreateRequest(stream_name=stream, stream_arn=stream_arn, columns=columns, options=options,
                         connection=Connection.from_aws(aws), start_position=start_position,
                         start_timestamp=start_timestamp or "", mode=mode)


def create_and_start(ch: Any, request: CreateRequest, aws: Any, user: Any = None) -> dict[str, Any]:
    """Create the table, quarantine table and source (the wizard's checks), and start ingesting it now.

    Access keys go to the ingest manager in memory only, before the source exists, so that its
    consumer starts with them; if nothing was created they are dropped again.
    """
    from helios_core.ingest.manager import get_ingest_manager
    from helios_core.sources import create_table_and_source, new_source_id

    manager = get_ingest_manager()
    request.source_id = request.source_id or new_source_id()
    if getattr(aws, "method", "") == "keys":
        manager.register_connection(request.source_id, aws)
    try:
        result = create_table_and_source(ch, request, user)
    except Exception:
        manager.connections.pop(request.source_id, None)
        raise
    if request.mode == "workers":  # workers read source definitions from the DynamoDB mapping table
        from helios_core.ingest.control import publish_new_workers_source
        publish_new_workers_source(ch, result.source_id, aws)
    manager.sync()
    return result.to_api()
