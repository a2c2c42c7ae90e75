"""CLI: ``streams``, ``sample`` and ``infer`` (subprocess where it matters, in-process otherwise)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import WAIT

from helios_core.cli import main
from helios_core.sandbox import generate_events

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, stdin: bytes = b"", timeout: float = WAIT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "helios_core", *args], input=stdin, capture_output=True,
                          cwd=ROOT, env=env, timeout=timeout)


def test_infer_reads_json_lines_from_stdin():
    lines = b"\n".join(e.payload for e in generate_events("user_activity", 80, seed=4, bad_ratio=0))
    done = run_cli("infer", stdin=lines)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    columns = {c["name"]: c for c in result["inferredSchema"]}
    assert columns["event_id"]["type"] == "UUID"
    assert columns["screen_width"]["json_path"] == "screen.width"
    assert columns["referrer"]["present_in_all"] is True and columns["referrer"]["type"].startswith("LowCard")
    assert all(c["reason"] for c in result["inferredSchema"])
    assert result["orderBy"][-1] == "timestamp" and result["sampleSize"] == 80


def test_infer_reads_a_file_and_lists_bad_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a": 1, "t": "2025-01-01T00:00:00Z"}\nnot json\n\n{"a": 2, "t": "2025-01-02T00:00:00Z"}\n')
    done = run_cli("infer", str(path))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [c["type"] for c in result["inferredSchema"]] == ["Int64", "DateTime64(0, 'UTC')"]
    assert result["undecodable"] == [{"line": 2, "reason": result["undecodable"][0]["reason"]}]


def test_infer_errors_are_one_line_with_exit_codes(tmp_path):
    empty = run_cli("infer", stdin=b"garbage\n")
    assert empty.returncode == 3 and "error" in json.loads(empty.stdout)
    assert len(empty.stderr.decode().strip().splitlines()) == 1
    missing = run_cli("infer", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 4 and "Traceback" not in missing.stderr.decode()


def test_streams_and_sample_in_process(aws_conn, kinesis_stream, moto_server, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    name = kinesis_stream(generate_events("purchase_events", 30, seed=6), shards=2)
    aws = ["--endpoint-url", moto_server, "--region", "eu-west-1"]
    assert main(["streams", *aws]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["authenticated"] is True and name in listed["streamNames"]
    assert next(s for s in listed["streams"] if s["name"] == name)["openShards"] == 2

    assert main(["sample", name, "--n", "12", *aws]) == 0
    sampled = json.loads(capsys.readouterr().out)
    assert sampled["sampleEvent"] == sampled["events"][0]["event"]
    assert sampled["eventCount"] == 12 and len(sampled["shards"]) == 2
    assert {"name", "type", "json_path", "present_in_all", "reason"} <= set(sampled["inferredSchema"][0])
    assert "undecodable" in sampled

    assert main(["sample", "no_such_stream", *aws]) == 4
    assert "error" in json.loads(capsys.readouterr().out)
    assert main(["sample", name, "--from", "at_timestamp", *aws]) == 3
    capsys.readouterr()


def test_sample_with_the_sandbox_in_a_fresh_process():
    done = run_cli("sample", "captcha_events", "--sandbox", "--n", "5")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["eventCount"] == 5
    assert {c["name"] for c in result["inferredSchema"]} >= {"time", "type"}


@pytest.mark.parametrize("args", [["streams", "--help"], ["sample", "--help"], ["infer", "--help"]])
def test_help_is_available(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    assert "usage" in capsys.readouterr().out
