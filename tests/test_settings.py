"""Settings from the environment (``worker/core/settings.py``): defaults, formats, refusals, and processes that
refuse to start with a bad value.  Expected values are written out, not computed by the code under test."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from procfile import ProcfileProcess
from procs import ROOT, free_port
from pydantic import ValidationError

from worker.core.settings import ConfigError, ModelLimits, Settings, unknown_variables

DEFAULT_LIMITS = {"*": ModelLimits(rpm=1000, tpm=1_000_000, rpd=10_000, concurrency=100)}

#: Each variable -> (field, its value when the variable is unset).
DEFAULTS: dict[str, tuple[str, object]] = {
    "REDIS_URL": ("redis_url", "redis://127.0.0.1:6379/0"),
    "GEMINI_API_KEY": ("gemini_api_key", None),
    "GEMINI_BASE_URL": ("gemini_base_url", None),
    "GEMINI_API_VERSION": ("gemini_api_version", "v1beta"),
    "GEMQ_GEMINI_TIMEOUT": ("gemini_timeout", 300.0),
    "GEMQ_DEFAULT_MODEL": ("default_model", "gemini-2.5-flash"),
    "GEMQ_API_KEYS": ("api_keys", {"dev-key-change-me": "dev"}),
    "GEMQ_LIMITS": ("limits", DEFAULT_LIMITS),
    "GEMQ_LIMITER_WINDOW_MARGIN": ("limiter_window_margin", 0.5),
    "GEMQ_LIMITER_LEASE": ("limiter_lease", 30.0),
    "GEMQ_PRIORITY_RESERVE": ("priority_reserve", {"low": 0.1, "normal": 0.0}),
    "GEMQ_WEBHOOK_SECRET": ("webhook_secret", "dev-webhook-secret-change-me"),
    "GEMQ_WEBHOOK_ALLOW_PRIVATE": ("webhook_allow_private", False),
    "GEMQ_WEBHOOK_RETRY_SCHEDULE": ("webhook_schedule", (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)),
    "GEMQ_WEBHOOK_TIMEOUT": ("webhook_timeout", 15.0),
    "GEMQ_RESULT_TTL": ("result_ttl", 604_800),
    "GEMQ_VISIBILITY_TIMEOUT": ("visibility_timeout", 3600),
    "GEMQ_WORKER_CONCURRENCY": ("worker_concurrency", 200),
    "GEMQ_REAPER_INTERVAL": ("reaper_interval", 30.0),
    "GEMQ_REAPER_MARGIN": ("reaper_margin", 120.0),
    "GEMQ_MAX_ATTEMPTS": ("max_attempts", 8),
    "GEMQ_RETRY_BASE_DELAY": ("retry_base_delay", 1.0),
    "GEMQ_RETRY_MAX_DELAY": ("retry_max_delay", 60.0),
    "GEMQ_RETRY_MAX_TOTAL": ("retry_max_total", 900.0),
    "GEMQ_ADMISSION_SLEEP_MAX": ("admission_sleep_max", 1.0),
    "GEMQ_STREAM_FLUSH_INTERVAL": ("stream_flush_interval", 0.25),
    "GEMQ_MAX_BODY_BYTES": ("max_body_bytes", 10_485_760),
    "GEMQ_MAX_BATCH_BYTES": ("max_batch_bytes", 268_435_456),
    "GEMQ_MAX_BATCH_LINES": ("max_batch_lines", 100_000),
    "GEMQ_SUBMIT_LIMITS": ("submit_limits", "50/second;1000/minute"),
    "GEMQ_CACHE_TTL": ("cache_ttl", 86_400),
    "GEMQ_CONVERSATION_TTL": ("conversation_ttl", 604_800),
    "GEMQ_CONVERSATION_MAX_TURNS": ("conversation_max_turns", 50),
    "GEMQ_SSE_HEARTBEAT": ("sse_heartbeat", 15.0),
    "GEMQ_SSE_MAX_DURATION": ("sse_max_duration", 1800.0),
    "GEMQ_SSE_MAX_LISTENERS": ("sse_max_listeners", 1000),
    "GEMQ_LOG_LEVEL": ("log_level", "INFO"),
    "GEMQ_LOG_JSON": ("log_json", True),
    "GEMQ_METRICS_FLUSH_INTERVAL": ("metrics_flush_interval", 1.0),
    "GEMQ_ENV": ("environment", "production"),
    "FLOWER_BASIC_AUTH": ("flower_basic_auth", ()),
}


def fields(settings: Settings) -> dict[str, object]:
    """Every field's value."""
    return {name: getattr(settings, name) for name in Settings.model_fields}


def refusal(env: dict[str, str]) -> str:
    """The message of the ConfigError that ``env`` raises."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    return str(caught.value)


# Defaults and where they are read from

def test_every_variable_has_its_documented_default() -> None:
    settings = Settings.from_env({})
    assert Settings.variables() == list(DEFAULTS)
    assert {var: getattr(settings, name) for var, (name, _) in DEFAULTS.items()} == {
        var: value for var, (_, value) in DEFAULTS.items()}
    assert settings == Settings()
    assert (settings.dev_api_key, settings.dev_webhook_secret, settings.using_emulator) == (True, True, True)
    assert settings.gemini_endpoint == "http://127.0.0.1:8090"


def test_every_variable_in_the_readme_table_is_read() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`((?:GEMQ|GEMINI|REDIS|FLOWER)_[A-Z_]+)`", table))
    assert len(documented) > 30
    assert documented <= set(Settings.variables())


def test_an_explicit_mapping_is_all_that_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMQ_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("GEMINI_API_KEY", "from-the-shell")
    assert (Settings.from_env({}).max_attempts, Settings.from_env({}).gemini_api_key) == (8, None)
    assert (Settings().max_attempts, Settings(redis_url="redis://h:1/2").gemini_api_key) == (8, None)
    assert (Settings.from_env().max_attempts, Settings.from_env().gemini_api_key) == (3, "from-the-shell")


def test_values_are_stripped_and_blank_ones_are_unset() -> None:
    settings = Settings.from_env({"GEMQ_MAX_ATTEMPTS": " 3 ", "GEMINI_API_KEY": "  ", "GEMQ_LIMITS": "",
                                  "GEMQ_WEBHOOK_SECRET": "", "GEMQ_LOG_LEVEL": " debug\n"})
    assert (settings.max_attempts, settings.gemini_api_key, settings.limits) == (3, None, DEFAULT_LIMITS)
    assert (settings.dev_webhook_secret, settings.log_level) == (True, "debug")


# Composite formats

def test_api_keys_are_tenant_key_pairs_looked_up_by_key() -> None:
    settings = Settings.from_env({"GEMQ_API_KEYS": "acme:k1, globex:k2,,acme:k3"})
    assert settings.api_keys == {"k1": "acme", "k2": "globex", "k3": "acme"}
    assert settings.dev_api_key is False


def test_limits_are_per_model_over_the_default_for_every_other_model() -> None:
    raw = "gemini-2.5-pro:rpm=150,tpm=2000000; gemini-2.5-flash:concurrency=20;"
    settings = Settings.from_env({"GEMQ_LIMITS": raw})
    assert settings.limits == {**DEFAULT_LIMITS, "gemini-2.5-pro": ModelLimits(rpm=150, tpm=2_000_000),
                               "gemini-2.5-flash": ModelLimits(concurrency=20)}
    assert settings.limits_for("gemini-2.5-flash") == ModelLimits(concurrency=20)
    assert settings.limits_for("gemini-3-pro") == DEFAULT_LIMITS["*"]
    assert Settings.from_env({"GEMQ_LIMITS": "*:rpm=5"}).limits == {"*": ModelLimits(rpm=5)}


def test_a_priority_reserve_left_out_is_zero() -> None:
    assert Settings.from_env({"GEMQ_PRIORITY_RESERVE": "normal=0.05"}).priority_reserve == {"low": 0.0, "normal": 0.05}
    assert Settings.from_env({"GEMQ_PRIORITY_RESERVE": "low=0.2,normal=0"}).priority_reserve == {"low": 0.2,
                                                                                                  "normal": 0.0}


@pytest.mark.parametrize(("raw", "expected"), [
    ("", ""), ("off", ""), ("OFF", ""), ("none", ""), ("0", ""), ("  ", ""),
    ("10/second", "10/second"), (" 5/minute;100/hour ", "5/minute;100/hour"),
])
def test_submit_limits_set_empty_or_off_mean_none(raw: str, expected: str) -> None:
    assert Settings.from_env({"GEMQ_SUBMIT_LIMITS": raw}).submit_limits == expected


def test_the_webhook_schedule_and_flower_auth_are_comma_separated() -> None:
    settings = Settings.from_env({"GEMQ_WEBHOOK_RETRY_SCHEDULE": "0.2, 1,30,", "FLOWER_BASIC_AUTH": "ops:p:w,b:c"})
    assert settings.webhook_schedule == (0.2, 1.0, 30.0)
    assert settings.flower_basic_auth == ("ops:p:w", "b:c")


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("true", True), ("Yes", True), ("on", True),
                                               ("0", False), ("false", False), ("no", False), ("OFF", False)])
def test_flags_read_0_and_1_and_their_words(raw: str, expected: bool) -> None:
    settings = Settings.from_env({"GEMQ_WEBHOOK_ALLOW_PRIVATE": raw, "GEMQ_LOG_JSON": raw})
    assert (settings.webhook_allow_private, settings.log_json) == (expected, expected)


# Refusals: each names its variable and what it expects

@pytest.mark.parametrize(("env", "message"), [
    ({"GEMQ_MAX_ATTEMPTS": "abc"}, "GEMQ_MAX_ATTEMPTS: expected a positive integer, got 'abc'"),
    ({"GEMQ_WORKER_CONCURRENCY": "0"}, "GEMQ_WORKER_CONCURRENCY: expected a positive integer, got '0'"),
    ({"GEMQ_CACHE_TTL": "-1"}, "GEMQ_CACHE_TTL: expected an integer, 0 or more, got '-1'"),
    ({"GEMQ_RETRY_BASE_DELAY": "-0.5"}, "GEMQ_RETRY_BASE_DELAY: expected seconds, 0 or more, got '-0.5'"),
    ({"GEMQ_GEMINI_TIMEOUT": "inf"}, "GEMQ_GEMINI_TIMEOUT: expected seconds, more than 0, got 'inf'"),
    ({"GEMQ_WEBHOOK_ALLOW_PRIVATE": "maybe"}, "GEMQ_WEBHOOK_ALLOW_PRIVATE: expected 0 or 1, got 'maybe'"),
    ({"GEMQ_ENV": "staging"}, "GEMQ_ENV: expected production or development, got 'staging'"),
    ({"GEMQ_LOG_LEVEL": "verbose"}, "GEMQ_LOG_LEVEL: expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'verbose'"),
    ({"GEMQ_LIMITS": "gemini-2.5-pro:rpx=5"},
     "GEMQ_LIMITS: expected model:rpm=N,tpm=N,rpd=N,concurrency=N;... (any subset, N > 0; * for every other model), "
     "got 'gemini-2.5-pro:rpx=5' (gemini-2.5-pro rpx: Unexpected keyword argument)"),
    ({"GEMQ_LIMITS": "m:rpm=0"},
     "GEMQ_LIMITS: expected model:rpm=N,tpm=N,rpd=N,concurrency=N;... (any subset, N > 0; * for every other model), "
     "got 'm:rpm=0' (m rpm: Input should be greater than 0)"),
    ({"GEMQ_LIMITS": "rpm=5"},
     "GEMQ_LIMITS: expected model:rpm=N,tpm=N,rpd=N,concurrency=N;... (any subset, N > 0; * for every other model), "
     "got 'rpm=5' ('rpm=5' does not start with a model name and ':')"),
    ({"GEMQ_PRIORITY_RESERVE": "high=0.1"}, "GEMQ_PRIORITY_RESERVE: expected low=S,normal=S with each share S in "
     "[0, 1), got 'high=0.1' (a reserve applies to low and normal, not 'high')"),
    ({"GEMQ_PRIORITY_RESERVE": "low=1"}, "GEMQ_PRIORITY_RESERVE: expected low=S,normal=S with each share S in "
     "[0, 1), got 'low=1' (low: Input should be less than 1)"),
    ({"GEMQ_SUBMIT_LIMITS": "5/fortnight"}, "GEMQ_SUBMIT_LIMITS: expected limits like 50/second;1000/minute, or "
     "empty or off for none, got '5/fortnight' (no granularity matched for fortnight)"),
    ({"GEMQ_WEBHOOK_RETRY_SCHEDULE": "5,soon"}, "GEMQ_WEBHOOK_RETRY_SCHEDULE: expected seconds before each retry, "
     "comma-separated (at least one, each 0 or more), got '5,soon' (#2: Input should be a valid number, unable to "
     "parse string as a number)"),
    ({"GEMQ_WEBHOOK_RETRY_SCHEDULE": ","}, "GEMQ_WEBHOOK_RETRY_SCHEDULE: expected seconds before each retry, "
     "comma-separated (at least one, each 0 or more), got ','"),
])
def test_a_bad_value_is_refused_with_its_variable_and_what_it_expects(env: dict[str, str], message: str) -> None:
    assert refusal(env) == message


@pytest.mark.parametrize("var", [var for var, (_, default) in DEFAULTS.items()
                                 if isinstance(default, (int, float)) and not isinstance(default, bool)])
def test_every_number_refuses_a_word(var: str) -> None:
    assert refusal({var: "many"}).startswith(f"{var}: expected ")


def test_every_wrong_variable_is_named_at_once() -> None:
    message = refusal({"GEMQ_MAX_ATTEMPTS": "0", "GEMQ_ENV": "qa", "GEMQ_RESULT_TTL": "7"})
    assert message == ("GEMQ_MAX_ATTEMPTS: expected a positive integer, got '0'; "
                       "GEMQ_ENV: expected production or development, got 'qa'")


@pytest.mark.parametrize(("env", "message"), [
    ({"GEMQ_API_KEYS": "acme-secret-value"},
     "GEMQ_API_KEYS: expected tenant:key pairs, comma-separated (an entry lacks its tenant, its ':' or its key)"),
    ({"GEMQ_API_KEYS": "a:secret-value,b:secret-value"},
     "GEMQ_API_KEYS: expected tenant:key pairs, comma-separated (a key is given twice)"),
    ({"FLOWER_BASIC_AUTH": "ops:pw,secret-value"},
     "FLOWER_BASIC_AUTH: expected user:password pairs, comma-separated (#2: String should match pattern "
     "'^[^:]+:.+$')"),
])
def test_a_refused_secret_is_never_repeated(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert str(caught.value) == message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # pydantic's text echoes inputs


# Secrets, construction and warnings

def test_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_env({"GEMINI_API_KEY": "AIza-secret", "GEMQ_API_KEYS": "acme:key-secret",
                                  "GEMQ_WEBHOOK_SECRET": "whsec-secret", "FLOWER_BASIC_AUTH": "ops:pw-secret"})
    assert settings.gemini_api_key == "AIza-secret" and settings.flower_basic_auth == ("ops:pw-secret",)
    for text in (repr(settings), str(settings)):
        assert "secret" not in text and "redis_url=" in text


def test_direct_construction_and_replace_check_their_values() -> None:
    settings = Settings(redis_url="redis://h:1/0", limits={"m": ModelLimits(rpm=5)}, submit_limits="off")
    assert (settings.limits, settings.submit_limits, settings.redis_url) == ({"m": ModelLimits(rpm=5)}, "",
                                                                            "redis://h:1/0")
    changed = settings.replace(max_attempts=2, api_keys={"k": "t"})
    assert (changed.max_attempts, changed.api_keys, changed.dev_api_key, changed.redis_url) == (2, {"k": "t"}, False,
                                                                                                "redis://h:1/0")
    assert settings.max_attempts == 8
    for bad in ({"max_attempts": 0}, {"max_attemps": 2}):
        with pytest.raises(ValidationError):
            settings.replace(**bad)
    with pytest.raises(ValidationError):
        settings.max_attempts = 2  # frozen
    with pytest.raises(ValidationError):
        ModelLimits(rpm=0)


def test_unknown_gemq_variables_are_listed_with_the_nearest_known_name() -> None:
    env = {"GEMQ_MAX_ATTEMPT": "3", "GEMQ_FROBNICATE": "1", "GEMQ_URL": "http://x", "GEMQ_API_KEY": "k",
           "GEMQ_RUN_DIR": "run", "GEMQ_LIMITS": "", "PATH": "/bin"}
    assert unknown_variables(env) == {"GEMQ_FROBNICATE": None, "GEMQ_MAX_ATTEMPT": "GEMQ_MAX_ATTEMPTS"}
    assert Settings.from_env(env) == Settings()  # ignored, as before


# The same settings as the hand-written parser this class replaced (its results, written down)

def test_the_compose_environment() -> None:
    env = {"REDIS_URL": "redis://redis:6379/0", "GEMINI_API_KEY": "", "GEMINI_BASE_URL": "",
           "GEMQ_API_KEYS": "team:key", "GEMQ_WEBHOOK_SECRET": "secret", "GEMQ_LIMITS": "",
           "GEMQ_WORKER_CONCURRENCY": "200", "GEMQ_VISIBILITY_TIMEOUT": "3600",
           "GEMQ_SUBMIT_LIMITS": "50/second;1000/minute", "GEMQ_LOG_LEVEL": "INFO", "GEMQ_ENV": "production",
           "FLOWER_BASIC_AUTH": "admin:pw", "PATH": "/usr/bin"}
    assert fields(Settings.from_env(env)) == {**fields(Settings()), "redis_url": "redis://redis:6379/0",
                                              "api_keys": {"key": "team"}, "webhook_secret": "secret",
                                              "flower_basic_auth": ("admin:pw",)}


def test_the_test_suite_environment() -> None:
    env = {"REDIS_URL": "redis://127.0.0.1:6390/0", "GEMINI_BASE_URL": "http://127.0.0.1:8091",
           "GEMQ_API_KEYS": "acme:key-acme, globex:key-globex", "GEMQ_WEBHOOK_SECRET": "test-master-secret",
           "GEMQ_WEBHOOK_ALLOW_PRIVATE": "1", "GEMQ_GEMINI_TIMEOUT": "10", "GEMQ_RETRY_BASE_DELAY": "0.2",
           "GEMQ_RETRY_MAX_DELAY": "2", "GEMQ_SUBMIT_LIMITS": "", "NO_PROXY": "127.0.0.1,localhost"}
    assert fields(Settings.from_env(env)) == {
        **fields(Settings()), "redis_url": "redis://127.0.0.1:6390/0", "gemini_base_url": "http://127.0.0.1:8091",
        "gemini_timeout": 10.0, "api_keys": {"key-acme": "acme", "key-globex": "globex"},
        "webhook_secret": "test-master-secret", "webhook_allow_private": True, "retry_base_delay": 0.2,
        "retry_max_delay": 2.0, "submit_limits": ""}


def test_a_tuned_production_environment() -> None:
    env = {"GEMINI_API_KEY": " AIza-real-key ", "GEMINI_API_VERSION": "v1", "GEMQ_DEFAULT_MODEL": "gemini-2.5-pro",
           "GEMQ_LIMITS": "gemini-2.5-pro:rpm=150,tpm=2000000,rpd=1000;gemini-2.5-flash:concurrency=20; *:rpm=50",
           "GEMQ_PRIORITY_RESERVE": "normal=0.05", "GEMQ_WEBHOOK_RETRY_SCHEDULE": "1, 10,60",
           "GEMQ_SUBMIT_LIMITS": "off", "GEMQ_LOG_JSON": "false", "GEMQ_LOG_LEVEL": "debug", "GEMQ_ENV": "development",
           "GEMQ_MAX_ATTEMPTS": "3", "GEMQ_RESULT_TTL": "3600", "GEMQ_ADMISSION_SLEEP_MAX": "0"}
    settings = Settings.from_env(env)
    assert fields(settings) == {
        **fields(Settings()), "gemini_api_key": "AIza-real-key", "gemini_api_version": "v1",
        "default_model": "gemini-2.5-pro",
        "limits": {"*": ModelLimits(rpm=50), "gemini-2.5-pro": ModelLimits(rpm=150, tpm=2_000_000, rpd=1000),
                   "gemini-2.5-flash": ModelLimits(concurrency=20)},
        "priority_reserve": {"low": 0.0, "normal": 0.05}, "webhook_schedule": (1.0, 10.0, 60.0), "result_ttl": 3600,
        "max_attempts": 3, "admission_sleep_max": 0.0, "submit_limits": "", "log_level": "debug", "log_json": False,
        "environment": "development"}
    assert (settings.using_emulator, settings.gemini_endpoint) == (False, None)


# Processes refuse to start

@pytest.mark.parametrize("process", ["web", "worker", "flower"])
def test_a_process_with_a_bad_value_exits_at_start_naming_the_variable(process: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMQ_", "GEMINI_", "FLOWER_"))}
    env.update(GEMQ_MAX_ATTEMPTS="abc", GEMQ_RUN_DIR=str(tmp_path), WEB_PORT=str(free_port()),
               FLOWER_PORT=str(free_port()), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    started = ProcfileProcess(process, env, tmp_path / f"{process}.log").start()
    assert started.proc is not None
    try:
        status = started.proc.wait(timeout=60)
    finally:
        started.stop()
    stderr = started.logfile.read_text()
    assert status == 2, stderr
    assert stderr == "gemq: configuration error: GEMQ_MAX_ATTEMPTS: expected a positive integer, got 'abc'\n"
