"""Fixtures: one real emulator subprocess per session, reset before every test, and SDK clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types

ROOT = Path(__file__).resolve().parents[2]
#: Seconds to wait for the emulator's health check.
START_TIMEOUT_S = 15.0
#: API key every test client sends (any non-empty key is accepted by default).
TEST_KEY = "test-key"


@dataclass
class Emulator:
    """A running emulator: its URL, process id and an admin HTTP client."""

    url: str
    pid: int
    admin: httpx.Client

    def faults(self, *faults: dict[str, Any]) -> None:
        """Script faults through the admin API."""
        self.admin.post("/_emulator/faults", json={"faults": list(faults)}).raise_for_status()

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs at runtime; returns the new config."""
        response = self.admin.patch("/_emulator/config", json=knobs)
        response.raise_for_status()
        return response.json()

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """The request log, filtered."""
        response = self.admin.get("/_emulator/requests", params=filters)
        response.raise_for_status()
        return response.json()

    def batches(self, action: str | None = None, *names: str) -> list[dict[str, Any]]:
        """Batch jobs as the admin API shows them; with `action`, force it on `names` (or every live job)."""
        if action is None:
            response = self.admin.get("/_emulator/batches")
        else:
            body: dict[str, Any] = {"action": action, **({"names": list(names)} if names else {})}
            response = self.admin.post("/_emulator/batches", json=body)
        response.raise_for_status()
        return response.json()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(admin: httpx.Client, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"emulator exited with {proc.returncode}")
        try:
            if admin.get("/_emulator/healthz").json() == {"ok": True}:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("emulator did not become healthy in time")


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[Emulator]:
    """Start `python -m emulator` on a free port for the whole session."""
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMULATOR_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(port), "--seed", "7", "--log-level", "WARNING"],
        cwd=ROOT,
        env=env,
    )
    admin = httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10)
    try:
        _wait_healthy(admin, proc)
        yield Emulator(f"http://127.0.0.1:{port}", proc.pid, admin)
    finally:
        admin.close()
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def emulator(emulator_process: Emulator) -> Emulator:
    """The session emulator, reset to its start-up state."""
    emulator_process.admin.post("/_emulator/reset").raise_for_status()
    return emulator_process


@pytest.fixture
def make_client(emulator: Emulator) -> Callable[..., genai.Client]:
    """Factory of real google-genai clients pointed at the emulator."""

    def make(api_key: str = TEST_KEY, *, timeout_ms: int = 10_000, api_version: str = "v1beta") -> genai.Client:
        options = types.HttpOptions(base_url=emulator.url, api_version=api_version, timeout=timeout_ms)
        return genai.Client(api_key=api_key, http_options=options)

    return make


@pytest.fixture
def client(make_client: Callable[..., genai.Client]) -> genai.Client:
    """A google-genai client on /v1beta with a 10 s timeout."""
    return make_client()
