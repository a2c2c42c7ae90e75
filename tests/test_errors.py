"""Error fields are declared on the exception classes, never attached afterwards or read with getattr."""

import ast
from pathlib import Path

from helios_core.analysis_check import AnalysisRefused
from helios_core.errors import Conflict, HeliosError, NotFound, QueryError, ValidationError, error_payload

ROOT = Path(__file__).resolve().parents[1]


def test_every_helios_error_has_its_fields_from_the_start():
    plain = HeliosError("Something went wrong.")
    assert (plain.message, plain.hint, plain.job_id) == ("Something went wrong.", "", None)
    invalid = ValidationError("missing necessary fields")
    assert (invalid.problems, invalid.missing_fields, invalid.rule) == ([], [], "")
    query = QueryError("Bad SQL.", code=62, name="SYNTAX_ERROR", job_id="j1")
    assert (query.code, query.name, query.job_id) == (62, "SYNTAX_ERROR", "j1")


def test_job_id_reaches_the_payload_only_when_given():
    assert error_payload(NotFound("Job ID not found", "List jobs.", job_id="abc")) == {
        "error": "Job ID not found", "hint": "List jobs.", "job_id": "abc"}
    assert "job_id" not in error_payload(Conflict("Busy."))
    payload = error_payload(ValidationError("missing necessary fields", missing_fields=["job_id"], job_id="x"))
    assert payload == {"error": "missing necessary fields", "missing_fields": ["job_id"], "job_id": "x"}


def test_an_analysis_refusal_names_its_rule():
    refused = AnalysisRefused("other_table", "The query must read the job's table.")
    assert isinstance(refused, ValidationError)
    assert (refused.rule, refused.problems) == ("other_table", ["The query must read the job's table."])


def test_no_module_attaches_fields_to_an_error_after_raising_it():
    """``exc.job_id = …`` after construction hides the field from the class; pass it to the constructor."""
    fields = {"job_id", "problems", "missing_fields", "rule", "hint", "code", "name"}
    found = []
    for path in sorted((ROOT / "helios_core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Attribute) and target.attr in fields \
                            and isinstance(target.value, ast.Name) and target.value.id in ("exc", "error", "err"):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                    and node.args[1].value in {"job_id", "problems", "missing_fields", "rule"}:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
