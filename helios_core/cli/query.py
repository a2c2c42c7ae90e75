"""Commands: ``databases``, ``query``, ``demo load``."""

from __future__ import annotations

import argparse

from helios_core.clickhouse import list_databases
from helios_core.demo import load_demo
from helios_core.runtime import get_clickhouse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("databases", help="databases and their tables, as {database: [tables]}")
    p.add_argument("--all", action="store_true", help="include system databases")
    p.set_defaults(handler=lambda a: list_databases(get_clickhouse(), include_system=a.all))

    p = sub.add_parser("query", help="run SQL (read-only unless --write) and print the seed's /api/query shape")
    p.add_argument("sql")
    p.add_argument("--write", action="store_true", help="allow statements that change data")
    p.add_argument("--limit", type=int, default=None,
                   help="at most this many rows (1 or more; the result says truncated when more existed)")
    p.set_defaults(handler=lambda a: get_clickhouse().query(a.sql, write=a.write, limit=a.limit).to_api())

    p = sub.add_parser("demo", help="the demo dataset")
    demo_sub = p.add_subparsers(dest="demo_command", required=True)
    load = demo_sub.add_parser("load", help="create the demo database (a no-op when present)")
    load.add_argument("--replace", action="store_true", help="drop and re-create it")
    load.set_defaults(handler=lambda a: load_demo(get_clickhouse(), replace=a.replace).to_json())
