"""gunicorn settings for the web process (``gunicorn -c gunicorn.conf.py``, gunicorn's default file name).

gevent workers: SSE listeners and slow clients cost a greenlet each, not a thread, so a few
hundred event-stream listeners do not block submissions.  One worker per core.
"""

import multiprocessing

# Patch before anything imports ssl or socket (gunicorn's gevent worker patches later, after the
# master has imported modules, and warns that ssl was imported unpatched).
from gevent import monkey

monkey.patch_all()

worker_class = "gevent"
workers = max(2, multiprocessing.cpu_count())
worker_connections = 1000
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = None
