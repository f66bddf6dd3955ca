"""Logs of a full run: the Procfile's web (gunicorn) and worker, real jobs, every line JSON, no secrets."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import TERMINAL, tag
from procfile import ProcfileProcess, json_lines
from procs import EmulatorProcess, RedisServer, free_port, wait_until

SECRET_PROMPT = f"launch codes {uuid.uuid4().hex} are"
API_KEY = f"key-logs-{uuid.uuid4().hex}"
MASTER_SECRET = f"master-{uuid.uuid4().hex}"
#: The Procfile processes of a full run (the emulator is the session's own).
PROCESSES = ("web", "worker", "webhooks")


class _Receiver(BaseHTTPRequestHandler):
    received: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append(self.headers.get("webhook-id", ""))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    """A local webhook receiver answering 204 (``_Receiver.received`` lists the deliveries)."""
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


@pytest.fixture
def full_run(base_env: dict[str, str], run_dir: Path) -> Iterator[dict[str, Any]]:
    """Redis, then the Procfile's web, worker and webhooks lines, with secrets only this test knows."""
    redis_server = RedisServer(run_dir / f"redis-logs-{free_port()}").start()
    port = free_port()
    env = {**base_env, "REDIS_URL": redis_server.url, "WEB_PORT": str(port), "GEMQ_API_KEYS": f"acme:{API_KEY}",
           "GEMQ_WEBHOOK_SECRET": MASTER_SECRET, "GEMQ_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2"}
    web = ProcfileProcess("web", env, run_dir / f"logs-web-{port}.log").start()
    workers = [ProcfileProcess(name, env, run_dir / f"logs-{name}-{port}.log").start() for name in PROCESSES[1:]]
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {API_KEY}"},
                        timeout=10, trust_env=False)
    try:
        wait_until(lambda: http.get("/readyz").status_code == 200, timeout=40, what="web and worker to be ready")
        yield {"http": http, **dict(zip(PROCESSES, [web, *workers], strict=True))}
    finally:
        for process in (web, *workers):
            process.stop()
        redis_server.stop()


def test_a_full_run_logs_json_lines_without_prompts_outputs_or_secrets(
    full_run: dict[str, Any], emu: EmulatorProcess, receiver: str
) -> None:
    http: httpx.Client = full_run["http"]
    # Given jobs that succeed (one with a webhook), retry, fail and get cancelled, and refused requests
    flaky, bad, slow = tag(), tag(), tag()
    emu.fault(flaky, "status", status=503)
    emu.fault(bad, "status", status=400)
    emu.fault(slow, "hang", hang_s=3)
    bodies = [{"prompt": f"{SECRET_PROMPT} {tag()}", "webhook_url": receiver, "priority": "high"},
              {"prompt": f"{SECRET_PROMPT} {flaky}"}, {"prompt": f"{SECRET_PROMPT} {bad}", "priority": "low"},
              {"prompt": f"{SECRET_PROMPT} {slow}"}]
    ids = [http.post("/v1/jobs", json=body).json()["id"] for body in bodies]
    wait_until(lambda: http.get(f"/v1/jobs/{ids[3]}").json()["status"] == "running", timeout=15, what="slow job")
    assert http.post(f"/v1/jobs/{ids[3]}/cancel").status_code == 200
    wrong_key = {"Authorization": "Bearer wrong"}
    assert http.post("/v1/jobs", json={"prompt": SECRET_PROMPT}, headers=wrong_key).status_code == 401
    assert http.post("/v1/jobs", content=b"{not json " + SECRET_PROMPT.encode(),
                     headers={"Content-Type": "application/json"}).status_code == 400
    jobs = [wait_until(lambda i=i: (j := http.get(f"/v1/jobs/{i}").json())["status"] in TERMINAL and j, timeout=20,
                       what=f"job {i}") for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded", "failed", "cancelled"]
    secrets = [SECRET_PROMPT, API_KEY, MASTER_SECRET, *(j["result"]["text"] for j in jobs[:2])]
    secrets.append(http.get("/v1/webhooks/secret").json()["secret"])
    wait_until(lambda: _Receiver.received, timeout=20, what="the webhook to be delivered")
    delivered = 'gemq_webhook_deliveries_total{outcome="delivered"} 1.0'
    wait_until(lambda: delivered in http.get("/metrics").text, timeout=10, what="the delivery to be counted")
    # When the processes stop (their last lines written)
    for name in PROCESSES:
        full_run[name].stop()
    # Then every line is a JSON object, and none holds a prompt, an answer, a key or a secret
    lines = {name: json_lines(full_run[name].logfile) for name in PROCESSES}
    consoles = {name: [line for line in full_run[name].outfile.read_text().splitlines() if line.strip()]
                for name in PROCESSES}
    # Celery prints its shutdown notice straight to stdout, past logging: the only non-JSON output.
    shutdown = ["worker: Warm shutdown (MainProcess)"]
    assert consoles == {"web": [], "worker": shutdown, "webhooks": shutdown}
    text = "".join(full_run[name].logfile.read_text() + full_run[name].outfile.read_text() for name in PROCESSES)
    for secret in secrets:
        assert secret not in text
        assert secret[len(secret) // 3:len(secret) // 3 + 24] not in text  # not even a piece of it
    # And the events carry the fields operators filter on
    assert any(line.get("logger", "").startswith("gunicorn") for line in lines["web"])
    submitted = [line for line in lines["web"] if line["event"] == "job.submitted"]
    assert {line["job_id"] for line in submitted} == set(ids)
    assert all(line["tenant"] == "acme" and line["model"] and line["priority"] for line in submitted)
    finished = {line["job_id"]: line for line in lines["worker"] if line["event"] == "job.finished"}
    assert set(finished) == set(ids[:3])
    for line in finished.values():
        assert line["tenant"] == "acme" and line["model"] == "gemini-2.5-flash"
        assert line["queued_ms"] >= 0 and line["run_ms"] >= 0 and line["service"] == "worker"
    assert finished[ids[1]]["attempts"] == 2 and finished[ids[2]]["error_type"] == "invalid_request"
    retried = [line for line in lines["worker"] if line["event"] == "job.attempt_failed"]
    assert any(line["job_id"] == ids[1] and line["status_code"] == 503 and line["attempt"] == 1 for line in retried)
    assert any(line["event"] == "job.cancelled" and line["job_id"] == ids[3] for line in lines["web"])
    assert any(line["event"] == "webhook.attempt" and line["state"] == "delivered" for line in lines["webhooks"])


def test_events_below_the_level_are_dropped_and_the_rest_are_json() -> None:
    script = (
        "import structlog\n"
        "from worker.core.logs import configure_logging\n"
        "configure_logging(level='WARNING', process='t')\n"
        "log = structlog.get_logger('gemq.t')\n"
        "log.info('t.quiet', job_id='a')\n"
        "log.warning('t.loud', job_id='b', prompt='secret words')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["event"] for line in lines] == ["t.loud"]
    assert lines[0]["level"] == "warning" and lines[0]["prompt"] == "[redacted]" and lines[0]["service"] == "t"
