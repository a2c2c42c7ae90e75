"""The one write path (helios_core.ingest.sink): split-and-retry, deduplication tokens, quarantine rows.

Against the embedded engine: rows ClickHouse itself refuses (a CHECK constraint the converters cannot
know about) are bisected out into quarantine, a replayed batch with the same token inserts nothing, and a
quarantine row carries every column of ddl.QUARANTINE_COLUMNS whatever wrote it.
"""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest

from helios_core.ddl import QUARANTINE_COLUMN_NAMES, create_quarantine_sql, quarantine_name
from helios_core.ingest.batch import Built, Problem
from helios_core.ingest.sink import (
    ORIGIN_KINDS,
    RowOrigins,
    Target,
    insert_quarantine,
    quarantine_table,
    write_built,
)
from helios_core.loading import QuarantineRow, RowSink

DB = "sink_test"


def make_table(ch, dedup: bool = True) -> str:
    name = f"t_{uuid.uuid4().hex[:8]}"
    ch.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
    ch.execute(f"CREATE TABLE {DB}.{name} (id UInt32, v String, CONSTRAINT no_bad CHECK v != 'bad') "
               "ENGINE = MergeTree ORDER BY id"
               + (" SETTINGS non_replicated_deduplication_window = 100" if dedup else ""))
    ch.execute(create_quarantine_sql(DB, name))
    return name


def count(ch, table: str) -> int:
    return ch.internal_query(f"SELECT count() AS n FROM {DB}.{table}")[0]["n"]


def built_batch(ids: list[int], values: list[str]) -> Built:
    table = pa.table({"id": pa.array(ids, pa.uint32()), "v": pa.array(values)})
    return Built(table, [], RowOrigins(lambda i: Problem(f"{ids[i]}:{values[i]}".encode(), str(ids[i]), 0, "", 0,
                                                         "", "")))


@pytest.fixture(params=["clickhouse", "client"])
def writer(request, ch):
    """The sink writes through anything with insert_arrow: Helios's ClickHouse, or a worker's own handle."""
    if request.param == "clickhouse":
        yield ch
    else:
        client = ch.new_client()
        yield client
        client.close()


def test_split_and_retry_quarantines_exactly_the_refused_rows(ch, writer):
    name = make_table(ch)
    values = ["ok", "bad", "ok", "ok", "ok", "bad", "ok", "bad"]
    ids = list(range(1, len(values) + 1))
    target = Target(DB, name, quarantine_name(name), "src-1", "stream-a")
    inserted, quarantined = write_built(writer, target, "shard-0", built_batch(ids, values), "tok-1")
    assert (inserted, quarantined) == (5, 3)
    got = ch.internal_query(f"SELECT id FROM {DB}.{name} ORDER BY id")
    assert [r["id"] for r in got] == [i for i, v in zip(ids, values, strict=False) if v == "ok"]
    q = ch.internal_query(f"SELECT sequence_number, error_type, error_message, raw FROM {DB}.{quarantine_name(name)} "
                          "ORDER BY toUInt32(sequence_number)")
    assert [r["sequence_number"] for r in q] == ["2", "6", "8"]
    assert all(r["error_type"] == "rejected_by_clickhouse" for r in q)
    assert all("ClickHouse refused the row" in r["error_message"] and "no_bad" in r["error_message"] for r in q)
    assert [r["raw"] for r in q] == ["2:bad", "6:bad", "8:bad"]


def test_a_replayed_batch_with_the_same_token_is_a_no_op(ch, writer):
    name = make_table(ch)
    target = Target(DB, name, quarantine_name(name), "src-1", "stream-a")
    batch = built_batch([1, 2, 3, 4], ["ok", "bad", "ok", "ok"])
    assert write_built(writer, target, "shard-0", batch, "tok-replay") == (3, 1)
    write_built(writer, target, "shard-0", batch, "tok-replay")   # after a crash: the same batch, the same token
    assert count(ch, name) == 3
    assert count(ch, quarantine_name(name)) == 1
    write_built(writer, target, "shard-0", batch, "tok-other")    # another token is another batch
    assert count(ch, name) == 6


@pytest.mark.parametrize("kind", ORIGIN_KINDS)
def test_quarantine_rows_have_every_column_for_each_origin_kind(ch, kind):
    name = make_table(ch)
    target = Target(DB, name, quarantine_name(name), "src-9", "" if kind in ("import", "dump") else "stream-b",
                    origin_kind=kind, origin="owner@example.com/file.csv" if kind in ("import", "dump") else "")
    problems = [Problem(b'{"id": "x"}', "" if kind in ("import", "dump") else "49590", 3, "pk", 1_735_689_600_000,
                        "type_mismatch", "id: 'x' is not a whole number", "id",
                        record_id="src-9:owner@example.com/file.csv:3" if kind in ("import", "dump") else "")]
    arrow = quarantine_table(target, "shard-1", problems)
    assert arrow.column_names == QUARANTINE_COLUMN_NAMES
    insert_quarantine(ch, target, "shard-1", problems, f"q-{kind}")
    rows = ch.internal_query(f"SELECT * FROM {DB}.{quarantine_name(name)}")
    assert len(rows) == 1 and list(rows[0]) == QUARANTINE_COLUMN_NAMES
    row = rows[0]
    assert row["source"] == kind and row["source_id"] == "src-9"
    assert row["origin"] == (target.origin or "stream-b") and row["shard_id"] == "shard-1"
    assert (row["error_type"], row["column_name"], row["sub_index"]) == ("type_mismatch", "id", 3)
    assert row["raw"] == '{"id": "x"}' and row["arrival_time"].year == 2025 and row["received_at"].year >= 2025
    assert row["record_id"] == (problems[0].record_id or "shard-1:49590:3")


def test_import_rows_go_through_the_same_sink(ch, writer):
    """RowSink (import jobs, dumps, analyses): bad values and ClickHouse refusals in quarantine, once."""
    name = make_table(ch)

    def load() -> RowSink:
        sink = RowSink(ch, DB, name, [("id", "UInt32"), ("v", "String")], source="import", source_id="job-1",
                       origin="ann/f.csv", batch_rows=3, client=writer if writer is not ch else None,
                       token_prefix="job:job-1:f")
        for n, (i, v) in enumerate([("1", "ok"), ("x", "ok"), ("3", "bad"), ("4", "ok"), (None, "ok")], start=1):
            sink.add({"id": i, "v": v}, f"{i},{v}", n)
        for n in (6, 7, 8):  # unreadable lines: written once a batch of them has gathered, and again at the end
            sink.reject(QuarantineRow(f"{n},ok,extra", "decode_error", "the row has 3 fields; the header has 2", "", n))
        sink.flush()
        return sink

    sink = load()
    assert (sink.counts.inserted, sink.counts.quarantined) == (2, 6)
    assert sink.counts.errors_by_type == {"type_mismatch": 1, "rejected_by_clickhouse": 1, "missing_required": 1,
                                          "decode_error": 3}
    load()  # the job resumed after a restart: nothing lands twice
    assert count(ch, name) == 2
    q = ch.internal_query(f"SELECT source, origin, sub_index, error_type, column_name, error_message, record_id "
                          f"FROM {DB}.{quarantine_name(name)} ORDER BY sub_index")
    assert [(r["sub_index"], r["error_type"], r["column_name"]) for r in q] == [
        (2, "type_mismatch", "id"), (3, "rejected_by_clickhouse", ""), (5, "missing_required", "id"),
        (6, "decode_error", ""), (7, "decode_error", ""), (8, "decode_error", "")]
    assert all(r["source"] == "import" and r["origin"] == "ann/f.csv" for r in q)
    assert [r["record_id"] for r in q] == [f"job-1:ann/f.csv:{n}" for n in (2, 3, 5, 6, 7, 8)]
    assert q[2]["error_message"].startswith("missing field id")


def test_csv_rows_keep_their_numbers_across_batches(ch, tmp_path):
    """A CSV read in Arrow blocks and cut into the sink's batches: bad rows keep the row numbers of the file."""
    from helios_core.loading import add_csv_file

    name = make_table(ch)
    lines = [f"{n},ok" for n in range(1, 13)]
    lines[6] = "7,ok,extra"       # a row with a field too many
    lines[10] = "x,ok"            # a value that is not a UInt32
    lines[11] = '12,"two\nlines"'  # a quoted newline is one value
    path = tmp_path / "rows.csv"
    path.write_text("id,v\n" + "\n".join(lines) + "\n")
    sink = RowSink(ch, DB, name, [("id", "UInt32"), ("v", "String")], source="import", source_id="job-2",
                   origin="ann/rows.csv", batch_rows=5, token_prefix="job:job-2:rows")
    assert add_csv_file(sink, path, ["id", "v"], {"v"}) == 12
    sink.flush()
    assert (sink.counts.inserted, sink.counts.quarantined) == (10, 2)
    q = ch.internal_query(f"SELECT sub_index, error_type, raw FROM {DB}.{quarantine_name(name)} ORDER BY sub_index")
    assert [(r["sub_index"], r["error_type"], r["raw"]) for r in q] == [
        (7, "decode_error", "7,ok,extra"), (11, "type_mismatch", "x,ok")]
    got = ch.internal_query(f"SELECT id, v FROM {DB}.{name} WHERE id = 12")
    assert got[0]["v"] == "two\nlines"
