"""Shared fixtures: a real embedded ClickHouse in a temporary directory.

The embedded engine allows one data directory per process, so the whole test
session (core tests and AppTest page tests alike) shares one, chosen here
before anything reads the settings.

Tests that hold on a loaded machine (the suite shares 2 cores with other work):

* Nothing waits with a fixed sleep. Every wait goes through ``helpers.wait_until``
  (``from helpers import wait_until, WAIT, APPTEST_TIMEOUT``): it polls a condition
  and fails at a generous deadline (``WAIT``, 180 s) with the last value it saw.
  AppTests use ``default_timeout=APPTEST_TIMEOUT`` (180 s).
* One process-wide ingest manager: the first AppTest that runs ``app.py`` starts it,
  and from then on its supervisor starts a consumer for every source whose status
  is "running", every few seconds. Two guards keep it from touching other tests'
  sources:
  - ``_no_source_outlives_its_test`` (autouse): a source a test created and left
    running is paused (and its consumer stopped) when the test ends, so no later
    manager (the app's, or one a test builds) ingests a stream that is gone.
  - ``ingest_by_hand``: a test that drives ``SourceConsumer`` (or its own
    ``IngestManager``) itself asks for this fixture; the process-wide manager is
    stopped for the test, so its consumer is the only one reading the test's
    sources. The next page run starts the manager again (``get_ingest_manager``).

Proving it under load (see tests/README.md): run the tests three times in a row
beside two CPU-bound processes, e.g.::

    stress --cpu 2 & STRESS=$!
    for i in 1 2 3; do timeout 3600 python -m pytest -q -x || break; done
    kill $STRESS
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import APPTEST_TIMEOUT, WAIT

ROOT = Path(__file__).resolve().parent.parent
_DATA_DIR = Path(tempfile.mkdtemp(prefix="helios-test-"))


def pytest_configure(config: pytest.Config) -> None:
    os.environ["HELIOS_DATA_DIR"] = str(_DATA_DIR)
    os.environ.pop("HELIOS_CLICKHOUSE_URL", None)
    os.environ.setdefault("HELIOS_QUERY_TIMEOUT", "60")  # generous: the machine may be busy
    # The sandbox's random bad events can outvote a column's type in a small sample now and then: the same
    # events every run, so a test of what inference makes of them passes or fails for good.
    os.environ.setdefault("HELIOS_SANDBOX_SEED", "11")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _stop_services_before_cleanup():
    """At the end of the session, stop the process services (ingest manager, job runner, sandbox producer)
    while the data dir still exists: pytest_unconfigure deletes it, and a supervisor still polling the
    engine then would print FILE_DOESNT_EXIST after the summary line."""
    yield
    from helios_core import runtime as runtime_module
    from helios_core.sandbox import sandbox_if_running

    current = runtime_module._runtime  # never create a runtime just to stop it
    services = list(current.services.values()) if current is not None else []
    services += [s for s in (sandbox_if_running(),) if s is not None]
    for service in services:
        stop = getattr(service, "shutdown", None) or getattr(service, "stop", None)
        if stop is not None:
            try:
                stop()
            except Exception:  # teardown: one stubborn service must not keep the others running
                pass


def _ingest_manager():
    """The process-wide ingest manager if this process has one (never created here)."""
    from helios_core import runtime as runtime_module
    current = runtime_module._runtime
    return current.services.get("ingest") if current is not None else None


@pytest.fixture(autouse=True)
def _no_source_outlives_its_test(request):
    """Sources a test created and left running are paused when it ends, and their consumers stopped.

    Otherwise the process-wide ingest manager (started by the first page test)
    keeps consuming them for the rest of the session — load on a busy machine,
    errors once the test's stream is deleted — and a manager a later test builds
    would start them too. Only tests that use ClickHouse can create sources.
    """
    callspec = getattr(request.node, "callspec", None)
    if "ch" not in request.fixturenames or (callspec is not None and "ch" in callspec.params):
        yield  # no ClickHouse (or a test parameter that happens to be called "ch")
        return
    from helios_core import sources
    ch = request.getfixturevalue("ch")
    before = {s.id for s in sources.list_sources(ch)}
    yield
    manager = _ingest_manager()
    for source in sources.list_sources(ch):
        if source.id in before or source.status != "running":
            continue
        if manager is not None:
            manager.stop_source(source.id)
        sources.pause_source(ch, source.id)


@pytest.fixture
def ingest_by_hand(ch):
    """For tests that run ``SourceConsumer`` (or their own ``IngestManager``) themselves.

    A source is "running" from the moment it is created, and the process-wide
    manager's supervisor would start a second consumer for it within seconds
    (sooner or later depending on the machine's load): two consumers on one
    shard insert overlapping batches under different tokens, so events land
    twice. The manager is stopped for the test; ``get_ingest_manager()`` (every
    page run) starts it again afterwards, with the test's sources already paused
    by ``_no_source_outlives_its_test``.
    """
    manager = _ingest_manager()
    if manager is not None and manager.running:
        manager.shutdown()
    yield


@pytest.fixture(scope="session")
def ch():
    from helios_core.runtime import get_clickhouse
    return get_clickhouse()


@pytest.fixture(scope="session")
def demo(ch):
    from helios_core.demo import load_demo
    return load_demo(ch)


@pytest.fixture(scope="session")
def app_path() -> str:
    return str(ROOT / "app.py")


@pytest.fixture
def open_page(app_path, ch):
    """``open_page("pages/x.py")``: the app run through app.py, switched to that page, with no exception."""
    from streamlit.testing.v1 import AppTest

    def open_(page: str, timeout: float = APPTEST_TIMEOUT) -> AppTest:
        at = AppTest.from_file(app_path, default_timeout=timeout).run()
        at.switch_page(page).run()
        assert not at.exception, at.exception
        return at

    return open_


# ---- AWS: a real moto server on loopback (helios_core.aws / helios_core.sandbox) ----

@pytest.fixture(scope="session")
def moto_server():
    """A real moto server (ThreadedMotoServer) on 127.0.0.1, free port; yields its endpoint URL.

    moto keeps its state per process, so this server and the sandbox's see the
    same resources; tests use region ``eu-west-1`` (``aws_conn``) to stay apart
    from the sandbox's demo streams in ``us-east-1``.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def aws_conn(moto_server):
    """An AwsConnection (fake keys "testing", region eu-west-1) to ``moto_server``."""
    from helios_core.aws import AwsConnection
    return AwsConnection(region="eu-west-1", access_key_id="testing", secret_access_key="testing",
                         endpoint_url=moto_server)


@pytest.fixture
def dynamodb(aws_conn):
    """A boto3 DynamoDB resource on ``moto_server`` (mapping and lease tables)."""
    return aws_conn.session().resource("dynamodb", endpoint_url=aws_conn.endpoint_url)


@pytest.fixture
def mappings(dynamodb):
    """A fresh DynamoDB mapping table of its own (workers and Lambda read source definitions there)."""
    import uuid

    from helios_core.ingest.mapping import MappingStore

    store = MappingStore(dynamodb, f"helios-sources-{uuid.uuid4().hex[:6]}")
    store.ensure_table()
    return store


@pytest.fixture(scope="session")
def aws_sandbox():
    """The process-wide sandbox (helios_core.sandbox.get_sandbox()): demo streams prefilled, producer running.

    It is the same object the pages get, so AppTests and core tests share it.
    ``aws_sandbox.connection()`` gives its AwsConnection, ``.client("s3")`` a client.
    """
    from helios_core.sandbox import get_sandbox
    sandbox = get_sandbox()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def kinesis_stream(aws_conn):
    """Factory: ``kinesis_stream(payloads, shards=2, name=None) -> name`` creates a stream on ``aws_conn``
    and puts the payloads (bytes, or GeneratedEvent from helios_core.sandbox.generate_events)."""
    import uuid

    created: list[str] = []

    def make(payloads=(), shards: int = 2, name: str | None = None) -> str:
        client = aws_conn.client("kinesis")
        name = name or f"test_{uuid.uuid4().hex[:10]}"
        client.create_stream(StreamName=name, ShardCount=shards)
        records = [{"Data": getattr(p, "payload", p), "PartitionKey": getattr(p, "partition_key", str(i))}
                   for i, p in enumerate(payloads)]
        for i in range(0, len(records), 500):
            client.put_records(StreamName=name, Records=records[i:i + 500])
        created.append(name)
        return name

    yield make
    client = aws_conn.client("kinesis")
    for name in created:
        try:
            client.delete_stream(StreamName=name)
        except Exception:
            pass


@pytest.fixture
def moto_auth(moto_server, aws_conn):
    """Turn on moto's IAM checks for one test; yields keys of an IAM user with no permissions.

    Process-wide while it lasts (moto has one setting): other clients, such as
    the sandbox producer, get auth errors until the test ends.
    """
    import urllib.request
    import uuid

    iam = aws_conn.client("iam")
    user = f"analyst-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]

    def set_auth(value: bytes) -> None:
        request = urllib.request.Request(f"{moto_server}/moto-api/reset-auth", data=value, method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=WAIT).read()

    set_auth(b"0")
    try:
        yield {"user": user, "access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    finally:
        set_auth(b"inf")
