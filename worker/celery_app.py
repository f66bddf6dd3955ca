"""``celery -A worker.celery_app``: the app, built on first use (interim, until worker.process)."""

from __future__ import annotations

from celery import Celery

from worker.core.logs import configure_logging
from worker.core.settings import Settings
from worker.queue.app import create_celery

_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    """``celery -A worker.celery_app`` looks up ``app``: build it on first use, not at import."""
    global _app
    if name not in ("app", "celery"):
        raise AttributeError(name)
    if _app is None:
        import worker.lifecycle  # noqa: F401 - connects the worker's signal handlers
        settings = Settings.from_env()
        # JSON from the start: Celery warns (running as root, ...) before its setup_logging signal fires.
        configure_logging(level=settings.log_level, json=settings.log_json, process="celery")
        _app = create_celery(settings)
    return _app
