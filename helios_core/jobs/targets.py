"""What an import job loads into: the checks on a new job's settings, and a new table's columns (inferred from the
first upload, confirmed by the analyst) and its creation when the job loads."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helios_core.clickhouse import SYSTEM_DATABASES, ClickHouse, table_exists
from helios_core.ddl import TableOptions, create_database_sql, create_table_sql, quarantine_name, validate_table
from helios_core.errors import ValidationError
from helios_core.identifiers import check_identifier
from helios_core.jobs.files import default_order_by, infer_file_schema
from helios_core.jobs.records import (
    FORMATS,
    TARGETS,
    Job,
    get_job,
    job_conflict,
    job_for_change,
    normalize_format,
    write_job,
)
from helios_core.metadata import METADATA_DB
from helios_core.schema import ColumnSpec
from helios_core.users import SYSTEM, User

if TYPE_CHECKING:
    from helios_core.jobs.service import JobService


def _database_has_tables(ch: ClickHouse, database: str) -> bool:
    rows = ch.internal_query("SELECT count() AS n FROM system.tables WHERE database = {d:String}", {"d": database})
    return bool(rows[0]["n"])


def validate_job_spec(ch: ClickHouse, spec: dict[str, Any]) -> dict[str, Any]:
    """The seed's create-job checks: every missing field listed at once, then invalid values."""
    spec = {k: (v.strip() if isinstance(v, str) else v) for k, v in (spec or {}).items()}
    fmt = normalize_format(spec.get("format"))
    target = str(spec.get("target") or ("database" if fmt == "pg_dump" else "")).strip().lower()
    missing = [k for k in ("name", "format", "target", "database") if not (fmt if k == "format" else
                                                                        target if k == "target" else spec.get(k))]
    if target in ("existing", "new") and not spec.get("table"):
        missing.append("table")
    if missing:
        raise ValidationError("missing necessary fields",
                              "Give the job a name, a format, a target and the target's database (and table).",
                              missing_fields=missing)
    problems: list[str] = []
    if fmt not in FORMATS:
        problems.append(f"Unknown format {spec.get('format')!r}; use one of {', '.join(FORMATS)}.")
    if target not in TARGETS:
        problems.append(f"Unknown target {target!r}; use existing (a table), new (a table) or database (dumps).")
    if fmt == "pg_dump" and target != "database":
        problems.append("A PostgreSQL dump loads into a new database (target database), one table per dump table.")
    if fmt in FORMATS and fmt != "pg_dump" and target == "database":
        problems.append("Only PostgreSQL dumps load into a whole database; choose an existing or a new table.")
    database, table = str(spec["database"]), str(spec.get("table") or "")
    problems += check_identifier(database, "database")
    if target in ("existing", "new"):
        problems += check_identifier(table, "table")
    if not problems and database in (METADATA_DB, *SYSTEM_DATABASES):
        problems.append(f"Helios does not import into the {database!r} database.")
    if not problems:
        if target == "existing" and not table_exists(ch, database, table):
            problems.append(f"The table {database}.{table} does not exist; choose target new to create it.")
        if target == "new" and (table_exists(ch, database, table) or
                                table_exists(ch, database, quarantine_name(table))):
            problems.append(f"The table {database}.{table} already exists; choose target existing or another name.")
        if target == "database" and _database_has_tables(ch, database):
            problems.append(f"The database {database} already has tables; a dump loads into a new database.")
    if problems:
        raise ValidationError(problems[0], "Fix the job's settings and create it again.", problems=problems)
    return {"name": str(spec["name"]), "format": fmt, "target": target, "database": database,
            "table": table if target != "database" else ""}


# ---- a new table: schema inferred from the first upload, then confirmed ----------------------------------


def infer_job_schema(service: JobService, job_id: str, user: User | None = None) -> Job:
    """Infer the new table's columns from the first upload; the analyst then confirms (or edits) them."""
    job = job_for_change(service.ch, job_id, user)
    if job.target != "new":
        raise ValidationError("Only a job with a new target table needs a schema.",
                              f"This job loads into the {job.target_label()}.")
    if job.submitted:
        raise job_conflict("The job has been submitted; its schema is fixed.", job.id)
    uploads = service.uploads(job)
    if not uploads:
        raise ValidationError("Nothing has been uploaded yet to infer a schema from.",
                              "Upload a file (or let a data owner PUT one), then infer again.")
    with tempfile.TemporaryDirectory(prefix="helios-infer-") as tmp:
        path = service.download(job, uploads[0], Path(tmp))
        try:
            inferred = infer_file_schema(job.format, path)
        except UnicodeDecodeError as exc:
            raise ValidationError(f"{uploads[0].file} is not UTF-8 text.") from exc
        except ValueError as exc:
            raise ValidationError(f"{uploads[0].file}: {exc}") from exc
    job.schema = [c for c in inferred.columns if not c.virtual]
    job.order_by = inferred.order_by or default_order_by(job.schema)
    job.schema_confirmed = False
    write_job(service.ch, job)
    return get_job(service.ch, job.id, SYSTEM)


def confirm_schema(ch: ClickHouse, job_id: str, columns: list[dict[str, Any] | ColumnSpec] | None = None,
                   order_by: list[str] | None = None, user: User | None = None) -> Job:
    """Accept the proposed (or edited) columns for the new table; checked by the DDL rules and ClickHouse."""
    job = job_for_change(ch, job_id, user)
    if job.target != "new":
        raise ValidationError("Only a job with a new target table has a schema to confirm.")
    if job.submitted:
        raise job_conflict("The job has been submitted; its schema is fixed.", job.id)
    specs = [c if isinstance(c, ColumnSpec) else ColumnSpec.from_json(c) for c in (columns or job.schema)]
    if not specs:
        raise ValidationError("missing necessary fields", "Infer the schema from an upload first.",
                              missing_fields=["schema"])
    order = list(order_by if order_by is not None else job.order_by)
    options = TableOptions(database=job.database, table=job.table, order_by=order, create_database=True)
    problems = validate_table(ch, options, specs)
    if problems:
        raise ValidationError(problems[0], "Fix the columns and confirm again.", problems=problems)
    job.schema, job.order_by, job.schema_confirmed = specs, order, True
    write_job(ch, job)
    return get_job(ch, job.id, SYSTEM)


def create_target_table(ch: ClickHouse, job: Job) -> None:
    """Create the confirmed new table (and its database) unless a resumed run already did."""
    if table_exists(ch, job.database, job.table):
        return
    ch.execute(create_database_sql(job.database))
    options = TableOptions(database=job.database, table=job.table, order_by=job.order_by, create_database=True)
    ch.execute(create_table_sql(options, job.schema))
