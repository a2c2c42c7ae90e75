"""The Jobs page's analysis sections (QueryShield): create a job with its query checked live, data owners and
their uploads, submit, the stages, and the released result. Each section is one function; the page calls
:func:`analysis_tab`. All logic lives in helios_core.analysis."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from helios_core.analysis import check_sql, describe, get_result, owners_view, preview_check, run_query
from helios_core.analysis_check import LEVELS
from helios_core.cloud_urls import PROVIDERS, configured
from helios_core.errors import Conflict, HeliosError, ValidationError
from helios_core.jobs import ACTIVE_STAGES, ANALYSIS, ANALYSIS_STAGES, FAIL, SUCCESS, Job, get_job, list_jobs
from pages._shared import acting_user, guarded, show_error

state = st.session_state
LEVEL_HELP = {"semi": "semi — aggregates only; rows with too few data owners or rows are withheld",
              "mal": "mal — also an allow-list of functions, per-owner clipping, noise and a privacy budget"}
EXAMPLE_SQL = "SELECT city, count() AS trips, avg(speed) AS avg_speed\nFROM traffic\nGROUP BY city"


def _verdict(verdict: dict[str, Any]) -> None:
    if verdict["ok"]:
        units = ", ".join(f"{o['kind']}" + (f" of {o['column']}" if o["column"] else "")
                          + (f" ({o['unit']})" if o["unit"] else "") for o in verdict["outputs"])
        st.success(f"Allowed. Output columns: {units}.", icon=":material/verified_user:")
    else:
        st.error(f"Refused ({verdict['rule']}): {verdict['message']}", icon=":material/block:")


def _draft() -> dict[str, Any]:
    schema = state.get("an_schema_rows")
    units = {}
    if isinstance(schema, pd.DataFrame):
        units = {str(r["column"]).strip(): str(r["unit"] or "").strip()
                 for r in schema.dropna(subset=["column"]).to_dict(orient="records") if str(r["column"]).strip()}
    spec: dict[str, Any] = {"analysis_name": state.get("an_name", ""), "query_sql": state.get("an_sql", ""),
                            "security_level": state.get("an_level", "semi"),
                            "cloud_providers": state.get("an_providers", ["aws"]), "schema": units}
    for key in ("min_owners", "min_rows", "max_rows_per_owner", "epsilon", "epsilon_budget"):
        if f"an_{key}" in state:
            spec[key] = state[f"an_{key}"]
    bounds = (state.get("an_bounds") or "").strip()
    if bounds:
        try:
            spec["bounds"] = json.loads(bounds)
        except json.JSONDecodeError:
            spec["bounds"] = "not JSON"
    return spec


def create_section(service: Any) -> None:
    """The seed's create_job as a form; the query's verdict is shown when Check is pressed."""
    with st.expander("New analysis job", icon=":material/add:", expanded=False):
        st.text_input("Analysis name", key="an_name", placeholder="Traffic analysis")
        st.text_area("Query (one SELECT over the job's table; the table's name is the one the query reads)",
                     key="an_sql", height=140, placeholder=EXAMPLE_SQL)
        c1, c2 = st.columns(2)
        c1.radio("Security level", LEVELS, format_func=LEVEL_HELP.get, key="an_level")
        _providers(c2)
        _units()
        with st.expander("Thresholds and noise"):
            _thresholds()
        b1, b2 = st.columns(2)
        if b1.button("Check", key="an_check", icon=":material/rule:"):
            state["an_verdict"] = preview_check(service.ch, _draft())
        if state.get("an_verdict"):
            _verdict(state["an_verdict"])
        if b2.button("Create analysis job", type="primary", key="an_create", icon=":material/add_task:"):
            _create(service)


def _providers(column: Any) -> None:
    column.multiselect("Cloud providers", PROVIDERS, default=["aws"], key="an_providers",
                       help="Each data owner gets one upload link per provider; gcp and azure need their keys "
                            "in the environment or secrets.toml.")
    unready = [p for p in state.get("an_providers", []) if not configured(p)]
    if unready:
        column.caption(f"Not configured: {', '.join(unready)} (see the README's analysis jobs section).")


def _units() -> None:
    """The job's columns and their units (the unit decides a column's type and what may be computed on it)."""
    # The editor keeps its edits relative to a base that never changes; the edited frame is what counts.
    base = state.setdefault("an_schema_base", pd.DataFrame([{"column": "city", "unit": "category"},
                                                            {"column": "speed", "unit": "mph"}]))
    state["an_schema_rows"] = st.data_editor(base, num_rows="dynamic", hide_index=True, key="an_schema_editor",
                                             width="stretch")
    st.caption("Units such as category, text, id or name make a text column; date and datetime make dates; "
               "any other unit (mph, count, usd…) a number. min()/max() never apply to an id/name column.")


def _thresholds() -> None:
    a1, a2, a3 = st.columns(3)
    a1.number_input("Minimum data owners per row", min_value=2, value=2, key="an_min_owners")
    a2.number_input("Minimum rows per row", min_value=1, value=5, key="an_min_rows")
    a3.number_input("mal: rows counted per owner", min_value=1, value=100, key="an_max_rows_per_owner")
    b1, b2 = st.columns(2)
    b1.number_input("mal: ε per analysis", min_value=0.01, value=1.0, key="an_epsilon")
    b2.number_input("mal: ε budget of the job", min_value=0.01, value=3.0, key="an_epsilon_budget")
    st.text_input('mal: bounds as JSON, e.g. {"speed": [0, 200]}', key="an_bounds")


def _create(service: Any) -> None:
    try:
        job = service.create(_draft(), acting_user())
        state.setdefault("an_created", set()).add(job.id)
        state["an_selected"] = job.id
        st.success(f"Created {job.name} ({job.id}). Register data owners below.")
    except HeliosError as exc:
        show_error(exc)
        if isinstance(exc, ValidationError) and exc.missing_fields:
            st.caption("Missing: " + ", ".join(exc.missing_fields))


def settings_section(service: Any, job: Job) -> None:
    info = describe(service.ch, job.id, acting_user())
    st.caption(f"Security level **{info['security_level']}** · table **{info['table_name']}** · providers "
               f"{', '.join(info['cloud_providers'])} · job id `{job.id}`")
    st.code(info["query_sql"], language="sql")
    shown = {k: v for k, v in info["thresholds"].items() if v not in ({}, None)}
    st.caption("Thresholds: " + " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in shown.items())
               + (f" · ε spent {info['epsilon_spent']:g}" if info["epsilon_spent"] is not None else ""))
    st.caption("Units: " + ", ".join(f"{c} ({u or '—'})" for c, u in info["units"].items()))


def owners_section(service: Any, job: Job) -> None:
    """Register owners (fresh links each time); who uploaded what; row counts only for the job's creator."""
    if not job.submitted:
        with st.container(border=True):
            owner = st.text_input("Data owner (an id or a name)", key="an_owner")
            if st.button("Get upload links", key="an_register", icon=":material/link:"):
                try:
                    state[f"an_grant_{job.id}"] = service.register_owner(job.id, owner, user=acting_user())
                except HeliosError as exc:
                    show_error(exc)
            grant = state.get(f"an_grant_{job.id}")
            if grant:
                st.caption(f"For {grant['data_owner']}: upload only, valid {grant['expires_in'] // 60} minutes; "
                           "asking again gives fresh links. Azure links need the header x-ms-blob-type: BlockBlob.")
                for url in grant["presigned_urls"]:
                    st.code(f'curl -X PUT -T data.{job.format} "{url}"', language="bash")
    creator = job.id in state.get("an_created", set())
    try:
        rows = owners_view(service, job, creator=creator)
    except HeliosError as exc:
        show_error(exc)
        return
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        if not creator:
            st.caption("Row counts per data owner are shown only to the job's creator (the session that created it).")


def submit_section(service: Any, job: Job) -> None:
    if not job.submitted and st.button("Submit analysis", type="primary", key="an_submit",
                                       icon=":material/play_arrow:"):
        try:
            service.submit(job.id, acting_user())
            st.rerun()
        except HeliosError as exc:
            show_error(exc)


def stages_section(service: Any, job: Job) -> None:
    """The stages reached; refreshes itself every second while the job runs."""
    if not job.submitted:
        return
    if job.status in ACTIVE_STAGES:
        st.fragment(run_every=1.0)(guarded(_stages_panel))(service, job.id, True)
    else:
        _stages_panel(service, job.id, False)


def _stages_panel(service: Any, job_id: str, watching: bool) -> None:
    current = get_job(service.ch, job_id, acting_user())
    if watching and current.status not in ACTIVE_STAGES:
        st.rerun()
    steps = [s for s in ANALYSIS_STAGES if s != FAIL]
    reached = max((steps.index(s["stage"]) + 1 for s in current.stages if s["stage"] in steps), default=1)
    st.progress(reached / len(steps), text=f"**{current.status}**")
    if current.status == FAIL:
        st.error(current.error, icon=":material/error:")
    with st.expander("Stages"):
        st.dataframe(pd.DataFrame(current.stages), hide_index=True, width="stretch")


def result_section(service: Any, job: Job) -> None:
    """The released result: table with units, a chart, what was withheld and why; hidden counts never shown."""
    try:
        result = get_result(service.ch, job.id, acting_user())
    except Conflict:
        return
    except HeliosError as exc:
        show_error(exc)
        return
    st.markdown("**Result**")
    names = [f"{c['name']} ({c['unit']})" if c["unit"] else c["name"] for c in result["columns"]]
    frame = pd.DataFrame(result["rows"], columns=names)
    st.dataframe(frame, hide_index=True, width="stretch")
    _chart(frame, result["columns"], names)
    for line in result["explanation"]:
        st.caption(line)
    if result["suppressed_groups"]:
        about = "About " if result.get("suppressed_is_noisy") else ""
        st.info(f"{about}{result['suppressed_groups']} row(s) withheld (below the thresholds).",
                icon=":material/shield:")


def _chart(frame: pd.DataFrame, columns: list[dict[str, Any]], names: list[str]) -> None:
    groups = [n for n, c in zip(names, columns, strict=False) if c["kind"] == "group"]
    values = [n for n, c in zip(names, columns, strict=False)
              if c["kind"] != "group" and pd.api.types.is_numeric_dtype(frame[n])]
    if frame.empty or not values:
        return
    x = groups[0] if groups else None
    data = frame.assign(**{"row": frame[x].astype(str)}) if x else frame.assign(row="all")
    long = data.melt(id_vars="row", value_vars=values, var_name="measure", value_name="value")
    figure = px.bar(long, x="row", y="value", color="measure", barmode="group", labels={"row": x or ""})
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(figure, width="stretch")


def more_section(service: Any, job: Job) -> None:
    """Another analysis on a finished job: checked live, then run under the same rules and budget."""
    if job.status != SUCCESS:
        return
    with st.expander("Run another analysis on this job's data"):
        sql = st.text_area("Query", key=f"an_more_sql_{job.id}", height=100)
        c1, c2 = st.columns(2)
        if c1.button("Check", key="an_more_check"):
            state["an_more_verdict"] = check_sql(service.ch, job.id, sql, acting_user())
        if state.get("an_more_verdict"):
            _verdict(state["an_more_verdict"])
        if c2.button("Run", key="an_more_run", type="primary"):
            try:
                run_query(service, job.id, sql, user=acting_user())
                st.rerun()
            except HeliosError as exc:
                show_error(exc)


def choose_analysis(service: Any) -> Job | None:
    jobs = [j for j in list_jobs(service.ch, acting_user()) if j.target == ANALYSIS]
    if not jobs:
        st.info("No analysis jobs yet. Create one above.")
        return None
    ids = [j.id for j in jobs]
    if state.get("an_selected") not in ids:
        state["an_selected"] = ids[0]
    labels = {j.id: f"{j.name} · {j.status} · {j.id[:8]}" for j in jobs}
    selected = st.selectbox("Analysis job", ids, format_func=labels.get, key="an_selected")
    return next(j for j in jobs if j.id == selected)


def analysis_tab(service: Any) -> None:
    create_section(service)
    job = choose_analysis(service)
    if job is None:
        return
    st.subheader(job.name)
    settings_section(service, job)
    owners_section(service, job)
    submit_section(service, job)
    stages_section(service, job)
    result_section(service, job)
    more_section(service, job)
