"""The unit tier: pure functions of helios_core, with no engine.

No test here may start the embedded ClickHouse or a moto server (or the sandbox that runs one): the fixtures that
start them are refused, and a test that starts one anyway fails. ``tests/conftest.py`` has no autouse fixture
that starts either (its autouse fixtures only stop services, or act for tests that asked for ``ch``).
"""

from __future__ import annotations

import sys

import pytest

ENGINE_FIXTURES = frozenset({"ch", "demo", "open_page", "ingest_by_hand", "moto_server", "aws_conn", "aws_sandbox",
                             "kinesis_stream", "moto_auth"})


def _engines_running() -> set[str]:
    """What is running in this process; modules not yet imported have started nothing."""
    running: set[str] = set()
    runtime = sys.modules.get("helios_core.runtime")
    if runtime is not None and (runtime._instance is not None or runtime._runtime is not None):
        running.add("the embedded ClickHouse")
    sandbox = sys.modules.get("helios_core.sandbox")
    if sandbox is not None and sandbox.sandbox_if_running() is not None:
        running.add("the moto sandbox")
    if "moto.server" in sys.modules:
        running.add("a moto server")
    return running


@pytest.fixture(autouse=True)
def _no_engine(request: pytest.FixtureRequest):
    callspec = getattr(request.node, "callspec", None)
    params = set(callspec.params) if callspec is not None else set()  # a test parameter that happens to be "ch"
    asked = ENGINE_FIXTURES & (set(request.fixturenames) - params)
    if asked:
        pytest.fail(f"unit tests run without an engine; move this test out of tests/unit (it uses {sorted(asked)})")
    before = _engines_running()
    yield
    started = _engines_running() - before
    assert not started, f"this unit test started {sorted(started)}; unit tests run without an engine"
