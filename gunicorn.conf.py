"""gunicorn settings for the web process (``gunicorn -c gunicorn.conf.py``, gunicorn's default file name).

gevent workers: SSE listeners and slow clients cost a greenlet each, not a thread, so a few
hundred event-stream listeners do not block submissions.  One worker per core.  gunicorn's own
records (master and workers) go through gemq's JSON formatter (:class:`JsonLogger`).
"""

# Patch before anything imports ssl or socket (gunicorn's gevent worker patches later, after the
# master has imported modules, and warns that ssl was imported unpatched).
from gevent import monkey

monkey.patch_all()

import multiprocessing  # noqa: E402 - after the patch, on purpose
from typing import Any  # noqa: E402

from gunicorn import glogging  # noqa: E402

from worker.core.logs import configure_logging  # noqa: E402
from worker.core.settings import load_or_exit  # noqa: E402


class JsonLogger(glogging.Logger):
    """gunicorn's logger with its records handed to the root logger, which writes JSON lines."""

    def setup(self, cfg: Any) -> None:
        """Let gunicorn set levels, then route ``gunicorn.error`` and ``gunicorn.access`` to the root.

        The master runs this before it binds or forks, so a bad setting stops it here (status 2).
        """
        super().setup(cfg)
        settings = load_or_exit()
        configure_logging(level=settings.log_level, json=settings.log_json, process="web")
        for logger in (self.error_log, self.access_log):
            logger.handlers[:] = []
            logger.propagate = True


worker_class = "gevent"
workers = max(2, multiprocessing.cpu_count())
worker_connections = 1000
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = None
logger_class = JsonLogger
