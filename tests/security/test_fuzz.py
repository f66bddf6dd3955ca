"""Fuzz the API from its own /openapi.json with schemathesis, against real gunicorn: no 5xx, and every
response (status, content type, headers, body) as the document declares it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers import TENANTS
from procs import BIN, RedisServer, WebProcess

#: Seconds of fuzzing: schemathesis repeats its fuzzing and stateful phases until they are spent.
FUZZ_S = 25
#: Every check but ``positive_data_acceptance``: the API has rules JSON Schema cannot state (the job
#: list's cursor is opaque, the text of a request is bounded in total), so some schema-valid
#: requests are rightly refused with 422.
EXCLUDED_CHECKS = "positive_data_acceptance"
CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_the_api_answers_as_its_openapi_document_says(base_env: dict[str, str], tmp_path: Path) -> None:
    # Given the web under gunicorn on a Redis of its own (jobs it accepts just wait there)
    server = RedisServer(tmp_path / "redis").start()
    # /readyz wants a live worker; none runs here, so a heartbeat far in the future stands in for one
    server.client().zadd("gemq:workers", {"fuzz@test": 2**42})
    # and event streams that end after a second (a queued job's stream would otherwise stay open)
    env = {**base_env, "REDIS_URL": server.url, "GEMQ_SSE_MAX_DURATION": "1", "GEMQ_SSE_HEARTBEAT": "0.5"}
    web = WebProcess(env, tmp_path / "web.log").start()
    report = tmp_path / "schemathesis.json"
    try:
        # When schemathesis fuzzes every operation, with a valid key
        result = subprocess.run(
            [str(BIN / "schemathesis"), "--config-file", str(CONFIG), "--no-color", "run", f"{web.url}/openapi.json",
             "--header", f"Authorization: Bearer {TENANTS['acme']}", "--checks", "all",
             "--exclude-checks", EXCLUDED_CHECKS, "--max-examples", "50", "--max-time", str(FUZZ_S), "--seed", "8",
             "--generation-database", "none", "--report", "json", "--report-json-path", str(report),
             "--output-truncate", "true"],
            cwd=tmp_path, capture_output=True, text=True, timeout=FUZZ_S + 60,
        )
    finally:
        web.stop()
        server.kill()
    # Then nothing failed, and it really exercised the API
    summary = json.loads(report.read_text())
    assert result.returncode == 0 and not summary["failures"] and not summary["errors"], result.stdout[-6000:]
    assert summary["operations"]["tested"] == summary["operations"]["total"] >= 9
    assert summary["test_cases"]["generated"] > 500
    assert "Server error" not in result.stdout
