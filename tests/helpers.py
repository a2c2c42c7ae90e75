"""Waiting in tests: one helper, generous deadlines.

The suite runs on 2 cores shared with other work, so a test never sleeps a fixed
time hoping something has happened: it waits for the thing itself with
:func:`wait_until`, whose deadline is long because it costs nothing when things
are fast. See tests/README.md.

Import from test modules with ``from helpers import wait_until`` (pytest puts
``tests/`` on ``sys.path`` for its rootdir conftest).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Background work (ingest consumers, import jobs, producers, a subprocess starting up).
WAIT = 180.0
# streamlit.testing.v1.AppTest default_timeout: one script run of a page, on a loaded machine.
APPTEST_TIMEOUT = 180.0


def wait_until(predicate: Callable[[], T], timeout: float = WAIT, interval: float = 0.2,
               message: str | Callable[[], str] = "") -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    At the deadline the test fails with ``message`` and the last value seen (or
    the last exception the predicate raised), so a slow machine gives a clear
    failure instead of a confusing assertion further down. ``message`` may be a
    callable, read only then (e.g. ``lambda: consumer.metrics.last_error``).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = predicate()
        except AssertionError:
            raise
        except Exception as exc:  # e.g. a table not created yet: keep waiting, report it at the end
            last = exc
        else:
            if last:
                return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            what = message() if callable(message) else message
            raise AssertionError(f"gave up after {timeout:g} s waiting for "
                                 f"{what or getattr(predicate, '__name__', 'a condition')}; "
                                 f"last value seen: {last!r}")
        time.sleep(interval)


# ---- AppTest steps shared by the page tests ----


def click(at, key: str) -> None:
    """Click a button and run the page; the run must not raise."""
    at.button(key=key).click().run()
    assert not at.exception, at.exception


def page_texts(at) -> str:
    """Every text element of the page's last run, joined (to look for a phrase wherever the page shows it)."""
    parts = []
    for kind in ("markdown", "caption", "info", "error", "warning", "success", "title", "subheader", "code"):
        parts += [str(getattr(e, "value", "")) for e in getattr(at, kind)]
    return " ".join(parts)


def wizard_to_review(at, stream: str, new_database: str) -> None:
    """From the wizard's first step to Review: the stream, every default accepted, a new database."""
    at.switch_page("pages/create_table.py").run()
    at.selectbox(key="wiz_stream_select").set_value(stream).run()
    for key in ("wiz_next_0", "wiz_next_1", "wiz_next_2"):
        click(at, key)
    at.radio(key="wiz_db_mode").set_value("New").run()
    at.text_input(key="wiz_new_db").set_value(new_database).run()
    click(at, "wiz_next_3")
    assert not at.error, [e.value for e in at.error]
