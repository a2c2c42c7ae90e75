"""Create a table from a stream: a six-step wizard whose state lives in st.session_state.

The page reads like the wizard: the state the steps share, one function per step, the table of steps, and
``main()``, which shows where the user is and runs the current step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pandas as pd
import streamlit as st

from helios_core.aws import AwsConnection
from helios_core.clickhouse import list_user_databases, table_exists
from helios_core.ddl import (
    ENGINES,
    PARTITION_FUNCTIONS,
    TTL_UNITS,
    PartitionSpec,
    TableOptions,
    TtlSpec,
    create_database_sql,
    database_exists,
    default_partition,
    sorting_key,
    type_catalogue,
)
from helios_core.errors import HeliosError
from helios_core.identifiers import check_identifier, qualified, sanitize_name
from helios_core.schema import FORMATS, VIRTUAL_SOURCES, ColumnSpec, infer_schema
from helios_core.serverless import STARTING_POSITIONS, LambdaOptions, clickhouse_url_for_lambda, deploy_or_template
from helios_core.sources import START_POSITIONS, Connection, CreateRequest, check_request, get_source, preview_ddl
from helios_core.streams import sample_stream, stream_arn
from helios_core.table_request import create_and_start
from helios_core.wording import plural
from pages._shared import (
    WIZARD_HANDOVER_KEY,
    acting_user,
    open_in_sql_explorer,
    open_table,
    require_aws_connection,
    runtime,
    sandbox_badge,
    show_error,
    stream_names,
    user_errors,
)

VIRTUAL_NAMES = {"_arrival_time": "arrival time", "_partition_key": "partition key", "_shard_id": "shard",
                 "_sequence_number": "sequence number", "_raw_message": "raw message"}
EDIT_FIELDS = ["name", "type", "json_path", "required", "default"]
INGEST_LABELS = {"app": "This Helios (in-app)", "workers": "Headless workers", "lambda": "AWS Lambda"}
# Widgets of steps not shown in this run would lose their values; re-assigning keeps them (going back works).
PERSIST = ("wiz_kind", "wiz_stream_select", "wiz_start", "wiz_start_ts", "wiz_sample_n", "wiz_virtual", "wiz_db_mode",
           "wiz_database", "wiz_new_db", "wiz_table", "wiz_engine", "wiz_version_col", "wiz_order_by",
           "wiz_partition_on", "wiz_partition_col", "wiz_partition_fn", "wiz_ttl_on", "wiz_ttl_col", "wiz_ttl_amount",
           "wiz_ttl_unit", "wiz_mode", "wiz_lambda_batch", "wiz_lambda_window", "wiz_lambda_start", "wiz_lambda_how",
           "wiz_cluster", "wiz_distributed")
state = st.session_state
ch = runtime().clickhouse


# ---- the wizard's state ----------------------------------------------------------------------------


def keep_widget_values() -> None:
    """Every wizard value survives the steps that do not show its widget; a few start with a default."""
    state.setdefault("wiz_step", 0)
    for key in PERSIST:
        if key in state:
            state[key] = state[key]
    state.setdefault("wiz_ttl_amount", 30)
    state.setdefault("wiz_ttl_unit", "DAY")


def go(step: int) -> None:
    state["wiz_step"] = max(0, min(step, len(STEPS) - 1))


def take_handover() -> None:
    """Stream preview's "Continue to create table": its stream, schema and sample; the wizard starts at step 2."""
    handover = state.pop(WIZARD_HANDOVER_KEY, None)
    if handover is None:
        return
    state["wizard_stream"], schema, events = handover
    state["wiz_stream_select"] = state["wizard_stream"]
    set_schema(schema, events)
    go(1)


def columns_from_schema(schema) -> list[dict]:
    return [{"name": c.name, "type": c.type, "json_path": c.json_path, "required": bool(c.required),
             "default": c.default or "", "allowed_values": ", ".join(c.allowed_values or []),
             "format": c.format or "", "virtual": c.virtual or "", "reason": c.reason or "",
             "time_unit": c.time_unit or ""}
            for c in schema.columns]


def set_schema(schema, sample_events) -> None:
    state["wizard_schema"] = schema
    state["wizard_sample"] = sample_events
    state["wiz_columns"] = columns_from_schema(schema)
    state["wiz_editor_version"] = state.get("wiz_editor_version", 0) + 1
    state["wiz_schema_for"] = state.get("wizard_stream")
    state["wiz_order_by"] = [c for c in schema.order_by if c in {x.name for x in schema.columns}]
    match = re.fullmatch(r"(\w*)\(?`?(\w+)`?\)?", schema.partition_by or "")
    if match and match.group(2) in {c.name for c in schema.columns}:
        function = match.group(1) if match.group(1) in PARTITION_FUNCTIONS else ""
        state["wiz_partition_col"], state["wiz_partition_fn"] = match.group(2), function
    else:  # no suggestion: step 4 falls back to the time column by month (or no partition)
        state["wiz_partition_col"] = ""


def column_specs() -> list[ColumnSpec]:
    specs = []
    for row in state.get("wiz_columns", []):
        allowed = [v.strip() for v in str(row.get("allowed_values") or "").split(",") if v.strip()]
        specs.append(ColumnSpec(name=str(row.get("name") or "").strip(), type=str(row.get("type") or "").strip(),
                                json_path="" if row.get("virtual") else str(row.get("json_path") or "").strip(),
                                required=bool(row.get("required")), default=str(row.get("default") or "") or None,
                                allowed_values=allowed, format=row.get("format") or "",
                                virtual=row.get("virtual") or "", time_unit=row.get("time_unit") or ""))
    for source in state.get("wiz_virtual", []):
        name = source.lstrip("_")
        if not any(s.name == name for s in specs):
            specs.append(ColumnSpec(name=name, type=VIRTUAL_SOURCES[source], virtual=source))
    return specs


def current_options() -> TableOptions:
    partition = None
    if state.get("wiz_partition_on") and state.get("wiz_partition_col"):
        partition = PartitionSpec(state["wiz_partition_col"], state.get("wiz_partition_fn", ""))
    ttl = None
    if state.get("wiz_ttl_on") and state.get("wiz_ttl_col"):
        ttl = TtlSpec(state["wiz_ttl_col"], int(state.get("wiz_ttl_amount", 30)), state.get("wiz_ttl_unit", "DAY"))
    new_db = state.get("wiz_db_mode", "Existing") == "New"
    database = (state.get("wiz_new_db", "") if new_db else state.get("wiz_database", "")) or ""
    return TableOptions(database=database.strip(), table=str(state.get("wiz_table", "")).strip(),
                        order_by=list(state.get("wiz_order_by", [])), engine=state.get("wiz_engine", "MergeTree"),
                        version_column=state.get("wiz_version_col", "") or "", partition=partition, ttl=ttl,
                        create_database=new_db, cluster=str(state.get("wiz_cluster", "") or "").strip(),
                        distributed=bool(state.get("wiz_distributed")))


def known_stream_arn(conn: AwsConnection, stream: str) -> str:
    """The stream's ARN from Kinesis, asked once per stream and connection: the review step reruns often."""
    asked = (conn.describe(), stream)
    cached = state.get("wiz_stream_arn")
    if not cached or cached[0] != asked:
        cached = state["wiz_stream_arn"] = (asked, stream_arn(conn, stream))
    return cached[1]


def current_request(conn: AwsConnection) -> CreateRequest:
    stream = state.get("wizard_stream", "")
    return CreateRequest(stream_name=stream, stream_arn=known_stream_arn(conn, stream), columns=column_specs(),
                         options=current_options(), connection=Connection.from_aws(conn),
                         start_position=state.get("wiz_start", "TRIM_HORIZON"),
                         start_timestamp=state.get("wiz_start_ts", ""), mode=state.get("wiz_mode", "app"))


def lambda_options() -> LambdaOptions:
    return LambdaOptions(batch_size=int(state.get("wiz_lambda_batch", 500)),
                         batching_window_s=int(state.get("wiz_lambda_window", 1)),
                         starting_position=state.get("wiz_lambda_start", "TRIM_HORIZON"))


def nav(back: bool = True, next_label: str | None = "Next", next_disabled: bool = False) -> None:
    c1, c2, _ = st.columns([1, 1, 4])
    step = state["wiz_step"]
    if back and step > 0 and c1.button("Back", icon=":material/arrow_back:", key=f"wiz_back_{step}"):
        go(step - 1)
        st.rerun()
    if next_label and c2.button(next_label, type="primary", icon=":material/arrow_forward:", key=f"wiz_next_{step}",
                                disabled=next_disabled):
        go(step + 1)
        st.rerun()


# ---- 1. source ---------------------------------------------------------------------------------------


def step_source(conn: AwsConnection) -> None:
    st.subheader("1. Source stream")
    kind = st.radio("Source type", ["Kinesis", "S3 (coming later)"], horizontal=True, key="wiz_kind")
    if kind != "Kinesis":
        st.info("Reading files from S3 is coming later; choose Kinesis for now.", icon=":material/schedule:")
        return
    names = stream_names(conn)
    if not names:
        st.info("There are no streams in this account and region.")
        return
    if state.get("wiz_stream_select") not in names:
        state["wiz_stream_select"] = state.get("wizard_stream") if state.get("wizard_stream") in names else names[0]
    st.selectbox("Stream", names, key="wiz_stream_select")
    c1, c2 = st.columns(2)
    c1.selectbox("Start reading at", START_POSITIONS, key="wiz_start",
                 help="TRIM_HORIZON: everything stored; LATEST: only new events; AT_TIMESTAMP: from a time.")
    if state.get("wiz_start") == "AT_TIMESTAMP":
        c2.text_input("Start time (ISO, UTC)", key="wiz_start_ts", placeholder="2025-01-01T00:00:00Z")
    if st.button("Next", type="primary", icon=":material/arrow_forward:", key="wiz_next_0"):
        if state.get("wizard_stream") != state["wiz_stream_select"]:  # another stream: its own schema
            state["wizard_stream"] = state["wiz_stream_select"]
            state.pop("wizard_schema", None)
        go(1)
        st.rerun()


# ---- 2. sample and schema ----------------------------------------------------------------------------


def step_sample_and_schema(conn: AwsConnection) -> None:
    stream = state.get("wizard_stream")
    st.subheader(f"2. Sample and schema of `{stream}`")
    need = state.get("wizard_schema") is None or state.get("wiz_schema_for") not in (None, stream)
    c1, c2 = st.columns([1, 4])
    n = c2.number_input("Events to sample", 10, 5000, 200, step=50, key="wiz_sample_n")
    if c1.button("Re-sample", icon=":material/refresh:", key="wiz_resample") or need:
        sample_and_infer(conn, stream, int(n))
    schema = state.get("wizard_schema")
    events = state.get("wizard_sample") or []
    if state.get("wiz_columns") is None and schema is not None:
        state["wiz_columns"] = columns_from_schema(schema)
        state["wiz_schema_for"] = stream
    if schema is None or not schema.columns:
        st.warning("No events to infer a schema from yet. Re-sample (LATEST waits for new events).")
        nav(next_label=None)
        return
    left, right = st.columns([3, 2], gap="large")
    with left:
        inferred_schema(schema, events)
    with right:
        sample_events(events)
    nav()


def sample_and_infer(conn: AwsConnection, stream: str, n: int) -> None:
    try:
        with st.status(f"Sampling {stream}…") as status:
            sample = sample_stream(conn, stream, n=n, wait_s=5.0)
            schema = infer_schema(sample.events)
            status.update(label=f"Sampled {plural(len(sample.events), 'event')} from "
                                f"{plural(len(sample.shards), 'shard')}",
                          state="complete")
        set_schema(schema, list(sample.events))
    except HeliosError as exc:
        show_error(exc)


def inferred_schema(schema, events: list[dict]) -> None:
    st.markdown(f"**Inferred schema** ({plural(len(schema.columns), 'column')} from "
                f"{plural(len(events), 'event')})")
    st.dataframe(pd.DataFrame([{"column": c.name, "type": c.type, "JSON path": c.json_path,
                                "in every event": c.present_in_all, "why": c.reason} for c in schema.columns]),
                 hide_index=True, width="stretch")
    for note in schema.conflicts:
        st.caption(f":material/info: {note}")


def sample_events(events: list[dict]) -> None:
    """A compact table (one line per event, nested values as JSON text); whole events only on request."""
    st.markdown(f"**Sample events** ({len(events)})")
    st.dataframe(pd.DataFrame([{k: orjson.dumps(v).decode() if isinstance(v, (dict, list)) else v
                                for k, v in e.items()} for e in events[:200]]).astype(str),
                 hide_index=True, width="stretch", height=320)
    with st.expander(f"Full events (the first {min(len(events), 20)})"):
        st.code("\n".join(orjson.dumps(e, option=orjson.OPT_INDENT_2).decode() for e in events[:20]),
                language="json")


# ---- 3. edit schema ----------------------------------------------------------------------------------


def step_edit_schema(conn: AwsConnection) -> None:
    st.subheader("3. Edit the schema")
    st.caption("Rename columns, pick types, change the JSON path a column reads, mark required fields, set defaults. "
               "Add or delete rows with the table's controls.")
    rows = state.get("wiz_columns") or []
    types = type_catalogue([r["type"] for r in rows if r.get("type")])
    column_editor(rows, types)
    with st.expander("Quick edit one column", expanded=False):
        quick_edit(types)
    st.multiselect("Add virtual columns from the Kinesis record", list(VIRTUAL_SOURCES), key="wiz_virtual",
                   format_func=lambda v: f"{v.lstrip('_')} — {VIRTUAL_NAMES[v]} ({VIRTUAL_SOURCES[v]})")
    for problem in [p for spec in column_specs() for p in check_identifier(spec.name, "column")]:
        st.warning(problem, icon=":material/warning:")
    nav()


def column_editor(rows: list[dict], types: list[str]) -> None:
    """The columns as an editable table; the fields it does not show (rules, virtual source) follow the JSON path."""
    base = pd.DataFrame(rows or [{"name": "", "type": "String", "json_path": "", "required": False, "default": "",
                                  "allowed_values": "", "format": "", "virtual": "", "reason": ""}])
    edited = st.data_editor(
        base[["name", "type", "json_path", "required", "default"]], num_rows="dynamic", width="stretch",
        hide_index=True, key=f"wiz_editor_{state.get('wiz_editor_version', 0)}",
        column_config={
            "name": st.column_config.TextColumn("Column", required=True),
            "type": st.column_config.SelectboxColumn("Type", options=types, required=True),
            "json_path": st.column_config.TextColumn("JSON path", help="dotted path, e.g. device.os"),
            "required": st.column_config.CheckboxColumn("Required"),
            "default": st.column_config.TextColumn("Default", help="a literal used when the field is missing"),
        })
    by_path = {r.get("json_path"): r for r in rows}
    merged = []
    for record in edited.to_dict(orient="records"):
        old = by_path.get(record.get("json_path")) or {}
        merged.append({**{"allowed_values": "", "format": "", "virtual": "", "reason": ""}, **old,
                       **{k: ("" if record.get(k) is None else record.get(k)) for k in EDIT_FIELDS}})
    merged = [r for r in merged if r.get("name") or r.get("json_path")]
    if merged != rows:
        state["wiz_columns"] = merged


def quick_edit(types: list[str]) -> None:
    names = [r["name"] for r in state["wiz_columns"]]
    if not names:
        return
    q1, q2, q3, q4 = st.columns([2, 2, 2, 1])
    target = q1.selectbox("Column", names, key="wiz_quick_col")
    new_name = q2.text_input("New name", key="wiz_quick_name")
    new_type = q3.selectbox("New type", ["(keep)"] + types, key="wiz_quick_type")
    if q4.button("Apply", key="wiz_quick_apply"):
        for r in state["wiz_columns"]:
            if r["name"] == target:
                if new_name.strip():
                    r["name"] = new_name.strip()
                if new_type != "(keep)":
                    r["type"] = new_type
        state["wiz_editor_version"] = state.get("wiz_editor_version", 0) + 1  # the editor shows the change
        st.rerun()


# ---- 4. table options and rules ----------------------------------------------------------------------


def step_table_options(conn: AwsConnection) -> None:
    st.subheader("4. Table options and validation rules")
    specs = column_specs()
    names = [c.name for c in specs]
    c1, c2 = st.columns(2)
    with c1:
        database_and_table()
    with c2:
        engine_and_sorting_key(names)
    partition(specs, names)
    ttl(names)
    ingest_options()
    validation_rules()
    nav(next_label="Review")


def database_and_table() -> None:
    existing = list(list_user_databases(ch))
    mode = st.radio("Database", ["Existing", "New"], horizontal=True, key="wiz_db_mode")
    if mode == "Existing" and existing:
        if state.get("wiz_database") not in existing:
            state["wiz_database"] = "default" if "default" in existing else existing[0]
        st.selectbox("Existing database", existing, key="wiz_database")
    else:
        st.text_input("New database name", key="wiz_new_db")
    if "wiz_table" not in state:
        state["wiz_table"] = sanitize_name(state.get("wizard_stream", "events"))
    st.text_input("Table name", key="wiz_table")
    options = current_options()
    if options.database and options.table and not check_identifier(options.table, "table") \
            and not check_identifier(options.database, "database") \
            and table_exists(ch, options.database, options.table):
        show_error(f"{options.database}.{options.table} already exists; choose another name.")


def engine_and_sorting_key(names: list[str]) -> None:
    st.selectbox("Engine", ENGINES, key="wiz_engine",
                 help="ReplacingMergeTree keeps the newest row per sorting key (by a version column).")
    if state.get("wiz_engine") == "ReplacingMergeTree":
        st.selectbox("Version column", [""] + names, key="wiz_version_col")
    state["wiz_order_by"] = [c for c in state.get("wiz_order_by", []) if c in names]
    st.multiselect("Sorting key (ORDER BY), in order", names, key="wiz_order_by",
                   help="Queries filtering on these columns are fast. Helios uses exactly what you choose.")


def partition(specs: list[ColumnSpec], names: list[str]) -> None:
    p1, p2, p3 = st.columns([1, 2, 2])
    if state.get("wiz_partition_col") not in names:  # no suggestion (or its column was renamed): the time column
        schema = state.get("wizard_schema")
        suggested = default_partition(specs, getattr(schema, "time_column", None))
        state["wiz_partition_col"] = suggested.column if suggested else ""
        state["wiz_partition_fn"] = suggested.function if suggested else ""
    state.setdefault("wiz_partition_on", bool(state.get("wiz_partition_col")))
    p1.toggle("Partition", key="wiz_partition_on")
    if state.get("wiz_partition_on"):
        if state.get("wiz_partition_col") not in names:
            state["wiz_partition_col"] = names[0] if names else ""
        p2.selectbox("Partition column", names, key="wiz_partition_col")
        p3.selectbox("Partition by", list(PARTITION_FUNCTIONS), key="wiz_partition_fn",
                     format_func=lambda f: f"{f}(column) — {PARTITION_FUNCTIONS[f]}" if f else PARTITION_FUNCTIONS[f])


def ttl(names: list[str]) -> None:
    t1, t2, t3, t4 = st.columns([1, 2, 1, 1])
    t1.toggle("TTL", key="wiz_ttl_on")
    if state.get("wiz_ttl_on"):
        if state.get("wiz_ttl_col") not in names:
            state["wiz_ttl_col"] = names[0] if names else ""
        t2.selectbox("Delete rows when this time column is older than", names, key="wiz_ttl_col")
        t3.number_input("Amount", 1, 100000, key="wiz_ttl_amount")
        t4.selectbox("Unit", TTL_UNITS, key="wiz_ttl_unit")


def ingest_options() -> None:
    """Who ingests the stream (this Helios, headless workers, or AWS Lambda) and, on a server, the cluster."""
    st.markdown("**Ingest** — who reads the stream into the table")
    st.radio("Ingest with", list(INGEST_LABELS), key="wiz_mode", horizontal=True, format_func=INGEST_LABELS.get,
             label_visibility="collapsed")
    mode = state.get("wiz_mode", "app")
    if mode == "workers":
        st.caption("Run `python -m helios_core.ingest --worker-id NAME` on one or more hosts: they share the "
                   "shards through leases in DynamoDB. The source's definition goes to the DynamoDB mapping "
                   "table when it is created.")
    elif mode == "lambda":
        l1, l2, l3, l4 = st.columns(4)
        state.setdefault("wiz_lambda_batch", 500)
        state.setdefault("wiz_lambda_window", 1)
        l1.number_input("Batch size", 1, 10_000, key="wiz_lambda_batch")
        l2.number_input("Batching window (s)", 0, 300, key="wiz_lambda_window")
        l3.selectbox("Starting position", STARTING_POSITIONS, key="wiz_lambda_start")
        l4.radio("Create", ["deploy", "template"], key="wiz_lambda_how",
                 format_func={"deploy": "Deploy now", "template": "CloudFormation template"}.get)
        st.caption("One batch per shard at a time (parallelization factor 1), bisect on error, partial-batch "
                   "responses. The function writes to the ClickHouse server Helios uses; its URL goes to "
                   "Secrets Manager, never into the function's settings.")
    if ch.embedded:
        st.caption("Clusters (ON CLUSTER, replicated tables) need a ClickHouse server: set HELIOS_CLICKHOUSE_URL.")
    else:
        k1, k2 = st.columns([2, 1])
        k1.text_input("ClickHouse cluster (optional)", key="wiz_cluster",
                      help="Creates the table and its quarantine table ON CLUSTER with replicated engines.")
        k2.checkbox("Distributed table", key="wiz_distributed", disabled=not state.get("wiz_cluster"),
                    help="The table becomes a Distributed table over <table>_local on every shard.")


def validation_rules() -> None:
    st.markdown("**Validation rules** — events that break them go to the quarantine table, never lost.")
    rules = pd.DataFrame([{"name": r["name"], "required": bool(r.get("required")),
                           "allowed_values": r.get("allowed_values", ""), "format": r.get("format", "")}
                          for r in state.get("wiz_columns", [])])
    if rules.empty:
        return
    edited = st.data_editor(rules, hide_index=True, width="stretch", disabled=["name"],
                            key=f"wiz_rules_{state.get('wiz_editor_version', 0)}",
                            column_config={
                                "required": st.column_config.CheckboxColumn("Required"),
                                "allowed_values": st.column_config.TextColumn(
                                    "Allowed values", help="comma-separated; empty = any value"),
                                "format": st.column_config.SelectboxColumn("Format", options=list(FORMATS))})
    by_name = {r["name"]: r for r in edited.to_dict(orient="records")}
    for r in state["wiz_columns"]:
        rule = by_name.get(r["name"])
        if rule:
            r["required"] = bool(rule["required"])
            r["allowed_values"] = rule.get("allowed_values") or ""
            r["format"] = rule.get("format") or ""


# ---- 5. review ---------------------------------------------------------------------------------------


def step_review(conn: AwsConnection) -> None:
    st.subheader("5. Review")
    with user_errors():  # the stream may have gone since step 1
        request = current_request(conn)
    with st.spinner("Checking with ClickHouse…"):
        problems = check_request(ch, request)
    if problems:
        show_error(f"{plural(len(problems), 'problem')} to fix before anything is created:")
        st.markdown("\n".join(f"- {p}" for p in problems))
    else:
        what_will_be_created(request)
    c1, c2, _ = st.columns([1, 1, 4])
    if c1.button("Back", icon=":material/arrow_back:", key="wiz_back_4"):
        go(3)
        st.rerun()
    if c2.button("Create table", type="primary", icon=":material/add_circle:", key="wiz_create",
                 disabled=bool(problems)):
        create(conn, request)


def what_will_be_created(request: CreateRequest) -> None:
    st.success("Everything checks out. Nothing has been created yet.", icon=":material/check_circle:")
    table_sql, quarantine_sql = preview_ddl(request.options, request.columns)
    if not database_exists(ch, request.options.database):
        st.markdown(f"**Database** `{request.options.database}` (new)")
        st.code(create_database_sql(request.options.database), language="sql")
    st.markdown(f"**Table** `{request.options.database}.{request.options.table}` ← stream "
                f"`{request.stream_name}` from {request.start_position}")
    order_by, order_note = sorting_key(request.options, request.columns)
    st.caption(f"Sorting key: {', '.join(order_by) or 'tuple()'} ({order_note}).")
    st.code(table_sql, language="sql")
    st.markdown("**Quarantine table** (events that fail validation, with the reason)")
    st.code(quarantine_sql, language="sql")
    st.markdown(f"**Ingest:** {INGEST_LABELS[request.mode]}" + (
        " — " + ("deployed now" if state.get("wiz_lambda_how", "deploy") == "deploy"
                 else "shown as a CloudFormation template") if request.mode == "lambda" else ""))


def create(conn: AwsConnection, request: CreateRequest) -> None:
    """Create the table and source, start ingesting (or set up Lambda), and go to the result."""
    with user_errors(stop=False):
        template = state.get("wiz_lambda_how", "deploy") == "template"
        if request.mode == "lambda" and not template:
            clickhouse_url_for_lambda(ch.settings)  # refused before anything is created
        with st.spinner("Creating…"):
            result = create_and_start(ch, request, conn, acting_user())
            if request.mode == "lambda":
                st.write("Creating the Lambda resources…" if not template else "Writing the template…")
                result.update(deploy_or_template(conn, get_source(ch, result["sourceId"]), lambda_options(),
                                                 template=template))
        state["wiz_result"] = result
        state["wiz_result_table"] = (request.options.database, request.options.table)
        go(5)
        st.rerun()


# ---- 6. created --------------------------------------------------------------------------------------


def step_created(conn: AwsConnection) -> None:
    result = state.get("wiz_result")
    if not result:
        go(0)
        st.rerun()
    database, table = state["wiz_result_table"]
    st.subheader("6. Created")
    st.success(result["message"], icon=":material/check_circle:")
    m1, m2 = st.columns(2)
    m1.markdown(f"**Table UUID**  \n`{result['tableUUID']}`")
    m2.markdown(f"**Stream ARN**  \n`{result['streamARN']}`")
    st.code(result["createTableQuery"], language="sql")
    with st.expander("Quarantine table DDL"):
        st.code(result["quarantineTableQuery"], language="sql")
    if result.get("lambda"):
        st.markdown("**AWS Lambda** — deployed; the Sources page shows its mapping state and iterator age.")
        st.json(result["lambda"], expanded=False)
    if result.get("cloudFormation"):
        cloudformation_template(result)
    where_next(database, table)


def cloudformation_template(result: dict) -> None:
    template = json.dumps(result["cloudFormation"], indent=2)
    st.markdown("**CloudFormation template** — deploy it through your pipeline (the ClickHouse URL is a "
                "NoEcho parameter); the DynamoDB mapping item is in its Metadata.")
    st.download_button("Download template", template, file_name=f"helios-{result['sourceId']}.json",
                       mime="application/json", icon=":material/download:", key="wiz_cfn_download")
    with st.expander("Template"):
        st.code(template, language="json")


def where_next(database: str, table: str) -> None:
    b1, b2, b3, b4 = st.columns(4)
    if b1.button("Open in Databases", icon=":material/database:", key="wiz_open_db"):
        open_table(database, table)
    if b2.button("Query in SQL explorer", icon=":material/terminal:", key="wiz_open_sql"):
        open_in_sql_explorer(f"SELECT *\nFROM {qualified(database, table)}\nORDER BY 1 DESC\nLIMIT 100")
    if b3.button("Sources", icon=":material/conversion_path:", key="wiz_open_sources"):
        st.switch_page("pages/sources.py")
    if b4.button("Create another", icon=":material/add:", key="wiz_again"):
        for key in [k for k in state.keys() if str(k).startswith("wiz_")]:
            del state[key]
        st.rerun()


# ---- the wizard ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    label: str
    show: Callable[[AwsConnection], None]


STEPS = [Step("Source", step_source), Step("Sample & schema", step_sample_and_schema),
         Step("Edit schema", step_edit_schema), Step("Table options", step_table_options),
         Step("Review", step_review), Step("Create", step_created)]


def progress(step: int) -> None:
    st.progress((step + 1) / len(STEPS), text=f"Step {step + 1} of {len(STEPS)}: **{STEPS[step].label}**")
    st.caption("  →  ".join(f"**{s.label}**" if i == step else s.label for i, s in enumerate(STEPS)))


def main() -> None:
    keep_widget_values()
    take_handover()
    st.title("Create a table from a stream")
    sandbox_badge()
    step = state["wiz_step"]
    progress(step)
    conn = require_aws_connection("wiz_use_sandbox")
    STEPS[step].show(conn)


main()
