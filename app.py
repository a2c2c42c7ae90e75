"""Helios: streaming events queryable in minutes. Entry point: ``streamlit run app.py``."""

import streamlit as st

from helios_core.errors import HeliosError
from pages._shared import acting_user, runtime, sandbox_badge, show_error, sign_in_gate

st.set_page_config(page_title="Helios", page_icon=":material/wb_sunny:", layout="wide")

PAGES = {
    "Helios": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ],
    "Streams": [
        st.Page("pages/connect.py", title="Connect", icon=":material/login:"),
        st.Page("pages/stream_preview.py", title="Stream preview", icon=":material/stream:"),
        st.Page("pages/create_table.py", title="Create table", icon=":material/add_circle:"),
        st.Page("pages/sources.py", title="Sources", icon=":material/conversion_path:"),
        st.Page("pages/quarantine.py", title="Quarantine", icon=":material/report:"),
    ],
    "Explore": [
        st.Page("pages/databases.py", title="Databases", icon=":material/database:"),
        st.Page("pages/sql_explorer.py", title="SQL explorer", icon=":material/terminal:"),
        st.Page("pages/reports.py", title="Reports", icon=":material/monitoring:"),
        st.Page("pages/chat.py", title="Chat", icon=":material/chat:"),
    ],
    "Import": [
        st.Page("pages/jobs.py", title="Jobs", icon=":material/upload_file:"),
    ],
}

sign_in_gate()  # with [auth] in secrets.toml: sign in before any page (or link to one) opens
navigation = st.navigation(PAGES)


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, HeliosError) else f"an unexpected {type(exc).__name__} (see the server log)"


try:
    rt = runtime()
except Exception as exc:  # a Helios error explains itself; anything else gets an apology, not a traceback
    st.title("Helios cannot start")
    show_error(exc)
    st.stop()

try:
    from helios_core.ingest.manager import get_ingest_manager
    get_ingest_manager()  # once per process: every running source ingests from app start
except Exception as exc:  # the pages still work without it: say so in the sidebar
    with st.sidebar:
        st.warning(f"Ingestion is not running: {_reason(exc)}", icon=":material/warning:")

try:
    from helios_core.jobs import get_job_service
    get_job_service()  # once per process: import jobs a restart interrupted are resumed or marked failed
except Exception as exc:  # the pages still work without it: say so in the sidebar
    with st.sidebar:
        st.warning(f"Import jobs are not running: {_reason(exc)}", icon=":material/warning:")

try:
    rt.start_api()  # with HELIOS_API_PORT: the HTTP API from this process (the embedded engine allows one)
except HeliosError as exc:
    with st.sidebar:
        st.warning(f"The HTTP API is not running: {exc.message}", icon=":material/warning:")

with st.sidebar:
    st.caption(f":material/database: {rt.clickhouse.describe()}")
    st.caption(f":material/person: {acting_user().label}")
    sandbox_badge()

try:
    navigation.run()
except Exception as exc:  # last resort for any page: an apology and the error's class, never a traceback
    show_error(exc)
