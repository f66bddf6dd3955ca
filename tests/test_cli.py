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
