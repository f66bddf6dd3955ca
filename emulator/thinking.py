"""`generationConfig.thinkingConfig`: checked per model, turned into a deterministic thought-token count.

Refusals, with the messages live probes recorded (2026-10-07, gemini-2.5-flash and gemini-3.8-flash,
published in a public repository; "Budget 0 is invalid" also in many public reports on 2.5 Pro):

* `thinkingLevel` on a budget-style (2.5) model: "Thinking level is not supported for this model."
* a level the model does not take: "Thinking level MINIMAL is not supported for this model. Please
  retry with other thinking level."
* both fields: "You can only set only one of thinking budget and thinking level."
* `thinkingBudget: 0` where thinking cannot be turned off: "Budget 0 is invalid. This model only
  works in thinking mode."
* a budget out of range: "The thinking budget 64000 is invalid. Please choose a value between 128
  and 32768."

Tokens: a level spends `catalog.LEVEL_TOKENS[level]`, a positive budget exactly the budget, -1
(dynamic) `catalog.DYNAMIC_TOKENS`. Thoughts share `maxOutputTokens` with the answer (the probes
show thoughtsTokenCount + candidatesTokenCount <= maxOutputTokens); a request without
thinkingConfig thinks at the model's default only when the `default_thinking` knob is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.catalog import DYNAMIC_TOKENS, LEVEL_TOKENS, LEVELS, ModelSpec
from emulator.protos import InvalidRequest, invalid_value


@dataclass(frozen=True)
class Thinking:
    """How much a request thinks and whether thought summaries come back."""

    tokens: int = 0
    include_thoughts: bool = False


def plan_thinking(config: dict[str, Any] | None, spec: ModelSpec, *, default_on: bool, where: str,
                  version: str) -> Thinking:
    """Check `thinkingConfig` (camelCase keys) for `spec` and return the thinking it asks for."""
    if config is None:
        return Thinking(_default_tokens(spec) if default_on and spec.thinks_by_default else 0)
    include = config.get("includeThoughts")
    if include is not None and not isinstance(include, bool):
        raise invalid_value(f"{where}.include_thoughts", "TYPE_BOOL", include, version)
    level, budget = config.get("thinkingLevel"), config.get("thinkingBudget")
    if level is not None and budget is not None:
        raise InvalidRequest("You can only set only one of thinking budget and thinking level.")
    if level is not None:
        tokens = _level_tokens(level, spec, where, version)
    elif budget is not None:
        tokens = _budget_tokens(budget, spec, where, version)
    else:
        tokens = _default_tokens(spec)
    return Thinking(tokens, bool(include) and tokens > 0)


def _default_tokens(spec: ModelSpec) -> int:
    if spec.thinking == "level":
        return LEVEL_TOKENS[spec.default_level]
    return DYNAMIC_TOKENS if spec.thinking == "budget" else 0


def _level_tokens(level: Any, spec: ModelSpec, where: str, version: str) -> int:
    name = level.upper() if isinstance(level, str) else level
    if name == "THINKING_LEVEL_UNSPECIFIED":
        return _default_tokens(spec)
    if name not in LEVELS:
        raise invalid_value(f"{where}.thinking_level", "ThinkingLevel", level, version)
    if spec.thinking != "level":
        raise InvalidRequest("Thinking level is not supported for this model.")
    if name not in spec.levels:
        raise InvalidRequest(f"Thinking level {name} is not supported for this model. "
                             "Please retry with other thinking level.")
    return LEVEL_TOKENS[name]


def _budget_tokens(budget: Any, spec: ModelSpec, where: str, version: str) -> int:
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not float(budget).is_integer():
        raise invalid_value(f"{where}.thinking_budget", "TYPE_INT32", budget, version)
    value = int(budget)
    if spec.thinking == "none":
        if value == 0:
            return 0
        raise InvalidRequest("Thinking is not supported for this model.")
    if value == -1:
        return DYNAMIC_TOKENS
    if value == 0:
        if spec.budget_off:
            return 0
        raise InvalidRequest("Budget 0 is invalid. This model only works in thinking mode.")
    low, high = spec.budget_range
    if not low <= value <= high:
        raise InvalidRequest(f"The thinking budget {value} is invalid. Please choose a value between {low} and {high}.")
    return value
