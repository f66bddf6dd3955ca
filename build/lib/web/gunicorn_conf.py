"""gunicorn settings for the web process (``gunicorn -c python:web.gunicorn_conf``).

gevent workers: SSE listeners and slow clients cost a greenlet each, not a thread, so a few
hundred event-stream listeners do not block submissions.  One worker per core.  gunicorn's own
records (master and workers) go through gemq's JSON formatter (:class:`JsonLogger`).
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from gunicorn import glogging

from worker.config import Settings
from worker.logs import configure_logging

worker_class = "gevent"
workers = max(2, multiprocessing.cpu_count())
worker_connections = 1000
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = None
logger_class = "web.gunicorn_conf.JsonLogger"


class JsonLogger(glogging.Logger):
    """gunicorn's logger with its records handed to the root logger, which writes JSON lines."""

    def setup(self, cfg: Any) -> None:
        """Let gunicorn set levels, then route ``gunicorn.error`` and ``gunicorn.access`` to the root."""
        super().setup(cfg)
        settings = Settings.from_env()
        configure_logging(level=settings.log_level, json=settings.log_json, process="web")
        for logger in (self.error_log, self.access_log):
            logger.handlers[:] = []
            logger.propagate = True
