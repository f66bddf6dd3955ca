"""Flower's start-up: JSON logs and the basic-auth rule, run from Flower's ``--conf`` file.

``celery -A worker.celery_app flower --conf=deploy/flowerconfig.py`` executes that file before it
serves; the file calls :func:`prepare`.  Flower reads ``FLOWER_BASIC_AUTH`` itself; gemq only
refuses to start it without one outside development (``GEMQ_ENV=development``), because Flower can
revoke tasks and shows every task's arguments.
"""

from __future__ import annotations

import structlog

from worker.core.logs import configure_logging
from worker.core.settings import ConfigError, Settings, load_or_exit

log = structlog.get_logger("gemq.flower")


def check_auth(settings: Settings) -> None:
    """Raise :class:`ConfigError` when Flower would run without basic auth outside development."""
    if not settings.flower_basic_auth and settings.environment != "development":
        raise ConfigError(
            "FLOWER_BASIC_AUTH is unset: set it to user:password (make run generates one), "
            "or GEMQ_ENV=development to run Flower without a password"
        )


def prepare() -> None:
    """Configure logging and enforce the auth rule; exit with status 2 when it is broken."""
    settings = load_or_exit()
    configure_logging(level=settings.log_level, json=settings.log_json, process="flower")
    try:
        check_auth(settings)
    except ConfigError as exc:
        log.error("flower.refused", reason=str(exc))
        raise SystemExit(2) from exc
    if not settings.flower_basic_auth:
        log.warning("flower.no_auth", message="Flower runs WITHOUT a password (GEMQ_ENV=development)")
