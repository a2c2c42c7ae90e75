"""Reports: an incomplete filter row stops the run and says which row, instead of being ignored."""

from __future__ import annotations

import pandas as pd


def test_incomplete_filter_rows_are_named_and_the_report_is_not_run(demo, open_page):
    at = open_page("pages/reports.py")
    at.session_state["rp_filters_data"] = pd.DataFrame(
        [{"column": None, "operator": "=", "value": "serve"},            # no column
         {"column": "type", "operator": "=", "value": "solve"},          # complete
         {"column": None, "operator": None, "value": None}],             # blank: ignored
        columns=["column", "operator", "value"])
    at.session_state["rp_editor_n"] = at.session_state["rp_editor_n"] + 1
    at.run()
    at.button(key="rp_run").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "Filter row 1 has no column" in errors
    assert not [d for d in at.dataframe if "bucket" in d.value.columns]  # nothing was run

    at.session_state["rp_filters_data"] = pd.DataFrame(
        [{"column": "type", "operator": "=", "value": None}], columns=["column", "operator", "value"])
    at.session_state["rp_editor_n"] = at.session_state["rp_editor_n"] + 1
    at.run()
    at.button(key="rp_run").click().run()
    assert "Filter row 1 (type) has no value" in " ".join(e.value for e in at.error)


def test_between_reads_a_and_b_and_a_wrong_count_says_what_to_type(demo, open_page):
    at = open_page("pages/reports.py")
    at.session_state["rp_filters_data"] = pd.DataFrame(
        [{"column": "type", "operator": "between", "value": "serve and solve"}],
        columns=["column", "operator", "value"])
    at.session_state["rp_editor_n"] = at.session_state["rp_editor_n"] + 1
    at.run()
    at.button(key="rp_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["rp_compiled"].definition.filters[0].values == ["serve", "solve"]

    at.session_state["rp_filters_data"] = pd.DataFrame(
        [{"column": "type", "operator": "between", "value": "serve"}], columns=["column", "operator", "value"])
    at.session_state["rp_editor_n"] = at.session_state["rp_editor_n"] + 1
    at.run()
    at.button(key="rp_run").click().run()
    errors = " ".join(e.value for e in at.error)
    assert "Filter row 1 (type): between needs two values, from and to, not 'serve'" in errors
    assert "type them as" in errors
