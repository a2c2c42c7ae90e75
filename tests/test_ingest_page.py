"""AppTest: a source connected with access keys, after a restart, on the Sources page: it says it needs a
new sign-in (keys are never stored) and resumes with the keys of the user's current session."""

from __future__ import annotations

import uuid

from helpers import APPTEST_TIMEOUT, wait_until
from streamlit.testing.v1 import AppTest

from helios_core import sources
from helios_core.ddl import TableOptions
from helios_core.schema import ColumnSpec


def test_keys_source_needs_sign_in_after_restart_and_resumes_from_the_page(app_path, ch, aws_conn, moto_server):
    from helios_core.aws import AwsConnection
    from helios_core.ingest.control import delete
    from helios_core.ingest.manager import get_ingest_manager

    keys = AwsConnection(region="eu-west-1", access_key_id="AKIAPAGETEST0042", secret_access_key="page-secret-x1",
                         endpoint_url=moto_server)
    stream = f"page_{uuid.uuid4().hex[:8]}"
    kinesis = aws_conn.client("kinesis")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    req = sources.CreateRequest(
        stream_name=stream, stream_arn=f"arn:aws:kinesis:eu-west-1:123456789012:stream/{stream}",
        columns=[ColumnSpec("k", "String", "k", required=True)],
        options=TableOptions(database="ingest_page_test", table="keyed", order_by=["k"], create_database=True),
        connection=sources.Connection.from_aws(keys))
    source_id = sources.create_table_and_source(ch, req).source_id  # as if made before a restart: no keys here
    try:
        at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT).run()
        get_ingest_manager().sync()
        assert sources.get_source(ch, source_id).status == "failed"
        at.switch_page("pages/sources.py").run()
        assert not at.exception, at.exception
        errors = " ".join(str(e.value) for e in at.error)
        assert "Open Connect and sign in again; Helios never stores keys" in errors

        at.session_state["aws_connection"] = keys  # the user signed in again (Connect page)
        at.button(key=f"src_resume_{source_id}").click().run()
        assert not at.exception, at.exception
        assert sources.get_source(ch, source_id).status == "running"
        kinesis.put_record(StreamName=stream, Data=b'{"k": "after sign-in"}', PartitionKey="p")
        wait_until(lambda: ch.internal_query("SELECT count() AS n FROM ingest_page_test.keyed")[0]["n"],
                   message="the event put after the sign-in")
        assert ch.internal_query("SELECT k FROM ingest_page_test.keyed") == [{"k": "after sign-in"}]
    finally:
        delete(ch, source_id, drop_table=True)
        kinesis.delete_stream(StreamName=stream)


def test_workers_and_lambda_sources_are_paused_and_resumed_from_the_page(app_path, ch, aws_conn, kinesis_stream):
    from helios_core import serverless
    from helios_core.ingest.control import delete
    from helios_core.ingest.mapping import MappingStore
    from tests.test_source_control import item, make_source

    mappings = MappingStore(aws_conn.session().resource("dynamodb", endpoint_url=aws_conn.endpoint_url),
                            f"helios-sources-{uuid.uuid4().hex[:6]}")
    mappings.ensure_table()
    workers = make_source(ch, aws_conn, kinesis_stream(shards=1), "workers", mappings)
    lam = make_source(ch, aws_conn, kinesis_stream(shards=1), "lambda")
    done = serverless.deploy(aws_conn, lam, "https://w:pw@clickhouse.example.com:8443",
                             serverless.LambdaOptions(mapping_table=mappings.table_name),
                             code=serverless.package_bytes(with_requirements=False))
    try:
        at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT).run()
        at.session_state["aws_connection"] = aws_conn  # signed in with the keys the sources were made with
        at.switch_page("pages/sources.py").run()
        assert not at.exception, at.exception
        shown = {m.label for m in at.metric}
        assert {"Rows in table", "Quarantined"} <= shown
        others = [e.value for e in at.error]  # sources of earlier tests in this engine may show theirs

        at.button(key=f"src_pause_{workers.id}").click().run()
        at.button(key=f"src_pause_{lam.id}").click().run()
        assert not at.exception, at.exception
        assert [e.value for e in at.error] == others
        assert item(mappings, workers)["status"] == "paused" and item(mappings, lam)["status"] == "paused"
        assert aws_conn.client("lambda").get_event_source_mapping(UUID=done.mapping_uuid)["State"] == "Disabled"

        at.button(key=f"src_lambda_{lam.id}").click().run()
        assert {m.label: m.value for m in at.metric}["Mapping state"] == "Disabled"
        at.button(key=f"src_workers_{workers.id}").click().run()
        assert [e.value for e in at.error] == others
        assert "Behind stream tip" in {m.label for m in at.metric}

        at.button(key=f"src_resume_{workers.id}").click().run()
        at.button(key=f"src_resume_{lam.id}").click().run()
        assert item(mappings, workers)["status"] == "running" and item(mappings, lam)["status"] == "running"
        assert aws_conn.client("lambda").get_event_source_mapping(UUID=done.mapping_uuid)["State"] == "Enabled"
        assert sources.get_source(ch, lam.id).status == "running"
    finally:
        for source in (workers, lam):
            delete(ch, source.id, drop_table=True, aws=aws_conn)


def test_workers_source_shows_the_counters_its_workers_sampled(app_path, ch, aws_conn, kinesis_stream):
    from datetime import UTC, datetime, timedelta

    from helios_core.ingest.control import delete
    from helios_core.ingest.store import insert_metrics
    from helios_core.wording import duration
    from tests.test_source_control import make_source

    source = make_source(ch, aws_conn, kinesis_stream(shards=1), "workers")
    try:
        at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT).run()
        at.session_state["src_open"] = source.id
        at.switch_page("pages/sources.py").run()
        assert not at.exception, at.exception
        assert any("No worker has reported counters" in c.value for c in at.caption)

        now = datetime.now(UTC)
        base = {"source_id": source.id, "batches": 4, "errors": 0, "last_error": "", "last_insert": now}
        client = ch.new_client()  # as a worker writes them: its own client, straight into helios.ingest_metrics
        try:
            insert_metrics(client, [
                {**base, "ts": now - timedelta(seconds=10), "worker_id": "pw-a", "rows_inserted": 10,
                 "rows_quarantined": 1, "records_read": 11, "millis_behind": 0},
                {**base, "ts": now, "worker_id": "pw-a", "rows_inserted": 1000, "rows_quarantined": 30,
                 "records_read": 1030, "millis_behind": 2000},
                {**base, "ts": now - timedelta(hours=1), "worker_id": "pw-b", "rows_inserted": 234,
                 "rows_quarantined": 4, "records_read": 238, "millis_behind": 90_000}])
        finally:
            client.close()
        at.run()
        assert not at.exception, at.exception
        shown = {m.label: m.value for m in at.metric}
        assert shown["Rows inserted"] == "1,234" and shown["Rows quarantined"] == "34"
        assert shown["Records read"] == "1,268"
        assert shown["Live workers"] == "1 of 2", "pw-b's newest sample is an hour old"
        assert shown["Workers' lag"] == duration(2.0), "the lag of the live worker only"
        assert {"Rows in table", "Quarantined"} <= set(shown), "the ClickHouse counts stay beside them"
    finally:
        delete(ch, source.id, drop_table=True, aws=aws_conn)
