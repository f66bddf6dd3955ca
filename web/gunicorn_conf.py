"""gunicorn settings for the web process (``gunicorn -c python:web.gunicorn_conf``).

gevent workers: SSE listeners and slow clients cost a greenlet each, not a thread, so a few
hundred event-stream listeners do not block submissions.  One worker per core.
"""

import multiprocessing

worker_class = "gevent"
workers = max(2, multiprocessing.cpu_count())
worker_connections = 1000
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = None
