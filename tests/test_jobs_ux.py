"""Import jobs as a new user meets them: inference that keeps a column's type despite one bad row, and the
Jobs page (type dropdown, sandbox link wording, ISO times, a cleared form)."""

from __future__ import annotations

import urllib.request
import uuid

import pytest

from helios_core.jobs import SUCCESS, JobService, confirm_schema, get_job_service, infer_job_schema, job_status

BUCKET = "helios-jobs-ux-test"


@pytest.fixture(scope="module")
def service(ch, aws_conn) -> JobService:
    return get_job_service(connection=aws_conn, bucket=BUCKET)


def put(url: str, data: bytes) -> int:
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "text/csv"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_one_bad_csv_row_keeps_the_column_type_and_is_quarantined(ch, service):
    table = f"orders_{uuid.uuid4().hex[:6]}"
    job_id = service.create({"name": "one bad row", "format": "csv", "target": "new", "database": "jobs_ux_db",
                             "table": table}).id
    rows = [f"{i},{i * 1.25},2024-01-0{1 + i % 9}T10:00:00Z,US" for i in range(20)]
    rows[7] = "7,oops,2024-01-08T10:00:00Z,US"
    url = service.register_owner(job_id, "owner1")["presigned_urls"][0]
    assert put(url, ("id,amount,created_at,country\n" + "\n".join(rows) + "\n").encode()) == 200
    job = infer_job_schema(service, job_id)
    types = {c.name: c.type for c in job.schema}
    assert types["amount"] == "Float64" and types["id"].startswith("UInt")
    confirm_schema(ch, job_id)
    service.submit(job_id)
    service.wait_idle(60)
    status = job_status(ch, job_id)
    assert (status["status"], status["inserted"], status["quarantined"]) == (SUCCESS, 19, 1)
