"""``python -m helios_core.ingest``: run every running source headless until interrupted."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from helios_core.errors import HeliosError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helios_core.ingest",
                                     description="Ingest every running Helios source until stopped (Ctrl+C).")
    parser.add_argument("--batch-rows", type=int, default=None, help="flush at this many records")
    parser.add_argument("--flush-seconds", type=float, default=None, help="flush after this many seconds")
    parser.add_argument("--status-every", type=float, default=30.0, help="print a status line this often (s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        from helios_core.ingest.consumer import IngestConfig
        from helios_core.ingest.manager import IngestManager
        from helios_core.runtime import get_runtime
        runtime = get_runtime()
        config = IngestConfig()
        if args.batch_rows:
            config.batch_rows = args.batch_rows
        if args.flush_seconds:
            config.flush_seconds = args.flush_seconds
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


if __name__ == "__main__":
    sys.exit(main())
