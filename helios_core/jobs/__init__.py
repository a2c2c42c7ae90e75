"""Import jobs: data owners upload through write-only presigned S3 URLs, Helios loads, validates, quarantines.

The QueryShield seed's lifecycle, for data instead of VMs:

* ``create`` — a name, a format (CSV, JSON lines, Parquet, PostgreSQL plain
  dump) and a target: an existing table, a new table whose schema is inferred
  from the first upload and confirmed by the analyst, or (dumps) a new database.
* ``register_owner`` — presigned ``PUT`` URLs for that owner's objects in the
  bucket Helios manages (created in the sandbox, or on AWS); each call signs
  fresh URLs with a new expiry. Unknown job → :class:`NotFound`, submitted job
  → :class:`Conflict`.
* ``submit`` — once; a background runner then moves the job through the stages
  ``Submitted → Validating uploads → Loading → Success`` (or ``Fail`` with the
  last stage reached and why). Loading reads every owner's objects, converts
  each row to the target's types, inserts the good rows and puts the others in
  ``<table>_quarantine`` with the owner and file named.

Jobs, owners and stages live in the ``helios`` metadata database, so they
survive restarts. On start-up an interrupted job is resumed when re-sending its
batches is safe (every target table has a deduplication window and each batch
carries a deterministic ``insert_deduplication_token``), and marked failed
otherwise — never left in ``Loading``.

The package's modules, each importing only those above it in this list:
:mod:`~helios_core.jobs.records` (the job, owners, uploads, their store, statuses),
:mod:`~helios_core.jobs.files` (reading, checking, loading and inferring from a file),
:mod:`~helios_core.jobs.targets` (a new job's checks, a new table's schema),
:mod:`~helios_core.jobs.stages` (the run after Submitted) and
:mod:`~helios_core.jobs.service` (bucket, upload links, the runner thread).
This module declares the tables and re-exports the public names: import them from ``helios_core.jobs``.
"""

from __future__ import annotations

from typing import Any

from helios_core.jobs.files import (
    FILE_MIN_EVIDENCE,
    FILE_OUTLIER_RATIO,
    INFER_SAMPLE_ROWS,
    check_file,
    file_fields,
    infer_file_schema,
    iter_rows,
    load_rows_file,
    target_columns,
)
from helios_core.jobs.records import (
    ACTIVE_STAGES,
    ANALYSIS,
    ANALYSIS_STAGES,
    CHECKING,
    CREATED,
    DEFAULT_BUCKET,
    DEFAULT_EXPIRY_S,
    FAIL,
    FORMAT_LABELS,
    FORMATS,
    LOADING,
    MAX_FILES_PER_OWNER,
    RELEASING,
    RUNNING,
    STAGES,
    SUBMITTED,
    SUCCESS,
    TARGETS,
    VALIDATING,
    Job,
    Owner,
    Progress,
    Upload,
    add_stage,
    delete_job,
    get_job,
    job_for_change,
    job_status,
    job_summaries,
    list_jobs,
    list_owners,
    normalize_format,
    owner_slug,
    write_job,
)
from helios_core.jobs.service import (
    JobService,
    default_bucket,
    default_connection,
)
from helios_core.jobs.targets import (
    confirm_schema,
    create_target_table,
    infer_job_schema,
    validate_job_spec,
)
from helios_core.users import ownership_alters

__all__ = [
    "ACTIVE_STAGES", "ANALYSIS", "ANALYSIS_STAGES", "CHECKING", "CREATED", "DEFAULT_BUCKET", "DEFAULT_EXPIRY_S",
    "FAIL", "FILE_MIN_EVIDENCE", "FILE_OUTLIER_RATIO", "FORMATS", "FORMAT_LABELS", "INFER_SAMPLE_ROWS", "Job",
    "JobService", "LOADING", "MAX_FILES_PER_OWNER", "METADATA_ALTERS", "METADATA_TABLES", "Owner", "Progress",
    "RELEASING", "RUNNING", "STAGES", "SUBMITTED", "SUCCESS", "TARGETS", "Upload", "VALIDATING", "add_stage",
    "check_file", "confirm_schema", "create_target_table", "default_bucket", "default_connection", "delete_job",
    "file_fields", "get_job", "get_job_service", "infer_file_schema", "infer_job_schema", "iter_rows",
    "job_for_change", "job_status", "job_summaries", "list_jobs", "list_owners", "load_rows_file",
    "normalize_format", "owner_slug", "target_columns", "validate_job_spec", "write_job",
]

METADATA_TABLES = [
    """CREATE TABLE IF NOT EXISTS helios.jobs (
        id String,
        name String,
        format LowCardinality(String),
        target LowCardinality(String),
        target_database String,
        target_table String,
        schema String,
        schema_confirmed UInt8,
        order_by String,
        bucket String,
        result String,
        created_at DateTime64(3, 'UTC'),
        updated_at DateTime64(3, 'UTC'),
        version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id""",
    """CREATE TABLE IF NOT EXISTS helios.job_owners (
        job_id String,
        owner String,
        key_prefix String,
        files UInt16,
        registered_at DateTime64(3, 'UTC'),
        urls_issued UInt32,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (job_id, owner)""",
    """CREATE TABLE IF NOT EXISTS helios.job_stages (
        job_id String,
        seq UInt64,
        stage LowCardinality(String),
        at DateTime64(3, 'UTC'),
        message String
    ) ENGINE = MergeTree ORDER BY (job_id, seq)""",
]
# The Helios user who owns a job (not its data owners, who only ever get upload links): they and admins see it.
METADATA_ALTERS = [*ownership_alters("helios.jobs", shared=False),
                   "ALTER TABLE helios.jobs ADD COLUMN IF NOT EXISTS deleted UInt8 DEFAULT 0"]


def get_job_service(connection: Any = None, bucket: str | None = None) -> JobService:
    """The runtime's job service (created and started once; recovers interrupted jobs on start)."""
    from helios_core.runtime import get_runtime  # the runtime lists this module among its record modules
    runtime = get_runtime()
    service = runtime.service("jobs", lambda: JobService(runtime.clickhouse, connection, bucket).start())
    if connection is not None:
        service.use_connection(connection, bucket)
    return service
