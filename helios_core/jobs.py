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
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import queue
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helios_core.chtypes import base_name, family, is_nullable, unwrap
from helios_core.clickhouse import SYSTEM_DATABASES, ClickHouse, table_columns, table_exists
from helios_core.config import get_settings
from helios_core.ddl import quarantine_name
from helios_core.errors import AwsError, Conflict, HeliosError, NotFound, ValidationError
from helios_core.identifiers import check_identifier, sanitize_name
from helios_core.loading import NOT_INSERTED, RowSink, dedup_window
from helios_core.metadata import METADATA_DB, next_version
from helios_core.schema import ColumnSpec, InferredSchema, infer_schema
from helios_core.users import LOCAL_ID, SYSTEM, User, acting, check_change, check_read, owner_of, ownership_alters
from helios_core.wording import plural

FORMATS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet", "pg_dump": "sql"}
FORMAT_LABELS = {"csv": "CSV (with a header row)", "jsonl": "JSON lines", "parquet": "Parquet",
                 "pg_dump": "PostgreSQL plain dump (pg_dump -F p)"}
_FORMAT_ALIASES = {"json": "jsonl", "ndjson": "jsonl", "json_lines": "jsonl", "jsonlines": "jsonl",
                   "pgdump": "pg_dump", "pg-dump": "pg_dump", "sql": "pg_dump", "dump": "pg_dump"}
TARGETS = ("existing", "new", "database")   # an existing table, a new table, a new database (dumps)
SUBMITTED, VALIDATING, LOADING, SUCCESS, FAIL = "Submitted", "Validating uploads", "Loading", "Success", "Fail"
STAGES = (SUBMITTED, VALIDATING, LOADING, SUCCESS, FAIL)
# Analysis jobs (helios_core.analysis) go on from Loading through these before Success.
CHECKING, RUNNING, RELEASING = "Checking the analysis", "Running the analysis", "Releasing results"
ANALYSIS_STAGES = (SUBMITTED, VALIDATING, LOADING, CHECKING, RUNNING, RELEASING, SUCCESS, FAIL)
ACTIVE_STAGES = (SUBMITTED, VALIDATING, LOADING, CHECKING, RUNNING, RELEASING)
ANALYSIS = "analysis"   # the target of an analysis job: its own input table in helios_analysis
CREATED = "Created"   # shown for a job not submitted yet (the seed has no status then)
DEFAULT_BUCKET = "helios-imports"
DEFAULT_EXPIRY_S = 3600
MAX_FILES_PER_OWNER = 20
INFER_SAMPLE_ROWS = 2000

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

def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


def _not_found(job_id: str) -> NotFound:
    return NotFound("Job ID not found", f"No import job has the id {job_id!r}; list jobs to see their ids.",
                    job_id=job_id)


def _conflict(message: str, job_id: str, hint: str = "") -> Conflict:
    return Conflict(message, hint, job_id=job_id)


# ---- records ------------------------------------------------------------------------------------


@dataclass
class Job:
    id: str
    name: str
    format: str
    target: str                       # existing | new | database
    database: str
    table: str                        # '' for dumps (each dump table becomes a table)
    bucket: str
    schema: list[ColumnSpec] = field(default_factory=list)   # new tables: proposed, then confirmed
    schema_confirmed: bool = False
    order_by: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)     # counts per file, written as loading goes
    created_at: datetime | None = None
    status: str = CREATED
    error: str = ""
    stages: list[dict[str, Any]] = field(default_factory=list)
    owner: str = LOCAL_ID             # the Helios user who created it (data owners are Owner records)

    @property
    def submitted(self) -> bool:
        return self.status != CREATED

    @property
    def prefix(self) -> str:
        return f"jobs/{self.id}/"

    def target_label(self) -> str:
        if self.target == ANALYSIS:
            return "an analysis over its data owners' uploads"
        if self.target == "database":
            return f"new database {self.database}"
        return f"{'new' if self.target == 'new' else 'existing'} table {self.database}.{self.table}"

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.id, "name": self.name, "format": self.format, "target": self.target,
                "database": self.database, "table": self.table, "bucket": self.bucket, "status": self.status,
                "error": self.error or None, "schema": [c.to_json() for c in self.schema],
                "schema_confirmed": self.schema_confirmed, "order_by": self.order_by, "result": self.result,
                "created_at": _iso(self.created_at), "stages": self.stages, "owner": self.owner}


@dataclass
class Owner:
    job_id: str
    owner: str
    key_prefix: str
    files: int
    registered_at: datetime | None = None
    urls_issued: int = 0


@dataclass
class Upload:
    owner: str
    key: str
    size: int

    @property
    def file(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def owner_slug(owner: str) -> str:
    """A key-safe folder for an owner: readable part plus a short hash (so distinct owners never collide)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", owner).strip("._-")[:40] or "owner"
    return f"{readable}-{hashlib.sha256(owner.encode('utf-8')).hexdigest()[:8]}"


# ---- the store ----------------------------------------------------------------------------------

_JOB_COLUMNS = ["id", "name", "format", "target", "target_database", "target_table", "schema", "schema_confirmed",
                "order_by", "bucket", "result", "created_at", "updated_at", "version", "owner"]
_JOB_WHERE = "deleted = 0"


def write_job(ch: ClickHouse, job: Job, deleted: bool = False) -> None:
    ch.insert_rows("jobs", [[job.id, job.name, job.format, job.target, job.database, job.table,
                             json.dumps([c.to_json() for c in job.schema]), int(job.schema_confirmed),
                             json.dumps(job.order_by), job.bucket, json.dumps(job.result, default=str),
                             job.created_at or _now(), _now(), next_version(), job.owner, int(deleted)]],
                   [*_JOB_COLUMNS, "deleted"], database=METADATA_DB)


def _job_from_row(row: dict[str, Any]) -> Job:
    return Job(id=row["id"], name=row["name"], format=row["format"], target=row["target"],
               database=row["target_database"], table=row["target_table"], bucket=row["bucket"],
               schema=[ColumnSpec.from_json(c) for c in json.loads(row["schema"] or "[]")],
               schema_confirmed=bool(row["schema_confirmed"]), order_by=json.loads(row["order_by"] or "[]"),
               result=json.loads(row["result"] or "{}"), created_at=row["created_at"], owner=owner_of(row.get("owner")))


def _stages(ch: ClickHouse, job_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not job_ids:
        return {}
    rows = ch.internal_query("SELECT job_id, seq, stage, at, message FROM helios.job_stages "
                             "WHERE job_id IN {ids:Array(String)} ORDER BY job_id, seq", {"ids": job_ids})
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["job_id"], []).append({"stage": r["stage"], "at": _iso(r["at"]), "message": r["message"]})
    return out


def _with_status(job: Job, stages: list[dict[str, Any]]) -> Job:
    job.stages = stages
    if stages:
        job.status = stages[-1]["stage"]
        if job.status == FAIL:
            job.error = stages[-1]["message"]
    return job


def get_job(ch: ClickHouse, job_id: str, user: User | None = None) -> Job:
    """The job, if the acting user may see it (its owner or an admin); another's is not found."""
    rows = ch.internal_query(f"SELECT {', '.join(_JOB_COLUMNS)} FROM helios.jobs FINAL WHERE id = {{id:String}} "
                             f"AND {_JOB_WHERE}", {"id": str(job_id)})
    if not rows:
        raise _not_found(str(job_id))
    job = _job_from_row(rows[0])
    check_read(acting(user), job.owner, (), _not_found(str(job_id)))
    return _with_status(job, _stages(ch, [job.id]).get(job.id, []))


def job_for_change(ch: ClickHouse, job_id: str, user: User | None = None) -> Job:
    """The job, if the acting user may change it (its owner or an admin)."""
    me = acting(user)
    job = get_job(ch, job_id, me)
    check_change(me, job.owner, (), _not_found(str(job_id)), f"the job {job.name!r}")
    return job


def list_jobs(ch: ClickHouse, user: User | None = None, all_users: bool = False) -> list[Job]:
    """The acting user's jobs (an admin's ``all_users``: everyone's)."""
    from helios_core.users import visible_where
    where, params = visible_where(acting(user), shared=False, all_users=all_users)
    rows = ch.internal_query(f"SELECT {', '.join(_JOB_COLUMNS)} FROM helios.jobs FINAL WHERE {where} "
                             f"AND {_JOB_WHERE} ORDER BY created_at DESC", params)
    jobs = [_job_from_row(r) for r in rows]
    stages = _stages(ch, [j.id for j in jobs])
    return [_with_status(j, stages.get(j.id, [])) for j in jobs]


def delete_job(ch: ClickHouse, job_id: str, user: User | None = None) -> Job:
    """Forget a job that is not running (its owner's or an admin's call); loaded data stays in its table."""
    job = job_for_change(ch, job_id, user)
    if job.status in ACTIVE_STAGES:
        raise _conflict("The job is running", job.id, f"It is {job.status}; delete it once it has finished.")
    write_job(ch, job, deleted=True)
    return job


def add_stage(ch: ClickHouse, job_id: str, stage: str, message: str = "") -> None:
    ch.insert_rows("job_stages", [[job_id, next_version(), stage, _now(), message]],
                   ["job_id", "seq", "stage", "at", "message"], database=METADATA_DB)


def list_owners(ch: ClickHouse, job_id: str) -> list[Owner]:
    rows = ch.internal_query("SELECT job_id, owner, key_prefix, files, registered_at, urls_issued "
                             "FROM helios.job_owners FINAL WHERE job_id = {id:String} ORDER BY registered_at, owner",
                             {"id": job_id})
    return [Owner(**r) for r in rows]


def _write_owner(ch: ClickHouse, owner: Owner) -> None:
    ch.insert_rows("job_owners", [[owner.job_id, owner.owner, owner.key_prefix, owner.files,
                                   owner.registered_at or _now(), owner.urls_issued, next_version()]],
                   ["job_id", "owner", "key_prefix", "files", "registered_at", "urls_issued", "version"],
                   database=METADATA_DB)


# ---- creating a job -------------------------------------------------------------------------------


def normalize_format(value: Any) -> str:
    text = str(value or "").strip().lower().replace(" ", "_")
    return _FORMAT_ALIASES.get(text, text)


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


# ---- where uploads live -------------------------------------------------------------------------------


def default_connection():
    """Where jobs keep uploads when no connection is given: configured AWS, else the local sandbox."""
    from helios_core.aws import connection_from_settings, default_credentials_available
    if get_settings().aws_endpoint_url or default_credentials_available():
        return connection_from_settings()
    from helios_core.sandbox import get_sandbox
    return get_sandbox().connection()


def default_bucket(conn: Any) -> str:
    """``HELIOS_IMPORT_BUCKET``, else ``helios-imports`` in the sandbox, else one per account and region on AWS."""
    configured = get_settings().import_bucket
    if configured:
        return configured
    if getattr(conn, "sandbox", False) or getattr(conn, "endpoint_url", None):
        return DEFAULT_BUCKET
    identity = conn.validate()
    return f"{DEFAULT_BUCKET}-{identity.account or 'account'}-{conn.region}"[:63]


# ---- the service: S3, the runner thread, progress ----------------------------------------------------


@dataclass
class Progress:
    stage: str = ""
    file: str = ""
    files_done: int = 0
    files_total: int = 0
    rows: int = 0
    inserted: int = 0
    quarantined: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


class JobService:
    """Process-wide: signs URLs, keeps the bucket, runs submitted jobs one at a time in a thread."""

    def __init__(self, ch: ClickHouse, connection: Any = None, bucket: str | None = None,
                 batch_rows: int = 5000) -> None:
        self.ch = ch
        self._connection = connection
        self._bucket = bucket
        self.batch_rows = batch_rows
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition(self._lock)
        self.progress: dict[str, Progress] = {}   # the last run of each job in this process
        self._running: set[str] = set()
        self.on_batch: Callable[[str, Progress], None] | None = None  # observers (and tests) see each batch
        self._buckets_ready: set[str] = set()

    # -- AWS
    @property
    def connection(self) -> Any:
        if self._connection is None:
            self._connection = default_connection()
        return self._connection

    def use_connection(self, connection: Any, bucket: str | None = None) -> None:
        """Switch where new jobs keep uploads (a page's chosen AWS connection); kept in memory only."""
        self._connection = connection
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        if not self._bucket:
            self._bucket = default_bucket(self.connection)
        return self._bucket

    def s3(self) -> Any:
        # Signature V4: the signed method, key and expiry are all covered by the signature.
        return self.connection.client("s3", signature_version="s3v4")

    def ensure_bucket(self, bucket: str) -> None:
        if bucket in self._buckets_ready:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        from helios_core.aws import to_aws_error
        s3 = self.s3()
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise _bucket_error(to_aws_error(exc, "s3:HeadBucket", self.connection), bucket) from None
            try:
                region = self.connection.region
                args: dict[str, Any] = {"Bucket": bucket}
                if region != "us-east-1":
                    args["CreateBucketConfiguration"] = {"LocationConstraint": region}
                s3.create_bucket(**args)
            except ClientError as create_exc:
                if create_exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise _bucket_error(to_aws_error(create_exc, "s3:CreateBucket", self.connection),
                                        bucket) from None
        except BotoCoreError as exc:
            raise _bucket_error(to_aws_error(exc, "s3:HeadBucket", self.connection), bucket) from None
        self._buckets_ready.add(bucket)

    def _aws(self, action: str):
        from helios_core.aws import aws_errors
        return aws_errors(action, self.connection)

    # -- the job lifecycle
    def create(self, spec: dict[str, Any], user: User | None = None) -> Job:
        """A new job owned by the acting user."""
        from helios_core.analysis import create_analysis_job, is_analysis_spec
        me = acting(user)
        if is_analysis_spec(spec):  # the seed's analysis fields: a QueryShield analysis job
            return create_analysis_job(self, spec, me)
        clean = validate_job_spec(self.ch, spec)
        bucket = str(spec.get("bucket") or self.bucket)
        self.ensure_bucket(bucket)
        job = Job(id=str(uuid.uuid4()), bucket=bucket, created_at=_now(), owner=me.id, **clean)
        write_job(self.ch, job)
        return job

    def register_owner(self, job_id: str, owner: str, files: int = 1,
                       expires_in: int = DEFAULT_EXPIRY_S, user: User | None = None) -> dict[str, Any]:
        owner = str(owner or "").strip()
        missing = [k for k, v in (("job_id", job_id), ("data_owner", owner)) if not v]
        if missing:
            raise ValidationError("missing necessary fields", "Give the job id and name the data owner.",
                                  missing_fields=missing)
        job = job_for_change(self.ch, job_id, user)
        if job.submitted:
            raise _conflict("Cannot register to a submitted job", job.id,
                            "The job has been submitted; create a new job for more data.")
        if not 1 <= int(files) <= MAX_FILES_PER_OWNER:
            raise ValidationError(f"files must be between 1 and {MAX_FILES_PER_OWNER}.")
        if not 60 <= int(expires_in) <= 7 * 24 * 3600:
            raise ValidationError("expires_in must be between 60 seconds and 7 days.")
        existing = {o.owner: o for o in list_owners(self.ch, job.id)}.get(owner)
        record = existing or Owner(job.id, owner, f"{job.prefix}{owner_slug(owner)}/", int(files), _now())
        record.files = max(record.files, int(files))
        # Each call is a new grant with its own keys, so its URLs are always new (S3 signatures only change
        # by the second); every object an owner uploads, under any grant, is loaded.
        grant = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        keys = [f"{record.key_prefix}{grant}-{n}.{FORMATS[job.format]}" for n in range(1, int(files) + 1)]
        self.ensure_bucket(job.bucket)
        if job.target == ANALYSIS:  # one URL per cloud provider the job names
            from helios_core.analysis import owner_urls
            urls = owner_urls(self, job, keys, int(expires_in))
        else:
            with self._aws("s3:PutObject"):
                urls = [self.s3().generate_presigned_url("put_object", Params={"Bucket": job.bucket, "Key": key},
                                                         ExpiresIn=int(expires_in), HttpMethod="PUT") for key in keys]
        record.urls_issued += len(urls)
        _write_owner(self.ch, record)
        return {"presigned_urls": urls, "job_id": job.id, "data_owner": owner, "keys": keys,
                "expires_in": int(expires_in), "method": "PUT"}

    def upload(self, job_id: str, owner: str, filename: str, data: bytes | io.IOBase,
               user: User | None = None) -> Upload:
        """The analyst's own file (the page's uploader), stored like an owner's upload."""
        owner = str(owner or "").strip() or "analyst"
        job = job_for_change(self.ch, job_id, user)
        if job.submitted:
            raise _conflict("Cannot upload to a submitted job", job.id, "Create a new job for more data.")
        existing = {o.owner: o for o in list_owners(self.ch, job.id)}.get(owner)
        record = existing or Owner(job.id, owner, f"{job.prefix}{owner_slug(owner)}/", 0, _now())
        stem = sanitize_name(Path(filename or "file").stem)[:60] or "file"
        key = f"{record.key_prefix}direct-{stem}.{FORMATS[job.format]}"
        body = data if isinstance(data, (bytes, bytearray)) else data.read()
        self.ensure_bucket(job.bucket)
        with self._aws("s3:PutObject"):
            self.s3().put_object(Bucket=job.bucket, Key=key, Body=body)
        _write_owner(self.ch, record)
        return Upload(owner, key, len(body))

    def uploads(self, job: Job) -> list[Upload]:
        owners = list_owners(self.ch, job.id)
        by_prefix = {o.key_prefix: o.owner for o in owners}
        found: list[Upload] = []
        with self._aws("s3:ListBucket"):
            paginator = self.s3().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=job.bucket, Prefix=job.prefix):
                for obj in page.get("Contents", []) or []:
                    prefix = obj["Key"].rsplit("/", 1)[0] + "/"
                    if prefix in by_prefix:  # objects outside a registered owner's folder are not loaded
                        found.append(Upload(by_prefix[prefix], obj["Key"], int(obj.get("Size", 0))))
        return sorted(found, key=lambda u: (u.owner, u.key))

    def download(self, job: Job, upload: Upload, directory: Path) -> Path:
        path = directory / hashlib.sha256(upload.key.encode()).hexdigest()[:16]
        with self._aws("s3:GetObject"):
            self.s3().download_file(job.bucket, upload.key, str(path))
        return path

    def submit(self, job_id: str, user: User | None = None) -> dict[str, Any]:
        with self._lock:  # two clicks at once: only one submission
            job = job_for_change(self.ch, job_id, user)
            if job.submitted:
                raise _conflict("Duplicated submission", job.id, f"The job is already {job.status}.")
            if job.target == "new" and not job.schema_confirmed:
                raise ValidationError("missing necessary fields",
                                      "Infer the new table's schema from an upload and confirm it before submitting.",
                                      missing_fields=["schema"])
            add_stage(self.ch, job.id, SUBMITTED, "Submitted for loading.")
        self.enqueue(job.id)
        return {"status": "success", "job_id": job.id}

    # -- the runner
    def start(self) -> JobService:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop.clear()
            self._thread = threading.Thread(target=self._work, name="helios-jobs", daemon=True)
            self._thread.start()
        self.recover()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._queue.put("")
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def enqueue(self, job_id: str) -> None:
        with self._lock:
            self._busy += 1
        self._queue.put(job_id)
        if self._thread is None or not self._thread.is_alive():
            self.start()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running (the CLI waits before it exits)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _work(self) -> None:
        while not self._stop.is_set():
            job_id = self._queue.get()
            if not job_id:
                continue
            try:
                self.run(job_id)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def recover(self) -> list[dict[str, str]]:
        """Start-up: resume or fail every job a restart interrupted (never leave one Loading)."""
        decided: list[dict[str, str]] = []
        for job in list_jobs(self.ch, SYSTEM, all_users=True):
            if job.status not in ACTIVE_STAGES or job.id in self._running or self._queued(job.id):
                continue
            safe, why = self._resumable(job)
            if job.status == LOADING and not safe:
                add_stage(self.ch, job.id, FAIL, f"Failed. Last status is {LOADING}. Helios stopped while loading "
                                                 f"and cannot safely resume: {why} Check the target and submit "
                                                 "the data again as a new job.")
                decided.append({"job_id": job.id, "action": "failed"})
                continue
            add_stage(self.ch, job.id, SUBMITTED, f"Resumed after a restart (it was at {job.status}).")
            self.enqueue(job.id)
            decided.append({"job_id": job.id, "action": "resumed"})
        return decided

    def _queued(self, job_id: str) -> bool:
        with self._queue.mutex:
            return job_id in self._queue.queue

    def _resumable(self, job: Job) -> tuple[bool, str]:
        if job.target in ("database", ANALYSIS):  # an analysis reloads its fresh input table from the uploads
            return True, ""
        if not table_exists(self.ch, job.database, job.table):
            return True, ""
        if dedup_window(self.ch, job.database, job.table) <= 0:
            return False, (f"{job.database}.{job.table} has no deduplication window, so batches sent before the "
                           "stop would be inserted twice.")
        return True, ""

    def run(self, job_id: str) -> None:
        """Run one submitted job through its stages (in the runner thread, or inline)."""
        if self._is_analysis(job_id):
            from helios_core.analysis import run_analysis
            run_analysis(self, job_id)
            return
        progress = self.progress[job_id] = Progress()
        stage = SUBMITTED
        self._running.add(job_id)
        try:
            job = get_job(self.ch, job_id, SYSTEM)
            stage = VALIDATING
            progress.stage = stage
            add_stage(self.ch, job.id, VALIDATING, "")
            uploads = self.uploads(job)
            with tempfile.TemporaryDirectory(prefix="helios-job-") as tmp:
                files = self._validate(job, uploads, Path(tmp))
                stage = LOADING
                progress.stage = stage
                progress.files_total = len(files)
                add_stage(self.ch, job.id, LOADING, f"{plural(len(files), 'file')} from "
                                                    f"{plural(len({u.owner for u, _ in files}), 'owner')}.")
                result = self._load(job, files, progress)
            total_in = sum(r["inserted"] for r in result["files"])
            total_bad = sum(r["quarantined"] for r in result["files"])
            job.result = result
            write_job(self.ch, job)
            progress.stage = SUCCESS
            add_stage(self.ch, job.id, SUCCESS, f"Loaded {plural(total_in, 'row')}; {total_bad:,} quarantined.")
        except HeliosError as exc:
            progress.stage = FAIL
            add_stage(self.ch, job_id, FAIL, f"Failed. Last status is {stage}. {exc}")
        except Exception as exc:  # noqa: BLE001 - a job must end in Fail, whatever went wrong
            progress.stage = FAIL
            add_stage(self.ch, job_id, FAIL, f"Failed. Last status is {stage}. Unexpected {type(exc).__name__}: "
                                             f"{str(exc)[:500]}")
        finally:
            self._running.discard(job_id)

    def _is_analysis(self, job_id: str) -> bool:
        rows = self.ch.internal_query("SELECT target FROM helios.jobs FINAL WHERE id = {id:String}", {"id": job_id})
        return bool(rows) and rows[0]["target"] == ANALYSIS

    # -- validating uploads
    def _validate(self, job: Job, uploads: list[Upload], tmp: Path) -> list[tuple[Upload, Path]]:
        owners = list_owners(self.ch, job.id)
        if not uploads:
            raise ValidationError("Data validation failed: nothing was uploaded.",
                                  f"Each registered owner PUTs a file to their presigned URL; owners: "
                                  f"{', '.join(o.owner for o in owners) or 'none registered'}.")
        without = sorted({o.owner for o in owners} - {u.owner for u in uploads})
        if without:
            raise ValidationError(f"Data validation failed: no upload from {', '.join(without)}.",
                                  "Every registered owner must upload before the job can load.")
        files = []
        problems = []
        for upload in uploads:
            if upload.size == 0:
                problems.append(f"{upload.owner}/{upload.file} is empty")
                continue
            path = self.download(job, upload, tmp)
            problem = check_file(self.ch, job, path)
            if problem:
                problems.append(f"{upload.owner}/{upload.file}: {problem}")
            files.append((upload, path))
        if problems:
            raise ValidationError("Data validation failed: " + "; ".join(problems[:5])
                                  + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "") + ".")
        return files

    # -- loading
    def _load(self, job: Job, files: list[tuple[Upload, Path]], progress: Progress) -> dict[str, Any]:
        client = self.ch.new_client() if self.ch.embedded else None
        out: list[dict[str, Any]] = []
        try:
            if job.target == "new":
                create_target_table(self.ch, job)
            for upload, path in files:
                progress.file = f"{upload.owner}/{upload.file}"
                token = f"job:{job.id}:{upload.key}"
                if job.format == "pg_dump":
                    from helios_core.pgdump import line_source, load_dump

                    def dump_progress(table: str, rows: int) -> None:
                        progress.rows = rows
                        if self.on_batch:
                            self.on_batch(job.id, progress)
                    report = load_dump(self.ch, line_source(path), job.database, append=True,
                                       source_id=job.id, origin=f"{upload.owner}/{upload.file}", client=client,
                                       progress=dump_progress, batch_rows=self.batch_rows, token_prefix=token)
                    entry: dict[str, Any] = {"owner": upload.owner, "file": upload.file, "inserted": report.inserted,
                             "quarantined": report.quarantined, "tables": [t.to_json() for t in report.tables],
                             "unsupported": [i.to_json() for i in report.plan.unsupported]}
                else:
                    counts = load_rows_file(self.ch, job, upload, path, client=client, batch_rows=self.batch_rows,
                                            token_prefix=token, progress=progress, on_batch=self.on_batch)
                    entry = {"owner": upload.owner, "file": upload.file, **counts}
                progress.files_done += 1
                progress.inserted += entry["inserted"]
                progress.quarantined += entry["quarantined"]
                out.append(entry)
                job.result = {"files": out}
                write_job(self.ch, job)  # counts so far, visible on the page while the rest loads
        finally:
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001
                    pass
        return {"files": out}


def _bucket_error(exc: Exception, bucket: str) -> HeliosError:
    if isinstance(exc, HeliosError):
        return AwsError(f"Buckets creation error: {exc.message}", exc.hint or f"Helios keeps uploads in {bucket}.")
    return AwsError(f"Buckets creation error: {exc}")


# ---- files: checks, readers and inference --------------------------------------------------------------


def target_columns(ch: ClickHouse, job: Job) -> tuple[list[tuple[str, str, str]], set[str]]:
    """(column, type, where its value comes from in the file) for the job's target table, and the columns
    with a DEFAULT that ClickHouse fills when a file lacks them — one read of the table's columns."""
    if job.target == "new":
        return ([(c.name, c.type, c.json_path or c.name) for c in job.schema if not c.virtual],
                {c.name for c in job.schema if c.default not in (None, "")})
    rows = table_columns(ch, job.database, job.table)
    return ([(r["name"], r["type"], r["name"]) for r in rows if r["default_kind"] not in NOT_INSERTED],
            {r["name"] for r in rows if r["default_kind"] == "DEFAULT"})


def _required(columns: list[tuple[str, str, str]], defaults: set[str]) -> set[str]:
    """Columns a file must provide: not Nullable, no DEFAULT in ClickHouse, not an Array/Map."""
    return {name for name, type_, _ in columns
            if not is_nullable(type_) and unwrap(type_)[0] not in ("Array", "Map") and name not in defaults}


def _match(header: list[str], source: str, column: str) -> str | None:
    """Which file field feeds a column: the exact name, else a name that sanitizes to the column."""
    if source in header:
        return source
    if column in header:
        return column
    for name in header:
        if sanitize_name(name) == column:
            return name
    return None


def _decode_text(path: Path) -> io.TextIOWrapper:
    return open(path, encoding="utf-8-sig", errors="strict", newline="")


def check_file(ch: ClickHouse, job: Job, path: Path) -> str:
    """Why a file cannot be loaded at all ('' when it can); bad rows are handled later, one by one."""
    try:
        if job.format == "pg_dump":
            from helios_core.pgdump import line_source, plan_dump
            plan = plan_dump(line_source(path))
            return "" if plan.tables else "not a plain-format PostgreSQL dump (no CREATE TABLE found)"
        if job.target == "new" and not job.schema:
            return "the new table has no confirmed schema"
        fields = file_fields(job.format, path)
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except (ValueError, OSError) as exc:
        return str(exc)
    if not fields:
        return "no rows or columns found"
    columns, defaults = target_columns(ch, job)
    matched = {name for name, _, source in columns if _match(fields, source, name)}
    if not matched:
        return f"none of its fields ({', '.join(fields[:8])}) match the table's columns"
    missing = sorted(_required(columns, defaults) - matched)
    if missing:
        return f"it lacks the required column(s) {', '.join(missing)}"
    return ""


def file_fields(fmt: str, path: Path) -> list[str]:
    """The field names a file offers: CSV header, Parquet schema, keys of the first JSON lines."""
    if fmt == "csv":
        with _decode_text(path) as fh:
            header = next(csv.reader(fh), None)
        if not header:
            raise ValueError("the CSV file has no header row")
        return [h.strip() for h in header]
    if fmt == "parquet":
        import pyarrow.parquet as pq
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds
            raise ValueError(f"not a Parquet file ({str(exc)[:120]})") from exc
    keys: dict[str, None] = {}
    with _decode_text(path) as fh:
        seen = 0
        for line in fh:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                seen += 1
                if seen >= 50 and not keys:
                    raise ValueError("not JSON lines (the first lines are not JSON)") from None
                continue
            if isinstance(obj, dict):
                for key, value in obj.items():
                    keys[key] = None
                    if isinstance(value, dict):  # nested objects feed flattened columns (a.b → a_b)
                        for sub in value:
                            keys[f"{key}.{sub}"] = None
            seen += 1
            if seen >= INFER_SAMPLE_ROWS:
                break
    if not keys:
        raise ValueError("not JSON lines (no JSON object found)")
    return list(keys)


def _path_get(obj: dict[str, Any], path: str) -> Any:
    if path in obj:
        return obj[path]
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def iter_rows(fmt: str, path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str, str]]:
    """(row number, fields or None when unreadable, raw text, why unreadable) for each row of a file."""
    if fmt == "csv":
        with _decode_text(path) as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            for n, row in enumerate(reader, start=1):
                if not row:
                    continue
                buf = io.StringIO()
                csv.writer(buf, lineterminator="").writerow(row)
                if len(row) != len(header):
                    yield n, None, buf.getvalue(), f"the row has {len(row)} fields; the header has {len(header)}"
                    continue
                yield n, dict(zip(header, row, strict=False)), buf.getvalue(), ""
    elif fmt == "jsonl":
        with open(path, "rb") as fh:
            n = 0
            for raw_line in fh:
                if not raw_line.strip():
                    continue
                n += 1
                text = raw_line.decode("utf-8", "replace").rstrip("\r\n")
                try:
                    obj = json.loads(raw_line)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    yield n, None, text, f"not JSON ({exc})"
                    continue
                if not isinstance(obj, dict):
                    yield n, None, text, "the line is JSON but not an object"
                    continue
                yield n, obj, text, ""
    elif fmt == "parquet":
        import pyarrow.parquet as pq
        n = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=5000):
            for row in batch.to_pylist():
                n += 1
                yield n, row, json.dumps(row, default=str, ensure_ascii=False), ""
    else:
        raise ValidationError(f"Unknown format {fmt!r}.")


def load_rows_file(ch: ClickHouse, job: Job, upload: Upload, path: Path, *, client: Any = None,
                   batch_rows: int = 5000, token_prefix: str | None = None, progress: Progress | None = None,
                   on_batch: Callable[[str, Progress], None] | None = None) -> dict[str, Any]:
    """Load one CSV / JSON lines / Parquet file into the job's table; bad rows to its quarantine."""
    from helios_core.loading import QuarantineRow, add_csv_file
    columns, defaults = target_columns(ch, job)
    fields = file_fields(job.format, path)
    # Columns the file does not provide are left out, so ClickHouse fills their DEFAULTs. JSON lines
    # may name a key only after the sampled lines: there only DEFAULT columns not seen are left out.
    used = [(name, type_, _match(fields, source, name) or source) for name, type_, source in columns
            if _match(fields, source, name) or (job.format == "jsonl" and name not in defaults)]
    sink = RowSink(ch, job.database, job.table, [(n, t) for n, t, _ in used], source="import", source_id=job.id,
                   origin=f"{upload.owner}/{upload.file}", batch_rows=batch_rows, client=client,
                   token_prefix=token_prefix, json_columns={c.name for c in job.schema if c.json_text})
    strings = {n for n, t, _ in used if base_name(t) in ("String", "FixedString")}
    rows = 0
    if job.format == "csv":  # read and converted in Arrow, column by column
        def csv_progress(count: int) -> None:
            if progress is not None:
                progress.rows = count
                if on_batch:
                    on_batch(job.id, progress)
        rows = add_csv_file(sink, path, [source for _, _, source in used], strings, csv_progress)
    for n, obj, raw, why in (iter_rows(job.format, path) if job.format != "csv" else ()):
        rows += 1
        if obj is None:
            sink.reject(QuarantineRow(raw, "decode_error", why, "", n))
        else:
            values = {}
            for name, _, source in used:
                value = _path_get(obj, source) if job.format == "jsonl" else obj.get(source)
                # CSV cannot tell an empty string from a missing value: empty is NULL except for text.
                if job.format == "csv" and value == "" and name not in strings:
                    value = None
                values[name] = value
            sink.add(values, raw, n)
        if rows % batch_rows == 0 and progress is not None:
            progress.rows = rows
            if on_batch:
                on_batch(job.id, progress)
    sink.flush()
    if progress is not None:
        progress.rows = rows
    return {"rows": rows, "inserted": sink.counts.inserted, "quarantined": sink.counts.quarantined,
            "errors_by_type": sink.counts.errors_by_type}


# ---- a new table: schema inferred from the first upload, then confirmed ----------------------------------


def _guess(value: str) -> Any:
    """A CSV cell as the JSON value it most likely is (inference only)."""
    text = value.strip()
    if text == "":
        return None
    if re.fullmatch(r"-?\d{1,18}", text):
        return int(text)
    if re.fullmatch(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", text):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


def _arrow_type(t: Any) -> str:
    import pyarrow as pa
    if pa.types.is_boolean(t):
        return "Bool"
    if pa.types.is_integer(t):
        return {8: "Int8", 16: "Int16", 32: "Int32", 64: "Int64"}[t.bit_width].replace(
            "Int", "UInt" if pa.types.is_unsigned_integer(t) else "Int")
    if pa.types.is_floating(t):
        return "Float32" if t.bit_width == 32 else "Float64"
    if pa.types.is_decimal(t):
        return f"Decimal({min(t.precision, 76)}, {t.scale})"
    if pa.types.is_timestamp(t):
        precision = {"s": 0, "ms": 3, "us": 6, "ns": 9}[t.unit]
        return f"DateTime64({precision}, 'UTC')"
    if pa.types.is_date(t):
        return "Date32"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _arrow_type(t.value_type)
        return f"Array(Nullable({inner}))" if family(inner) not in ("array", "map") else f"Array({inner})"
    if pa.types.is_map(t):
        return f"Map(String, {_arrow_type(t.item_type)})"
    return "String"


FILE_OUTLIER_RATIO = 0.02   # as streams: up to 2% of rows of another kind are outliers …
FILE_MIN_EVIDENCE = 10      # … and in a file of 10 or more rows, a single one always is


def infer_file_schema(fmt: str, path: Path) -> InferredSchema:
    """Propose columns for a new table from one uploaded file."""
    if fmt == "parquet":
        import pyarrow.parquet as pq
        pf = pq.ParquetFile(path)
        first = next(pf.iter_batches(batch_size=INFER_SAMPLE_ROWS), None)
        columns = []
        for f in pf.schema_arrow:
            ch_type = _arrow_type(f.type)
            nulls = first.column(f.name).null_count if first is not None else 0
            if nulls and family(ch_type) not in ("array", "map"):
                ch_type = f"Nullable({ch_type})"
            columns.append(ColumnSpec(name=sanitize_name(f.name), type=ch_type, json_path=f.name,
                                      reason=f"Parquet type {f.type}"))
        order = [c.name for c in columns if not is_nullable(c.type) and family(c.type) not in ("array", "map")][:1]
        return InferredSchema(columns=columns, order_by=order, sample_size=first.num_rows if first else 0)
    events: list[dict[str, Any]] = []
    for _, obj, _, _ in iter_rows(fmt, path):
        if obj is not None:
            events.append({k: _guess(v) for k, v in obj.items()} if fmt == "csv" else obj)
        if len(events) >= INFER_SAMPLE_ROWS:
            break
    if not events:
        raise ValidationError("The first upload has no readable rows to infer a schema from.")
    # A file is the data itself, not a sample of a stream: one odd row in a small file is an outlier to
    # quarantine, not a reason to turn its column into String (streams need 50 events for that call).
    inferred = infer_schema(events, outlier_ratio=max(FILE_OUTLIER_RATIO, 1 / len(events)),
                            min_evidence=FILE_MIN_EVIDENCE)
    if fmt == "csv":
        header = file_fields("csv", path)
        for col in inferred.columns:  # CSV headers are flat even when they contain dots
            if col.json_path not in header:
                match = _match(header, col.json_path, col.name)
                col.json_path = match or col.json_path
    return inferred


def infer_job_schema(service: JobService, job_id: str, user: User | None = None) -> Job:
    """Infer the new table's columns from the first upload; the analyst then confirms (or edits) them."""
    job = job_for_change(service.ch, job_id, user)
    if job.target != "new":
        raise ValidationError("Only a job with a new target table needs a schema.",
                              f"This job loads into the {job.target_label()}.")
    if job.submitted:
        raise _conflict("The job has been submitted; its schema is fixed.", job.id)
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
    job.order_by = inferred.order_by or [c.name for c in job.schema if not c.type.startswith("Nullable")][:1]
    job.schema_confirmed = False
    write_job(service.ch, job)
    return get_job(service.ch, job.id, SYSTEM)


def confirm_schema(ch: ClickHouse, job_id: str, columns: list[dict[str, Any] | ColumnSpec] | None = None,
                   order_by: list[str] | None = None, user: User | None = None) -> Job:
    """Accept the proposed (or edited) columns for the new table; checked by the DDL rules and ClickHouse."""
    from helios_core.ddl import TableOptions, validate_table
    job = job_for_change(ch, job_id, user)
    if job.target != "new":
        raise ValidationError("Only a job with a new target table has a schema to confirm.")
    if job.submitted:
        raise _conflict("The job has been submitted; its schema is fixed.", job.id)
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
    from helios_core.ddl import TableOptions, create_database_sql, create_table_sql
    if table_exists(ch, job.database, job.table):
        return
    ch.execute(create_database_sql(job.database))
    options = TableOptions(database=job.database, table=job.table, order_by=job.order_by, create_database=True)
    ch.execute(create_table_sql(options, job.schema))


# ---- status in the seed's shape ------------------------------------------------------------------------


def job_status(ch: ClickHouse, job_id: str, user: User | None = None) -> dict[str, Any]:
    """``{"status", "job_id"}`` (+ ``error`` on Fail), with the stage history and counts."""
    job = get_job(ch, job_id, user)
    if not job.submitted:
        raise _conflict("No job status: the job is not submitted yet", job.id,
                        "Register data owners, let them upload, then submit the job.")
    out: dict[str, Any] = {"status": job.status, "job_id": job.id}
    if job.status == FAIL:
        out["error"] = job.error
    files = job.result.get("files", [])
    out["inserted"] = sum(f.get("inserted", 0) for f in files)
    out["quarantined"] = sum(f.get("quarantined", 0) for f in files)
    if job.target != ANALYSIS:  # an analysis's per-owner row counts are for its creator only (owners view)
        out["files"] = files
    out["stages"] = job.stages
    return out


def job_summaries(ch: ClickHouse, jobs: list[Job]) -> list[dict[str, Any]]:
    """One line per job for listings; owners are counted in one query for all of them."""
    if not jobs:
        return []
    rows = ch.internal_query("SELECT job_id, count() AS n FROM helios.job_owners FINAL "
                             "WHERE job_id IN {ids:Array(String)} GROUP BY job_id", {"ids": [j.id for j in jobs]})
    owners = {r["job_id"]: r["n"] for r in rows}
    out = []
    for job in jobs:
        files = job.result.get("files", [])
        out.append({"job_id": job.id, "name": job.name, "format": job.format, "target": job.target_label(),
                    "status": job.status, "owners": owners.get(job.id, 0),
                    "inserted": sum(f.get("inserted", 0) for f in files),
                    "quarantined": sum(f.get("quarantined", 0) for f in files), "created_at": _iso(job.created_at)})
    return out


# ---- the process-wide service ----------------------------------------------------------------------------


def get_job_service(connection: Any = None, bucket: str | None = None) -> JobService:
    """The runtime's job service (created and started once; recovers interrupted jobs on start)."""
    from helios_core.runtime import get_runtime
    runtime = get_runtime()
    service = runtime.service("jobs", lambda: JobService(runtime.clickhouse, connection, bucket).start())
    if connection is not None:
        service.use_connection(connection, bucket)
    return service

