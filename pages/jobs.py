"""Import jobs: create, hand data owners presigned upload URLs, upload your own files, submit, watch.

Also loads a PostgreSQL plain dump straight into a new database. Each section of the page is one function;
:func:`main` at the bottom reads like the page.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from helios_core.clickhouse import ClickHouse, list_user_databases
from helios_core.ddl import quarantine_name, sql_string, type_catalogue
from helios_core.errors import HeliosError, ValidationError
from helios_core.identifiers import qualified
from helios_core.jobs import (
    ACTIVE_STAGES,
    ANALYSIS,
    FAIL,
    FORMAT_LABELS,
    FORMATS,
    STAGES,
    SUCCESS,
    Job,
    JobService,
    confirm_schema,
    get_job,
    get_job_service,
    infer_job_schema,
    job_summaries,
    list_jobs,
    list_owners,
)
from helios_core.pgdump import load_dump
from helios_core.schema import ColumnSpec
from helios_core.users import User
from helios_core.wording import plural, when
from pages._analysis import analysis_tab
from pages._shared import (
    acting_user,
    aws_connection,
    format_bytes,
    guarded,
    open_in_sql_explorer,
    runtime,
    show_error,
    user_errors,
)

state = st.session_state
TARGET_LABELS = {"existing": "An existing table", "new": "A new table (schema from the first upload)",
                 "database": "A new database (PostgreSQL dumps)"}
NEW_JOB_KEYS = ("jobs_new_name", "jobs_new_db_text", "jobs_new_table_text", "jobs_new_table")


def show_validation(exc: HeliosError) -> None:
    show_error(exc)
    if isinstance(exc, ValidationError) and exc.missing_fields:
        st.caption("Missing: " + ", ".join(exc.missing_fields))


# ---- where uploads go -------------------------------------------------------------------------------------


def upload_storage() -> JobService | None:
    """The job service, on this session's AWS connection if the user asks; None (with the error shown) when
    upload storage is unavailable, so the other tabs still work."""
    try:
        service = get_job_service()
        conn = aws_connection()
        if conn is not None and not getattr(conn, "sandbox", False):
            use_aws = st.toggle("Keep uploads in my AWS account (this session's connection)", key="jobs_use_aws")
            if use_aws and service.connection is not conn:
                service.use_connection(conn)
            elif not use_aws and service.connection is conn:
                service.use_connection(None)
        with st.spinner("Preparing upload storage…"):
            where = f"bucket **{service.bucket}** via {service.connection.describe()}"
        if getattr(service.connection, "sandbox", False):
            # moto does not check signatures: a link made for PUT also answers GET (and any key) here.
            st.caption(f":material/cloud_upload: Uploads are kept in {where}. Data owners get upload (PUT) links. "
                       "In the sandbox these links also answer GET, because its S3 (moto) does not check "
                       "signatures: treat them as secret. On AWS they are upload-only.")
        else:
            st.caption(f":material/cloud_upload: Uploads are kept in {where}. Data owners get write-only links.")
        return service
    except Exception as exc:  # shown like user_errors(); the other tabs still work
        show_error(exc)
        return None


# ---- a new job --------------------------------------------------------------------------------------------


def new_job_form(service: JobService, actor: User, expanded: bool) -> None:
    if state.pop("jobs_form_reset", False):  # a job was just created: start the next one from a clean form
        for key in NEW_JOB_KEYS:
            state.pop(key, None)
    created = state.pop("jobs_created_message", None)
    with st.expander("New import job", expanded=expanded or bool(created), icon=":material/add:"):
        if created:
            st.success(created)
        c1, c2 = st.columns(2)
        name = c1.text_input("Name", key="jobs_new_name", placeholder="Partner sales, May")
        fmt = c2.selectbox("Format", list(FORMATS), format_func=FORMAT_LABELS.get, key="jobs_new_format")
        targets = ["database"] if fmt == "pg_dump" else ["existing", "new"]
        target = st.radio("Load into", targets, format_func=TARGET_LABELS.get, horizontal=True,
                          key=f"jobs_new_target_{fmt == 'pg_dump'}")
        database, table = target_fields(service.ch, target)
        if st.button("Create job", type="primary", key="jobs_create", icon=":material/add_task:"):
            try:
                job = service.create({"name": name, "format": fmt, "target": target, "database": database or "",
                                      "table": table or ""}, actor)
                state["jobs_selected"] = job.id
                state["jobs_created_message"] = f"Created job {job.name} ({job.id}). Register data owners below."
                state["jobs_form_reset"] = True
                st.rerun()
            except HeliosError as exc:
                show_validation(exc)


def target_fields(ch: ClickHouse, target: str) -> tuple[str, str]:
    """(database, table): picked from the existing ones, or typed for a new table or database."""
    d1, d2 = st.columns(2)
    if target == "existing":
        catalog = list_user_databases(ch)
        database = d1.selectbox("Database", list(catalog), key="jobs_new_db") if catalog else ""
        tables = catalog.get(database, []) if database else []
        table = d2.selectbox("Table", [t for t in tables if not t.endswith("_quarantine")], key="jobs_new_table")
        return database or "", table or ""
    database = d1.text_input("Database", key="jobs_new_db_text",
                             help="An existing or new database" if target == "new" else
                             "A new database: one table per table in the dump")
    table = d2.text_input("New table", key="jobs_new_table_text") if target == "new" else ""
    return database, table


# ---- the jobs ---------------------------------------------------------------------------------------------


def choose_job(ch: ClickHouse, jobs: list[Job]) -> Job:
    """The listing and the job picker (a ``?job=`` link opens that job)."""
    summaries = [{**row, "created_at": when(row["created_at"])} for row in job_summaries(ch, jobs)]
    st.dataframe(pd.DataFrame(summaries), hide_index=True, width="stretch",
                 column_config={"job_id": st.column_config.TextColumn("Job id", width="small")})
    ids = [j.id for j in jobs]
    linked = st.query_params.get("job")
    if linked in ids and "jobs_selected" not in state:
        state["jobs_selected"] = linked
    if state.get("jobs_selected") not in ids:
        state["jobs_selected"] = ids[0]
    labels = {j.id: f"{j.name} · {j.status} · {j.id[:8]}" for j in jobs}
    selected = st.selectbox("Job", ids, format_func=labels.get, key="jobs_selected")
    st.query_params["job"] = selected
    return next(j for j in jobs if j.id == selected)


def job_header(job: Job) -> None:
    st.subheader(job.name)
    st.caption(f"{FORMAT_LABELS[job.format]} into the {job.target_label()} · job id `{job.id}`")


# ---- data owners and uploads (before submission) -------------------------------------------------------------


def owner_links(service: JobService, job: Job, actor: User) -> None:
    """Register a data owner and show their fresh presigned upload links."""
    st.markdown("**Data owners**")
    owner = st.text_input("Data owner (an id or a name)", key="jobs_owner")
    files = st.number_input("Files", min_value=1, max_value=20, value=1, key="jobs_owner_files")
    if st.button("Get upload links", key="jobs_register", icon=":material/link:"):
        try:
            state[f"jobs_grant_{job.id}"] = service.register_owner(job.id, owner, files=int(files), user=actor)
        except HeliosError as exc:
            show_validation(exc)
    grant = state.get(f"jobs_grant_{job.id}")
    if grant:
        only = "for uploads (PUT; in the sandbox they also answer GET)" \
            if getattr(service.connection, "sandbox", False) else "upload only (PUT)"
        st.caption(f"For {grant['data_owner']}: valid {grant['expires_in'] // 60} minutes, {only}. "
                   "Asking again gives fresh links.")
        for url in grant["presigned_urls"]:
            st.code(f'curl -X PUT -T data.{FORMATS[job.format]} "{url}"', language="bash")


def own_upload(service: JobService, job: Job, actor: User) -> None:
    """The analyst's own file, stored like a data owner's upload."""
    st.markdown("**Upload your own file**")
    uploaded = st.file_uploader("File", key=f"jobs_file_{job.id}",
                                type=[FORMATS[job.format], "txt"] if job.format != "parquet" else ["parquet"])
    me = st.text_input("As owner", value="analyst", key="jobs_me")
    if uploaded is not None and st.button("Upload", key="jobs_upload", icon=":material/upload:"):
        with st.status(f"Uploading {uploaded.name}…", expanded=False) as status:
            try:
                done = service.upload(job.id, me, uploaded.name, uploaded.getvalue(), actor)
                status.update(label=f"Uploaded {uploaded.name} ({format_bytes(done.size)}).", state="complete")
            except HeliosError as exc:
                status.update(label="Upload failed", state="error")
                show_error(exc)


def owners_table(service: JobService, job: Job) -> None:
    """Who was given links and what each has uploaded so far."""
    with user_errors(stop=False):
        owners = list_owners(service.ch, job.id)
        uploads = service.uploads(job)
        if owners or uploads:
            seen = {u.owner for u in uploads}
            st.dataframe(pd.DataFrame(
                [{"owner": o.owner, "links issued": o.urls_issued, "uploaded": o.owner in seen,
                  "files": ", ".join(f"{u.file} ({format_bytes(u.size)})" for u in uploads if u.owner == o.owner)}
                 for o in owners]), hide_index=True, width="stretch")


# ---- a new table: infer and confirm its schema ------------------------------------------------------------


def schema_editor(service: JobService, job: Job, actor: User) -> Job:
    """Infer the new table's columns from the first upload, edit them, confirm; returns the job as it now is."""
    with st.container(border=True):
        st.markdown("**The new table's columns**")
        if st.button("Infer from the first upload", key="jobs_infer", icon=":material/auto_fix_high:"):
            with st.spinner("Reading the first upload…"):
                try:
                    job = infer_job_schema(service, job.id, actor)
                except HeliosError as exc:
                    show_error(exc)
        if not job.schema:
            st.caption("Upload a file first, then infer the columns and confirm them.")
            return job
        frame = pd.DataFrame([{"name": c.name, "type": c.type, "from": c.json_path} for c in job.schema])
        edited = st.data_editor(frame, key=f"jobs_schema_{job.id}", hide_index=True, width="stretch",
                                num_rows="dynamic", column_config={  # the wizard's type catalogue
                                    "type": st.column_config.SelectboxColumn(
                                        "type", options=type_catalogue(list(frame["type"])), required=True)})
        order = st.multiselect("Sorting key", list(edited["name"].dropna()),
                               default=[c for c in job.order_by if c in set(edited["name"])],
                               key=f"jobs_order_{job.id}")
        label = "Confirmed ✓ — confirm again after edits" if job.schema_confirmed else "Confirm columns"
        if st.button(label, key="jobs_confirm", icon=":material/check:"):
            try:
                job = confirm_schema(service.ch, job.id, edited_columns(job, edited), order, user=actor)
                st.success("Columns confirmed; the table is created when the job loads.")
            except HeliosError as exc:
                show_error(exc)
    return job


def edited_columns(job: Job, edited: pd.DataFrame) -> list[ColumnSpec]:
    """The editor's rows as columns, keeping what the editor does not show (required, default) by name."""
    by_name = {c.name: c for c in job.schema}
    specs = []
    for row in edited.dropna(subset=["name"]).to_dict(orient="records"):
        base = by_name.get(row["name"], ColumnSpec(name=row["name"], type=row["type"]))
        specs.append(ColumnSpec(name=str(row["name"]), type=str(row["type"]),
                                json_path=str(row.get("from") or row["name"]),
                                required=base.required, default=base.default))
    return specs


# ---- submit and watch -------------------------------------------------------------------------------------


def submit_button(service: JobService, job: Job, actor: User) -> None:
    if st.button("Submit job", type="primary", key="jobs_submit", icon=":material/play_arrow:"):
        try:
            service.submit(job.id, actor)
            st.toast("Submitted.")
            st.rerun()
        except HeliosError as exc:
            show_validation(exc)


def live_status(service: JobService, job: Job, actor: User) -> None:
    """The job's stages and counts; refreshes itself every second while the job runs."""
    if job.status in ACTIVE_STAGES:
        st.fragment(run_every=1.0)(guarded(status_panel))(service, job.id, actor, True)
    else:
        status_panel(service, job.id, actor, False)


def status_panel(service: JobService, job_id: str, actor: User, watching: bool) -> None:
    current = get_job(service.ch, job_id, actor)
    if watching and current.status not in ACTIVE_STAGES:
        st.rerun()  # finished: redraw the whole page once, then stop refreshing
    steps = [s for s in STAGES if s != FAIL]
    reached = steps.index(current.status) + 1 if current.status in steps else \
        max((steps.index(s["stage"]) + 1 for s in current.stages if s["stage"] in steps), default=1)
    st.progress(reached / len(steps), text=f"**{current.status}**")
    progress = service.progress.get(job_id)
    if current.status in ACTIVE_STAGES and progress is not None and progress.files_total:
        st.caption(f"File {min(progress.files_done + 1, progress.files_total)} of {progress.files_total}: "
                   f"{progress.file} · {plural(progress.rows, 'row')} read · {progress.inserted:,} inserted · "
                   f"{progress.quarantined:,} quarantined")
    if current.status == FAIL:
        show_error(current.error)
    stages = [{**s, "at": when(s.get("at"))} for s in current.stages]  # to the second, not the microsecond
    st.dataframe(pd.DataFrame(stages), hide_index=True, width="stretch")
    results(current)


def results(job: Job) -> None:
    """Rows inserted and quarantined per file; the quarantined rows one click away in the SQL explorer."""
    files = job.result.get("files", [])
    if not files:
        return
    frame = pd.DataFrame([{"file": f"{f['owner']}/{f['file']}", "inserted": f["inserted"],
                           "quarantined": f["quarantined"]} for f in files])
    long = frame.melt(id_vars="file", var_name="rows", value_name="count")
    figure = px.bar(long, x="file", y="count", color="rows", barmode="group",
                    color_discrete_map={"inserted": "#2e7d32", "quarantined": "#c62828"})
    figure.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(figure, width="stretch")
    if job.status == SUCCESS and frame["quarantined"].sum() and job.table:
        if st.button("Open the quarantined rows in the SQL explorer", key="jobs_open_quarantine"):
            open_in_sql_explorer(quarantine_sql(job))


def quarantine_sql(job: Job) -> str:
    """The job's quarantined rows: names quoted, the job id a quoted literal (never pasted as is)."""
    return (f"SELECT origin, sub_index, error_type, column_name, error_message, raw\n"
            f"FROM {qualified(job.database, quarantine_name(job.table))}\n"
            f"WHERE source = 'import' AND source_id = {sql_string(job.id)}\nORDER BY origin, sub_index")


def jobs_tab(actor: User) -> None:
    service = upload_storage()
    if service is None:
        return
    mine = list_jobs(service.ch, actor)
    new_job_form(service, actor, expanded=not mine)
    jobs = [j for j in mine if j.target != ANALYSIS]  # analyses have their own tab
    if not jobs:
        st.info("No import jobs yet. Create one above.")
        return
    job = choose_job(service.ch, jobs)
    job_header(job)
    if not job.submitted:
        o1, o2 = st.columns(2)
        with o1.container(border=True):
            owner_links(service, job, actor)
        with o2.container(border=True):
            own_upload(service, job, actor)
    owners_table(service, job)
    if job.target == "new" and not job.submitted:
        job = schema_editor(service, job, actor)
    if job.submitted:
        live_status(service, job, actor)
    else:
        submit_button(service, job, actor)


# ---- a PostgreSQL dump, loaded now ----------------------------------------------------------------------------


def dump_tab(ch: ClickHouse) -> None:
    st.caption("A plain-format dump (`pg_dump -F p`, the .sql file) becomes a new ClickHouse database: one table "
               "per table, types mapped, rows that do not fit kept in each table's quarantine. No PostgreSQL needed.")
    dump_file = st.file_uploader("Dump file", type=["sql", "txt", "dump"], key="dump_file")
    dump_db = st.text_input("New database", key="dump_db", placeholder="shop")
    replace = st.checkbox("Replace the database if it exists", key="dump_replace")
    if st.button("Load dump", type="primary", key="dump_load", disabled=dump_file is None,
                 icon=":material/database_upload:"):
        load_dump_now(ch, dump_file, dump_db, replace)
    report = state.get("dump_report")
    if report:
        dump_report(report)


def load_dump_now(ch: ClickHouse, dump_file: Any, dump_db: str, replace: bool) -> None:
    """Load the uploaded dump into a new database, with progress per table; the report is kept for the page."""
    with st.status("Loading the dump…", expanded=True) as status:
        bar = st.progress(0.0, text="Reading tables")
        try:
            if not dump_db:
                raise ValidationError("missing necessary fields", "Name the new database.",
                                      missing_fields=["database"])
            seen: dict[str, int] = {}

            def on_progress(table: str, rows: int) -> None:
                seen[table] = rows
                bar.progress(min(0.95, 0.05 + 0.1 * len(seen)), text=f"{table}: {plural(rows, 'row')}")

            report = load_dump(ch, dump_file.getvalue(), dump_db, replace=replace, origin=dump_file.name,
                               progress=on_progress)
            bar.progress(1.0, text="Done")
            status.update(label=f"Loaded {plural(report.inserted, 'row')} into {dump_db}"
                                + (f" ({report.quarantined:,} quarantined)" if report.quarantined else ""),
                          state="complete")
            state["dump_report"] = report.to_json()
        except HeliosError as exc:
            status.update(label="The dump was not loaded", state="error")
            show_validation(exc)


def dump_report(report: dict[str, Any]) -> None:
    """What the last dump loaded, what it could not, and what it ignored."""
    st.dataframe(pd.DataFrame(report["tables"]), hide_index=True, width="stretch")
    if report["unsupported"]:
        count = len(report["unsupported"])
        st.warning(f"{plural(count, 'statement')} {'was' if count == 1 else 'were'} not loaded:",
                   icon=":material/warning:")
        st.dataframe(pd.DataFrame(report["unsupported"]), hide_index=True, width="stretch")
    with st.expander("Ignored statements and notes"):
        st.dataframe(pd.DataFrame([{"kind": k, "count": v} for k, v in report["ignored"].items()]),
                     hide_index=True)
        for note in report["notes"]:
            st.markdown(f"- {note}")


# ---- the page ---------------------------------------------------------------------------------------------------


def main() -> None:
    actor = acting_user()  # lists and opens only this user's jobs (admins: any by id)
    st.title("Import")
    tab_jobs, tab_analysis, tab_dump = st.tabs(["Import jobs", "Analysis jobs", "Load a PostgreSQL dump"])
    with tab_jobs:
        jobs_tab(actor)
    with tab_analysis:
        with user_errors(stop=False):  # the other tabs still work
            analysis_tab(get_job_service())
    with tab_dump:
        dump_tab(runtime().clickhouse)


main()
