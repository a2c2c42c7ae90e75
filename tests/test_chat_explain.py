""""Explain these errors": a summary of quarantine rows (error_type, error_message, column_name, raw)."""

from __future__ import annotations

import pandas as pd

from helios_core.chat.explain import explain_errors, likely_fix
from helios_core.chat.providers import LLMProvider


def quarantine_frame() -> pd.DataFrame:
    rows = ([{"error_type": "type_mismatch", "error_message": "amount: 'abc' is not a Float64",
              "column_name": "amount", "raw": b'{"amount": "abc", "user": "alice@example.com"}'}] * 6
            + [{"error_type": "type_mismatch", "error_message": "user_id: -1 is not a UInt32",
                "column_name": "user_id", "raw": '{"user_id": -1}'}] * 2
            + [{"error_type": "decode_error", "error_message": "Expecting value: line 1 column 1",
                "column_name": "", "raw": "not json"}] * 3
            + [{"error_type": "missing_required", "error_message": "event_time is missing",
                "column_name": "event_time", "raw": "{}"}])
    return pd.DataFrame(rows).assign(received_at=pd.Timestamp("2024-01-01"))


def test_counts_examples_and_fixes():
    summary = explain_errors(quarantine_frame())
    assert summary.total == 12
    assert summary.by_type == {"type_mismatch": 8, "decode_error": 3, "missing_required": 1}
    assert summary.by_column == {"amount": 6, "user_id": 2, "event_time": 1}
    first = summary.groups[0]
    assert (first.error_type, first.column_name, first.count) == ("type_mismatch", "amount", 6)
    assert first.examples[0]["message"].startswith("amount: 'abc'") and "abc" in first.examples[0]["raw"]
    assert "type" in first.fix.lower()
    assert "12 quarantined rows" in summary.text and "type_mismatch (8, 67%)" in summary.text
    markdown = summary.to_markdown()
    assert "**decode_error**" in markdown and "**missing_required** in `event_time`" in markdown


def test_empty_and_partial_frames():
    assert explain_errors(pd.DataFrame()).total == 0
    partial = explain_errors(pd.DataFrame({"error_type": ["weird_thing"], "error_message": ["cannot parse date"]}))
    assert partial.total == 1 and partial.groups[0].column_name == ""
    assert likely_fix("unknown_kind", "value out of range")[0].startswith("a number does not fit")


class RecordingLLM(LLMProvider):
    name = "recording"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def complete(self, system: str, prompt: str) -> str:
        self.prompts.append(prompt)
        return "Mostly bad amounts: fix the producer."


def test_an_llm_narrative_never_sees_raw_payloads_unless_allowed():
    llm = RecordingLLM()
    summary = explain_errors(quarantine_frame(), provider=llm)
    assert summary.narrative == "Mostly bad amounts: fix the producer."
    assert "alice@example.com" not in llm.prompts[0] and "type_mismatch" in llm.prompts[0]
    explain_errors(quarantine_frame(), provider=llm, allow_raw=True)
    assert "alice@example.com" in llm.prompts[1]
