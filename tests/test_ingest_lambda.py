"""The AWS Lambda ingest path, driven in-process with real event-source-mapping payloads.

Records are put on a moto Kinesis stream and read back with GetRecords, then wrapped the way
Lambda's Kinesis event source mapping delivers them (base64 data, ``eventID`` =
``shardId:sequenceNumber``, ``eventSourceARN``). The mapping lives in moto's DynamoDB; rows land
in the embedded ClickHouse through the same batch/sink code as the in-app consumer.
"""

from __future__ import annotations

import base64
import uuid

import orjson
import pytest

from helios_core import sources
from helios_core.ddl import TableOptions
from helios_core.ingest.lambda_handler import HandlerEnv, group_records, process
from helios_core.ingest.mapping import MappingStore
from helios_core.sandbox import generate_events
from tests.test_ingest import activity_columns


@pytest.fixture
def lambda_stream(aws_conn, kinesis_stream):
    """``make(events, shards)`` → (stream ARN, the ESM event for every record on the stream)."""

    def make(payloads: list[tuple[bytes, str]], shards: int = 2) -> tuple[str, dict]:
        name = kinesis_stream(shards=shards)
        client = aws_conn.client("kinesis")
        for i in range(0, len(payloads), 200):
            client.put_records(StreamName=name, Records=[{"Data": d, "PartitionKey": k}
                                                         for d, k in payloads[i:i + 200]])
        arn = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
        return arn, esm_event(client, name, arn)

    return make


def esm_event(client, stream: str, arn: str) -> dict:
    records = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        reply = client.get_records(ShardIterator=iterator, Limit=10_000)
        for r in reply["Records"]:
            records.append({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r["PartitionKey"],
                            "sequenceNumber": r["SequenceNumber"], "data": base64.b64encode(r["Data"]).decode(),
                            "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp()},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": f"{shard['ShardId']}:{r['SequenceNumber']}", "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/helios-ingest", "awsRegion": "eu-west-1",
                "eventSourceARN": arn})
    return {"Records": records}


@pytest.fixture(scope="module")
def mappings(aws_conn):
    store = MappingStore(aws_conn.session().resource("dynamodb", endpoint_url=aws_conn.endpoint_url),
                         f"helios-sources-{uuid.uuid4().hex[:6]}")
    store.ensure_table()
    return store


def lambda_source(ch, mappings, arn: str, stream: str) -> sources.Source:
    req = sources.CreateRequest(
        stream_name=stream, stream_arn=arn, columns=activity_columns(),
        options=TableOptions(database="lambda_test", table=f"t_{uuid.uuid4().hex[:8]}",
                             order_by=["event_type", "timestamp"], create_database=True),
        connection=sources.Connection(region="eu-west-1"), mode="lambda")
    source = sources.get_source(ch, sources.create_table_and_source(ch, req).source_id)
    mappings.put(source)
    return source


def counts(ch, source) -> tuple[int, int]:
    db, t = source.database, source.table
    rows = ch.internal_query(f"SELECT count() AS n FROM `{db}`.`{t}`")[0]["n"]
    bad = ch.internal_query(f"SELECT count() AS n FROM `{db}`.`{t}_quarantine`")[0]["n"]
    return rows, bad


class FlakyClient:
    """The real ClickHouse client with an outage injected after ``ok_inserts`` inserts (a fault, not a fake)."""

    def __init__(self, client, ok_inserts: int) -> None:
        self.client = client
        self.ok_inserts = ok_inserts

    def _count(self) -> None:
        if self.ok_inserts <= 0:
            raise ConnectionError("ClickHouse went away (injected outage)")
        self.ok_inserts -= 1

    def insert_arrow(self, *args, **kwargs):
        self._count()
        return self.client.insert_arrow(*args, **kwargs)

    def insert(self, table, *args, **kwargs):
        if table != "ingest_checkpoints":
            self._count()
        return self.client.insert(table, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


def payloads(n: int, seed: int, bad_ratio: float = 0.0) -> tuple[list, int]:
    events = generate_events("user_activity", n, seed=seed, bad_ratio=bad_ratio)
    return [(e.payload, e.partition_key) for e in events], sum(1 for e in events if e.defect)


def test_a_batch_lands_once_and_a_retry_inserts_nothing(ch, aws_conn, mappings, lambda_stream):
    data, n_bad = payloads(300, seed=21, bad_ratio=0.1)
    arn, event = lambda_stream(data)
    source = lambda_source(ch, mappings, arn, arn.rsplit("/", 1)[1])
    env = HandlerEnv(mappings, ch.new_client)
    assert process(event, env) == {"batchItemFailures": []}
    assert counts(ch, source) == (300 - n_bad, n_bad) and n_bad > 0
    assert process(event, env) == {"batchItemFailures": []}   # Lambda re-delivers the same batch
    assert counts(ch, source) == (300 - n_bad, n_bad)


def test_the_handler_leaves_a_workers_source_on_the_same_stream_alone(ch, aws_conn, mappings, lambda_stream):
    """Two sources may read one stream; the handler writes only the lambda one (workers keep their own checkpoints)."""
    data, _ = payloads(40, seed=23)
    arn, event = lambda_stream(data, shards=1)
    mine = lambda_source(ch, mappings, arn, arn.rsplit("/", 1)[1])
    theirs = lambda_source(ch, mappings, arn, arn.rsplit("/", 1)[1])
    theirs.options["mode"] = "workers"
    mappings.put(theirs)
    assert process(event, HandlerEnv(mappings, ch.new_client)) == {"batchItemFailures": []}
    assert counts(ch, mine) == (40, 0) and counts(ch, theirs) == (0, 0)


def test_a_poison_record_goes_to_quarantine_and_never_raises(ch, aws_conn, mappings, lambda_stream):
    data, _ = payloads(50, seed=22)
    data += [(b"\xff\xfe not json", "p"), (b"", "e"), (orjson.dumps({"event_id": "nope"}), "x")]
    arn, event = lambda_stream(data, shards=1)
    event["Records"].append(dict(event["Records"][-1], kinesis=dict(event["Records"][-1]["kinesis"],
                                                                     data="%%%not-base64%%%",
                                                                     sequenceNumber="9" * 50),
                                 eventID="shardId-000000000000:" + "9" * 50))
    source = lambda_source(ch, mappings, arn, arn.rsplit("/", 1)[1])
    assert process(event, HandlerEnv(mappings, ch.new_client)) == {"batchItemFailures": []}
    rows, bad = counts(ch, source)
    assert rows == 50 and bad == 4
    reasons = ch.internal_query(f"SELECT error_type FROM `{source.database}`.`{source.table}_quarantine`")
    assert all(r["error_type"] for r in reasons)


def test_a_clickhouse_outage_mid_batch_reports_the_batch_failed_and_the_retry_completes_it(
        ch, aws_conn, mappings, lambda_stream):
    data, n_bad = payloads(240, seed=23, bad_ratio=0.1)
    arn, event = lambda_stream(data, shards=2)
    source = lambda_source(ch, mappings, arn, arn.rsplit("/", 1)[1])
    groups = group_records(event)
    # The first shard's table insert lands, then ClickHouse goes away before its quarantine rows.
    flaky = FlakyClient(ch.new_client(), ok_inserts=1)
    reply = process(event, HandlerEnv(mappings, lambda: flaky))
    failed = {f["itemIdentifier"] for f in reply["batchItemFailures"]}
    assert failed == {g.records[0].sequence_number for g in groups}, "every shard not fully stored is reported"
    # Lambda retries from the reported records; ClickHouse is back.
    assert process(event, HandlerEnv(mappings, ch.new_client)) == {"batchItemFailures": []}
    assert counts(ch, source) == (240 - n_bad, n_bad)
    assert process(event, HandlerEnv(mappings, ch.new_client)) == {"batchItemFailures": []}
    assert counts(ch, source) == (240 - n_bad, n_bad)


def test_a_retry_handed_to_another_warm_container_replays_the_other_containers_batch(
        ch, aws_conn, mappings, lambda_stream):
    """Lambda gives a shard's batches to any warm container: A stores batch 1, B half-stores batch 2 (table
    rows in, quarantine not) and reports it, and the retry — from batch 2's first record, grown by what arrived
    since — comes back to A, whose own last view of the shard is batch 1. Nothing may land twice."""
    data, n_bad = payloads(300, seed=26, bad_ratio=0.1)
    arn, event = lambda_stream(data, shards=1)
    source = lambda_source(ch, mappings, arn, arn.rsplit("/", 1)[1])
    records = event["Records"]
    container_a = HandlerEnv(mappings, ch.new_client)
    assert process({"Records": records[:100]}, container_a) == {"batchItemFailures": []}
    batch_2 = {"Records": records[100:200]}
    flaky = FlakyClient(ch.new_client(), ok_inserts=1)
    reply = process(batch_2, HandlerEnv(mappings, lambda: flaky))
    first = records[100]["kinesis"]["sequenceNumber"]
    assert reply == {"batchItemFailures": [{"itemIdentifier": first}]}
    assert counts(ch, source)[1] < n_bad, "batch 2's quarantine rows did not land"
    assert process({"Records": records[100:]}, container_a) == {"batchItemFailures": []}
    assert counts(ch, source) == (300 - n_bad, n_bad)


def test_an_unmapped_stream_is_reported_not_dropped(mappings):
    event = {"Records": [{"kinesis": {"sequenceNumber": "1", "data": base64.b64encode(b"{}").decode(),
                                      "partitionKey": "k"},
                          "eventID": "shardId-000000000000:1", "eventSourceARN": "arn:aws:kinesis:x:1:stream/none"}]}
    assert process(event, HandlerEnv(mappings, lambda: None)) == {"batchItemFailures": [{"itemIdentifier": "1"}]}


def test_the_in_app_manager_leaves_lambda_sources_alone(ch, mappings, lambda_stream):
    from helios_core.ingest.manager import IngestManager

    data, _ = payloads(5, seed=24)
    arn, _event = lambda_stream(data, shards=1)
    source = lambda_source(ch, mappings, arn, arn.rsplit("/", 1)[1])
    assert source.mode == "lambda"
    manager = IngestManager(ch)
    try:
        manager.sync()
        assert source.id not in manager.consumers
    finally:
        manager.shutdown()


# ---- deploying: moto's Lambda, IAM, DynamoDB and Secrets Manager (moto creates, never runs, functions) ----

def test_deploy_creates_mapping_secret_role_function_and_event_source_mapping(ch, aws_conn, lambda_stream):
    import json

    from helios_core import serverless

    data, _ = payloads(3, seed=25)
    arn, _event = lambda_stream(data, shards=1)
    table = f"helios-sources-{uuid.uuid4().hex[:6]}"
    store = MappingStore(aws_conn.session().resource("dynamodb", endpoint_url=aws_conn.endpoint_url), table)
    source = lambda_source(ch, MappingStoreStub(), arn, arn.rsplit("/", 1)[1])
    url = "https://writer:s3cret-pass@clickhouse.example.com:8443/default"
    options = serverless.LambdaOptions(batch_size=250, batching_window_s=2, parallelization_factor=1,
                                       starting_position="LATEST", mapping_table=table)
    code = serverless.package_bytes(with_requirements=False)
    done = serverless.deploy(aws_conn, source, url, options, code=code)

    assert [s.id for s in store.sources_for(arn)] == [source.id]
    lam = aws_conn.client("lambda")
    fn = lam.get_function(FunctionName=done.names["function"])["Configuration"]
    assert fn["Handler"] == serverless.HANDLER and fn["Role"] == done.role_arn
    env = fn["Environment"]["Variables"]
    assert env == {"HELIOS_CLICKHOUSE_SECRET_ARN": done.secret_arn, "HELIOS_MAPPING_TABLE": table}
    assert "s3cret-pass" not in json.dumps(fn), "the ClickHouse password never sits in the function's settings"
    secret = aws_conn.client("secretsmanager").get_secret_value(SecretId=done.secret_arn)["SecretString"]
    assert json.loads(secret) == {"url": url}
    esm = lam.get_event_source_mapping(UUID=done.mapping_uuid)
    assert esm["EventSourceArn"] == arn and esm["BatchSize"] == 250
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["ParallelizationFactor"] == 1 and esm["BisectBatchOnFunctionError"] is True
    policy = aws_conn.client("iam").get_role_policy(RoleName=done.names["role"], PolicyName="helios-ingest")
    resources = json.dumps(policy["PolicyDocument"])
    assert arn in resources and done.secret_arn in resources
    # Deploying again updates in place: still one mapping.
    again = serverless.deploy(aws_conn, source, url, options, code=code)
    assert again.mapping_uuid == done.mapping_uuid
    assert serverless.status(aws_conn, source).state


class MappingStoreStub:
    """Only for creating the source before deploy() writes the real mapping item."""

    def put(self, source):
        return None


def test_the_package_holds_the_handler(tmp_path):
    import zipfile

    from helios_core import serverless

    path = serverless.package(tmp_path / "fn.zip", with_requirements=False)
    names = zipfile.ZipFile(path).namelist()
    assert "helios_core/ingest/lambda_handler.py" in names and "helios_core/ingest/sink.py" in names


def test_cloudformation_template_names_every_resource_and_no_secret(ch):
    import json

    from helios_core import serverless

    source = sources.Source(id="abc123", stream_name="s", stream_arn="arn:aws:kinesis:eu-west-1:1:stream/s",
                            database="d", table="t", columns=activity_columns(), options={"mode": "lambda"})
    template = serverless.cloudformation_template(source, serverless.LambdaOptions(batch_size=100))
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert kinds == {"AWS::DynamoDB::Table", "AWS::SecretsManager::Secret", "AWS::IAM::Role",
                     "AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping"}
    assert template["Parameters"]["ClickHouseUrl"]["NoEcho"] is True
    esm = template["Resources"]["EventSourceMapping"]["Properties"]
    assert esm["BatchSize"] == 100 and esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert template["Metadata"]["HeliosMappingItem"]["source_id"] == "abc123"
    json.dumps(template)


def test_bad_lambda_settings_and_an_embedded_url_are_refused(aws_conn):
    from helios_core import serverless
    from helios_core.errors import ValidationError

    with pytest.raises(ValidationError) as bad:
        serverless.LambdaOptions(batch_size=0, parallelization_factor=2, starting_position="SOMEWHERE").check()
    assert len(bad.value.problems) == 3
    assert any("exactly-once" in p for p in bad.value.problems)
    source = sources.Source(id="x", stream_name="s", stream_arn="arn", database="d", table="t", columns=[])
    with pytest.raises(ValidationError, match="HTTP"):
        serverless.deploy(aws_conn, source, "chdb:///tmp/x", code=b"")


# ---- the command line ----

def test_cli_create_table_in_lambda_mode(capsys, ch, tmp_path):
    import json

    from helios_core.cli import EXIT_INVALID, main
    from helios_core.clickhouse import table_exists

    schema = tmp_path / "cols.json"
    schema.write_text(json.dumps([c.to_json() for c in activity_columns()]))
    table = f"t_{uuid.uuid4().hex[:8]}"
    base = ["create-table", "--stream", "clicks", "--database", "lambda_cli", "--table", table, "--schema",
            str(schema), "--order-by", "event_type,timestamp", "--stream-arn",
            "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks", "--mode", "lambda"]
    # Deploying needs a ClickHouse server AWS can reach: refused before anything is created.
    assert main(base) == EXIT_INVALID
    out = json.loads(capsys.readouterr().out)
    assert "server" in out["error"] and not table_exists(ch, "lambda_cli", table)
    # The template needs nothing from AWS; the source is recorded as a Lambda source.
    assert main(base + ["--template", "--batch-size", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["success"] and table_exists(ch, "lambda_cli", table)
    props = out["cloudFormation"]["Resources"]["EventSourceMapping"]["Properties"]
    assert props["BatchSize"] == 100
    assert sources.get_source(ch, out["sourceId"]).mode == "lambda"
    assert main(["lambda", "template", out["sourceId"]]) == 0
    assert "Resources" in json.loads(capsys.readouterr().out)["cloudFormation"]
