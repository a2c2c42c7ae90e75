"""Where a built batch goes: the table (split and retried on refusal) and the quarantine table.

Every way of running the ingest transform — the in-app consumer, headless workers and
the AWS Lambda handler — writes through these two functions, with the same
deduplication tokens, so a batch replayed after a crash or a retry is dropped by
ClickHouse instead of landing twice.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from helios_core.clickhouse import to_query_error
from helios_core.cluster import DISTRIBUTED_INSERT_SETTINGS
from helios_core.ddl import QUARANTINE_COLUMN_NAMES
from helios_core.ingest.batch import MAX_EVENT_BYTES, BatchBuilder, Built, Problem, RawRecord, build_records

# ClickHouse error codes that mean "this data cannot go in" (split the batch), not "ClickHouse is not there"
# (retry the whole batch later).
DATA_ERROR_CODES = {6, 26, 27, 32, 38, 41, 53, 69, 70, 72, 117, 131, 190, 321, 349, 376, 377, 441, 469, 675, 676,
                    691, 1001}


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
    """The table a batch is written to (a source's, or any table with the quarantine layout beside it)."""

    database: str
    table: str
    quarantine_table: str
    source_id: str = ""
    stream_name: str = ""
    origin_kind: str = "kinesis"
    insert_settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_source(cls, source: Any) -> "Target":
        extra = DISTRIBUTED_INSERT_SETTINGS if source.options.get("distributed") else {}
        return cls(source.database, source.table, source.quarantine_table, source.id, source.stream_name,
                   insert_settings=dict(extra))


def insert_built(client: Any, target: Target, built: Built, token: str) -> tuple[int, list[Problem]]:
    """Insert the batch's valid rows; rows ClickHouse refuses come back as problems (bisected out).

    Raises when ClickHouse cannot be reached: the caller keeps the batch and retries it with the same token.
    """
    if built.table is None or built.table.num_rows == 0:
        return 0, []
    return _insert_bisect(client, target, built, token, 0, built.table.num_rows)


def _insert_bisect(client: Any, target: Target, built: Built, token: str, lo: int,
                   hi: int) -> tuple[int, list[Problem]]:
    part = built.table.slice(lo, hi - lo)
    try:
        client.insert_arrow(target.table, part, database=target.database,
                            settings={**target.insert_settings,
                                      "insert_deduplication_token": f"{token}:t:{lo}-{hi}"})
        return hi - lo, []
    except Exception as exc:
        if not is_data_error(exc):
            raise
        if hi - lo == 1:
            origin = built.row_origin(lo)
            origin.error_type = "rejected_by_clickhouse"
            origin.message = f"ClickHouse refused the row: {to_query_error(exc).message}"
            return 0, [origin]
        mid = (lo + hi) // 2
        a, problems_a = _insert_bisect(client, target, built, token, lo, mid)
        b, problems_b = _insert_bisect(client, target, built, token, mid, hi)
        return a + b, problems_a + problems_b


def insert_quarantine(client: Any, target: Target, shard_id: str, problems: list[Problem], token: str) -> None:
    """Bad events, each with its reason, into the target's quarantine table (deduplicated by ``token``)."""
    if not problems:
        return
    now = datetime.now(timezone.utc)
    rows = []
    for p in problems:
        arrival = datetime.fromtimestamp(p.arrival_ms / 1000, tz=timezone.utc)
        record_id = f"{shard_id}:{p.seq}:{p.sub}" if p.seq else "row:" + hashlib.sha1(p.raw).hexdigest()[:20]
        rows.append([now, target.origin_kind, target.source_id, target.stream_name, target.stream_name, shard_id,
                     p.seq, p.sub, p.pkey, arrival, p.error_type, p.message[:4000], p.column, p.raw, record_id])
    client.insert(target.quarantine_table, rows, column_names=QUARANTINE_COLUMN_NAMES, database=target.database,
                  settings={**target.insert_settings, "insert_deduplication_token": f"{token}:q"})


def write_built(client: Any, target: Target, shard_id: str, built: Built, token: str) -> tuple[int, int]:
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


def insert_payloads(client: Any, source: Any, payloads: list[bytes], token: str, shard_id: str = "api",
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
    target = Target.of_source(source)
    target.origin_kind = "api"
    inserted, rejected = insert_built(client, target, built, token)
    problems = built.problems + rejected
    insert_quarantine(client, target, shard_id, problems, token)
    return PayloadOutcome(inserted, {int(p.seq.rsplit(":", 1)[1]): p for p in problems})
