"""Emulator settings: one frozen model built from `EMULATOR_*` env vars, then `--flags`.

This is the only emulator module that reads `os.environ`. Every knob `name` is read from
`EMULATOR_<NAME>` and overridden by `--name` (or `--na-me`); lists are comma-separated. The admin
API (`PATCH /_emulator/config`) derives a new config with `EmulatorConfig.updated`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from emulator.catalog import CURRENT, DEPRECATED, SHUTDOWN
from emulator.textgen import key_fingerprint

#: Models served when `EMULATOR_MODELS` is not set: the current catalogue.
DEFAULT_MODELS: tuple[str, ...] = tuple(spec.name for spec in CURRENT)
#: The inline request limit: "100 MB per request" (ai.google.dev/gemini-api/docs/file-input-methods, 2026).
DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024
MIB = 1024 * 1024
GIB = 1024 * MIB
#: Env var prefix of every knob.
ENV_PREFIX = "EMULATOR_"
#: Knobs that only make sense at start-up (the admin API refuses to change them).
STARTUP_ONLY = frozenset({"host", "port", "log_level"})


def _rate() -> Any:
    return Field(default=0.0, ge=0.0, le=1.0)


class EmulatorConfig(BaseModel):
    """Every emulator knob; frozen, so a runtime change builds a new object."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    log_level: str = "INFO"
    ttft_ms: float = Field(default=0.0, ge=0.0)
    tokens_per_second: float = Field(default=0.0, ge=0.0)
    latency_ms: float = Field(default=0.0, ge=0.0)
    output_tokens: int = Field(default=0, ge=0)
    # Gemini streams many tokens per chunk, not one or two as other APIs do (reported in
    # stanfordnlp/dspy#8235 and labring/FastGPT#6079); 20 words per chunk is a middle figure.
    chunk_tokens: int = Field(default=20, ge=1)
    rpm: int = Field(default=0, ge=0)
    tpm: int = Field(default=0, ge=0)
    rpd: int = Field(default=0, ge=0)
    omit_retry_info: bool = False
    error_rate: float = _rate()
    hang_rate: float = _rate()
    hang_seconds: float = Field(default=300.0, ge=0.0)
    midstream_error_rate: float = _rate()
    midstream_error_format: Literal["raw", "sse"] = "raw"
    malformed_rate: float = _rate()
    safety_rate: float = _rate()
    seed: int = 0
    api_keys: tuple[str, ...] = ()
    models: tuple[str, ...] = DEFAULT_MODELS
    deprecated_models: dict[str, str] = Field(default_factory=lambda: dict(DEPRECATED))
    shutdown_models: tuple[str, ...] = SHUTDOWN
    default_thinking: bool = False
    max_request_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BYTES, ge=1)
    flex_latency_factor: float = Field(default=3.0, ge=1.0)
    flex_extra_ms: float = Field(default=0.0, ge=0.0)
    flex_shed_rate: float = _rate()
    priority_downgrade_rate: float = _rate()
    log_size: int = Field(default=200_000, ge=1)
    body_log_size: int = Field(default=2_000, ge=0)
    # Batch Mode and the Files API (emulator/batches.py, emulator/files.py; README "Batch Mode").
    batch_pending_s: float = Field(default=1.0, ge=0.0)
    batch_running_s: float = Field(default=2.0, ge=0.0)
    batch_outcome: Literal["succeed", "stall", "expire", "fail"] = "succeed"
    batch_expire_s: float = Field(default=48 * 3600.0, gt=0.0)
    batch_max_concurrent: int = Field(default=100, ge=0)
    batch_enqueued_tokens: int = Field(default=0, ge=0)
    batch_inline_max_bytes: int = Field(default=20 * MIB, ge=1)
    batch_line_error_rate: float = _rate()
    file_max_bytes: int = Field(default=2 * GIB, ge=1)
    files_max_total_bytes: int = Field(default=20 * GIB, ge=1)
    file_ttl_s: float = Field(default=48 * 3600.0, gt=0.0)
    file_processing_s: float = Field(default=0.0, ge=0.0)

    @field_validator("api_keys", "models", "shutdown_models", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip().removeprefix("models/") for item in value.split(",") if item.strip())
        if isinstance(value, list | tuple):
            return tuple(str(item).removeprefix("models/") for item in value)
        return value

    @field_validator("deprecated_models", mode="before")
    @classmethod
    def _split_pairs(cls, value: Any) -> Any:
        """`a=2027-05-07T00:00:00Z,b=...` (env and flags) or a JSON object (admin API)."""
        if isinstance(value, str):
            pairs = (item.split("=", 1) for item in value.split(",") if item.strip())
            return {name.strip().removeprefix("models/"): when.strip() for name, when in pairs}
        return value

    def served(self, model: str) -> bool:
        """Whether `model` (bare name) answers: listed or deprecated, and not shut down."""
        return (model in self.models or model in self.deprecated_models) and model not in self.shutdown_models

    def served_models(self) -> list[str]:
        """The names `models.list` shows, in catalogue order."""
        names = list(self.models) + [m for m in self.deprecated_models if m not in self.models]
        return [name for name in names if name not in self.shutdown_models]

    @classmethod
    def from_sources(cls, environ: Mapping[str, str], argv: Sequence[str] | None = None) -> EmulatorConfig:
        """Build from env vars, then command-line flags (flags win)."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        flags = vars(build_parser().parse_args(argv))
        values.update({name: raw for name, raw in flags.items() if raw is not None})
        return cls.model_validate(values)

    def updated(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """Return a validated copy with `changes` applied (raises pydantic.ValidationError)."""
        return type(self).model_validate({**self.model_dump(), **changes})

    def public_dump(self) -> dict[str, Any]:
        """The config as JSON, API keys replaced by their fingerprints."""
        data = self.model_dump(mode="json")
        data["api_keys"] = [key_fingerprint(key) for key in self.api_keys]
        return data

    def log_summary(self) -> str:
        """One line for the start-up log: every knob, never the keys themselves."""
        data = self.model_dump(mode="json")
        data["api_keys"] = f"<{len(self.api_keys)} configured>" if self.api_keys else "<any non-empty key>"
        return " ".join(f"{name}={value}" for name, value in data.items())


def build_parser() -> argparse.ArgumentParser:
    """The `python -m emulator` parser: one `--name` flag per knob, all strings, validated later."""
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Gemini REST emulator.")
    for name, field in EmulatorConfig.model_fields.items():
        flags = sorted({f"--{name}", f"--{name.replace('_', '-')}"})
        help_text = f"env {ENV_PREFIX}{name.upper()}; default {field.default!r}"
        if field.annotation is bool:
            # `--omit-retry-info` alone means true; `--omit-retry-info false` is also accepted.
            parser.add_argument(*flags, dest=name, default=None, nargs="?", const="true", help=help_text)
        else:
            parser.add_argument(*flags, dest=name, default=None, metavar=name.upper(), help=help_text)
    return parser


def load_config(argv: Sequence[str] | None = None) -> EmulatorConfig:
    """The effective config of this process: `os.environ` plus `argv`."""
    return EmulatorConfig.from_sources(os.environ, argv)
