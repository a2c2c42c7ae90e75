"""AWS connections, error mapping, stream listing and the sandbox, against a real moto server."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import orjson
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from helpers import WAIT, wait_until

from helios_core.aws import (
    AwsConnection,
    authenticate,
    caller_identity,
    kinesis_regions,
    list_stream_pages,
    list_streams,
    to_aws_error,
)
from helios_core.errors import AwsError, NotFound, ValidationError
from helios_core.sandbox import DEFECTS, DEMO_STREAMS, MANDATORY_FIELDS, Producer, generate_events, get_sandbox

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_connection_never_shows_its_secret():
    conn = AwsConnection(region="eu-west-1", access_key_id="AKIAIOSFODNN7EXAMPLE", secret_access_key=SECRET,
                         session_token="FQoGZXIvYXdzEXAMPLETOKEN")
    for text in (repr(conn), str(conn), conn.describe(), orjson.dumps(conn.to_json()).decode()):
        assert SECRET not in text and "EXAMPLETOKEN" not in text and "AKIAIOSFODNN7" not in text
        assert "MPLE" in text  # the key id's last 4 characters at most
    assert conn.method == "keys"
    assert "session token" in conn.describe()


@pytest.mark.parametrize("kwargs, words", [
    ({"access_key_id": "AKIA1234"}, "both"),
    ({"access_key_id": "AKIA1234", "secret_access_key": "x", "profile": "dev"}, "either"),
    ({"endpoint_url": "localhost:4566"}, "http"),
    ({"region": ""}, "region"),
])
def test_connection_rejects_inconsistent_settings(kwargs, words):
    with pytest.raises(ValidationError) as info:
        AwsConnection(**kwargs)
    assert words in info.value.message


def test_regions_come_from_botocore():
    regions = kinesis_regions()
    assert "us-east-1" in regions and "eu-west-1" in regions and len(regions) > 10


def test_validate_returns_account_and_arn(aws_conn):
    identity = aws_conn.validate()
    assert identity.account == "123456789012"
    assert identity.arn.startswith("arn:aws:")


def test_list_streams_follows_pages_and_reads_details(aws_conn):
    client = aws_conn.client("kinesis")
    prefix = f"page_{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}_{i}" for i in range(5)]
    for i, name in enumerate(names):
        if i == 4:
            client.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        else:
            client.create_stream(StreamName=name, ShardCount=i + 1)
    try:
        pages = list_stream_pages(aws_conn, page_size=2)
        assert set(names) <= {s.name for s in pages}
        assert len(pages) > 2  # needed more than one page of two
        streams = {s.name: s for s in list_streams(aws_conn, page_size=2)}
        assert [streams[n].open_shards for n in names[:4]] == [1, 2, 3, 4]
        assert streams[names[0]].mode == "PROVISIONED" and streams[names[4]].mode == "ON_DEMAND"
        assert streams[names[0]].retention_hours == 24 and streams[names[0]].status == "ACTIVE"
        result = authenticate(aws_conn)
        assert result["authenticated"] is True and set(names) <= set(result["streamNames"])
        assert result["account"] == "123456789012" and result["connection"]["access_key_id"] == "…ting"
        assert {"name", "status", "mode", "openShards", "retentionHours"} <= set(result["streams"][0])
    finally:
        for name in names:
            client.delete_stream(StreamName=name)


def test_wrong_key_and_wrong_secret_are_named(moto_auth, moto_server):
    wrong_key = AwsConnection(region="eu-west-1", access_key_id="AKIAWRONGWRONGWRONG", secret_access_key="x",
                              endpoint_url=moto_server)
    with pytest.raises(AwsError) as info:
        wrong_key.validate()
    assert "does not recognise the access key" in info.value.message
    wrong_secret = AwsConnection(region="eu-west-1", access_key_id=moto_auth["access_key_id"],
                                 secret_access_key="not-the-secret", endpoint_url=moto_server)
    with pytest.raises(AwsError) as info:
        wrong_secret.validate()
    assert "secret access key does not match" in info.value.message


def test_missing_permission_names_the_iam_action(moto_auth, moto_server):
    conn = AwsConnection(region="eu-west-1", access_key_id=moto_auth["access_key_id"],
                         secret_access_key=moto_auth["secret_access_key"], endpoint_url=moto_server)
    identity = conn.validate()  # GetCallerIdentity needs no permission
    assert identity.arn.endswith(f"user/{moto_auth['user']}")
    with pytest.raises(AwsError) as info:
        list_streams(conn)
    assert "kinesis:ListStreams" in info.value.message and "kinesis:ListStreams" in info.value.hint


def test_unreachable_endpoint_says_so():
    conn = AwsConnection(region="eu-west-1", access_key_id="testing", secret_access_key="testing",
                         endpoint_url="http://127.0.0.1:9")
    with pytest.raises(AwsError) as info:
        caller_identity(conn)
    assert "Could not reach" in info.value.message and "endpoint URL" in info.value.hint


def test_unknown_profile_is_a_clear_error():
    conn = AwsConnection(region="eu-west-1", profile=f"no-such-profile-{uuid.uuid4().hex[:6]}")
    with pytest.raises(AwsError) as info:
        conn.validate()
    assert "no AWS profile" in info.value.message


def _client_error(code: str, message: str, operation: str = "ListStreams") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


def test_error_mapping_covers_expired_tokens_regions_and_missing_streams():
    conn = AwsConnection(region="eu-west-1")
    expired = to_aws_error(_client_error("ExpiredTokenException", "The security token included in the request is "
                                                                  "expired"), "kinesis:ListStreams", conn)
    assert isinstance(expired, AwsError) and "expired" in expired.message and "session token" in expired.hint
    missing = to_aws_error(_client_error("ResourceNotFoundException", "Stream x not found"), "kinesis:ListShards")
    assert isinstance(missing, NotFound)
    nowhere = AwsConnection(region="xx-nowhere-1")
    offline = to_aws_error(EndpointConnectionError(endpoint_url="https://kinesis.xx-nowhere-1.amazonaws.com/"),
                           "kinesis:ListStreams", nowhere)
    assert "Could not reach" in offline.message and "not offered in xx-nowhere-1" in offline.hint
    in_region = to_aws_error(EndpointConnectionError(endpoint_url="https://kinesis.eu-west-1.amazonaws.com/"),
                             "kinesis:ListStreams", conn)
    assert "network" in in_region.hint


def test_stream_not_found_is_not_found(aws_conn):
    from helios_core.aws import describe_stream

    with pytest.raises(NotFound):
        describe_stream(aws_conn, "no_such_stream_here")


# ---------------------------------------------------------------- the sandbox

def test_generated_events_are_deterministic_and_realistic():
    a = generate_events("captcha_events", 2000, seed=11)
    b = generate_events("captcha_events", 2000, seed=11)
    assert [e.payload for e in a] == [e.payload for e in b]
    assert [e.payload for e in generate_events("captcha_events", 50, seed=12)] != [e.payload for e in a[:50]]
    good = [e.event for e in a if not e.defect]
    assert all(set(ev) == set(MANDATORY_FIELDS["captcha_events"]) for ev in good)
    assert all(ev["type"] in ("serve", "solve") and ev["time"].endswith("+00:00") for ev in good)
    uuid.UUID(good[0]["correlation_id"]), uuid.UUID(good[0]["site_id"])
    serves = {ev["correlation_id"]: ev for ev in good if ev["type"] == "serve"}
    solves = [ev for ev in good if ev["type"] == "solve"]
    assert len(solves) > 500
    matched = [ev for ev in solves if ev["correlation_id"] in serves]
    assert len(matched) >= 0.97 * len(solves)  # (a serve may itself be one of the ~1% spoiled events)
    assert all(serves[ev["correlation_id"]]["site_id"] == ev["site_id"] for ev in matched)
    assert all(serves[ev["correlation_id"]]["time"] < ev["time"] for ev in matched)


def test_about_one_percent_of_events_are_bad_in_every_way():
    defects = Counter()
    for stream in DEMO_STREAMS:
        events = generate_events(stream, 4000, seed=3)
        defects.update(e.defect for e in events)
        for e in events:
            if e.defect == "invalid_json":
                with pytest.raises(orjson.JSONDecodeError):
                    orjson.loads(e.payload)
            elif e.defect == "missing_field":
                assert not set(MANDATORY_FIELDS[stream]) <= set(e.event)
            elif not e.defect:
                assert orjson.loads(e.payload) == e.event
    bad = sum(c for d, c in defects.items() if d)
    assert 0.005 * 12000 < bad < 0.02 * 12000
    assert set(DEFECTS) <= set(defects)
    assert not generate_events("user_activity", 500, seed=1, bad_ratio=0)[-1].defect


def test_sandbox_serves_demo_streams_and_s3(aws_sandbox):
    assert aws_sandbox is get_sandbox()  # one per process
    conn = aws_sandbox.connection()
    assert conn.sandbox and conn.endpoint_url.startswith("http://127.0.0.1:")
    streams = {s.name: s for s in list_streams(conn)}
    for name in DEMO_STREAMS:
        assert streams[name].open_shards == 2
    snapshot = aws_sandbox.status()["producer"]
    assert snapshot["running"]
    assert all(s["sent"] >= aws_sandbox.prefill for s in snapshot["streams"].values())
    s3 = aws_sandbox.client("s3")
    bucket = f"helios-test-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a.json", Body=b'{"a":1}')
    assert s3.get_object(Bucket=bucket, Key="a.json")["Body"].read() == b'{"a":1}'
    assert aws_sandbox.session().region_name == aws_sandbox.region


def test_producer_writes_steadily_and_stops(aws_conn, kinesis_stream):
    kinesis_stream(name="user_activity_producer_test", shards=1)
    producer = Producer(aws_conn, rate_per_s=40, seed=5, tick_s=0.05,
                        targets={"user_activity_producer_test": "user_activity"})
    producer.start()
    wait_until(lambda: producer.snapshot()["streams"]["user_activity_producer_test"]["sent"] >= 5,
               interval=0.05, message="5 events sent")
    producer.stop(timeout=WAIT)
    assert not producer.running
    sent = producer.snapshot()["streams"]["user_activity_producer_test"]["sent"]
    assert sent >= 5
    time.sleep(0.2)
    assert producer.snapshot()["streams"]["user_activity_producer_test"]["sent"] == sent  # really stopped
