"""``python -m helios_core``: JSON out, one-line errors, exit codes.

In-process calls share the test session's embedded engine (one process per data dir).
"""

from __future__ import annotations

import json

from helios_core.cli import EXIT_CONFLICT, EXIT_INVALID, EXIT_NOT_FOUND, exit_code_for, main
from helios_core.errors import Conflict, NotFound, ValidationError


def run(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def test_databases_prints_the_seed_shape(capsys, demo):
    code, payload, _ = run(capsys, "databases")
    assert code == 0 and payload["demo"] == ["captcha_events", "purchase_events", "user_activity", "users"]


def test_query_prints_metadata_and_rows(capsys, demo):
    code, payload, _ = run(capsys, "query", "SELECT count() AS count FROM demo.users WHERE plan = 'pro'")
    assert code == 0
    assert payload["metadata"]["column_names"] == ["count"] and payload["metadata"]["column_types"] == ["UInt64"]
    assert payload["metadata"]["row_count"] == 1 and payload["data"][0]["count"] > 0


def test_query_limit_and_write_flag(capsys, demo):
    code, payload, _ = run(capsys, "query", "SELECT number FROM numbers(50)", "--limit", "10")
    assert code == 0 and payload["metadata"]["row_count"] == 10 and payload["metadata"]["truncated"]
    code, payload, err = run(capsys, "query", "CREATE TABLE default.cli_t (a UInt8) ENGINE = Memory")
    # refused by the statement gate before it runs: invalid input (exit 3), with the way out in the hint
    assert code == 3 and "Read-only" in payload["error"] and "--write" in payload["hint"]
    assert err.count("\n") == 1 and err.startswith("error:")
    code, _, _ = run(capsys, "query", "CREATE TABLE default.cli_t (a UInt8) ENGINE = Memory", "--write")
    assert code == 0
    run(capsys, "query", "DROP TABLE default.cli_t", "--write")


def test_demo_load_is_idempotent(capsys, demo):
    code, payload, _ = run(capsys, "demo", "load")
    assert code == 0 and payload["tables"]["users"] == 2000 and payload["rows"] > 10000


def test_error_classes_map_to_distinct_exit_codes():
    assert exit_code_for(ValidationError("x")) == EXIT_INVALID
    assert exit_code_for(NotFound("x")) == EXIT_NOT_FOUND
    assert exit_code_for(Conflict("x")) == EXIT_CONFLICT
    assert len({EXIT_INVALID, EXIT_NOT_FOUND, EXIT_CONFLICT, 1}) == 4


def test_source_pause_and_resume_reach_a_workers_sources_mapping_item(capsys, ch, aws_conn, moto_server,
                                                                      kinesis_stream, monkeypatch):
    import uuid

    from helios_core.ingest.control import delete
    from helios_core.ingest.mapping import MappingStore
    from tests.test_source_control import item, make_source

    mappings = MappingStore(aws_conn.session().resource("dynamodb", endpoint_url=aws_conn.endpoint_url),
                            f"helios-sources-{uuid.uuid4().hex[:6]}")
    mappings.ensure_table()
    source = make_source(ch, aws_conn, kinesis_stream(shards=1), "workers", mappings)
    where = ["--region", "eu-west-1", "--endpoint-url", moto_server]
    try:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
        code, payload, _ = run(capsys, "source", "pause", source.id, *where)
        assert code != 0 and "another session" in payload["error"] and "AWS_ACCESS_KEY_ID" in payload["hint"]
        assert item(mappings, source)["status"] == "running"

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # the same account's credentials, given to the CLI
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        code, payload, _ = run(capsys, "source", "pause", source.id, *where)
        assert code == 0 and payload["status"] == "paused" and item(mappings, source)["status"] == "paused"
        code, payload, _ = run(capsys, "source", "rules", source.id, "--rules",
                               '{"event_type": {"allowed_values": "click, view"}}', *where)
        assert code == 0 and "click" in item(mappings, source)["definition"]
        code, payload, _ = run(capsys, "source", "resume", source.id, *where)
        assert code == 0 and payload["status"] == "running" and item(mappings, source)["status"] == "running"
        code, payload, _ = run(capsys, "source", "delete", source.id, "--drop-table", *where)
        assert code == 0 and payload == {"deleted": source.id, "droppedTable": True}
        assert item(mappings, source) is None
    finally:
        try:
            delete(ch, source.id, drop_table=True, aws=aws_conn)
        except Exception:
            pass
