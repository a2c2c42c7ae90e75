"""Pause, resume, delete and new rules through helios_core.ingest.control, for every ingest mode.

Workers run as threads of this process (moto's Kinesis and DynamoDB, the session's embedded engine); Lambda
resources live in moto, which creates functions and event source mappings without running them, so the
checks there are the mapping's State, the mapping item and what was deleted.
"""

from __future__ import annotations

import json
import uuid

import pytest
from helpers import wait_until

from helios_core import serverless, sources
from helios_core.errors import AwsError, Forbidden, ValidationError
from helios_core.ingest import control
from helios_core.ingest.consumer import IngestConfig
from helios_core.ingest.leases import LeaseTable
from helios_core.ingest.mapping import MappingStore
from helios_core.ingest.worker import Worker, WorkerConfig
from helios_core.users import User
from tests.test_ingest_workers import landed, make_source, put


def item(mappings: MappingStore, source: sources.Source) -> dict | None:
    return mappings.table.get_item(Key={"stream_arn": source.stream_arn, "source_id": source.id},
                                   ConsistentRead=True).get("Item")


def allowed(definition_item: dict, column: str) -> list[str]:
    columns = json.loads(definition_item["definition"])["columns"]
    return next(c["allowed_values"] for c in columns if c["name"] == column)


def test_workers_stop_and_start_with_pause_and_resume_and_take_new_rules(ch, aws_conn, dynamodb, mappings,
                                                                       kinesis_stream):
    paused_stream, other_stream = kinesis_stream(shards=2), kinesis_stream(shards=1)
    source = make_source(ch, aws_conn, paused_stream, "workers", mappings)
    other = make_source(ch, aws_conn, other_stream, "workers", mappings)  # keeps running: the worker's clock
    leases = LeaseTable(dynamodb, f"helios-leases-{uuid.uuid4().hex[:6]}")
    config = WorkerConfig(lease_timeout=3.0, sync_seconds=0.5,
                          ingest=IngestConfig(batch_rows=50, flush_seconds=0.2, idle_sleep=0.02, max_backoff=0.5))
    worker = Worker("w0", lambda: aws_conn.client("kinesis"), ch.new_client, mappings, leases, config).start()
    try:
        first = put(aws_conn, paused_stream, 40, seed=51)
        wait_until(lambda: len(landed(ch, source)) >= len(first), message="events before the pause")

        paused = control.pause(ch, source.id, aws=aws_conn)
        assert paused.status == "paused" and sources.get_source(ch, source.id).status == "paused"
        assert item(mappings, source)["status"] == "paused"
        wait_until(lambda: not any(k.startswith(f"{source.id}:") for k in worker.coordinator.held_keys())
                   and source.id not in worker.consumers, message="the worker lets go of the paused source")
        def other_renewals() -> int:
            return sum(lease.counter for lease in leases.all() if lease.source_id == other.id)

        ticks = other_renewals()
        during = put(aws_conn, paused_stream, 30, seed=52)
        clock = put(aws_conn, other_stream, 10, seed=53)
        wait_until(lambda: len(landed(ch, other)) >= len(clock) and other_renewals() >= ticks + 2,
                   message="the running source goes on, its leases renewed twice more")
        # The worker synced and ticked since: had it claimed the paused source's shards, its events would be in.
        assert len(landed(ch, source)) == len(first)
        assert all(not lease.owner for lease in leases.all() if lease.source_id == source.id)

        control.resume(ch, source.id, aws=aws_conn)
        assert item(mappings, source)["status"] == "running"
        wait_until(lambda: len(landed(ch, source)) >= len(first) + len(during),
                   message="the resumed source reads what waited")

        changed = control.update_rules(ch, source.id, {"event_type": {"allowed_values": "click, view"}},
                                       aws=aws_conn)
        assert [c.allowed_values for c in changed.columns if c.name == "event_type"] == [["click", "view"]]
        assert allowed(item(mappings, source), "event_type") == ["click", "view"]
        wait_until(lambda: worker.consumers.get(source.id) is not None and
                   [c.allowed_values for c in worker.consumers[source.id].source.columns
                    if c.name == "event_type"] == [["click", "view"]],
                   message="the worker's consumer restarted with the new rules")

        control.delete(ch, source.id, drop_table=True, aws=aws_conn, lease_table=leases.name)
        assert item(mappings, source) is None
        wait_until(lambda: source.id not in worker.consumers, message="the worker drops the deleted source")
        wait_until(lambda: not [lease for lease in leases.all() if lease.source_id == source.id],
                   message="no leases of the deleted source left behind (a round that still saw it is cleaned up)")
        assert [lease for lease in leases.all() if lease.source_id == other.id]
    finally:
        worker.stop()
        for s in (source, other):
            try:
                control.delete(ch, s.id, drop_table=True, aws=aws_conn)
            except Exception:
                pass


def test_lambda_pause_disables_the_event_source_mapping_and_delete_removes_the_deployment(ch, aws_conn,
                                                                                         mappings, kinesis_stream):
    stream = kinesis_stream(shards=1)
    source = make_source(ch, aws_conn, stream, "lambda")
    options = serverless.LambdaOptions(mapping_table=mappings.table_name)
    done = serverless.deploy(aws_conn, source, "https://writer:pw@clickhouse.example.com:8443", options,
                             code=serverless.package_bytes(with_requirements=False))
    lam = aws_conn.client("lambda")
    assert lam.get_event_source_mapping(UUID=done.mapping_uuid)["State"] == "Enabled"

    control.pause(ch, source.id, aws=aws_conn)
    esm = lam.get_event_source_mapping(UUID=done.mapping_uuid)
    assert esm["State"] == "Disabled"
    assert item(mappings, source)["status"] == "paused" and mappings.sources_for(source.stream_arn) == []
    assert serverless.status(aws_conn, source).state == "Disabled"
    again = serverless.deploy(aws_conn, sources.get_source(ch, source.id), "https://writer:pw@clickhouse.example.com:8443",
                              options, code=b"zip")
    assert again.mapping_uuid == done.mapping_uuid and lam.get_event_source_mapping(UUID=done.mapping_uuid)[
        "State"] == "Disabled", "deploying a paused source again leaves it paused"

    control.resume(ch, source.id, aws=aws_conn)
    assert lam.get_event_source_mapping(UUID=done.mapping_uuid)["State"] == "Enabled"
    assert [s.id for s in mappings.sources_for(source.stream_arn)] == [source.id]
    assert sources.get_source(ch, source.id).status == "running"

    control.update_rules(ch, source.id, {"event_type": {"allowed_values": ["click"]}}, aws=aws_conn)
    assert allowed(item(mappings, source), "event_type") == ["click"]  # the function reads the table it was given

    control.delete(ch, source.id, drop_table=True, aws=aws_conn)
    assert item(mappings, source) is None
    assert serverless.status(aws_conn, source).state == "Not deployed"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=done.names["function"])
    secrets = aws_conn.client("secretsmanager")
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.describe_secret(SecretId=done.secret_arn)
    with pytest.raises(aws_conn.client("iam").exceptions.NoSuchEntityException):
        aws_conn.client("iam").get_role(RoleName=done.names["role"])


def test_a_keys_source_without_keys_says_to_sign_in_and_nothing_changes(ch, aws_conn, mappings, kinesis_stream):
    from helios_core.aws import AwsConnection

    source = make_source(ch, aws_conn, kinesis_stream(shards=1), "workers", mappings)
    try:
        with pytest.raises(AwsError) as missing:
            control.pause(ch, source.id)  # a page session with no sign-in
        assert "keys" in missing.value.message and "Connect" in missing.value.hint
        elsewhere = AwsConnection(region="us-west-2", access_key_id="AKIAOTHER", secret_access_key="x")
        with pytest.raises(ValidationError, match="us-west-2"):
            control.pause(ch, source.id, aws=elsewhere)
        assert sources.get_source(ch, source.id).status == "running"
        assert item(mappings, source)["status"] == "running"
    finally:
        control.delete(ch, source.id, drop_table=True, aws=aws_conn)


def test_app_sources_change_the_record_and_others_may_not(ch, aws_conn, kinesis_stream):
    source = make_source(ch, aws_conn, kinesis_stream(shards=1), "app")
    bob = User("bob@example.com")
    try:
        assert control.pause(ch, source.id).status == "paused"
        for change in (lambda: control.resume(ch, source.id, bob), lambda: control.pause(ch, source.id, bob),
                       lambda: control.update_rules(ch, source.id, {"event_type": {"required": False}}, bob),
                       lambda: control.delete(ch, source.id, user=bob)):
            with pytest.raises(Forbidden):
                change()
        rows = [{"column": "event_type", "required": True, "allowed_values": " click,view ,", "format": "",
                 "default": float("nan")}]  # as the page's table gives them
        changed = control.update_rules(ch, source.id, sources.rules_from_rows(rows))
        column = next(c for c in changed.columns if c.name == "event_type")
        assert column.allowed_values == ["click", "view"] and column.default is None and column.required
        with pytest.raises(ValidationError, match="no column"):
            control.update_rules(ch, source.id, {"nope": {"required": True}})
    finally:
        control.delete(ch, source.id, drop_table=True)
    with pytest.raises(Exception, match="no source"):
        sources.get_source(ch, source.id)


def test_the_api_pauses_resumes_changes_rules_and_deletes(ch, aws_conn, kinesis_stream):
    from fastapi.testclient import TestClient

    from helios_core.api import create_app
    from helios_core.tokens import create_token

    source = make_source(ch, aws_conn, kinesis_stream(shards=1), "app")
    sources.pause_source(ch, source.id)
    token = create_token(ch, f"src_{uuid.uuid4().hex[:6]}", write=True).token
    reader = create_token(ch, f"src_r_{uuid.uuid4().hex[:6]}").token
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(create_app()) as client:
            base = f"/api/sources/{source.id}"
            assert client.post(f"{base}/pause", headers={"Authorization": f"Bearer {reader}"}).status_code == 403
            assert client.post(f"{base}/pause", headers=auth).json()["status"] == "paused"
            rules = client.post(f"{base}/rules", json={"rules": {"event_type": {"allowed_values": "a, b"}}},
                                headers=auth)
            assert rules.status_code == 200, rules.text
            assert [c.allowed_values for c in sources.get_source(ch, source.id).columns
                    if c.name == "event_type"] == [["a", "b"]]
            bad = client.post(f"{base}/rules", json={"rules": {"nope": {"required": True}}}, headers=auth)
            assert bad.status_code == 400 and "no column" in bad.json()["error"]
            assert client.post("/api/sources/nothere/pause", headers=auth).status_code == 404
            deleted = client.post(f"{base}/delete", json={"dropTable": True}, headers=auth).json()
            assert deleted == {"deleted": source.id, "droppedTable": True}
    finally:
        try:
            control.delete(ch, source.id, drop_table=True)
        except Exception:
            pass
