"""UI helpers shared by the pages (not a page itself: app.py lists the pages).

Only presentation lives here; all work is done by helios_core.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from helios_core.errors import HeliosError
from helios_core.runtime import Runtime, get_runtime


@st.cache_resource(show_spinner="Starting Helios…")
def runtime() -> Runtime:
    """The process-wide runtime, shared by every browser session."""
    return get_runtime()


def show_error(exc: HeliosError) -> None:
    st.error(exc.message, icon=":material/error:")
    if exc.hint:
        st.caption(exc.hint)
    problems = getattr(exc, "problems", None)
    if problems and len(problems) > 1:
        st.markdown("\n".join(f"- {p}" for p in problems))


@contextmanager
def user_errors() -> Iterator[None]:
    """Show Helios errors as a clear message instead of a traceback."""
    try:
        yield
    except HeliosError as exc:
        show_error(exc)


def format_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def open_in_sql_explorer(sql: str) -> None:
    """Put SQL into the explorer's editor and go there."""
    st.session_state["sql_editor"] = sql
    st.session_state["sql_run_requested"] = True
    st.switch_page("pages/sql_explorer.py")
