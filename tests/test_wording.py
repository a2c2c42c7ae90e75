"""Counts are worded for people: "1 row", never "1 rows" or "row(s)"."""

from __future__ import annotations

import pandas as pd

from helios_core.chat.explain import explain_errors
from helios_core.chat.summary import summarize
from helios_core.wording import duration, plural, when


def test_plural_duration_and_when():
    assert (plural(1, "row"), plural(0, "row"), plural(2500, "row")) == ("1 row", "0 rows", "2,500 rows")
    assert plural(3, "entry", "entries") == "3 entries"
    assert (duration(4.25), duration(125), duration(7260)) == ("4.2 s", "2 min 5 s", "2 h 1 min")
    assert when("2025-01-31T14:05:09.123456+00:00") == "2025-01-31 14:05:09 UTC"


def test_one_quarantined_row_is_one_row():
    summary = explain_errors(pd.DataFrame([{"error_type": "decode_error", "error_message": "not JSON",
                                            "column_name": "", "raw": "x"}]))
    text = summary.to_markdown()
    assert text.startswith("1 quarantined row in 1 error type;") and ": 1 row —" in text and "1 rows" not in text


def test_a_one_row_listing_in_a_chat_answer_says_row():
    frame = pd.DataFrame({"a": ["x"], "b": ["y"], "c": ["z"], "d": ["w"], "e": ["v"]})
    sentence = summarize(frame, list(frame.columns), ["String"] * 5, description="purchases")
    assert "1 rows" not in sentence
