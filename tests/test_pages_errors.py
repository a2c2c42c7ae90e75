"""Every page, with the core failing under it: the user reads a message, never a traceback (issue 16).

Each case makes the helios_core function the page calls on its way raise, once as a Helios error (a QueryError,
what the core raises on purpose) and once as a driver exception nobody expected (clickhouse-connect's
StreamFailureError). The page must show the Helios message, or a short apology naming the error's class, and end
its run without an exception reaching Streamlit. ``test_every_page_is_covered`` keeps the list complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import StreamFailureError
from streamlit.testing.v1 import AppTest

from helios_core.errors import QueryError

ROOT = Path(__file__).resolve().parent.parent
HELIOS_MESSAGE = "ClickHouse refused the catalog query (test)."
DRIVER_DETAIL = "Code: 241. DB::Exception: Memory limit exceeded (test)"


def _texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def _offline_aws():
    """A connection that is never contacted: the function that would use it raises first."""
    from helios_core.aws import AwsConnection
    return AwsConnection(region="eu-west-1", access_key_id="testing", secret_access_key="testing",
                         endpoint_url="http://127.0.0.1:9")


def _run_sql(at: AppTest) -> None:
    at.session_state["sql_editor"] = "SELECT 1"
    at.button(key="sql_run").click().run()


def _start_sandbox(at: AppTest) -> None:
    at.button(key="aws_use_sandbox").click().run()


@dataclass
class Case:
    page: str
    target: str  # "module:attribute" or "module:Class.method" of the core function that raises
    state: dict[str, Callable[[], object]] = field(default_factory=dict)  # session state set before the first run
    action: Callable[[AppTest], None] | None = None  # what the user does to reach the call

    def __str__(self) -> str:
        return Path(self.page).stem


CASES = [
    Case("pages/home.py", "helios_core.clickhouse:list_databases"),
    Case("pages/connect.py", "helios_core.sandbox:get_sandbox", action=_start_sandbox),
    Case("pages/stream_preview.py", "helios_core.aws:list_streams", {"aws_connection": _offline_aws}),
    Case("pages/create_table.py", "helios_core.aws:list_streams", {"aws_connection": _offline_aws}),
    Case("pages/sources.py", "helios_core.sources:list_sources"),
    Case("pages/quarantine.py", "helios_core.sources:list_sources"),
    Case("pages/databases.py", "helios_core.clickhouse:list_databases"),
    Case("pages/sql_explorer.py", "helios_core.clickhouse:ClickHouse.query", action=_run_sql),
    Case("pages/reports.py", "helios_core.reports:list_reports"),
    Case("pages/chat.py", "helios_core.chat.store:ChatStore.list"),
    Case("pages/jobs.py", "helios_core.jobs:get_job_service"),
    Case("pages/settings.py", "helios_core.tokens:list_tokens"),
]

ERRORS = {
    "helios_error": lambda: QueryError(HELIOS_MESSAGE, "Check the server (test hint).", code=999, name="TEST"),
    "driver_error": lambda: StreamFailureError(DRIVER_DETAIL),
}


def _make_raise(monkeypatch: pytest.MonkeyPatch, target: str, error: Exception) -> None:
    import importlib

    module_name, attribute = target.split(":")
    owner = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    assert callable(getattr(owner, name)), target

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(owner, name, fail)


def test_every_page_is_covered():
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py") if not p.name.startswith("_")}
    assert pages == {c.page for c in CASES}


@pytest.mark.parametrize("kind", list(ERRORS))
@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_failing_core_shows_a_message_not_a_traceback(case: Case, kind: str, app_path, ch, demo, monkeypatch):
    at = AppTest.from_file(app_path, default_timeout=60)
    for key, make in case.state.items():
        at.session_state[key] = make()
    at.run()
    assert not at.exception, at.exception
    _make_raise(monkeypatch, case.target, ERRORS[kind]())
    at.switch_page(case.page).run()
    if case.action is not None:
        case.action(at)
    assert not at.exception, at.exception
    shown = _texts(at.error)
    if kind == "helios_error":
        assert HELIOS_MESSAGE in shown
        assert "Check the server (test hint)." in _texts(at.caption)
    else:
        assert "Sorry, something went wrong" in shown and "StreamFailureError" in shown
        assert DRIVER_DETAIL not in shown  # the driver's text stays in the server log
    assert "Traceback" not in shown and "NameError" not in shown


def test_app_py_turns_an_error_outside_any_block_into_the_apology(app_path, ch, monkeypatch):
    """app.py's last resort around ``navigation.run()``.

    AppTest runs app.py (and the page through its navigation) only on a session's first run: later runs execute
    the page alone (it resets PagesManager.uses_pages_directory each run), which is why the cases above rely on
    the pages' own handling. So this test fails Home's first drawing call, outside any user_errors() block.
    """
    import streamlit

    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(streamlit, "subheader", broken)  # app.py itself never calls it; Home does, unguarded
    at = AppTest.from_file(app_path, default_timeout=60).run()
    assert not at.exception, at.exception
    assert "Sorry, something went wrong" in _texts(at.error) and "KeyError" in _texts(at.error)


def test_a_failing_live_panel_shows_a_message(app_path, ch, monkeypatch):
    """Fragments (Sources' live metrics) rerun on their own, past the page's blocks and app.py: guarded()."""
    import uuid

    from helios_core import sources
    from helios_core.ddl import TableOptions
    from helios_core.ingest.control import delete
    from helios_core.ingest.manager import IngestManager
    from helios_core.schema import ColumnSpec

    name = f"errors_{uuid.uuid4().hex[:8]}"
    request = sources.CreateRequest(
        stream_name=name, stream_arn=f"arn:aws:kinesis:eu-west-1:123456789012:stream/{name}",
        columns=[ColumnSpec("k", "String", "k", required=True)],
        options=TableOptions(database="pages_errors_test", table=name, order_by=["k"], create_database=True),
        connection=sources.Connection.from_aws(_offline_aws()))
    source_id = sources.create_table_and_source(ch, request).source_id
    try:
        at = AppTest.from_file(app_path, default_timeout=60).run()
        _make_raise(monkeypatch, "helios_core.ingest.manager:IngestManager.metrics_for",
                    StreamFailureError(DRIVER_DETAIL))
        assert callable(IngestManager.metrics_for)
        at.switch_page("pages/sources.py").run()
        assert not at.exception, at.exception
        assert "StreamFailureError" in _texts(at.error)
    finally:
        delete(ch, source_id, drop_table=True)
