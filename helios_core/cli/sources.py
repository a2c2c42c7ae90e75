"""Commands: ``create-table``, ``sources``, ``source show|pause|resume|delete|rules``.

Pausing, resuming, deleting and rules go through :mod:`helios_core.ingest.control`, like the pages and the API:
an ``app`` source's record changes (the app's manager follows it within seconds); ``workers`` and ``lambda``
sources are changed in AWS too, with ``--region``/``--profile``/``--endpoint-url`` as for the other commands.

``create-table`` runs the wizard's validation and creation: every problem is
listed (exit 3) before anything is created; an existing table is refused
(exit 5). It prints the seed's ``/api/create-table`` shape.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from helios_core.cli import acting_user
from helios_core.cli.serverless import add_lambda_args, run_for_source, server_url
from helios_core.cli.streams import add_aws_args, aws_connection
from helios_core.ddl import ENGINES, PARTITION_FUNCTIONS, TTL_UNITS
from helios_core.errors import ValidationError
from helios_core.ingest import control
from helios_core.runtime import get_clickhouse
from helios_core.schema import ColumnSpec
from helios_core.sources import (
    INGEST_MODES,
    START_POSITIONS,
    create_table_and_source,
    get_source,
    sources_to_api,
)
from helios_core.table_request import build_create_request, columns_from_json, order_list, parse_partition, parse_ttl


def read_schema_file(path: str) -> tuple[list[ColumnSpec], dict[str, Any]]:
    """Columns from a JSON file: ``helios_core infer`` output, ``{"inferredSchema": […]}``, or a list."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValidationError(f"Cannot read the schema file {path}: {exc.strerror}.") from exc
    except json.JSONDecodeError as exc:
        raise ValidationError(f"The schema file {path} is not JSON: {exc}.") from exc
    return columns_from_json(data, f"The schema file {path}")


def _create_table(args: argparse.Namespace) -> dict[str, Any]:
    columns, suggested = read_schema_file(args.schema)
    order_by = order_list(args.order_by) if args.order_by else suggested.get("order_by") or []
    partition = parse_partition(args.partition_by or suggested.get("partition_by") or None)
    ch = get_clickhouse()
    if args.mode == "lambda" and not args.template:
        server_url()  # refuse before anything is created when AWS could not reach this ClickHouse
    with aws_connection(args) as conn:
        request = build_create_request(ch, conn, stream=args.stream, database=args.database, table=args.table,
                                       columns=columns, order_by=order_by, partition=partition,
                                       ttl=parse_ttl(args.ttl), engine=args.engine,
                                       version_column=args.version_column or "",
                                       start_position=args.start_position,
                                       start_timestamp=args.start_timestamp or "", stream_arn=args.stream_arn or "",
                                       cluster=args.cluster or "", distributed=args.distributed, mode=args.mode)
    result = create_table_and_source(ch, request, acting_user(args)).to_api()
    if args.mode == "lambda":
        result.update(run_for_source(args, get_source(ch, result["sourceId"])))
    elif args.mode == "workers":
        with aws_connection(args) as conn:
            control.publish_new_workers_source(ch, result["sourceId"], conn, args.mapping_table)
        result["mappingTable"] = args.mapping_table
    return result


def _rules(args: argparse.Namespace) -> dict[str, Any]:
    try:
        rules = json.loads(args.rules)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"--rules is not JSON: {exc}.",
                              'Example: {"event_type": {"allowed_values": ["click", "view"]}}') from exc
    with aws_connection(args) as conn:  # workers and Lambda sources get the rules through DynamoDB
        return control.update_rules(get_clickhouse(), args.id, rules, acting_user(args), aws=conn).to_api()


def _pause(args: argparse.Namespace) -> dict[str, Any]:
    with aws_connection(args) as conn:
        return control.pause(get_clickhouse(), args.id, acting_user(args), aws=conn).to_api()


def _resume(args: argparse.Namespace) -> dict[str, Any]:
    with aws_connection(args) as conn:
        return control.resume(get_clickhouse(), args.id, acting_user(args), aws=conn).to_api()


def _delete(args: argparse.Namespace) -> dict[str, Any]:
    with aws_connection(args) as conn:
        source = control.delete(get_clickhouse(), args.id, args.drop_table, acting_user(args), aws=conn)
    return {"deleted": source.id, "droppedTable": args.drop_table}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("create-table", help="create a table + quarantine table from a schema file and a source "
                                            "for a stream (the seed's /api/create-table)")
    p.add_argument("--stream", required=True, help="the Kinesis stream that feeds the table")
    p.add_argument("--database", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--schema", required=True, help="JSON file: `python -m helios_core infer` output or a column list")
    p.add_argument("--order-by", help="sorting key columns, comma-separated (default: the schema's suggestion, "
                                      "else its time column, else tuple(); the response says which)")
    p.add_argument("--partition-by", help="COLUMN, or FUNCTION(COLUMN) with FUNCTION one of "
                                          + ", ".join(f for f in PARTITION_FUNCTIONS if f))
    p.add_argument("--engine", choices=ENGINES, default="MergeTree")
    p.add_argument("--version-column", help="ReplacingMergeTree's version column")
    p.add_argument("--ttl", help=f"COLUMN:AMOUNT:UNIT, UNIT one of {', '.join(TTL_UNITS)}")
    p.add_argument("--start-position", choices=START_POSITIONS, default="TRIM_HORIZON")
    p.add_argument("--start-timestamp", help="ISO time for AT_TIMESTAMP")
    p.add_argument("--stream-arn", help="skip looking the stream up in AWS and use this ARN")
    p.add_argument("--cluster", help="create the tables ON CLUSTER with replicated engines (a ClickHouse server)")
    p.add_argument("--distributed", action="store_true",
                   help="with --cluster: TABLE is a Distributed table over TABLE_local on every shard")
    p.add_argument("--mode", choices=INGEST_MODES, default="app",
                   help="who ingests: this Helios (app, default), headless workers sharing the shards "
                        "(workers: `python -m helios_core.ingest --worker-id ID`), or an AWS Lambda function "
                        "deployed now (lambda)")
    add_lambda_args(p)
    add_aws_args(p)
    p.set_defaults(handler=_create_table)

    p = sub.add_parser("sources", help="sources with their status (the seed's /api/sources)")
    p.set_defaults(handler=lambda a: sources_to_api(get_clickhouse()))

    p = sub.add_parser("source", help="show, pause, resume, delete a source or change its rules")
    action = p.add_subparsers(dest="source_command", required=True)
    show = action.add_parser("show", help="the full source record")
    show.add_argument("id")
    show.set_defaults(handler=lambda a: get_source(get_clickhouse(), a.id).to_json())
    for name, handler, text in (("pause", _pause, "pause ingestion (workers and Lambda too, through AWS)"),
                                ("resume", _resume, "resume ingestion")):
        q = action.add_parser(name, help=text)
        q.add_argument("id")
        add_aws_args(q)
        q.set_defaults(handler=handler)
    delete = action.add_parser("delete", help="delete the source (keeps the table unless --drop-table); a Lambda "
                                              "source's function, event source mapping, role and secret go too")
    delete.add_argument("id")
    delete.add_argument("--drop-table", action="store_true", help="also drop the table and its quarantine table")
    add_aws_args(delete)
    delete.set_defaults(handler=_delete)
    rules = action.add_parser("rules", help='change validation rules: --rules \'{"col": {"required": true}}\'')
    rules.add_argument("id")
    rules.add_argument("--rules", required=True)
    add_aws_args(rules)
    rules.set_defaults(handler=_rules)
