"""Import jobs against a real moto server (S3 presigned uploads) and the embedded engine."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import WAIT, wait_until

from helios_core.cli import main as cli_main
from helios_core.errors import Conflict, NotFound, ValidationError
from helios_core.jobs import (
    FAIL,
    LOADING,
    SUBMITTED,
    SUCCESS,
    JobService,
    add_stage,
    confirm_schema,
    get_job,
    get_job_service,
    infer_job_schema,
    job_status,
    list_owners,
)

BUCKET = "helios-jobs-test"
FIXTURE_DUMP = Path(__file__).parent / "fixtures" / "pg_dump_shop.sql"
PEOPLE_DDL = """CREATE TABLE jobs_test.{name} (
    id UInt32, name String, age Nullable(UInt8), joined DateTime64(3, 'UTC'), tags Array(String),
    score Float64 DEFAULT 1.5
) ENGINE = MergeTree ORDER BY id {settings}"""
GOOD_CSV = (b'id,name,age,joined,tags\n1,Ann,30,2024-01-01T00:00:00Z,"[""a"",""b""]"\n2,Ben,,2024-01-02 10:00:00,[]\n'
            b"3,Cid,41,1714567890,[]\n")
BAD_CSV = b"id,name,age,joined\n4,Dee,notanumber,2024-01-01\n5,Eve,22,2024-02-30\n6,Fay,23,2024-03-01\n7,,\n"


@pytest.fixture(scope="module")
def service(ch, aws_conn) -> JobService:
    svc = get_job_service(connection=aws_conn, bucket=BUCKET)
    ch.execute("CREATE DATABASE IF NOT EXISTS jobs_test")
    return svc


def idle(service: JobService) -> None:
    """Wait until no import job is queued or running (generous deadline: the machine may be busy)."""
    wait_until(lambda: service.wait_idle(1), message="the job runner to finish its jobs")


def people_table(ch, dedup: bool = True) -> str:
    name = f"people_{uuid.uuid4().hex[:8]}"
    settings = "SETTINGS non_replicated_deduplication_window = 100" if dedup else ""
    ch.execute(PEOPLE_DDL.format(name=name, settings=settings))
    return name


def put(url: str, data: bytes, content_type: str = "application/octet-stream") -> int:
    # moto's server (Flask) reads a body sent as form data (urllib's default type) as empty; S3 would not care.
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        return response.status


def request_status(method: str, url: str, data: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def stage_names(ch, job_id: str) -> list[str]:
    return [s["stage"] for s in get_job(ch, job_id).stages]


def new_job(service, ch, table: str, fmt: str = "csv", target: str = "existing", database: str = "jobs_test") -> str:
    return service.create({"name": f"test {table}", "format": fmt, "target": target, "database": database,
                           "table": table}).id


# ---- SigV4: what the presigned URL authorizes (AWS checks exactly this) ------------------------------------


def sigv4_signature(method: str, url: str, secret: str) -> str:
    """Recompute a presigned URL's SigV4 signature for ``method`` and the URL's path."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"]
    enc = lambda s: urllib.parse.quote(s, safe="-_.~")  # noqa: E731
    canonical_query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(query))
    params = dict(query)
    canonical = "\n".join([method, parts.path, canonical_query, f"host:{parts.netloc}", "",
                           params["X-Amz-SignedHeaders"], "UNSIGNED-PAYLOAD"])
    date, region, service_name, _ = params["X-Amz-Credential"].split("/")[1:]
    to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], f"{date}/{region}/{service_name}/aws4_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (date, region, service_name, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


# ---- creating jobs ---------------------------------------------------------------------------------------------


def test_create_with_missing_and_invalid_fields(ch, service):
    with pytest.raises(ValidationError) as info:
        service.create({"name": "only a name"})
    assert info.value.message == "missing necessary fields"
    assert info.value.missing_fields == ["format", "target", "database"]
    with pytest.raises(ValidationError) as info:
        service.create({"name": "x", "format": "csv", "target": "existing", "database": "jobs_test"})
    assert info.value.missing_fields == ["table"]
    with pytest.raises(ValidationError, match="Unknown format"):
        service.create({"name": "x", "format": "xlsx", "target": "new", "database": "jobs_test", "table": "t"})
    with pytest.raises(ValidationError, match="does not exist"):
        service.create({"name": "x", "format": "csv", "target": "existing", "database": "jobs_test",
                        "table": "no_such_table"})
    with pytest.raises(ValidationError, match="only letters, digits"):
        service.create({"name": "x", "format": "csv", "target": "new", "database": "jobs_test",
                        "table": "t; DROP TABLE x"})
    people_table(ch)
    with pytest.raises(ValidationError, match="new database"):
        service.create({"name": "x", "format": "pg_dump", "target": "database", "database": "jobs_test"})


def test_cli_create_missing_fields_shape(ch, service, capsys):
    assert cli_main(["jobs", "create", "--name", "cli job"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["error"] == "missing necessary fields"
    assert out["missing_fields"] == ["format", "target", "database"]


# ---- owners and presigned URLs ---------------------------------------------------------------------------------


def test_register_owner_fresh_urls_and_errors(ch, service, aws_conn):
    table = people_table(ch)
    job_id = new_job(service, ch, table)
    first = service.register_owner(job_id, "alice")
    second = service.register_owner(job_id, "alice")
    assert first["job_id"] == job_id and len(first["presigned_urls"]) == 1
    assert first["presigned_urls"] != second["presigned_urls"]
    assert all("X-Amz-Signature=" in u and "X-Amz-Expires=3600" in u for u in first["presigned_urls"] + second[
        "presigned_urls"])
    three = service.register_owner(job_id, "bob@example.com", files=3, expires_in=600)
    assert len(set(three["presigned_urls"])) == 3 and all("X-Amz-Expires=600" in u for u in three["presigned_urls"])
    assert {o.owner for o in list_owners(ch, job_id)} == {"alice", "bob@example.com"}
    with pytest.raises(NotFound) as info:
        service.register_owner("no-such-job", "alice")
    assert info.value.job_id == "no-such-job"
    with pytest.raises(ValidationError) as missing:
        service.register_owner(job_id, "  ")
    assert missing.value.missing_fields == ["data_owner"]


def test_presigned_url_is_a_put_of_one_key(ch, service, aws_conn):
    table = people_table(ch)
    job_id = new_job(service, ch, table)
    url = service.register_owner(job_id, "alice")["presigned_urls"][0]
    # What AWS verifies: the signature covers the method and the key.
    signature = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["X-Amz-Signature"]
    assert sigv4_signature("PUT", url, aws_conn.secret_access_key) == signature
    assert sigv4_signature("GET", url, aws_conn.secret_access_key) != signature
    other_key = url.replace("/alice-", "/mallory-", 1)
    assert sigv4_signature("PUT", other_key, aws_conn.secret_access_key) != signature
    # A plain HTTP PUT stores the object.
    assert put(url, GOOD_CSV, "text/csv") == 200
    keys = [u.key for u in service.uploads(get_job(ch, job_id))]
    assert len(keys) == 1 and keys[0] in url


def test_moto_refuses_get_and_other_keys_with_the_url(ch, service):
    """S3 refuses a GET or another key with a PUT URL. moto 5.2 does not check query signatures at all
    (every presigned request is accepted, or all fail with IAM auth on), so this runs only where it does."""
    table = people_table(ch)
    job_id = new_job(service, ch, table)
    url = service.register_owner(job_id, "alice")["presigned_urls"][0]
    assert put(url, b"id,name\n1,a\n") == 200
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    if request_status("GET", url) == 200 and request_status("PUT", tampered, b"x") == 200:
        pytest.skip("moto does not verify presigned URL signatures; the SigV4 test above covers what S3 checks")
    assert request_status("GET", url) == 403
    assert request_status("PUT", url.replace("/alice-", "/mallory-", 1), b"x") == 403


# ---- the lifecycle ---------------------------------------------------------------------------------------------


def test_submit_stages_counts_and_quarantine(ch, service):
    table = people_table(ch)
    job_id = new_job(service, ch, table)
    alice = service.register_owner(job_id, "alice")["presigned_urls"][0]
    bob = service.register_owner(job_id, "bob")["presigned_urls"][0]
    assert put(alice, GOOD_CSV, "text/csv") == 200
    assert put(bob, BAD_CSV, "text/csv") == 200
    with pytest.raises(Conflict) as info:
        job_status(ch, job_id)
    assert "not submitted yet" in info.value.message
    assert service.submit(job_id) == {"status": "success", "job_id": job_id}
    with pytest.raises(Conflict) as dup:
        service.submit(job_id)
    assert dup.value.message == "Duplicated submission" and dup.value.job_id == job_id
    with pytest.raises(Conflict):
        service.register_owner(job_id, "carol")
    idle(service)
    status = job_status(ch, job_id)
    assert status["status"] == SUCCESS, status
    assert stage_names(ch, job_id) == ["Submitted", "Validating uploads", "Loading", "Success"]
    assert (status["inserted"], status["quarantined"]) == (4, 3)
    rows = ch.internal_query(f"SELECT id, name, age, toString(joined) AS j, tags, score FROM jobs_test.{table} "
                             "ORDER BY id")
    assert [(r["id"], r["name"], r["age"], r["tags"], r["score"]) for r in rows] == [
        (1, "Ann", 30, ["a", "b"], 1.5), (2, "Ben", None, [], 1.5), (3, "Cid", 41, [], 1.5), (6, "Fay", 23, [], 1.5)]
    assert rows[0]["j"] == "2024-01-01 00:00:00.000" and rows[2]["j"] == "2024-05-01 12:51:30.000"
    bad = ch.internal_query(f"SELECT origin, sub_index, error_type, column_name, error_message, raw, source_id "
                            f"FROM jobs_test.{table}_quarantine WHERE source_id = {{j:String}} ORDER BY sub_index",
                            {"j": job_id})
    assert [(b["sub_index"], b["error_type"], b["column_name"]) for b in bad] == [
        (1, "type_mismatch", "age"), (2, "type_mismatch", "joined"), (4, "decode_error", "")]
    assert all(b["origin"].startswith("bob/") and b["origin"].endswith(".csv") for b in bad)
    assert bad[0]["raw"] == "4,Dee,notanumber,2024-01-01" and "notanumber" in bad[0]["error_message"]


def test_unknown_job_everywhere(ch, service):
    for call in (lambda: service.submit("nope"), lambda: job_status(ch, "nope"),
                 lambda: service.register_owner("nope", "x"), lambda: get_job(ch, "nope")):
        with pytest.raises(NotFound) as info:
            call()
        assert info.value.message == "Job ID not found"


def test_json_lines_and_parquet(ch, service):
    table = people_table(ch)
    job_id = new_job(service, ch, table, fmt="jsonl")
    url = service.register_owner(job_id, "j")["presigned_urls"][0]
    lines = [json.dumps({"id": 10, "name": "Jo", "joined": "2024-01-01T00:00:00Z", "tags": ["x"], "extra": 1}),
             "not json", json.dumps([1, 2]), json.dumps({"id": 11, "name": "Kim", "joined": 1714567890000, "tags": []}),
             json.dumps({"name": "no id", "joined": "2024-01-01"}),
             # tags is Array(String) with no DEFAULT: a missing value is a bad row, not an invented []
             json.dumps({"id": 12, "name": "Lu", "joined": "2024-01-01"})]
    assert put(url, "\n".join(lines).encode()) == 200
    service.submit(job_id)
    idle(service)
    status = job_status(ch, job_id)
    assert (status["status"], status["inserted"], status["quarantined"]) == (SUCCESS, 2, 4)
    errors = ch.internal_query(f"SELECT error_type, column_name, error_message FROM jobs_test.{table}_quarantine "
                               "WHERE source_id = {j:String} ORDER BY sub_index", {"j": job_id})
    assert [(e["error_type"], e["column_name"]) for e in errors] == [
        ("decode_error", ""), ("decode_error", ""), ("missing_required", "id"), ("missing_required", "tags")]
    assert errors[3]["error_message"].startswith("missing field tags")

    table2 = people_table(ch)
    job2 = new_job(service, ch, table2, fmt="parquet")
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array([20, 21, 22], pa.int64()), "name": ["P", "Q", "R"],
                             "age": pa.array([5, None, 300], pa.int64()),
                             "joined": pa.array([1704067200000, 1704153600000, 1704240000000], pa.timestamp("ms"))}),
                   buffer)
    service.upload(job2, "analyst", "people.parquet", buffer.getvalue())
    service.submit(job2)
    idle(service)
    status = job_status(ch, job2)
    assert (status["status"], status["inserted"], status["quarantined"]) == (SUCCESS, 2, 1)  # age 300 > UInt8
    assert status["files"][0]["owner"] == "analyst" and status["files"][0]["file"] == "direct-people.parquet"


def test_new_table_schema_inferred_and_confirmed(ch, service):
    table = f"events_{uuid.uuid4().hex[:6]}"
    job_id = new_job(service, ch, table, fmt="jsonl", target="new", database="jobs_new_db")
    url = service.register_owner(job_id, "owner1")["presigned_urls"][0]
    events = [{"event_id": str(uuid.UUID(int=i)), "at": f"2024-05-0{1 + i % 9}T10:00:00Z", "user": {"id": i},
               "amount": i * 1.5, "kind": "buy" if i % 2 else "view",
               "meta": "plain" if i % 3 else {"k": i}} for i in range(60)]  # text and objects: format json
    body = "\n".join(json.dumps(e) for e in events) + "\n" + json.dumps({"event_id": "oops", "at": "x"})
    assert put(url, body.encode()) == 200
    with pytest.raises(ValidationError) as info:
        service.submit(job_id)
    assert info.value.missing_fields == ["schema"]
    job = infer_job_schema(service, job_id)
    types = {c.name: c.type for c in job.schema}
    assert types["event_id"] == "UUID" and "DateTime64" in types["at"]
    assert types["user_id"].startswith(("UInt", "Int")) and types["amount"].startswith("Float")
    assert {c.json_path for c in job.schema} >= {"user.id", "event_id"}
    assert not job.schema_confirmed
    confirmed = confirm_schema(ch, job_id)
    assert confirmed.schema_confirmed and confirmed.order_by
    with pytest.raises(ValidationError):
        confirm_schema(ch, job_id, [{"name": "bad name!", "type": "String", "json_path": "x"}], ["bad name!"])
    service.submit(job_id)
    idle(service)
    status = job_status(ch, job_id)
    assert (status["status"], status["inserted"], status["quarantined"]) == (SUCCESS, 60, 1)
    got = ch.internal_query(f"SELECT count() AS n, sum(user_id) AS s FROM jobs_new_db.{table}")[0]
    assert (got["n"], got["s"]) == (60, sum(range(60)))
    assert {c.name: c.format for c in job.schema}["meta"] == "json"
    metas = ch.internal_query(f"SELECT meta FROM jobs_new_db.{table} WHERE user_id IN (3, 4) ORDER BY user_id")
    assert [json.loads(m["meta"]) if m["meta"] != "plain" else m["meta"] for m in metas] == [{"k": 3}, "plain"]


def test_fallback_sorting_key_is_a_column_clickhouse_can_sort_by_alone():
    from helios_core.jobs.files import default_order_by
    from helios_core.schema import ColumnSpec
    columns = [ColumnSpec(name=n, type=t) for n, t in [
        ("maybe", "Nullable(Int64)"), ("label", "LowCardinality(Nullable(String))"), ("tags", "Array(String)"),
        ("attrs", "Map(String, String)"), ("doc", "JSON"), ("id", "UInt32"), ("name", "String")]]
    assert default_order_by(columns) == ["id"]
    assert default_order_by(columns[:5]) == []


def test_pg_dump_job(ch, service):
    database = f"jobs_dump_{uuid.uuid4().hex[:6]}"
    job = service.create({"name": "shop dump", "format": "pg_dump", "database": database})
    assert job.target == "database"
    url = service.register_owner(job.id, "dba")["presigned_urls"][0]
    assert url.split("?")[0].endswith(".sql")
    assert put(url, FIXTURE_DUMP.read_bytes(), "application/sql") == 200
    service.submit(job.id)
    idle(service)
    status = job_status(ch, job.id)
    assert (status["status"], status["inserted"], status["quarantined"]) == (SUCCESS, 23, 1), status
    assert ch.internal_query(f"SELECT count() AS n FROM {database}.customers")[0]["n"] == 4
    assert any("views" in u["reason"] for u in status["files"][0]["unsupported"])
    origin = ch.internal_query(f"SELECT origin FROM {database}.events_quarantine")[0]["origin"]
    assert origin.startswith("dba/") and origin.endswith(":public.events")


def test_a_dump_in_an_unreadable_encoding_fails_naming_the_file(ch, service):
    job = service.create({"name": "ascii dump", "format": "pg_dump", "database": f"jobs_dump_{uuid.uuid4().hex[:6]}"})
    service.upload(job.id, "dba", "old.sql", b"SET client_encoding = 'SQL_ASCII';\n"
                   + FIXTURE_DUMP.read_bytes().split(b"\n", 1)[1])
    service.submit(job.id)
    idle(service)
    status = job_status(ch, job.id)
    assert status["status"] == FAIL and "old.sql: The dump's client_encoding is SQL_ASCII" in status["error"]
    assert ".." not in status["error"]


def test_validation_failures_end_in_fail(ch, service):
    table = people_table(ch)
    job_id = new_job(service, ch, table)
    service.register_owner(job_id, "silent")
    service.submit(job_id)
    idle(service)
    status = job_status(ch, job_id)
    assert status["status"] == FAIL
    assert status["error"].startswith("Failed. Last status is Validating uploads. Data validation failed")

    job2 = new_job(service, ch, table)
    service.upload(job2, "analyst", "no_id.csv", b"name,age\nx,1\n")
    service.submit(job2)
    idle(service)
    status = job_status(ch, job2)
    assert status["status"] == FAIL and "lacks the required column(s) id, joined." in status["error"]


# ---- restarts ----------------------------------------------------------------------------------------------------


class Crash(BaseException):
    """Stands in for the process dying mid-load (not an Exception, so nothing catches it)."""


def test_restart_during_loading_resumes_without_duplicates(ch, service):
    table = people_table(ch, dedup=True)
    job_id = new_job(service, ch, table)
    rows = "".join(f"{i},p{i},{i % 90},2024-01-01,[]\n" for i in range(1, 11))
    service.upload(job_id, "analyst", "ten.csv", ("id,name,age,joined,tags\n" + rows + "99,bad,x,y,[]\n").encode())
    add_stage(ch, job_id, SUBMITTED, "Submitted for loading.")
    old_batch, service.batch_rows = service.batch_rows, 4

    def crash(job, progress):
        if progress.rows >= 8:
            raise Crash()
    service.on_batch = crash
    try:
        with pytest.raises(Crash):
            service.run(job_id)  # inline, as the runner thread would, until the "process" dies
    finally:
        service.on_batch = None
    assert get_job(ch, job_id).status == LOADING
    partial = ch.internal_query(f"SELECT count() AS n FROM jobs_test.{table}")[0]["n"]
    assert 0 < partial < 10
    try:
        decided = service.recover()  # what start-up does
        assert {"job_id": job_id, "action": "resumed"} in decided
        idle(service)
    finally:
        service.batch_rows = old_batch
    assert get_job(ch, job_id).status == SUCCESS
    assert ch.internal_query(f"SELECT count() AS n, uniqExact(id) AS u FROM jobs_test.{table}")[0] == {"n": 10, "u": 10}
    assert ch.internal_query(f"SELECT count() AS n FROM jobs_test.{table}_quarantine "
                             "WHERE source_id = {j:String}", {"j": job_id})[0]["n"] == 1
    assert "Resumed after a restart (it was at Loading)." in [s["message"] for s in get_job(ch, job_id).stages]


def test_restart_during_loading_without_dedup_is_marked_failed(ch, service):
    table = people_table(ch, dedup=False)
    job_id = new_job(service, ch, table)
    service.upload(job_id, "analyst", "one.csv", b"id,name,joined\n1,a,2024-01-01\n")
    add_stage(ch, job_id, SUBMITTED)
    add_stage(ch, job_id, LOADING, "1 file(s) from 1 owner(s).")
    decided = service.recover()
    assert {"job_id": job_id, "action": "failed"} in decided
    status = job_status(ch, job_id)
    assert status["status"] == FAIL and "Last status is Loading" in status["error"]
    assert "no deduplication window" in status["error"]
    assert service.recover() == [] or job_id not in [d["job_id"] for d in service.recover()]


def test_restart_before_loading_resumes(ch, service):
    table = people_table(ch, dedup=False)
    job_id = new_job(service, ch, table)
    service.upload(job_id, "analyst", "one.csv", b"id,name,joined\n1,a,2024-01-01\n")
    add_stage(ch, job_id, SUBMITTED)
    decided = service.recover()
    assert {"job_id": job_id, "action": "resumed"} in decided
    idle(service)
    assert job_status(ch, job_id)["status"] == SUCCESS


# ---- the command line ------------------------------------------------------------------------------------------------


def test_cli_lifecycle_shapes_and_exit_codes(ch, service, capsys):
    table = people_table(ch)
    assert cli_main(["jobs", "create", "--name", "cli", "--format", "csv", "--target", "existing",
                     "--database", "jobs_test", "--table", table]) == 0
    job_id = json.loads(capsys.readouterr().out)["job_id"]
    assert cli_main(["jobs", "status", job_id]) == 5
    assert "not submitted" in json.loads(capsys.readouterr().out)["error"]
    assert cli_main(["jobs", "register-owner", job_id, "dana"]) == 0
    grant = json.loads(capsys.readouterr().out)
    assert set(grant) >= {"presigned_urls", "job_id"} and grant["job_id"] == job_id
    assert put(grant["presigned_urls"][0], GOOD_CSV, "text/csv") == 200
    assert cli_main(["jobs", "register-owner", "missing-job", "dana"]) == 4
    missing = json.loads(capsys.readouterr().out)
    assert (missing["error"], missing["job_id"]) == ("Job ID not found", "missing-job")
    assert cli_main(["jobs", "submit", job_id]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["job_id"], out["job_status"], out["inserted"]) == ("success", job_id, "Success", 3)
    assert cli_main(["jobs", "submit", job_id]) == 5
    assert json.loads(capsys.readouterr().out)["error"] == "Duplicated submission"
    assert cli_main(["jobs", "submit", "missing-job"]) == 4
    capsys.readouterr()
    assert cli_main(["jobs", "status", job_id]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["status"] == "Success" and status["job_id"] == job_id
    assert cli_main(["jobs", "list"]) == 0
    listed = {j["job_id"]: j for j in json.loads(capsys.readouterr().out)}
    assert job_id in listed
    assert (listed[job_id]["owners"], listed[job_id]["inserted"]) == (1, 3)  # dana, registered once


# ---- the page --------------------------------------------------------------------------------------------------


def test_jobs_page_create_register_upload_submit(ch, service, open_page):
    table = people_table(ch)
    at = open_page("pages/jobs.py")
    at.button(key="jobs_create").click().run()
    assert any("missing necessary fields" in e.value for e in at.error)
    assert any("Missing: name" in c.value for c in at.caption)
    at.text_input(key="jobs_new_name").input("page job")
    at.selectbox(key="jobs_new_db").select("jobs_test").run()
    at.selectbox(key="jobs_new_table").select(table)
    at.button(key="jobs_create").click().run()
    assert not at.exception and any("Created job page job" in s.value for s in at.success)
    job_id = at.selectbox(key="jobs_selected").value
    assert get_job(ch, job_id).table == table
    at.text_input(key="jobs_owner").input("erin")
    at.button(key="jobs_register").click().run()
    codes = [c.value for c in at.code if "curl -X PUT" in c.value]
    assert len(codes) == 1 and "X-Amz-Signature=" in codes[0]
    at.file_uploader(key=f"jobs_file_{job_id}").set_value(("mine.csv", GOOD_CSV, "text/csv"))
    at.run()
    at.button(key="jobs_upload").click().run()
    assert not at.exception
    assert [u.file for u in service.uploads(get_job(ch, job_id))] == ["direct-mine.csv"]
    url = codes[0].split('"')[1]
    assert put(url, BAD_CSV, "text/csv") == 200
    at.button(key="jobs_submit").click().run()
    assert not at.exception
    idle(service)
    at.run()
    assert not at.exception
    assert job_status(ch, job_id)["status"] == SUCCESS
    assert any(p.value in (1.0, 100) for p in at.get("progress"))  # AppTest reports percent
    assert at.query_params.get("job") == job_id


def test_jobs_page_loads_a_dump(ch, open_page):
    at = open_page("pages/jobs.py")
    at.file_uploader(key="dump_file").set_value(("shop.sql", FIXTURE_DUMP.read_bytes(), "application/sql"))
    at.text_input(key="dump_db").input("jobs_page_dump")
    at.run()
    at.button(key="dump_load").click().run()
    assert not at.exception and not at.error
    assert ch.internal_query("SELECT count() AS n FROM jobs_page_dump.customers")[0]["n"] == 4
    tables = [d.value for d in at.dataframe if "rows_in_dump" in d.value.columns]
    assert len(tables) == 1 and set(tables[0]["table"]) >= {"customers", "events", "Order_Items"}
    assert any("were not loaded" in w.value for w in at.warning)
