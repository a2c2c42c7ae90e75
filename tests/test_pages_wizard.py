"""AppTest: the table wizard end to end on the sandbox, then the Sources and Quarantine pages."""

from __future__ import annotations

from helpers import APPTEST_TIMEOUT, click, page_texts, wait_until, wizard_to_review
from streamlit.testing.v1 import AppTest


def test_wizard_end_to_end_on_the_sandbox(app_path, ch, aws_sandbox):
    at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT)
    at.session_state["aws_connection"] = aws_sandbox.connection()
    at.run()
    at.switch_page("pages/create_table.py").run()
    assert not at.exception, at.exception
    assert "Step 1 of 6" in at.get("progress")[0].proto.text
    at.selectbox(key="wiz_stream_select").set_value("user_activity").run()
    click(at, "wiz_next_0")                            # 2: sample + schema (samples by itself)
    assert "Sample events" in page_texts(at)
    click(at, "wiz_next_1")                            # 3: edit schema
    cols = {r["name"]: r for r in at.session_state["wiz_columns"]}
    assert "user_id" in cols and "event_type" in cols
    at.selectbox(key="wiz_quick_col").set_value("user_id")
    at.text_input(key="wiz_quick_name").set_value("customer_id")
    at.selectbox(key="wiz_quick_type").set_value("UInt64")
    click(at, "wiz_quick_apply")
    cols = {r["name"]: r for r in at.session_state["wiz_columns"]}
    assert cols["customer_id"]["type"] == "UInt64" and cols["customer_id"]["json_path"] == "user_id"
    at.multiselect(key="wiz_virtual").set_value(["_shard_id"]).run()
    click(at, "wiz_next_2")                            # 4: options
    at.radio(key="wiz_db_mode").set_value("New").run()
    at.text_input(key="wiz_new_db").set_value("wizard_db")
    at.text_input(key="wiz_table").set_value("activity")
    at.multiselect(key="wiz_order_by").set_value(["event_type", "customer_id"]).run()
    click(at, "wiz_back_3")                            # going back keeps the edits
    assert any(r["name"] == "customer_id" for r in at.session_state["wiz_columns"])
    click(at, "wiz_next_2")
    assert at.text_input(key="wiz_table").value == "activity"
    at.multiselect(key="wiz_order_by").set_value([]).run()
    click(at, "wiz_next_3")                            # 5: review, no sorting key chosen: the time column
    assert not at.error, [e.value for e in at.error]
    assert any("Sorting key: timestamp" in c.value and "time column" in c.value for c in at.caption)
    assert "ORDER BY (`timestamp`)" in " ".join(c.value for c in at.code)
    click(at, "wiz_back_4")
    at.multiselect(key="wiz_order_by").set_value(["event_type", "customer_id"]).run()
    click(at, "wiz_next_3")                            # 5: review
    assert not at.error, [e.value for e in at.error]
    ddl = " ".join(c.value for c in at.code)
    assert "CREATE TABLE `wizard_db`.`activity`" in ddl and "ORDER BY (`event_type`, `customer_id`)" in ddl
    assert "`customer_id` UInt64" in ddl and "`activity_quarantine`" in ddl
    click(at, "wiz_create")                            # 6: created
    result = at.session_state["wiz_result"]
    assert result["success"] and result["tableUUID"] and result["streamARN"].endswith("stream/user_activity")
    info = ch.internal_query("SELECT sorting_key FROM system.tables WHERE database = 'wizard_db' AND name = 'activity'")
    assert info[0]["sorting_key"] == "event_type, customer_id"

    at.switch_page("pages/sources.py").run()
    assert not at.exception, at.exception
    listed = next(d.value for d in at.dataframe if "streamName" in d.value.columns)
    row = listed[listed["table"] == "wizard_db.activity"].iloc[0]
    assert row["streamName"] == "user_activity" and row["status"] == "running"

    # events flow from the sandbox into the table
    wait_until(lambda: ch.internal_query("SELECT count() AS n FROM wizard_db.activity")[0]["n"] > 0,
               message="sandbox events in wizard_db.activity")

    source_id = result["sourceId"]
    click(at, f"src_quarantine_{source_id}")
    at.switch_page("pages/quarantine.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="quarantine_source").value == source_id

    at.switch_page("pages/sources.py").run()
    click(at, f"src_pause_{source_id}")
    from helios_core.sources import get_source
    assert get_source(ch, source_id).status == "paused"
    click(at, f"src_delete_{source_id}")
    at.radio(key=f"src_keep_{source_id}").set_value("Drop them (data is lost)").run()
    click(at, f"src_confirm_{source_id}")
    assert not ch.internal_query("SELECT name FROM system.tables WHERE database = 'wizard_db'")


def test_wizard_lambda_mode_gives_a_cloudformation_template_and_sources_say_who_ingests(app_path, ch, aws_sandbox):
    """Issue 13: the wizard offers in-app, headless workers or Lambda; Lambda on the embedded engine can only be
    written as a template (AWS cannot reach an in-process engine), which the result page offers for download."""
    at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT)
    at.session_state["aws_connection"] = aws_sandbox.connection()
    at.run()
    at.switch_page("pages/create_table.py").run()
    at.selectbox(key="wiz_stream_select").set_value("user_activity").run()
    click(at, "wiz_next_0")
    click(at, "wiz_next_1")
    click(at, "wiz_next_2")
    at.radio(key="wiz_db_mode").set_value("New").run()
    at.text_input(key="wiz_new_db").set_value("wizard_lambda")
    at.text_input(key="wiz_table").set_value("activity")
    at.radio(key="wiz_mode").set_value("lambda").run()
    assert not at.exception, at.exception
    click(at, "wiz_next_3")
    click(at, "wiz_create")                   # deploy now: refused up front on the embedded engine
    assert any("embedded engine" in e.value for e in at.error), [e.value for e in at.error]
    assert not ch.internal_query("SELECT 1 FROM system.databases WHERE name = 'wizard_lambda'")
    click(at, "wiz_back_4")
    at.radio(key="wiz_lambda_how").set_value("template").run()
    click(at, "wiz_next_3")
    assert "AWS Lambda" in page_texts(at)
    click(at, "wiz_create")
    result = at.session_state["wiz_result"]
    resources = result["cloudFormation"]["Resources"]
    assert resources["EventSourceMapping"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert any(b.label == "Download template" for b in at.get("download_button"))

    at.switch_page("pages/sources.py").run()
    assert not at.exception, at.exception
    assert "AWS Lambda" in page_texts(at)
    from helios_core.ingest.manager import get_ingest_manager
    assert result["sourceId"] not in get_ingest_manager().consumers, "Lambda sources are not read in the app"


def test_the_created_source_keeps_the_streams_real_arn(app_path, ch, aws_sandbox):
    """The stream list may carry no ARNs (ListStreams without StreamSummaries): the wizard asks Kinesis for it
    (DescribeStreamSummary) instead of writing one with account 000000000000."""
    from helios_core.aws import StreamInfo
    from helios_core.ingest.control import delete
    from helios_core.sources import get_source

    conn = aws_sandbox.connection()
    at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT)
    at.session_state["aws_connection"] = conn
    at.session_state["aws_streams"] = [StreamInfo(name) for name in ("captcha_events", "purchase_events")]
    at.run()
    wizard_to_review(at, "purchase_events", "wizard_arn")
    click(at, "wiz_create")
    result = at.session_state["wiz_result"]
    try:
        summary = conn.client("kinesis").describe_stream_summary(StreamName="purchase_events")
        real = summary["StreamDescriptionSummary"]["StreamARN"]
        assert ":000000000000:" not in real
        assert result["streamARN"] == real and get_source(ch, result["sourceId"]).stream_arn == real
        assert f"`{real}`" in page_texts(at)
    finally:
        delete(ch, result["sourceId"], drop_table=True)
