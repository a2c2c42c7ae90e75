"""The HTTP API over real HTTP: a ``python -m helios_core serve`` process (own data dir, moto for AWS).

Every endpoint's happy path with the seed's response shape checked field by field, and its documented
error codes; the retry test (one Idempotency-Key, three POSTs, one landing).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_server import api_server
from helpers import wait_until

STREAM = f"api_captcha_{uuid.uuid4().hex[:6]}"
SITE = "3f1c2a4e-8b7d-4c21-9a6e-0d5b7f3e2a11"
CAPTCHA_SCHEMA = [
    {"name": "time", "type": "DateTime64(3, 'UTC')", "required": True},
    {"name": "type", "type": "LowCardinality(String)", "required": True, "allowed_values": ["serve", "solve"]},
    {"name": "correlation_id", "type": "UUID", "required": True},
    {"name": "site_id", "type": "UUID", "required": True},
]
BODY_LIMIT = 4_000_000
DUMP = Path(__file__).parent / "fixtures" / "pg_dump_shop.sql"


def event(kind: str = "serve", **overrides) -> dict:
    base = {"time": datetime.now(UTC).isoformat(), "type": kind, "correlation_id": str(uuid.uuid4()),
            "site_id": SITE}
    base.update(overrides)
    return base


@pytest.fixture(scope="module")
def stream(aws_conn):
    client = aws_conn.client("kinesis")
    client.create_stream(StreamName=STREAM, ShardCount=1)
    client.put_records(StreamName=STREAM, Records=[{"Data": json.dumps(event()).encode(), "PartitionKey": str(i)}
                                                   for i in range(5)])
    yield STREAM
    client.delete_stream(StreamName=STREAM)


@pytest.fixture(scope="module")
def server(moto_server, stream):
    with api_server(moto_server, demo=True, env={"HELIOS_API_MAX_BODY": str(BODY_LIMIT)}) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server):
    with server.client("write") as client:
        yield client


@pytest.fixture(scope="module")
def reader(server):
    with server.client("read") as client:
        yield client


@pytest.fixture(scope="module")
def source(api, stream):
    response = api.post("/api/create-table", json={"streamName": stream, "tableName": "captcha",
                                                    "databaseName": "im", "schema": CAPTCHA_SCHEMA,
                                                    "orderBy": ["site_id", "time"]})
    assert response.status_code == 200, response.text
    return response.json()


def count(api, sql: str) -> int:
    response = api.post("/api/query", json={"query": sql})
    assert response.status_code == 200, response.text
    return int(response.json()["data"][0]["n"])


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"] and "hint" in body
    assert "Traceback" not in response.text
    return body


# ---- health, docs, tokens -----------------------------------------------------------------------------


def test_healthz_needs_no_token_and_docs_are_served(server):
    with server.client(None) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/docs").status_code == 200
        paths = anonymous.get("/openapi.json").json()["paths"]
    for path in ("/api/databases", "/api/query", "/api/authenticate", "/api/kinesis-sample", "/api/create-table",
                 "/api/sources", "/api/event", "/api/report", "/api/report/filter", "/api/chats",
                 "/api/chats/{chat_id}", "/api/chats/{chat_id}/credentials", "/api/chats/{chat_id}/replication-file",
                 "/create_job", "/register_data_owner", "/submit_job", "/get_status", "/healthz"):
        assert path in paths


def test_missing_wrong_and_revoked_tokens_get_401(server):
    with server.client(None) as anonymous:
        body = assert_error(anonymous.get("/api/databases"), 401)
        assert "tokens create" in body["hint"]
        assert anonymous.get("/api/databases").headers["www-authenticate"] == "Bearer"
    with server.client(None, headers={"Authorization": "Bearer helios_wrong"}) as wrong:
        assert_error(wrong.get("/api/databases"), 401)
    with server.client("revoked") as revoked:
        assert_error(revoked.get("/api/databases"), 401)


def test_read_only_token_reads_but_cannot_write(reader, source):
    assert reader.get("/api/databases").status_code == 200
    assert_error(reader.post("/api/event", json=event()), 403)
    assert_error(reader.post("/api/query", json={"query": "SELECT 1", "write": True}), 403)
    assert_error(reader.post("/api/chats", json={"database": "demo"}), 403)
    assert_error(reader.post("/create_job", json={}), 403)


def test_tokens_cli_create_list_revoke(capsys, ch):
    from helios_core.cli import main
    assert main(["tokens", "create", "--name", "cli_api_test", "--write"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["token"].startswith("helios_") and created["write"] is True
    assert main(["tokens", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t for t in listed if t["name"] == "cli_api_test"] and "token" not in json.dumps(listed)
    rows = ch.internal_query("SELECT token_hash FROM helios.api_tokens FINAL WHERE name = 'cli_api_test'")
    assert rows and created["token"] not in rows[0]["token_hash"]  # only the hash is stored
    assert main(["tokens", "revoke", "cli_api_test"]) == 0
    capsys.readouterr()
    assert main(["tokens", "revoke", "cli_api_test"]) == 4  # not found any more
    capsys.readouterr()


# ---- Helios backend -----------------------------------------------------------------------------------


def test_databases_shape(api):
    body = api.get("/api/databases").json()
    assert isinstance(body, dict) and "demo" in body
    assert body["demo"] == ["captcha_events", "purchase_events", "user_activity", "users"]
    assert all(isinstance(tables, list) for tables in body.values())


def test_query_shape_and_write_guard(api):
    body = api.post("/api/query", json={"query": "SELECT count() AS count FROM demo.users"}).json()
    assert body["metadata"]["query"] == "SELECT count() AS count FROM demo.users"
    assert body["metadata"]["row_count"] == 1
    assert body["metadata"]["column_names"] == ["count"] and body["metadata"]["column_types"] == ["UInt64"]
    assert body["data"] == [{"count": 2000}]
    ddl = "CREATE TABLE default.api_written (a UInt8) ENGINE = Memory"
    refused = api.post("/api/query", json={"query": ddl})  # a write token still asks for write
    assert refused.status_code in (400, 403) and refused.json()["error"]
    assert api.post("/api/query", json={"query": ddl, "write": True}).status_code == 200
    assert "api_written" in api.get("/api/databases").json()["default"]
    assert_error(api.post("/api/query", json={"query": "SELECT nope FROM demo.users"}), 400)


def test_authenticate_lists_streams_and_keeps_no_keys(api, stream, server):
    body = api.post("/api/authenticate", json={"accessKey": "AKIAAPITESTKEY000001", "secretKey": "s3cr3t-api"}).json()
    assert body["authenticated"] is True and stream in body["streamNames"]
    assert "s3cr3t-api" not in json.dumps(body)
    assert_error(api.post("/api/authenticate", json={"accessKey": "AKIAAPITESTKEY000001"}), 400)
    dump = api.post("/api/query", json={"query": "SELECT * FROM helios.sources"}).text
    assert "s3cr3t-api" not in dump and "s3cr3t-api" not in server.log.read_text()


def test_kinesis_sample_shape(api, stream):
    body = api.post("/api/kinesis-sample", json={"streamName": stream, "n": 5}).json()
    assert set(body["sampleEvent"]) == {"time", "type", "correlation_id", "site_id"}
    schema = {c["name"]: c["type"] for c in body["inferredSchema"]}
    assert set(schema) == {"time", "type", "correlation_id", "site_id"} and "UUID" in schema["site_id"]
    assert_error(api.post("/api/kinesis-sample", json={"streamName": "no_such_stream_api"}), 404)


def test_create_table_shape_and_conflict(api, source, stream):
    assert source["success"] is True
    assert source["createTableQuery"].startswith("CREATE TABLE `im`.`captcha`")
    assert isinstance(source["message"], str) and source["message"]
    assert uuid.UUID(source["tableUUID"])
    assert source["streamARN"].startswith("arn:aws:kinesis:") and source["streamARN"].endswith(f"/{stream}")
    again = api.post("/api/create-table", json={"streamName": stream, "tableName": "captcha", "databaseName": "im",
                                                "schema": CAPTCHA_SCHEMA})
    assert again.status_code in (400, 409), again.text
    body = assert_error(api.post("/api/create-table", json={"streamName": stream}), 400)
    assert set(body["missing_fields"]) == {"tableName", "databaseName", "schema"}


def test_create_table_accepts_the_seeds_own_request(api, stream):
    """The seed's example request, unchanged but for the database ("default" is reserved in Helios)."""
    seed = {"streamName": stream, "tableName": "user_events", "databaseName": "analytics",
            "schema": [{"name": "user_id", "type": "String"}, {"name": "event_type", "type": "String"},
                       {"name": "timestamp", "type": "DateTime"}]}
    response = api.post("/api/create-table", json=seed)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and "ORDER BY (`timestamp`)" in body["createTableQuery"]


def test_sources_shape(api, source, stream):
    body = api.get("/api/sources").json()
    mine = [s for s in body if s["tableName"] == "captcha"]
    assert len(mine) == 1
    item = mine[0]
    assert item["streamName"] == stream and item["streamType"] == "kinesis"
    assert re.fullmatch(r"\d\d-\d\d-\d{4}", item["createdOn"])
    assert item["id"] == source["sourceId"]


# ---- IM-challenge: events and reports ------------------------------------------------------------------


def test_event_single_array_and_json_lines(api, source):
    where = "SELECT count() AS n FROM im.captcha WHERE correlation_id = '{}'"
    one = event()
    body = api.post("/api/event", json=one, params={"source": source["sourceId"]}).json()
    assert body["inserted"] == 1 and body["quarantined"] == 0 and body["rejected"] == []
    assert count(api, where.format(one["correlation_id"])) == 1

    good, bad = event(), event(kind="click")
    body = api.post("/api/event", json=[good, bad], params={"source": "im.captcha"}).json()
    assert body["received"] == 2 and body["inserted"] == 1 and body["quarantined"] == 1
    assert body["rejected"][0]["index"] == 1 and body["rejected"][0]["error_type"] == "not_allowed"
    assert body["rejected"][0]["column"] == "type"

    lines = [json.dumps(event()), "{not json", json.dumps(event(site_id="not-a-uuid"))]
    response = api.post("/api/event", content="\n".join(lines).encode(), params={"source": source["sourceId"]},
                        headers={"Content-Type": "application/x-ndjson"})
    body = response.json()
    assert response.status_code == 200 and body["inserted"] == 1
    assert [(r["index"], r["error_type"]) for r in body["rejected"]] == [(1, "decode_error"), (2, "type_mismatch")]
    quarantined = count(api, "SELECT count() AS n FROM im.captcha_quarantine")
    assert quarantined >= 3


def test_event_all_invalid_is_422_and_quarantined(api, source):
    missing = {"time": "2024-05-01T00:00:00Z", "type": "serve", "site_id": SITE}  # no correlation_id
    before = count(api, "SELECT count() AS n FROM im.captcha_quarantine")
    body = assert_error(api.post("/api/event", json=missing, params={"source": source["sourceId"]}), 422)
    assert body["rejected"][0]["error_type"] == "missing_required"
    assert "correlation_id" in body["rejected"][0]["reason"]
    assert count(api, "SELECT count() AS n FROM im.captcha_quarantine") == before + 1
    body = assert_error(api.post("/api/event", json={**missing, "correlation_id": str(uuid.uuid4()),
                                                     "time": "yesterday"}, params={"source": source["sourceId"]}), 422)
    assert body["rejected"][0]["column"] == "time"


def test_retried_batch_with_one_idempotency_key_lands_once(api, source):
    marker = str(uuid.uuid4())
    batch = [event(site_id=marker) for _ in range(20)] + [event(kind="nope", site_id=marker)]
    headers = {"Idempotency-Key": f"retry-{marker}"}
    answers = [api.post("/api/event", json=batch, params={"source": source["sourceId"]}, headers=headers).json()
               for _ in range(3)]
    assert all(a["inserted"] == 20 and a["quarantined"] == 1 for a in answers)
    assert count(api, f"SELECT count() AS n FROM im.captcha WHERE site_id = '{marker}'") == 20
    assert count(api, f"SELECT count() AS n FROM im.captcha_quarantine WHERE position(raw, '{marker}') > 0") == 1
    # Without a key every request is new (the events are the same objects, sent twice).
    plain = [event(site_id=marker)]
    for _ in range(2):
        api.post("/api/event", json=plain, params={"source": source["sourceId"]})
    assert count(api, f"SELECT count() AS n FROM im.captcha WHERE site_id = '{marker}'") == 22


def test_concurrent_producers_all_land(server, source):
    from concurrent.futures import ThreadPoolExecutor

    marker = str(uuid.uuid4())

    def produce(worker: int) -> list[int]:
        with server.client("write") as client:
            return [client.post("/api/event", json=[event(site_id=marker) for _ in range(25)],
                                params={"source": source["sourceId"]},
                                headers={"Idempotency-Key": f"{marker}-{worker}-{n}"}).json()["inserted"]
                    for n in range(3)]

    with ThreadPoolExecutor(4) as pool:
        inserted = [n for batch in pool.map(produce, range(4)) for n in batch]
    assert inserted == [25] * 12
    with server.client("read") as client:
        assert count(client, f"SELECT count() AS n FROM im.captcha WHERE site_id = '{marker}'") == 300


def test_event_in_path_like_the_seed(api, source):
    one = event()
    response = api.post(f"/api/event/{json.dumps(one)}", params={"source": source["sourceId"]})
    assert response.status_code == 200 and response.json()["inserted"] == 1


def test_report_preset_saved_and_filtered(api, server):
    body = api.get("/api/report").json()
    assert body["metadata"]["column_names"] == ["bucket", "site_id", "serves", "solves", "solve_rate",
                                                "median_seconds_to_solve"]
    assert body["data"] and body["metadata"]["row_count"] == len(body["data"])
    saved = api.get("/api/report", params={"report": server.extra["report_id"]}).json()
    assert saved["definition"]["name"] == "Daily captcha"
    assert api.get("/api/report", params={"report": "Daily captcha"}).json()["data"] == saved["data"]
    filtered = api.get("/api/report/filter", params={"site_id": SITE}).json()
    assert filtered["data"] and {row["site_id"] for row in filtered["data"]} == {SITE}
    assert SITE in filtered["parameters"].values() and SITE not in json.dumps(filtered["metadata"]["query"])
    seed_form = api.get(f"/api/report/site_id='{SITE}'").json()
    assert seed_form["data"] == filtered["data"]
    body = assert_error(api.get("/api/report/filter", params={"site_id": "12345"}), 400)
    assert "UUID" in body["error"]
    assert_error(api.get("/api/report/filter", params={"nope": "1"}), 400)
    assert_error(api.get("/api/report", params={"report": "no such report"}), 404)


# ---- DB chat ---------------------------------------------------------------------------------------------


def test_chats_create_list_history_and_masked_credentials(api):
    payload = {"chat_name": "Users DB Chat", "host_name": "localhost", "port": "5432", "user": "postgres",
               "password": "hunter2-api", "database": "demo", "dbms": "clickhouse", "environment": "local"}
    chat = api.post("/api/chats", json=payload).json()
    assert chat["chat_name"] == "Users DB Chat" and chat["database"] == "demo" and chat["chat_id"]
    assert "hunter2-api" not in json.dumps(chat)
    listed = api.get("/api/chats").json()
    mine = [c for c in listed if c["chat_id"] == chat["chat_id"]]
    assert mine and set(mine[0]) >= {"chat_id", "chat_name", "database", "dbms", "environment", "host_name",
                                     "port", "user", "password"}
    assert "hunter2-api" not in json.dumps(listed)
    creds = api.get(f"/api/chats/{chat['chat_id']}/credentials").json()
    assert creds["chat_id"] == chat["chat_id"] and creds["password"] in ("", "********")

    answer = api.post(f"/api/chats/{chat['chat_id']}", json={"role": "user", "content": "how many users",
                                                             "content_type": "text"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["answer"] and body["sql"].upper().startswith("SELECT") and body["chat_id"] == chat["chat_id"]
    history = api.get(f"/api/chats/{chat['chat_id']}").json()["chat_history"]
    assert history[0] == {**history[0], "role": "user", "content": "how many users", "content_type": "text"}
    kinds = [m["content_type"] for m in history]
    assert {"text", "table", "query"} <= set(kinds) and set(kinds) <= {"text", "table", "query", "image"}
    table = next(m for m in history if m["content_type"] == "table")
    assert isinstance(table["content"], list) and isinstance(table["content"][0], dict)
    assert all(m["role"] in ("user", "assistant") for m in history)
    assert_error(api.get("/api/chats/nochat000000"), 404)
    assert_error(api.get("/api/chats/nochat000000/credentials"), 404)
    assert_error(api.post(f"/api/chats/{chat['chat_id']}", json={"role": "user", "content": "x",
                                                                 "content_type": "image"}), 422)


def test_replication_file_loads_a_pg_dump(api):
    chat = api.post("/api/chats", json={"chat_name": "Shop", "database": "api_shop"}).json()
    with DUMP.open("rb") as fh:
        response = api.post(f"/api/chats/{chat['chat_id']}/replication-file",
                            files={"file": ("replica.sql", fh, "application/sql")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["database"] == "api_shop" and body["inserted"] > 0 and body["tables"]
    assert api.get("/api/databases").json()["api_shop"]
    with DUMP.open("rb") as fh:  # the database exists now: loading again needs replace
        again = api.post(f"/api/chats/{chat['chat_id']}/replication-file", files={"file": ("r.sql", fh)})
    assert 400 <= again.status_code < 500 and again.json()["error"]


# ---- QueryShield: import jobs ------------------------------------------------------------------------------


def test_job_lifecycle_and_error_codes(api):
    api.post("/api/query", json={"query": "CREATE DATABASE api_jobs", "write": True})
    # Table SETTINGS are refused from user SQL (a custom disk could write anywhere): a plain table.
    api.post("/api/query", json={"query": "CREATE TABLE api_jobs.target (id UInt32, name String) "
                                          "ENGINE = MergeTree ORDER BY id", "write": True})
    body = assert_error(api.post("/create_job", json={"name": "x"}), 400)
    assert body["error"] == "missing necessary fields" and "format" in body["missing_fields"]
    job = api.post("/create_job", json={"name": "API job", "format": "csv", "target": "existing",
                                        "database": "api_jobs", "table": "target"})
    assert job.status_code == 200, job.text
    job_id = job.json()["job_id"]
    assert uuid.UUID(job_id)
    assert_error(api.get("/get_status", params={"job_id": job_id}), 409)  # not submitted yet
    owner = api.post("/register_data_owner", json={"job_id": job_id, "data_owner": "alice"}).json()
    assert owner["job_id"] == job_id and len(owner["presigned_urls"]) == 1
    import httpx
    put = httpx.put(owner["presigned_urls"][0], content=b"id,name\n1,a\n2,b\nx,c\n", timeout=30)
    assert put.status_code == 200
    assert api.post("/submit_job", json={"job_id": job_id}).json() == {"status": "success", "job_id": job_id}
    status = wait_until(lambda: (s := api.get("/get_status", params={"job_id": job_id}).json())["status"]
                        in ("Success", "Fail") and s, message="the job finishes")
    assert status == {**status, "status": "Success", "job_id": job_id, "inserted": 2, "quarantined": 1}
    assert_error(api.post("/submit_job", json={"job_id": job_id}), 409)
    assert_error(api.post("/register_data_owner", json={"job_id": job_id, "data_owner": "bob"}), 409)
    missing = str(uuid.uuid4())
    body = assert_error(api.post("/register_data_owner", json={"job_id": missing, "data_owner": "bob"}), 404)
    assert body["job_id"] == missing
    assert_error(api.post("/submit_job", json={"job_id": missing}), 404)
    assert_error(api.get("/get_status", params={"job_id": missing}), 404)


def test_workers_send_their_counters_for_workers_sources_only(server, api, reader, source, stream):
    """``POST /api/ingest/metrics`` through the workers' own client: the samples land stamped and tagged, and
    only a write token may send them, for sources ingested by workers."""
    from helios_core.ingest.remote import RemoteClickHouse, RemoteInsertError

    made = api.post("/api/create-table", json={"streamName": stream, "tableName": f"w_{uuid.uuid4().hex[:6]}",
                                                "databaseName": "im", "schema": CAPTCHA_SCHEMA, "mode": "workers",
                                                "orderBy": ["site_id", "time"]})
    assert made.status_code == 200, made.text
    workers_id = made.json()["sourceId"]
    try:  # deleted at the end: workers of other tests read the same mapping table (helios-sources)
        sample = {"ts": datetime.now(UTC), "source_id": workers_id, "rows_inserted": 41, "rows_quarantined": 2,
                  "batches": 3, "errors": 0, "millis_behind": 1500, "last_insert": datetime.now(UTC),
                  "last_error": "", "records_read": 43}
        client = RemoteClickHouse(server.url, server.tokens["write"])
        client.insert_metrics([{**sample, "worker_id": "api-w1"},
                               {**sample, "worker_id": "api-w2", "rows_inserted": 1}])
        rows = api.post("/api/query", json={"query": "SELECT worker_id, rows_inserted, records_read, millis_behind "
                                                     "FROM helios.ingest_metrics WHERE source_id = "
                                                     f"'{workers_id}' ORDER BY worker_id"})
        assert rows.status_code == 200, rows.text
        assert [(r["worker_id"], int(r["rows_inserted"]), int(r["records_read"])) for r in rows.json()["data"]] == \
            [("api-w1", 41, 43), ("api-w2", 1, 43)]

        with pytest.raises(RemoteInsertError, match="not sources ingested by headless workers"):
            client.insert_metrics([{**sample, "worker_id": "api-w1", "source_id": source["sourceId"]}])  # an app source
        with pytest.raises(RemoteInsertError):
            RemoteClickHouse(server.url, server.tokens["read"]).insert_metrics([{**sample, "worker_id": "api-w1"}])
        body = {"samples": [{"worker_id": "api-w1", "source_id": workers_id, "rows_inserted": -1}]}
        assert "rows_inserted" in assert_error(api.post("/api/ingest/metrics", json=body), 422)["error"]
        assert_error(reader.post("/api/ingest/metrics", json=body), 403)
        assert count(api, f"SELECT count() AS n FROM helios.ingest_metrics WHERE source_id = '{workers_id}'") == 2
    finally:
        deleted = api.post(f"/api/sources/{workers_id}/delete", json={"dropTable": True})
        assert deleted.status_code == 200, deleted.text


def test_body_limit_and_server_survives(server, api):
    assert_error(api.post("/api/event", content=b"[" + b" " * (BODY_LIMIT + 10) + b"]",
                          headers={"Content-Type": "application/json"}), 413)
    assert api.get("/healthz").status_code == 200 and server.alive()


def test_unexpected_events_never_show_a_traceback(server):
    assert "Traceback" not in server.log.read_text()


# ---- inside the app: the runtime's API thread and the settings page -------------------------------------


def test_runtime_serves_the_api_from_its_own_process(ch):
    """HELIOS_API_PORT in the app: the same API from the app's runtime (a thread, once per process)."""
    import httpx
    from api_server import free_port

    from helios_core.runtime import get_runtime
    from helios_core.tokens import create_token, revoke_token

    runtime = get_runtime()
    port = free_port()
    try:
        server = runtime.start_api(port=port)
        assert runtime.start_api(port=port) is server  # once per process
        token = create_token(ch, "runtime_api_test").token
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert "helios" in client.get("/api/databases").json()
            assert client.post("/api/event", json={"a": 1}).status_code == 403
        revoke_token(ch, "runtime_api_test")
    finally:
        api = runtime.services.pop("api", None)
        if api is not None:
            api.stop()
    assert not api.thread.is_alive()


def test_settings_page_creates_shows_once_and_revokes(open_page, ch):
    from helios_core.tokens import list_tokens, verify_token
    at = open_page("pages/settings.py")
    at.text_input[0].input("page_token")
    at.checkbox[0].check()
    at.button[0].click().run()
    assert not at.exception
    shown = [c.value for c in at.code if c.value.startswith("helios_")]
    assert len(shown) == 1 and verify_token(ch, shown[0]).write is True
    record = next(t for t in list_tokens(ch) if t.name == "page_token")
    at.run()
    assert not [c for c in at.code if c.value.startswith("helios_")]  # shown once
    at.button(key=f"api_token_revoke_{record.id}").click().run()
    assert not at.exception
    assert all(t.name != "page_token" for t in list_tokens(ch))


def test_runtime_api_on_a_busy_port_says_so(ch):
    import socket

    from helios_core.errors import ConfigError
    from helios_core.runtime import get_runtime

    runtime = get_runtime()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ConfigError, match="could not listen"):
            runtime.start_api(port=busy.getsockname()[1])
    assert "api" not in runtime.services  # not kept: the next start tries again


# ---- QueryShield: an analysis job over several data owners' uploads, end to end over HTTP --------------------


def test_analysis_job_flow_over_http(api):
    """The seed's four endpoints (plus the result) for an analysis: three owners upload through their presigned
    links, the job runs, and only aggregates of groups with enough owners come back (issue 12)."""
    import httpx
    from test_analysis import OWNER_ROWS, QUERY, SCHEMA, csv_bytes

    spec = {"analysis_name": "Traffic", "query_sql": QUERY, "security_level": "semi", "cloud_providers": ["aws"],
            "schema": SCHEMA}
    missing = assert_error(api.post("/create_job", json={"analysis_name": "x"}), 400)
    assert {"query_sql", "security_level"} <= set(missing["missing_fields"])
    refused = assert_error(api.post("/create_job", json={**spec, "query_sql": "SELECT * FROM traffic"}), 400)
    assert "rule" in refused or refused["error"]
    job_id = api.post("/create_job", json=spec).json()["job_id"]
    assert_error(api.get("/get_result", params={"job_id": job_id}), 409)   # nothing released yet
    for owner, rows in OWNER_ROWS.items():
        grant = api.post("/register_data_owner", json={"job_id": job_id, "data_owner": owner}).json()
        assert grant["job_id"] == job_id and len(grant["presigned_urls"]) == 1
        assert httpx.put(grant["presigned_urls"][0], content=csv_bytes(rows), timeout=60).status_code == 200
    assert api.post("/submit_job", json={"job_id": job_id}).json()["status"] == "success"

    def finished() -> dict | None:
        status = api.get("/get_status", params={"job_id": job_id}).json()
        return status if status["status"] in ("Success", "Fail") else None

    status = wait_until(finished, message="the analysis job ends")
    assert status["status"] == "Success", status
    result = api.get("/get_result", params={"job_id": job_id}).json()
    assert [r[:2] for r in result["rows"]] == [["A", 8], ["B", 5]]   # C has one owner: withheld
    assert result["suppressed_groups"] == 1
    assert_error(api.get("/get_result", params={"job_id": "00000000-0000-0000-0000-000000000000"}), 404)
