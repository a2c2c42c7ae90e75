"""Shared fixtures: a real embedded ClickHouse in a temporary directory.

The embedded engine allows one data directory per process, so the whole test
session (core tests and AppTest page tests alike) shares one, chosen here
before anything reads the settings.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_DATA_DIR = Path(tempfile.mkdtemp(prefix="helios-test-"))


def pytest_configure(config: pytest.Config) -> None:
    os.environ["HELIOS_DATA_DIR"] = str(_DATA_DIR)
    os.environ.pop("HELIOS_CLICKHOUSE_URL", None)
    os.environ.setdefault("HELIOS_QUERY_TIMEOUT", "20")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def ch():
    from helios_core.clickhouse import get_clickhouse
    return get_clickhouse()


@pytest.fixture(scope="session")
def demo(ch):
    from helios_core.demo import load_demo
    return load_demo(ch)


@pytest.fixture(scope="session")
def app_path() -> str:
    return str(ROOT / "app.py")
