"""LLM providers, tested for their protocol and through the gate.

Bedrock: boto3's real client with botocore's Stubber (the request must match the Converse API's shape).
OpenAI-compatible: a small HTTP server on 127.0.0.1 speaking ``/v1/chat/completions``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.stub import ANY, Stubber

from helios_core.chat.assistant import Assistant
from helios_core.chat.context import PreviousTurn, Subject
from helios_core.chat.providers import (
    SYSTEM_PROMPT,
    BedrockProvider,
    OpenAICompatibleProvider,
    parse_reply,
    what_is_sent,
)
from helios_core.chat.store import ChatStore
from helios_core.errors import HeliosError, ValidationError

GOOD_SQL = "SELECT plan, count() AS users FROM demo.users GROUP BY plan ORDER BY users DESC"


def converse_response(text: str) -> dict:
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}, "metrics": {"latencyMs": 12}}


@pytest.fixture()
def bedrock():
    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expect(stubber: Stubber, reply: str, model: str = "test-model") -> None:
    stubber.add_response("converse", converse_response(reply),
                         {"modelId": model, "system": [{"text": SYSTEM_PROMPT}],
                          "messages": [{"role": "user", "content": [{"text": ANY}]}],
                          "inferenceConfig": {"maxTokens": 1024, "temperature": 0.0}})


# ---- an OpenAI-compatible server on loopback ---------------------------------------------------------


class FakeOpenAI:
    """Scripted replies; records every request it receives."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict]] = []
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                owner.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status, payload = owner.replies.pop(0) if owner.replies else (500, {"error": {"message": "none"}})
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def reply(self, content: str, status: int = 200) -> None:
        payload = ({"id": "x", "object": "chat.completion", "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop"}]} if status == 200 else {"error": {"message": content}})
        self.replies.append((status, payload))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def openai_server():
    server = FakeOpenAI()
    yield server
    server.close()


# ---- Bedrock -----------------------------------------------------------------------------------------


def test_bedrock_converse_answer_goes_through_the_gate(ch, demo, bedrock):
    client, stubber = bedrock
    expect(stubber, f"Here you go:\n```sql\n{GOOD_SQL};\n```")
    answer = Assistant(ch, provider=BedrockProvider("test-model", client=client)).ask(
        "users by plan", subject=Subject("demo"))
    assert answer.ok, answer.text
    assert answer.provider == "bedrock"
    assert sorted(answer.frame["plan"]) == ["enterprise", "free", "pro"]
    assert answer.chart is not None and answer.chart.kind == "bar"


def test_bedrock_drop_table_is_refused_even_after_repair(ch, demo, bedrock):
    client, stubber = bedrock
    expect(stubber, "```sql\nDROP TABLE demo.users\n```")
    expect(stubber, "DROP TABLE demo.users")  # the repair round insists
    before = ch.internal_query("SELECT count() AS n FROM demo.users")[0]["n"]
    answer = Assistant(ch, provider=BedrockProvider("test-model", client=client)).ask(
        "delete everything", subject=Subject("demo"))
    assert not answer.ok and "SELECT" in answer.text
    assert ch.internal_query("SELECT count() AS n FROM demo.users")[0]["n"] == before


def test_bedrock_repair_round_gets_the_error_text(ch, demo, bedrock):
    client, stubber = bedrock
    expect(stubber, "SELECT plan, count() FROM demo.users GROUP BY plann")
    stubber.add_response("converse", converse_response(f"```sql\n{GOOD_SQL}\n```"),
                         {"modelId": "test-model", "system": ANY, "inferenceConfig": ANY,
                          "messages": [{"role": "user", "content": [{"text": ANY}]}]})
    seen: list[str] = []
    client.meta.events.register("before-parameter-build.bedrock-runtime.Converse",
                                lambda params, **kw: seen.append(params["messages"][0]["content"][0]["text"]))
    answer = Assistant(ch, provider=BedrockProvider("test-model", client=client)).ask(
        "users by plan", subject=Subject("demo"))
    assert answer.ok, answer.text
    assert len(seen) == 2 and "plann" in seen[1] and "UNKNOWN_IDENTIFIER" in seen[1]


def test_bedrock_errors_become_helios_errors(ch, demo, bedrock):
    client, stubber = bedrock
    stubber.add_client_error("converse", service_error_code="AccessDeniedException",
                             service_message="not allowed", http_status_code=403)
    answer = Assistant(ch, provider=BedrockProvider("test-model", client=client)).ask(
        "users by plan", subject=Subject("demo"))
    assert not answer.ok and "denied" in answer.text.lower() and "bedrock:InvokeModel" in answer.text


# ---- OpenAI-compatible --------------------------------------------------------------------------------


def test_openai_protocol_and_what_is_sent(ch, demo, openai_server):
    openai_server.reply(f"```sql\n{GOOD_SQL}\n```")
    provider = OpenAICompatibleProvider(openai_server.url, "test-model", api_key="sk-test-abcdefghijklmnop1234")
    store = ChatStore(ch)
    chat = store.create("LLM chat", "demo")
    answer = Assistant(ch, store, provider).ask("users by plan", chat)
    assert answer.ok, answer.text
    request = openai_server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test-abcdefghijklmnop1234"
    body = request["body"]
    assert body["model"] == "test-model" and body["temperature"] == 0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    prompt = body["messages"][1]["content"]
    assert "users by plan" in prompt and "demo.users" in prompt and "'enterprise'" in prompt  # schema + values
    # the key never reaches the chat history, nor does any repr of the provider show it
    stored = json.dumps([m.to_json() for m in store.messages(chat.id)], default=str)
    assert "sk-test-abcdefghijklmnop1234" not in stored
    assert "sk-test" not in repr(provider) and "sk-test" not in provider.describe()


def test_openai_never_sends_rows_unless_allowed(ch, demo, openai_server):
    provider = OpenAICompatibleProvider(openai_server.url, "m")
    previous = PreviousTurn("users by plan", GOOD_SQL, ["plan", "users"], ["String", "UInt64"])
    openai_server.reply("SELECT count() FROM demo.users")
    Assistant(ch, provider=provider).ask("how many users?", subject=Subject("demo"), previous=previous)
    no_rows = openai_server.requests[-1]["body"]["messages"][1]["content"]
    assert "rows of the previous result" not in no_rows and "1014" not in no_rows
    assert GOOD_SQL in no_rows  # the previous SQL is context, its rows are not
    assert openai_server.requests[-1]["auth"] is None
    openai_server.reply("SELECT count() FROM demo.users")
    Assistant(ch, provider=provider).ask("how many users?", subject=Subject("demo"), previous=previous,
                                         allow_rows=True)
    with_rows = openai_server.requests[-1]["body"]["messages"][1]["content"]
    assert "rows of the previous result" in with_rows and "1014" in with_rows  # free users, from the data
    assert "never any result rows" in what_is_sent("openai", False)


def test_openai_unknown_column_is_refused_then_repaired(ch, demo, openai_server):
    openai_server.reply("SELECT plan, sum(revenue) FROM demo.users GROUP BY plan")
    openai_server.reply("SELECT plan, sum(revenue) FROM demo.users GROUP BY plan")
    answer = Assistant(ch, provider=OpenAICompatibleProvider(openai_server.url, "m")).ask(
        "revenue by plan", subject=Subject("demo"))
    assert not answer.ok and "revenue" in answer.text
    repair = openai_server.requests[1]["body"]["messages"][1]["content"]
    assert "Your previous SQL was" in repair and "revenue" in repair

    openai_server.reply("SELECT 1; DROP TABLE demo.users")
    openai_server.reply(f"```sql\n{GOOD_SQL}\n```")
    fixed = Assistant(ch, provider=OpenAICompatibleProvider(openai_server.url, "m")).ask(
        "users by plan", subject=Subject("demo"))
    assert fixed.ok and len(fixed.frame) == 3


def test_openai_cannot_and_http_errors(ch, demo, openai_server):
    openai_server.reply("CANNOT: the data has no weather.")
    answer = Assistant(ch, provider=OpenAICompatibleProvider(openai_server.url, "m")).ask(
        "weather?", subject=Subject("demo"))
    assert not answer.ok and "no weather" in answer.text and len(answer.suggestions) == 3
    openai_server.reply("bad key", status=401)
    failed = Assistant(ch, provider=OpenAICompatibleProvider(openai_server.url, "m", api_key="sk-wrong-key-000000"))\
        .ask("users by plan", subject=Subject("demo"))
    assert not failed.ok and "401" in failed.text and "sk-wrong" not in failed.text


def test_unreachable_endpoint_and_bad_settings():
    provider = OpenAICompatibleProvider("http://127.0.0.1:9/v1", "m", timeout_s=2)
    with pytest.raises(HeliosError) as info:
        provider.complete("s", "p")
    assert "Could not reach" in str(info.value)
    with pytest.raises(ValidationError):
        OpenAICompatibleProvider("ftp://x", "m")
    with pytest.raises(ValidationError):
        OpenAICompatibleProvider("http://x/v1", "")
    with pytest.raises(ValidationError):
        BedrockProvider("  ")


def test_parse_reply():
    assert parse_reply("```sql\nSELECT 1;\n```").sql == "SELECT 1"
    assert parse_reply("SELECT 2").sql == "SELECT 2"
    assert parse_reply("Sure!\n```\nSELECT 3\n```\nDone.").sql == "SELECT 3"
    assert parse_reply("CANNOT: no such data").sql is None
    assert parse_reply("").sql is None
