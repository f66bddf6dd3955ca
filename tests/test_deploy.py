"""Containers, checked statically (no Docker engine runs here): compose runs the Procfile's commands,
Redis keeps an AOF, every service has a health check, the image is multi-stage, slim and not root."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
from typing import Any

import pytest
import yaml
from procfile import procfile_commands
from procs import ROOT, EmulatorProcess, WorkerProcess, free_port

from worker.core.settings import Settings
from worker.process import healthcheck

COMPOSE_ENV = {"GEMQ_API_KEYS": "team:key", "GEMQ_WEBHOOK_SECRET": "secret", "FLOWER_BASIC_AUTH": "admin:pw"}


def compose() -> dict[str, Any]:
    """docker-compose.yml as written (before compose fills in variables)."""
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, rest), continuation lines joined.

    Hand-written because the format needs only this much here: no engine, no extra dependency.
    """
    instructions, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
    return instructions


def test_compose_runs_the_same_commands_as_the_procfile() -> None:
    services = compose()["services"]
    for name, command in procfile_commands().items():
        assert services[name]["command"] == command, name
    assert services["emulator"]["profiles"] == ["emulator"]
    assert set(services) == {*procfile_commands(), "redis"}


def test_compose_redis_keeps_an_aof_and_never_evicts() -> None:
    command = compose()["services"]["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"
    assert options["--maxmemory-policy"] == "noeviction"
    assert any(volume.endswith(":/data") for volume in compose()["services"]["redis"]["volumes"])


def test_every_compose_service_has_a_health_check_and_flower_requires_auth() -> None:
    services = compose()["services"]
    assert all(service.get("healthcheck", {}).get("test") for service in services.values())
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert services["worker"]["healthcheck"]["test"][-2:] == ["worker.healthcheck", "worker"]


def _compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


@pytest.mark.skipif(_compose_cli() is None, reason="neither docker-compose nor the docker compose plugin")
def test_compose_config_is_valid_and_refuses_a_missing_flower_password() -> None:
    cli = [*(_compose_cli() or []), "-f", str(ROOT / "docker-compose.yml"), "--profile", "emulator", "config"]
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_ENV}
    valid = subprocess.run(cli, env={**env, **COMPOSE_ENV}, capture_output=True, text=True, timeout=60)
    assert valid.returncode == 0, valid.stderr
    assert "--db=run/flower.db" in valid.stdout
    without = {k: v for k, v in COMPOSE_ENV.items() if k != "FLOWER_BASIC_AUTH"}
    refused = subprocess.run(cli, env={**env, **without}, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "FLOWER_BASIC_AUTH" in refused.stderr


def test_the_image_is_multi_stage_slim_not_root_with_a_health_check() -> None:
    steps = dockerfile()
    stages = [rest for keyword, rest in steps if keyword == "FROM"]
    assert len(stages) >= 2 and all(stage.startswith("python:3.11-slim") for stage in stages)
    final = steps[max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"):]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert any(keyword == "HEALTHCHECK" for keyword, _ in final)
    for keyword, rest in steps:
        if keyword == "COPY" and not rest.startswith("--from"):
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), source
    cmd = next(rest for keyword, rest in reversed(final) if keyword == "CMD")
    web = shlex.split(procfile_commands()["web"].replace("${WEB_PORT:-8000}", "8000"))
    assert yaml.safe_load(cmd) == web  # the exec-form JSON array is YAML too


def test_the_image_installs_the_production_lock_then_gemq_without_dependencies() -> None:
    installs = [shlex.split(rest) for keyword, rest in dockerfile() if keyword == "RUN" and "pip install" in rest]
    commands = [words[words.index("install"):words.index("&&") if "&&" in words else None] for words in installs]
    assert commands == [["install", "--require-hashes", "-r", "requirements.lock"], ["install", "--no-deps", "."]]


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "run"} <= ignored


def test_health_check_of_a_worker_is_its_recent_heartbeat(worker: WorkerProcess, settings: Settings) -> None:
    assert healthcheck.worker_alive(settings, socket.gethostname())
    assert not healthcheck.worker_alive(settings, "no-such-host")


def test_health_check_of_a_url_needs_a_2xx(emu: EmulatorProcess) -> None:
    assert healthcheck.main([f"{emu.url}/_emulator/healthz"]) == 0
    assert healthcheck.main([f"{emu.url}/no-such-page"]) == 1
    assert healthcheck.main([f"http://127.0.0.1:{free_port()}/healthz"]) == 1
    assert healthcheck.main([]) == 2
