"""ruff and mypy, as configured in pyproject.toml, report nothing (so `.ci/run`, which runs pytest, enforces both)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 900  # a cold mypy run over helios_core takes about a minute on two busy cores


def _run(tool: str, *args: str) -> None:
    if importlib.util.find_spec(tool) is None:
        pytest.fail(f"{tool} is not installed; run `python -m pip install -r requirements-dev.txt`.")
    done = subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, f"{tool} reported problems:\n{done.stdout}\n{done.stderr}"


def test_ruff_reports_nothing():
    _run("ruff", "check", "--no-fix", ".")


def test_mypy_reports_nothing():
    _run("mypy")  # files and options come from pyproject.toml
