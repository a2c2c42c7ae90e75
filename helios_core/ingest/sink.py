"""Where a built batch goes: the table (split and retried on refusal) and the quarantine table.

Every writer of rows — the in-app consumer, headless workers, the AWS Lambda handler, the HTTP API,
import jobs, PostgreSQL dumps and quarantine re-processing — writes through these functions, with
deduplication tokens, so a batch replayed after a crash or a retry is dropped by ClickHouse instead of
landing twice. The writer is anything with ``insert_arrow(table, arrow_table, database=, settings=)``:
:class:`helios_core.clickhouse.ClickHouse`, a clickhouse-connect client (a worker's own handle) or
:class:`helios_core.ingest.remote.RemoteClickHouse`.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pyarrow as pa

from helios_core.clickhouse import to_query_error
from helios_core.cluster import DISTRIBUTED_INSERT_SETTINGS
from helios_core.ddl import QUARANTINE_COLUMNS
from helios_core.errors import HeliosError
from helios_core.ingest.batch import MAX_EVENT_BYTES, BatchBuilder, Built, Problem, RawRecord, build_records

# ClickHouse error codes that mean "this data cannot go in" (split the batch), not "ClickHouse is not there"
# (retry the whole batch later).
DATA_ERROR_CODES = {6, 26, 27, 32, 38, 41, 53, 69, 70, 72, 117, 131, 190, 321, 349, 376, 377, 441, 469, 675, 676,
                    691, 1001}

# Where quarantined rows came from (the quarantine table's ``source`` column).
ORIGIN_KINDS = ("kinesis", "api", "import", "dump", "reprocess")


class Writer(Protocol):
    """What the sink writes through."""

    def insert_arrow(self, table: str, arrow_table: pa.Table, database: str,
                     settings: dict[str, Any] | None = None) -> Any: ...


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = re.search(r"Code: (\d+)", str(exc))
    return int(match.group(1)) if match else None


def is_data_error(exc: BaseException) -> bool:
    return error_code(exc) in DATA_ERROR_CODES


@dataclass
class Target:
    """The table a batch is written to (a source's, or any table with the quarantine layout beside it).

    ``origin_kind`` is one of :data:`ORIGIN_KINDS`; ``origin`` says where in it the rows came from (the
    stream, or an import's ``owner/file``); ``received_at`` fixes the quarantine rows' time (so a re-sent
    quarantine batch is identical), else it is the time of writing.
    """

    database: str
    table: str
    quarantine_table: str
    source_id: str = ""
    stream_name: str = ""
    origin_kind: str = "kinesis"
    insert_settings: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    received_at: datetime | None = None

    @classmethod
    def of_source(cls, source: Any, origin_kind: str = "kinesis") -> Target:
        extra = DISTRIBUTED_INSERT_SETTINGS if source.options.get("distributed") else {}
        return cls(source.database, source.table, source.quarantine_table, source.id, source.stream_name,
                   origin_kind=origin_kind, insert_settings=dict(extra))

    @classmethod
    def of_import(cls, database: str, table: str, source_id: str, origin: str,
                  origin_kind: str = "import") -> Target:
        """A table loaded from files (``origin`` = owner/file, or dump:table); quarantine time fixed now."""
        from helios_core.ddl import quarantine_name
        return cls(database, table, quarantine_name(table), source_id, "", origin_kind, origin=origin,
                   received_at=datetime.now(UTC))


def _settings(target: Target, token: str | None, suffix: str) -> dict[str, Any]:
    if token is None:  # no token: a plain insert (ClickHouse may still drop an identical block by its hash)
        return dict(target.insert_settings)
    return {**target.insert_settings, "insert_deduplication_token": f"{token}:{suffix}"}


class RowOrigins:
    """A batch's row position → where the row came from, made on demand (for the rows ClickHouse refuses).

    For batches built outside :func:`build_records` (imports, re-processing): ``make(row)`` gives the
    :class:`Problem` of input row ``row``; ``rows`` maps the batch's positions to input rows (None: the same).
    """

    def __init__(self, make: Callable[[int], Problem], rows: Sequence[int] | None = None) -> None:
        self.make, self.rows = make, rows

    def __getitem__(self, i: int) -> Problem:
        return self.make(self.rows[i] if self.rows is not None else i)

    def record_positions(self, n_valid: int) -> list[int]:
        return list(self.rows) if self.rows is not None else list(range(n_valid))

    def __bool__(self) -> bool:
        return True


def insert_built(client: Writer, target: Target, built: Built, token: str | None) -> tuple[int, list[Problem]]:
    """Insert the batch's valid rows; rows ClickHouse refuses come back as problems (bisected out).

    Raises when ClickHouse cannot be reached: the caller keeps the batch and retries it with the same token.
    """
    if built.table is None or built.table.num_rows == 0:
        return 0, []
    return _insert_bisect(client, target, built, token, 0, built.table.num_rows)


def _insert_bisect(client: Writer, target: Target, built: Built, token: str | None, lo: int,
                   hi: int) -> tuple[int, list[Problem]]:
    assert built.table is not None  # insert_built returns early for a batch without rows
    part = built.table.slice(lo, hi - lo)
    try:
        client.insert_arrow(target.table, part, database=target.database,
                            settings=_settings(target, token, f"t:{lo}-{hi}"))
        return hi - lo, []
    except Exception as exc:
        if not is_data_error(exc):
            raise
        if hi - lo == 1:
            origin = built.row_origin(lo)
            origin.error_type = "rejected_by_clickhouse"
            why = exc.message if isinstance(exc, HeliosError) else to_query_error(exc).message
            origin.message = f"ClickHouse refused the row: {why}"
            return 0, [origin]
        mid = (lo + hi) // 2
        a, problems_a = _insert_bisect(client, target, built, token, lo, mid)
        b, problems_b = _insert_bisect(client, target, built, token, mid, hi)
        return a + b, problems_a + problems_b


_ARROW_OF = {"DateTime64(3, 'UTC')": pa.timestamp("ms", tz="UTC"), "UInt32": pa.uint32()}


def quarantine_table(target: Target, shard_id: str, problems: list[Problem],
                     now: datetime | None = None) -> pa.Table:
    """The quarantine rows for ``problems``, one column per :data:`helios_core.ddl.QUARANTINE_COLUMNS` entry.

    The one place that lays out a quarantine row, for every origin kind. ``record_id`` is the problem's own
    when it has one, else ``shard:sequence:sub`` for stream records, else a hash of the raw bytes.
    """
    now = now or target.received_at or datetime.now(UTC)
    origin = target.origin or target.stream_name
    n = len(problems)

    def record_id(p: Problem) -> str:
        if p.record_id:
            return p.record_id
        return f"{shard_id}:{p.seq}:{p.sub}" if p.seq else "row:" + hashlib.sha1(p.raw).hexdigest()[:20]

    values: dict[str, list[Any]] = {
        "received_at": [now] * n, "source": [target.origin_kind] * n, "source_id": [target.source_id] * n,
        "origin": [origin] * n, "stream": [target.stream_name] * n, "shard_id": [shard_id] * n,
        "sequence_number": [p.seq for p in problems], "sub_index": [p.sub for p in problems],
        "partition_key": [p.pkey for p in problems],
        "arrival_time": [datetime.fromtimestamp(p.arrival_ms / 1000, tz=UTC) for p in problems],
        "error_type": [p.error_type for p in problems], "error_message": [p.message[:4000] for p in problems],
        "column_name": [p.column for p in problems],
        "raw": [p.raw if isinstance(p.raw, bytes) else str(p.raw).encode() for p in problems],
        "record_id": [record_id(p) for p in problems]}
    arrays = [pa.array(values[name], type=pa.binary() if name == "raw" else _ARROW_OF.get(type_.split(" DEFAULT")[0],
                                                                                       pa.string()))
              for name, type_ in QUARANTINE_COLUMNS]
    return pa.Table.from_arrays(arrays, names=[name for name, _ in QUARANTINE_COLUMNS])


def insert_quarantine(client: Writer, target: Target, shard_id: str, problems: list[Problem],
                      token: str | None) -> None:
    """Bad rows, each with its reason, into the target's quarantine table (deduplicated by ``token``)."""
    if not problems:
        return
    client.insert_arrow(target.quarantine_table, quarantine_table(target, shard_id, problems),
                        database=target.database, settings=_settings(target, token, "q"))


def write_built(client: Writer, target: Target, shard_id: str, built: Built, token: str | None) -> tuple[int, int]:
    """Table first, then quarantine (built problems plus refused rows); returns (inserted, quarantined)."""
    inserted, rejected = insert_built(client, target, built, token)
    problems = built.problems + rejected
    insert_quarantine(client, target, shard_id, problems, token)
    return inserted, len(problems)


@dataclass
class PayloadOutcome:
    """What became of each payload handed to :func:`insert_payloads` (by position)."""

    inserted: int
    problems: dict[int, Problem]   # payload position → why it went to quarantine


def insert_payloads(client: Writer, source: Any, payloads: list[bytes], token: str, shard_id: str = "api",
                    max_event_bytes: int = MAX_EVENT_BYTES) -> PayloadOutcome:
    """Validate raw event payloads (one event each) by ``source``'s rules and insert them as one batch.

    The same path as a Kinesis batch (:func:`build_records`, :func:`insert_built`, :func:`insert_quarantine`),
    every insert carrying a deduplication token derived from ``token``: the same payloads with the same token
    again insert nothing (the HTTP API's Idempotency-Key).
    """
    stem = hashlib.sha256(token.encode()).hexdigest()[:16]  # record ids: unique per request, stable on retries
    arrival = int(time.time() * 1000)
    records = [RawRecord(data, f"{stem}:{i}", "", arrival) for i, data in enumerate(payloads)]
    built = build_records(BatchBuilder(source.columns, shard_id), records, max_event_bytes)
    target = Target.of_source(source, origin_kind="api")
    inserted, rejected = insert_built(client, target, built, token)
    problems = built.problems + rejected
    insert_quarantine(client, target, shard_id, problems, token)
    return PayloadOutcome(inserted, {int(p.seq.rsplit(":", 1)[1]): p for p in problems})


def write_range(client: Any, store: Any, source: Any, builder: BatchBuilder, shard_id: str, cp: Any,
                batch: list[RawRecord], max_event_bytes: int = MAX_EVENT_BYTES, replay: bool = False,
                hook: Callable[[str], None] = lambda point: None, built: Built | None = None) -> tuple[int, int]:
    """One batch of one shard, exactly once, for every runner (in-app consumer, headless worker, Lambda).

    The intent (``pending_from``..``pending_seq``) is saved before anything is inserted, unless ``replay``: the
    batch *is* the saved intent, rebuilt after a crash. The token comes from the shard and that range, so a
    batch that had landed is dropped by ClickHouse. Then rows, quarantine rows, and the checkpoint moves.
    ``store`` is a checkpoint store (ClickHouse's or the leases'); ``hook`` marks each step (crash tests).
    ``built`` is this very batch already built (the Lambda handler builds while it reads the checkpoint).
    Returns (rows inserted, events quarantined).
    """
    first, last = batch[0].sequence_number, batch[-1].sequence_number
    if not replay:
        cp.pending_from, cp.pending_seq = first, last
        store.save(cp)
        hook("after_intent")
    token = f"{source.id}:{shard_id}:{cp.pending_from or first}:{cp.pending_seq or last}"
    if built is None:
        built = build_records(builder, batch, max_event_bytes)
    hook("before_insert")
    target = Target.of_source(source)
    inserted, rejected = insert_built(client, target, built, token)
    hook("after_table_insert")
    problems = built.problems + rejected
    insert_quarantine(client, target, shard_id, problems, token)
    hook("after_insert")
    cp.committed_seq = last
    cp.pending_from = cp.pending_seq = ""
    store.save(cp)
    hook("after_checkpoint")
    return inserted, len(problems)

