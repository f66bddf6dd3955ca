"""Fault injection: scripted rules (admin API) and seeded random faults (rate knobs).

A scripted rule applies to the next `times` generate calls whose prompt text contains `match`
(an empty `match` matches every call); the first live matching rule wins, then it is spent.
Refusals (`quota_*`, `status` 429, and `flex_shed`) are answered before quota admission and do not
count against the emulator's quota; every other fault hits an admitted (counted) call. A
`flex_shed` rule applies to calls with `serviceTier: flex` only (other calls pass it by) and answers
what the API sends when it sheds Flex work (see `emulator.tiers`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from emulator.config import EmulatorConfig

FaultKind = Literal[
    "status",
    "hang",
    "midstream",
    "malformed",
    "safety_prompt",
    "safety_candidate",
    "quota_rpm",
    "quota_rpd",
    "quota_tpm",
    "flex_shed",
]
#: Kinds that refuse a call before it is admitted.
QUOTA_KINDS = frozenset({"quota_rpm", "quota_rpd", "quota_tpm"})
REFUSAL_KINDS = QUOTA_KINDS | {"flex_shed"}


class ScriptedFault(BaseModel):
    """One fault: what to do to a call and, for scripted rules, which calls and how often."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    match: str = ""
    kind: FaultKind
    status: int | None = Field(default=None, ge=400, le=599)
    times: int = Field(default=1, ge=1)
    retry_delay_s: float | None = Field(default=1.0, ge=0.0)
    hang_s: float | None = Field(default=None, ge=0.0)
    message: str | None = None

    @model_validator(mode="after")
    def _status_needed(self) -> ScriptedFault:
        if self.kind == "status" and self.status is None:
            raise ValueError("kind=status needs a status (400-599)")
        return self

    @property
    def refusal(self) -> bool:
        """True when the fault answers before quota admission (a 429)."""
        return self.kind in REFUSAL_KINDS or (self.kind == "status" and self.status == 429)


@dataclass
class _Rule:
    fault: ScriptedFault
    remaining: int


class FaultBook:
    """The scripted rules, in the order they were added."""

    def __init__(self) -> None:
        self._rules: list[_Rule] = []

    def add(self, faults: list[ScriptedFault]) -> None:
        """Append rules."""
        self._rules.extend(_Rule(fault, fault.times) for fault in faults)

    def take(self, prompt: str, *, refusal: bool, tier: str = "standard") -> ScriptedFault | None:
        """Spend one use of the first rule matching `prompt` (and `tier`), if it is (or is not) a refusal."""
        for index, rule in enumerate(self._rules):
            if rule.fault.match not in prompt or (rule.fault.kind == "flex_shed" and tier != "flex"):
                continue
            if rule.fault.refusal != refusal:
                return None
            rule.remaining -= 1
            if rule.remaining <= 0:
                del self._rules[index]
            return rule.fault
        return None

    def listing(self) -> list[dict[str, Any]]:
        """The live rules as JSON, each with its remaining uses."""
        return [{**rule.fault.model_dump(), "remaining": rule.remaining} for rule in self._rules]

    def clear(self) -> None:
        """Drop every rule."""
        self._rules.clear()


def roll(rng: random.Random, config: EmulatorConfig, *, stream: bool) -> ScriptedFault | None:
    """Decide a random fault from the rate knobs (always the same number of draws per call)."""
    draws = [rng.random() for _ in range(7)]
    if draws[0] < config.error_rate:
        return ScriptedFault(kind="status", status=503 if draws[5] < 0.5 else 500)
    if draws[1] < config.hang_rate:
        return ScriptedFault(kind="hang")
    if stream and draws[2] < config.midstream_error_rate:
        return ScriptedFault(kind="midstream", status=503 if draws[5] < 0.5 else 500)
    if draws[3] < config.malformed_rate:
        return ScriptedFault(kind="malformed")
    if draws[4] < config.safety_rate:
        return ScriptedFault(kind="safety_prompt" if draws[6] < 0.5 else "safety_candidate")
    return None
