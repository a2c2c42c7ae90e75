"""Sampling under Kinesis faults that moto never raises.

Faults are injected with botocore's own ``before-call`` hook (the mechanism
botocore's Stubber uses) on the real client that talks to the moto server:
the chosen calls fail with a genuine ``ClientError``, every other call is
served by moto.
"""

from __future__ import annotations

from botocore.awsrequest import AWSResponse
from helpers import WAIT

from helios_core.sandbox import generate_events
from helios_core.streams import sample_stream


def _inject(client, faults: dict[int, str]) -> dict[str, int]:
    """Make GetRecords call number N (1-based) fail with ``faults[N]``; count the calls."""
    seen = {"calls": 0, "injected": 0}

    def before_call(**_):
        seen["calls"] += 1
        code = faults.get(seen["calls"])
        if code is None:
            return None  # pass through to moto
        seen["injected"] += 1
        return AWSResponse("http://fault", 400, {}, None), {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": 400}}

    client.meta.events.register("before-call.kinesis.GetRecords", before_call, unique_id="helios-fault")
    return seen


def _remove(client) -> None:
    client.meta.events.unregister("before-call.kinesis.GetRecords", unique_id="helios-fault")


def test_throttling_backs_off_and_the_sample_is_complete(aws_conn, kinesis_stream):
    events = generate_events("user_activity", 40, seed=21, bad_ratio=0)
    stream = kinesis_stream(events, shards=2)
    client = aws_conn.client("kinesis", retries={"mode": "standard", "max_attempts": 2})  # the one sampling uses
    seen = _inject(client, {1: "ProvisionedThroughputExceededException", 2: "ProvisionedThroughputExceededException",
                            3: "LimitExceededException"})
    try:
        sample = sample_stream(aws_conn, stream, n=40, start="trim_horizon", wait_s=WAIT)
    finally:
        _remove(client)
    assert seen["injected"] == 3 and sample.throttled == 3
    assert len(sample.events) == 40
    assert sorted(e["event_id"] for e in sample.events) == sorted(e.event["event_id"] for e in events)


def test_an_expired_iterator_is_refreshed_and_nothing_is_read_twice(aws_conn, kinesis_stream):
    events = generate_events("purchase_events", 30, seed=22, bad_ratio=0)
    stream = kinesis_stream(events, shards=1)
    client = aws_conn.client("kinesis", retries={"mode": "standard", "max_attempts": 2})
    seen = _inject(client, {1: "ExpiredIteratorException"})
    try:
        sample = sample_stream(aws_conn, stream, n=30, start="trim_horizon", wait_s=WAIT)
    finally:
        _remove(client)
    assert seen["injected"] == 1
    ids = [e["order_id"] for e in sample.events]
    assert len(ids) == 30 == len(set(ids))


def test_persistent_throttling_ends_with_a_clear_message(aws_conn, kinesis_stream):
    import pytest

    from helios_core.errors import AwsError
    stream = kinesis_stream(generate_events("user_activity", 5, seed=23, bad_ratio=0), shards=1)
    client = aws_conn.client("kinesis", retries={"mode": "standard", "max_attempts": 2})
    _inject(client, {i: "ProvisionedThroughputExceededException" for i in range(1, 50)})
    try:
        with pytest.raises(AwsError) as info:
            sample_stream(aws_conn, stream, n=5, start="trim_horizon", wait_s=WAIT, max_backoff_retries=2)
    finally:
        _remove(client)
    assert "Traceback" not in str(info.value)
    assert "throughput" in str(info.value).lower() or "throttl" in str(info.value).lower() \
        or "rate" in str(info.value).lower()
