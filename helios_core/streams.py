"""Sample Kinesis streams and decode their records.

:func:`decode_record` is the one decoder for Kinesis payloads (the preview and
the ingest engine both use it): a JSON object, a JSON array of objects,
gzip-compressed JSON, or several newline-separated JSON objects in one record.

:func:`sample_stream` reads up to N events from every open shard from
TRIM_HORIZON, LATEST (waiting up to a time limit, reporting progress) or
AT_TIMESTAMP, with batched ``GetRecords`` calls that respect Kinesis limits
(at most 5 calls per second per shard; back-off on throughput errors).
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from helios_core.aws import AwsConnection, aws_errors, describe_stream, to_aws_error
from helios_core.errors import AwsError, ValidationError
from helios_core.wording import plural

DEFAULT_SAMPLE = 100
MAX_SAMPLE = 10_000
START_POSITIONS = ("trim_horizon", "latest", "at_timestamp")
MAX_DECOMPRESSED = 16 * 1024 * 1024   # a Kinesis record is at most 1 MiB; refuse gzip bombs
_MIN_CALL_INTERVAL = 0.2               # GetRecords: 5 calls per second per shard
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"

Progress = Callable[[float, str], None]


class DecodeError(ValueError):
    """A record that is not JSON, gzip JSON or JSON lines; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _json_error(exc: Exception) -> str:
    return str(exc).split("\n")[0][:200]


def _objects(value: Any, where: str = "") -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    kind = {str: "a JSON string", bool: "a JSON boolean", int: "a JSON number", float: "a JSON number",
            type(None): "JSON null"}.get(type(value), f"a JSON {type(value).__name__}")
    if isinstance(value, list):
        kind = "an empty JSON array" if not value else "a JSON array of non-objects"
    raise DecodeError(f"{where}{kind}, not an object")


def decode_record(data: bytes) -> list[dict[str, Any]]:
    """The JSON objects in one Kinesis record, or :class:`DecodeError` with a reason.

    Accepts a JSON object, a JSON array of objects, several JSON objects on
    separate lines, and any of these gzip-compressed.
    """
    if data[:2] == _GZIP_MAGIC:
        data = _gunzip(data)
    if data[:3] == _BOM:
        data = data[3:]
    try:
        return _objects(orjson.loads(data))
    except orjson.JSONDecodeError as exc:
        first_error = exc
    stripped = data.strip()
    if not stripped:
        raise DecodeError("empty record")
    if b"\n" not in stripped:
        raise DecodeError(f"not valid JSON: {_json_error(first_error)}")
    events: list[dict[str, Any]] = []
    lines = stripped.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if number == 1:  # not JSON lines at all: report the whole-record error
                raise DecodeError(f"not valid JSON: {_json_error(first_error)}") from None
            raise DecodeError(f"line {number} of {len(lines)} is not valid JSON: {_json_error(exc)}") from None
        events.extend(_objects(value, f"line {number}: "))
    return events


def decode_or_reason(data: bytes) -> tuple[list[dict[str, Any]], str]:
    """``(events, "")`` or ``([], reason)``: :func:`decode_record` without exceptions."""
    try:
        return decode_record(data), ""
    except DecodeError as exc:
        return [], exc.reason


def _gunzip(data: bytes) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_DECOMPRESSED)
    except zlib.error as exc:
        raise DecodeError(f"gzip data is corrupt ({exc})") from None
    if inflater.unconsumed_tail:
        raise DecodeError(f"gzip data expands beyond {MAX_DECOMPRESSED // (1024 * 1024)} MiB")
    if not inflater.eof:
        raise DecodeError("gzip data is truncated")
    return out


def encoding_of(data: bytes) -> str:
    return "gzip" if data[:2] == _GZIP_MAGIC else "json"


def gzip_events(events: list[dict[str, Any]]) -> bytes:
    """Events as gzip-compressed JSON lines (for tests and producers)."""
    return gzip.compress(b"\n".join(orjson.dumps(e) for e in events))


# ---------------------------------------------------------------- sampling

@dataclass
class RecordMeta:
    shard_id: str
    sequence_number: str
    partition_key: str
    arrival_time: datetime | None
    size: int = 0
    encoding: str = "json"     # json or gzip
    index: int = 0             # position of the event within its record (JSON lines / arrays)

    def to_json(self) -> dict[str, Any]:
        return {"shard_id": self.shard_id, "sequence_number": self.sequence_number,
                "partition_key": self.partition_key,
                "arrival_time": self.arrival_time.isoformat() if self.arrival_time else None,
                "size": self.size, "encoding": self.encoding, "index": self.index}


@dataclass
class UndecodableRecord:
    meta: RecordMeta
    reason: str
    preview: str               # the start of the payload, safe to show

    def to_json(self) -> dict[str, Any]:
        return {**self.meta.to_json(), "reason": self.reason, "preview": self.preview}


@dataclass
class Sample:
    stream: str
    start: str
    requested: int
    events: list[dict[str, Any]] = field(default_factory=list)
    meta: list[RecordMeta] = field(default_factory=list)          # one per event
    undecodable: list[UndecodableRecord] = field(default_factory=list)
    shards: list[str] = field(default_factory=list)
    records_read: int = 0
    calls: int = 0
    throttled: int = 0
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """Each event with its record metadata (``_shard_id`` …), for tables."""
        return [{"_shard_id": m.shard_id, "_sequence_number": m.sequence_number, "_partition_key": m.partition_key,
                 "_arrival_time": m.arrival_time, **e} for e, m in zip(self.events, self.meta, strict=False)]

    def to_json(self, schema: Any = None) -> dict[str, Any]:
        """The seed's ``kinesis-sample`` shape (``sampleEvent``, ``inferredSchema``) plus everything sampled."""
        payload: dict[str, Any] = {"streamName": self.stream, "sampleEvent": self.events[0] if self.events else None}
        if schema is not None:
            payload["inferredSchema"] = [c.to_json() for c in schema.columns]
            payload["orderBy"] = schema.order_by
            payload["partitionBy"] = schema.partition_by
            payload["conflicts"] = schema.conflicts
        payload.update({
            "start": self.start, "requested": self.requested, "eventCount": len(self.events),
            "recordsRead": self.records_read, "shards": self.shards,
            "events": [{"event": e, "metadata": m.to_json()} for e, m in zip(self.events, self.meta, strict=False)],
            "undecodable": [u.to_json() for u in self.undecodable], "notes": self.notes,
        })
        return payload


def list_shards(client: Any, stream: str) -> list[dict[str, Any]]:
    """Every shard of the stream, open and closed (``ListShards``, paginated), as Kinesis describes them."""
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamName": stream}
    while True:
        reply = client.list_shards(**kwargs)
        shards.extend(reply.get("Shards", []))
        token = reply.get("NextToken")
        if not token:
            return shards
        kwargs = {"NextToken": token}


def list_open_shards(conn: AwsConnection, stream: str) -> list[str]:
    """Ids of the stream's open shards."""
    with aws_errors("kinesis:ListShards", conn):
        shards = list_shards(conn.client("kinesis"), stream)
    return [s["ShardId"] for s in shards if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})]


def stream_arn(conn: AwsConnection, stream: str) -> str:
    """The stream's ARN as Kinesis states it (``DescribeStreamSummary``).

    A source is found by this ARN (the Lambda mapping, the IAM policy), so it is never pieced together from
    the name: the account in it is the stream's own.
    """
    arn = describe_stream(conn, stream).arn
    if not arn:
        raise AwsError(f"Kinesis did not give the ARN of stream {stream!r}.",
                       "Check that the endpoint is a Kinesis service (DescribeStreamSummary answers StreamARN).")
    return arn


def _preview(data: bytes, limit: int = 160) -> str:
    if data[:2] == _GZIP_MAGIC:
        return f"<gzip, {len(data)} bytes>"
    text = data[:limit].decode("utf-8", errors="replace")
    return text + ("…" if len(data) > limit else "")


def parse_start(start: str, at: datetime | str | None) -> tuple[str, datetime | None]:
    kind = (start or "trim_horizon").lower().replace("-", "_")
    if kind not in START_POSITIONS:
        raise ValidationError(f"Unknown start position {start!r}.", f"Use one of {', '.join(START_POSITIONS)}.")
    if kind != "at_timestamp":
        return kind, None
    if at is None or at == "":
        raise ValidationError("AT_TIMESTAMP needs a time.", "Give it as ISO-8601, e.g. 2025-01-31T12:00:00Z.")
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"{at!r} is not an ISO-8601 time.", "Example: 2025-01-31T12:00:00Z.") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return kind, at


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    next_call: float = 0.0
    caught_up: bool = False    # MillisBehindLatest was 0 and nothing came back


def sample_stream(conn: AwsConnection, stream: str, n: int = DEFAULT_SAMPLE, start: str = "trim_horizon",
                  at: datetime | str | None = None, wait_s: float = 10.0, progress: Progress | None = None,
                  max_backoff_retries: int = 6) -> Sample:
    """Up to ``n`` events from all open shards of ``stream``.

    TRIM_HORIZON and AT_TIMESTAMP read what is stored and stop when every shard
    is caught up (or after ``wait_s`` seconds); LATEST waits up to ``wait_s``
    for new events (AT_TIMESTAMP has whole-second resolution: boto3 sends
    seconds). ``progress(fraction, message)`` is called after every round
    of calls (from the calling thread). Throughput errors back off
    exponentially; events are spread across shards.
    """
    if not isinstance(n, int) or n < 1 or n > MAX_SAMPLE:
        raise ValidationError(f"The sample size must be between 1 and {MAX_SAMPLE:,}, not {n}.")
    kind, at_time = parse_start(start, at)
    began = time.monotonic()
    sample = Sample(stream=stream, start=kind, requested=n)
    client = conn.client("kinesis", retries={"mode": "standard", "max_attempts": 2})
    sample.shards = list_open_shards(conn, stream)
    if not sample.shards:
        sample.notes.append("The stream has no open shards.")
        return sample
    shards = [_Shard(sid, _shard_iterator(conn, client, stream, sid, kind, at_time)) for sid in sample.shards]
    deadline = began + max(wait_s, 0.0)
    backoff = 0.2
    retries = 0
    while len(sample.events) < n:
        active = [s for s in shards if s.iterator and not (kind != "latest" and s.caught_up)]
        if not active:
            break
        now = time.monotonic()
        if now >= deadline and (kind == "latest" or sample.calls >= len(shards)):
            if kind != "latest":
                sample.notes.append(f"Stopped after {wait_s:g} s before every shard was read to its end.")
            break
        ready = [s for s in active if s.next_call <= now]
        if not ready:
            time.sleep(max(0.0, min(min(s.next_call for s in active), deadline) - now) + 0.001)
            continue
        share = max(1, -(-(n - len(sample.events)) // len(active)))  # ceil: spread across shards
        for shard in ready:
            if len(sample.events) >= n:
                break
            try:
                reply = client.get_records(ShardIterator=shard.iterator, Limit=min(share, 10_000))
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("ProvisionedThroughputExceededException", "LimitExceededException") \
                        and retries < max_backoff_retries:
                    retries += 1
                    sample.throttled += 1
                    shard.next_call = time.monotonic() + backoff
                    backoff = min(backoff * 2, 5.0)
                    continue
                if code == "ExpiredIteratorException":
                    shard.iterator = _shard_iterator(conn, client, stream, shard.shard_id, kind, at_time)
                    continue
                raise to_aws_error(exc, "kinesis:GetRecords", conn) from None
            except BotoCoreError as exc:
                raise to_aws_error(exc, "kinesis:GetRecords", conn) from None
            sample.calls += 1
            backoff = 0.2
            shard.next_call = time.monotonic() + _MIN_CALL_INTERVAL
            shard.iterator = reply.get("NextShardIterator")
            records = reply.get("Records", [])
            _add_records(sample, shard.shard_id, records, n)
            shard.caught_up = not records and reply.get("MillisBehindLatest", 0) == 0
        if progress is not None:
            progress(*_progress(sample, kind, n, began, wait_s))
    del sample.events[n:]
    del sample.meta[n:]
    if not sample.events and not sample.undecodable:
        sample.notes.append("No events arrived while waiting." if kind == "latest" else "The stream holds no events"
                            + (" after that time." if kind == "at_timestamp" else " (it may be empty)."))
    sample.elapsed_s = time.monotonic() - began
    if progress is not None:
        progress(1.0, f"{plural(len(sample.events), 'event')} from {plural(len(sample.shards), 'shard')}")
    return sample


def _progress(sample: Sample, kind: str, n: int, began: float, wait_s: float) -> tuple[float, str]:
    got = len(sample.events)
    fraction = got / n
    elapsed = time.monotonic() - began
    if kind == "latest" and wait_s > 0:
        fraction = max(fraction, elapsed / wait_s)
        return min(fraction, 1.0), f"{got} of {plural(n, 'event')}; waited {elapsed:.0f} of {wait_s:g} s"
    return min(fraction, 1.0), f"{got} of {plural(n, 'event')} read"


def _shard_iterator(conn: AwsConnection, client, stream: str, shard_id: str, kind: str,
                    at_time: datetime | None) -> str | None:
    kwargs: dict[str, Any] = {"StreamName": stream, "ShardId": shard_id, "ShardIteratorType": kind.upper()}
    if at_time is not None:
        kwargs["Timestamp"] = at_time
    with aws_errors("kinesis:GetShardIterator", conn):
        return client.get_shard_iterator(**kwargs).get("ShardIterator")


def _add_records(sample: Sample, shard_id: str, records: list[dict[str, Any]], n: int) -> None:
    for record in records:
        sample.records_read += 1
        data = record.get("Data", b"")
        meta = RecordMeta(shard_id, record.get("SequenceNumber", ""), record.get("PartitionKey", ""),
                          record.get("ApproximateArrivalTimestamp"), len(data), encoding_of(data))
        try:
            events = decode_record(data)
        except DecodeError as exc:
            sample.undecodable.append(UndecodableRecord(meta, exc.reason, _preview(data)))
            continue
        for index, event in enumerate(events):
            if len(sample.events) >= n:
                return
            sample.events.append(event)
            sample.meta.append(meta if index == 0 else RecordMeta(**{**vars(meta), "index": index}))
