"""Commands: ``reports run|sql|save|list|show|delete``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from helios_core.cli import acting_user
from helios_core.errors import ValidationError
from helios_core.export import to_csv_bytes
from helios_core.report_filters import parse_conditions
from helios_core.reports import (
    PRESETS,
    ReportDefinition,
    compile_report,
    delete_report,
    get_report,
    list_reports,
    report_json,
    run_report,
    save_report,
    share_report,
)
from helios_core.runtime import get_clickhouse


def _definition(args: argparse.Namespace) -> ReportDefinition:
    chosen = [x for x in (args.definition, args.file, args.preset, args.id) if x]
    if len(chosen) != 1:
        raise ValidationError("Give exactly one of --definition, --file, --preset or --id.",
                              "Example: reports run --preset captcha")
    if args.definition:
        definition = ReportDefinition.from_json(args.definition)
    elif args.file:
        try:
            definition = ReportDefinition.from_json(Path(args.file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValidationError(f"Cannot read {args.file}: {exc.strerror}.") from exc
    elif args.preset:
        definition = PRESETS[args.preset]()
    else:
        definition = get_report(get_clickhouse(), args.id, acting_user(args)).definition
    for text in args.where or []:
        definition.filters.extend(parse_conditions(text))
    return definition


def _add_definition_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--definition", help="the report definition as JSON")
    p.add_argument("--file", help="a file holding the definition as JSON")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a built-in report")
    p.add_argument("--id", help="a saved report's id")
    p.add_argument("--where", action="append", metavar="CONDITION",
                   help="an extra filter, e.g. \"site_id = 3f1c…\" or \"type in serve, solve\" (repeatable)")


def _run(args: argparse.Namespace) -> Any:
    compiled, result = run_report(get_clickhouse(), _definition(args))
    if args.format == "csv":
        sys.stdout.write(to_csv_bytes(result.frame).decode("utf-8"))
        return None
    return report_json(compiled, result)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reports", help="reports: run, save and list report definitions")
    rs = p.add_subparsers(dest="reports_command", required=True)

    run = rs.add_parser("run", help="run a report and print {metadata, data} (or CSV)")
    _add_definition_args(run)
    run.add_argument("--format", choices=("json", "csv"), default="json")
    run.set_defaults(handler=_run)

    sql = rs.add_parser("sql", help="print the SQL and bound parameters a report runs")
    _add_definition_args(sql)
    sql.set_defaults(handler=lambda a: compile_report(get_clickhouse(), _definition(a)).to_json())

    save = rs.add_parser("save", help="save a report definition; prints the saved report")
    _add_definition_args(save)
    save.add_argument("--name", help="the report's name (default: the definition's name)")
    save.add_argument("--replace-id", help="overwrite this saved report")
    save.set_defaults(handler=lambda a: save_report(get_clickhouse(), _definition(a), a.name,
                                                    a.replace_id, acting_user(a)).to_json())

    ls = rs.add_parser("list", help="saved reports (the acting user's and those shared with them)")
    ls.add_argument("--all-users", action="store_true", help="every user's reports (admins)")
    ls.set_defaults(handler=lambda a: [r.to_json() for r in list_reports(get_clickhouse(), acting_user(a),
                                                                         all_users=a.all_users)])

    show = rs.add_parser("show", help="one saved report")
    show.add_argument("report_id")
    show.set_defaults(handler=lambda a: get_report(get_clickhouse(), a.report_id, acting_user(a)).to_json())

    share = rs.add_parser("share", help="share a saved report read-only (e-mail addresses, or * for everyone)")
    share.add_argument("report_id")
    share.add_argument("--with", dest="shared_with", default="", help="comma-separated; empty stops sharing")
    share.set_defaults(handler=lambda a: share_report(get_clickhouse(), a.report_id, a.shared_with,
                                                      acting_user(a)).to_json())

    delete = rs.add_parser("delete", help="delete a saved report")
    delete.add_argument("report_id")

    def delete_handler(a: argparse.Namespace) -> dict[str, str]:
        delete_report(get_clickhouse(), a.report_id, acting_user(a))
        return {"deleted": a.report_id}
    delete.set_defaults(handler=delete_handler)
