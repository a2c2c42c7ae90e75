"""An import job's run after Submitted: ``Validating uploads → Loading → Success`` (or ``Fail`` with the last
stage reached and why). The job service's runner thread calls :func:`run_import` (analysis jobs go on through
:func:`helios_core.analysis.run_analysis` instead)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helios_core.clickhouse import ClickHouse, table_exists
from helios_core.errors import HeliosError, ValidationError
from helios_core.jobs.files import check_file, load_rows_file
from helios_core.jobs.records import (
    ANALYSIS,
    FAIL,
    LOADING,
    SUBMITTED,
    SUCCESS,
    VALIDATING,
    Job,
    Progress,
    Upload,
    add_stage,
    get_job,
    list_owners,
    write_job,
)
from helios_core.jobs.targets import create_target_table
from helios_core.loading import dedup_window
from helios_core.pgdump import line_source, load_dump
from helios_core.users import SYSTEM
from helios_core.wording import plural

if TYPE_CHECKING:
    from helios_core.jobs.service import JobService


def run_import(service: JobService, job_id: str) -> None:
    """Run one submitted import job through its stages; whatever goes wrong, it ends in Success or Fail."""
    progress = service.progress[job_id] = Progress()
    stage = SUBMITTED
    try:
        job = get_job(service.ch, job_id, SYSTEM)
        stage = progress.stage = VALIDATING
        add_stage(service.ch, job.id, VALIDATING, "")
        uploads = service.uploads(job)
        with tempfile.TemporaryDirectory(prefix="helios-job-") as tmp:
            files = validate_uploads(service, job, uploads, Path(tmp))
            stage = progress.stage = LOADING
            progress.files_total = len(files)
            add_stage(service.ch, job.id, LOADING, f"{plural(len(files), 'file')} from "
                                                   f"{plural(len({u.owner for u, _ in files}), 'owner')}.")
            result = load_files(service, job, files, progress)
        total_in = sum(r["inserted"] for r in result["files"])
        total_bad = sum(r["quarantined"] for r in result["files"])
        job.result = result
        write_job(service.ch, job)
        progress.stage = SUCCESS
        add_stage(service.ch, job.id, SUCCESS, f"Loaded {plural(total_in, 'row')}; {total_bad:,} quarantined.")
    except HeliosError as exc:
        progress.stage = FAIL
        add_stage(service.ch, job_id, FAIL, f"Failed. Last status is {stage}. {exc}")
    except Exception as exc:  # noqa: BLE001 - a job must end in Fail, whatever went wrong
        progress.stage = FAIL
        add_stage(service.ch, job_id, FAIL, f"Failed. Last status is {stage}. Unexpected {type(exc).__name__}: "
                                            f"{str(exc)[:500]}")


def resumable(ch: ClickHouse, job: Job) -> tuple[bool, str]:
    """Whether a job a restart interrupted can run again without inserting a batch twice (and why not)."""
    if job.target in ("database", ANALYSIS):  # an analysis reloads its fresh input table from the uploads
        return True, ""
    if not table_exists(ch, job.database, job.table):
        return True, ""
    if dedup_window(ch, job.database, job.table) <= 0:
        return False, (f"{job.database}.{job.table} has no deduplication window, so batches sent before the "
                       "stop would be inserted twice.")
    return True, ""


# ---- validating uploads ----------------------------------------------------------------------------------


def validate_uploads(service: JobService, job: Job, uploads: list[Upload],
                     tmp: Path) -> list[tuple[Upload, Path]]:
    """Every registered owner uploaded, and every file can load: each downloaded into ``tmp``."""
    owners = list_owners(service.ch, job.id)
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
        path = service.download(job, upload, tmp)
        problem = check_file(service.ch, job, path)
        if problem:
            problems.append(f"{upload.owner}/{upload.file}: {problem}")
        files.append((upload, path))
    if problems:
        raise ValidationError("Data validation failed: " + "; ".join(problems[:5])
                              + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "") + ".")
    return files


# ---- loading ---------------------------------------------------------------------------------------------


def load_files(service: JobService, job: Job, files: list[tuple[Upload, Path]],
               progress: Progress) -> dict[str, Any]:
    """Load each file in turn (the job's result is written after each, so the page shows counts so far)."""
    ch = service.ch
    client = ch.new_client() if ch.embedded else None
    out: list[dict[str, Any]] = []
    try:
        if job.target == "new":
            create_target_table(ch, job)
        for upload, path in files:
            progress.file = f"{upload.owner}/{upload.file}"
            token = f"job:{job.id}:{upload.key}"
            if job.format == "pg_dump":
                entry = _load_dump(service, job, upload, path, client, token, progress)
            else:
                counts = load_rows_file(ch, job, upload, path, client=client, batch_rows=service.batch_rows,
                                        token_prefix=token, progress=progress, on_batch=service.on_batch)
                entry = {"owner": upload.owner, "file": upload.file, **counts}
            progress.files_done += 1
            progress.inserted += entry["inserted"]
            progress.quarantined += entry["quarantined"]
            out.append(entry)
            job.result = {"files": out}
            write_job(ch, job)
    finally:
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
    return {"files": out}


def _load_dump(service: JobService, job: Job, upload: Upload, path: Path, client: Any, token: str,
               progress: Progress) -> dict[str, Any]:
    def dump_progress(table: str, rows: int) -> None:
        progress.rows = rows
        if service.on_batch:
            service.on_batch(job.id, progress)
    report = load_dump(service.ch, line_source(path), job.database, append=True, source_id=job.id,
                       origin=f"{upload.owner}/{upload.file}", client=client, progress=dump_progress,
                       batch_rows=service.batch_rows, token_prefix=token)
    return {"owner": upload.owner, "file": upload.file, "inserted": report.inserted,
            "quarantined": report.quarantined, "tables": [t.to_json() for t in report.tables],
            "unsupported": [i.to_json() for i in report.plan.unsupported]}
