"""Commands: ``streams``, ``sample STREAM``, ``infer [FILE]``.

AWS settings come from boto3's standard chain (environment, ``~/.aws``, SSO,
instance role), ``--region``/``--profile``, and ``HELIOS_AWS_ENDPOINT_URL``;
``--sandbox`` starts the local sandbox (moto server + demo streams) for the
command instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from helios_core.aws import AwsConnection, authenticate, connection_from_settings
from helios_core.errors import NotFound, ValidationError
from helios_core.schema import infer_schema
from helios_core.streams import DEFAULT_SAMPLE, START_POSITIONS, DecodeError, decode_record, sample_stream


def add_aws_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sandbox", action="store_true", help="start the local sandbox (moto + demo streams) for this")
    p.add_argument("--region", help="AWS region (default: AWS_DEFAULT_REGION or us-east-1)")
    p.add_argument("--profile", help="a named profile from ~/.aws")
    p.add_argument("--endpoint-url", help="a Kinesis-compatible endpoint (default: HELIOS_AWS_ENDPOINT_URL)")


@contextmanager
def aws_connection(args: argparse.Namespace) -> Iterator[AwsConnection]:
    if not args.sandbox:
        yield connection_from_settings(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)
        return
    from helios_core.sandbox import get_sandbox, sandbox_if_running

    already_running = sandbox_if_running() is not None
    sandbox = get_sandbox()
    try:
        yield sandbox.connection()
    finally:
        if not already_running:  # only stop what this command started
            sandbox.stop()


def _streams(args: argparse.Namespace) -> dict[str, Any]:
    with aws_connection(args) as conn:
        return authenticate(conn, details=not args.no_details)


def _sample(args: argparse.Namespace) -> dict[str, Any]:
    def progress(fraction: float, message: str) -> None:
        if args.progress:
            print(f"\r{message}", end="", file=sys.stderr, flush=True)

    with aws_connection(args) as conn:
        sample = sample_stream(conn, args.stream, n=args.n, start=args.start, at=args.at, wait_s=args.wait,
                               progress=progress)
    if args.progress:
        print(file=sys.stderr)
    return sample.to_json(infer_schema(sample.events))


def read_json_lines(data: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events from JSON lines (or one JSON array/object, or gzip), and the lines that are not JSON objects."""
    lines = data.split(b"\n") if data[:2] != b"\x1f\x8b" else []
    events: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.extend(decode_record(line))
        except DecodeError as exc:
            bad.append({"line": number, "reason": exc.reason})
    if not events:  # maybe one pretty-printed document, or gzip
        try:
            return decode_record(data), []
        except DecodeError:
            pass
    return events, bad


def _infer(args: argparse.Namespace) -> dict[str, Any]:
    if args.file and args.file != "-":
        try:
            with open(args.file, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise NotFound(f"There is no file {args.file!r}.") from None
        except OSError as exc:
            raise ValidationError(f"Cannot read {args.file!r}: {exc.strerror}.") from None
    else:
        data = sys.stdin.buffer.read()
    events, bad = read_json_lines(data)
    if not events:
        raise ValidationError("No JSON objects to infer from.", "Give one JSON object per line.",
                              problems=[f"line {b['line']}: {b['reason']}" for b in bad[:20]])
    result = infer_schema(events, decimal=args.decimal).to_json()
    if bad:
        result["undecodable"] = bad
    return result


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("streams", help="Kinesis streams with details (the seed's authenticate shape)")
    add_aws_args(p)
    p.add_argument("--no-details", action="store_true", help="names and status only (no per-stream calls)")
    p.set_defaults(handler=_streams)

    p = sub.add_parser("sample", help="sample events from all open shards and infer a schema (kinesis-sample shape)")
    p.add_argument("stream")
    p.add_argument("--n", type=int, default=DEFAULT_SAMPLE, help=f"events to sample (default {DEFAULT_SAMPLE})")
    p.add_argument("--from", dest="start", choices=START_POSITIONS, default="trim_horizon",
                   help="where to start reading (default trim_horizon)")
    p.add_argument("--at", help="ISO-8601 time for --from at_timestamp")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for events (latest; default 10)")
    p.add_argument("--progress", action="store_true", help="show progress on stderr")
    add_aws_args(p)
    p.set_defaults(handler=_sample)

    p = sub.add_parser("infer", help="infer a ClickHouse schema from JSON lines (FILE or stdin)")
    p.add_argument("file", nargs="?", help="a JSON-lines file; '-' or nothing reads stdin")
    p.add_argument("--decimal", action="store_true", help="type money-like decimals as Decimal(18, 4)")
    p.set_defaults(handler=_infer)
