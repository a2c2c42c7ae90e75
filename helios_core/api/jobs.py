"""The QueryShield seed: create a job, register data owners (presigned PUT URLs), submit, follow its stages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from helios_core.api.auth import require_token, require_user, require_write
from helios_core.errors import ValidationError
from helios_core.runtime import get_runtime
from helios_core.users import User

router = APIRouter(tags=["Import jobs (QueryShield)"], dependencies=[Depends(require_token)])


class RegisterOwner(BaseModel):
    model_config = ConfigDict(extra="ignore")
    job_id: str | None = Field(None, max_length=100)
    data_owner: str | None = Field(None, max_length=200)
    files: int = Field(1, ge=1, le=1000)
    expires_in: int = Field(3600, ge=1, le=7 * 24 * 3600)


class JobRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    job_id: str | None = Field(None, max_length=100)


def _service() -> Any:
    from helios_core.jobs import get_job_service
    return get_job_service()


def _job_id(value: str | None) -> str:
    if not value:
        raise ValidationError("missing necessary fields", "Give the job_id that /create_job returned.",
                              missing_fields=["job_id"])
    return value


@router.post("/create_job", summary="Create an import job; every missing field is listed (400)",
             dependencies=[Depends(require_write)])
def create_job(spec: dict[str, Any] = Body(..., examples=[{"name": "Partner sales", "format": "csv",
                                                            "target": "existing", "database": "shop",
                                                            "table": "sales"}]),
               user: User = Depends(require_user)) -> dict[str, Any]:
    return {"job_id": _service().create(dict(spec), user).id}


@router.post("/register_data_owner", summary="Write-only presigned upload URLs for a data owner (404, 409)",
             dependencies=[Depends(require_write)])
def register_data_owner(body: RegisterOwner, user: User = Depends(require_user)) -> dict[str, Any]:
    return _service().register_owner(body.job_id or "", body.data_owner or "", files=body.files,
                                     expires_in=body.expires_in, user=user)


@router.post("/submit_job", summary="Submit a job for loading (404, 409)", dependencies=[Depends(require_write)])
def submit_job(body: JobRef, user: User = Depends(require_user)) -> dict[str, Any]:
    return _service().submit(_job_id(body.job_id), user)


@router.get("/get_status", summary="A job's stage: {status, job_id} (+ error on Fail) (404, 409)")
def get_status(job_id: str | None = Query(None, max_length=100),
               user: User = Depends(require_user)) -> dict[str, Any]:
    from helios_core.jobs import job_status
    return job_status(get_runtime().clickhouse, _job_id(job_id), user)


@router.get("/get_result", summary="An analysis job's released result: only safe aggregates (404, 409)")
def get_result(job_id: str | None = Query(None, max_length=100),
               user: User = Depends(require_user)) -> dict[str, Any]:
    from helios_core.analysis import get_result as analysis_result
    return analysis_result(get_runtime().clickhouse, _job_id(job_id), user)
