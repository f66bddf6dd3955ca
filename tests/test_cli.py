"""The ``gemq`` command against the real stack: gunicorn, a worker, the emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TENANTS, tag
from procs import EmulatorProcess, WebProcess

pytestmark = pytest.mark.usefixtures("worker")
GEMQ = str(Path(sys.executable).parent / "gemq")


def gemq(web: WebProcess, *args: str, key: str = TENANTS["acme"]) -> subprocess.CompletedProcess[str]:
    """Run the CLI with the server's URL and a key."""
    env = {"GEMQ_URL": web.url, "GEMQ_API_KEY": key, "NO_PROXY": "127.0.0.1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([GEMQ, *args], env=env, capture_output=True, text=True, timeout=60)


def test_submit_wait_prints_the_answer(web_server: WebProcess) -> None:
    done = gemq(web_server, "submit", f"a haiku {tag()}", "--priority", "high", "--wait")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_submit_then_status_and_wait(web_server: WebProcess) -> None:
    job_id = gemq(web_server, "submit", f"later {tag()}", "--model", "gemini-2.5-pro").stdout.strip()
    waited = gemq(web_server, "wait", job_id, "--json")
    assert waited.returncode == 0
    job = json.loads(gemq(web_server, "status", job_id).stdout)
    assert (job["id"], job["status"], job["model"]) == (job_id, "succeeded", "gemini-2.5-pro")
    assert job["result"]["text"] == json.loads(waited.stdout)["result"]["text"]


def test_cancel_a_running_job(web_server: WebProcess, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "hang", hang_s=3)
    job_id = gemq(web_server, "submit", f"slow {marker}").stdout.strip()
    cancelled = gemq(web_server, "cancel", job_id)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    assert gemq(web_server, "wait", job_id).returncode == 1


def test_a_failed_job_exits_1_with_the_error(web_server: WebProcess, emu: EmulatorProcess) -> None:
    marker = tag()
    emu.fault(marker, "status", status=400)
    done = gemq(web_server, "submit", f"bad {marker}", "--wait")
    assert done.returncode == 1
    assert "invalid_request" in done.stderr


def test_api_errors_exit_2_with_the_servers_message(web_server: WebProcess) -> None:
    done = gemq(web_server, "status", "nope", key="wrong")
    assert done.returncode == 2
    assert "401 unauthorized" in done.stderr


def test_batch_wait_writes_the_results_in_order(web_server: WebProcess, tmp_path: Path) -> None:
    marker = tag()
    lines = [{"prompt": f"first {marker}", "key": "one"},
             {"key": "two", "request": {"contents": [{"parts": [{"text": f"second {marker}"}]}]}},
             {"prompt": f"third {marker}"}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "results.jsonl"

    done = gemq(web_server, "batch", str(source), "-o", str(out), "--priority", "high")

    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["index"], r["key"], r["status"]) for r in rows] == [
        (1, "one", "succeeded"), (2, "two", "succeeded"), (3, None, "succeeded")]
    assert all(r["result"]["text"] for r in rows)
    assert "3 succeeded, 0 failed, 0 cancelled" in done.stderr
    assert "batch" in done.stderr and "3/3" in done.stderr  # the progress bar's last state


def test_batch_without_wait_prints_the_id_and_a_refused_file_names_its_lines(
    web_server: WebProcess, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"prompt": f"later {tag()}"}) + "\n")
    batch_id = gemq(web_server, "batch", str(source)).stdout.strip()
    assert len(batch_id) == 32
    source.write_text(json.dumps({"prompt": "fine"}) + "\n" + json.dumps({"prompt": ""}) + "\n")
    refused = gemq(web_server, "batch", str(source), "--wait")
    assert refused.returncode == 2
    assert "1 of 2 lines are invalid" in refused.stderr and "line 2: prompt:" in refused.stderr
