"""Create a table from a stream: a six-step wizard whose state lives in st.session_state."""

from __future__ import annotations

import re

import orjson
import pandas as pd
import streamlit as st

from helios_core.aws import list_streams
from helios_core.clickhouse import list_databases, table_exists
from helios_core.ddl import (ENGINES, PARTITION_FUNCTIONS, TTL_UNITS, PartitionSpec, TableOptions, TtlSpec,
                             sorting_key, type_catalogue)
from helios_core.errors import HeliosError
from helios_core.identifiers import check_identifier, qualified, sanitize_name
from helios_core.schema import FORMATS, VIRTUAL_SOURCES, ColumnSpec, infer_schema
from helios_core.sources import START_POSITIONS, Connection, CreateRequest, check_request, create_table_and_source, \
    new_source_id, preview_ddl
from helios_core.streams import sample_stream
from pages._shared import (AWS_STREAMS_KEY, acting_user, open_in_sql_explorer, require_aws_connection, runtime,
                           sandbox_badge, show_error, user_errors)

STEPS = ["Source", "Sample & schema", "Edit schema", "Table options", "Review", "Create"]
VIRTUAL_NAMES = {"_arrival_time": "arrival time", "_partition_key": "partition key", "_shard_id": "shard",
                 "_sequence_number": "sequence number", "_raw_message": "raw message"}
EDIT_FIELDS = ["name", "type", "json_path", "required", "default"]
state = st.session_state
ch = runtime().clickhouse
state.setdefault("wiz_step", 0)
# Widgets of steps not shown in this run would lose their values; re-assigning keeps them (going back works).
PERSIST = ("wiz_kind", "wiz_stream_select", "wiz_start", "wiz_start_ts", "wiz_sample_n", "wiz_virtual", "wiz_db_mode",
           "wiz_database", "wiz_new_db", "wiz_table", "wiz_engine", "wiz_version_col", "wiz_order_by",
           "wiz_partition_on", "wiz_partition_col", "wiz_partition_fn", "wiz_ttl_on", "wiz_ttl_col", "wiz_ttl_amount",
           "wiz_ttl_unit")
for _key in PERSIST:
    if _key in state:
        state[_key] = state[_key]
state.setdefault("wiz_ttl_amount", 30)
state.setdefault("wiz_ttl_unit", "DAY")


def go(step: int) -> None:
    state["wiz_step"] = max(0, min(step, len(STEPS) - 1))


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
                        create_database=new_db)


def current_request(conn) -> CreateRequest:
    stream = state.get("wizard_stream", "")
    arn = next((s.arn for s in state.get(AWS_STREAMS_KEY) or [] if s.name == stream and s.arn), "") or \
        f"arn:aws:kinesis:{conn.region}:000000000000:stream/{stream}"
    connection = Connection.from_aws(conn)
    return CreateRequest(stream_name=stream, stream_arn=arn, columns=column_specs(), options=current_options(),
                         connection=connection, start_position=state.get("wiz_start", "TRIM_HORIZON"),
                         start_timestamp=state.get("wiz_start_ts", ""))


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


# ---- page ----------------------------------------------------------------------------------------

st.title("Create a table from a stream")
sandbox_badge()
step = state["wiz_step"]
st.progress((step + 1) / len(STEPS), text=f"Step {step + 1} of {len(STEPS)}: **{STEPS[step]}**")
st.caption("  →  ".join(f"**{s}**" if i == step else s for i, s in enumerate(STEPS)))

conn = require_aws_connection("wiz_use_sandbox")

# 1 ─ source
if step == 0:
    st.subheader("1. Source stream")
    kind = st.radio("Source type", ["Kinesis", "S3 (coming later)"], horizontal=True, key="wiz_kind")
    if kind != "Kinesis":
        st.info("Reading files from S3 is coming later; choose Kinesis for now.", icon=":material/schedule:")
        st.stop()
    streams = state.get(AWS_STREAMS_KEY)
    if streams is None:
        with user_errors(), st.spinner("Listing streams…"):
            streams = list_streams(conn, details=False)
            state[AWS_STREAMS_KEY] = streams
    names = [s.name for s in streams or []]
    if not names:
        st.info("There are no streams in this account and region.")
        st.stop()
    if state.get("wiz_stream_select") not in names:
        state["wiz_stream_select"] = state.get("wizard_stream") if state.get("wizard_stream") in names else names[0]
    st.selectbox("Stream", names, key="wiz_stream_select")
    c1, c2 = st.columns(2)
    c1.selectbox("Start reading at", START_POSITIONS, key="wiz_start",
                 help="TRIM_HORIZON: everything stored; LATEST: only new events; AT_TIMESTAMP: from a time.")
    if state.get("wiz_start") == "AT_TIMESTAMP":
        c2.text_input("Start time (ISO, UTC)", key="wiz_start_ts", placeholder="2025-01-01T00:00:00Z")
    if st.button("Next", type="primary", icon=":material/arrow_forward:", key="wiz_next_0"):
        if state.get("wizard_stream") != state["wiz_stream_select"]:
            state["wizard_stream"] = state["wiz_stream_select"]
            state.pop("wizard_schema", None)
        go(1)
        st.rerun()

# 2 ─ sample and schema
elif step == 1:
    stream = state.get("wizard_stream")
    st.subheader(f"2. Sample and schema of `{stream}`")
    need = state.get("wizard_schema") is None or state.get("wiz_schema_for") not in (None, stream)
    c1, c2 = st.columns([1, 4])
    n = c2.number_input("Events to sample", 10, 5000, 200, step=50, key="wiz_sample_n")
    if c1.button("Re-sample", icon=":material/refresh:", key="wiz_resample") or need:
        try:
            with st.status(f"Sampling {stream}…") as status:
                sample = sample_stream(conn, stream, n=int(n), wait_s=5.0)
                schema = infer_schema(sample.events)
                status.update(label=f"Sampled {len(sample.events)} events from {len(sample.shards)} shard(s)",
                              state="complete")
            set_schema(schema, list(sample.events))
        except HeliosError as exc:
            show_error(exc)
    schema = state.get("wizard_schema")
    events = state.get("wizard_sample") or []
    if state.get("wiz_columns") is None and schema is not None:
        state["wiz_columns"] = columns_from_schema(schema)
        state["wiz_schema_for"] = stream
    if schema is None or not schema.columns:
        st.warning("No events to infer a schema from yet. Re-sample (LATEST waits for new events).")
        nav(next_label=None)
        st.stop()
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.markdown(f"**Inferred schema** ({len(schema.columns)} columns from {len(events)} events)")
        st.dataframe(pd.DataFrame([{"column": c.name, "type": c.type, "JSON path": c.json_path,
                                    "in every event": c.present_in_all, "why": c.reason} for c in schema.columns]),
                     hide_index=True, width="stretch")
        for note in schema.conflicts:
            st.caption(f":material/info: {note}")
    with right:
        st.markdown(f"**Sample events** ({len(events)})")
        for i, event in enumerate(events[:20]):
            st.code(orjson.dumps(event, option=orjson.OPT_INDENT_2).decode(), language="json")
    nav()

# 3 ─ edit schema
elif step == 2:
    st.subheader("3. Edit the schema")
    st.caption("Rename columns, pick types, change the JSON path a column reads, mark required fields, set defaults. "
               "Add or delete rows with the table's controls.")
    rows = state.get("wiz_columns") or []
    types = type_catalogue([r["type"] for r in rows if r.get("type")])
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

    with st.expander("Quick edit one column", expanded=False):
        names = [r["name"] for r in state["wiz_columns"]]
        if names:
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
                state["wiz_editor_version"] = state.get("wiz_editor_version", 0) + 1
                st.rerun()
    st.multiselect("Add virtual columns from the Kinesis record", list(VIRTUAL_SOURCES), key="wiz_virtual",
                   format_func=lambda v: f"{v.lstrip('_')} — {VIRTUAL_NAMES[v]} ({VIRTUAL_SOURCES[v]})")
    problems = []
    for spec in column_specs():
        problems += [p for p in check_identifier(spec.name, "column")]
    for p in problems:
        st.warning(p, icon=":material/warning:")
    nav()

# 4 ─ table options and rules
elif step == 3:
    st.subheader("4. Table options and validation rules")
    specs = column_specs()
    names = [c.name for c in specs]
    existing = [d for d in list_databases(ch) if d != "helios"]
    c1, c2 = st.columns(2)
    with c1:
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
            st.error(f"{options.database}.{options.table} already exists; choose another name.")
    with c2:
        st.selectbox("Engine", ENGINES, key="wiz_engine",
                     help="ReplacingMergeTree keeps the newest row per sorting key (by a version column).")
        if state.get("wiz_engine") == "ReplacingMergeTree":
            st.selectbox("Version column", [""] + names, key="wiz_version_col")
        state["wiz_order_by"] = [c for c in state.get("wiz_order_by", []) if c in names]
        st.multiselect("Sorting key (ORDER BY), in order", names, key="wiz_order_by",
                       help="Queries filtering on these columns are fast. Helios uses exactly what you choose.")
    p1, p2, p3 = st.columns([1, 2, 2])
    state.setdefault("wiz_partition_on", bool(state.get("wiz_partition_col")))
    p1.toggle("Partition", key="wiz_partition_on")
    if state.get("wiz_partition_on"):
        if state.get("wiz_partition_col") not in names:
            state["wiz_partition_col"] = names[0] if names else ""
        p2.selectbox("Partition column", names, key="wiz_partition_col")
        p3.selectbox("Partition by", list(PARTITION_FUNCTIONS), key="wiz_partition_fn",
                     format_func=lambda f: f"{f}(column) — {PARTITION_FUNCTIONS[f]}" if f else PARTITION_FUNCTIONS[f])
    t1, t2, t3, t4 = st.columns([1, 2, 1, 1])
    t1.toggle("TTL", key="wiz_ttl_on")
    if state.get("wiz_ttl_on"):
        if state.get("wiz_ttl_col") not in names:
            state["wiz_ttl_col"] = names[0] if names else ""
        t2.selectbox("Delete rows when this time column is older than", names, key="wiz_ttl_col")
        t3.number_input("Amount", 1, 100000, key="wiz_ttl_amount")
        t4.selectbox("Unit", TTL_UNITS, key="wiz_ttl_unit")

    st.markdown("**Validation rules** — events that break them go to the quarantine table, never lost.")
    rules = pd.DataFrame([{"name": r["name"], "required": bool(r.get("required")),
                           "allowed_values": r.get("allowed_values", ""), "format": r.get("format", "")}
                          for r in state.get("wiz_columns", [])])
    if not rules.empty:
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
    nav(next_label="Review")

# 5 ─ review
elif step == 4:
    st.subheader("5. Review")
    request = current_request(conn)
    with st.spinner("Checking with ClickHouse…"):
        problems = check_request(ch, request)
    if problems:
        st.error(f"{len(problems)} problem(s) to fix before anything is created:", icon=":material/error:")
        st.markdown("\n".join(f"- {p}" for p in problems))
    else:
        st.success("Everything checks out. Nothing has been created yet.", icon=":material/check_circle:")
        table_sql, quarantine_sql = preview_ddl(request.options, request.columns)
        st.markdown(f"**Table** `{request.options.database}.{request.options.table}` ← stream "
                    f"`{request.stream_name}` from {request.start_position}")
        order_by, order_note = sorting_key(request.options, request.columns)
        st.caption(f"Sorting key: {', '.join(order_by) or 'tuple()'} ({order_note}).")
        st.code(table_sql, language="sql")
        st.markdown("**Quarantine table** (events that fail validation, with the reason)")
        st.code(quarantine_sql, language="sql")
    c1, c2, _ = st.columns([1, 1, 4])
    if c1.button("Back", icon=":material/arrow_back:", key="wiz_back_4"):
        go(3)
        st.rerun()
    if c2.button("Create table", type="primary", icon=":material/add_circle:", key="wiz_create",
                 disabled=bool(problems)):
        try:
            from helios_core.ingest.manager import get_ingest_manager
            manager = get_ingest_manager()
            request.source_id = new_source_id()
            if conn.method == "keys":  # before the source exists, so its consumer starts with these keys
                manager.register_connection(request.source_id, conn)
            with st.spinner("Creating…"):
                result = create_table_and_source(ch, request, acting_user())
            manager.sync()
            state["wiz_result"] = result.seed_shape()
            state["wiz_result_table"] = (request.options.database, request.options.table)
            go(5)
            st.rerun()
        except HeliosError as exc:
            if request.source_id:  # nothing was created: forget the keys handed over for it
                get_ingest_manager().connections.pop(request.source_id, None)
            show_error(exc)

# 6 ─ result
else:
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
    b1, b2, b3, b4 = st.columns(4)
    if b1.button("Open in Databases", icon=":material/database:", key="wiz_open_db"):
        state["db_selected_database"], state["db_selected_table"] = database, table
        st.switch_page("pages/databases.py")
    if b2.button("Query in SQL explorer", icon=":material/terminal:", key="wiz_open_sql"):
        open_in_sql_explorer(f"SELECT *\nFROM {qualified(database, table)}\nORDER BY 1 DESC\nLIMIT 100")
    if b3.button("Sources", icon=":material/conversion_path:", key="wiz_open_sources"):
        st.switch_page("pages/sources.py")
    if b4.button("Create another", icon=":material/add:", key="wiz_again"):
        for key in [k for k in state.keys() if str(k).startswith("wiz_")]:
            del state[key]
        st.rerun()
