"""Sources: every stream-to-table source, its status, live metrics and actions."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from helios_core import serverless
from helios_core.identifiers import qualified
from helios_core.ingest.manager import get_ingest_manager, pause, remove_source, resume
from helios_core.schema import FORMATS
from helios_core.sources import list_sources, update_rules
from helios_core.wording import duration, when
from pages._shared import (
    acting_user,
    aws_connection,
    guarded,
    open_in_sql_explorer,
    open_quarantine,
    open_table,
    runtime,
    show_error,
    user_errors,
)

ch = runtime().clickhouse
me = acting_user()  # every source is listed; only its owner or an admin changes it
state = st.session_state
MODE_LABELS = {"app": "ingested by this Helios", "workers": "headless workers", "lambda": "AWS Lambda"}
STATUS_ICON = {"running": ":material/play_circle:", "paused": ":material/pause_circle:",
               "failed": ":material/error:"}

st.title("Sources")
with user_errors():
    manager = get_ingest_manager()
    all_sources = list_sources(ch)

if not all_sources:
    st.info("No sources yet. Create a table from a stream to start ingesting.", icon=":material/conversion_path:")
    st.page_link("pages/create_table.py", label="Create a table from a stream", icon=":material/add_circle:")
    st.stop()

# createdOn as ISO to the second here (the seed API's shape keeps its MM-DD-YYYY for compatibility).
st.dataframe(pd.DataFrame([{**s.to_api(), "table": f"{s.database}.{s.table}", "createdOn": when(s.created_on)}
                           for s in all_sources])[
    ["streamName", "streamType", "table", "createdOn", "status", "lastError", "id"]], hide_index=True, width="stretch")


@st.fragment(run_every=2.0)
@guarded
def live_metrics(source_id: str) -> None:
    m = manager.metrics_for(source_id)
    c = st.columns(5)
    c[0].metric("Rows inserted", f"{m['rows_inserted']:,}")
    c[1].metric("Quarantined", f"{m['rows_quarantined']:,}")
    c[2].metric("Batches", f"{m['batches']:,}")
    lag = m["millis_behind"]
    c[3].metric("Behind stream tip", "unknown" if lag is None else duration(lag / 1000),
                help="Paused or stopped: the age of the oldest event the source has not read yet, measured from "
                     "its checkpoint." if m.get("lag_measured") else "How far the consumer's last read was behind "
                                                                       "the newest event of the stream.")
    c[4].metric("Errors", f"{m['errors']:,}")
    last = m["last_insert"].strftime("%H:%M:%S UTC") if m["last_insert"] else "—"
    st.caption(f"Consumer {'running' if m['running'] else 'stopped'} · last insert {last}")
    if m["last_error"]:
        st.caption(f":material/warning: {m['last_error'][:300]}")
    if m["per_minute"]:
        frame = pd.DataFrame(m["per_minute"]).melt(id_vars="minute", var_name="rows", value_name="count")
        fig = px.bar(frame, x="minute", y="count", color="rows", height=200, title="Rows per minute",
                     color_discrete_map={"inserted": "#2e7d32", "quarantined": "#ef6c00"})
        fig.update_layout(margin=dict(l=0, r=0, t=30, b=0), legend_title_text="")
        st.plotly_chart(fig, width="stretch", key=f"src_chart_{source_id}")


def outside_ingest(source) -> None:
    """Workers and Lambda ingest outside this process: say where, and what AWS can tell about it."""
    if source.mode == "workers":
        st.caption(":material/dns: Ingested by headless workers (`python -m helios_core.ingest --worker-id …`), "
                   "which share the shards through leases in DynamoDB; their counters are in their own logs.")
        return
    st.caption(":material/bolt: Ingested by an AWS Lambda function through an event source mapping.")
    conn = aws_connection()
    if conn is None:
        st.caption("Connect to AWS to see the function's mapping state and iterator age.")
        return
    if st.button("Check Lambda status", icon=":material/monitor_heart:", key=f"src_lambda_{source.id}"):
        with user_errors(stop=False):
            found = serverless.status(conn, source)
            c = st.columns(3)
            c[0].metric("Mapping state", found.state)
            c[1].metric("Last processing result", found.last_result or "—")
            c[2].metric("Iterator age", "no data" if found.iterator_age_ms is None
                        else duration(found.iterator_age_ms / 1000),
                        help="CloudWatch IteratorAge (maximum over the last 15 minutes): how far behind the "
                             "stream the function is.")


for source in all_sources:
    label = f"{STATUS_ICON.get(source.status, '')} {source.stream_name} → {source.database}.{source.table}"
    with st.expander(label, expanded=len(all_sources) == 1 or state.get("src_open") == source.id):
        start = source.start_position + (f" ({source.start_timestamp})" if source.start_position != "TRIM_HORIZON"
                                          and source.start_timestamp else "")
        st.caption(f"Source `{source.id}` · owner {source.owner} · {source.status} · "
                   f"{MODE_LABELS.get(source.mode, source.mode)} · reads from {start} · "
                   f"stream ARN `{source.stream_arn}` · table UUID `{source.table_uuid}`")
        if source.status == "failed" and source.last_error:
            show_error(source.last_error)
        if source.mode == "app":
            live_metrics(source.id)
        else:
            outside_ingest(source)
        a = st.columns(5)
        with user_errors(stop=False):
            if source.status == "running":
                if a[0].button("Pause", icon=":material/pause:", key=f"src_pause_{source.id}"):
                    pause(ch, source.id, me)
                    st.rerun()
            elif a[0].button("Resume", icon=":material/play_arrow:", key=f"src_resume_{source.id}"):
                signed_in = aws_connection()  # keys live in this session only: hand them to the consumer
                resume(ch, source.id, signed_in if signed_in is not None and signed_in.method == "keys" else None,
                       me)
                st.rerun()
        if a[1].button("Open table", icon=":material/database:", key=f"src_table_{source.id}"):
            open_table(source.database, source.table)
        if a[2].button("Open quarantine", icon=":material/report:", key=f"src_quarantine_{source.id}"):
            open_quarantine(source.id)
        if a[3].button("Query", icon=":material/terminal:", key=f"src_sql_{source.id}"):
            open_in_sql_explorer(f"SELECT *\nFROM {qualified(source.database, source.table)}\nLIMIT 100")
        if a[4].button("Delete…", icon=":material/delete:", key=f"src_delete_{source.id}"):
            state["src_deleting"] = source.id
        if state.get("src_deleting") == source.id:
            st.warning("Delete this source? Ingestion stops. Choose what happens to the table.")
            keep = st.radio("The table and its quarantine table", ["Keep them", "Drop them (data is lost)"],
                            key=f"src_keep_{source.id}", horizontal=True)
            d1, d2, _ = st.columns([1, 1, 4])
            if d1.button("Delete source", type="primary", key=f"src_confirm_{source.id}"):
                with user_errors(stop=False):
                    remove_source(ch, source.id, drop_table=keep.startswith("Drop"), user=me)
                    state.pop("src_deleting", None)
                    st.rerun()
            if d2.button("Cancel", key=f"src_cancel_{source.id}"):
                state.pop("src_deleting", None)
                st.rerun()
        with st.popover("Edit validation rules", icon=":material/rule:"):
            rules = pd.DataFrame([{"column": c.name, "required": c.required,
                                   "allowed_values": ", ".join(c.allowed_values), "format": c.format,
                                   "default": c.default or ""} for c in source.columns])
            edited = st.data_editor(rules, hide_index=True, disabled=["column"], key=f"src_rules_{source.id}",
                                    column_config={"format": st.column_config.SelectboxColumn(options=list(FORMATS))})
            if st.button("Save rules", key=f"src_rules_save_{source.id}", type="primary"):
                changes = {r["column"]: {"required": bool(r["required"]),
                                         "allowed_values": [v.strip() for v in str(r["allowed_values"] or "").split(",")
                                                            if v.strip()],
                                         "format": r["format"] or "", "default": r["default"] or None}
                           for r in edited.to_dict(orient="records")}
                with user_errors(stop=False):
                    update_rules(ch, source.id, changes, me)
                    manager.sync()
                    st.success("Rules saved; the consumer restarted with them. Re-process quarantined rows on the "
                               "Quarantine page.")
