from datetime import datetime, timezone

import streamlit as st

from helios_core.charts import CHART_KINDS, ChartSpec, build_chart, suggest_chart
from helios_core.errors import HeliosError
from helios_core.export import to_csv_bytes, to_parquet_bytes
from pages._shared import acting_user, format_bytes, runtime, show_error

ch = runtime().clickhouse
settings = ch.settings
state = st.session_state
state.setdefault("sql_editor", "SELECT event_type, count() AS events\nFROM demo.user_activity\nGROUP BY event_type\n"
                               "ORDER BY events DESC")
state.setdefault("sql_history", [])
state.setdefault("sql_read_only", True)
after_write = state.pop("sql_restore_read_only", False)
if after_write:
    state["sql_read_only"] = True  # writes are allowed for one query only


def request_run() -> None:
    state["sql_run_requested"] = True


st.title("SQL explorer")
st.text_area("SQL", key="sql_editor", height=180, on_change=request_run,
             help="Ctrl+Enter runs the query. Queries are read-only unless you turn that off below.")

c1, c2, c3 = st.columns([1, 1, 2])
limit = c1.number_input("Row limit", min_value=1, max_value=settings.max_result_rows,
                        value=min(1000, settings.max_result_rows), step=100, key="sql_limit")
read_only = c2.toggle("Read-only", key="sql_read_only",
                      help="Turn off only to run a statement that changes data (DDL, INSERT), for this query.")
if not read_only:
    st.warning("Read-only is off: the next query can change or delete data.", icon=":material/warning:")
run_clicked = c3.button("Run", type="primary", icon=":material/play_arrow:", key="sql_run")

run_requested = state.pop("sql_run_requested", False)
if (run_clicked or run_requested) and not after_write:  # a rerun after a write keeps the click's trigger
    sql = state["sql_editor"]
    entry = {"when": datetime.now(timezone.utc).strftime("%H:%M:%S"), "sql": sql, "write": not read_only}
    try:
        with st.spinner("Running…"):
            result = ch.query(sql, write=not read_only, limit=int(limit))
        state["sql_result"], state["sql_error"] = result, None
        entry.update(ok=True, rows=result.row_count, ms=round(result.elapsed_ms, 1))
    except HeliosError as exc:
        state["sql_result"], state["sql_error"] = None, exc
        entry.update(ok=False, rows=0, ms=None)
    state["sql_history"].insert(0, entry)
    del state["sql_history"][50:]
    if not read_only:
        state["sql_restore_read_only"] = True
        st.rerun()

if state.get("sql_error") is not None:
    show_error(state["sql_error"])

result = state.get("sql_result")


def draw_chart_builder(result) -> None:
    st.subheader("Chart")
    suggested = suggest_chart(result.column_names, result.column_types)
    cols = result.column_names
    k1, k2, k3, k4 = st.columns(4)
    kind = k1.selectbox("Chart", CHART_KINDS, index=CHART_KINDS.index(suggested.kind) if suggested else 1)
    x = k2.selectbox("X", cols, index=cols.index(suggested.x) if suggested else 0)
    y = k3.selectbox("Y", cols, index=cols.index(suggested.y) if suggested else min(1, len(cols) - 1))
    color_options = ["(none)"] + cols
    color = k4.selectbox("Color", color_options,
                         index=color_options.index(suggested.color) if suggested and suggested.color else 0)
    try:
        figure = build_chart(result.frame, ChartSpec(kind, x, y, None if color == "(none)" else color))
        st.plotly_chart(figure, width="stretch")
    except Exception as exc:  # plotly refuses some column combinations
        st.info(f"This combination cannot be drawn ({exc}). Pick other columns.")


if result is not None:
    noun = "row" if result.row_count == 1 else "rows"
    st.caption(f"{result.row_count:,} {noun} · {result.elapsed_ms:,.0f} ms · read {result.rows_read:,} rows, "
               f"{format_bytes(result.bytes_read)}" + (f" · wrote {result.written_rows:,} rows" if result.written_rows else ""))
    if result.truncated:
        st.warning(f"Showing the first {result.limit:,} rows: the result has more. Add a LIMIT, aggregate, "
                   "or raise the row limit.", icon=":material/content_cut:")
    if not result.column_names:
        st.success("Done.")
    else:
        st.dataframe(result.frame, hide_index=True, width="stretch")
        with st.expander("Column types"):
            st.dataframe({"column": result.column_names, "type": result.column_types}, hide_index=True)
        d1, d2, d3, _ = st.columns([1, 1, 1, 2])
        d1.download_button("Download CSV", to_csv_bytes(result.frame), "result.csv", "text/csv",
                           icon=":material/download:")
        d2.download_button("Download Parquet", to_parquet_bytes(result.frame), "result.parquet",
                           "application/octet-stream", icon=":material/download:")
        if d3.button("Ask about this result", key="sql_ask_chat", icon=":material/chat:",
                     help="Open a chat whose questions run over this query's result."):
            from helios_core.chat.assistant import start_query_chat  # the Chat page's concern
            from helios_core.chat.store import ChatStore
            try:
                state["chat_active_id"] = start_query_chat(ch, ChatStore(ch, acting_user()), result.query).id
                st.switch_page("pages/chat.py")
            except HeliosError as exc:
                show_error(exc)
        if result.row_count > 1:
            draw_chart_builder(result)

with st.expander(f"History ({len(state['sql_history'])})", expanded=False):
    if not state["sql_history"]:
        st.caption("Queries you run in this browser session appear here.")
    for i, item in enumerate(state["sql_history"]):
        h1, h2 = st.columns([5, 1])
        status = f"{item['rows']:,} rows, {item['ms']} ms" if item["ok"] else "failed"
        h1.code(item["sql"], language="sql")
        h1.caption(f"{item['when']} UTC · {status}" + (" · write" if item["write"] else ""))
        if h2.button("Run again", key=f"sql_hist_{i}"):
            state["sql_editor"] = item["sql"]
            state["sql_run_requested"] = True
            st.rerun()
