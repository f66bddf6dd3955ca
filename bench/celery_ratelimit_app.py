"""Celery's own answer to Gemini's limits, for comparison: ``rate_limit="600/m"`` on a task.

The task makes the same call as gemq's worker (google-genai, streaming, against the emulator at
GEMINI_BASE_URL).  Celery applies ``rate_limit`` per worker process, so N workers send N times the
rate; bench/limiter_accuracy.py counts the 429s the emulator answers.
"""

from __future__ import annotations

import os
import threading

from celery import Celery

app = Celery("ratelimit", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), set_as_current=False)
app.conf.update(task_ignore_result=True, worker_pool="threads", worker_hijack_root_logger=False)
if os.environ.get("BENCH_MODE", "gemq-like") == "gemq-like":
    # The same delivery settings as gemq's worker (reserve only what runs, acknowledge late).
    app.conf.update(worker_prefetch_multiplier=1, task_acks_late=True)
_client = None
_lock = threading.Lock()


@app.task(name="bench.call_gemini", rate_limit=os.environ.get("BENCH_RATE_LIMIT", "600/m"))
def call_gemini(prompt: str) -> None:
    """One Gemini call; a 429 is recorded by the emulator and not retried here."""
    global _client
    from google import genai
    from google.genai import errors, types

    with _lock:  # one client per process: a replaced client is garbage-collected and closes its connections
        if _client is None:
            _client = genai.Client(api_key="bench", http_options=types.HttpOptions(
                base_url=os.environ["GEMINI_BASE_URL"], api_version="v1beta", timeout=30_000))
    try:
        for _ in _client.models.generate_content_stream(model="gemini-2.5-flash", contents=prompt):
            pass
    except errors.APIError:
        pass
