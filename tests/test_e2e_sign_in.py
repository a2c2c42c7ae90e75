"""Sign-in end to end: a real OIDC flow in Debian's chromium against a local OIDC provider.

The test starts ``oidc-provider-mock`` on loopback, writes an ``[auth]`` section for it into a temporary
``.streamlit/secrets.toml``, seeds a chat, a report and an import job for each of two users (Ann and Bob) with
the core functions in a separate process (the embedded engine allows one process per data dir), then runs
``streamlit run app.py`` from that directory. Ann and Bob sign in through the provider's form in two browser
contexts (separate cookies): each sees only their own records, and neither can open the other's job by URL.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import WAIT
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from test_e2e_browser import (  # noqa: F401 (browser: a fixture)
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    _free_port,
    _wait_idle,
    browser,
    running_app,
)

pytestmark = pytest.mark.e2e
USERS = {"ann": "ann@example.com", "bob": "bob@example.com"}

SEED = textwrap.dedent("""
    import json
    from helios_core.chat.store import ChatStore
    from helios_core.runtime import get_clickhouse
    from helios_core.jobs import JobService
    from helios_core.reports import ReportDefinition, save_report
    from helios_core.users import user_for

    ch = get_clickhouse()
    ch.execute("CREATE DATABASE IF NOT EXISTS shop")
    ch.execute("CREATE TABLE IF NOT EXISTS shop.sales (ts DateTime, amount Float64) ENGINE = MergeTree ORDER BY ts")
    ch.execute("INSERT INTO shop.sales VALUES ('2024-01-01 10:00:00', 12.5)")
    service = JobService(ch)
    out = {}
    for who, email in %r.items():
        user = user_for(email)
        out[who] = {
            "chat": ChatStore(ch, user).create(f"{who.title()} private chat", "shop").id,
            "report": save_report(ch, ReportDefinition("shop", "sales", "ts"), f"{who.title()} private report",
                                  user=user).id,
            "job": service.create({"name": f"{who.title()} private job", "format": "csv", "target": "existing",
                                   "database": "shop", "table": "sales"}, user).id,
        }
    print("SEEDED " + json.dumps(out), flush=True)
""") % USERS


@pytest.fixture(scope="module")
def oidc_provider():
    try:
        from oidc_provider_mock import run_server_in_thread
    except ImportError:
        pytest.skip("oidc-provider-mock is not installed (pip install -r requirements-dev.txt)")
    try:
        import authlib  # noqa: F401  (Streamlit's st.login needs it)
    except ImportError:
        pytest.skip("Authlib is not installed (pip install -r requirements.txt)")
    with run_server_in_thread(port=0) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def signed_in_app(tmp_path_factory, oidc_provider, moto_server):
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    home = tmp_path_factory.mktemp("e2e-sign-in")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    (home / ".streamlit").mkdir()
    shutil.copy(ROOT / ".streamlit" / "config.toml", home / ".streamlit" / "config.toml")
    (home / ".streamlit" / "secrets.toml").write_text(textwrap.dedent(f"""
        [auth]
        redirect_uri = "{url}/oauth2callback"
        cookie_secret = "{secrets.token_hex(16)}"
        client_id = "helios-e2e"
        client_secret = "{secrets.token_hex(16)}"
        server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"
    """))
    env = dict(os.environ, HELIOS_DATA_DIR=str(home / "data"), HELIOS_AWS_ENDPOINT_URL=moto_server,
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="eu-west-1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("HELIOS_CLICKHOUSE_URL", None)
    seeded = subprocess.run([sys.executable, "-c", SEED], cwd=home, env=env, capture_output=True, text=True,
                            timeout=300)
    line = next((ln for ln in seeded.stdout.splitlines() if ln.startswith("SEEDED ")), None)
    assert line, f"seeding failed: {seeded.stdout[-1500:]} {seeded.stderr[-1500:]}"
    records = json.loads(line.removeprefix("SEEDED "))
    with running_app(port, home, env, home / "streamlit.log"):
        yield url, records


def sign_in(context, url: str, email: str):
    page = context.new_page()
    page.set_default_timeout(WAIT * 1000)  # generous: the machine may be busy
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.locator("input[name='sub']").fill(email)  # the provider's form: who signs in
    page.get_by_role("button", name="Authorize").click()
    page.get_by_text("Signed in as").first.wait_for()
    assert email in page.get_by_text("Signed in as").first.inner_text()
    return page


def open_options(page, select, wanted: str, timeout: float = 180.0) -> None:
    """Open a selectbox until ``wanted`` is among its options.

    On a busy machine the page may still be running when the box is clicked; a rerun then redraws it and the
    list closes. So: wait until the script run is over, click, and click again if the list did not stay open.
    """
    deadline = time.monotonic() + timeout
    while True:
        _wait_idle(page)
        select.click()
        try:
            page.get_by_role("option", name=wanted).wait_for(timeout=10_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            if time.monotonic() > deadline:
                raise


def test_two_signed_in_users_see_only_their_own_records(browser, signed_in_app):  # noqa: F811
    url, records = signed_in_app
    contexts = {who: browser.new_context(viewport={"width": 1400, "height": 1000}) for who in USERS}
    try:
        # Before signing in, nothing but the sign-in button: not even a deep link shows a page.
        anonymous = browser.new_context().new_page()
        anonymous.goto(f"{url}/jobs?job={records['ann']['job']}")
        anonymous.get_by_role("button", name="Sign in").wait_for(timeout=WAIT * 1000)
        assert "private" not in anonymous.content()
        anonymous.context.close()

        for who, email in USERS.items():
            other = "bob" if who == "ann" else "ann"
            mine, theirs = who.title(), other.title()
            page = sign_in(contexts[who], url, email)

            page.goto(f"{url}/chat")
            page.get_by_text(f"{mine} private chat").first.wait_for()
            assert f"{theirs} private chat" not in page.content()

            # The other user's job by URL: not opened; the page shows this user's own job instead.
            page.goto(f"{url}/jobs?job={records[other]['job']}")
            page.get_by_role("heading", name=f"{mine} private job").first.wait_for()
            assert f"{theirs} private job" not in page.content()
            assert records[other]["job"] not in page.content()

            page.goto(f"{url}/reports")
            page.get_by_role("heading", name="Reports").first.wait_for()
            open_options(page, page.locator("[data-testid='stSelectbox']").first, f"Saved: {mine} private report")
            assert page.get_by_role("option", name=f"Saved: {theirs} private report").count() == 0
            page.keyboard.press("Escape")

            page.goto(url)
            page.get_by_role("button", name="Sign out").click()
            # The provider asks to confirm ending its session (RP-initiated logout), then sends the browser back.
            page.get_by_role("button", name="End session").click()
            page.get_by_role("button", name="Sign in").wait_for()
            page.close()
    finally:
        for context in contexts.values():
            context.close()
