"""AppTest: the Quarantine page explains the rows in view with the offline assistant."""

from __future__ import annotations

import orjson
from helpers import wait_until

from helios_core import sources
from helios_core.ddl import TableOptions
from helios_core.ingest.consumer import IngestConfig, SourceConsumer
from helios_core.sandbox import generate_events
from helios_core.schema import ColumnSpec


def test_explain_these_errors_summarises_the_quarantine(open_page, ch, aws_conn, moto_server, kinesis_stream,
                                                       ingest_by_hand):
    stream = kinesis_stream(shards=1)
    columns = [ColumnSpec("event_id", "UUID", "event_id", required=True),
               ColumnSpec("user_id", "UInt32", "user_id", required=True),
               ColumnSpec("device", "LowCardinality(String)", "device", allowed_values=["desktop", "mobile", "tablet"]),
               ColumnSpec("shard", "LowCardinality(String)", virtual="_shard_id"),
               ColumnSpec("seq", "String", virtual="_sequence_number")]
    created = sources.create_table_and_source(ch, sources.CreateRequest(
        stream_name=stream, stream_arn=f"arn:aws:kinesis:eu-west-1:123456789012:stream/{stream}", columns=columns,
        options=TableOptions(database="quarantine_page", table="events", order_by=["user_id"], create_database=True),
        connection=sources.Connection(region="eu-west-1", endpoint_url=moto_server)))
    # Paused, so the app's process-wide ingest manager (stopped for now: ingest_by_hand) leaves it alone later.
    source = sources.pause_source(ch, created.source_id)
    events = [e.event for e in generate_events("user_activity", 6, seed=3, bad_ratio=0)]
    payloads = [orjson.dumps(e) for e in events[:3]] + [orjson.dumps(dict(e, device="smart_tv")) for e in events[3:]]
    payloads.append(b"\x00\x01 not json")
    aws_conn.client("kinesis").put_records(StreamName=stream,
                                           Records=[{"Data": p, "PartitionKey": "k"} for p in payloads])
    consumer = SourceConsumer(source, ch.new_client, lambda: aws_conn.client("kinesis"),
                              IngestConfig(batch_rows=10, flush_seconds=0.1, idle_sleep=0.02), crash_hook=None).start()
    try:
        query = "SELECT count() AS n FROM quarantine_page.events_quarantine"
        wait_until(lambda: ch.internal_query(query)[0]["n"] >= 4, message="4 events in quarantine")
    finally:
        consumer.stop()
    assert ch.internal_query(query)[0]["n"] == 4

    at = open_page("pages/quarantine.py")
    at.selectbox(key="quarantine_source").set_value(source.id).run()
    assert not at.exception
    at.button(key="q_explain").click().run()
    assert not at.exception
    explanation = " ".join(m.value for m in at.markdown)
    assert "not_allowed" in explanation and "decode_error" in explanation
    assert "device" in explanation  # the failing column is named
