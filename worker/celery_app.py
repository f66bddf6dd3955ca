"""The entry point of ``celery -A worker.celery_app`` (the worker, webhooks and Flower processes).

Like a ``wsgi.py``, this module builds its app when it is imported, and only this module does:
Celery's ``-A`` imports it and reads its ``app`` attribute (``celery.app.utils.find_app`` looks up
``app``, then ``celery``, and calls nothing), so the app must exist once the import ends.  What
building it does (logging, the app, the tasks, the signal handlers that build each process's
composition root) is :func:`worker.process.celery_worker.worker_app`.  Other code builds its own app
with ``worker.queue.app.create_celery`` and never imports this module.
"""

from __future__ import annotations

from worker.process.celery_worker import worker_app

app = worker_app()
