"""AppTest: the Connect and Stream preview pages, against the real sandbox and a moto server."""

from __future__ import annotations

import uuid

import pytest
from helpers import APPTEST_TIMEOUT
from streamlit.testing.v1 import AppTest

SECRET = "SuperSecretValue/do-not-show-123"


@pytest.fixture
def no_aws_credentials(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def app(app_path, ch, aws_sandbox):
    return AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT)


def _texts(at) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "error", "warning", "success", "title", "subheader", "metric",
                 "code", "text"):
        parts += [str(getattr(e, "value", "")) for e in getattr(at, kind)]
    parts += [str(e.label) for e in at.metric]
    return " ".join(parts)


def _frame_with(at, *columns: str):
    """The first table showing all these columns (the undecodable records' table also has a "reason")."""
    return next(d.value for d in at.dataframe if set(columns) <= set(d.value.columns))


def test_connect_picks_the_sandbox_when_no_credentials_are_found(open_page, no_aws_credentials, aws_sandbox):
    at = open_page("pages/connect.py")
    text = _texts(at)
    assert "No AWS credentials were found" in text and "local sandbox" in text
    assert "Sandbox" in text  # the badge
    assert "123456789012" in text
    conn = at.session_state["aws_connection"]
    assert conn.sandbox and conn.endpoint_url == aws_sandbox.endpoint_url
    streams = _frame_with(at, "stream")
    assert {"user_activity", "purchase_events", "captcha_events"} <= set(streams["stream"])
    assert set(streams.columns) >= {"status", "mode", "open shards", "retention (h)"}


def test_connect_with_keys_keeps_the_secret_out_of_the_page(open_page, aws_sandbox, moto_server):
    at = open_page("pages/connect.py")
    at.text_input(key="aws_access_key_id").input("AKIATESTKEYZ0001")
    at.text_input(key="aws_secret_access_key").input(SECRET)
    at.selectbox(key="aws_region").set_value("eu-west-1")
    at.text_input(key="aws_endpoint_url").input(moto_server)
    at.button[[b.key for b in at.button].index("FormSubmitter:aws_form-Connect")].click().run()
    assert not at.exception and not at.error
    conn = at.session_state["aws_connection"]
    assert not conn.sandbox and conn.method == "keys" and conn.region == "eu-west-1"
    text = _texts(at)
    assert "access key …0001" in text and "Account `123456789012`" in text
    assert SECRET not in text and "AKIATESTKEYZ" not in text
    assert "aws_secret_access_key" not in at.session_state or not at.session_state["aws_secret_access_key"]
    assert "Sandbox" not in [getattr(e, "value", "") for e in at.markdown]


def test_wrong_credentials_show_a_clear_message(open_page, aws_sandbox, moto_auth, moto_server):
    at = open_page("pages/connect.py")
    before = at.session_state["aws_connection"] if "aws_connection" in at.session_state else None
    at.text_input(key="aws_access_key_id").input("AKIAWRONGWRONGWRONG1")
    at.text_input(key="aws_secret_access_key").input(SECRET)
    at.text_input(key="aws_endpoint_url").input(moto_server)
    at.button[[b.key for b in at.button].index("FormSubmitter:aws_form-Connect")].click().run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "does not recognise the access key" in errors
    assert SECRET not in _texts(at)
    after = at.session_state["aws_connection"] if "aws_connection" in at.session_state else None
    assert after is before  # a failed attempt does not replace the working connection


def test_unreachable_endpoint_is_explained(open_page, aws_sandbox):
    at = open_page("pages/connect.py")
    at.text_input(key="aws_access_key_id").input("AKIATESTKEYZ0002")
    at.text_input(key="aws_secret_access_key").input("x")
    at.text_input(key="aws_endpoint_url").input("http://127.0.0.1:9")
    at.button[[b.key for b in at.button].index("FormSubmitter:aws_form-Connect")].click().run()
    assert not at.exception
    assert "Could not reach" in " ".join(e.value for e in at.error)


def _preview(app, aws_sandbox) -> AppTest:
    at = app
    at.session_state["aws_connection"] = aws_sandbox.connection()
    at.run()
    at.switch_page("pages/stream_preview.py").run()
    assert not at.exception
    return at


def test_preview_samples_a_sandbox_stream_and_continues_to_the_wizard(app, aws_sandbox):
    at = _preview(app, aws_sandbox)
    assert "Sandbox" in _texts(at)
    at.selectbox(key="preview_stream").set_value("user_activity").run()
    at.number_input(key="preview_n").set_value(60).run()
    at.button(key="preview_run").click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Events"] == "60" and metrics["Shards"] == "2"
    schema = at.session_state["preview_schema"]
    assert {"event_id", "user_id", "timestamp", "screen_width"} <= {c.name for c in schema.columns}
    assert _frame_with(at, "reason", "type")["type"].tolist()[0] == "UUID"
    assert len(at.tabs) == 5
    at.button(key="preview_continue").click().run()
    assert not at.exception
    assert at.session_state["wizard_stream"] == "user_activity"
    assert at.session_state["wizard_schema"] is schema
    assert len(at.session_state["wizard_sample"]) == 60


def test_preview_of_an_empty_stream(app, aws_sandbox):
    client = aws_sandbox.client("kinesis")
    name = f"empty_{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=2)
    try:
        at = _preview(app, aws_sandbox)
        at.selectbox(key="preview_stream").set_value(name).run()
        at.button(key="preview_run").click().run()
        assert not at.exception
        assert {m.label: m.value for m in at.metric}["Events"] == "0"
        assert "holds no events" in _texts(at)
        assert at.button(key="preview_continue").disabled
    finally:
        client.delete_stream(StreamName=name)


def test_preview_without_a_connection_offers_the_sandbox(app, aws_sandbox, monkeypatch):
    # With credentials configured (these are never used), Helios asks rather than picking the sandbox itself.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    at = app.run()
    at.switch_page("pages/stream_preview.py").run()
    assert not at.exception
    assert "Connect to AWS first" in _texts(at)
    at.button(key="preview_use_sandbox").click().run()
    assert not at.exception
    assert at.session_state["aws_connection"].sandbox
