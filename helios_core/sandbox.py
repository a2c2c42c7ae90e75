"""The local sandbox: a moto server inside the process, demo streams and a producer.

Public API (used by the pages, the CLI, and other features' tests)::

    from helios_core.sandbox import get_sandbox, generate_events, Sandbox

    sandbox = get_sandbox()            # the process-wide sandbox, started on first use
    conn = sandbox.connection()        # an AwsConnection (fake "testing" keys) to it
    sandbox.endpoint_url               # http://127.0.0.1:<port>; serves Kinesis, S3, STS, …
    sandbox.client("s3")               # a boto3 client to the sandbox (create buckets, presign, …)
    sandbox.session()                  # a boto3 Session with the sandbox's credentials and region

    events = generate_events("captcha_events", 1000, seed=7)   # deterministic, no server needed
    events[0].payload  # bytes as written to Kinesis
    events[0].event    # the dict (None when the payload is not valid JSON)
    events[0].defect   # "" for a good event, else one of DEFECTS

Demo streams (2 shards each): ``user_activity``, ``purchase_events`` and
``captcha_events`` (exactly the IM-challenge seed: ``time`` UTC ISO-8601,
``type`` serve|solve, ``correlation_id`` uuid shared by a serve and its solve,
``site_id`` uuid). About 1% of events are deliberately bad, one of
:data:`DEFECTS`: invalid JSON, a missing mandatory field (:data:`MANDATORY_FIELDS`),
a wrong type, or a bad timestamp (:data:`TIME_FIELDS`).

The moto backend state is per process: every moto server started in the
process (the sandbox's, a test fixture's) sees the same streams.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from helios_core.aws import AwsConnection, aws_errors
from helios_core.config import get_settings
from helios_core.errors import AwsError

DEMO_STREAMS = ("user_activity", "purchase_events", "captcha_events")
SANDBOX_KEY = "testing"  # moto accepts any credentials; these are not secrets
MANDATORY_FIELDS = {
    "user_activity": ("user_id", "event_type", "timestamp"),
    "purchase_events": ("order_id", "user_id", "amount", "currency", "timestamp"),
    "captcha_events": ("time", "type", "correlation_id", "site_id"),
}
TIME_FIELDS = {"user_activity": "timestamp", "purchase_events": "timestamp", "captcha_events": "time"}
DEFECTS = ("invalid_json", "missing_field", "wrong_type", "bad_timestamp")
DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)

_EVENT_TYPES = ["page_view"] * 8 + ["click"] * 5 + ["search"] * 2 + ["login", "logout", "add_to_cart", "signup"]
_DEVICES = ["desktop", "desktop", "mobile", "mobile", "mobile", "tablet"]
_OS = {"desktop": ["Windows", "macOS", "Linux"], "mobile": ["iOS", "Android"], "tablet": ["iPadOS", "Android"]}
_BROWSERS = ["Chrome", "Chrome", "Safari", "Firefox", "Edge"]
_COUNTRIES = ["US", "US", "US", "GB", "DE", "FR", "IN", "BR", "CA", "JP"]
_PAGES = ["/", "/pricing", "/docs", "/blog", "/checkout", "/signup", "/login", "/product"]
_PRODUCTS = ["book", "shirt", "mug", "poster", "sticker", "hat"]
_CURRENCIES = ["USD", "USD", "USD", "EUR", "EUR", "GBP"]
_PAYMENTS = ["card", "card", "paypal", "apple_pay"]
_STATUSES = ["completed"] * 4 + ["refunded", "failed"]
_SITES = ["3f1c2a4e-8b7d-4c21-9a6e-0d5b7f3e2a11", "7a9e4b2c-1d3f-4e5a-8b6c-2f7e9d1a3b45",
          "c2d4e6f8-0a1b-4c3d-9e5f-7a8b6c4d2e10", "e5f7a9b1-c3d5-4e6f-8a0b-1c2d3e4f5a6b"]


@dataclass(frozen=True)
class GeneratedEvent:
    stream: str
    payload: bytes              # exactly what is put into Kinesis
    event: dict[str, Any] | None  # the object (None when the payload is invalid JSON)
    partition_key: str
    defect: str = ""            # "" for a good event, else one of DEFECTS


def _iso_z(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class EventGenerator:
    """Realistic events for one demo stream; deterministic for a given seed.

    ``next(now)`` gives one :class:`GeneratedEvent` stamped with ``now``.
    """

    def __init__(self, stream: str, seed: int | None = None, bad_ratio: float = 0.01) -> None:
        if stream not in DEMO_STREAMS:
            raise ValueError(f"unknown demo stream {stream!r}; choose one of {', '.join(DEMO_STREAMS)}")
        self.stream = stream
        self.rng = random.Random(seed)
        self.bad_ratio = bad_ratio
        self._pending: list[tuple[datetime, str, str]] = []  # captcha: (solve due, correlation_id, site_id)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _user_activity(self, now: datetime) -> dict[str, Any]:
        rng = self.rng
        device = rng.choice(_DEVICES)
        return {
            "event_id": self._uuid(),
            "user_id": rng.randint(1, 2000),
            "session_id": self._uuid(),
            "event_type": rng.choice(_EVENT_TYPES),
            "timestamp": _iso_z(now),
            "device": device,
            "os": rng.choice(_OS[device]),
            "browser": rng.choice(_BROWSERS),
            "ip": f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "country": rng.choice(_COUNTRIES),
            "page": rng.choice(_PAGES),
            "referrer": rng.choice([None, None, "https://www.google.com/", "https://news.ycombinator.com/"]),
            "duration_ms": rng.randint(50, 30000),
            "screen": {"width": rng.choice([390, 768, 1280, 1440, 1920]), "height": rng.choice([844, 1024, 800, 900])},
        }

    def _purchase(self, now: datetime) -> dict[str, Any]:
        rng = self.rng
        items = [rng.choice(_PRODUCTS) for _ in range(rng.randint(1, 4))]
        return {
            "order_id": self._uuid(),
            "user_id": rng.randint(1, 2000),
            "amount": round(rng.uniform(5, 500), 2),
            "currency": rng.choice(_CURRENCIES),
            "items": items,
            "item_count": len(items),
            "payment_method": rng.choice(_PAYMENTS),
            "status": rng.choice(_STATUSES),
            "coupon": rng.choice([None, None, None, "WELCOME10", "SPRING"]),
            "timestamp": _iso_z(now),
        }

    def _captcha(self, now: datetime) -> dict[str, Any]:
        rng = self.rng
        if self._pending and self._pending[0][0] <= now:
            _, correlation_id, site_id = self._pending.pop(0)
            kind = "solve"
        else:
            correlation_id, site_id, kind = self._uuid(), rng.choice(_SITES), "serve"
            if rng.random() < 0.7:  # most procedures are solved 2-60 s later
                self._pending.append((now + timedelta(seconds=rng.uniform(2, 60)), correlation_id, site_id))
                self._pending.sort()
        return {"time": now.astimezone(UTC).isoformat(timespec="milliseconds"), "type": kind,
                "correlation_id": correlation_id, "site_id": site_id}

    def next(self, now: datetime) -> GeneratedEvent:
        builder = {"user_activity": self._user_activity, "purchase_events": self._purchase,
                   "captcha_events": self._captcha}[self.stream]
        event = builder(now)
        key = str(event.get("correlation_id") or event.get("order_id") or event.get("user_id"))
        if self.rng.random() >= self.bad_ratio:
            return GeneratedEvent(self.stream, orjson.dumps(event), event, key)
        return self._spoil(event, key)

    def _spoil(self, event: dict[str, Any], key: str) -> GeneratedEvent:
        rng = self.rng
        defect = rng.choice(DEFECTS)
        if defect == "invalid_json":
            text = orjson.dumps(event)
            return GeneratedEvent(self.stream, text[: max(1, len(text) - rng.randint(3, 12))], None, key, defect)
        if defect == "missing_field":
            del event[rng.choice(MANDATORY_FIELDS[self.stream])]
        elif defect == "wrong_type":
            if self.stream == "user_activity":
                event["user_id"] = f"user-{event['user_id']}"
            elif self.stream == "purchase_events":
                event["amount"] = f"{event['amount']:.2f} {event['currency']}"
            else:
                event["correlation_id"] = rng.randint(1, 10**6)
        else:
            event[TIME_FIELDS[self.stream]] = rng.choice(["yesterday", "2025-13-45T25:61:00Z", "31/02/2025 10:00",
                                                          ""])
        return GeneratedEvent(self.stream, orjson.dumps(event), event, key, defect)


def generate_events(stream: str, n: int, seed: int = 0, bad_ratio: float = 0.01,
                    start: datetime = DEFAULT_START, interval_ms: float = 250.0) -> list[GeneratedEvent]:
    """``n`` demo events for ``stream``, fully deterministic for a given seed and start.

    Event times start at ``start`` and advance by about ``interval_ms`` each
    (with jitter). Use ``bad_ratio=0`` for only good events.
    """
    gen = EventGenerator(stream, seed=seed, bad_ratio=bad_ratio)
    clock_rng = random.Random(seed + 1)
    now = start
    out = []
    for _ in range(n):
        now += timedelta(milliseconds=interval_ms * (0.5 + clock_rng.random()))
        out.append(gen.next(now))
    return out


def put_events(client, stream: str, events: list[GeneratedEvent]) -> int:
    """Write events with ``PutRecords`` (500 per call); returns how many were accepted."""
    accepted = 0
    for i in range(0, len(events), 500):
        chunk = events[i:i + 500]
        reply = client.put_records(StreamName=stream, Records=[{"Data": e.payload, "PartitionKey": e.partition_key}
                                                               for e in chunk])
        accepted += len(chunk) - int(reply.get("FailedRecordCount", 0))
    return accepted


@dataclass
class StreamStats:
    sent: int = 0
    bad: int = 0
    errors: int = 0
    last_error: str = ""


class Producer:
    """A daemon thread writing demo events to the sandbox streams at a steady rate.

    ``rate_per_s`` is per stream. Stops after ``max_events`` per stream (memory
    of the in-process server is bounded); ``stop()`` ends it promptly.
    ``streams`` names demo streams; ``targets`` ({stream name: demo kind})
    writes demo events of a kind to streams with other names instead.
    """

    def __init__(self, conn: AwsConnection, streams: tuple[str, ...] = DEMO_STREAMS, rate_per_s: float = 2.0,
                 bad_ratio: float = 0.01, seed: int | None = None, max_events: int = 200_000,
                 tick_s: float = 0.5, targets: dict[str, str] | None = None) -> None:
        self.conn = conn
        targets = targets or {s: s for s in streams}
        self.streams = tuple(targets)
        self.rate_per_s = rate_per_s
        self.max_events = max_events
        self.tick_s = tick_s
        self.generators = {name: EventGenerator(kind, None if seed is None else seed + i, bad_ratio)
                           for i, (name, kind) in enumerate(targets.items())}
        streams = self.streams
        self.stats = {s: StreamStats() for s in streams}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owed = {s: 0.0 for s in streams}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running or self.rate_per_s <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="helios-sandbox-producer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def produce_once(self, count: int | None = None) -> None:
        """Write one tick's worth of events (``count`` per stream if given)."""
        client = self.conn.client("kinesis")
        now = datetime.now(UTC)
        for stream, gen in self.generators.items():
            if count is None:
                self._owed[stream] += self.rate_per_s * self.tick_s
                n = int(self._owed[stream])
                self._owed[stream] -= n
            else:
                n = count
            stats = self.stats[stream]
            n = min(n, self.max_events - stats.sent)
            if n <= 0:
                continue
            events = [gen.next(now + timedelta(microseconds=i)) for i in range(n)]
            try:
                accepted = put_events(client, stream, events)
            except Exception as exc:  # keep producing; the UI shows the last error
                with self._lock:
                    stats.errors += 1
                    stats.last_error = str(exc)[:300]
                continue
            with self._lock:
                stats.sent += accepted
                stats.bad += sum(1 for e in events if e.defect)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.produce_once()
            self._stop.wait(max(0.0, self.tick_s - (time.monotonic() - started)))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"running": self.running, "rate_per_s": self.rate_per_s,
                    "streams": {s: vars(st).copy() for s, st in self.stats.items()}}


@dataclass
class Sandbox:
    """A moto server on 127.0.0.1 (free port) with demo streams and a producer.

    ``start()`` is idempotent. Pass ``endpoint_url`` to use an already running
    moto server instead of starting one. ``prefill`` events per stream are
    written at start so TRIM_HORIZON previews have data at once.
    """

    region: str = "us-east-1"
    shards: int = 2
    rate_per_s: float = 2.0
    bad_ratio: float = 0.01
    seed: int | None = None
    prefill: int = 200
    endpoint_url: str | None = None
    streams: tuple[str, ...] = DEMO_STREAMS
    _server: Any = field(default=None, repr=False)
    producer: Producer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def started(self) -> bool:
        return self.endpoint_url is not None and self.producer is not None

    def start(self) -> Sandbox:
        with self._lock:
            if self.started:
                return self
            if self.endpoint_url is None:
                self._server, self.endpoint_url = _start_moto_server()
            self._create_streams()
            self.producer = Producer(self.connection(), self.streams, self.rate_per_s, self.bad_ratio, self.seed)
            if self.prefill:
                self._prefill()
            self.producer.start()
            return self

    def _create_streams(self) -> None:
        client = self.client("kinesis")
        with aws_errors("kinesis:CreateStream", self.connection()):
            existing = set(client.list_streams(Limit=1000).get("StreamNames", []))
            for name in self.streams:
                if name not in existing:
                    client.create_stream(StreamName=name, ShardCount=self.shards,
                                         StreamModeDetails={"StreamMode": "PROVISIONED"})

    def _prefill(self) -> None:
        client = self.client("kinesis")
        start = datetime.now(UTC) - timedelta(seconds=self.prefill / max(self.rate_per_s, 0.1))
        for i, stream in enumerate(self.streams):
            seed = None if self.seed is None else self.seed + 100 + i
            events = generate_events(stream, self.prefill, seed=seed if seed is not None else random.randrange(10**9),
                                     bad_ratio=self.bad_ratio, start=start,
                                     interval_ms=1000.0 / max(self.rate_per_s, 0.1))
            with aws_errors("kinesis:PutRecords", self.connection()):
                accepted = put_events(client, stream, events)
            if self.producer is not None and stream in self.producer.stats:
                self.producer.stats[stream].sent += accepted
                self.producer.stats[stream].bad += sum(1 for e in events if e.defect)

    def stop(self) -> None:
        """Stop the producer and the server this sandbox started."""
        with self._lock:
            if self.producer is not None:
                self.producer.stop()
            if self._server is not None:
                self._server.stop()
                self._server = None
                self.endpoint_url = None
            self.producer = None

    def connection(self) -> AwsConnection:
        if self.endpoint_url is None:
            raise AwsError("The sandbox is not running.", "Start it on the Connect page.")
        return AwsConnection(region=self.region, access_key_id=SANDBOX_KEY, secret_access_key=SANDBOX_KEY,
                             endpoint_url=self.endpoint_url, sandbox=True)

    def session(self):
        """A boto3 Session with the sandbox's credentials and region (pass ``endpoint_url`` to clients)."""
        return self.connection().session()

    def client(self, service: str):
        """A boto3 client for ``service`` (kinesis, s3, sts, …) pointed at the sandbox."""
        return self.connection().client(service)

    def status(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint_url, "region": self.region, "streams": list(self.streams),
                "producer": self.producer.snapshot() if self.producer else None}


# moto's Kinesis is not thread-safe: GetRecords iterates a shard's OrderedDict while PutRecords (the producer)
# adds to it, which fails the request with "OrderedDict mutated during iteration" (a 500, a traceback in the
# log, a retry). The sandbox serves Kinesis calls one at a time; moto's state is per process, so one lock.
_KINESIS_LOCK = threading.Lock()


class _SerialKinesis:
    """WSGI middleware: Kinesis requests (``X-Amz-Target: Kinesis_…``) run one at a time, other services freely."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("Kinesis_"):
            return self.app(environ, start_response)
        with _KINESIS_LOCK:
            return list(self.app(environ, start_response))  # the body is built inside the lock too


class _MotoServer:
    """moto's server app on 127.0.0.1 (a free port) in a daemon thread, Kinesis serialised."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        app = _SerialKinesis(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="helios-sandbox-moto", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


def _start_moto_server() -> tuple[Any, str]:
    # werkzeug logs every request at INFO: keep the app's and CLI's output clean.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = _MotoServer()
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


_sandbox: Sandbox | None = None
_sandbox_lock = threading.Lock()


def get_sandbox(start: bool = True) -> Sandbox:
    """The process-wide sandbox (one per process), started on first use.

    It lives here rather than in the runtime because the CLI starts it without
    opening ClickHouse. ``HELIOS_SANDBOX_RATE`` sets events per second per
    stream (default 2; 0 disables the background producer); ``HELIOS_SANDBOX_SEED`` makes its events repeatable.
    """
    global _sandbox
    with _sandbox_lock:
        if _sandbox is None:
            settings = get_settings()
            _sandbox = Sandbox(rate_per_s=settings.sandbox_rate, seed=settings.sandbox_seed)
        sandbox = _sandbox
    return sandbox.start() if start else sandbox


def sandbox_if_running() -> Sandbox | None:
    sandbox = _sandbox
    return sandbox if sandbox is not None and sandbox.started else None
