"""Commands: ``jobs create|register-owner|submit|status|list|run`` and ``load-dump``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from helios_core.clickhouse import get_clickhouse
from helios_core.pgdump import line_source, load_dump, plan_dump


def _load_dump(args: argparse.Namespace) -> Any:
    source = line_source(Path(args.file))
    if args.plan:
        return plan_dump(source).to_json()
    return load_dump(get_clickhouse(), source, args.database, replace=args.replace, origin=Path(args.file).name,
                     source="import").to_json()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("load-dump", help="load a PostgreSQL plain dump (pg_dump -F p) into a new database")
    p.add_argument("file", help="the .sql file written by pg_dump -F p")
    p.add_argument("--database", required=True, help="the ClickHouse database to create")
    p.add_argument("--replace", action="store_true", help="drop the database first if it exists")
    p.add_argument("--plan", action="store_true", help="only show the tables, types and unsupported statements")
    p.set_defaults(handler=_load_dump)
