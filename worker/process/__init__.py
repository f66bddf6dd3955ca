"""One composition root per process kind, and the Celery glue of the worker processes.

``job_worker.JobWorker`` and ``webhook_worker.WebhookWorker`` build everything a worker of that kind
uses; ``celery_worker`` builds the Celery app of ``celery -A worker.celery_app``, registers the tasks
and connects the signal handlers that build and start those roots; ``flower`` and ``healthcheck``
are the start-up of the other two processes.  (The web's root is ``web.create_app``.)
"""
