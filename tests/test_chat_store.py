"""Chats and messages in the helios metadata database: create, list, rename, delete, persistence, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helios_core.chat.store import ChatStore, NewMessage, scrub
from helios_core.errors import NotFound, ValidationError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def store(ch):
    return ChatStore(ch)


def test_create_list_rename_delete(store):
    a = store.create("First chat", "demo")
    b = store.create("  Second   chat ", "demo")
    assert b.name == "Second chat"
    listed = {c.id: c for c in store.list()}
    assert a.id in listed and b.id in listed
    assert listed[a.id].database == "demo" and listed[a.id].created_at is not None

    renamed = store.rename(a.id, "Renamed")
    assert renamed.name == "Renamed"
    assert store.get(a.id).name == "Renamed"
    assert [c for c in store.list() if c.id == a.id][0].name == "Renamed"  # one row per chat after FINAL

    store.add_turn(b.id, [NewMessage("user", "text", "hello")])
    store.delete(b.id)
    assert b.id not in {c.id for c in store.list()}
    with pytest.raises(NotFound):
        store.get(b.id)
    assert store.messages(b.id) == []


def test_invalid_input(store):
    with pytest.raises(ValidationError):
        store.create("   ", "demo")
    with pytest.raises(ValidationError):
        store.create("x", "")
    chat = store.create("x", "demo")
    with pytest.raises(ValidationError):
        store.add_turn(chat.id, [NewMessage("robot", "text", "?")])
    with pytest.raises(ValidationError):
        store.add_turn(chat.id, [NewMessage("user", "image", "?")])


def test_messages_keep_order_turns_and_content_types(store):
    chat = store.create("Messages", "demo")
    store.add_turn(chat.id, [NewMessage("user", "text", "how many users?")])
    store.add_turn(chat.id, [
        NewMessage("assistant", "text", "2,000 users."),
        NewMessage("assistant", "table", {"columns": ["n"], "types": ["UInt64"], "rows": [{"n": 2000}]}),
        NewMessage("assistant", "chart", {"spec": {"kind": "bar"}, "figure": {"data": []}}),
        NewMessage("assistant", "query", {"sql": "SELECT count() FROM demo.users", "plan": {"table": "users"}}),
    ])
    fresh = ChatStore(store.ch)  # a new store reads what the first wrote
    messages = fresh.messages(chat.id)
    assert [m.seq for m in messages] == [0, 1, 2, 3, 4]
    assert [m.turn for m in messages] == [0, 1, 1, 1, 1]
    assert [m.content_type for m in messages] == ["text", "text", "table", "chart", "query"]
    assert messages[2].content["rows"] == [{"n": 2000}]
    assert fresh.last_query(chat.id)["sql"] == "SELECT count() FROM demo.users"


def test_secrets_are_scrubbed_before_storing(store):
    chat = store.create("Secrets", "demo")
    text = ("my key AKIAABCDEFGHIJKLMNOP and sk-abcdefghijklmnopqrstuvwx and "
            "https://bob:hunter2@example.com/db")
    store.add_turn(chat.id, [NewMessage("user", "text", text)])
    stored = store.messages(chat.id)[0].content
    for secret in ("AKIAABCDEFGHIJKLMNOP", "sk-abcdefghijklmnopqrstuvwx", "hunter2"):
        assert secret not in stored
    assert "bob:***@example.com" in stored
    assert scrub("nothing secret here") == "nothing secret here"


def test_history_survives_a_restart(tmp_path):
    """Two separate processes on one data dir: the second follows up on the first's chat."""
    env = dict(os.environ, HELIOS_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    env.pop("HELIOS_CLICKHOUSE_URL", None)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "helios_core", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    loaded = cli("demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    first = cli("ask", "Logins on mobile in the last 7 days", "--database", "demo")
    assert first.returncode == 0, first.stderr
    chat_id = json.loads(first.stdout)["chat_id"]

    second = cli("ask", "now by day", "--chat", chat_id)  # a new process: context comes from the store
    assert second.returncode == 0, second.stderr
    answer = json.loads(second.stdout)
    assert answer["chat_id"] == chat_id
    assert answer["column_names"][0] == "day"
    assert "device = 'mobile'" in answer["sql"] and "login" in answer["sql"]



SECRETS = [  # (pasted text, the secret part that must not be stored)
    ("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY here", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("AWS_SECRET_ACCESS_KEY=abc/def+ghiJKL", "abc/def+ghiJKL"),
    ("key sk-proj-Ab3dE_fGh-IjKlMnOpQrStUvWxYz0123456789abcdEFGH_ij-",
     "Ab3dE_fGh-IjKlMnOpQrStUvWxYz0123456789abcdEFGH"),
    ("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdefgh-AA", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("gsk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij0123", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("xai-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("AIzaSyA-1234567890abcdefghijklmnopqrstu", "SyA-1234567890abcdefghijklmnopqrstu"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc+def/ghi=", "eyJhbGciOiJIUzI1NiJ9"),
    ("clickhouse://host:8443/db?user=bob&password=hunter22&secure=1", "hunter22"),
    ("https://host:8443/?password=hunter23", "hunter23"),
    ("host=db user=bob password=hunter24 dbname=shop", "hunter24"),
    ("postgresql://bob:hunter25@db:5432/shop", "hunter25"),
    ("clickhouse://bob:hunter26@host:9440/default", "hunter26"),
    ("api_key=abcdefghijklmnop0123", "abcdefghijklmnop0123"),
]


@pytest.mark.parametrize("text,secret", SECRETS, ids=[s[:24] for s, _ in SECRETS])
def test_scrub_masks_every_key_form(text, secret):
    assert secret not in scrub(text)
    assert "***" in scrub(text)


def test_scrub_leaves_ordinary_text_and_hashes_alone():
    for text in ("SELECT count() FROM demo.users WHERE plan = 'pro'", "commit 3f1c2a4e8b7d4c219a6e0d5b7f3e2a11aabbccdd",
                 "the bearer of news", "see https://example.com/docs?page=2", "password reset flow"):
        assert scrub(text) == text


def test_a_pasted_secret_is_not_stored(store):
    chat = store.create("More secrets", "demo")
    text = " / ".join(t for t, _ in SECRETS)
    store.add_turn(chat.id, [NewMessage("user", "text", text)])
    stored = store.messages(chat.id)[0].content
    for _, secret in SECRETS:
        assert secret not in stored


def test_connect_error_does_not_show_a_dsn_password(tmp_path):
    from helios_core.clickhouse import ClickHouse
    from helios_core.config import load_settings
    from helios_core.errors import ClickHouseUnavailable

    for url in ("http://127.0.0.1:1/default?user=bob&password=s3cretPW", "http://bob:s3cretPW@127.0.0.1:1/default"):
        settings = load_settings(env={"HELIOS_CLICKHOUSE_URL": url, "HELIOS_DATA_DIR": str(tmp_path)}, cwd=tmp_path,
                                 secrets_paths=[])
        assert "s3cretPW" not in settings.describe_clickhouse() and "s3cretPW" not in repr(settings)
        with pytest.raises(ClickHouseUnavailable) as info:
            ClickHouse(settings)
        assert "s3cretPW" not in str(info.value) and "127.0.0.1" in str(info.value)
        assert info.value.__cause__ is None
