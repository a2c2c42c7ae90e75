"""Import jobs as a new user meets them: inference that keeps a column's type despite one bad row, and the
Jobs page (type dropdown, sandbox link wording, ISO times, a cleared form)."""

from __future__ import annotations

import json
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


def test_jobs_page_form_clears_times_to_the_second_and_type_dropdown(ch, service, open_page):
    import re

    at = open_page("pages/jobs.py")
    assert any("write-only links" in c.value for c in at.caption)  # not the sandbox: S3 checks signatures
    at.selectbox(key="jobs_new_format").select("csv").run()
    at.radio(key="jobs_new_target_False").set_value("new").run()
    at.text_input(key="jobs_new_name").input("typed job")
    at.text_input(key="jobs_new_db_text").input("jobs_ux_db")
    table = f"typed_{uuid.uuid4().hex[:6]}"
    at.text_input(key="jobs_new_table_text").input(table).run()
    at.button(key="jobs_create").click().run()
    assert not at.exception, at.exception
    assert any("Created job typed job" in s.value for s in at.success)
    assert at.text_input(key="jobs_new_name").value == "" and at.text_input(key="jobs_new_table_text").value == ""
    job_id = at.selectbox(key="jobs_selected").value

    url = service.register_owner(job_id, "owner1")["presigned_urls"][0]
    assert put(url, b"id,amount\n1,2.5\n2,3.5\n") == 200
    at.button(key="jobs_infer").click().run()
    assert not at.exception, at.exception
    editor = next(d for d in at.dataframe if d.proto.editing_mode and '"type"' in d.proto.columns)
    config = json.loads(editor.proto.columns)["type"]["type_config"]
    assert config["type"] == "selectbox" and {"Float64", "String", "UInt64"} <= set(config["options"])
    confirm_schema(ch, job_id)
    service.submit(job_id)
    service.wait_idle(60)
    at.run()
    stages = next(d.value for d in at.dataframe if "stage" in d.value.columns)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", t) for t in stages["at"]), list(stages["at"])
    listing = next(d.value for d in at.dataframe if "created_at" in d.value.columns)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", t) for t in listing["created_at"])


def test_jobs_page_in_the_sandbox_says_links_also_answer_get(ch, service, open_page, aws_sandbox):
    previous = service.connection, service.bucket
    service.use_connection(aws_sandbox.connection(), BUCKET)
    try:
        at = open_page("pages/jobs.py")
        captions = " ".join(c.value for c in at.caption)
        assert "also answer GET" in captions and "write-only" not in captions
    finally:
        service.use_connection(*previous)
