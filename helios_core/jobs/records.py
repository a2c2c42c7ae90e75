"""Import jobs' records: the job, its data owners and uploads, their store in the ``helios`` database, and the
job's status in the seed's shape. The tables themselves are declared in :mod:`helios_core.jobs`."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from helios_core.clickhouse import ClickHouse
from helios_core.errors import Conflict, NotFound
from helios_core.metadata import METADATA_DB, next_version
from helios_core.schema import ColumnSpec
from helios_core.users import LOCAL_ID, User, acting, check_change, check_read, owner_of, visible_where

FORMATS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet", "pg_dump": "sql"}
FORMAT_LABELS = {"csv": "CSV (with a header row)", "jsonl": "JSON lines", "parquet": "Parquet",
                 "pg_dump": "PostgreSQL plain dump (pg_dump -F p)"}
FORMAT_ALIASES = {"json": "jsonl", "ndjson": "jsonl", "json_lines": "jsonl", "jsonlines": "jsonl",
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


def normalize_format(value: Any) -> str:
    """A format as the user wrote it (``JSON``, ``ndjson``, ``pg-dump``…) as one of :data:`FORMATS`' keys."""
    text = str(value or "").strip().lower().replace(" ", "_")
    return FORMAT_ALIASES.get(text, text)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_time(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


def job_not_found(job_id: str) -> NotFound:
    return NotFound("Job ID not found", f"No import job has the id {job_id!r}; list jobs to see their ids.",
                    job_id=job_id)


def job_conflict(message: str, job_id: str, hint: str = "") -> Conflict:
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
                "created_at": iso_time(self.created_at), "stages": self.stages, "owner": self.owner}


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


@dataclass
class Progress:
    """How far a run of a job got, in this process (the page shows it while the job loads)."""

    stage: str = ""
    file: str = ""
    files_done: int = 0
    files_total: int = 0
    rows: int = 0
    inserted: int = 0
    quarantined: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


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
                             job.created_at or utc_now(), utc_now(), next_version(), job.owner, int(deleted)]],
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
        out.setdefault(r["job_id"], []).append({"stage": r["stage"], "at": iso_time(r["at"]), "message": r["message"]})
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
        raise job_not_found(str(job_id))
    job = _job_from_row(rows[0])
    check_read(acting(user), job.owner, (), job_not_found(str(job_id)))
    return _with_status(job, _stages(ch, [job.id]).get(job.id, []))


def job_for_change(ch: ClickHouse, job_id: str, user: User | None = None) -> Job:
    """The job, if the acting user may change it (its owner or an admin)."""
    me = acting(user)
    job = get_job(ch, job_id, me)
    check_change(me, job.owner, (), job_not_found(str(job_id)), f"the job {job.name!r}")
    return job


def list_jobs(ch: ClickHouse, user: User | None = None, all_users: bool = False) -> list[Job]:
    """The acting user's jobs (an admin's ``all_users``: everyone's)."""
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
        raise job_conflict("The job is running", job.id, f"It is {job.status}; delete it once it has finished.")
    write_job(ch, job, deleted=True)
    return job


def add_stage(ch: ClickHouse, job_id: str, stage: str, message: str = "") -> None:
    ch.insert_rows("job_stages", [[job_id, next_version(), stage, utc_now(), message]],
                   ["job_id", "seq", "stage", "at", "message"], database=METADATA_DB)


def list_owners(ch: ClickHouse, job_id: str) -> list[Owner]:
    rows = ch.internal_query("SELECT job_id, owner, key_prefix, files, registered_at, urls_issued "
                             "FROM helios.job_owners FINAL WHERE job_id = {id:String} ORDER BY registered_at, owner",
                             {"id": job_id})
    return [Owner(**r) for r in rows]


def write_owner(ch: ClickHouse, owner: Owner) -> None:
    ch.insert_rows("job_owners", [[owner.job_id, owner.owner, owner.key_prefix, owner.files,
                                   owner.registered_at or utc_now(), owner.urls_issued, next_version()]],
                   ["job_id", "owner", "key_prefix", "files", "registered_at", "urls_issued", "version"],
                   database=METADATA_DB)


# ---- status in the seed's shape ------------------------------------------------------------------------


def job_status(ch: ClickHouse, job_id: str, user: User | None = None) -> dict[str, Any]:
    """``{"status", "job_id"}`` (+ ``error`` on Fail), with the stage history and counts."""
    job = get_job(ch, job_id, user)
    if not job.submitted:
        raise job_conflict("No job status: the job is not submitted yet", job.id,
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
                    "quarantined": sum(f.get("quarantined", 0) for f in files), "created_at": iso_time(job.created_at)})
    return out
