"""A real ``python -m helios_core serve`` process for the API tests: own data dir, free loopback port, tokens.

Not a test module: test_api.py and test_api_hostile.py each start one server per module with it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

# Runs before the server (the embedded engine allows one process per data dir): tokens, and what the
# module asks for (the demo data and a saved report).
_SETUP = """
import json, sys
from helios_core.runtime import get_clickhouse
from helios_core.tokens import create_token
ch = get_clickhouse()
out = {"write": create_token(ch, "tests_write", write=True).token,
       "read": create_token(ch, "tests_read").token}
revoked = create_token(ch, "tests_revoked", write=True)
from helios_core.tokens import revoke_token
revoke_token(ch, "tests_revoked")
out["revoked"] = revoked.token
if "demo" in sys.argv:
    from helios_core.demo import load_demo
    from helios_core.reports import captcha_preset, save_report
    load_demo(ch)
    out["report_id"] = save_report(ch, captcha_preset(), "Daily captcha").id
print(json.dumps(out))
"""


@dataclass
class ApiServer:
    url: str
    tokens: dict[str, str]
    process: subprocess.Popen
    data_dir: Path
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = "write", headers: dict[str, str] | None = None) -> httpx.Client:
        auth = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
        return httpx.Client(base_url=self.url, headers={**auth, **(headers or {})}, timeout=httpx.Timeout(120.0))

    def alive(self) -> bool:
        return self.process.poll() is None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, deadline_s: float = 120.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the API server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API server did not answer /healthz in {deadline_s:.0f} s:\n"
                               f"{log.read_text()[-3000:]}")
        time.sleep(0.05)  # a polling interval inside the deadline loop


@contextmanager
def api_server(aws_endpoint: str, demo: bool = False, env: dict[str, str] | None = None) -> Iterator[ApiServer]:
    data_dir = Path(tempfile.mkdtemp(prefix="helios-api-"))
    environment = {**os.environ, "HELIOS_DATA_DIR": str(data_dir), "HELIOS_AWS_ENDPOINT_URL": aws_endpoint,
                   "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": "eu-west-1", "HELIOS_IMPORT_BUCKET": f"api-{uuid.uuid4().hex[:12]}",
                   **(env or {})}
    environment.pop("HELIOS_CLICKHOUSE_URL", None)
    setup = subprocess.run([sys.executable, "-c", _SETUP] + (["demo"] if demo else []), env=environment,
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    if setup.returncode != 0:
        raise RuntimeError(f"API test setup failed:\n{setup.stderr[-3000:]}")
    tokens = json.loads(setup.stdout.strip().splitlines()[-1])
    extra = {k: tokens.pop(k) for k in list(tokens) if k not in ("write", "read", "revoked")}
    port = free_port()
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "helios_core", "serve", "--port", str(port)],
                                   env=environment, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield ApiServer(url, tokens, process, data_dir, log, extra)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)
