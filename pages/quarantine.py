"""Quarantine: the events a source could not insert, why, and re-processing after a rules fix."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from helios_core.chat.explain import explain_errors
from helios_core.export import to_csv_bytes
from helios_core.quarantine import QuarantineFilter, quarantine_rows, quarantine_summary, reprocess
from helios_core.sources import Source, list_sources
from helios_core.wording import plural
from pages._shared import QUARANTINE_SOURCE_KEY, runtime, user_errors

ch = runtime().clickhouse
state = st.session_state
WINDOWS = {"Last hour": timedelta(hours=1), "Last 24 hours": timedelta(days=1), "Last 7 days": timedelta(days=7)}


def source_picker() -> Source:
    """The source whose quarantine table to show (the hand-off's, else the first); stops when there are none."""
    with user_errors():
        all_sources = list_sources(ch)
    if not all_sources:
        st.info("No sources yet: quarantine tables belong to sources.")
        st.stop()
    ids = [s.id for s in all_sources]
    if state.get(QUARANTINE_SOURCE_KEY) not in ids:
        state[QUARANTINE_SOURCE_KEY] = ids[0]
    labels = {s.id: f"{s.database}.{s.quarantine_table}  ←  {s.stream_name}" for s in all_sources}
    source_id = st.selectbox("Quarantine table", ids, format_func=labels.get, key=QUARANTINE_SOURCE_KEY)
    return next(s for s in all_sources if s.id == source_id)


def error_counts(source: Source) -> dict[str, int]:
    """A metric per error type; returns the counts."""
    summary = quarantine_summary(ch, source)
    if summary:
        cols = st.columns(min(len(summary), 6))
        for col, (kind, n) in zip(cols, summary.items(), strict=False):
            col.metric(kind, f"{n:,}")
    else:
        st.success("Nothing in quarantine for this source.", icon=":material/check_circle:")
    return summary


def time_window(column: DeltaGenerator) -> tuple[datetime | None, datetime | None]:
    """The time range chosen in ``column``: a recent window, whole days, or all (None, None)."""
    window = column.selectbox("Time range", [*WINDOWS, "All", "Custom"], index=3, key="q_window")
    now = datetime.now(UTC)
    if window == "Custom":
        d1, d2 = column.columns(2)
        start_day = d1.date_input("From", now.date() - timedelta(days=1), key="q_from")
        end_day = d2.date_input("To", now.date(), key="q_to")
        return datetime.combine(start_day, time.min, tzinfo=UTC), datetime.combine(end_day, time.max, tzinfo=UTC)
    if window in WINDOWS:
        return now - WINDOWS[window], None
    return None, None


def filters(summary: dict[str, int]) -> QuarantineFilter:
    f1, f2, f3 = st.columns([2, 1, 2])
    since, until = time_window(f1)
    error_type = f2.selectbox("Error type", [""] + list(summary), key="q_type", format_func=lambda v: v or "any")
    text = f3.text_input("Search message, payload or column", key="q_text")
    g1, g2, _ = st.columns([1, 1, 3])
    unique = g1.toggle("Unique errors only", key="q_unique")
    limit = g2.number_input("Limit", 1, 100_000, 500, step=100, key="q_limit")
    return QuarantineFilter(since=since, until=until, error_type=error_type, text=text.strip(), unique=unique,
                            limit=int(limit))


def quarantined_rows(source: Source, flt: QuarantineFilter) -> pd.DataFrame:
    """The rows (or distinct errors) matching the filters, payloads as text; returns them."""
    frame = quarantine_rows(ch, source, flt)
    for payload in ("raw", "example_raw"):  # the unique-errors view shows an example payload instead
        if payload in frame.columns:
            frame[payload] = frame[payload].map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
    if flt.unique and "occurrences" in frame.columns:
        st.caption(f"{plural(len(frame), 'distinct error')} covering "
                   f"{plural(int(frame['occurrences'].sum()), 'quarantined row')}")
    else:
        st.caption(plural(len(frame), "row"))
    st.dataframe(frame, hide_index=True, width="stretch")
    return frame


def export_and_explain(source: Source, frame: pd.DataFrame) -> None:
    e1, e2, _ = st.columns([1, 1, 3])
    e1.download_button("Export CSV", to_csv_bytes(frame), f"{source.table}_quarantine.csv", "text/csv",
                       icon=":material/download:", key="q_csv")
    if e2.button("Explain these errors", icon=":material/psychology:", key="q_explain", disabled=frame.empty):
        # The offline assistant summarises the rows in view; nothing leaves this process.
        state["q_explanation"] = explain_errors(frame).to_markdown()
    if state.get("q_explanation"):
        with st.container(border=True):
            st.markdown(state["q_explanation"])


def reprocess_section(source: Source, flt: QuarantineFilter, summary: dict[str, int]) -> None:
    st.markdown("**Re-process** — after fixing the source's rules (Sources page), move the rows that now pass into "
                f"`{source.database}.{source.table}`. Rows that still fail stay here. Nothing is inserted twice.")
    scope = "matching the filters above" if (flt.error_type or flt.text or flt.since) else "all quarantined rows"
    if st.button(f"Re-process {scope}", type="primary", icon=":material/replay:", key="q_reprocess",
                 disabled=not summary):
        with st.status("Re-processing…") as status:
            result = reprocess(ch, source, replace(flt, unique=False, limit=100_000))
            status.update(label=f"{result.inserted:,} moved into the table, {result.still_invalid:,} still failing",
                          state="complete")
        state["q_last_result"] = result.to_json()
    if state.get("q_last_result"):
        r = state["q_last_result"]
        st.caption(f"Last re-process: examined {r['examined']:,}, moved {r['inserted']:,}, "
                   f"still failing {r['stillInvalid']:,}.")


def main() -> None:
    st.title("Quarantine")
    source = source_picker()
    with user_errors():
        summary = error_counts(source)
        flt = filters(summary)
        frame = quarantined_rows(source, flt)
        export_and_explain(source, frame)
        st.divider()
        reprocess_section(source, flt, summary)


main()
