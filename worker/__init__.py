"""gemq's worker side, in layers (docs/architecture.md, "Layers"; checked by ``lint-imports``).

::

    celery_app | healthcheck   entry points: ``celery -A worker.celery_app``, ``python -m worker.healthcheck``
    process                    one composition root per process kind, tasks, signal handlers, reaper
    run | webhooks             a job's execution (the only user of google-genai) | webhook delivery
    queue | store              Celery and kombu behind a Publisher | Redis: records, limiter, ``lua/``
    core                       no I/O: settings, key names, errors, job and batch models

A module imports only from its layer and those below; the halves of a split layer never import
each other.  The web (``web/``) uses ``core``, ``store``, ``queue`` and the SSRF guard and secrets of
``webhooks``.
"""
