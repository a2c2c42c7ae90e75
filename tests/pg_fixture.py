"""A throwaway PostgreSQL server for tests (Debian's ``postgresql`` package; ``.ci/run`` installs it).

``pg_server`` is a module-scoped pytest fixture: import it into a test module
(``from pg_fixture import pg_server``: pytest puts tests/ on the path) and it starts one server for that module,
on a Unix socket and a free loopback TCP port, and removes it afterwards. It skips the
test, with the reason, only when the PostgreSQL binaries are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import WAIT

PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
               if (p / "initdb").exists() and (p / "pg_ctl").exists() and (p / "pg_dump").exists()), None) \
    if Path("/usr/lib/postgresql").exists() else None
if PG_BIN is None and shutil.which("initdb") and shutil.which("pg_ctl") and shutil.which("pg_dump"):
    PG_BIN = Path(shutil.which("initdb")).parent


def _as_pg_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; use its own account then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


@contextmanager
def running_pg_server() -> Iterator[dict[str, Any]]:
    """Start a server; yields ``psql``, ``dump``, ``dir`` (its socket directory) and ``port`` (TCP, loopback).

    Local connections over the socket are trusted (the tests' superuser ``postgres``); TCP
    connections need a password (scram), so a wrong password is refused as it would be anywhere.
    """
    if PG_BIN is None:
        pytest.skip("no PostgreSQL server binaries on this machine (install Debian's postgresql package)")
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        pytest.skip("running as root without a postgres account")
    base = Path(tempfile.mkdtemp(prefix="helios-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    port = _free_port()
    data = base / "data"

    def run(cmd, **kw):
        return subprocess.run(_as_pg_user(cmd), capture_output=True, text=True, timeout=WAIT, **kw)

    init = run([str(PG_BIN / "initdb"), "-D", str(data), "--auth-local=trust", "--auth-host=scram-sha-256",
                "-U", "postgres", "-E", "UTF8", "--no-sync"])
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr[-300:]}")
    # Every statement is logged with its user, so a test can see what Helios sent.
    options = (f"-k {base} -p {port} -c listen_addresses='127.0.0.1' -c fsync=off -c log_statement=all "
               "-c log_line_prefix=user=%u:")
    start = run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"), "-o", options, "start"])
    if start.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {start.stderr[-300:]}")

    def psql(sql: str, db: str = "postgres", file: Path | None = None) -> str:
        cmd = [str(PG_BIN / "psql"), "-h", str(base), "-p", port, "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1",
               "-Atq"]
        cmd += ["-f", str(file)] if file else ["-c", sql]
        result = run(cmd)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def dump(db: str, *extra: str) -> bytes:
        result = subprocess.run(_as_pg_user([str(PG_BIN / "pg_dump"), "-h", str(base), "-p", port, "-U", "postgres",
                                             "-F", "p", *extra, db]), capture_output=True, timeout=WAIT)
        assert result.returncode == 0, result.stderr
        return result.stdout

    try:
        yield {"psql": psql, "dump": dump, "dir": base, "port": int(port), "log": base / "log"}
    finally:
        run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_server() -> Iterator[dict[str, Any]]:
    with running_pg_server() as server:
        yield server
