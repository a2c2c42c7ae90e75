"""SQL explorer: an editor with completion, read-only by default; the result as a grid, downloads, a chart."""

from datetime import UTC, datetime

import streamlit as st

from helios_core.charts import CHART_KINDS, ChartSpec, build_chart, suggest_chart
from helios_core.clickhouse import QueryResult, catalog_names
from helios_core.export import to_csv_bytes, to_parquet_bytes
from pages._shared import (
    SQL_EDITOR_KEY,
    acting_user,
    counted,
    format_bytes,
    open_chat,
    runtime,
    set_explorer_sql,
    show_error,
    user_errors,
)

ch = runtime().clickhouse
settings = ch.settings
state = st.session_state
EXAMPLE_SQL = "SELECT event_type, count() AS events\nFROM demo.user_activity\nGROUP BY event_type\nORDER BY events DESC"


def start_session() -> bool:
    """This session's editor, history and read-only switch; True on the rerun right after a write."""
    state.setdefault(SQL_EDITOR_KEY, EXAMPLE_SQL)
    state.setdefault("sql_editor_version", 0)
    state.setdefault("sql_history", [])
    state.setdefault("sql_read_only", True)
    after_write = state.pop("sql_restore_read_only", False)
    if after_write:
        state["sql_read_only"] = True  # writes are allowed for one query only
    return after_write


_SCORE = {"table": 300, "column": 200, "database": 100}  # Ace lists higher scores first


@st.cache_data(ttl=60, show_spinner=False)
def completions() -> list[dict]:
    """Database, table and column names as the editor's (Ace's) completer entries."""
    return [{"caption": n.value, "value": n.value, "name": n.value, "meta": f"{n.kind} {n.detail}".strip(),
             "score": _SCORE[n.kind]} for n in catalog_names(ch)]


def sql_editor() -> bool:
    """The code editor; True when the user pressed Ctrl/Cmd+Enter in it.

    The component reports only on Ctrl/Cmd+Enter ("submit") and on leaving it ("blur": the text is kept, nothing
    runs). Its value persists across reruns, so each event is handled once, by its id. A new version of the key
    (``set_explorer_sql``) mounts it afresh with the text in ``state[SQL_EDITOR_KEY]``; otherwise the text passed
    in is only its starting text (the component ignores later changes), so it never jumps under the cursor.
    """
    from code_editor import code_editor

    names: list[dict] = []
    with user_errors(stop=False):  # autocompletion is a help: the editor works without it
        names = completions()
    event = code_editor(
        state[SQL_EDITOR_KEY], lang="sql", key=f"sql_code_editor_{state['sql_editor_version']}", height=[8, 24],
        response_mode=["blur"], completions=names, options={"wrap": True, "showLineNumbers": True},
        props={"placeholder": "SELECT …", "enableBasicAutocompletion": True})  # Ctrl+Space, besides as-you-type
    submitted = False
    if event and event.get("id") and event["id"] != state.get("sql_editor_event"):
        state["sql_editor_event"] = event["id"]
        state[SQL_EDITOR_KEY] = event.get("text", "")
        submitted = event.get("type") == "submit"
    return submitted


def editor_hint() -> str:
    last = state["sql_history"][0]["sql"] if state["sql_history"] else None
    edited = last is not None and state[SQL_EDITOR_KEY] != last  # the editor was left without running it
    return ((":material/edit: Edited since the last run. " if edited else "")
            + "Ctrl/Cmd+Enter or Run runs the query; Ctrl+Space completes database, table and column names. "
            "Queries are read-only unless you turn that off below.")


def run_again(sql: str) -> None:
    set_explorer_sql(sql, run=True)  # a callback: the editor is mounted afresh with this SQL on the rerun


def run_controls() -> tuple[int, bool, bool]:
    """Row limit, the read-only switch and Run: (limit, read_only, run clicked)."""
    c1, c2, c3 = st.columns([1, 1, 2])
    limit = c1.number_input("Row limit", min_value=1, max_value=settings.max_result_rows,
                            value=min(1000, settings.max_result_rows), step=100, key="sql_limit")
    read_only = c2.toggle("Read-only", key="sql_read_only",
                          help="Turn off only to run a statement that changes data (DDL, INSERT), for this query.")
    if not read_only:
        st.warning("Read-only is off: the next query can change or delete data.", icon=":material/warning:")
    run_clicked = c3.button("Run", type="primary", icon=":material/play_arrow:", key="sql_run")
    return int(limit), read_only, run_clicked


def run_query(limit: int, read_only: bool) -> None:
    """Run the editor's SQL; the result or the error, and a line of history, stay in the session."""
    sql = state[SQL_EDITOR_KEY]
    entry = {"when": datetime.now(UTC).strftime("%H:%M:%S"), "sql": sql, "write": not read_only}
    try:
        with st.spinner("Running…"):
            result = ch.query(sql, write=not read_only, limit=limit)
        state["sql_result"], state["sql_error"], state["sql_result_write"] = result, None, not read_only
        entry.update(ok=True, rows=result.row_count, ms=round(result.elapsed_ms, 1))
    except Exception as exc:  # shown below by show_error: a Helios error's message, or an apology
        state["sql_result"], state["sql_error"] = None, exc
        entry.update(ok=False, rows=0, ms=None)
    state["sql_history"].insert(0, entry)
    del state["sql_history"][50:]
    if not read_only:
        state["sql_restore_read_only"] = True
        st.rerun()


def draw_chart_builder(result: QueryResult) -> None:
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


def result_view(result: QueryResult) -> None:
    """The result: figures, the grid and its column types, downloads, a chat about it and a chart."""
    st.caption(f"{counted(result.row_count, 'row')} · {result.elapsed_ms:,.0f} ms · read "
               f"{counted(result.rows_read, 'row')}, {format_bytes(result.bytes_read)}"
               + (f" · wrote {counted(result.written_rows, 'row')}" if result.written_rows else ""))
    if result.truncated:
        st.warning(f"Showing the first {result.limit:,} rows: the result has more. Add a LIMIT, aggregate, "
                   "or raise the row limit.", icon=":material/content_cut:")
    if not result.column_names and state.get("sql_result_write"):
        st.success("Done.")  # a statement (DDL, INSERT) answers with no columns
        return
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
        ask_about(result)
    if result.row_count > 1:
        draw_chart_builder(result)


def ask_about(result: QueryResult) -> None:
    """A chat whose questions run over this result's query, opened on the Chat page."""
    from helios_core.chat.assistant import start_query_chat  # the Chat page's concern
    from helios_core.chat.store import ChatStore
    with user_errors(stop=False):
        open_chat(start_query_chat(ch, ChatStore(ch, acting_user()), result.query).id)


def history() -> None:
    with st.expander(f"History ({len(state['sql_history'])})", expanded=False):
        if not state["sql_history"]:
            st.caption("Queries you run in this browser session appear here.")
        for i, item in enumerate(state["sql_history"]):
            h1, h2 = st.columns([5, 1])
            status = f"{counted(item['rows'], 'row')}, {item['ms']} ms" if item["ok"] else "failed"
            h1.code(item["sql"], language="sql")
            h1.caption(f"{item['when']} UTC · {status}" + (" · write" if item["write"] else ""))
            h2.button("Run again", key=f"sql_hist_{i}", on_click=run_again, args=(item["sql"],))


def main() -> None:
    after_write = start_session()
    st.title("SQL explorer")
    submitted = sql_editor()
    hint = st.empty()  # filled once this run's query (if any) is in the history
    limit, read_only, run_clicked = run_controls()
    run_requested = state.pop("sql_run_requested", False)
    if (run_clicked or run_requested or submitted) and not after_write:  # a rerun after a write keeps the trigger
        run_query(limit, read_only)
    hint.caption(editor_hint())
    if state.get("sql_error") is not None:
        show_error(state["sql_error"])
    if state.get("sql_result") is not None:
        result_view(state["sql_result"])
    history()


main()
