""""Explain these errors": a summary of quarantined rows, offline by default.

The input is a DataFrame of quarantine rows with the columns ``error_type``,
``error_message``, ``column_name`` and ``raw`` (the raw payload); other columns
are ignored and missing ones are treated as empty. The summary gives counts by
error type and by column, typical examples and the likely fix for each kind of
error. The wording of the fixes is keyed on words in the error type and
message, so it works whatever exact error names the ingester uses.

An LLM provider may add a narrative, but only from the counts and messages;
raw payloads are sent only when the user allows it (they can hold personal data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from helios_core.chat.providers import LLMProvider
from helios_core.wording import plural

EXAMPLES_PER_GROUP = 2
RAW_PREVIEW = 160

# (words in the error type or message, what probably happened, what to do)
_FIXES: list[tuple[tuple[str, ...], str, str]] = [
    (("json", "decode", "malformed", "invalid payload", "utf", "unparseable", "not an object"),
     "the payload is not valid JSON (or not a JSON object)",
     "Fix the producer's encoding (one JSON object per record, UTF-8), or choose the right payload format "
     "(gzip JSON, JSON lines) for the source."),
    (("missing", "required", "null", "absent", "not nullable"),
     "a required field is missing or null",
     "Make the column Nullable or give it a DEFAULT, or fix the producer so it always sends the field."),
    (("overflow", "out of range", "range", "too large", "too big", "negative"),
     "a number does not fit the column's type",
     "Widen the column type (e.g. UInt32 → UInt64/Int64, or Float64), or fix the values at the source."),
    (("date", "time", "timestamp", "datetime"),
     "a date/time value is in a format the column does not accept",
     "Send ISO-8601 or epoch values consistently, or change the column to String and parse it in queries."),
    (("type", "cannot parse", "convert", "mismatch", "invalid", "parse", "cast", "expected"),
     "a value has the wrong type for its column",
     "Change the column type to accept the values (e.g. String or Nullable), or fix the producer's types."),
    (("unknown", "unexpected", "extra", "new field", "schema"),
     "events carry fields the table does not know",
     "Add the new columns to the table (and the source's schema), or ignore unknown fields."),
    (("size", "length", "too long", "limit"),
     "a value or record is larger than allowed",
     "Raise the limit for that column or truncate the value at the source."),
]


@dataclass
class ErrorGroup:
    error_type: str
    column_name: str
    count: int
    examples: list[dict[str, str]] = field(default_factory=list)
    cause: str = ""
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"error_type": self.error_type, "column_name": self.column_name, "count": self.count,
                "examples": self.examples, "cause": self.cause, "fix": self.fix}


@dataclass
class ErrorSummary:
    total: int
    by_type: dict[str, int]
    by_column: dict[str, int]
    groups: list[ErrorGroup]
    text: str
    narrative: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "by_type": self.by_type, "by_column": self.by_column,
                "groups": [g.to_json() for g in self.groups], "text": self.text, "narrative": self.narrative}

    def to_markdown(self) -> str:
        lines = [self.text, ""]
        for g in self.groups:
            where = f" in `{g.column_name}`" if g.column_name else ""
            lines.append(f"- **{g.error_type}**{where}: {plural(g.count, 'row')} — {g.cause}. *Fix:* {g.fix}")
            for ex in g.examples:
                lines.append(f"  - e.g. {ex['message']}" + (f" · `{ex['raw']}`" if ex.get("raw") else ""))
        if self.narrative:
            lines += ["", self.narrative]
        return "\n".join(lines)


# The ingester's error types (helios_core.ddl.ERROR_TYPES) → (cause, fix); other names fall back to keywords.
_KNOWN: dict[str, tuple[str, str]] = {
    "decode_error": ("the payload is not JSON, gzip JSON or JSON lines",
                     "Check the producer's encoding, or pick the payload format the stream really uses "
                     "(Sources page → rules)."),
    "not_an_object": ("the events are JSON but not objects (arrays or bare values)",
                      "Send one JSON object per event, or unwrap arrays in the producer."),
    "missing_required": ("a required field is missing or null",
                         "Make the column Nullable or give it a default (Sources page → rules), or fix the "
                         "producer so it always sends the field."),
    "type_mismatch": ("values do not fit the column's type",
                      "Widen the column type (e.g. String, Float64, Nullable) or fix the producer's values; "
                      "then re-process the quarantined rows."),
    "not_allowed": ("values are outside the column's allowed list",
                    "Add the new values to the allowed list (Sources page → rules), then re-process."),
    "bad_format": ("values do not match the column's format (uuid, iso_time, …)",
                   "Relax the format rule or fix the producer's format, then re-process."),
    "too_large": ("records are larger than Helios accepts",
                  "Split large records in the producer, or raise the size limit."),
    "rejected_by_clickhouse": ("ClickHouse refused rows on insert",
                               "Read the message (often a type or constraint problem) and adjust the table."),
    "import_error": ("an import job could not load these rows",
                     "Check the file's format and columns against the table, then run the import again."),
}


def likely_fix(error_type: str, message: str = "") -> tuple[str, str]:
    if error_type in _KNOWN:
        return _KNOWN[error_type]
    text = f"{error_type} {message}".lower().replace("_", " ")
    for words, cause, fix in _FIXES:
        if any(w in text for w in words):
            return cause, fix
    return ("the ingester could not store these events",
            "Read the example messages; fix the producer or adjust the table's schema to match the events.")


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


def explain_errors(frame: pd.DataFrame, provider: LLMProvider | None = None, allow_raw: bool = False,
                   max_groups: int = 10) -> ErrorSummary:
    """Summarise quarantined rows: counts by error type and column, examples, likely fixes."""
    data = frame.copy() if frame is not None else pd.DataFrame()
    if "raw" not in data.columns and "example_raw" in data.columns:  # the unique-errors view
        data["raw"] = data["example_raw"]
    for column in ("error_type", "error_message", "column_name", "raw"):
        if column not in data.columns:
            data[column] = ""
        data[column] = data[column].map(_text)
    data["error_type"] = data["error_type"].replace("", "unknown")
    # The "unique errors" view has one row per distinct error with its number of ``occurrences``.
    weights = pd.to_numeric(data["occurrences"], errors="coerce").fillna(1) if "occurrences" in data.columns \
        else pd.Series(1, index=data.index)
    data["_n"] = weights.astype("int64") if len(data) else weights
    total = int(data["_n"].sum()) if len(data) else 0
    if total == 0:
        return ErrorSummary(0, {}, {}, [], "There are no quarantined rows in view.")
    by_type = data.groupby("error_type", sort=False)["_n"].sum().sort_values(ascending=False, kind="stable").to_dict()
    by_column = data.loc[data["column_name"] != ""].groupby("column_name", sort=False)["_n"].sum() \
        .sort_values(ascending=False, kind="stable").to_dict()
    groups: list[ErrorGroup] = []
    counted = data.groupby(["error_type", "column_name"], sort=False)["_n"].sum() \
        .sort_values(ascending=False, kind="stable")
    for (etype, column), count in counted.head(max_groups).items():
        rows = data[(data["error_type"] == etype) & (data["column_name"] == column)]
        examples = []
        for message, sample in rows.groupby("error_message", sort=False):
            raw = sample["raw"].iloc[0]
            examples.append({"message": message or "(no message)",
                             "raw": raw[:RAW_PREVIEW] + ("…" if len(raw) > RAW_PREVIEW else "")})
            if len(examples) >= EXAMPLES_PER_GROUP:
                break
        cause, fix = likely_fix(etype, " ".join(e["message"] for e in examples))
        groups.append(ErrorGroup(etype, column, int(count), examples, cause, fix))
    top_type, top_count = next(iter(by_type.items()))
    share = top_count / total
    text = (f"{plural(total, 'quarantined row')} in {plural(len(by_type), 'error type')}; "
            f"the most common is {top_type} ({top_count:,}, {share:.0%})")
    if by_column:
        top_col, col_count = next(iter(by_column.items()))
        text += f", and the column with the most errors is {top_col} ({col_count:,})"
    # The fix of the most common type itself: its largest type+column group may be of another type.
    top_messages = " ".join(data.loc[data["error_type"] == top_type, "error_message"].head(EXAMPLES_PER_GROUP * 5))
    text += f". Likely fix for {top_type}: {likely_fix(top_type, top_messages)[1]}"
    summary = ErrorSummary(total, {k: int(v) for k, v in by_type.items()},
                           {k: int(v) for k, v in by_column.items()}, groups, text)
    if provider is not None:
        summary.narrative = _narrative(provider, summary, allow_raw)
    return summary


def _narrative(provider: LLMProvider, summary: ErrorSummary, allow_raw: bool) -> str:
    facts = summary.to_json()
    if not allow_raw:
        for g in facts["groups"]:
            for ex in g["examples"]:
                ex.pop("raw", None)
    prompt = ("Quarantined events (rows an ingester could not store), summarised as JSON:\n"
              f"{facts}\n\nIn at most five sentences, explain to an analyst what went wrong and what to fix first. "
              "Use only the numbers given.")
    try:
        return provider.complete("You explain data-ingestion errors plainly and briefly.", prompt).strip()
    except Exception as exc:  # the offline summary stands on its own
        return f"(The {provider.name} model could not add an explanation: {exc})"
