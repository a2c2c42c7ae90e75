"""UI helpers shared by the pages (not a page itself: app.py lists the pages).

Only presentation lives here; all work is done by helios_core.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import streamlit as st

from helios_core.errors import HeliosError, ValidationError
from helios_core.runtime import Runtime, get_runtime
from helios_core.users import LOCAL, User, sign_in_configured, signed_in_user

log = logging.getLogger("helios.pages")
F = TypeVar("F", bound=Callable[..., object])


def _leave_pages_folder_mode() -> None:
    """Run deep links through app.py's navigation.

    Streamlit treats a ``pages/`` folder as an old-style multipage app until
    ``st.navigation`` has run once in the process. A link such as ``/connect``
    opened first after the server starts would run that page alone: no groups,
    no wide layout, our helper module listed as a page. Leaving that mode and
    rerunning lets app.py resolve the same page (v1 and v2 hash it alike).
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without the old mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_leave_pages_folder_mode()


@st.cache_resource(show_spinner="Starting Helios…")
def runtime() -> Runtime:
    """The process-wide runtime, shared by every browser session."""
    return get_runtime()


# ---- who is acting: the signed-in user (Streamlit's OIDC sign-in), or the single local user ----


def auth_providers() -> list[str | None]:
    """The providers configured under ``[auth]`` (``[auth.NAME]`` tables), or ``[None]`` for the one default."""
    try:
        auth = st.secrets.get("auth", {})
    except Exception:  # no secrets.toml at all
        return [None]
    names = [k for k, v in auth.items() if hasattr(v, "keys")]
    return names or [None]


def acting_user() -> User:
    """The user this browser session acts as: ``st.user`` when sign-in is configured, else the local user."""
    if not sign_in_configured():
        return LOCAL
    if not st.user.is_logged_in:
        st.stop()  # app.py's sign-in gate runs first; never act as anyone before sign-in
    email = st.user.get("email") or st.user.get("preferred_username") or st.user.get("sub")
    try:
        return signed_in_user(email, str(st.user.get("name") or ""))
    except HeliosError as exc:
        show_error(exc)
        st.stop()


def sign_in_gate() -> None:
    """With an identity provider configured, nothing but a sign-in button until the user signs in."""
    if not sign_in_configured() or st.user.is_logged_in:
        return
    st.title("Helios")
    st.markdown("Sign in to see your chats, reports, jobs and sources.")
    for provider in auth_providers():
        label = f"Sign in with {provider}" if provider else "Sign in"
        if st.button(label, type="primary", icon=":material/login:", key=f"sign_in_{provider or 'default'}"):
            st.login(provider) if provider else st.login()
    st.stop()


def show_error(error: BaseException | str, hint: str = "") -> None:
    """The one way a page shows an error: a red box with the message, the hint below it.

    A Helios error brings its own message and hint; a plain string is a stored error (a failed source or job);
    anything else is a bug or a driver failure: a short apology and the error's class, never a traceback
    (the traceback goes to the server log).
    """
    if isinstance(error, HeliosError):
        message, hint = error.message, error.hint or hint
    elif isinstance(error, str):
        message = error
    else:
        log.error("unexpected error on a page", exc_info=error)
        message = f"Sorry, something went wrong that Helios did not expect ({type(error).__name__})."
        hint = hint or "Try again; if it keeps happening, the server log has the details."
    st.error(message, icon=":material/error:")
    if hint:
        st.caption(hint)
    if isinstance(error, ValidationError) and len(error.problems) > 1:
        st.markdown("\n".join(f"- {p}" for p in error.problems))


@contextmanager
def user_errors(stop: bool = True) -> Iterator[None]:
    """Show an error raised in the block (``show_error``) instead of a traceback.

    By default the page's run ends there (``st.stop()``): the lines after the block usually need what it was
    computing. Pass ``stop=False`` around an action (a button's work) whose failure leaves the rest of the page
    usable. Streamlit's own stop/rerun signals are not exceptions and pass through.
    """
    try:
        yield
    except Exception as exc:  # the page's last line of defence: unexpected errors get an apology too
        show_error(exc)
        if stop:
            st.stop()


def guarded(fn: F) -> F:
    """``fn`` run inside ``user_errors(stop=False)``: for fragments, whose reruns skip the page and app.py."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with user_errors(stop=False):
            return fn(*args, **kwargs)
    return run  # type: ignore[return-value]


def counted(n: int, noun: str) -> str:
    """``1 row``, ``2 rows``, ``1,000 rows``."""
    return f"{n:,} {noun if n == 1 else noun + 's'}"


def format_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


SQL_EDITOR_KEY = "sql_editor"  # the SQL explorer's text: plain session state, not a widget's key


def set_explorer_sql(sql: str, run: bool = False) -> None:
    """Put SQL into the SQL explorer's editor (and have it run on the page's next run).

    The editor is a component keyed by a version number: a new version mounts it afresh with this text.
    Safe at any time (callbacks, other pages): no widget owns the key.
    """
    state = st.session_state
    state[SQL_EDITOR_KEY] = sql
    state["sql_editor_version"] = state.get("sql_editor_version", 0) + 1
    if run:
        state["sql_run_requested"] = True


def open_in_sql_explorer(sql: str) -> None:
    """Put SQL into the explorer's editor and go there; it runs on arrival."""
    set_explorer_sql(sql, run=True)
    st.switch_page("pages/sql_explorer.py")


# ---- hand-offs between pages: one function per destination, and the session keys they share ----
# A page reads its hand-off key only through these names, so renaming a key is a one-line change.

SELECTED_DATABASE_KEY = "db_selected_database"  # Databases: the database to open
SELECTED_TABLE_KEY = "db_selected_table"  # Databases: the table to open
QUARANTINE_SOURCE_KEY = "quarantine_source"  # Quarantine: the source whose bad events to show
PREVIEW_STREAM_KEY = "preview_stream"  # Stream preview: the stream to sample
WIZARD_HANDOVER_KEY = "wizard_handover"  # Create table: (stream, schema, sample events) from Stream preview
ACTIVE_CHAT_KEY = "chat_active_id"  # Chat: the conversation to show


def open_table(database: str, table: str) -> None:
    """Go to the Databases page with this table selected."""
    st.session_state[SELECTED_DATABASE_KEY], st.session_state[SELECTED_TABLE_KEY] = database, table
    st.switch_page("pages/databases.py")


def open_quarantine(source_id: str) -> None:
    """Go to the Quarantine page showing this source's bad events."""
    st.session_state[QUARANTINE_SOURCE_KEY] = source_id
    st.switch_page("pages/quarantine.py")


def open_preview(stream: str) -> None:
    """Go to Stream preview with this stream chosen."""
    st.session_state[PREVIEW_STREAM_KEY] = stream
    st.switch_page("pages/stream_preview.py")


def open_wizard(stream: str, schema: object, sample_events: list) -> None:
    """Go to the Create-table wizard with a stream, its inferred schema and the sample it came from."""
    st.session_state[WIZARD_HANDOVER_KEY] = (stream, schema, list(sample_events))
    st.switch_page("pages/create_table.py")


def open_chat(chat_id: str) -> None:
    """Go to the Chat page showing this conversation."""
    st.session_state[ACTIVE_CHAT_KEY] = chat_id
    st.switch_page("pages/chat.py")


# ---- AWS connection of this browser session (credentials live in st.session_state only) ----

AWS_CONNECTION_KEY = "aws_connection"
AWS_IDENTITY_KEY = "aws_identity"
AWS_STREAMS_KEY = "aws_streams"


def aws_connection():
    """This session's :class:`~helios_core.aws.AwsConnection`, or None when not connected."""
    return st.session_state.get(AWS_CONNECTION_KEY)


def set_aws_connection(conn, identity=None, streams=None) -> None:
    """Remember a working connection for this browser session (never written anywhere else)."""
    st.session_state[AWS_CONNECTION_KEY] = conn
    st.session_state[AWS_IDENTITY_KEY] = identity
    st.session_state[AWS_STREAMS_KEY] = streams


def forget_aws_connection() -> None:
    for key in (AWS_CONNECTION_KEY, AWS_IDENTITY_KEY, AWS_STREAMS_KEY):
        st.session_state.pop(key, None)


def stream_names(conn) -> list[str]:
    """The streams of this session's connection, listed once per session (Connect's Refresh lists them again)."""
    from helios_core.aws import list_streams

    streams = st.session_state.get(AWS_STREAMS_KEY)
    if streams is None:
        with user_errors(), st.spinner("Listing streams…"):
            streams = list_streams(conn, details=False)
            st.session_state[AWS_STREAMS_KEY] = streams
    return [s.name for s in streams or []]


def sandbox() -> object:
    """The process-wide local sandbox (moto server + demo producers), started on first use."""
    from helios_core.sandbox import get_sandbox

    return get_sandbox()


def connect_sandbox():
    """Start (or reuse) the sandbox and make it this session's connection; returns the connection."""
    from helios_core.aws import list_streams

    with st.spinner("Starting the local sandbox…"):
        conn = sandbox().connection()
        identity = conn.validate()
        streams = list_streams(conn)
    set_aws_connection(conn, identity, streams)
    return conn


AUTO_SANDBOX_KEY = "aws_auto_sandbox"  # this session's sandbox was connected for the user, not chosen


def auto_sandbox(announce: bool = True, stop: bool = True) -> bool:
    """Once per session, with no AWS credentials anywhere, connect the sandbox; True when it did.

    A deep link to a page that needs streams then works at once instead of asking to connect; a user who
    disconnected on purpose is not connected again (the check runs once per session). ``announce``: say so in
    a toast (the Connect page says it in its status instead); ``stop``: a failure ends the page's run.
    """
    from helios_core.aws import default_credentials_available
    from helios_core.config import get_settings

    if st.session_state.get("aws_auto_checked"):
        return False
    st.session_state["aws_auto_checked"] = True
    if get_settings().aws_endpoint_url or default_credentials_available():
        return False
    with user_errors(stop=stop):
        connect_sandbox()
        st.session_state[AUTO_SANDBOX_KEY] = True
        if announce:
            st.toast("No AWS credentials were found: using the local sandbox and its demo streams.",
                     icon=":material/science:")
        return True
    return False


def require_aws_connection(key: str):
    """This session's connection; otherwise offer the sandbox or the Connect page and stop the page."""
    conn = aws_connection()
    if conn is not None:
        return conn
    if auto_sandbox():
        return aws_connection()
    st.info("Connect to AWS first, or use the local sandbox with its demo streams.", icon=":material/link:")
    c1, c2 = st.columns([1, 3])
    if c1.button("Use the local sandbox", icon=":material/science:", key=key):
        with user_errors(stop=False):
            connect_sandbox()
            st.rerun()
    c2.page_link("pages/connect.py", label="Go to Connect", icon=":material/login:")
    st.stop()


def sandbox_badge() -> None:
    """A visible "Sandbox" label whenever this session uses the local sandbox."""
    conn = aws_connection()
    if conn is not None and getattr(conn, "sandbox", False):
        st.badge("Sandbox", icon=":material/science:", color="orange",
                 help="Connected to the local sandbox (a moto server in this process with demo streams), not AWS.")
