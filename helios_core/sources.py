"""Sources: a stream feeding one ClickHouse table, stored in ``helios.sources``.

A source records which stream (name, ARN, connection without secrets), which
table (database, name, UUID), how each column is read and validated
(:class:`~helios_core.schema.ColumnSpec` list), where reading starts, and its
status. One stream may feed several tables; a table takes one source.

Rows are versioned (ReplacingMergeTree keyed by id, read with FINAL); deleting
writes a tombstone row.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from helios_core import cluster
from helios_core.cluster import ClusterSpec
from helios_core.ddl import (
    TableOptions,
    check_columns,
    create_database_sql,
    create_quarantine_sql,
    create_table_sql,
    database_exists,
    default_literal_problem,
    normalize_type,
    quarantine_name,
    sorting_key,
    validate_table,
)
from helios_core.errors import Conflict, Forbidden, HeliosError, NotFound, QueryError, ValidationError
from helios_core.identifiers import qualified, quote_ident
from helios_core.ingest.store import delete_checkpoints
from helios_core.metadata import METADATA_DB, next_version
from helios_core.schema import ColumnSpec
from helios_core.timeparse import parse_iso
from helios_core.users import LOCAL_ID, User, acting, can_change, owner_of, ownership_alters
from helios_core.wording import plural

if TYPE_CHECKING:
    from helios_core.clickhouse import ClickHouse

SOURCES_TABLE = f"{METADATA_DB}.sources"
START_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
STATUSES = ("running", "paused", "failed")
# Where a source's events are ingested: by this Helios process (or `python -m helios_core.ingest`), by headless
# workers sharing the shards through DynamoDB leases (`python -m helios_core.ingest --worker-id ID`), or by an
# AWS Lambda function reading the stream through an event source mapping (helios_core.ingest.lambda_handler).
INGEST_MODES = ("app", "workers", "lambda")
LATEST_CLOCK_GUARD = timedelta(seconds=1)

METADATA_TABLES = [
    f"""CREATE TABLE IF NOT EXISTS {SOURCES_TABLE}
(
    id String,
    version UInt64,
    deleted UInt8,
    stream_type LowCardinality(String),
    stream_name String,
    stream_arn String,
    connection String,
    database String,
    table String,
    table_uuid String,
    columns String,
    options String,
    start_position LowCardinality(String),
    start_timestamp String,
    created_on DateTime64(3, 'UTC'),
    status LowCardinality(String),
    last_error String,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id""",
]
# A source's table is visible to everyone; its settings (pause, resume, rules, delete) are its owner's and admins'.
METADATA_ALTERS = ownership_alters(SOURCES_TABLE, shared=False)


@dataclass
class Connection:
    """How the stream is reached; never any key or secret.

    ``auth`` names how the user signed in (``keys``, ``profile``, ``default``,
    ``sandbox``; empty for sources made before it was recorded) so that after a
    restart Helios knows a ``keys`` source has no credentials until the user
    signs in again, instead of silently trying the default chain.
    """

    region: str = "us-east-1"
    endpoint_url: str | None = None
    profile: str | None = None
    sandbox: bool = False
    auth: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_aws(cls, conn: Any) -> Connection:
        """The storable part of an :class:`~helios_core.aws.AwsConnection` (its keys are dropped)."""
        return cls(region=conn.region, endpoint_url=None if conn.sandbox else conn.endpoint_url,
                   profile=conn.profile, sandbox=conn.sandbox, auth=conn.method)

    @property
    def needs_keys(self) -> bool:
        """Signed in with access keys, which are never stored: a new process must be given them again."""
        return self.auth == "keys"

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Connection:
        data = data or {}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class Source:
    id: str
    stream_name: str
    stream_arn: str
    database: str
    table: str
    columns: list[ColumnSpec]
    connection: Connection = field(default_factory=Connection)
    table_uuid: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    start_position: str = "TRIM_HORIZON"
    start_timestamp: str = ""     # ISO time: for AT_TIMESTAMP, and LATEST's anchor (see start_anchor)
    created_on: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "running"
    last_error: str = ""
    stream_type: str = "kinesis"
    version: int = 0
    owner: str = LOCAL_ID         # the user who created it

    @property
    def quarantine_table(self) -> str:
        return quarantine_name(self.table)

    @property
    def mode(self) -> str:
        """Who ingests this source (one of :data:`INGEST_MODES`); the in-app manager runs only ``app`` sources."""
        return str(self.options.get("mode") or "app")

    def start_anchor(self) -> datetime | None:
        """Where a shard with no checkpoint starts reading, as a time (``AT_TIMESTAMP``); None: TRIM_HORIZON.

        LATEST is resolved once, when the source is created, to that moment (kept in
        ``start_timestamp``); otherwise a consumer restarted before a shard's first
        checkpoint would ask for LATEST again and miss what arrived in between.
        Kinesis compares with ``ApproximateArrivalTimestamp`` (its own clock), so the
        anchor is moved back by :data:`LATEST_CLOCK_GUARD` to absorb clock skew:
        reading a few events from just before creation beats losing any after it.
        """
        if self.start_position not in ("LATEST", "AT_TIMESTAMP") or not self.start_timestamp:
            return None
        try:
            when = parse_iso(self.start_timestamp)  # the one time parser (naive = UTC)
        except ValueError:  # a record from before it, in a form only Python's parser took
            when = datetime.fromisoformat(self.start_timestamp.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
        return when - LATEST_CLOCK_GUARD if self.start_position == "LATEST" else when

    def to_api(self) -> dict[str, Any]:
        """The seed's ``/api/sources`` item plus status and ids."""
        return {"streamName": self.stream_name, "streamType": self.stream_type, "tableName": self.table,
                "createdOn": self.created_on.strftime("%m-%d-%Y"), "status": self.status, "id": self.id,
                "database": self.database, "streamARN": self.stream_arn, "lastError": self.last_error,
                "quarantineTable": self.quarantine_table}

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["columns"] = [c.to_json() for c in self.columns]
        data["created_on"] = self.created_on.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Source:
        """The inverse of :meth:`to_json` (how a source travels to the Lambda mapping table)."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["columns"] = [ColumnSpec.from_json(c) for c in data.get("columns") or []]
        fields["connection"] = Connection.from_json(data.get("connection"))
        created = datetime.fromisoformat(str(data.get("created_on") or datetime.now(UTC).isoformat()))
        fields["created_on"] = created if created.tzinfo else created.replace(tzinfo=UTC)
        return cls(**fields)


@dataclass
class CreateRequest:
    stream_name: str
    stream_arn: str
    columns: list[ColumnSpec]
    options: TableOptions
    connection: Connection = field(default_factory=Connection)
    start_position: str = "TRIM_HORIZON"
    start_timestamp: str = ""
    # Optional: chosen beforehand (new_source_id()) so that a caller can hand the ingest manager
    # in-memory credentials for the source before the source exists and its consumer starts.
    source_id: str = ""
    mode: str = "app"             # one of INGEST_MODES


def new_source_id() -> str:
    return uuid.uuid4().hex[:12]


def latest_anchor(when: datetime) -> str:
    """LATEST pinned to a time (ISO, UTC, milliseconds) for ``start_timestamp``."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass
class CreateResult:
    success: bool
    create_table_query: str
    quarantine_table_query: str
    message: str
    table_uuid: str
    stream_arn: str
    source_id: str
    order_by: list[str] = field(default_factory=list)   # the sorting key the table got ([] = tuple())
    order_by_note: str = ""                              # how it was chosen

    def to_api(self) -> dict[str, Any]:
        """The seed's ``/api/create-table`` response, plus the quarantine DDL, source id and sorting key."""
        return {"success": self.success, "createTableQuery": self.create_table_query, "message": self.message,
                "tableUUID": self.table_uuid, "streamARN": self.stream_arn, "sourceId": self.source_id,
                "quarantineTableQuery": self.quarantine_table_query, "orderBy": self.order_by,
                "orderByNote": self.order_by_note}


# ---- storing ------------------------------------------------------------------------------------

def _write(ch: ClickHouse, source: Source, deleted: bool = False) -> None:
    source.version = next_version()
    row = [source.id, source.version, int(deleted), source.stream_type, source.stream_name, source.stream_arn,
           json.dumps(source.connection.to_json()), source.database, source.table, source.table_uuid,
           json.dumps([c.to_json() for c in source.columns]), json.dumps(source.options, default=str),
           source.start_position, source.start_timestamp, source.created_on, source.status, source.last_error,
           datetime.now(UTC), source.owner]
    names = ["id", "version", "deleted", "stream_type", "stream_name", "stream_arn", "connection", "database",
             "table", "table_uuid", "columns", "options", "start_position", "start_timestamp", "created_on",
             "status", "last_error", "updated_at", "owner"]
    ch.insert_rows("sources", [row], names, database=METADATA_DB)


def _from_row(row: dict[str, Any]) -> Source:
    created = row["created_on"]
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return Source(id=row["id"], stream_name=row["stream_name"], stream_arn=row["stream_arn"],
                  database=row["database"], table=row["table"],
                  columns=[ColumnSpec.from_json(c) for c in json.loads(row["columns"] or "[]")],
                  connection=Connection.from_json(json.loads(row["connection"] or "{}")),
                  table_uuid=row["table_uuid"], options=json.loads(row["options"] or "{}"),
                  start_position=row["start_position"], start_timestamp=row["start_timestamp"],
                  created_on=created, status=row["status"], last_error=row["last_error"],
                  stream_type=row["stream_type"], version=int(row["version"]), owner=owner_of(row.get("owner")))


def list_sources(ch: ClickHouse, status: str | None = None) -> list[Source]:
    rows = ch.internal_query(f"SELECT * FROM {SOURCES_TABLE} FINAL WHERE deleted = 0 ORDER BY created_on, id")
    sources = [_from_row(r) for r in rows]
    return [s for s in sources if status is None or s.status == status]


def get_source(ch: ClickHouse, source_id: str) -> Source:
    rows = ch.internal_query(f"SELECT * FROM {SOURCES_TABLE} FINAL WHERE id = {{id:String}} AND deleted = 0",
                             {"id": source_id})
    if not rows:
        raise NotFound(f"There is no source with id {source_id!r}.", "The Sources page lists the sources.")
    return _from_row(rows[0])


def source_for_table(ch: ClickHouse, database: str, table: str) -> Source | None:
    for source in list_sources(ch):
        if source.database == database and source.table == table:
            return source
    return None


def sources_to_api(ch: ClickHouse) -> list[dict[str, Any]]:
    return [s.to_api() for s in list_sources(ch)]


# ---- creating -----------------------------------------------------------------------------------


def check_request(ch: ClickHouse, req: CreateRequest) -> list[str]:
    """Every problem with a create request, in one list (nothing runs)."""
    problems: list[str] = []
    if not req.stream_name:
        problems.append("Choose a source stream.")
    if req.start_position not in START_POSITIONS:
        problems.append(f"The start position must be one of {', '.join(START_POSITIONS)}.")
    if req.start_position == "AT_TIMESTAMP":
        try:
            parse_iso(req.start_timestamp)
        except (TypeError, ValueError):
            problems.append("AT_TIMESTAMP needs a start time (ISO format, for example 2024-05-01T00:00:00Z).")
    if req.source_id and ch.internal_query(f"SELECT count() AS n FROM {SOURCES_TABLE} WHERE id = {{id:String}}",
                                           {"id": req.source_id})[0]["n"]:
        problems.append(f"A source with id {req.source_id!r} already exists.")
    problems += validate_table(ch, req.options, req.columns)
    if not problems and source_for_table(ch, req.options.database, req.options.table):
        problems.append(f"The table {req.options.database}.{req.options.table} already has a source.")
    return problems


def ddl_statements(options: TableOptions, columns: list[ColumnSpec]) -> tuple[list[str], list[str]]:
    """The statements that create the table and its quarantine table (several each on a cluster)."""
    table_sql = create_table_sql(options, columns)
    quarantine_sql = create_quarantine_sql(options.database, options.table, options.dedup_window)
    if not options.cluster:
        return [table_sql], [quarantine_sql]
    spec = ClusterSpec(options.cluster, options.distributed)
    return (cluster.table_statements(table_sql, spec, options.database, options.table),
            cluster.table_statements(quarantine_sql, spec, options.database, options.quarantine_table))


def preview_ddl(options: TableOptions, columns: list[ColumnSpec]) -> tuple[str, str]:
    """The CREATE TABLE statements (table, quarantine) a request would run."""
    table, quarantine = ddl_statements(options, columns)
    return ";\n\n".join(table), ";\n\n".join(quarantine)


def _table_uuid(ch: ClickHouse, database: str, table: str) -> str:
    rows = ch.internal_query("SELECT toString(uuid) AS u FROM system.tables WHERE database = {d:String} "
                             "AND name = {t:String}", {"d": database, "t": table})
    return rows[0]["u"] if rows else ""


def _normalized(columns: list[ColumnSpec]) -> list[ColumnSpec]:
    out = []
    for col in columns:
        data = col.to_json()
        data["type"] = normalize_type(col.type)
        data["allowed_values"] = [str(v) for v in col.allowed_values or []]
        out.append(ColumnSpec.from_json(data))
    return out


def create_table_and_source(ch: ClickHouse, req: CreateRequest, user: User | None = None) -> CreateResult:
    """Validate everything, create the table and its quarantine table, then record the source.

    Refuses an existing table. On any failure after the first statement ran,
    what this call created is dropped again, so no half-made table or orphan
    source is left behind.
    """
    owner = acting(user).id
    problems = check_request(ch, req)
    if req.mode not in INGEST_MODES:
        problems.append(f"Unknown ingest mode {req.mode!r}: choose one of {', '.join(INGEST_MODES)}.")
    if problems:
        if all("already exists" in p or "already has a source" in p for p in problems):
            raise Conflict(problems[0], "Choose another table name.")
        raise ValidationError(f"The table cannot be created: {plural(len(problems), 'problem')}.",
                              "Fix each problem listed and try again.", problems=problems)
    columns = _normalized(req.columns)
    order_by, order_by_note = sorting_key(req.options, columns)
    opts = replace(req.options, order_by=order_by)  # the source records the key the table really has
    table_sql, quarantine_sql = preview_ddl(opts, columns)
    table_statements, quarantine_statements = ddl_statements(opts, columns)
    spec = ClusterSpec(opts.cluster, opts.distributed) if opts.cluster else None
    created: list[str] = []  # what to undo, in reverse order
    made_database = False
    try:
        if not database_exists(ch, opts.database):
            ch.execute(cluster.database_sql(opts.database, spec) if spec else create_database_sql(opts.database))
            made_database = True
        for name, statements in ((opts.table, table_statements), (opts.quarantine_table, quarantine_statements)):
            created.append(name)
            for sql in statements:
                _run_create(ch, sql, opts.database, name)
        table_uuid = _table_uuid(ch, opts.database, opts.table)
        created_on = datetime.now(UTC)
        start_timestamp = req.start_timestamp or ""
        if req.start_position == "LATEST":  # resolved once, here: see Source.start_anchor
            start_timestamp = latest_anchor(created_on)
        source = Source(id=req.source_id or new_source_id(), stream_name=req.stream_name,
                        stream_arn=req.stream_arn, database=opts.database, table=opts.table, columns=columns,
                        connection=req.connection, table_uuid=table_uuid,
                        options={**opts.to_json(), "mode": req.mode},
                        start_position=req.start_position, start_timestamp=start_timestamp, created_on=created_on,
                        status="running", owner=owner)
        _write(ch, source)
    except BaseException:
        _undo(ch, opts.database, created, made_database, spec)
        raise
    return CreateResult(success=True, create_table_query=table_sql, quarantine_table_query=quarantine_sql,
                        message=f"Table {opts.database}.{opts.table} and its quarantine table created; source "
                                f"{source.id} reads stream {req.stream_name} from {req.start_position}.",
                        table_uuid=table_uuid, stream_arn=req.stream_arn, source_id=source.id,
                        order_by=order_by, order_by_note=order_by_note)


def _run_create(ch: ClickHouse, sql: str, database: str, table: str) -> None:
    try:
        ch.execute(sql)
    except QueryError as exc:
        if exc.name == "TABLE_ALREADY_EXISTS":
            raise Conflict(f"The table {database}.{table} already exists; Helios will not overwrite it.",
                           "Choose another table name.") from exc
        raise


def _undo(ch: ClickHouse, database: str, tables: list[str], drop_database: bool,
          spec: ClusterSpec | None = None) -> None:
    for table in reversed(tables):
        drops = cluster.drop_statements(database, table, spec) if spec else \
            [f"DROP TABLE IF EXISTS {qualified(database, table)} SYNC"]
        for sql in drops:
            try:
                ch.execute(sql)
            except HeliosError:
                pass
    if drop_database:
        try:
            rows = ch.internal_query("SELECT count() AS n FROM system.tables WHERE database = {d:String}",
                                     {"d": database})
            if rows and rows[0]["n"] == 0:
                ch.execute(f"DROP DATABASE IF EXISTS {quote_ident(database)}")
        except HeliosError:
            pass


# ---- changing -----------------------------------------------------------------------------------


def set_status(ch: ClickHouse, source_id: str, status: str, last_error: str = "") -> Source:
    if status not in STATUSES:
        raise ValidationError(f"Unknown status {status!r}.", f"Use one of {', '.join(STATUSES)}.")
    source = get_source(ch, source_id)
    source.status = status
    source.last_error = last_error[:2000]
    _write(ch, source)
    return source


def pin_latest_start(ch: ClickHouse, source_id: str, when: datetime | None = None) -> Source:
    """Give a LATEST source made before anchors existed its anchor (now), once; a no-op otherwise."""
    source = get_source(ch, source_id)
    if source.start_position == "LATEST" and not source.start_timestamp:
        source.start_timestamp = latest_anchor(when or datetime.now(UTC))
        _write(ch, source)
    return source


def source_for_change(ch: ClickHouse, source_id: str, user: User | None = None) -> Source:
    """The source, if the acting user may change its settings (its owner or an admin); Forbidden otherwise."""
    source = get_source(ch, source_id)
    if not can_change(acting(user), source.owner):
        raise Forbidden(f"Only the owner of the source {source.id} ({source.owner}) or an admin can pause, resume, "
                        "change or delete it.", "Its table stays readable by everyone; ask its owner or an admin.")
    return source


def pause_source(ch: ClickHouse, source_id: str, user: User | None = None) -> Source:
    source_for_change(ch, source_id, user)
    return set_status(ch, source_id, "paused")


def resume_source(ch: ClickHouse, source_id: str, user: User | None = None) -> Source:
    source_for_change(ch, source_id, user)
    return set_status(ch, source_id, "running")


RULE_FIELDS = ("required", "allowed_values", "format", "default")


def _rule_value(key: str, value: Any) -> Any:
    """A rule as given by the page's table, the CLI's JSON or the API: allowed values may be one comma-separated
    text, an empty default (also a table's NaN) means none."""
    if key == "required":
        return bool(value)
    if key == "allowed_values":
        items = value.split(",") if isinstance(value, str) else list(value or [])
        return [str(v).strip() for v in items if str(v).strip()]
    if key == "format":
        return str(value or "")
    if key == "default" and (value is None or value == "" or (isinstance(value, float) and value != value)):
        return None
    return value


def rules_from_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{column: rules}`` from rows of a rules table (``column`` plus some of :data:`RULE_FIELDS`)."""
    return {str(row["column"]): {k: row[k] for k in RULE_FIELDS if k in row} for row in rows}


def update_rules(ch: ClickHouse, source_id: str, rules: dict[str, dict[str, Any]],
                 user: User | None = None) -> Source:
    """Change the validation rules of some columns: ``{column: {required, allowed_values, format, default}}``.

    Only rules change: names, types and JSON paths are fixed by the table. This changes the record only;
    :func:`helios_core.ingest.control.update_rules` also tells whoever ingests the source.
    """
    source = with_rules(ch, source_id, rules, user)
    _write(ch, source)
    return source


def with_rules(ch: ClickHouse, source_id: str, rules: dict[str, dict[str, Any]],
               user: User | None = None) -> Source:
    """The source with the rules changed and checked (every problem in one ValidationError), not saved."""
    source = source_for_change(ch, source_id, user)
    by_name = {c.name: c for c in source.columns}
    problems: list[str] = []
    for name, change in rules.items():
        if name not in by_name:
            problems.append(f"The source has no column {name!r}.")
            continue
        if not isinstance(change, dict):
            problems.append(f"The rules of column {name!r} must be an object such as {{\"required\": true}}.")
            continue
        unknown = set(change) - set(RULE_FIELDS)
        if unknown:
            problems.append(f"Only the rules {', '.join(RULE_FIELDS)} can change, not {', '.join(sorted(unknown))}.")
            continue
        col = by_name[name]
        for key, value in change.items():
            setattr(col, key, _rule_value(key, value))
    problems += check_columns(source.columns)
    for col in source.columns:
        if col.default not in (None, "") and col.name in rules:
            reason = default_literal_problem(ch, str(col.default), col.type)
            if reason:
                problems.append(f"Column {col.name!r}: {reason}")
    if problems:
        raise ValidationError(problems[0], "Fix the rules and try again.", problems=problems)
    return source


def record_mapping_table(ch: ClickHouse, source_id: str, table: str) -> Source:
    """Remember which DynamoDB mapping table a workers source was published to, so that a pause, a resume or
    new rules reach the item its workers read."""
    source = get_source(ch, source_id)
    source.options["mapping_table"] = table
    _write(ch, source)
    return source


def delete_source(ch: ClickHouse, source_id: str, drop_table: bool = False, user: User | None = None) -> Source:
    """Forget the source (stop its ingestion first: :func:`helios_core.ingest.control.delete` does);
    optionally drop its table and quarantine table."""
    source = source_for_change(ch, source_id, user)
    _write(ch, source, deleted=True)
    delete_checkpoints(ch, source_id)
    if drop_table:
        for table in (source.quarantine_table, source.table):
            ch.execute(f"DROP TABLE IF EXISTS {qualified(source.database, table)} SYNC")
    return source
