"""Home: what Helios is, who is signed in, the connection and the data, the demo, and where to go next."""

import streamlit as st

from helios_core.clickhouse import is_empty, list_databases, list_user_databases
from helios_core.demo import load_demo
from helios_core.metadata import METADATA_DB
from helios_core.users import sign_in_configured
from helios_core.wording import plural
from pages._shared import acting_user, runtime, user_errors

ch = runtime().clickhouse

LINKS = [
    ("pages/connect.py", "Connect — your AWS account or the local sandbox", ":material/login:"),
    ("pages/stream_preview.py", "Stream preview — sample events and get a schema", ":material/stream:"),
    ("pages/create_table.py", "Create table — from a stream, in six guided steps", ":material/add_circle:"),
    ("pages/sources.py", "Sources — live ingestion and its metrics", ":material/conversion_path:"),
    ("pages/databases.py", "Databases — browse tables, columns and sizes", ":material/database:"),
    ("pages/sql_explorer.py", "SQL explorer — run SQL, chart and download results", ":material/terminal:"),
    ("pages/chat.py", "Chat — ask questions in plain language", ":material/chat:"),
    ("pages/reports.py", "Reports — daily numbers with safe filters", ":material/monitoring:"),
    ("pages/jobs.py", "Jobs — import files and PostgreSQL dumps", ":material/upload_file:"),
]


def introduction() -> None:
    st.title("Helios")
    st.markdown(
        "Streaming events, queryable in minutes. Connect your Amazon Kinesis streams (or the built-in sandbox), "
        "preview events, get a ClickHouse schema inferred for you, and let Helios keep the table filled — "
        "validated, with bad events kept aside. Then explore with SQL, charts, chat and reports."
    )


def signed_in_as() -> None:
    me = acting_user()
    if sign_in_configured():
        who, out = st.columns([4, 1], vertical_alignment="center")
        who.markdown(f":material/person: Signed in as **{me.label}**" + (" (admin)" if me.is_admin else "")
                     + ". You see your own chats, reports and jobs, plus what others shared with you.")
        if out.button("Sign out", icon=":material/logout:", key="sign_out"):
            st.logout()
    else:
        st.caption(":material/person: Single local user: no identity provider is configured, so everything here "
                   "is yours. Add an `[auth]` section to `.streamlit/secrets.toml` for sign-in and per-user "
                   "ownership.")


def connection() -> None:
    st.subheader("Connection")
    st.metric("ClickHouse", "Embedded" if ch.embedded else "Server", help=ch.describe())
    st.caption(ch.describe())


def your_data() -> None:
    st.subheader("Your data")
    with user_errors(stop=False):  # the links below still help
        # Counted like "empty" below: Helios's own records (the helios database) are not your data.
        databases = list_user_databases(ch)
        own = list_databases(ch).get(METADATA_DB, [])
        st.metric("Databases", len(databases))
        st.metric("Tables", sum(len(t) for t in databases.values()))
        if own:
            st.caption(f"Not counted: Helios's own records (`{METADATA_DB}` database, {plural(len(own), 'table')}).")


def demo_data_offer() -> None:
    """On an empty embedded database, a button that loads the demo; after it, what was loaded."""
    with user_errors(stop=False):
        if ch.embedded and is_empty(ch):
            st.info("Your embedded database is empty. Load a small demo dataset (users, activity, purchases and "
                    "captcha events — about 70,000 rows) to try every page.", icon=":material/lightbulb:")
            if st.button("Load demo data", type="primary", key="load_demo"):
                with st.status("Loading demo data…", expanded=True) as status:
                    loaded = load_demo(ch)
                    status.update(label="Demo data loaded", state="complete")
                # Kept in the session so the confirmation survives the rerun that refreshes the counts.
                st.session_state["home_demo_loaded"] = loaded.to_json()
                st.rerun()
    loaded_demo = st.session_state.get("home_demo_loaded")
    if loaded_demo:
        st.success(f"Demo data loaded into the `{loaded_demo['database']}` database: "
                   + ", ".join(f"`{table}` ({plural(rows, 'row')})" for table, rows in loaded_demo["tables"].items())
                   + ". Try the Databases, SQL explorer or Chat pages.", icon=":material/check_circle:")


def where_to_go() -> None:
    st.subheader("Where to go")
    left, right = st.columns(2)
    for i, (page, label, icon) in enumerate(LINKS):
        (left if i % 2 == 0 else right).page_link(page, label=label, icon=icon)


def main() -> None:
    introduction()
    signed_in_as()
    left, right = st.columns(2)
    with left:
        connection()
    with right:
        your_data()
    demo_data_offer()
    where_to_go()


main()
