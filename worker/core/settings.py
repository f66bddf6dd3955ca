"""Settings: the only module that reads the environment.

Every other module receives a :class:`Settings` (frozen) as an argument.  ``Settings.from_env()``
parses the variables listed in the design (and a few operational ones, all ``GEMQ_*``) and fails
with a :class:`ConfigError` naming the variable when a value does not parse.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from limits import parse_many

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Redis used as broker, job store and limiter state when ``REDIS_URL`` is unset.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: The local emulator's address, used when neither ``GEMINI_API_KEY`` nor ``GEMINI_BASE_URL`` is set.
EMULATOR_URL = "http://127.0.0.1:8090"
#: Model used when a job names none.
DEFAULT_MODEL = "gemini-2.5-flash"
#: The API key accepted when ``GEMQ_API_KEYS`` is unset (development only, announced loudly).
DEV_API_KEY = "dev-key-change-me"
#: The tenant that owns ``DEV_API_KEY``.
DEV_TENANT = "dev"
#: Master webhook secret used when ``GEMQ_WEBHOOK_SECRET`` is unset (development only).
DEV_WEBHOOK_SECRET = "dev-webhook-secret-change-me"
#: Seconds a finished job (and its events) is kept: 7 days.
DEFAULT_RESULT_TTL = 7 * 24 * 3600
#: Seconds before the broker redelivers an unacknowledged message; must exceed the longest job.
DEFAULT_VISIBILITY_TIMEOUT = 3600
#: Per-model limits when ``GEMQ_LIMITS`` names none for a model (a cautious tier-1 flash figure).
DEFAULT_LIMITS = "*:rpm=1000,tpm=1000000,rpd=10000,concurrency=100"
#: Submissions each tenant may make (``GEMQ_SUBMIT_LIMITS``; set it empty or ``off`` for none).
DEFAULT_SUBMIT_LIMITS = "50/second;1000/minute"
#: Largest JSONL batch body (bytes) and most requests per batch.
DEFAULT_MAX_BATCH_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_BATCH_LINES = 100_000
#: Webhook retry schedule in seconds (about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h).
DEFAULT_WEBHOOK_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
#: Values of ``GEMQ_ENV``.
ENVIRONMENTS = ("production", "development")


class ConfigError(ValueError):
    """An environment variable has a value gemq cannot use."""


@dataclass(frozen=True)
class ModelLimits:
    """Gemini limits for one model; ``None`` means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    concurrency: int | None = None


@dataclass(frozen=True)
class Settings:
    """Typed, frozen configuration for web, worker, CLI tools and tests."""

    redis_url: str = DEFAULT_REDIS_URL
    gemini_api_key: str | None = None
    gemini_base_url: str | None = None
    gemini_api_version: str = "v1beta"
    #: Seconds before one Gemini HTTP call is abandoned (the SDK has no timeout of its own).
    gemini_timeout: float = 300.0
    default_model: str = DEFAULT_MODEL
    #: API key -> tenant.
    api_keys: Mapping[str, str] = field(default_factory=lambda: {DEV_API_KEY: DEV_TENANT})
    dev_api_key: bool = True
    #: Model name (or ``*`` for the default) -> limits.
    limits: Mapping[str, ModelLimits] = field(default_factory=lambda: parse_limits(DEFAULT_LIMITS))
    #: Seconds added to the 60 s window so calls that reach Gemini a little late still fit its minute.
    limiter_window_margin: float = 0.5
    #: Seconds a concurrency lease lasts unless renewed (a killed worker's slots come back after this).
    limiter_lease: float = 30.0
    #: Share of each window that low (and normal) work leaves free for higher priorities.
    priority_reserve: Mapping[str, float] = field(default_factory=lambda: {"low": 0.1, "normal": 0.0})
    webhook_secret: str = DEV_WEBHOOK_SECRET
    dev_webhook_secret: bool = True
    webhook_allow_private: bool = False
    webhook_schedule: tuple[float, ...] = DEFAULT_WEBHOOK_SCHEDULE
    webhook_timeout: float = 15.0
    result_ttl: int = DEFAULT_RESULT_TTL
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    worker_concurrency: int = 200
    #: Seconds between reaper passes (one worker makes each pass), looking for unfinished jobs nothing moves.
    reaper_interval: float = 30.0
    #: Seconds past the visibility timeout before the reaper re-publishes a job with no activity: kombu's
    #: own restore of a dead worker's messages (within the timeout + 10 s) always comes first.
    reaper_margin: float = 120.0
    #: Retry policy for retryable upstream failures.
    max_attempts: int = 8
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    retry_max_total: float = 900.0
    #: Waits shorter than this are slept in the worker thread; longer ones re-queue with a countdown.
    admission_sleep_max: float = 1.0
    #: Seconds between partial-text writes to the job record.
    stream_flush_interval: float = 0.25
    max_body_bytes: int = 10 * 1024 * 1024
    #: Largest JSONL batch body (``POST /v1/batches``), read as a stream and spooled, never held whole.
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    #: Most requests in one batch.
    max_batch_lines: int = DEFAULT_MAX_BATCH_LINES
    #: Per-tenant submission limits (``limits`` library notation, ``;``-separated), empty to disable.
    submit_limits: str = DEFAULT_SUBMIT_LIMITS
    #: Response cache TTL in seconds.
    cache_ttl: int = 24 * 3600
    #: Conversation history TTL (refreshed on use) and bound on turns kept.
    conversation_ttl: int = 7 * 24 * 3600
    conversation_max_turns: int = 50
    #: Seconds between heartbeat comments on an idle event stream (also its Redis BLOCK timeout).
    sse_heartbeat: float = 15.0
    #: Longest an event stream stays open (the client reconnects with ``Last-Event-ID``).
    sse_max_duration: float = 1800.0
    #: Event-stream listeners one web process holds at once; more are refused with 503.
    sse_max_listeners: int = 1000
    log_level: str = "INFO"
    log_json: bool = True
    #: Seconds between a process's flushes of its metric increments to Redis.
    metrics_flush_interval: float = 1.0
    #: ``development`` relaxes what a deployment must set (Flower may run without basic auth).
    environment: str = "production"
    #: Flower's ``user:password`` pairs (``FLOWER_BASIC_AUTH``, which Flower itself also reads).
    flower_basic_auth: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env
        return cls(**_parse(env))  # type: ignore[arg-type]  # _parse checks each value's type

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and tools)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def limits_for(self, model: str) -> ModelLimits:
        """The limits that apply to ``model``."""
        return self.limits.get(model) or self.limits.get("*") or ModelLimits()

    @property
    def using_emulator(self) -> bool:
        """True when no real Gemini key is configured."""
        return not self.gemini_api_key

    @property
    def gemini_endpoint(self) -> str | None:
        """Where Gemini calls go: the override, else the emulator without a key, else Google's default."""
        return self.gemini_base_url or (EMULATOR_URL if self.using_emulator else None)

    def tenant_secret_seed(self, tenant: str) -> bytes:
        """Key material for a tenant's webhook secret, derived from the master secret."""
        return hashlib.sha256(f"gemq-webhook:{self.webhook_secret}:{tenant}".encode()).digest()


def _parse(env: Mapping[str, str]) -> dict[str, object]:
    """Parse every variable that is set; unset ones keep the dataclass default."""
    out: dict[str, object] = {}
    simple: dict[str, tuple[str, type]] = {
        "REDIS_URL": ("redis_url", str),
        "GEMINI_API_KEY": ("gemini_api_key", str),
        "GEMINI_BASE_URL": ("gemini_base_url", str),
        "GEMINI_API_VERSION": ("gemini_api_version", str),
        "GEMQ_GEMINI_TIMEOUT": ("gemini_timeout", float),
        "GEMQ_DEFAULT_MODEL": ("default_model", str),
        "GEMQ_LIMITER_WINDOW_MARGIN": ("limiter_window_margin", float),
        "GEMQ_LIMITER_LEASE": ("limiter_lease", float),
        "GEMQ_RESULT_TTL": ("result_ttl", int),
        "GEMQ_VISIBILITY_TIMEOUT": ("visibility_timeout", int),
        "GEMQ_WORKER_CONCURRENCY": ("worker_concurrency", int),
        "GEMQ_REAPER_INTERVAL": ("reaper_interval", float),
        "GEMQ_REAPER_MARGIN": ("reaper_margin", float),
        "GEMQ_MAX_ATTEMPTS": ("max_attempts", int),
        "GEMQ_RETRY_BASE_DELAY": ("retry_base_delay", float),
        "GEMQ_RETRY_MAX_DELAY": ("retry_max_delay", float),
        "GEMQ_RETRY_MAX_TOTAL": ("retry_max_total", float),
        "GEMQ_ADMISSION_SLEEP_MAX": ("admission_sleep_max", float),
        "GEMQ_STREAM_FLUSH_INTERVAL": ("stream_flush_interval", float),
        "GEMQ_MAX_BODY_BYTES": ("max_body_bytes", int),
        "GEMQ_MAX_BATCH_BYTES": ("max_batch_bytes", int),
        "GEMQ_MAX_BATCH_LINES": ("max_batch_lines", int),
        "GEMQ_WEBHOOK_TIMEOUT": ("webhook_timeout", float),
        "GEMQ_CACHE_TTL": ("cache_ttl", int),
        "GEMQ_CONVERSATION_TTL": ("conversation_ttl", int),
        "GEMQ_CONVERSATION_MAX_TURNS": ("conversation_max_turns", int),
        "GEMQ_SSE_HEARTBEAT": ("sse_heartbeat", float),
        "GEMQ_SSE_MAX_DURATION": ("sse_max_duration", float),
        "GEMQ_SSE_MAX_LISTENERS": ("sse_max_listeners", int),
        "GEMQ_LOG_LEVEL": ("log_level", str),
        "GEMQ_METRICS_FLUSH_INTERVAL": ("metrics_flush_interval", float),
    }
    for var, (name, kind) in simple.items():
        raw = env.get(var, "").strip()
        if raw:
            out[name] = _convert(var, raw, kind)
    if raw := env.get("GEMQ_API_KEYS", "").strip():
        out["api_keys"] = parse_api_keys(raw)
        out["dev_api_key"] = False
    if raw := env.get("GEMQ_LIMITS", "").strip():
        out["limits"] = {**parse_limits(DEFAULT_LIMITS), **_wrap(parse_limits, "GEMQ_LIMITS", raw)}
    if raw := env.get("GEMQ_PRIORITY_RESERVE", "").strip():
        out["priority_reserve"] = _wrap(parse_reserve, "GEMQ_PRIORITY_RESERVE", raw)
    if raw := env.get("GEMQ_WEBHOOK_SECRET", "").strip():
        out["webhook_secret"] = raw
        out["dev_webhook_secret"] = False
    if "GEMQ_SUBMIT_LIMITS" in env:  # set but empty means no limit, unlike the other variables
        out["submit_limits"] = _wrap(parse_submit_limits, "GEMQ_SUBMIT_LIMITS", env["GEMQ_SUBMIT_LIMITS"])
    if raw := env.get("GEMQ_WEBHOOK_RETRY_SCHEDULE", "").strip():
        out["webhook_schedule"] = _wrap(parse_schedule, "GEMQ_WEBHOOK_RETRY_SCHEDULE", raw)
    if raw := env.get("GEMQ_ENV", "").strip():
        if raw not in ENVIRONMENTS:
            raise ConfigError(f"GEMQ_ENV must be one of {', '.join(ENVIRONMENTS)}, not {raw!r}")
        out["environment"] = raw
    if raw := env.get("FLOWER_BASIC_AUTH", "").strip():
        out["flower_basic_auth"] = _wrap(parse_basic_auth, "FLOWER_BASIC_AUTH", raw)
    for var, name in (("GEMQ_WEBHOOK_ALLOW_PRIVATE", "webhook_allow_private"), ("GEMQ_LOG_JSON", "log_json")):
        if raw := env.get(var, "").strip():
            out[name] = _convert(var, raw, bool)
    return out


def _convert(var: str, raw: str, kind: type) -> object:
    if kind is bool:
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{var} must be 0 or 1, not {raw!r}")
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{var} must be {kind.__name__}, not {raw!r}") from exc
    if kind in (int, float) and value < 0:
        raise ConfigError(f"{var} must not be negative")
    return value


def _wrap(parser: Callable[[str], T], var: str, raw: str) -> T:
    try:
        return parser(raw)
    except ConfigError as exc:
        raise ConfigError(f"{var}: {exc}") from exc


def parse_api_keys(raw: str) -> dict[str, str]:
    """``tenant:key,tenant2:key2`` -> ``{key: tenant}``."""
    keys: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        tenant, sep, key = pair.partition(":")
        if not sep or not tenant or not key:
            raise ConfigError("GEMQ_API_KEYS entries must look like tenant:key")
        if key in keys:
            raise ConfigError("GEMQ_API_KEYS has the same key twice")
        keys[key] = tenant
    return keys


def parse_limits(raw: str) -> dict[str, ModelLimits]:
    """``model:rpm=N,tpm=N,rpd=N,concurrency=N;model2:...`` (any subset) -> limits per model."""
    limits: dict[str, ModelLimits] = {}
    for part in filter(None, (p.strip() for p in raw.split(";"))):
        model, sep, spec = part.partition(":")
        if not sep or not model.strip():
            raise ConfigError(f"expected model:key=value,..., got {part!r}")
        values: dict[str, int] = {}
        for item in filter(None, (i.strip() for i in spec.split(","))):
            name, eq, number = item.partition("=")
            if not eq or name not in {"rpm", "tpm", "rpd", "concurrency"}:
                raise ConfigError(f"unknown limit {item!r} (use rpm, tpm, rpd, concurrency)")
            if not number.isdigit() or int(number) <= 0:
                raise ConfigError(f"limit {name} must be a positive integer, got {number!r}")
            values[name] = int(number)
        limits[model.strip()] = ModelLimits(**values)
    return limits


def parse_reserve(raw: str) -> dict[str, float]:
    """``low=0.1,normal=0.02`` -> share of each window kept free from that priority."""
    reserve: dict[str, float] = {"low": 0.0, "normal": 0.0}
    for item in filter(None, (i.strip() for i in raw.split(","))):
        name, _, number = item.partition("=")
        if name not in reserve:
            raise ConfigError(f"reserve applies to low and normal, not {name!r}")
        try:
            share = float(number)
        except ValueError as exc:
            raise ConfigError(f"reserve {name} must be a number") from exc
        if not 0.0 <= share < 1.0:
            raise ConfigError(f"reserve {name} must be in [0, 1)")
        reserve[name] = share
    return reserve


def parse_basic_auth(raw: str) -> tuple[str, ...]:
    """``user:password,user2:password2`` -> the pairs, each checked for a user and a password."""
    pairs = tuple(p.strip() for p in raw.split(",") if p.strip())
    for pair in pairs:
        user, sep, password = pair.partition(":")
        if not sep or not user or not password:
            raise ConfigError("entries must look like user:password")
    return pairs


def parse_submit_limits(raw: str) -> str:
    """``50/second;1000/minute`` checked with the ``limits`` parser; ``""`` or ``off`` -> ``""`` (none)."""
    raw = raw.strip()
    if raw.lower() in {"", "off", "none", "0"}:
        return ""
    try:
        parse_many(raw)
    except ValueError as exc:
        raise ConfigError(f"expected limits like '50/second;1000/minute', got {raw!r}") from exc
    return raw


def parse_schedule(raw: str) -> tuple[float, ...]:
    """``5,300,1800`` -> seconds to wait before each webhook retry."""
    try:
        schedule = tuple(float(s) for s in raw.split(",") if s.strip())
    except ValueError as exc:
        raise ConfigError("must be comma-separated seconds") from exc
    if not schedule or any(s < 0 for s in schedule):
        raise ConfigError("must list at least one non-negative delay")
    return schedule
