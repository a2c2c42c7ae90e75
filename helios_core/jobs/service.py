"""The process-wide job service: where uploads live (the bucket, upload links, the analyst's own files) and the
runner thread that takes submitted jobs one at a time, resuming or failing on start-up those a restart
interrupted."""

from __future__ import annotations

import hashlib
import io
import queue
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helios_core.clickhouse import ClickHouse
from helios_core.config import get_settings
from helios_core.errors import AwsError, HeliosError, ValidationError
from helios_core.identifiers import sanitize_name
from helios_core.jobs.records import (
    ACTIVE_STAGES,
    ANALYSIS,
    DEFAULT_BUCKET,
    DEFAULT_EXPIRY_S,
    FAIL,
    FORMATS,
    LOADING,
    MAX_FILES_PER_OWNER,
    SUBMITTED,
    Job,
    Owner,
    Progress,
    Upload,
    add_stage,
    job_conflict,
    job_for_change,
    list_jobs,
    list_owners,
    owner_slug,
    utc_now,
    write_job,
    write_owner,
)
from helios_core.jobs.stages import resumable, run_import
from helios_core.jobs.targets import validate_job_spec
from helios_core.users import SYSTEM, User, acting


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
        job = Job(id=str(uuid.uuid4()), bucket=bucket, created_at=utc_now(), owner=me.id, **clean)
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
            raise job_conflict("Cannot register to a submitted job", job.id,
                            "The job has been submitted; create a new job for more data.")
        if not 1 <= int(files) <= MAX_FILES_PER_OWNER:
            raise ValidationError(f"files must be between 1 and {MAX_FILES_PER_OWNER}.")
        if not 60 <= int(expires_in) <= 7 * 24 * 3600:
            raise ValidationError("expires_in must be between 60 seconds and 7 days.")
        existing = {o.owner: o for o in list_owners(self.ch, job.id)}.get(owner)
        record = existing or Owner(job.id, owner, f"{job.prefix}{owner_slug(owner)}/", int(files), utc_now())
        record.files = max(record.files, int(files))
        # Each call is a new grant with its own keys, so its URLs are always new (S3 signatures only change
        # by the second); every object an owner uploads, under any grant, is loaded.
        grant = f"{utc_now():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
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
        write_owner(self.ch, record)
        return {"presigned_urls": urls, "job_id": job.id, "data_owner": owner, "keys": keys,
                "expires_in": int(expires_in), "method": "PUT"}

    def upload(self, job_id: str, owner: str, filename: str, data: bytes | io.IOBase,
               user: User | None = None) -> Upload:
        """The analyst's own file (the page's uploader), stored like an owner's upload."""
        owner = str(owner or "").strip() or "analyst"
        job = job_for_change(self.ch, job_id, user)
        if job.submitted:
            raise job_conflict("Cannot upload to a submitted job", job.id, "Create a new job for more data.")
        existing = {o.owner: o for o in list_owners(self.ch, job.id)}.get(owner)
        record = existing or Owner(job.id, owner, f"{job.prefix}{owner_slug(owner)}/", 0, utc_now())
        stem = sanitize_name(Path(filename or "file").stem)[:60] or "file"
        key = f"{record.key_prefix}direct-{stem}.{FORMATS[job.format]}"
        body = data if isinstance(data, (bytes, bytearray)) else data.read()
        self.ensure_bucket(job.bucket)
        with self._aws("s3:PutObject"):
            self.s3().put_object(Bucket=job.bucket, Key=key, Body=body)
        write_owner(self.ch, record)
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
                raise job_conflict("Duplicated submission", job.id, f"The job is already {job.status}.")
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
            safe, why = resumable(self.ch, job)
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

    def run(self, job_id: str) -> None:
        """Run one submitted job through its stages (in the runner thread, or inline)."""
        self._running.add(job_id)
        try:
            if self._is_analysis(job_id):
                from helios_core.analysis import run_analysis
                run_analysis(self, job_id)
            else:
                run_import(self, job_id)
        finally:
            self._running.discard(job_id)

    def _is_analysis(self, job_id: str) -> bool:
        rows = self.ch.internal_query("SELECT target FROM helios.jobs FINAL WHERE id = {id:String}", {"id": job_id})
        return bool(rows) and rows[0]["target"] == ANALYSIS


def _bucket_error(exc: Exception, bucket: str) -> HeliosError:
    if isinstance(exc, HeliosError):
        return AwsError(f"Buckets creation error: {exc.message}", exc.hint or f"Helios keeps uploads in {bucket}.")
    return AwsError(f"Buckets creation error: {exc}")
