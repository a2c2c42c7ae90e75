"""Malformed and hostile requests against a real API server: each gets a 4xx JSON error, nothing is written,
and the server stays up.

"Nothing written" is checked on a fingerprint of every database, table and row count (the ``helios``
metadata tables included) taken before the suite and after it.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from api_server import api_server

STREAM = f"api_hostile_{uuid.uuid4().hex[:6]}"
BODY_LIMIT = 200_000
SCHEMA = [{"name": "time", "type": "DateTime64(3, 'UTC')", "required": True},
          {"name": "type", "type": "LowCardinality(String)", "required": True, "allowed_values": ["serve", "solve"]},
          {"name": "site_id", "type": "UUID", "required": True}]
FINGERPRINT = ("SELECT (SELECT count() FROM system.databases) AS databases, count() AS tables, "
               "sum(ifNull(total_rows, 0)) AS rows FROM system.tables "
               "WHERE database NOT IN ('system', 'information_schema', 'INFORMATION_SCHEMA') "
               # written by the ingest manager's own clock, not by requests
               "AND (database, name) NOT IN (('helios', 'ingest_metrics'), ('helios', 'ingest_checkpoints'))")


@pytest.fixture(scope="module")
def server(moto_server, aws_conn):
    aws_conn.client("kinesis").create_stream(StreamName=STREAM, ShardCount=1)
    with api_server(moto_server, demo=True, env={"HELIOS_API_MAX_BODY": str(BODY_LIMIT)}) as srv:
        yield srv
    aws_conn.client("kinesis").delete_stream(StreamName=STREAM)


@pytest.fixture(scope="module")
def setup(server):
    """A source, a chat and a submitted job to aim at; then the fingerprint everything is compared with."""
    with server.client("write") as api:
        made = api.post("/api/create-table", json={"streamName": STREAM, "tableName": "events", "databaseName": "h",
                                                    "schema": SCHEMA, "orderBy": ["time"]})
        assert made.status_code == 200, made.text
        chat = api.post("/api/chats", json={"chat_name": "hostile", "database": "h"}).json()
        fingerprint = api.post("/api/query", json={"query": FINGERPRINT}).json()["data"]
    return {"source": made.json()["sourceId"], "chat": chat["chat_id"], "fingerprint": fingerprint}


def _chunks(total: int):
    piece = b" " * 65536
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)


J = {"Content-Type": "application/json"}
UNKNOWN = "00000000-0000-4000-8000-000000000000"
M = "/api/ingest/metrics"


def sample(**overrides) -> dict:
    """A worker's metrics sample that is well-formed apart from ``overrides``."""
    return {"samples": [{"worker_id": "hostile", "source_id": "nosuchsource", "rows_inserted": 1, **overrides}]}

# (name, token, method, path, request keyword arguments, allowed statuses)
CASES = [
    ("no token", None, "GET", "/api/databases", {}, {401}),
    ("wrong token", "bogus", "GET", "/api/sources", {}, {401}),
    ("basic auth", "basic", "GET", "/api/databases", {}, {401}),
    ("revoked token", "revoked", "GET", "/api/databases", {}, {401}),
    ("no token on a write", None, "POST", "/api/event", {"json": {"a": 1}}, {401}),
    ("read-only event", "read", "POST", "/api/event", {"json": {"a": 1}}, {403}),
    ("read-only write query", "read", "POST", "/api/query", {"json": {"query": "SELECT 1", "write": True}}, {403}),
    ("read-only create-table", "read", "POST", "/api/create-table", {"json": {}}, {403}),
    ("read-only create_job", "read", "POST", "/create_job", {"json": {}}, {403}),
    ("read-only chat", "read", "POST", "/api/chats", {"json": {"database": "h"}}, {403}),
    ("query bad json", "write", "POST", "/api/query", {"content": b'{"query": ', "headers": J}, {400}),
    ("query not utf-8", "write", "POST", "/api/query", {"content": b'{"query": "\xff\xfe"}', "headers": J}, {400}),
    ("query wrong type", "write", "POST", "/api/query", {"json": {"query": 42}}, {422}),
    ("query as array", "write", "POST", "/api/query", {"json": ["SELECT 1"]}, {422}),
    ("query empty", "write", "POST", "/api/query", {"json": {"query": "   "}}, {400}),
    ("query missing", "write", "POST", "/api/query", {"json": {}}, {400}),
    ("query form-encoded", "write", "POST", "/api/query", {"data": {"query": "SELECT 1"}}, {400}),
    ("drop without write", "write", "POST", "/api/query", {"json": {"query": "DROP DATABASE h"}}, {400, 403}),
    ("insert without write", "write", "POST", "/api/query",
     {"json": {"query": "INSERT INTO h.events (type) VALUES ('serve')"}}, {400, 403}),
    ("stacked statements", "write", "POST", "/api/query",
     {"json": {"query": "SELECT 1; DROP DATABASE helios"}}, {400, 403}),
    ("limit negative", "write", "POST", "/api/query", {"json": {"query": "SELECT 1", "limit": -5}}, {422}),
    ("event bad json", "write", "POST", "/api/event", {"content": b'{"time": ', "headers": J}, {400}),
    ("event empty body", "write", "POST", "/api/event", {"content": b"", "headers": J}, {400}),
    ("event scalar", "write", "POST", "/api/event", {"content": b"42", "headers": J}, {400}),
    ("event empty array", "write", "POST", "/api/event", {"json": []}, {400}),
    ("event unknown source", "write", "POST", "/api/event?source=nosuchsource", {"json": {"a": 1}}, {404}),
    ("event injected source", "write", "POST", "/api/event", {"json": {"a": 1},
                                                              "params": {"source": "h.events`; DROP DATABASE h; --"}},
     {404}),
    ("event huge body", "write", "POST", "/api/event", {"content": b"[" + b" " * (BODY_LIMIT + 1) + b"]",
                                                        "headers": J}, {413}),
    ("event huge chunked", "write", "POST", "/api/event", {"content": _chunks(BODY_LIMIT * 2), "headers": J}, {413}),
    ("idempotency key too long", "write", "POST", "/api/event",
     {"json": {"a": 1}, "headers": {"Idempotency-Key": "k" * 500}}, {400}),
    ("report unknown column", "write", "GET", "/api/report/filter", {"params": {"nope": "1"}}, {400}),
    ("report injected value", "write", "GET", "/api/report/filter",
     {"params": {"site_id": "' OR 1=1 --"}}, {400}),
    ("report injected column", "write", "GET", "/api/report/filter",
     {"params": {"type`) OR 1=1; DROP TABLE demo.users; --": "serve"}}, {400}),
    ("report seed-form injection", "write", "GET", "/api/report/site_id='x' OR '1'='1'", {}, {400}),
    ("report unknown saved", "write", "GET", "/api/report", {"params": {"report": "no such report"}}, {404}),
    ("report unknown preset", "write", "GET", "/api/report", {"params": {"preset": "nope"}}, {404}),
    ("report filter without filters", "write", "GET", "/api/report/filter", {}, {400}),
    ("create-table injected name", "write", "POST", "/api/create-table",
     {"json": {"streamName": STREAM, "tableName": "t`; DROP DATABASE helios; --", "databaseName": "h",
               "schema": SCHEMA, "orderBy": ["time"]}}, {400}),
    ("create-table system database", "write", "POST", "/api/create-table",
     {"json": {"streamName": STREAM, "tableName": "t", "databaseName": "system", "schema": SCHEMA,
               "orderBy": ["time"]}}, {400}),
    ("create-table schema not a list", "write", "POST", "/api/create-table",
     {"json": {"streamName": STREAM, "tableName": "t2", "databaseName": "h", "schema": "a String"}}, {400}),
    ("create-table injected type", "write", "POST", "/api/create-table",
     {"json": {"streamName": STREAM, "tableName": "t3", "databaseName": "h",
               "schema": [{"name": "a", "type": "String) ENGINE = Log; DROP DATABASE h; --"}]}}, {400}),
    ("create-table wrong column types", "write", "POST", "/api/create-table",
     {"json": {"streamName": STREAM, "tableName": "t4", "databaseName": "h",
               "schema": [{"name": "a", "type": "String", "allowed_values": 5}]}}, {400}),
    ("create-table missing fields", "write", "POST", "/api/create-table", {"json": {"streamName": STREAM}}, {400}),
    ("create-table unknown stream", "write", "POST", "/api/create-table",
     {"json": {"streamName": "no_such_stream_h", "tableName": "t5", "databaseName": "h", "schema": SCHEMA,
               "orderBy": ["time"]}}, {404}),
    ("sample unknown stream", "write", "POST", "/api/kinesis-sample", {"json": {"streamName": "no_such_h"}}, {404}),
    ("sample zero events", "write", "POST", "/api/kinesis-sample", {"json": {"streamName": STREAM, "n": 0}}, {422}),
    ("authenticate missing secret", "write", "POST", "/api/authenticate", {"json": {"accessKey": "AKIA"}}, {400}),
    ("chat injected database", "write", "POST", "/api/chats", {"json": {"database": "h; DROP DATABASE h"}}, {400}),
    ("chat helios database", "write", "POST", "/api/chats", {"json": {"database": "helios"}}, {400}),
    ("chat missing database", "write", "POST", "/api/chats", {"json": {"chat_name": "x"}}, {400}),
    ("chat unknown", "write", "GET", "/api/chats/nochat000000", {}, {404}),
    ("chat unknown message", "write", "POST", "/api/chats/nochat000000", {"json": {"content": "hi"}}, {404}),
    ("chat unknown credentials", "write", "GET", "/api/chats/' OR 1=1 --/credentials", {}, {404}),
    ("chat message wrong type", "write", "POST", "/api/chats/{chat}", {"json": {"content": 5}}, {422}),
    ("chat message empty", "write", "POST", "/api/chats/{chat}", {"json": {"content": "  "}}, {400}),
    ("replication not a dump", "write", "POST", "/api/chats/{chat}/replication-file",
     {"files": {"file": ("x.sql", b"hello, this is not a dump\n")}}, {400}),
    ("replication no file", "write", "POST", "/api/chats/{chat}/replication-file", {"data": {"x": "1"}}, {400}),
    ("create_job empty", "write", "POST", "/create_job", {"json": {}}, {400}),
    ("create_job as list", "write", "POST", "/create_job", {"json": [1, 2]}, {422}),
    ("create_job injected table", "write", "POST", "/create_job",
     {"json": {"name": "x", "format": "csv", "target": "new", "database": "h",
               "table": "t`; DROP DATABASE h; --"}}, {400}),
    ("register unknown job", "write", "POST", "/register_data_owner",
     {"json": {"job_id": UNKNOWN, "data_owner": "alice"}}, {404}),
    ("register files not a number", "write", "POST", "/register_data_owner",
     {"json": {"job_id": UNKNOWN, "data_owner": "alice", "files": "many"}}, {422}),
    ("submit unknown job", "write", "POST", "/submit_job", {"json": {"job_id": UNKNOWN}}, {404}),
    ("submit missing job id", "write", "POST", "/submit_job", {"json": {}}, {400}),
    ("status without job id", "write", "GET", "/get_status", {}, {400}),
    ("status injected job id", "write", "GET", "/get_status", {"params": {"job_id": "' OR 1=1 --"}}, {404}),
    ("metrics no token", None, "POST", M, {"json": sample()}, {401}),
    ("metrics read-only", "read", "POST", M, {"json": sample()}, {403}),
    ("metrics bad json", "write", "POST", M, {"content": b'{"samples": [', "headers": J}, {400}),
    ("metrics not an object", "write", "POST", M, {"json": [1, 2]}, {422}),
    ("metrics no samples", "write", "POST", M, {"json": {"samples": []}}, {422}),
    ("metrics samples not a list", "write", "POST", M, {"json": {"samples": "all"}}, {422}),
    ("metrics unknown source", "write", "POST", M, {"json": sample()}, {404}),
    ("metrics injected source", "write", "POST", M,
     {"json": sample(source_id="x' OR 1=1; DROP DATABASE helios; --")}, {404}),
    ("metrics negative counter", "write", "POST", M, {"json": sample(rows_inserted=-1)}, {422}),
    ("metrics counter as text", "write", "POST", M, {"json": sample(rows_inserted="5")}, {422}),
    ("metrics counter as float", "write", "POST", M, {"json": sample(rows_inserted=1.5)}, {422}),
    ("metrics counter overflow", "write", "POST", M, {"json": sample(rows_inserted=2**64)}, {422}),
    ("metrics unknown field", "write", "POST", M, {"json": sample(ts="2020-01-01T00:00:00Z")}, {422}),
    ("metrics worker id missing", "write", "POST", M, {"json": {"samples": [{"source_id": "x"}]}}, {400, 422}),
    ("metrics worker id control chars", "write", "POST", M, {"json": sample(worker_id="w\n\x00")}, {422}),
    ("metrics worker id too long", "write", "POST", M, {"json": sample(worker_id="w" * 5000)}, {422}),
    ("metrics error too long", "write", "POST", M, {"json": sample(last_error="e" * 5000)}, {422}),
    ("metrics insert far future", "write", "POST", M, {"json": sample(last_insert="9999-12-31T00:00:00Z")}, {422}),
    ("metrics insert not a date", "write", "POST", M, {"json": sample(last_insert="yesterday")}, {422}),
    ("metrics too many samples", "write", "POST", M,
     {"json": {"samples": sample()["samples"] * 1001}}, {422}),
    ("metrics huge body", "write", "POST", M, {"content": b"[" + b" " * (BODY_LIMIT + 1) + b"]", "headers": J},
     {413}),
    ("unknown endpoint", "write", "GET", "/api/nothing", {}, {404}),
    ("wrong method", "write", "DELETE", "/api/sources", {}, {405}),
]


def _headers(server, token: str | None) -> dict[str, str]:
    if token is None:
        return {}
    if token == "bogus":
        return {"Authorization": "Bearer helios_" + "x" * 43}
    if token == "basic":
        return {"Authorization": "Basic dXNlcjpwYXNz"}
    return {"Authorization": f"Bearer {server.tokens[token]}"}


@pytest.mark.parametrize("name,token,method,path,kwargs,statuses", CASES, ids=[c[0] for c in CASES])
def test_hostile_request_gets_a_json_4xx(server, setup, name, token, method, path, kwargs, statuses):
    kwargs = dict(kwargs)
    headers = {**_headers(server, token), **kwargs.pop("headers", {})}
    if callable(getattr(kwargs.get("content"), "__next__", None)):
        kwargs["content"] = _chunks(BODY_LIMIT * 2)  # a fresh generator for each run
    url = server.url + path.format(chat=setup["chat"])
    response = httpx.request(method, url, headers=headers, timeout=60, **kwargs)
    assert response.status_code in statuses, response.text
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"] and isinstance(body.get("hint"), str)
    assert "Traceback" not in response.text and "File \"" not in response.text


def test_metrics_for_an_app_source_are_refused(server, setup):
    """Samples name only sources ingested by headless workers: the app's own source is not one."""
    with server.client("write") as api:
        response = api.post(M, json=sample(source_id=setup["source"]))
    assert response.status_code == 404, response.text
    assert "not sources ingested by headless workers" in response.json()["error"]


def test_nothing_was_written_and_the_server_is_up(server, setup):
    assert len(CASES) >= 40
    with server.client("write") as api:
        assert api.get("/healthz").json() == {"status": "ok"}
        after = api.post("/api/query", json={"query": FINGERPRINT}).json()["data"]
        # ingest_metrics is left out of the fingerprint (the app's manager samples it): no worker wrote to it
        samples = api.post("/api/query", json={"query": "SELECT count() AS n FROM helios.ingest_metrics "
                                                        "WHERE worker_id != ''"}).json()["data"]
    assert int(samples[0]["n"]) == 0
    assert after == setup["fingerprint"]
    assert server.alive()
    assert "Traceback" not in server.log.read_text()
    assert json.dumps(after)  # the fingerprint itself came back as JSON
