"""Reports: results against hand-written SQL on the demo data; hostile input refused or bound."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import APPTEST_TIMEOUT
from streamlit.testing.v1 import AppTest

from helios_core.cli import main as cli_main
from helios_core.errors import NotFound, ValidationError
from helios_core.report_filters import Filter, parse_condition
from helios_core.reports import (
    Measure,
    ReportDefinition,
    captcha_preset,
    compile_report,
    delete_report,
    get_report,
    list_reports,
    run_report,
    save_report,
)

SITE = "3f1c2a4e-8b7d-4c21-9a6e-0d5b7f3e2a11"


def _frame(ch, sql, parameters=None) -> pd.DataFrame:
    # The same guarded path reports use, so values (UUIDs as text, etc.) come back alike.
    return ch.query(sql, parameters).frame


def _records(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    out = []
    for row in frame[columns].itertuples(index=False):
        out.append(tuple(str(v) if not isinstance(v, float) else round(v, 3) for v in row))
    return out


def test_captcha_preset_matches_hand_written_sql(ch, demo):
    _, result = run_report(ch, captcha_preset())
    got = result.frame
    assert list(got.columns) == ["bucket", "site_id", "serves", "solves", "solve_rate", "median_seconds_to_solve"]
    counts = _frame(ch, """
        SELECT toStartOfDay(time) AS bucket, site_id, countIf(type = 'serve') AS serves,
               countIf(type = 'solve') AS solves, round(solves / serves, 4) AS solve_rate
        FROM demo.captcha_events GROUP BY bucket, site_id ORDER BY bucket, site_id""")
    assert len(got) == len(counts) > 0
    assert _records(got, ["bucket", "site_id", "serves", "solves"]) == \
        _records(counts, ["bucket", "site_id", "serves", "solves"])
    both = got.merge(counts, on=["bucket", "site_id"], suffixes=("", "_ref"))
    both = both[both["serves"] > 0]
    assert (both["solve_rate"].astype(float) - both["solve_rate_ref"]).abs().max() < 1e-9
    # Median seconds from serve to solve: pairs built a different way (one row per procedure).
    medians = _frame(ch, """
        SELECT toStartOfDay(served) AS bucket, site_id,
               round(quantileExact(0.5)(dateDiff('millisecond', served, solved) / 1000), 3) AS median_ref
        FROM (SELECT correlation_id, any(site_id) AS site_id, minIf(time, type = 'serve') AS served,
                     minIf(time, type = 'solve') AS solved, countIf(type = 'solve') AS n_solves
              FROM demo.captcha_events GROUP BY correlation_id)
        WHERE n_solves > 0 GROUP BY bucket, site_id""")
    joined = got.merge(medians, on=["bucket", "site_id"])
    assert len(joined) > 0.9 * len(got)
    assert (joined["median_seconds_to_solve"] - joined["median_ref"]).abs().max() < 1e-6
    assert joined["median_ref"].between(2, 60).all()


def test_measures_filters_and_grain_match_hand_written_sql(ch, demo):
    d = ReportDefinition(
        database="demo", table="purchase_events", time_column="event_time", grain="week",
        measures=[Measure("count"), Measure("distinct", "user_id"), Measure("sum", "amount"),
                  Measure("avg", "amount"), Measure("min", "amount"), Measure("max", "item_count"),
                  Measure("ratio", label="refund_rate", where=[Filter("status", "=", ["refunded"])])],
        dimensions=["currency", "payment_method"],
        filters=[Filter("currency", "in", ["USD", "EUR"]), Filter("amount", "between", ["10", "400"]),
                 Filter("items", "contains", ["mug"]), Filter("status", "!=", ["failed"]),
                 Filter("payment_method", "not in", ["apple_pay"])])
    _, result = run_report(ch, d)
    ref = _frame(ch, """
        SELECT toStartOfWeek(event_time, 1) AS bucket, currency, payment_method, count() AS count,
               uniqExact(user_id) AS distinct_user_id, sum(amount) AS sum_amount, round(avg(amount), 4) AS avg_amount,
               min(amount) AS min_amount, max(item_count) AS max_item_count,
               round(countIf(status = 'refunded') / count(), 4) AS refund_rate
        FROM demo.purchase_events
        WHERE currency IN ('USD', 'EUR') AND amount BETWEEN 10 AND 400 AND has(items, 'mug') AND status != 'failed'
          AND payment_method NOT IN ('apple_pay')
        GROUP BY bucket, currency, payment_method ORDER BY bucket, currency, payment_method""")
    cols = list(ref.columns)
    assert list(result.frame.columns) == cols
    assert len(ref) > 0
    assert _records(result.frame, cols) == _records(ref, cols)


def test_time_range_hour_grain_and_single_value_operators(ch, demo):
    end = ch.internal_query("SELECT toString(max(event_time)) AS m FROM demo.user_activity")[0]["m"][:10]
    d = ReportDefinition(database="demo", table="user_activity", time_column="event_time", grain="hour",
                         measures=[Measure("count", label="views", where=[Filter("event_type", "=", ["page_view"])])],
                         filters=[Filter("duration_ms", ">", [1000]), Filter("user_id", "<", ["1500"]),
                                  Filter("page", "contains", ["DOC"]), Filter("country", "=", ["US"])],
                         time_from=f"{end}T00:00:00Z", time_to=f"{end} 12:00")
    _, result = run_report(ch, d)
    ref = _frame(ch, """
        SELECT toStartOfHour(event_time) AS bucket, countIf(event_type = 'page_view') AS views
        FROM demo.user_activity
        WHERE duration_ms > 1000 AND user_id < 1500 AND positionCaseInsensitive(page, 'doc') > 0 AND country = 'US'
          AND event_time >= toDateTime64({d:String}, 3, 'UTC')
          AND event_time < toDateTime64({d:String} || ' 12:00:00', 3, 'UTC')
        GROUP BY bucket ORDER BY bucket""", {"d": end})
    assert len(ref) > 0
    assert _records(result.frame, ["bucket", "views"]) == _records(ref, ["bucket", "views"])


HOSTILE = ["x' OR '1'='1", "'; DROP TABLE demo.users; --", "serve\\' OR 1=1 --", "{p9:String}", "`; SELECT 1",
           "solve) OR (1=1"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_filter_values_are_bound_not_pasted(ch, demo, value):
    d = ReportDefinition(database="demo", table="captcha_events", time_column="time",
                         filters=[Filter("type", "=", [value]), Filter("type", "in", [value, "serve"])])
    compiled = compile_report(ch, d)
    assert value not in compiled.sql
    assert value in compiled.parameters.values() or [value, "serve"] in compiled.parameters.values()
    _, result = run_report(ch, d)
    assert result.row_count == 0  # nothing equals the hostile text, and nothing was injected
    assert ch.internal_query("SELECT count() AS n FROM demo.users")[0]["n"] == 2000


@pytest.mark.parametrize("column", ["type`; DROP TABLE demo.users; --", "nope", "type = 'serve' OR 1", "TIME"])
def test_unknown_or_hostile_column_names_are_refused(ch, demo, column):
    for d in (ReportDefinition("demo", "captcha_events", "time", filters=[Filter(column, "=", ["serve"])]),
              ReportDefinition("demo", "captcha_events", "time", dimensions=[column]),
              ReportDefinition("demo", "captcha_events", "time", measures=[Measure("distinct", column)]),
              ReportDefinition("demo", "captcha_events", column)):
        with pytest.raises(ValidationError) as info:
            compile_report(ch, d)
        assert "not a column of demo.captcha_events" in info.value.message
    assert ch.internal_query("SELECT count() AS n FROM demo.users")[0]["n"] == 2000


@pytest.mark.parametrize("filter_, expected", [
    (Filter("user_id", "=", ["1 OR 1=1"]), "not a valid value for user_id (UInt32): expected a whole number"),
    (Filter("user_id", "in", ["1", "2.5"]), "not a valid value for user_id"),
    (Filter("amount", ">", ["lots"]), "expected a number"),
    (Filter("order_id", "=", ["not-a-uuid"]), "expected a UUID"),
    (Filter("event_time", ">", ["yesterday'"]), "expected a date/time"),
    (Filter("amount", "between", ["1"]), "needs exactly two values"),
    (Filter("amount", "like", ["1"]), "Unknown operator 'like'"),
    (Filter("amount", "contains", ["1"]), "contains works on text and array columns"),
    (Filter("items", "=", ["mug"]), "can only be filtered with contains"),
])
def test_wrong_typed_values_give_clear_messages(ch, demo, filter_, expected):
    d = ReportDefinition("demo", "purchase_events", "event_time", filters=[filter_])
    with pytest.raises(ValidationError) as info:
        compile_report(ch, d)
    assert expected in " ".join(info.value.problems)


def test_other_definition_problems(ch, demo):
    with pytest.raises(NotFound):
        compile_report(ch, ReportDefinition("demo", "no_such_table", "time"))
    with pytest.raises(ValidationError, match="needs a numeric column"):
        compile_report(ch, ReportDefinition("demo", "purchase_events", "event_time",
                                            measures=[Measure("sum", "currency")]))
    with pytest.raises(ValidationError, match="not a date or time"):
        compile_report(ch, ReportDefinition("demo", "purchase_events", "amount"))
    with pytest.raises(ValidationError, match="At most 2"):
        compile_report(ch, ReportDefinition("demo", "purchase_events", "event_time",
                                            dimensions=["currency", "status", "payment_method"]))
    with pytest.raises(ValidationError, match="Unknown grain"):
        compile_report(ch, ReportDefinition("demo", "purchase_events", "event_time", grain="fortnight"))
    with pytest.raises(ValidationError, match="measure label"):
        compile_report(ch, ReportDefinition("demo", "purchase_events", "event_time",
                                            measures=[Measure("count", label="n`) FROM x; --")]))
    with pytest.raises(ValidationError) as info:
        ReportDefinition.from_json({"database": "demo"})
    assert info.value.missing_fields == ["table", "time_column"]


def test_parse_condition():
    assert parse_condition("type = solve") == Filter("type", "=", ["solve"])
    assert parse_condition("country not in US, 'GB'") == Filter("country", "not in", ["US", "GB"])
    assert parse_condition("amount between 1, 5") == Filter("amount", "between", ["1", "5"])
    assert parse_condition("type ≠ serve").op == "!="
    with pytest.raises(ValidationError):
        parse_condition("just words")


def test_definition_round_trips_through_url_and_saved_store(ch, demo):
    d = captcha_preset()
    d.filters = [Filter("site_id", "in", [SITE])]
    assert ReportDefinition.from_json(d.to_query_param()).to_json() == d.to_json()
    saved = save_report(ch, d, "Captcha for one site")
    assert get_report(ch, saved.id).definition.to_json() == {**d.to_json(), "name": "Captcha for one site"}
    assert saved.id in [r.id for r in list_reports(ch)]
    renamed = save_report(ch, d, "Captcha renamed", report_id=saved.id)
    assert renamed.id == saved.id and renamed.created_at == saved.created_at
    delete_report(ch, saved.id)
    assert saved.id not in [r.id for r in list_reports(ch)]
    with pytest.raises(NotFound):
        get_report(ch, saved.id)
    with pytest.raises(ValidationError) as info:
        save_report(ch, ReportDefinition("demo", "captcha_events", "time"), "")
    assert info.value.missing_fields == ["name"]


def test_cli(ch, demo, capsys):
    assert cli_main(["reports", "run", "--preset", "captcha", "--where", f"site_id = {SITE}"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metadata"]["row_count"] > 0 and {r["site_id"] for r in out["data"]} == {SITE}
    assert cli_main(["reports", "run", "--preset", "captcha", "--where", "site_id = 12"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert "expected a UUID" in out["error"]
    assert cli_main(["reports", "show", "nope"]) == 4
    capsys.readouterr()
    definition = json.dumps(captcha_preset().to_json())
    assert cli_main(["reports", "save", "--definition", definition, "--name", "from cli"]) == 0
    saved_id = json.loads(capsys.readouterr().out)["id"]
    assert cli_main(["reports", "run", "--id", saved_id, "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("bucket,site_id,serves,solves")
    assert cli_main(["reports", "delete", saved_id]) == 0


def _result_frame(at) -> pd.DataFrame:
    frames = [d.value for d in at.dataframe if "bucket" in d.value.columns]  # the editors are dataframes too
    assert len(frames) == 1
    return frames[0]


def test_reports_page_runs_the_preset_and_saves(demo, open_page):
    at = open_page("pages/reports.py")
    at.button(key="rp_run").click().run()
    assert not at.exception and not at.error
    frame = _result_frame(at)
    assert {"serves", "solves", "solve_rate", "median_seconds_to_solve"} <= set(frame.columns)
    assert len(at.get("plotly_chart")) == 1
    assert "report" in at.query_params
    definition = ReportDefinition.from_json(at.query_params["report"])
    assert definition.table == "captcha_events" and definition.dimensions == ["site_id"]
    at.text_input(key="rp_name").input("Captcha from the page")
    at.button[[b.label for b in at.button].index("Save report")].click().run()
    assert not at.exception
    assert any("Saved as" in s.value for s in at.success)


def test_reports_page_reopens_a_link_and_shows_bad_filters_plainly(ch, demo, app_path):
    d = ReportDefinition("demo", "purchase_events", "event_time", grain="month", dimensions=["currency"],
                         measures=[Measure("sum", "amount")], filters=[Filter("currency", "=", ["EUR"])])
    at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT)
    at.run()
    at.switch_page("pages/reports.py")
    at.query_params["report"] = d.to_query_param()
    at.run()
    assert not at.exception
    assert at.selectbox(key="rp_table").value == "purchase_events"
    frame = _result_frame(at)
    assert list(frame.columns) == ["bucket", "currency", "sum_amount"]
    assert set(frame["currency"]) == {"EUR"}

    bad = ReportDefinition("demo", "purchase_events", "event_time", filters=[Filter("amount", ">", ["1; DROP"])])
    at.query_params["report"] = bad.to_query_param()
    at.run()
    assert not at.exception
    assert any("not a valid value for amount" in e.value for e in at.error)
