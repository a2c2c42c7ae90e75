"""Commands: ``lambda package|deploy|template|status`` — a source's ingest on AWS Lambda.

The function writes to the ClickHouse server Helios itself uses (``HELIOS_CLICKHOUSE_URL``): that is
where the source's table was created. Its URL goes into Secrets Manager, never onto a command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from helios_core import serverless
from helios_core.cli.streams import add_aws_args, aws_connection
from helios_core.config import get_settings
from helios_core.errors import ValidationError
from helios_core.runtime import get_clickhouse
from helios_core.sources import Source, get_source


def lambda_options(args: argparse.Namespace) -> serverless.LambdaOptions:
    return serverless.LambdaOptions(batch_size=args.batch_size, batching_window_s=args.batching_window,
                                    bisect_on_error=not args.no_bisect,
                                    parallelization_factor=args.parallelization_factor,
                                    starting_position=args.lambda_start, mapping_table=args.mapping_table)


def add_lambda_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("AWS Lambda")
    g.add_argument("--batch-size", type=int, default=500, help="records per invocation (default 500)")
    g.add_argument("--batching-window", type=int, default=1, help="seconds to gather a batch (default 1)")
    g.add_argument("--parallelization-factor", type=int, default=1,
                   help="concurrent batches per shard: 1 (exactly-once needs one at a time)")
    g.add_argument("--no-bisect", action="store_true", help="don't split a batch when the function fails")
    g.add_argument("--lambda-start", choices=serverless.STARTING_POSITIONS, default="TRIM_HORIZON",
                   help="where the event source mapping starts reading")
    g.add_argument("--mapping-table", default=serverless.MappingStore.DEFAULT_TABLE,
                   help="the DynamoDB mapping table (created when missing)")
    g.add_argument("--template", action="store_true",
                   help="print a CloudFormation template instead of creating the resources")


def server_url() -> str:
    return serverless.clickhouse_url_for_lambda(get_settings())


def run_for_source(args: argparse.Namespace, source: Source) -> dict[str, Any]:
    """Deploy (or print the template for) one source; the CLI shape of the result."""
    if args.template:
        return serverless.deploy_or_template(None, source, lambda_options(args), template=True)
    with aws_connection(args) as conn:
        return serverless.deploy_or_template(conn, source, lambda_options(args), template=False,
                                             with_requirements=not getattr(args, "no_deps", False))


def _source(args: argparse.Namespace) -> Source:
    source = get_source(get_clickhouse(), args.source_id)
    if source.mode != "lambda":
        raise ValidationError(f"Source {source.id} is ingested by Helios itself (mode {source.mode!r}), not Lambda.",
                              "Create the table with `create-table --mode lambda`.")
    return source


def _package(args: argparse.Namespace) -> dict[str, Any]:
    path = serverless.package(Path(args.out), with_requirements=not args.no_deps)
    return {"zip": str(path), "bytes": path.stat().st_size, "handler": serverless.HANDLER,
            "runtime": serverless.RUNTIME}


def _deploy(args: argparse.Namespace) -> dict[str, Any]:
    return run_for_source(args, _source(args))


def _status(args: argparse.Namespace) -> dict[str, Any]:
    source = _source(args)
    with aws_connection(args) as conn:
        state = serverless.status(conn, source)
    return {"sourceId": source.id, "state": state.state, "lastProcessingResult": state.last_result,
            "iteratorAgeMs": state.iterator_age_ms}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lambda", help="ingest a source with AWS Lambda: package, deploy, template, status")
    action = p.add_subparsers(dest="lambda_action", metavar="ACTION", required=True)
    pkg = action.add_parser("package", help="build the function's zip (helios_core + its requirements)")
    pkg.add_argument("--out", default="helios-lambda.zip")
    pkg.add_argument("--no-deps", action="store_true", help="helios_core only (add the requirements as a layer)")
    pkg.set_defaults(handler=_package)
    for name, handler, text in (("deploy", _deploy, "create or update the source's Lambda resources"),
                                ("template", _deploy, "print the source's resources as CloudFormation")):
        q = action.add_parser(name, help=text)
        q.add_argument("source_id")
        q.add_argument("--no-deps", action="store_true", help=argparse.SUPPRESS)
        add_lambda_args(q)
        add_aws_args(q)
        q.set_defaults(handler=handler, template=name == "template")
    st = action.add_parser("status", help="the event source mapping's state and IteratorAge")
    st.add_argument("source_id")
    add_aws_args(st)
    st.set_defaults(handler=_status)
