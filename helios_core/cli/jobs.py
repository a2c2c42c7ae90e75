"""Commands: ``jobs create|register-owner|upload|infer-schema|confirm-schema|submit|status|result|analyze|list``
and ``load-dump``.

``jobs create`` makes an analysis job (the QueryShield seed) when given the seed's fields (``--analysis-name``,
``--query-sql``, ``--security-level``, ``--cloud-providers``, ``--schema``, or ``--file job.json``), and an
import job otherwise.

Uploads live in S3: AWS from boto3's standard chain (or ``HELIOS_AWS_ENDPOINT_URL``
for an S3-compatible server), in the bucket ``HELIOS_IMPORT_BUCKET`` (created
when missing). Without any AWS configuration the in-process sandbox is used,
which lives only as long as the command. ``jobs submit`` waits for the load to
finish (the embedded engine belongs to this process) and reports the outcome.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from helios_core.cli import acting_user
from helios_core.errors import ValidationError
from helios_core.pgdump import line_source, load_dump, plan_dump
from helios_core.runtime import get_clickhouse


def _load_dump(args: argparse.Namespace) -> Any:
    source = line_source(Path(args.file))
    if args.plan:
        return plan_dump(source).to_json()
    return load_dump(get_clickhouse(), source, args.database, replace=args.replace, origin=Path(args.file).name,
                     source="import").to_json()


def _service():
    from helios_core.jobs import get_job_service
    return get_job_service()


def _create(args: argparse.Namespace) -> Any:
    spec: dict[str, Any] = {}
    if args.spec:
        try:
            spec = json.loads(args.spec)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"--spec is not valid JSON ({exc.msg}).") from exc
        if not isinstance(spec, dict):
            raise ValidationError("--spec must be a JSON object.")
    if args.file:
        spec.update(_json_file(args.file))
    for key in ("name", "format", "target", "database", "table", "bucket", "analysis_name", "query_sql",
                "security_level", "min_owners", "min_rows", "max_rows_per_owner", "epsilon", "epsilon_budget"):
        value = getattr(args, key)
        if value not in (None, ""):
            spec[key] = value
    if args.cloud_providers:
        spec["cloud_providers"] = [p.strip() for p in args.cloud_providers.split(",") if p.strip()]
    for key in ("schema", "bounds"):
        if getattr(args, key):
            spec[key] = _json_arg(getattr(args, key), f"--{key}")
    job = _service().create(spec, acting_user(args))
    return {"job_id": job.id}


def _json_arg(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{flag} is not valid JSON ({exc.msg}).", 'Example: --schema \'{"speed": "mph"}\'') \
            from exc


def _json_file(name: str) -> dict[str, Any]:
    path = Path(name)
    if not path.is_file():
        raise ValidationError(f"There is no file {path}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path} is not a JSON object of the job's fields ({exc}).") from exc
    if not isinstance(data, dict):
        raise ValidationError(f"{path} must hold one JSON object.")
    return data


def _result(args: argparse.Namespace) -> Any:
    from helios_core.analysis import get_result
    _service().wait_idle(args.timeout)
    return get_result(get_clickhouse(), args.job_id, acting_user(args))


def _analyze(args: argparse.Namespace) -> Any:
    from helios_core.analysis import check_sql, run_query
    if args.check:
        return check_sql(get_clickhouse(), args.job_id, args.sql, acting_user(args))
    return run_query(_service(), args.job_id, args.sql, user=acting_user(args))


def _register(args: argparse.Namespace) -> Any:
    return _service().register_owner(args.job_id or args.job_id_opt, args.data_owner or args.owner_opt,
                                      files=args.files, expires_in=args.expires, user=acting_user(args))


def _upload(args: argparse.Namespace) -> Any:
    path = Path(args.file)
    if not path.is_file():
        raise ValidationError(f"There is no file {path}.")
    upload = _service().upload(args.job_id, args.owner, path.name, path.read_bytes(), acting_user(args))
    return {"job_id": args.job_id, "data_owner": upload.owner, "key": upload.key, "size": upload.size}


def _infer(args: argparse.Namespace) -> Any:
    from helios_core.jobs import infer_job_schema
    job = infer_job_schema(_service(), args.job_id, acting_user(args))
    return {"job_id": job.id, "schema": [c.to_json() for c in job.schema], "order_by": job.order_by,
            "schema_confirmed": job.schema_confirmed}


def _confirm(args: argparse.Namespace) -> Any:
    from helios_core.jobs import confirm_schema
    columns = None
    if args.columns:
        try:
            columns = json.loads(args.columns)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"--columns is not valid JSON ({exc.msg}).") from exc
    order = [c.strip() for c in args.order_by.split(",") if c.strip()] if args.order_by else None
    job = confirm_schema(get_clickhouse(), args.job_id, columns, order, acting_user(args))
    return {"job_id": job.id, "schema_confirmed": job.schema_confirmed, "order_by": job.order_by}


def _submit(args: argparse.Namespace) -> Any:
    from helios_core.jobs import job_status
    service = _service()
    answer = service.submit(args.job_id, acting_user(args))
    service.wait_idle(args.timeout)
    status = job_status(get_clickhouse(), args.job_id, acting_user(args))
    answer["job_status"] = status["status"]
    answer.update({k: status[k] for k in ("error", "inserted", "quarantined") if k in status})
    return answer


def _status(args: argparse.Namespace) -> Any:
    from helios_core.jobs import job_status
    # Starting the service resumes or fails jobs a stop interrupted; a resumed load finishes before this
    # process (which owns the embedded engine) exits, instead of being interrupted again.
    _service().wait_idle(args.timeout)
    return job_status(get_clickhouse(), args.job_id, acting_user(args))


def _delete(args: argparse.Namespace) -> Any:
    from helios_core.jobs import delete_job
    return {"deleted": delete_job(get_clickhouse(), args.job_id, acting_user(args)).id}


def _list(args: argparse.Namespace) -> Any:
    from helios_core.jobs import job_summaries, list_jobs
    ch = get_clickhouse()
    return job_summaries(ch, list_jobs(ch, acting_user(args), all_users=args.all_users))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("load-dump", help="load a PostgreSQL plain dump (pg_dump -F p) into a new database")
    p.add_argument("file", help="the .sql file written by pg_dump -F p")
    p.add_argument("--database", required=True, help="the ClickHouse database to create")
    p.add_argument("--replace", action="store_true", help="drop the database first if it exists")
    p.add_argument("--plan", action="store_true", help="only show the tables, types and unsupported statements")
    p.set_defaults(handler=_load_dump)

    p = sub.add_parser("jobs", help="import jobs: data owners upload through presigned URLs, Helios loads")
    js = p.add_subparsers(dest="jobs_command", required=True)

    c = js.add_parser("create", help='create a job; prints {"job_id": …}')
    c.add_argument("--name")
    c.add_argument("--format", help="csv, jsonl, parquet or pg_dump")
    c.add_argument("--target", help="existing (table), new (table, schema from the first upload) or database (dumps)")
    c.add_argument("--database")
    c.add_argument("--table")
    c.add_argument("--bucket", help="the S3 bucket for uploads (default: HELIOS_IMPORT_BUCKET or Helios's own)")
    c.add_argument("--spec", help="all of the above as one JSON object")
    c.add_argument("--analysis-name", help="analysis job: its name (the seed's analysis_name)")
    c.add_argument("--query-sql", help="analysis job: the aggregate query over the job's table")
    c.add_argument("--security-level", help="analysis job: semi or mal")
    c.add_argument("--cloud-providers", help="analysis job: aws,gcp,azure (comma-separated)")
    c.add_argument("--schema", help='analysis job: column → unit as JSON, e.g. \'{"speed": "mph"}\'')
    c.add_argument("--bounds", help='mal: column → [low, high] as JSON, e.g. \'{"speed": [0, 200]}\'')
    c.add_argument("--min-owners", type=int)
    c.add_argument("--min-rows", type=int)
    c.add_argument("--max-rows-per-owner", type=int)
    c.add_argument("--epsilon", type=float, help="mal: ε spent by each analysis")
    c.add_argument("--epsilon-budget", type=float, help="mal: the job's total ε")
    c.add_argument("--file", help="the job's fields as a JSON file (flags override it)")
    c.set_defaults(handler=_create)

    r = js.add_parser("register-owner", help='presigned PUT URLs for a data owner; prints {"presigned_urls", "job_id"}')
    r.add_argument("job_id", nargs="?")
    r.add_argument("data_owner", nargs="?")
    r.add_argument("--job-id", dest="job_id_opt")
    r.add_argument("--data-owner", dest="owner_opt")
    r.add_argument("--files", type=int, default=1, help="how many files the owner may upload (URLs)")
    r.add_argument("--expires", type=int, default=3600, help="seconds the URLs stay valid")
    r.set_defaults(handler=_register)

    u = js.add_parser("upload", help="upload your own file to a job (as owner --owner)")
    u.add_argument("job_id")
    u.add_argument("file")
    u.add_argument("--owner", default="analyst")
    u.set_defaults(handler=_upload)

    i = js.add_parser("infer-schema", help="propose the new table's columns from the first upload")
    i.add_argument("job_id")
    i.set_defaults(handler=_infer)

    k = js.add_parser("confirm-schema", help="accept the proposed (or given) columns for the new table")
    k.add_argument("job_id")
    k.add_argument("--columns", help="the columns as JSON [{name, type, json_path}, …] (default: as proposed)")
    k.add_argument("--order-by", help="sorting key columns, comma-separated (default: as proposed)")
    k.set_defaults(handler=_confirm)

    s = js.add_parser("submit", help='submit and wait; prints {"status": "success", "job_id", "job_status", …}')
    s.add_argument("job_id")
    s.add_argument("--timeout", type=float, default=None, help="stop waiting after this many seconds")
    s.set_defaults(handler=_submit)

    t = js.add_parser("status", help='the job\'s stage; prints {"status", "job_id"} (+ "error" on Fail)')
    t.add_argument("job_id")
    t.add_argument("--timeout", type=float, default=None, help="wait at most this long for resumed jobs")
    t.set_defaults(handler=_status)

    res = js.add_parser("result", help="an analysis job's released result (aggregates, withheld rows, thresholds)")
    res.add_argument("job_id")
    res.add_argument("--timeout", type=float, default=None, help="wait at most this long for a running job")
    res.set_defaults(handler=_result)

    an = js.add_parser("analyze", help="run (or --check) another analysis on a finished analysis job")
    an.add_argument("job_id")
    an.add_argument("sql")
    an.add_argument("--check", action="store_true", help="only give the verdict of the checks")
    an.set_defaults(handler=_analyze)

    d = js.add_parser("delete", help="forget a job that is not running (loaded data stays in its table)")
    d.add_argument("job_id")
    d.set_defaults(handler=_delete)
    ls = js.add_parser("list", help="the acting user's import and analysis jobs")
    ls.add_argument("--all-users", action="store_true", help="every user's jobs (admins)")
    ls.set_defaults(handler=_list)
