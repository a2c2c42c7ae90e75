""""Explain these errors" names the fix of the most common error type, and counts the unique-errors view right."""

from __future__ import annotations

import pandas as pd

from helios_core.chat.explain import _KNOWN, explain_errors


def _rows(error_type: str, column: str, message: str, n: int) -> list[dict]:
    return [{"error_type": error_type, "column_name": column, "error_message": message, "raw": "{}"}] * n


def test_the_fix_given_is_that_of_the_most_common_type():
    # type_mismatch is the most common type (8) but spread over 4 columns; decode_error is the largest group (5).
    frame = pd.DataFrame(_rows("decode_error", "", "not JSON", 5)
                         + sum((_rows("type_mismatch", c, f"{c}: bad value", 2) for c in "abcd"), []))
    summary = explain_errors(frame)
    assert summary.groups[0].error_type == "decode_error"
    assert "the most common is type_mismatch (8" in summary.text
    assert summary.text.endswith(_KNOWN["type_mismatch"][1])
    assert _KNOWN["decode_error"][1] not in summary.text


def test_unique_errors_view_counts_occurrences_not_rows():
    unique = pd.DataFrame([
        {"error_type": "not_allowed", "column_name": "device", "error_message": "smart_tv", "occurrences": 12,
         "example_raw": b'{"device": "smart_tv"}'},
        {"error_type": "decode_error", "column_name": "", "error_message": "not JSON", "occurrences": 4,
         "example_raw": b"\x00"},
        {"error_type": "not_allowed", "column_name": "device", "error_message": "fridge", "occurrences": 2,
         "example_raw": b"{}"},
        {"error_type": "missing_required", "column_name": "user_id", "error_message": "missing", "occurrences": 1,
         "example_raw": b"{}"},
    ])
    summary = explain_errors(unique)
    assert summary.total == 19
    assert summary.by_type == {"not_allowed": 14, "decode_error": 4, "missing_required": 1}
    assert summary.groups[0].count == 14 and "smart_tv" in summary.groups[0].examples[0]["raw"]
    assert summary.text.startswith("19 quarantined rows")


def test_quarantine_page_unique_view_explains_every_row(open_page, ch):
    from helios_core import sources
    from helios_core.ddl import TableOptions
    from helios_core.schema import ColumnSpec

    created = sources.create_table_and_source(ch, sources.CreateRequest(
        stream_name="explain_unique", stream_arn="arn:aws:kinesis:eu-west-1:123456789012:stream/explain_unique",
        columns=[ColumnSpec("user_id", "UInt32", "user_id", required=True)],
        options=TableOptions(database="quarantine_unique", table="events", order_by=["user_id"],
                             create_database=True),
        connection=sources.Connection(region="eu-west-1", endpoint_url="http://127.0.0.1:9")))
    source = sources.pause_source(ch, created.source_id)
    try:
        rows = ([("type_mismatch", "user_id", "user_id: 'x' is not a UInt32")] * 15
                + [("decode_error", "", "not JSON")] * 3 + [("missing_required", "user_id", "missing")])
        ch.writer.insert("events_quarantine", [[et, msg, col, "{}", f"r{i}"] for i, (et, col, msg) in enumerate(rows)],
                         column_names=["error_type", "error_message", "column_name", "raw", "record_id"],
                         database="quarantine_unique")
        at = open_page("pages/quarantine.py")
        at.selectbox(key="quarantine_source").set_value(source.id).run()
        at.toggle(key="q_unique").set_value(True).run()
        assert not at.exception, at.exception
        captions = " ".join(c.value for c in at.caption)
        assert "3 distinct errors covering 19 quarantined rows" in captions
        at.button(key="q_explain").click().run()
        explanation = " ".join(m.value for m in at.markdown)
        assert "19 quarantined rows" in explanation and "type_mismatch (15, 79%)" in explanation
    finally:
        from helios_core.ingest.control import delete
        delete(ch, source.id, drop_table=True)
