"""End to end in a real browser: Debian's chromium driven by Playwright.

Starts ``streamlit run app.py`` on a free loopback port with its own temporary
data dir (its own process, so its own embedded engine), loads the demo data,
runs a query in the SQL explorer and reads the count from the result grid.

The SQL explorer's editor is a component (Ace in an iframe): ``_type_sql`` types into it; Ctrl+Enter runs;
leaving it runs nothing. ``_ensure_demo`` and ``_wait_idle`` are there for any test that needs them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import WAIT, wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags this sandboxed machine needs: no background connections (the network is closed), no GPU, root user.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_page(browser):
    """A page of the size the app is laid out for, waiting with the suite's deadline."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT * 1000)
    return page


@contextmanager
def running_app(port: int, cwd: Path, env: dict[str, str], log_path: Path) -> Iterator[str]:
    """``streamlit run app.py`` on 127.0.0.1:``port`` for the block (its URL); the test fails if it never answers."""
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        try:
            wait_until(healthy, interval=0.3, message="streamlit to answer /_stcore/health")
        except AssertionError:
            pytest.fail("streamlit did not start: " + log_path.read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("e2e-data")
    with running_app(_free_port(), ROOT, dict(os.environ, HELIOS_DATA_DIR=str(data_dir)),
                     data_dir / "streamlit.log") as url:
        yield url


def test_a_deep_link_opened_first_gets_the_app_navigation(browser, app_url):
    # Runs first on a fresh server: Streamlit would otherwise treat pages/ as an old-style multipage app.
    page = new_page(browser)
    page.goto(f"{app_url}/databases")
    page.get_by_role("heading", name="Databases").first.wait_for()
    nav = page.locator("[data-testid='stSidebarNav']")
    nav.wait_for()
    text = nav.inner_text()
    assert "Explore" in text and "SQL explorer" in text
    assert "shared" not in text.lower()
    page.close()


def _wait_idle(page, until_gone: str = "") -> None:
    """Until the app has finished a script run (and the text ``until_gone`` is no longer on the page)."""
    page.wait_for_function(
        """text => document.querySelector("[data-testid='stApp']")?.dataset.testScriptState === "notRunning"
                   && !(text && document.body.innerText.includes(text))""",
        arg=until_gone, timeout=180_000)


def _ensure_demo(page, app_url: str) -> None:
    """Home offers the demo data while the engine is empty: whichever test comes first loads it."""
    page.goto(app_url)
    page.get_by_text("Where to go").wait_for()
    _wait_idle(page)  # the whole page is drawn: the offer is there or not
    # The offer's text decides: the button itself may still be a placeholder while its code loads.
    if page.get_by_text("Your embedded database is empty").count():
        page.get_by_role("button", name="Load demo data").click()
        _wait_idle(page, until_gone="Your embedded database is empty")


def _sql_editor(page):
    """The SQL explorer's code editor (an Ace editor in the component's iframe)."""
    _wait_idle(page)  # a re-mounted editor replaces the old one when the run ends
    frame = page.frame_locator("iframe[title*='code_editor']")
    content = frame.locator("#REACT_ACE_EDITOR .ace_content").first  # not the completion popup's
    content.wait_for()
    return frame, content


def _type_sql(page, sql: str) -> None:
    frame, content = _sql_editor(page)
    content.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    frame.locator("#REACT_ACE_EDITOR .ace_text-input").press_sequentially(sql)


def _history_label(page) -> str:
    return page.locator("[data-testid='stExpander'] summary").filter(has_text="History").inner_text()


def _wait_grid(page, text: str) -> None:
    """Until the first result grid shows ``text`` in a cell (glide-data-grid mirrors its canvas in a table)."""
    page.wait_for_function(
        """text => [...document.querySelectorAll("[data-testid='stDataFrame'] [role='gridcell']")]
                    .some(c => c.textContent.replaceAll(",", "").includes(text))""", arg=text)


def test_load_demo_and_run_a_query_in_the_browser(browser, app_url):
    page = new_page(browser)
    _ensure_demo(page, app_url)
    page.get_by_role("link", name="SQL explorer").first.click()
    _type_sql(page, "SELECT count() AS total_users FROM demo.users")
    page.keyboard.press("Control+Enter")  # runs it: the editor answers Ctrl/Cmd+Enter with a "submit"
    page.get_by_text("History (1)").wait_for()
    try:
        page.get_by_text("1 row ·").first.wait_for()
        _wait_grid(page, "2000")
    finally:
        page.screenshot(path=str(Path(os.environ.get("HELIOS_E2E_SCREENSHOT_DIR", "/tmp")) / "helios-e2e.png"))

    # Leaving the editor keeps the text and runs nothing (a text area ran the query on blur).
    _type_sql(page, "SELECT 41 + 1 AS answer")
    page.get_by_role("heading", name="SQL explorer").click()
    page.get_by_text("Edited since the last run").wait_for()  # the page has the text: the blur was handled
    assert "History (1)" in _history_label(page)
    _wait_grid(page, "2000")

    # The Run button runs what the editor holds.
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("History (2)").wait_for()
    page.get_by_text("Edited since the last run").wait_for(state="detached")
    _wait_grid(page, "42")

    assert page.locator("[data-testid='stException']").count() == 0
    page.close()


def test_history_run_again_in_the_browser(browser, app_url):
    # issue 17: "Run again" crashed with StreamlitWidgetAlreadyInstantiatedError every time
    page = new_page(browser)
    _ensure_demo(page, app_url)
    page.get_by_role("link", name="SQL explorer").first.click()
    _type_sql(page, "SELECT count() AS purchases FROM demo.purchase_events")
    page.keyboard.press("Control+Enter")
    page.get_by_text("History (1)").wait_for()
    _type_sql(page, "SELECT 7 AS seven")
    page.keyboard.press("Control+Enter")
    page.get_by_text("History (2)").wait_for()
    _wait_grid(page, "7")

    page.get_by_text("History (2)").click()
    page.get_by_role("button", name="Run again").nth(1).click()  # the older query
    page.get_by_text("History (3)").wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    _, content = _sql_editor(page)
    content.filter(has_text="purchase_events").wait_for()  # the editor shows the SQL that ran again
    headers = page.locator("[data-testid='stDataFrame'] [role='columnheader']")
    headers.filter(has_text="purchases").first.wait_for(state="attached")  # the result is the older query's
    page.close()


def test_the_sql_editor_completes_table_names(browser, app_url):
    page = new_page(browser)
    _ensure_demo(page, app_url)
    page.get_by_role("link", name="SQL explorer").first.click()
    _type_sql(page, "SELECT * FROM demo.purchase_ev")
    page.keyboard.press("Escape")  # whatever popped up while typing
    page.keyboard.press("Control+Space")  # asks for completions, as the page tells users
    frame, _ = _sql_editor(page)
    popup = frame.locator(".ace_autocomplete")
    popup.filter(has_text="purchase_events").wait_for()
    assert "table" in popup.inner_text()
    page.close()


def test_wizard_with_every_default_accepted_creates_the_table(browser, app_url):
    """Connect the sandbox, open Create table and accept every default through to Create."""
    page = new_page(browser)
    page.goto(f"{app_url}/connect")
    page.get_by_role("heading", name="Connect to AWS").wait_for()
    start = page.get_by_role("button", name="Start the local sandbox")
    page.get_by_text("Connected:").or_(start).first.wait_for()
    if start.is_visible():  # with AWS credentials configured the sandbox is not picked by itself
        start.click()
    page.get_by_text("Connected:").first.wait_for()
    page.get_by_role("link", name="Create table").first.click()

    # Buttons by their widget key (Streamlit's st-key-<key> class): a button of the step before, still on
    # screen while the next step draws, is never the one clicked.
    page.get_by_text("Step 1 of 6").first.wait_for()
    page.locator(".st-key-wiz_next_0 button").click()
    page.get_by_text("Sample events (").first.wait_for()          # sampled by itself, shown as a compact table
    page.locator(".st-key-wiz_next_1 button").click()
    page.get_by_text("3. Edit the schema").first.wait_for()
    page.locator(".st-key-wiz_next_2 button").click()
    page.get_by_text("4. Table options").first.wait_for()
    page.locator(".st-key-wiz_next_3 button").click()
    page.get_by_text("Everything checks out").first.wait_for()     # the defaults (database `default`) are accepted
    page.locator(".st-key-wiz_create button").click()
    page.get_by_text("6. Created").first.wait_for()
    body = page.locator("[data-testid='stMain']").inner_text()
    page.screenshot(path=str(Path(os.environ.get("HELIOS_E2E_SCREENSHOT_DIR", "/tmp")) / "helios-e2e-wizard.png"))
    assert "CREATE TABLE `default`." in body and "PARTITION BY" in body
    assert "problem" not in body.lower()
    page.close()


def test_an_unanswerable_chat_question_is_declined_with_suggestions(browser, app_url):
    page = new_page(browser)
    ask = page.locator("[data-testid='stChatInputTextArea']")
    no_data = page.get_by_text("There is no database to ask about yet")
    page.goto(f"{app_url}/chat")
    ask.or_(no_data).first.wait_for()
    if no_data.count():  # run on its own: load the demo first (an earlier test may have)
        page.goto(app_url)
        load = page.get_by_role("button", name="Load demo data")
        load.click()
        load.wait_for(state="detached")
        page.get_by_role("link", name="Chat").first.click()
    ask.wait_for()
    ask.fill("How many purchases were made?")
    ask.press("Enter")
    page.get_by_text("Number of purchases: 8,000").first.wait_for()
    # Asked after a purchases answer, this used to be answered as "Number of purchases: 8,000" again.
    ask.fill("How many employees does the company have?")
    ask.press("Enter")
    answer = page.get_by_text("I could not answer that", exact=False).first
    answer.wait_for()
    text = answer.inner_text()
    assert "'employees'" in text and "Questions I can answer here:" in text
    page.close()
