"""A paused source shows how far behind its stream it really is, not its last running figure (0.0 s)."""

from __future__ import annotations

import re
import uuid

from helpers import wait_until

from helios_core import sources
from helios_core.ddl import TableOptions
from helios_core.ingest.lag import unread_lag_ms
from helios_core.ingest.store import Checkpoint
from helios_core.schema import ColumnSpec


def test_paused_source_shows_the_real_lag(open_page, ch, aws_conn, moto_server):
    from helios_core.ingest.control import delete
    from helios_core.ingest.manager import get_ingest_manager

    stream = f"lag_{uuid.uuid4().hex[:8]}"
    kinesis = aws_conn.client("kinesis")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    created = sources.create_table_and_source(ch, sources.CreateRequest(
        stream_name=stream, stream_arn=f"arn:aws:kinesis:eu-west-1:123456789012:stream/{stream}",
        columns=[ColumnSpec("k", "String", "k", required=True)],
        options=TableOptions(database="lag_test", table=stream, order_by=["k"], create_database=True),
        connection=sources.Connection(region="eu-west-1", endpoint_url=moto_server)))
    source = sources.pause_source(ch, created.source_id)
    try:
        put = kinesis.put_record(StreamName=stream, Data=b'{"k": "unread"}', PartitionKey="p")
        manager = get_ingest_manager()
        manager.register_connection(source.id, aws_conn)  # the test's moto keys (the default chain has none)
        wait_until(lambda: (manager.stopped_lag(source.id, max_age_s=0) or 0) >= 1500,
                   message="the paused source's lag is measured from its checkpoint")
        metrics = manager.metrics_for(source.id)
        assert metrics["lag_measured"] and metrics["millis_behind"] >= 1500

        at = open_page("pages/sources.py")
        shown = {m.label: m.value for m in at.metric}
        assert shown["Behind stream tip"] not in ("0.0 s", "unknown"), shown
        listed = next(d.value for d in at.dataframe if "createdOn" in d.value.columns)
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", v) for v in listed["createdOn"])

        # once everything is read (checkpoint at the last record), a stopped source is not behind
        caught_up = {put["ShardId"]: Checkpoint(put["ShardId"], committed_seq=put["SequenceNumber"])}
        assert unread_lag_ms(source, kinesis, caught_up) == 0
    finally:
        delete(ch, source.id, drop_table=True)
        kinesis.delete_stream(StreamName=stream)
