"""``python -m helios_core.ingest``: run every running source headless until interrupted."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from helios_core.errors import HeliosError


def ingest_config(args: argparse.Namespace) -> Any:
    """The consumers' batching, from --batch-rows / --flush-seconds (an IngestConfig)."""
    from helios_core.ingest.consumer import IngestConfig

    config = IngestConfig()
    if args.batch_rows:
        config.batch_rows = args.batch_rows
    if args.flush_seconds:
        config.flush_seconds = args.flush_seconds
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helios_core.ingest",
                                     description="Ingest every running Helios source until stopped (Ctrl+C).")
    parser.add_argument("--batch-rows", type=int, default=None, help="flush at this many records")
    parser.add_argument("--flush-seconds", type=float, default=None, help="flush after this many seconds")
    parser.add_argument("--status-every", type=float, default=30.0, help="print a status line this often (s)")
    workers = parser.add_argument_group("several workers sharing the shards (sources in mode 'workers')")
    workers.add_argument("--worker-id", help="run as this worker: shards are divided by leases in DynamoDB")
    workers.add_argument("--lease-timeout", type=float, default=10.0,
                         help="seconds after which a lease that was not renewed is taken over (default 10)")
    workers.add_argument("--lease-table", default="helios-leases", help="DynamoDB table of leases")
    workers.add_argument("--mapping-table", default="helios-sources", help="DynamoDB table of source definitions")
    workers.add_argument("--api-url", help="write through this Helios process's HTTP API (token from "
                                           "HELIOS_API_TOKEN) instead of a ClickHouse server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.worker_id:
        return run_worker(args)
    try:
        from helios_core.ingest.manager import IngestManager
        from helios_core.runtime import get_runtime
        runtime = get_runtime()
        config = ingest_config(args)
        manager = runtime.service("ingest", lambda: IngestManager(runtime.clickhouse, config))
        manager.start()
    except HeliosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"ingesting {len(manager.consumers)} source(s); Ctrl+C stops", file=sys.stderr)
    try:
        while not done.wait(args.status_every):
            for source_id in list(manager.metrics):
                m = manager.metrics_for(source_id)
                print(f"{source_id}: inserted={m['rows_inserted']} quarantined={m['rows_quarantined']} "
                      f"behind={m['millis_behind']}ms errors={m['errors']}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    manager.shutdown()
    print("stopped cleanly", file=sys.stderr)
    return 0


def run_worker(args: argparse.Namespace) -> int:
    """One headless worker until SIGTERM/Ctrl+C; on a clean stop its leases are handed back at once."""
    from helios_core.aws import connection_from_settings
    from helios_core.config import get_settings
    from helios_core.ingest.leases import LeaseTable
    from helios_core.ingest.mapping import MappingStore
    from helios_core.ingest.remote import RemoteClickHouse
    from helios_core.ingest.worker import Worker, WorkerConfig

    settings = get_settings()
    if args.api_url:
        token = settings.api_token or ""
        if not token:
            print("error: --api-url needs a write token in HELIOS_API_TOKEN "
                  "(python -m helios_core tokens create --name worker --write)", file=sys.stderr)
            return 3
        clickhouse: Callable[[], Any] = lambda: RemoteClickHouse(args.api_url, token)  # noqa: E731
    elif not settings.embedded:
        import clickhouse_connect

        clickhouse = lambda: clickhouse_connect.get_client(dsn=settings.clickhouse_url,  # noqa: E731
                                                           autogenerate_session_id=False)
    else:
        print("error: workers need a ClickHouse server (HELIOS_CLICKHOUSE_URL) or --api-url of the Helios process "
              "that holds the embedded engine (it allows one process)", file=sys.stderr)
        return 3
    conn = connection_from_settings()
    resource = conn.dynamodb()
    config = ingest_config(args)
    worker = Worker(args.worker_id, lambda: conn.client("kinesis"), clickhouse,
                    MappingStore(resource, args.mapping_table), LeaseTable(resource, args.lease_table),
                    WorkerConfig(lease_timeout=args.lease_timeout, ingest=config))
    try:
        worker.start()
    except Exception as exc:
        print(f"error: the worker could not start: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"worker {args.worker_id} running; Ctrl+C stops", file=sys.stderr, flush=True)
    try:
        while not done.wait(args.status_every):
            held = sorted(worker.coordinator.held_keys())
            print(f"worker {args.worker_id}: leases {held}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    worker.stop()
    print("stopped cleanly", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
