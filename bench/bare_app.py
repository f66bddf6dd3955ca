"""The bare pipeline: the parts issue 2 prescribes, with no gemq code between them.

A second baseline for bench/throughput.py.  A Flask route under the same gunicorn (gevent) publishes
a Celery task by name; a Celery worker (threads pool) streams the prompt through the google-genai SDK
from the emulator and writes the text to Redis.  No validation beyond reading the JSON, no job
record, no states, no limiter, no events, no idempotency, no metrics: what is left is the cost of
gunicorn + Flask + Celery + the SDK + Redis for one job, which no implementation on that stack can go
below.  Its rate divided by raw Celery's is the highest ratio the throughput goal can reach here.

    web:    gunicorn 'bare_app:create_web()' -k gevent   (PYTHONPATH=bench)
    worker: celery -A bare_app worker --pool threads
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import redis
from celery import Celery

#: Counts finished jobs; each result is written beside it as ``RESULT_KEY + id``.
DONE_KEY = "bench:bare:done"
RESULT_KEY = "bench:bare:result:"
TASK = "bench.bare_generate"
#: The same without the Gemini call (``BARE_TASK=noop`` in the web's environment): HTTP + Celery alone.
NOOP_TASK = "bench.bare_noop"

celery = Celery("bare", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), set_as_current=False)
celery.conf.update(task_ignore_result=True, worker_hijack_root_logger=False, worker_pool="threads")
app = celery  # ``celery -A bare_app`` looks for ``app``

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _shared(name: str) -> Any:
    """One google-genai client and one Redis client per worker process, made on first use."""
    with _lock:
        if not _clients:
            from google import genai
            from google.genai import types

            _clients["genai"] = genai.Client(api_key="bench", http_options=types.HttpOptions(
                base_url=os.environ["GEMINI_BASE_URL"], api_version="v1beta", timeout=30_000,
                client_args={"trust_env": False}))
            _clients["redis"] = redis.Redis.from_url(celery.conf.broker_url)
    return _clients[name]


@celery.task(name=TASK)
def generate(job_id: str, prompt: str) -> None:
    """Stream one answer and store its text."""
    stream = _shared("genai").models.generate_content_stream(model="gemini-2.5-flash", contents=prompt)
    _store(job_id, "".join(chunk.text or "" for chunk in stream))


@celery.task(name=NOOP_TASK)
def noop(job_id: str, prompt: str) -> None:
    """Store the prompt as the answer: the pipeline without Gemini."""
    _store(job_id, prompt)


def _store(job_id: str, text: str) -> None:
    pipe = _shared("redis").pipeline(transaction=False)
    pipe.set(RESULT_KEY + job_id, text)
    pipe.incr(DONE_KEY)
    pipe.execute()


def create_web() -> Any:
    """A Flask app with one route: ``POST /v1/jobs`` publishes the task and answers 202 with the id."""
    from flask import Flask, jsonify, request

    web = Flask("bare")
    task = NOOP_TASK if os.environ.get("BARE_TASK") == "noop" else TASK

    @web.post("/v1/jobs")
    def submit() -> Any:
        job_id = uuid.uuid4().hex
        celery.send_task(task, args=[job_id, request.get_json()["prompt"]])
        return jsonify({"id": job_id, "status": "queued"}), 202

    @web.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "ok"})

    return web
