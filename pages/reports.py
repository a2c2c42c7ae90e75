"""Reports: a builder over any table, with bound filters, a chart, CSV export and saved definitions.

The current definition lives in the URL (``?report=…``), so a link reopens the same report.
"""

import pandas as pd
import streamlit as st

from helios_core.charts import ChartSpec, build_chart
from helios_core.clickhouse import list_user_databases, table_columns
from helios_core.errors import HeliosError, ValidationError
from helios_core.export import to_csv_bytes
from helios_core.report_filters import OPERATORS, Filter, filters_from_rows, parse_conditions, type_family
from helios_core.reports import (
    GRAINS,
    MEASURE_HELP,
    MEASURE_KINDS,
    PRESETS,
    CompiledReport,
    Measure,
    ReportDefinition,
    SavedReport,
    captcha_preset,
    delete_report,
    get_report,
    list_reports,
    run_report,
    save_report,
    share_report,
)
from helios_core.wording import plural
from pages._shared import acting_user, guarded, runtime, show_error, user_errors

ch = runtime().clickhouse
me = acting_user()
state = st.session_state


# ---- moving a definition in and out of the widgets ------------------------------------------


def _conditions_text(filters: list[Filter]) -> str:
    return "; ".join(f.describe() for f in filters)


def load_definition(d: ReportDefinition) -> None:
    """Put a definition into the builder's widgets (before they are drawn)."""
    state["rp_db"], state["rp_table"], state["rp_time"] = d.database, d.table, d.time_column
    state["rp_grain"], state["rp_dims"] = d.grain, list(d.dimensions)
    state["rp_from"], state["rp_to"] = d.time_from or "", d.time_to or ""
    state["rp_limit"], state["rp_name"] = int(d.limit), d.name
    state["rp_measures_data"] = pd.DataFrame(
        [{"kind": m.kind, "column": m.column or None, "label": m.label, "condition": _conditions_text(m.where),
          "second_condition": _conditions_text(m.where_other)} for m in d.measures],
        columns=["kind", "column", "label", "condition", "second_condition"])
    state["rp_filters_data"] = pd.DataFrame(
        [{"column": f.column, "operator": f.op, "value": ", ".join(str(v) for v in f.values)} for f in d.filters],
        columns=["column", "operator", "value"])
    state["rp_editor_n"] += 1  # fresh editor keys so the new data shows


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip()


def definition_from_widgets(measures: pd.DataFrame, filters: pd.DataFrame,
                            columns: dict[str, str]) -> ReportDefinition:
    ms = []
    for row in measures.to_dict(orient="records"):
        if not _text(row.get("kind")):
            continue
        ms.append(Measure(kind=_text(row["kind"]), column=_text(row.get("column")), label=_text(row.get("label")),
                          where=parse_conditions(_text(row.get("condition"))),
                          where_other=parse_conditions(_text(row.get("second_condition")))))
    rows = [(_text(r.get("column")), _text(r.get("operator")), _text(r.get("value")))
            for r in filters.to_dict(orient="records")]
    return ReportDefinition(database=state["rp_db"], table=state["rp_table"], time_column=state.get("rp_time") or "",
                            grain=state["rp_grain"], measures=ms, dimensions=list(state.get("rp_dims") or []),
                            filters=filters_from_rows(rows, columns), time_from=_text(state.get("rp_from")) or None,
                            time_to=_text(state.get("rp_to")) or None, name=_text(state.get("rp_name")),
                            limit=int(state.get("rp_limit") or 5000))


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """UUIDs and IP addresses as text (the grid would show their raw bytes)."""
    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == object:
            sample = out[name].dropna().head(1).tolist()
            if sample and not isinstance(sample[0], (str, bytes, list, dict, bool, int, float)):
                out[name] = out[name].map(lambda v: None if v is None else str(v))
    return out


def run_and_remember(d: ReportDefinition) -> None:
    try:
        with st.spinner("Running the report…"):
            compiled, result = run_report(ch, d)
        state["rp_result"], state["rp_compiled"], state["rp_error"] = result, compiled, None
        state["rp_url"] = d.to_query_param()
        st.query_params["report"] = state["rp_url"]
    except HeliosError as exc:
        state["rp_result"], state["rp_compiled"], state["rp_error"] = None, None, exc


# ---- first load: a link, or the captcha preset when the demo is there ------------------------------


def open_linked_report() -> None:
    """A ``?report=`` link not opened yet fills the builder and runs; with nothing chosen yet, the captcha preset."""
    url_param = st.query_params.get("report")
    if url_param and url_param != state.get("rp_url"):
        try:
            linked = ReportDefinition.from_json(url_param)
            load_definition(linked)
            state["rp_url"] = url_param
            state["rp_autorun"] = True
        except HeliosError as exc:
            state["rp_error"] = ValidationError(f"The report in this link cannot be read: {exc.message}",
                                                "Build the report again below.")
    if "rp_db" not in state:
        load_definition(captcha_preset())


# ---- start from a preset or a saved report ---------------------------------------------------------


@guarded  # the builder below works without the saved reports
def open_bar() -> None:
    """Open a preset or a saved report; delete or share the chosen saved report."""
    saved = list_reports(ch, me)  # this user's, and those shared with them
    options = ["—"] + [f"Preset: {name}" for name in PRESETS] + [
        f"Saved: {r.name}" + ("" if r.owner == me.id else f" (shared by {r.owner})") for r in saved]
    s1, s2, s3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    choice = s1.selectbox("Open", options, key="rp_open", help="A built-in preset or a report you saved.")
    chosen = saved[options.index(choice) - 1 - len(PRESETS)] if choice.startswith("Saved: ") else None
    if s2.button("Open", key="rp_open_btn", disabled=choice == "—"):
        if chosen is None:
            load_definition(PRESETS[choice.removeprefix("Preset: ")]())
        else:
            open_saved(chosen)
        state["rp_autorun"] = True
        st.rerun()
    if chosen is not None and s3.button("Delete", key="rp_delete_btn", icon=":material/delete:"):
        delete_report(ch, chosen.id, me)
        st.toast(f"Deleted {chosen.name}.")
        st.rerun()
    if chosen is not None and (chosen.owner == me.id or me.is_admin):
        share_popover(chosen)


def open_saved(chosen: SavedReport) -> None:
    load_definition(get_report(ch, chosen.id, me).definition)
    # Saving under the same name overwrites only one's own report; a shared one is saved as a copy.
    state["rp_saved_id"], state["rp_saved_name"] = (chosen.id, chosen.name) if chosen.owner == me.id \
        else (None, None)


def share_popover(chosen: SavedReport) -> None:
    with st.popover("Share", icon=":material/share:"):
        st.text_input("Read-only with", value=", ".join(chosen.shared_with), key=f"rp_share_{chosen.id}",
                      placeholder="e-mail addresses, or * for everyone")
        if st.button("Update sharing", key=f"rp_share_btn_{chosen.id}"):
            share_report(ch, chosen.id, state.get(f"rp_share_{chosen.id}", ""), me)
            st.toast(f"Sharing of {chosen.name} updated.")


# ---- the builder ------------------------------------------------------------------------------------


def table_picker() -> dict[str, str]:
    """Database, table, time column and grain; returns the table's columns (name → type)."""
    with user_errors():
        databases = {db: tables for db, tables in list_user_databases(ch).items() if tables}
    if not databases:
        st.info("There are no tables yet. Load the demo data on Home, or create a table from a stream or an import.")
        st.stop()
    if state.get("rp_db") not in databases:
        state["rp_db"] = next(iter(databases))
    b1, b2, b3, b4 = st.columns(4)
    b1.selectbox("Database", list(databases), key="rp_db")
    tables = databases[state["rp_db"]]
    if state.get("rp_table") not in tables:
        state["rp_table"] = tables[0]
    b2.selectbox("Table", tables, key="rp_table")
    with user_errors():
        columns = {c["name"]: c["type"] for c in table_columns(ch, state["rp_db"], state["rp_table"])}
    time_columns = [n for n, t in columns.items() if type_family(t) in ("date", "datetime")]
    if not time_columns:
        st.warning(f"{state['rp_db']}.{state['rp_table']} has no date or time column; reports need one to bucket by.")
        st.stop()
    if state.get("rp_time") not in time_columns:
        state["rp_time"] = time_columns[0]
    b3.selectbox("Time column", time_columns, key="rp_time")
    b4.selectbox("Grain", GRAINS, key="rp_grain")
    return columns


def group_by(columns: dict[str, str]) -> None:
    state["rp_dims"] = [d for d in state.get("rp_dims") or [] if d in columns]
    st.multiselect("Group by (up to two columns)", list(columns), key="rp_dims", max_selections=2)


def measures_editor(columns: dict[str, str]) -> pd.DataFrame:
    st.markdown("**Measures**")
    return st.data_editor(
        state["rp_measures_data"], key=f"rp_measures_{state['rp_editor_n']}", num_rows="dynamic", hide_index=True,
        width="stretch", column_config={
            "kind": st.column_config.SelectboxColumn("Measure", options=list(MEASURE_KINDS), required=True,
                                                     help="; ".join(f"{k}: {v}" for k, v in MEASURE_HELP.items())),
            "column": st.column_config.SelectboxColumn(
                "Column", options=list(columns), help="distinct/sum/avg/min/max: the column; median_gap: the key"),
            "label": st.column_config.TextColumn("Label", help="the result column's name"),
            "condition": st.column_config.TextColumn("Condition",
                                                     help="e.g. type = solve (several: separate with ;)"),
            "second_condition": st.column_config.TextColumn(
                "Second condition", help="ratio: the denominator (empty = all rows); median_gap: the end event"),
        })


def filters_editor(columns: dict[str, str]) -> pd.DataFrame:
    st.markdown("**Filters**")
    return st.data_editor(
        state["rp_filters_data"], key=f"rp_filters_{state['rp_editor_n']}", num_rows="dynamic", hide_index=True,
        width="stretch", column_config={
            "column": st.column_config.SelectboxColumn("Column", options=list(columns), required=True),
            "operator": st.column_config.SelectboxColumn("Operator", options=list(OPERATORS), required=True),
            "value": st.column_config.TextColumn(
                "Value", help="in / not in: separate values with commas; between: from and to, e.g. 10 and 400"),
        })


def time_range_and_limit() -> None:
    f1, f2, f3 = st.columns(3)
    f1.text_input("From (inclusive)", key="rp_from", placeholder="2024-05-01 or 2024-05-01 08:00")
    f2.text_input("To (exclusive)", key="rp_to", placeholder="empty = no limit")
    f3.number_input("Row limit", min_value=1, max_value=ch.settings.max_result_rows, key="rp_limit")


def run_button(measures: pd.DataFrame, filters: pd.DataFrame, columns: dict[str, str]) -> None:
    """Run on a click, or once after a link or an Open; a definition that cannot be read is the error shown."""
    run_clicked = st.button("Run report", type="primary", icon=":material/play_arrow:", key="rp_run")
    if run_clicked or state.pop("rp_autorun", False):
        try:
            definition = definition_from_widgets(measures, filters, columns)
        except HeliosError as exc:
            state["rp_result"], state["rp_error"] = None, exc
        else:
            run_and_remember(definition)
    if state.get("rp_error") is not None:
        show_error(state["rp_error"])


# ---- the result ----------------------------------------------------------------------------------------


def result_table(result) -> None:
    frame = result.frame
    st.caption(f"{plural(result.row_count, 'row')} · {result.elapsed_ms:,.0f} ms · "
               f"read {plural(result.rows_read, 'row')}"
               + (" · truncated: raise the row limit or narrow the filters" if result.truncated else ""))
    st.dataframe(readable(frame), hide_index=True, width="stretch")


def result_chart(frame: pd.DataFrame, compiled: CompiledReport) -> None:
    """One measure per bucket, a line per group (two group-by columns make one "a / b" group)."""
    dims = list(compiled.definition.dimensions)
    y = st.selectbox("Chart measure", compiled.measure_names, key="rp_chart_y")
    plot = frame
    color = None
    if dims:
        color = dims[0] if len(dims) == 1 else " / ".join(dims)
        if len(dims) > 1:
            plot = frame.assign(**{color: frame[dims[0]].astype(str) + " / " + frame[dims[1]].astype(str)})
    kind = "line" if frame["bucket"].nunique() > 1 else "bar"
    try:
        st.plotly_chart(build_chart(plot, ChartSpec(kind, "bucket", y, color)), width="stretch")
    except Exception as exc:  # plotly refuses some shapes of data
        st.info(f"This result cannot be drawn ({exc}).")


def download_and_sql(frame: pd.DataFrame, compiled: CompiledReport) -> None:
    st.download_button("Download CSV", to_csv_bytes(frame), "report.csv", "text/csv", icon=":material/download:",
                       key="rp_csv")
    with st.expander("SQL and bound parameters"):
        st.code(compiled.sql, language="sql")
        st.json(compiled.to_json()["parameters"])


def save_form(compiled: CompiledReport) -> None:
    with st.form("rp_save_form", border=False):
        v1, v2 = st.columns([3, 1], vertical_alignment="bottom")
        v1.text_input("Report name", key="rp_name")
        if v2.form_submit_button("Save report", icon=":material/save:"):
            with user_errors(stop=False):
                # Same name as the report that was opened: overwrite it; a new name: a new saved report.
                same = state.get("rp_saved_name") and state.get("rp_saved_name") == _text(state.get("rp_name"))
                stored = save_report(ch, compiled.definition, state.get("rp_name"),
                                     state.get("rp_saved_id") if same else None, me)
                state["rp_saved_id"], state["rp_saved_name"] = stored.id, stored.name
                st.success(f"Saved as {stored.name!r}.")


def report_result() -> None:
    result, compiled = state.get("rp_result"), state.get("rp_compiled")
    if result is None or compiled is None:
        return
    result_table(result)
    if not result.frame.empty and compiled.measure_names:
        result_chart(result.frame, compiled)
    download_and_sql(result.frame, compiled)
    save_form(compiled)


def main() -> None:
    state.setdefault("rp_editor_n", 0)
    open_linked_report()
    st.title("Reports")
    st.caption("Build a report over any table: measures per time bucket, grouped by up to two columns, with "
               "filters that are checked against the column types and always sent as bound parameters.")
    open_bar()
    columns = table_picker()
    group_by(columns)
    measures = measures_editor(columns)
    filters = filters_editor(columns)
    time_range_and_limit()
    run_button(measures, filters, columns)
    report_result()


main()
