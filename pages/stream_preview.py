"""Stream preview: sample events from every shard, see them decoded, and the schema Helios infers."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import orjson
import pandas as pd
import plotly.express as px
import streamlit as st

from helios_core.aws import AwsConnection
from helios_core.schema import InferredSchema, clickhouse_describe, infer_schema
from helios_core.streams import DEFAULT_SAMPLE, MAX_SAMPLE, Sample, sample_stream
from helios_core.wording import plural
from pages._shared import (
    PREVIEW_STREAM_KEY,
    open_wizard,
    require_aws_connection,
    runtime,
    sandbox_badge,
    stream_names,
    user_errors,
)

_STARTS = {"TRIM_HORIZON (oldest stored)": "trim_horizon", "LATEST (wait for new events)": "latest",
           "AT_TIMESTAMP (from a time)": "at_timestamp"}


@dataclass
class SampleChoice:
    """What to sample: the stream, how many events, where to start, and how long to wait for them."""
    stream: str
    n: int
    start: str
    at: datetime | None = None
    wait_s: float = 10.0


def sample_controls(names: list[str]) -> SampleChoice:
    if st.session_state.get(PREVIEW_STREAM_KEY) not in names:
        st.session_state[PREVIEW_STREAM_KEY] = names[0]
    c1, c2, c3 = st.columns([2, 1, 2])
    stream = c1.selectbox("Stream", names, key=PREVIEW_STREAM_KEY)
    n = c2.number_input("Events", min_value=1, max_value=MAX_SAMPLE, value=DEFAULT_SAMPLE, step=100, key="preview_n")
    start_label = c3.selectbox("Start position", list(_STARTS), key="preview_start")
    choice = SampleChoice(stream=stream, n=int(n), start=_STARTS[start_label])
    if choice.start == "latest":
        choice.wait_s = float(st.slider("Wait for events up to (seconds)", 1, 120, 10, key="preview_wait"))
    elif choice.start == "at_timestamp":
        now = datetime.now(UTC) - timedelta(hours=1)
        d1, d2 = st.columns(2)
        day = d1.date_input("Date (UTC)", value=now.date(), key="preview_at_date")
        clock = d2.time_input("Time (UTC)", value=time(now.hour, now.minute), key="preview_at_time")
        choice.at = datetime.combine(day, clock, tzinfo=UTC)
    return choice


def take_sample(conn: AwsConnection, choice: SampleChoice) -> None:
    """Sample with a progress bar; the sample and its inferred schema stay in the session until the next one."""
    with user_errors():
        with st.status(f"Reading {choice.stream} from every open shard…", expanded=True) as status:
            bar = st.progress(0.0, text="Starting…")
            sample = sample_stream(conn, choice.stream, n=choice.n, start=choice.start, at=choice.at,
                                   wait_s=choice.wait_s,
                                   progress=lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0),
                                                                                   text=message))
            schema = infer_schema(sample.events)
            status.update(label=f"{plural(len(sample.events), 'event')}, {len(sample.undecodable)} undecodable, "
                                f"from {plural(len(sample.shards), 'shard')} in {sample.elapsed_s:.1f} s",
                          state="complete", expanded=False)
        st.session_state["preview_sample"] = sample
        st.session_state["preview_schema"] = schema
        st.session_state.pop("preview_describe", None)


def display_frame(rows: list[dict]) -> pd.DataFrame:
    """Nested objects flattened to dotted columns; lists and mixed-type columns shown as text."""
    frame = pd.json_normalize(rows, sep=".") if rows else pd.DataFrame()
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object:
            kinds = {type(v) for v in values if v is not None and v == v}
            if len(kinds) > 1 or kinds & {list, dict}:
                frame[column] = values.map(lambda v: None if v is None else
                                           orjson.dumps(v).decode() if isinstance(v, (list, dict)) else str(v))
    return frame


def sample_summary(sample: Sample, schema: InferredSchema | None) -> None:
    m1, m2, m3, m4, m5 = st.columns(5)
    m1.metric("Events", f"{len(sample.events):,}")
    m2.metric("Records read", f"{sample.records_read:,}")
    m3.metric("Undecodable", f"{len(sample.undecodable):,}")
    m4.metric("Shards", len(sample.shards))
    m5.metric("Columns inferred", len(schema.columns) if schema else 0)
    for note in sample.notes:
        st.info(note, icon=":material/info:")
    if sample.throttled:
        st.caption(f"Kinesis throttled {sample.throttled} calls; Helios backed off and retried.")


def events_table(sample: Sample) -> None:
    if sample.events:
        st.dataframe(display_frame(sample.events), hide_index=True, width="stretch")
    else:
        st.caption("No events.")


def raw_json(sample: Sample) -> None:
    shown = sample.events[:200]
    st.code("\n".join(orjson.dumps(e).decode() for e in shown) or "(no events)", language="json")
    if len(sample.events) > len(shown):
        st.caption(f"The first {len(shown)} of {plural(len(sample.events), 'event')}, one per line.")


def record_metadata(sample: Sample) -> None:
    meta = pd.DataFrame([m.to_json() for m in sample.meta])
    if meta.empty:
        st.caption("No records.")
        return
    meta["arrival_time"] = pd.to_datetime(meta["arrival_time"], utc=True)
    st.dataframe(meta, hide_index=True, width="stretch")
    figure = px.histogram(meta, x="arrival_time", color="shard_id", nbins=40,
                          title="Sampled events by arrival time and shard")
    st.plotly_chart(figure, width="stretch")


def undecodable_records(sample: Sample) -> None:
    if sample.undecodable:
        st.warning("These records are not JSON, gzip JSON or JSON lines. The ingester sends such records to the "
                   "quarantine table; they are never dropped.", icon=":material/report:")
        st.dataframe(pd.DataFrame([u.to_json() for u in sample.undecodable]), hide_index=True, width="stretch")
    else:
        st.success("Every sampled record decoded.", icon=":material/check:")


def inferred_schema(sample: Sample, schema: InferredSchema | None) -> None:
    if schema is None or not schema.columns:
        st.caption("Nothing to infer from: sample some events first.")
        return
    st.dataframe(pd.DataFrame([{"column": c.name, "type": c.type, "JSON path": c.json_path,
                                "in every event": c.present_in_all, "required": c.required,
                                "reason": c.reason, "examples": ", ".join(c.examples)}
                               for c in schema.columns]),
                 hide_index=True, width="stretch", key="preview_schema_table",
                 column_config={"reason": st.column_config.TextColumn(width="large")})
    st.markdown(f"**Sorting key:** `({', '.join(schema.order_by)})` · "
                f"**Partition:** `{schema.partition_by or 'none'}`")
    for note in schema.notes:
        st.caption(note)
    if schema.conflicts:
        st.warning("**Type conflicts and outliers**\n\n" + "\n".join(f"- {c}" for c in schema.conflicts),
                   icon=":material/warning:")
    with st.expander("Compare with ClickHouse's own inference (DESCRIBE format JSONEachRow)"):
        compare_with_clickhouse(sample, schema)


def compare_with_clickhouse(sample: Sample, schema: InferredSchema) -> None:
    if st.button("Compare", key="preview_compare"):
        with user_errors():
            st.session_state["preview_describe"] = clickhouse_describe(runtime().clickhouse, sample.events[:1000])
    described = st.session_state.get("preview_describe")
    if described:
        theirs = {d["name"]: d["type"] for d in described}
        st.dataframe(pd.DataFrame([{"JSON path": c.json_path, "Helios": c.type,
                                    "ClickHouse": theirs.get(c.json_path.split(".")[0], "—")}
                                   for c in schema.columns]), hide_index=True, width="stretch")


def continue_to_wizard(sample: Sample, schema: InferredSchema | None) -> None:
    if st.button("Continue to create table", icon=":material/table_chart:", type="primary",
                 disabled=not (schema and schema.columns), key="preview_continue"):
        # The wizard takes the hand-over itself (its set_schema also seeds the sorting key and partition).
        open_wizard(sample.stream, schema, sample.events)


def main() -> None:
    st.title("Stream preview")
    sandbox_badge()
    conn = require_aws_connection("preview_use_sandbox")
    names = stream_names(conn)
    if not names:
        st.info("There are no streams in this account and region.")
        return
    choice = sample_controls(names)
    if st.button("Sample events", icon=":material/download:", type="primary", key="preview_run"):
        take_sample(conn, choice)
    sample: Sample | None = st.session_state.get("preview_sample")
    schema: InferredSchema | None = st.session_state.get("preview_schema")
    if sample is None or sample.stream != choice.stream:
        st.caption("Choose how many events and where to start, then sample.")
        return
    sample_summary(sample, schema)
    tab_table, tab_raw, tab_meta, tab_bad, tab_schema = st.tabs(
        ["Table", "Raw JSON", "Record metadata", f"Undecodable ({len(sample.undecodable)})", "Inferred schema"])
    with tab_table:
        events_table(sample)
    with tab_raw:
        raw_json(sample)
    with tab_meta:
        record_metadata(sample)
    with tab_bad:
        undecodable_records(sample)
    with tab_schema:
        inferred_schema(sample, schema)
    st.divider()
    continue_to_wizard(sample, schema)


main()
