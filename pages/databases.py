"""Databases: the databases and their tables; a table's figures, columns and first rows."""

import streamlit as st

from helios_core.clickhouse import list_databases, list_user_databases, preview, preview_sql, table_info
from pages._shared import (
    SELECTED_DATABASE_KEY,
    SELECTED_TABLE_KEY,
    format_bytes,
    open_in_sql_explorer,
    runtime,
    user_errors,
)

ch = runtime().clickhouse


def listed_databases() -> dict[str, list[str]]:
    """The databases to browse (system ones when asked) → their tables; stops the page when there are none."""
    show_system = st.toggle("Show system databases", value=False,
                            help="ClickHouse's system databases and Helios's own (its records, live chats' stand-ins).")
    databases = list_databases(ch, include_system=True) if show_system else list_user_databases(ch)
    if not databases:
        st.info("No databases yet. Load the demo data from the Home page, or create a table from a stream.")
        st.stop()
    return databases


def table_tree(databases: dict[str, list[str]]) -> tuple[str, str]:
    """A database and one of its tables (the hand-off's, else demo's, else the first); stops on an empty one."""
    names = list(databases)
    wanted = st.session_state.get(SELECTED_DATABASE_KEY)
    default_db = names.index(wanted) if wanted in names else (names.index("demo") if "demo" in names else 0)
    database = st.radio("Database", names, index=default_db, key="db_database")
    tables = databases[database]
    if not tables:
        st.caption("This database has no tables.")
        st.stop()
    wanted_table = st.session_state.get(SELECTED_TABLE_KEY)
    table = st.radio(f"Tables ({len(tables)})", tables,
                     index=tables.index(wanted_table) if wanted_table in tables else 0, key="db_table")
    return database, table


def table_detail(database: str, table: str) -> None:
    info = table_info(ch, database, table)
    st.subheader(f"{database}.{table}")
    c1, c2, c3 = st.columns(3)
    c1.metric("Rows", f"{info.total_rows:,}")
    c2.metric("Size on disk", format_bytes(info.total_bytes))
    c3.metric("Engine", info.engine)
    st.caption(f"Sorting key: `{info.sorting_key or '—'}` · Partition key: `{info.partition_key or '—'}` · "
               f"UUID: `{info.uuid}`")
    st.markdown("**Columns**")
    st.dataframe(
        [{"name": c["name"], "type": c["type"], "default": c["default_expression"],
          "in sorting key": bool(c["is_in_sorting_key"]), "comment": c["comment"]} for c in info.columns],
        hide_index=True, width="stretch")
    st.markdown("**First rows**")
    st.dataframe(preview(ch, database, table, limit=100).frame, hide_index=True, width="stretch")
    if st.button("Query in SQL explorer", icon=":material/terminal:"):
        open_in_sql_explorer(preview_sql(database, table, 100))


def main() -> None:
    st.title("Databases")
    with user_errors():
        databases = listed_databases()
        tree, detail = st.columns([1, 3], gap="large")
        with tree:
            database, table = table_tree(databases)
        with detail:
            table_detail(database, table)


main()
