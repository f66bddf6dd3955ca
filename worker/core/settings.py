"""Settings: the only module that reads the environment.

:class:`Settings` is one frozen pydantic-settings class; every other module receives one as an argument.

- ``Settings.from_env(env=None)`` reads the variables of README's configuration table from ``env``
  (default ``os.environ``; a mapping given is all that is read).  Each field names its variable
  (``validation_alias``).  A blank variable counts as unset, except ``GEMQ_SUBMIT_LIMITS``, where
  empty means "no limit".  A value that does not parse raises :class:`ConfigError` naming each wrong
  variable and what it expects: ``GEMQ_MAX_ATTEMPTS: expected a positive integer, got 'abc'``.
  Processes starting up call :func:`load_or_exit`, which prints that line and exits with status 2.
- ``Settings(redis_url=..., ...)`` and ``settings.replace(...)`` take field names and Python values
  and read no environment (tests, tools); a bad value raises pydantic's ``ValidationError``.

Composite variables keep their text formats: a ``BeforeValidator`` splits the text into Python
values, pydantic checks those against the field's type, and :class:`Expect` gives the format an
error quotes.  Variables gemq does not read are ignored (:func:`unknown_variables` lists the
``GEMQ_*`` ones, for a warning at start).  Secrets (``GEMINI_API_KEY``, ``GEMQ_API_KEYS``,
``GEMQ_WEBHOOK_SECRET``, ``FLOWER_BASIC_AUTH``) are ``repr=False``: kept out of reprs and errors.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

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
#: Variables whose empty value means something (no limit) rather than "unset".
EMPTY_IS_A_VALUE = frozenset({"GEMQ_SUBMIT_LIMITS"})
#: ``GEMQ_*`` variables that other parts of gemq read (the CLI, the Procfile), not :class:`Settings`.
OTHER_VARIABLES = frozenset({"GEMQ_URL", "GEMQ_API_KEY", "GEMQ_RUN_DIR"})


class ConfigError(ValueError):
    """An environment variable has a value gemq cannot use."""


@dataclass(frozen=True)
class Expect:
    """What a variable's text must look like: the ``expected ...`` of its :class:`ConfigError`."""

    text: str


PositiveInt = Annotated[int, Field(gt=0), Expect("a positive integer")]
Count = Annotated[int, Field(ge=0), Expect("an integer, 0 or more")]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False), Expect("seconds, 0 or more")]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False), Expect("seconds, more than 0")]
Flag = Annotated[bool, Expect("0 or 1")]  # pydantic also reads true/false, yes/no, on/off
Share = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class ModelLimits:
    """Gemini limits for one model; ``None`` means unlimited."""

    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    rpd: PositiveInt | None = None
    concurrency: PositiveInt | None = None


def _from_text(parse: Callable[[str], object]) -> BeforeValidator:
    """Parse a variable's text with ``parse``; Python values (``Settings(...)``) go to pydantic as they are."""
    return BeforeValidator(lambda value: parse(value) if isinstance(value, str) else value)


def _items(raw: str, sep: str = ",") -> list[str]:
    """The non-blank items of a ``sep``-separated list, stripped."""
    return [item.strip() for item in raw.split(sep) if item.strip()]


# The formats below are gemq's own mini-languages, which pydantic cannot read: each function only
# splits the text; the field's type then checks the pieces (numbers, ranges, names).

def parse_api_keys(raw: str) -> dict[str, str]:
    """``tenant:key,tenant2:key2`` -> ``{key: tenant}`` (turned around: a request brings its key)."""
    keys: dict[str, str] = {}
    for pair in _items(raw):
        tenant, sep, key = pair.partition(":")
        if not sep or not tenant or not key:
            raise ValueError("an entry lacks its tenant, its ':' or its key")
        if key in keys:
            raise ValueError("a key is given twice")
        keys[key] = tenant
    return keys


def split_limits(raw: str) -> dict[str, dict[str, str]]:
    """``model:rpm=N,tpm=N;model2:...`` -> ``{model: {"rpm": "N", ...}}``, over the default limits."""
    limits: dict[str, dict[str, str]] = {}
    for part in _items(f"{DEFAULT_LIMITS};{raw}", ";"):  # the defaults first: a model named again replaces them
        model, sep, spec = part.partition(":")
        if not sep or not model.strip():
            raise ValueError(f"{part!r} does not start with a model name and ':'")
        pairs = (item.partition("=") for item in _items(spec))
        limits[model.strip()] = {name.strip(): number.strip() for name, _, number in pairs}
    return limits


def split_reserve(raw: str) -> dict[str, str | float]:
    """``normal=0.02`` -> ``{"low": 0.0, "normal": "0.02"}``: a priority left out reserves nothing."""
    reserve: dict[str, str | float] = {"low": 0.0, "normal": 0.0}
    for item in _items(raw):
        name, _, share = (part.strip() for part in item.partition("="))
        if name not in reserve:
            raise ValueError(f"a reserve applies to low and normal, not {name!r}")
        reserve[name] = share
    return reserve


def parse_submit_limits(raw: str) -> str:
    """``50/second;1000/minute``, checked by the ``limits`` parser; ``""``, ``off``, ``none`` or ``0`` -> ``""``."""
    raw = raw.strip()
    if raw.lower() in {"", "off", "none", "0"}:
        return ""
    parse_many(raw)  # its ValueError says what it could not read
    return raw


ApiKeys = Annotated[Mapping[str, str], _from_text(parse_api_keys), Expect("tenant:key pairs, comma-separated")]
Limits = Annotated[Mapping[str, ModelLimits], _from_text(split_limits),
                   Expect("model:rpm=N,tpm=N,rpd=N,concurrency=N;... (any subset, N > 0; * for every other model)")]
Reserve = Annotated[Mapping[str, Share], _from_text(split_reserve),
                    Expect("low=S,normal=S with each share S in [0, 1)")]
SubmitLimits = Annotated[str, _from_text(parse_submit_limits),
                         Expect("limits like 50/second;1000/minute, or empty or off for none")]
Schedule = Annotated[tuple[Seconds, ...], Field(min_length=1), _from_text(_items),
                     Expect("seconds before each retry, comma-separated (at least one, each 0 or more)")]
BasicAuth = Annotated[tuple[Annotated[str, StringConstraints(pattern=r"^[^:]+:.+$")], ...], _from_text(_items),
                      Expect("user:password pairs, comma-separated")]
LogLevel = Annotated[str, StringConstraints(pattern=r"(?i)^(debug|info|warning|error|critical)$"),
                     Expect("DEBUG, INFO, WARNING, ERROR or CRITICAL")]
Environment = Annotated[Literal["production", "development"], Expect(" or ".join(ENVIRONMENTS))]
_LIMITS: TypeAdapter[Mapping[str, ModelLimits]] = TypeAdapter(Limits)


class Settings(BaseSettings):
    """Typed, frozen configuration for web, worker, CLI tools and tests (each field names its variable)."""

    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True, case_sensitive=True,
        enable_decoding=False,  # composite variables have their own formats, not JSON
    )

    redis_url: str = Field(DEFAULT_REDIS_URL, validation_alias="REDIS_URL")
    gemini_api_key: str | None = Field(None, validation_alias="GEMINI_API_KEY", repr=False)
    gemini_base_url: str | None = Field(None, validation_alias="GEMINI_BASE_URL")
    gemini_api_version: str = Field("v1beta", validation_alias="GEMINI_API_VERSION")
    #: Seconds before one Gemini HTTP call is abandoned (the SDK has no timeout of its own).
    gemini_timeout: PositiveSeconds = Field(300.0, validation_alias="GEMQ_GEMINI_TIMEOUT")
    default_model: str = Field(DEFAULT_MODEL, validation_alias="GEMQ_DEFAULT_MODEL")
    #: API key -> tenant.
    api_keys: ApiKeys = Field(default_factory=lambda: {DEV_API_KEY: DEV_TENANT}, validation_alias="GEMQ_API_KEYS",
                              repr=False)
    #: Model name (or ``*`` for the default) -> limits.
    limits: Limits = Field(default_factory=lambda: _LIMITS.validate_python(DEFAULT_LIMITS),
                           validation_alias="GEMQ_LIMITS")
    #: Seconds added to the 60 s window so calls that reach Gemini a little late still fit its minute.
    limiter_window_margin: Seconds = Field(0.5, validation_alias="GEMQ_LIMITER_WINDOW_MARGIN")
    #: Seconds a concurrency lease lasts unless renewed (a killed worker's slots come back after this).
    limiter_lease: PositiveSeconds = Field(30.0, validation_alias="GEMQ_LIMITER_LEASE")
    #: Share of each window that low (and normal) work leaves free for higher priorities.
    priority_reserve: Reserve = Field(default_factory=lambda: {"low": 0.1, "normal": 0.0},
                                      validation_alias="GEMQ_PRIORITY_RESERVE")
    webhook_secret: str = Field(DEV_WEBHOOK_SECRET, validation_alias="GEMQ_WEBHOOK_SECRET", repr=False)
    webhook_allow_private: Flag = Field(False, validation_alias="GEMQ_WEBHOOK_ALLOW_PRIVATE")
    webhook_schedule: Schedule = Field(DEFAULT_WEBHOOK_SCHEDULE, validation_alias="GEMQ_WEBHOOK_RETRY_SCHEDULE")
    webhook_timeout: PositiveSeconds = Field(15.0, validation_alias="GEMQ_WEBHOOK_TIMEOUT")
    result_ttl: PositiveInt = Field(DEFAULT_RESULT_TTL, validation_alias="GEMQ_RESULT_TTL")
    visibility_timeout: PositiveInt = Field(DEFAULT_VISIBILITY_TIMEOUT, validation_alias="GEMQ_VISIBILITY_TIMEOUT")
    worker_concurrency: PositiveInt = Field(200, validation_alias="GEMQ_WORKER_CONCURRENCY")
    #: Seconds between reaper passes (one worker makes each pass), looking for unfinished jobs nothing moves.
    reaper_interval: Seconds = Field(30.0, validation_alias="GEMQ_REAPER_INTERVAL")
    #: Seconds past the visibility timeout before the reaper re-publishes a job with no activity: kombu's
    #: own restore of a dead worker's messages (within the timeout + 10 s) always comes first.
    reaper_margin: Seconds = Field(120.0, validation_alias="GEMQ_REAPER_MARGIN")
    #: Retry policy for retryable upstream failures.
    max_attempts: PositiveInt = Field(8, validation_alias="GEMQ_MAX_ATTEMPTS")
    retry_base_delay: Seconds = Field(1.0, validation_alias="GEMQ_RETRY_BASE_DELAY")
    retry_max_delay: Seconds = Field(60.0, validation_alias="GEMQ_RETRY_MAX_DELAY")
    retry_max_total: Seconds = Field(900.0, validation_alias="GEMQ_RETRY_MAX_TOTAL")
    #: Waits shorter than this are slept in the worker thread; longer ones re-queue with a countdown.
    admission_sleep_max: Seconds = Field(1.0, validation_alias="GEMQ_ADMISSION_SLEEP_MAX")
    #: Seconds between partial-text writes to the job record.
    stream_flush_interval: Seconds = Field(0.25, validation_alias="GEMQ_STREAM_FLUSH_INTERVAL")
    max_body_bytes: PositiveInt = Field(10 * 1024 * 1024, validation_alias="GEMQ_MAX_BODY_BYTES")
    #: Largest JSONL batch body (``POST /v1/batches``), read as a stream and spooled, never held whole.
    max_batch_bytes: PositiveInt = Field(DEFAULT_MAX_BATCH_BYTES, validation_alias="GEMQ_MAX_BATCH_BYTES")
    #: Most requests in one batch.
    max_batch_lines: PositiveInt = Field(DEFAULT_MAX_BATCH_LINES, validation_alias="GEMQ_MAX_BATCH_LINES")
    #: Per-tenant submission limits (``limits`` library notation, ``;``-separated), empty to disable.
    submit_limits: SubmitLimits = Field(DEFAULT_SUBMIT_LIMITS, validation_alias="GEMQ_SUBMIT_LIMITS")
    #: Response cache TTL in seconds (0: answers are not cached).
    cache_ttl: Count = Field(24 * 3600, validation_alias="GEMQ_CACHE_TTL")
    #: Conversation history TTL (refreshed on use) and bound on turns kept.
    conversation_ttl: PositiveInt = Field(7 * 24 * 3600, validation_alias="GEMQ_CONVERSATION_TTL")
    conversation_max_turns: PositiveInt = Field(50, validation_alias="GEMQ_CONVERSATION_MAX_TURNS")
    #: Seconds between heartbeat comments on an idle event stream (also its Redis BLOCK timeout).
    sse_heartbeat: PositiveSeconds = Field(15.0, validation_alias="GEMQ_SSE_HEARTBEAT")
    #: Longest an event stream stays open (the client reconnects with ``Last-Event-ID``).
    sse_max_duration: PositiveSeconds = Field(1800.0, validation_alias="GEMQ_SSE_MAX_DURATION")
    #: Event-stream listeners one web process holds at once; more are refused with 503.
    sse_max_listeners: PositiveInt = Field(1000, validation_alias="GEMQ_SSE_MAX_LISTENERS")
    log_level: LogLevel = Field("INFO", validation_alias="GEMQ_LOG_LEVEL")
    log_json: Flag = Field(True, validation_alias="GEMQ_LOG_JSON")
    #: Seconds between a process's flushes of its metric increments to Redis.
    metrics_flush_interval: PositiveSeconds = Field(1.0, validation_alias="GEMQ_METRICS_FLUSH_INTERVAL")
    #: ``development`` relaxes what a deployment must set (Flower may run without basic auth).
    environment: Environment = Field("production", validation_alias="GEMQ_ENV")
    #: Flower's ``user:password`` pairs (``FLOWER_BASIC_AUTH``, which Flower itself also reads).
    flower_basic_auth: BasicAuth = Field((), validation_alias="FLOWER_BASIC_AUTH", repr=False)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The constructor's arguments only: the environment is read by :meth:`from_env`, never implicitly."""
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``); :class:`ConfigError` names each wrong variable."""
        values = _EnvSource(cls, os.environ if env is None else env)()
        try:
            return cls(**values)
        except ValidationError as exc:
            # from None: pydantic's own text repeats each input, and some are secrets.
            raise ConfigError(_describe(exc, values)) from None

    @classmethod
    def variables(cls) -> list[str]:
        """The environment variables settings are read from."""
        return [str(field.validation_alias) for field in cls.model_fields.values()]

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed, checked like a new instance (tests and tools)."""
        return type(self)(**{**{name: getattr(self, name) for name in type(self).model_fields}, **changes})

    def limits_for(self, model: str) -> ModelLimits:
        """The limits that apply to ``model``."""
        return self.limits.get(model) or self.limits.get("*") or ModelLimits()

    @property
    def dev_api_key(self) -> bool:
        """True when the development API key is accepted (as it is while ``GEMQ_API_KEYS`` is unset)."""
        return DEV_API_KEY in self.api_keys

    @property
    def dev_webhook_secret(self) -> bool:
        """True when webhook secrets derive from the development master secret (``GEMQ_WEBHOOK_SECRET`` unset)."""
        return self.webhook_secret == DEV_WEBHOOK_SECRET

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


class _EnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping: values stripped, blank ones unset.

    A subclass because the library reads ``os.environ`` only, and its ``env_ignore_empty`` neither
    strips values nor spares a variable whose empty value means something (``EMPTY_IS_A_VALUE``).
    """

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name: value.strip() for name, value in self._env.items()
                if value.strip() or name in EMPTY_IS_A_VALUE}


def _describe(exc: ValidationError, values: Mapping[str, Any]) -> str:
    """``VAR: expected ..., got '...' (detail)`` for each wrong variable, from pydantic's errors."""
    fields = {field.validation_alias: field for field in Settings.model_fields.values()}
    clauses: dict[str, str] = {}
    for error in exc.errors():
        var, path = str(error["loc"][0]), list(error["loc"][1:])
        field = fields.get(var)
        if field is None or var in clauses:
            continue
        expect = next((f"expected {m.text}" for m in field.metadata if isinstance(m, Expect)), error["msg"])
        got = "" if field.repr is False else f", got {values[var]!r}"
        detail = _detail(error, path)
        clauses[var] = f"{var}: {expect}{got}" + (f" ({detail})" if detail else "")
    return "; ".join(clauses.values())


def _detail(error: ErrorDetails, path: list[str | int]) -> str:
    """What was wrong inside a value: a splitter's own message, or pydantic's with where it applies."""
    if error["type"] == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    if not path:
        return ""  # the expected format says it all
    where = " ".join(f"#{part + 1}" if isinstance(part, int) else part for part in path)
    return f"{where}: {error['msg']}"


def load_or_exit() -> Settings:
    """Settings for a process starting up: on a :class:`ConfigError`, its message on stderr and exit status 2."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"gemq: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def unknown_variables(env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Each ``GEMQ_*`` variable gemq does not read -> the known name it most resembles, if any (a typo?)."""
    env = os.environ if env is None else env
    known = {*Settings.variables(), *OTHER_VARIABLES}
    return {name: next(iter(difflib.get_close_matches(name, known, n=1)), None)
            for name in sorted(env) if name.startswith("GEMQ_") and name not in known}
