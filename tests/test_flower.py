"""Flower as the Procfile runs it: basic auth, our worker and tasks, every priority's queue, state kept."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import Api, tag
from procfile import ProcfileProcess, json_lines
from procs import EmulatorProcess, RedisServer, WorkerProcess, free_port, wait_until

from web import create_app
from worker.core.settings import Settings

AUTH = ("ops", "flower-test-password")


@pytest.fixture
def flower_env(base_env: dict[str, str], run_dir: Path) -> Iterator[dict[str, str]]:
    """A Redis of the test's own, a run folder for Flower's db, basic auth and a port."""
    redis_server = RedisServer(run_dir / f"redis-flower-{free_port()}").start()
    folder = run_dir / f"flower-{redis_server.port}"
    folder.mkdir()
    yield {**base_env, "REDIS_URL": redis_server.url, "GEMQ_RUN_DIR": str(folder), "FLOWER_PORT": str(free_port()),
           "FLOWER_BASIC_AUTH": ":".join(AUTH)}
    redis_server.stop()


def start_flower(env: dict[str, str], logfile: Path) -> tuple[ProcfileProcess, httpx.Client]:
    """The Procfile's flower line, and an HTTP client for it that waits until it answers."""
    flower = ProcfileProcess("flower", env, logfile).start()
    http = httpx.Client(base_url=f"http://127.0.0.1:{env['FLOWER_PORT']}", timeout=10, trust_env=False)
    wait_until(lambda: http.get("/healthcheck").status_code == 200, timeout=30, what="flower")
    return flower, http


def test_flower_shows_our_worker_tasks_and_each_priority_queue_behind_basic_auth(
    flower_env: dict[str, str], make_worker: Callable[..., WorkerProcess], emu: EmulatorProcess, run_dir: Path
) -> None:
    # Given Flower and a worker with one slot
    flower, http = start_flower(flower_env, run_dir / f"flower-{flower_env['FLOWER_PORT']}.log")
    try:
        worker = make_worker("flower", env=flower_env, concurrency=1, queues="jobs-0-high,jobs-1-normal,jobs-2-low")
        api = Api(create_app(Settings.from_env(flower_env)).test_client())
        name = f"{worker.name}@{socket.gethostname()}"
        # Then without the password Flower refuses; with it, it lists the worker
        assert http.get("/api/workers").status_code == 401
        online = wait_until(lambda: (w := http.get("/api/workers?status=1", auth=AUTH).json()) and w.get(name),
                            timeout=20, what="the worker's events to reach flower")
        assert online is True
        workers = wait_until(lambda: (w := http.get("/api/workers?refresh=1", auth=AUTH).json()) and name in w and w,
                             timeout=20, what="flower to inspect the worker")
        assert {q["name"] for q in workers[name]["active_queues"]} >= {"jobs-0-high", "jobs-1-normal", "jobs-2-low"}
        # And it sees our tasks once it has switched the worker's task events on (it does so every few seconds)
        task = wait_until(lambda: _seen_task(http, api), timeout=30, interval=0.5, what="flower to see a task of ours")
        assert (task["name"], task["state"], task["worker"]) == ("gemq.run_job", "SUCCESS", name)
        # When the slot is busy and two low and one normal job queue behind it
        blocker = tag()
        emu.fault(blocker, "hang", hang_s=3.0)
        busy = api.submit(prompt=f"blocker {blocker}", priority="high")
        api.wait(busy["id"], statuses={"running"})
        for priority in ("low", "low", "normal"):
            api.submit(prompt=f"waiting {tag()}", priority=priority)
        # Then the broker API (what the broker page shows) has each priority's backlog
        lengths = {q["name"]: q["messages"] for q in http.get("/api/queues/length", auth=AUTH).json()["active_queues"]}
        assert lengths == {"jobs-0-high": 0, "jobs-1-normal": 1, "jobs-2-low": 2}
        page = http.get("/broker", auth=AUTH)
        assert page.status_code == 200 and all(q in page.text for q in lengths)
        api.wait(busy["id"], timeout=20)
    finally:
        flower.stop()
    # When Flower restarts, with no worker left to send events
    worker.kill()
    flower, http = start_flower(flower_env, run_dir / f"flower-{flower_env['FLOWER_PORT']}-again.log")
    try:
        # Then it still knows the task (state kept in its --db)
        assert task["uuid"] in http.get("/api/tasks", auth=AUTH).json()
    finally:
        assert flower.stop() == 0
    assert all(isinstance(line, dict) for line in json_lines(flower.logfile))


def _seen_task(http: httpx.Client, api: Api) -> dict[str, Any] | None:
    """Run a quick job and return Flower's record of its task, if Flower saw it finish."""
    job = api.wait(api.submit(prompt=f"probe {tag()}")["id"])
    try:
        tasks = wait_until(lambda: [t for t in http.get("/api/tasks", auth=AUTH).json().values()
                                    if t["args"] == repr([job["id"]]) and t["state"] == "SUCCESS"],
                           timeout=2, what="the probe task")
    except TimeoutError:
        return None
    return dict(tasks[0])


def test_flower_refuses_to_start_without_basic_auth_outside_development(
    flower_env: dict[str, str], run_dir: Path
) -> None:
    env = {k: v for k, v in flower_env.items() if k != "FLOWER_BASIC_AUTH"}
    flower = ProcfileProcess("flower", env, run_dir / "flower-refused.log").start()
    assert flower.proc is not None
    assert flower.proc.wait(timeout=30) == 2
    events = [line["event"] for line in json_lines(flower.logfile)]
    assert "flower.refused" in events
