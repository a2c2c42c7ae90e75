"""Analysis jobs (QueryShield): three data owners upload through presigned URLs to moto, Helios releases only
safe aggregates. Real components throughout: the embedded engine, a moto server on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
import urllib.request
from dataclasses import replace

import numpy as np
import pytest

from helios_core.analysis import get_result, get_spec, laplace_noise, owners_view, release, run_query, sensitivity
from helios_core.analysis_check import InputTable, check_analysis
from helios_core.cli import main as cli_main
from helios_core.config import get_settings, set_settings
from helios_core.errors import Conflict, ValidationError
from helios_core.jobs import (
    CHECKING,
    FAIL,
    LOADING,
    RELEASING,
    RUNNING,
    SUBMITTED,
    SUCCESS,
    VALIDATING,
    JobService,
    get_job,
    get_job_service,
    job_status,
)

BUCKET = "helios-analysis-test"
SCHEMA = {"city": "category", "speed": "mph", "vehicles": "count", "driver_id": "id"}
QUERY = ("SELECT city, count() AS trips, sum(vehicles) AS vehicles, avg(speed) AS avg_speed "
         "FROM traffic GROUP BY city ORDER BY city")
# alice and bob drive in A and B, carol in A and C: C has one owner, so it must be withheld.
OWNER_ROWS = {
    "alice": [("A", 30, 2, "a1"), ("A", 35, 3, "a2"), ("A", 40, 1, "a3"), ("B", 50, 4, "a4"), ("B", 55, 2, "a5"),
              ("B", 60, 1, "a6")],
    "bob": [("A", 20, 5, "b1"), ("A", 25, 1, "b2"), ("A", 45, 2, "b3"), ("B", 65, 3, "b4"), ("B", 70, 2, "b5")],
    "carol": [("A", 33, 1, "c1"), ("A", 37, 2, "c2"), ("C", 80, 1, "c3"), ("C", 81, 1, "c4"), ("C", 82, 1, "c5"),
              ("C", 83, 1, "c6"), ("C", 84, 1, "c7"), ("C", 85, 1, "c8")],
}


def csv_bytes(rows) -> bytes:
    lines = ["city,speed,vehicles,driver_id"] + [",".join(str(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def put(url: str, data: bytes) -> int:
    request = urllib.request.Request(url, data=data, method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


@pytest.fixture(scope="module")
def service(ch, aws_conn) -> JobService:
    return get_job_service(connection=aws_conn, bucket=BUCKET)


def job_spec(**over) -> dict:
    spec = {"analysis_name": "Traffic", "query_sql": QUERY, "security_level": "semi", "cloud_providers": ["aws"],
            "schema": SCHEMA}
    spec.update(over)
    return spec


def upload_all(service, job_id: str) -> None:
    for owner, rows in OWNER_ROWS.items():
        grant = service.register_owner(job_id, owner)
        assert len(grant["presigned_urls"]) == 1
        assert put(grant["presigned_urls"][0], csv_bytes(rows)) == 200


def run_job(service, ch, **over) -> str:
    job = service.create(job_spec(**over))
    upload_all(service, job.id)
    service.submit(job.id)
    assert service.wait_idle(120)
    return job.id


# ---- creating --------------------------------------------------------------------------------------------------


def test_missing_and_invalid_fields(service):
    with pytest.raises(ValidationError) as info:
        service.create({"analysis_name": "x", "query_sql": QUERY})
    assert info.value.message == "missing necessary fields"
    assert info.value.missing_fields == ["security_level", "cloud_providers", "schema"]
    with pytest.raises(ValidationError, match='security_level must be "semi" or "mal"'):
        service.create(job_spec(security_level="paranoid"))
    with pytest.raises(ValidationError, match="Unknown cloud provider 'ibm'"):
        service.create(job_spec(cloud_providers=["aws", "ibm"]))
    with pytest.raises(ValidationError, match="schema must be an object"):
        service.create(job_spec(schema=["speed"]))


def test_cli_create_missing_fields_and_file(service, tmp_path, capsys):
    assert cli_main(["jobs", "create", "--analysis-name", "cli"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["missing_fields"] == ["query_sql", "security_level", "cloud_providers", "schema"]
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job_spec()))
    assert cli_main(["jobs", "create", "--file", str(path)]) == 0
    job_id = json.loads(capsys.readouterr().out)["job_id"]
    assert get_spec(service.ch, job_id).table_name == "traffic"
    assert cli_main(["jobs", "result", job_id]) == 5   # not run yet: a conflict
    assert json.loads(capsys.readouterr().out)["error"] == "No result yet"
    for owner, rows in OWNER_ROWS.items():
        assert cli_main(["jobs", "register-owner", job_id, owner]) == 0
        grant = json.loads(capsys.readouterr().out)
        assert grant["job_id"] == job_id and put(grant["presigned_urls"][0], csv_bytes(rows)) == 200
    assert cli_main(["jobs", "submit", job_id, "--timeout", "120"]) == 0
    assert json.loads(capsys.readouterr().out)["job_status"] == SUCCESS
    assert cli_main(["jobs", "status", job_id]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == SUCCESS
    assert cli_main(["jobs", "result", job_id]) == 0
    assert [r[:2] for r in json.loads(capsys.readouterr().out)["rows"]] == [["A", 8], ["B", 5]]
    assert cli_main(["jobs", "analyze", job_id, "SELECT * FROM traffic", "--check"]) == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "select_star"
    assert cli_main(["jobs", "analyze", job_id, "SELECT driver_id FROM traffic"]) == 3
    assert "raw rows" in json.loads(capsys.readouterr().out)["error"]


HOSTILE = [
    ("SELECT * FROM traffic", "select_star"),
    ("SELECT traffic.* FROM traffic", "select_star"),
    ("SELECT speed, driver_id FROM traffic", "raw_rows"),
    ("SELECT DISTINCT driver_id FROM traffic", "raw_rows"),
    ("SELECT __helios_owner, count() FROM traffic GROUP BY __helios_owner", "owner"),
    ("SELECT owner, count() FROM traffic GROUP BY owner", "unknown_name"),
    ("SELECT count() FROM s3('http://127.0.0.1/x.csv', CSV, 'a String')", "table_function"),
    ("SELECT count() FROM helios.jobs", "other_table"),
    ("SELECT count() FROM traffic AS t JOIN system.tables AS s ON 1 = 1", "join"),
    ("SELECT count() FROM traffic WHERE city IN (SELECT name FROM system.databases)", "subquery"),
    ("SELECT arrayJoin([speed]) AS v, count() FROM traffic GROUP BY v", "function"),
    ("SELECT city, groupArray(driver_id) FROM traffic GROUP BY city", "aggregate"),
    ("SELECT city, toString(groupUniqArray(driver_id)) FROM traffic GROUP BY city", "aggregate"),
    ("SELECT city, any(driver_id) FROM traffic GROUP BY city", "aggregate"),
    ("SELECT min(driver_id) FROM traffic", "identifier_value"),
    ("SELECT count() FROM traffic UNION ALL SELECT speed FROM traffic", "union"),
    ("SELECT driver_id, count() OVER (PARTITION BY city) FROM traffic", "window"),
    ("SELECT sum(if(driver_id = 'a1', speed, 0)) FROM traffic", "aggregate_argument"),
    ("SELECT argMax(driver_id, speed) FROM traffic", "aggregate"),
    ("SELECT count() FROM traffic SETTINGS readonly = 0", "outer_clause"),
    ("INSERT INTO traffic SELECT * FROM traffic", "select_only"),
    ("SELECT max(speed) AS __helios_rows FROM traffic", "owner"),
    ("SELECT count() FROM traffic AS a, system.one AS b", "other_table"),
    ("SELECT count() FROM default.traffic", "other_table"),
    ("SELECT count() FROM traffic WHERE speed > (SELECT max(speed) FROM traffic)", "subquery"),
    ("SELECT city, count() FROM traffic WHERE throwIf(driver_id = 'a1') = 0 GROUP BY city", "function"),
    ("SELECT city, quantileExactWeighted(0.5)(driver_id, speed) FROM traffic GROUP BY city", "aggregate"),
    ("SELECT city, count() FROM traffic GROUP BY city WITH TOTALS", "group_modifier"),
    ("SELECT city, count() FROM traffic ARRAY JOIN [1, 2] AS a GROUP BY city", "join"),
]


@pytest.mark.parametrize("sql,rule", HOSTILE)
def test_hostile_analyses_refused_at_creation(service, sql, rule):
    with pytest.raises(ValidationError) as info:
        service.create(job_spec(query_sql=sql, table="traffic"))
    assert getattr(info.value, "rule", None) == rule, info.value.message
    assert info.value.message and "Traceback" not in info.value.message


def test_mal_allow_list_and_bounds(ch):
    table = InputTable("traffic", SCHEMA)
    check_analysis(ch, "SELECT city, count(), sum(speed) FROM traffic GROUP BY city", table, "mal",
                   {"speed": (0, 200)})
    for sql, rule in [("SELECT max(speed) FROM traffic", "mal_function"),
                      ("SELECT sum(vehicles) FROM traffic", "mal_bounds"),
                      ("SELECT city, uniq(driver_id) FROM traffic GROUP BY city", "mal_function"),
                      ("SELECT round(avg(speed), 1) FROM traffic", "mal_output"),
                      ("SELECT count() / 2 FROM traffic", "mal_output")]:
        with pytest.raises(ValidationError) as info:
            check_analysis(ch, sql, table, "mal", {"speed": (0, 200)})
        assert info.value.rule == rule, (sql, info.value.message)


# ---- running: stages, right numbers, suppression ------------------------------------------------------------------


def test_semi_end_to_end_numbers_and_suppression(ch, service, capsys):
    job_id = run_job(service, ch)
    job = get_job(ch, job_id)
    assert [s["stage"] for s in job.stages] == [SUBMITTED, VALIDATING, LOADING, CHECKING, RUNNING, RELEASING,
                                                SUCCESS], job.error
    status = job_status(ch, job_id)
    assert status["status"] == SUCCESS and "files" not in status   # per-owner counts are the creator's only
    result = get_result(ch, job_id)
    plain = ch.internal_query(f"SELECT city, count() AS trips, sum(vehicles) AS vehicles, avg(speed) AS avg_speed "
                              f"FROM helios_analysis.{job.table} GROUP BY city ORDER BY city")
    expected = [[r["city"], r["trips"], r["vehicles"], r["avg_speed"]] for r in plain if r["city"] != "C"]
    assert [[r[0], r[1], r[2], pytest.approx(r[3])] for r in result["rows"]] == expected
    assert result["suppressed_groups"] == 1 and result["released_groups"] == 2
    assert result["thresholds"] == {"min_owners": 2, "min_rows": 5}
    assert [c["unit"] for c in result["columns"]] == ["category", "rows", "count", "mph"]
    assert all("__helios" not in c["name"] for c in result["columns"])
    assert any("withheld" in line for line in result["explanation"])
    # the owners view: row counts only for the creator
    assert "rows loaded" not in owners_view(service, job, creator=False)[0]
    assert {r["data owner"]: r["rows loaded"] for r in owners_view(service, job, creator=True)} == {
        "alice": 6, "bob": 5, "carol": 8}
    assert cli_main(["jobs", "result", job_id]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == result["rows"]


def test_refused_at_check_stage_keeps_last_stage(ch, service):
    # the declared unit says text, so the check at creation passes; one owner is missing the column entirely.
    job = service.create(job_spec())
    grant = service.register_owner(job.id, "alice")
    put(grant["presigned_urls"][0], b"city,speed\nA,1\n")
    service.submit(job.id)
    assert service.wait_idle(120)
    failed = get_job(ch, job.id)
    assert failed.status == FAIL
    assert failed.error.startswith(f"Failed. Last status is {VALIDATING}.") and "lacks the column" in failed.error


def test_runtime_error_never_quotes_a_value(ch, service):
    job_id = run_job(service, ch)
    with pytest.raises(ValidationError) as info:
        run_query(service, job_id, "SELECT count() FROM traffic WHERE CAST(driver_id, 'Int32') = 1")
    assert "failed while running" in info.value.message
    assert not any(v in str(info.value) for rows in OWNER_ROWS.values() for *_, v in rows)


# ---- mal: clipping, noise, budget, differencing ----------------------------------------------------------------


def test_mal_noise_budget_and_differencing(ch, service):
    job_id = run_job(service, ch, security_level="mal", bounds={"vehicles": [0, 10], "speed": [0, 100]},
                     max_rows_per_owner=6, epsilon=1.0, epsilon_budget=2.0,
                     query_sql="SELECT city, count() AS trips, sum(vehicles) AS vehicles FROM traffic GROUP BY city")
    assert get_job(ch, job_id).status == SUCCESS, get_job(ch, job_id).error
    result = get_result(ch, job_id)
    assert result["epsilon_spent"] == 1.0 and result["thresholds"]["max_rows_per_owner"] == 6
    # clipped: carol counts with 6 of her 8 rows; city C (carol only) is withheld either way
    assert [r[0] for r in result["rows"]] in (["A", "B"], ["B", "A"])
    assert result["suppressed_is_noisy"] and result["suppressed_groups"] >= 0   # the count itself is noised
    scales = {c["name"]: c.get("noise_scale") for c in result["columns"]}   # ε split over 2 columns + withheld
    assert scales["trips"] == pytest.approx(6 * 3) and scales["vehicles"] == pytest.approx(6 * 10 * 3)
    with pytest.raises(ValidationError) as info:
        run_query(service, job_id, "SELECT city, count() AS trips, sum(vehicles) AS vehicles FROM traffic "
                                   "WHERE speed > 30 GROUP BY city")
    assert info.value.rule == "differencing"
    assert run_query(service, job_id, "SELECT count() FROM traffic")["epsilon_spent"] == 2.0
    with pytest.raises(ValidationError) as info:
        run_query(service, job_id, "SELECT avg(speed) FROM traffic")
    assert info.value.rule == "budget" and "budget is spent" in info.value.message


def test_mal_noise_is_unbiased(ch, service):
    """Released noisy counts and sums average to the exact (clipped) values over many runs, fixed seed."""
    import pandas as pd

    from helios_core.analysis import AnalysisSpec
    table = InputTable("traffic", SCHEMA)
    checked = check_analysis(ch, "SELECT city, count() AS n, sum(vehicles) AS v FROM traffic GROUP BY city", table,
                             "mal", {"vehicles": (0, 10)})
    spec = AnalysisSpec("j", "traffic", checked.sql, "mal", ["aws"], SCHEMA, max_rows_per_owner=3, epsilon=0.5,
                        bounds={"vehicles": [0, 10]})
    frame = pd.DataFrame({"city": ["A", "B"], "n": [40, 12], "v": [95.0, 30.0], "__helios_owners": [3, 2],
                          "__helios_rows": [40, 12]})
    rng = np.random.default_rng(20260601)
    runs = np.array([[row[1], row[2]] for _ in range(3000) for row in release(spec, checked, frame, rng)["rows"]])
    means = runs.reshape(3000, 2, 2).mean(axis=0)
    count_scale = sensitivity("count", spec, "") / (0.5 / 3)
    sum_scale = sensitivity("sum", spec, "vehicles") / (0.5 / 3)
    assert abs(means[0][0] - 40) < 4 * count_scale * np.sqrt(2 / 3000)
    assert abs(means[1][1] - 30) < 4 * sum_scale * np.sqrt(2 / 3000)
    assert np.std(runs.reshape(3000, 2, 2)[:, 0, 0]) > 1   # there is noise
    draws = laplace_noise(np.zeros(20000), 2.0, np.random.default_rng(1))
    assert abs(draws.mean()) < 4 * 2.0 * np.sqrt(2 / 20000)


# ---- other clouds -----------------------------------------------------------------------------------------------


def sigv4_ok(url: str, secret: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    given = dict(query)["X-Amz-Signature"]
    query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
    enc = lambda s: urllib.parse.quote(s, safe="-_.~")  # noqa: E731
    params = dict(query)
    canonical = "\n".join(["PUT", parts.path, "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(query)),
                           f"host:{parts.netloc}", "", params["X-Amz-SignedHeaders"], "UNSIGNED-PAYLOAD"])
    date, region, svc, _ = params["X-Amz-Credential"].split("/")[1:]
    to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], f"{date}/{region}/{svc}/aws4_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (date, region, svc, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), given)


def azure_sas_ok(url: str, account: str, key_b64: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    resource = f"/blob/{account}{urllib.parse.unquote(parts.path)}"
    fields = [q.get("sp", ""), q.get("st", ""), q.get("se", ""), resource, q.get("si", ""), q.get("sip", ""),
              q.get("spr", ""), q.get("sv", ""), q.get("sr", ""), q.get("snapshot", ""), q.get("ses", ""),
              q.get("rscc", ""), q.get("rscd", ""), q.get("rsce", ""), q.get("rscl", ""), q.get("rsct", "")]
    digest = hmac.new(base64.b64decode(key_b64), "\n".join(fields).encode(), hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), q["sig"])


@pytest.fixture
def other_clouds():
    before = get_settings()
    key = base64.b64encode(b"azure-test-key-0123456789abcdef").decode()
    set_settings(replace(before, gcs_hmac_key_id="GOOGTESTKEY", gcs_hmac_secret="gcs-secret", gcs_bucket="qs-gcs",
                         azure_account_name="qsacct", azure_account_key=key, azure_container="uploads"))
    yield {"gcs_secret": "gcs-secret", "azure_key": key}
    set_settings(before)


def test_gcp_and_azure_urls_signed_offline(ch, service, other_clouds):
    job = service.create(job_spec(cloud_providers=["aws", "gcp", "azure"]))
    first = service.register_owner(job.id, "dora")["presigned_urls"]
    again = service.register_owner(job.id, "dora")["presigned_urls"]
    assert len(first) == 3 and set(first).isdisjoint(again)   # one per provider, fresh each call
    aws_url, gcs_url, azure_url = first
    gcs = urllib.parse.urlsplit(gcs_url)
    assert gcs.netloc == "storage.googleapis.com" and gcs.path.startswith("/qs-gcs/jobs/")
    assert "X-Amz-Credential=GOOGTESTKEY" in gcs_url and sigv4_ok(gcs_url, other_clouds["gcs_secret"])
    assert not sigv4_ok(gcs_url, "another-secret")
    az = urllib.parse.urlsplit(azure_url)
    assert az.netloc == "qsacct.blob.core.windows.net" and az.path.startswith("/uploads/jobs/")
    params = dict(urllib.parse.parse_qsl(az.query))
    assert params["sp"] == "cw" and params["sr"] == "b" and params["spr"] == "https"
    assert azure_sas_ok(azure_url, "qsacct", other_clouds["azure_key"])
    assert "gcs-secret" not in json.dumps(get_spec(ch, job.id).to_json())


def test_owners_upload_through_gcp_and_aws_links(ch, service, moto_server, aws_conn):
    """GCS's XML API pointed at the moto server (HELIOS_GCS_ENDPOINT_URL): alice uploads with her gcp link,
    bob and carol with their aws links; the job loads both clouds and releases the same numbers."""
    aws_conn.client("s3").create_bucket(Bucket="qs-gcs-e2e", CreateBucketConfiguration={
        "LocationConstraint": "eu-west-1"})
    before = get_settings()
    set_settings(replace(before, gcs_hmac_key_id="GOOGTESTKEY", gcs_hmac_secret="gcs-secret",
                         gcs_bucket="qs-gcs-e2e", gcs_endpoint_url=moto_server))
    try:
        job = service.create(job_spec(cloud_providers=["aws", "gcp"]))
        for owner, rows in OWNER_ROWS.items():
            aws_url, gcs_url = service.register_owner(job.id, owner)["presigned_urls"]
            assert gcs_url.startswith(f"{moto_server}/qs-gcs-e2e/jobs/{job.id}/")
            assert put(gcs_url if owner == "alice" else aws_url, csv_bytes(rows)) == 200
        clouds = {r["data owner"]: r["clouds"] for r in owners_view(service, get_job(ch, job.id), creator=True)}
        assert clouds == {"alice": "gcp", "bob": "aws", "carol": "aws"}
        service.submit(job.id)
        assert service.wait_idle(120)
        assert get_job(ch, job.id).status == SUCCESS, get_job(ch, job.id).error
        result = get_result(ch, job.id)
        assert [r[:3] for r in result["rows"]] == [["A", 8, 17], ["B", 5, 12]]
    finally:
        set_settings(before)


def test_unconfigured_provider_says_what_to_set(service):
    before = get_settings()
    set_settings(replace(before, gcs_hmac_key_id=None, gcs_hmac_secret=None, gcs_bucket=None,
                         azure_account_name=None, azure_account_key=None, azure_container=None))
    try:
        with pytest.raises(ValidationError, match="HELIOS_GCS_HMAC_KEY_ID"):
            service.create(job_spec(cloud_providers=["gcp"]))
        with pytest.raises(ValidationError, match="HELIOS_AZURE_ACCOUNT_KEY"):
            service.create(job_spec(cloud_providers=["aws", "azure"]))
    finally:
        set_settings(before)


def test_result_of_import_job_and_unknown(ch, service):
    from helios_core.errors import NotFound
    with pytest.raises(NotFound):
        get_result(ch, "no-such-job")
    with pytest.raises(Conflict):
        get_result(ch, service.create(job_spec()).id)


# ---- the Jobs page --------------------------------------------------------------------------------------------


def test_jobs_page_analysis_form_check_and_result(ch, service, open_page):
    job_id = run_job(service, ch)
    at = open_page("pages/jobs.py")
    at.text_input(key="an_name").input("Page analysis")
    at.text_area(key="an_sql").input("SELECT * FROM traffic")
    at.button(key="an_check").click().run()
    assert any("Refused (select_star)" in e.value for e in at.error)
    at.text_area(key="an_sql").input("SELECT city, count() AS n FROM traffic GROUP BY city")
    at.button(key="an_check").click().run()
    assert any(s.value.startswith("Allowed.") for s in at.success)
    at.button(key="an_create").click().run()
    assert not at.exception and any("Created Page analysis" in s.value for s in at.success)
    created = at.selectbox(key="an_selected").value
    assert get_spec(ch, created).security_level == "semi"
    at.text_input(key="an_owner").input("erin")
    at.button(key="an_register").click().run()
    assert any("curl -X PUT" in c.value and "X-Amz-Signature=" in c.value for c in at.code)
    owners = [d.value for d in at.dataframe if "data owner" in d.value.columns]
    assert owners and "rows loaded" in owners[0].columns   # this session created the job
    at.selectbox(key="an_selected").select(job_id).run()
    assert not at.exception
    tables = [d.value for d in at.dataframe if "trips (rows)" in d.value.columns]
    assert len(tables) == 1 and list(tables[0]["city (category)"]) == ["A", "B"]
    assert not any("__helios" in str(c) for d in at.dataframe for c in d.value.columns)
    assert at.get("plotly_chart")
    assert any("at least 2 data owners" in c.value for c in at.caption)
    assert any("withheld" in i.value for i in at.info)
    owners = [d.value for d in at.dataframe if "data owner" in d.value.columns]
    assert owners and "rows loaded" not in owners[0].columns   # another session's job: no row counts


def test_types_from_uploads_merge():
    from helios_core.analysis import _merge
    assert _merge(["Nullable(DateTime64(3, 'UTC'))", "DateTime64(3, 'UTC')"]) == "Nullable(DateTime64(3, 'UTC'))"
    assert _merge(["Int64", "Nullable(Float64)"]) == "Nullable(Float64)"
    assert _merge(["LowCardinality(String)", "Int64"]) == "Nullable(String)"
    assert _merge(["Array(Nullable(Int64))"]) == "Array(Nullable(Int64))"


def test_json_lines_with_dates(ch, service):
    job = service.create({"analysis_name": "Sales", "format": "jsonl", "security_level": "semi",
                          "cloud_providers": ["aws"], "schema": {"day": "date", "amount": "usd", "shop": "category"},
                          "query_sql": "SELECT toStartOfMonth(day) AS month, sum(amount) AS total, count() AS n "
                                       "FROM sales GROUP BY month ORDER BY month"})
    for i, owner in enumerate(("ann", "ben", "cy")):
        lines = [json.dumps({"day": f"2024-0{1 + (n % 2)}-1{n}", "amount": 10 * (i + 1) + n, "shop": "s"})
                 for n in range(6)]
        url = service.register_owner(job.id, owner)["presigned_urls"][0]
        assert put(url, ("\n".join(lines) + "\n").encode()) == 200
    service.submit(job.id)
    assert service.wait_idle(120)
    assert get_job(ch, job.id).status == SUCCESS, get_job(ch, job.id).error
    result = get_result(ch, job.id)
    plain = ch.internal_query(f"SELECT toStartOfMonth(day) AS month, sum(amount) AS total, count() AS n "
                              f"FROM helios_analysis.{get_job(ch, job.id).table} GROUP BY month ORDER BY month")
    assert [[r[1], r[2]] for r in result["rows"]] == [[p["total"], p["n"]] for p in plain]
    assert [r[0][:7] for r in result["rows"]] == ["2024-01", "2024-02"]
    assert [c["unit"] for c in result["columns"]] == ["date", "usd", "rows"]


def test_restart_mid_analysis_resumes_from_the_uploads(ch, service):
    """A job a restart left in Running the analysis reloads its fresh input table and finishes, once."""
    from helios_core.jobs import add_stage
    job = service.create(job_spec())
    upload_all(service, job.id)
    for stage in (SUBMITTED, VALIDATING, LOADING, CHECKING, RUNNING):
        add_stage(ch, job.id, stage)
    assert {"job_id": job.id, "action": "resumed"} in service.recover()
    assert service.wait_idle(120)
    assert get_job(ch, job.id).status == SUCCESS, get_job(ch, job.id).error
    assert [r[:2] for r in get_result(ch, job.id)["rows"]] == [["A", 8], ["B", 5]]


def test_owners_rows_are_not_readable_outside_an_analysis(ch):
    """The clean room has no back door: SQL typed in the explorer, the CLI or the API cannot read the analysis
    inputs, the catalog does not list them, and the Databases page's preview refuses them."""
    from helios_core.analysis import ANALYSIS_DB
    from helios_core.clickhouse import list_databases, preview
    from helios_core.errors import NotFound
    from helios_core.sqlguard import SqlRefused

    ch.execute(f"CREATE DATABASE IF NOT EXISTS {ANALYSIS_DB}")
    ch.execute(f"CREATE TABLE IF NOT EXISTS {ANALYSIS_DB}.probe (owner String, v UInt8) ENGINE = MergeTree ORDER BY v")
    for sql in (f"SELECT * FROM {ANALYSIS_DB}.probe", f"SELECT count() FROM (SELECT owner FROM {ANALYSIS_DB}.probe)",
                f"WITH x AS (SELECT * FROM `{ANALYSIS_DB}`.`probe`) SELECT * FROM x"):
        with pytest.raises(SqlRefused, match="data owners"):
            ch.query(sql)
    assert ANALYSIS_DB not in list_databases(ch)
    with pytest.raises(NotFound):
        preview(ch, ANALYSIS_DB, "probe")
