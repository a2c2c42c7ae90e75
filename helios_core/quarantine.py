"""Browsing and re-processing a source's quarantine table.

Filters travel as bound parameters. Re-processing reads quarantined rows,
runs them through the source's *current* rules (the same builder the ingester
uses), inserts those that now pass into the table with a deduplication token
derived from their record ids through the one write path (:func:`helios_core.ingest.sink.insert_built`:
rows ClickHouse refuses stay in quarantine), and only then deletes them from quarantine — a
retry after a failure in between inserts nothing twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from helios_core.identifiers import qualified
from helios_core.ingest.batch import BatchBuilder, Built, Problem, RawRecord, build_records
from helios_core.ingest.sink import RowOrigins, Target, insert_built
from helios_core.sources import Source

if TYPE_CHECKING:
    from helios_core.clickhouse import ClickHouse


@dataclass
class QuarantineFilter:
    since: datetime | None = None
    until: datetime | None = None
    error_type: str = ""
    text: str = ""
    unique: bool = False
    limit: int = 500


def _where(f: QuarantineFilter) -> tuple[str, dict[str, Any]]:
    """The filter's WHERE clause and its bound parameters, the row limit ``{limit:UInt32}`` included."""
    clauses = ["1 = 1"]
    params: dict[str, Any] = {"limit": int(max(1, min(f.limit, 100_000)))}
    if f.since:
        clauses.append("received_at >= parseDateTime64BestEffort({since:String}, 3, 'UTC')")
        params["since"] = f.since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if f.until:
        clauses.append("received_at <= parseDateTime64BestEffort({until:String}, 3, 'UTC')")
        params["until"] = f.until.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if f.error_type:
        clauses.append("error_type = {error_type:String}")
        params["error_type"] = f.error_type
    if f.text:
        clauses.append("(positionCaseInsensitiveUTF8(error_message, {text:String}) > 0 OR "
                       "positionCaseInsensitive(raw, {text:String}) > 0 OR column_name = {text:String})")
        params["text"] = f.text
    return " AND ".join(clauses), params


def quarantine_rows(ch: ClickHouse, source: Source, f: QuarantineFilter) -> pd.DataFrame:
    table = qualified(source.database, source.quarantine_table)
    where, params = _where(f)
    if f.unique:
        sql = (f"SELECT error_type, column_name, error_message, count() AS occurrences, "
               f"max(received_at) AS last_seen, any(raw) AS example_raw FROM {table} WHERE {where} "
               "GROUP BY error_type, column_name, error_message ORDER BY occurrences DESC LIMIT {limit:UInt32}")
    else:
        sql = (f"SELECT received_at, error_type, column_name, error_message, raw, stream, shard_id, sequence_number, "
               f"partition_key, arrival_time, record_id FROM {table} WHERE {where} "
               "ORDER BY received_at DESC LIMIT {limit:UInt32}")
    return ch.internal_df(sql, params)


def quarantine_summary(ch: ClickHouse, source: Source) -> dict[str, int]:
    table = qualified(source.database, source.quarantine_table)
    rows = ch.internal_query(f"SELECT error_type, count() AS n FROM {table} GROUP BY error_type ORDER BY n DESC")
    return {r["error_type"]: int(r["n"]) for r in rows}


@dataclass
class ReprocessResult:
    examined: int
    inserted: int
    still_invalid: int

    def to_json(self) -> dict[str, int]:
        return {"examined": self.examined, "inserted": self.inserted, "stillInvalid": self.still_invalid}


def reprocess(ch: ClickHouse, source: Source, f: QuarantineFilter | None = None,
              chunk: int = 5_000) -> ReprocessResult:
    """Move quarantined rows that pass the source's current rules into its table."""
    f = f or QuarantineFilter(limit=100_000)
    table = qualified(source.database, source.quarantine_table)
    where, params = _where(f)
    rows = ch.internal_query(
        f"SELECT record_id, raw, shard_id, sequence_number, partition_key, "
        f"toUnixTimestamp64Milli(arrival_time) AS arrival_ms FROM {table} WHERE {where} "
        "ORDER BY record_id LIMIT 1 BY record_id LIMIT {limit:UInt32}", params)
    examined = inserted = 0
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        by_shard: dict[str, list[dict[str, Any]]] = {}
        for row in part:
            by_shard.setdefault(row["shard_id"], []).append(row)
        for shard_id, group in by_shard.items():
            records = [RawRecord(r["raw"] if isinstance(r["raw"], bytes) else str(r["raw"]).encode(),
                                 r["sequence_number"], r["partition_key"], int(r["arrival_ms"] or 0)) for r in group]
            built = build_records(BatchBuilder(source.columns, shard_id), records)
            examined += len(group)
            if built.table is None or built.origin is None:
                continue
            positions = built.origin.record_positions(built.table.num_rows)
            invalid = set(range(len(group))) - set(positions)
            valid = {group[p]["record_id"] for p in positions} - {group[i]["record_id"] for i in invalid}
            if not valid:
                continue
            keep = [group[p]["record_id"] in valid for p in positions]
            data = built.table.filter(keep) if not all(keep) else built.table
            kept = [p for p, k in zip(positions, keep, strict=False) if k]
            token = "reprocess:" + hashlib.sha1("\n".join(sorted(valid)).encode()).hexdigest()

            def origin(position: int, group: list[dict[str, Any]] = group) -> Problem:
                row = group[position]
                return Problem(b"", row["sequence_number"], 0, "", 0, "", "", record_id=row["record_id"])
            _, refused = insert_built(ch, Target.of_source(source, "reprocess"),
                                      Built(data, [], RowOrigins(origin, kept)), token)
            # rows ClickHouse refuses stay in quarantine with their first reason
            moved = sorted(valid - {p.record_id for p in refused})
            if moved:
                ch.execute(f"DELETE FROM {table} WHERE record_id IN {{ids:Array(String)}}", {"ids": moved})
            inserted += len(moved)
    return ReprocessResult(examined, inserted, examined - inserted)
