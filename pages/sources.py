"""Sources: every stream-to-table source, its status, live metrics and actions."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from helios_core import serverless
from helios_core.identifiers import qualified
from helios_core.ingest import control
from helios_core.ingest.manager import get_ingest_manager
from helios_core.ingest.store import LIVE_WITHIN_S, workers_counters
from helios_core.schema import FORMATS
from helios_core.sources import Source, list_sources, rules_from_rows
from helios_core.users import User
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

MODE_LABELS = {"app": "ingested by this Helios", "workers": "headless workers", "lambda": "AWS Lambda"}
STATUS_ICON = {"running": ":material/play_circle:", "paused": ":material/pause_circle:",
               "failed": ":material/error:"}


def source_table(all_sources: list[Source]) -> None:
    # createdOn as ISO to the second here (the seed API's shape keeps its MM-DD-YYYY for compatibility).
    frame = pd.DataFrame([{**s.to_api(), "table": f"{s.database}.{s.table}", "createdOn": when(s.created_on)}
                          for s in all_sources])
    st.dataframe(frame[["streamName", "streamType", "table", "createdOn", "status", "lastError", "id"]],
                 hide_index=True, width="stretch")


@st.fragment(run_every=2.0)
@guarded
def live_metrics(source_id: str) -> None:
    m = get_ingest_manager().metrics_for(source_id)
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


@st.fragment(run_every=5.0)
@guarded
def worker_counters(source_id: str) -> None:
    """The workers' own counters (their newest samples in helios.ingest_metrics, summed over workers)."""
    m = workers_counters(runtime().clickhouse, source_id)
    if not m.workers:
        st.caption("No worker has reported counters for this source yet (they do every 30 seconds).")
        return
    c = st.columns(5)
    c[0].metric("Records read", f"{m.records_read:,}")
    c[1].metric("Rows inserted", f"{m.rows_inserted:,}")
    c[2].metric("Rows quarantined", f"{m.rows_quarantined:,}")
    c[3].metric("Workers' lag", "—" if m.millis_behind is None else duration(m.millis_behind / 1000),
                help="How far the live workers' last reads were behind the newest event of the stream (the largest).")
    c[4].metric("Live workers", f"{m.live_workers} of {m.workers}",
                help=f"Workers that reported in the last {LIVE_WITHIN_S:.0f} seconds, of all that reported.")
    last = m.last_insert.strftime("%H:%M:%S UTC") if m.last_insert else "—"
    sample = m.last_sample.strftime("%H:%M:%S UTC") if m.last_sample else "—"
    st.caption(f"Counted by the workers since each started · last insert {last} · last report {sample} · "
               f"{m.errors:,} errors")
    if m.last_error:
        st.caption(f":material/warning: {m.last_error[:300]}")


def workers_metrics(source: Source) -> None:
    """What headless workers leave behind: rows in ClickHouse; on demand, their leases and the lag (DynamoDB)."""
    st.caption(":material/dns: Ingested by headless workers (`python -m helios_core.ingest --worker-id …`), "
               "which share the shards through leases in DynamoDB.")
    ch = runtime().clickhouse
    rows, quarantined = control.ingested_counts(ch, source)
    c = st.columns(3)
    c[0].metric("Rows in table", f"{rows:,}")
    c[1].metric("Quarantined", f"{quarantined:,}")
    worker_counters(source.id)
    if st.button("Check workers", icon=":material/monitor_heart:", key=f"src_workers_{source.id}"):
        with user_errors(stop=False):
            status = control.workers_status(ch, source, aws_connection())
            c[2].metric("Behind stream tip", "unknown" if status.lag_ms is None else duration(status.lag_ms / 1000),
                        help="The age of the oldest event no worker has read yet, from the checkpoints in the "
                             "workers' leases.")
            if status.shards:
                st.dataframe(pd.DataFrame(status.shards), hide_index=True, width="stretch")
            else:
                st.caption("No worker has taken a lease for this source yet.")


def lambda_metrics(source: Source) -> None:
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


def actions(source: Source, me: User) -> None:
    ch = runtime().clickhouse
    state = st.session_state
    a = st.columns(5)
    with user_errors(stop=False):
        if source.status == "running":
            if a[0].button("Pause", icon=":material/pause:", key=f"src_pause_{source.id}"):
                control.pause(ch, source.id, me, aws=aws_connection())
                st.rerun()
        elif a[0].button("Resume", icon=":material/play_arrow:", key=f"src_resume_{source.id}"):
            control.resume(ch, source.id, me, aws=aws_connection())  # keys live in this session only
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
        confirm_delete(source, me)


def confirm_delete(source: Source, me: User) -> None:
    state = st.session_state
    gone = {"workers": " The mapping item goes, so workers stop reading it.",
            "lambda": " The function, its event source mapping, role and secret are deleted in AWS."}
    st.warning("Delete this source? Ingestion stops." + gone.get(source.mode, "") +
               " Choose what happens to the table.")
    keep = st.radio("The table and its quarantine table", ["Keep them", "Drop them (data is lost)"],
                    key=f"src_keep_{source.id}", horizontal=True)
    d1, d2, _ = st.columns([1, 1, 4])
    if d1.button("Delete source", type="primary", key=f"src_confirm_{source.id}"):
        with user_errors(stop=False):
            control.delete(runtime().clickhouse, source.id, drop_table=keep.startswith("Drop"), user=me,
                           aws=aws_connection())
            state.pop("src_deleting", None)
            st.rerun()
    if d2.button("Cancel", key=f"src_cancel_{source.id}"):
        state.pop("src_deleting", None)
        st.rerun()


def rules_editor(source: Source, me: User) -> None:
    with st.popover("Edit validation rules", icon=":material/rule:"):
        rules = pd.DataFrame([{"column": c.name, "required": c.required,
                               "allowed_values": ", ".join(c.allowed_values), "format": c.format,
                               "default": c.default or ""} for c in source.columns])
        edited = st.data_editor(rules, hide_index=True, disabled=["column"], key=f"src_rules_{source.id}",
                                column_config={"format": st.column_config.SelectboxColumn(options=list(FORMATS))})
        if st.button("Save rules", key=f"src_rules_save_{source.id}", type="primary"):
            with user_errors(stop=False):
                control.update_rules(runtime().clickhouse, source.id, rules_from_rows(edited.to_dict(orient="records")),
                                     me, aws=aws_connection())
                where = {"workers": "the workers pick them up at their next sync",
                         "lambda": "the function uses them within a minute"}
                st.success(f"Rules saved; {where.get(source.mode, 'the consumer restarted with them')}. "
                           "Re-process quarantined rows on the Quarantine page.")


def source_panel(source: Source, me: User, expanded: bool) -> None:
    label = f"{STATUS_ICON.get(source.status, '')} {source.stream_name} → {source.database}.{source.table}"
    with st.expander(label, expanded=expanded):
        start = source.start_position + (f" ({source.start_timestamp})" if source.start_position != "TRIM_HORIZON"
                                          and source.start_timestamp else "")
        st.caption(f"Source `{source.id}` · owner {source.owner} · {source.status} · "
                   f"{MODE_LABELS.get(source.mode, source.mode)} · reads from {start} · "
                   f"stream ARN `{source.stream_arn}` · table UUID `{source.table_uuid}`")
        if source.status == "failed" and source.last_error:
            show_error(source.last_error)
        if source.mode == "workers":
            workers_metrics(source)
        elif source.mode == "lambda":
            lambda_metrics(source)
        else:
            live_metrics(source.id)
        actions(source, me)
        rules_editor(source, me)


def main() -> None:
    me = acting_user()  # every source is listed; only its owner or an admin changes it
    st.title("Sources")
    with user_errors():
        get_ingest_manager()  # started here: running app sources ingest while the page is open
        all_sources = list_sources(runtime().clickhouse)
    if not all_sources:
        st.info("No sources yet. Create a table from a stream to start ingesting.", icon=":material/conversion_path:")
        st.page_link("pages/create_table.py", label="Create a table from a stream", icon=":material/add_circle:")
        return
    source_table(all_sources)
    opened = st.session_state.get("src_open")
    for source in all_sources:
        source_panel(source, me, expanded=len(all_sources) == 1 or opened == source.id)


main()
