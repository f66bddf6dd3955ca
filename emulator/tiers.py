"""Service tiers (`serviceTier`: standard, flex, priority): who serves a call, how fast, and Flex shedding.

Sources: ai.google.dev/gemini-api/docs/flex-inference (copy dated 2026-09-23) and
.../priority-inference (2026-06-23):

* Flex "counts towards your general rate limits" (no bucket of its own), answers in minutes, and
  when "Flex capacity is unavailable or the system is congested" returns "503 Service Unavailable:
  The system is currently at capacity" ("Flex is sheddable and fails with 503 errors"); it is never
  upgraded to standard. The page gives no body; the emulator sends the 503 body Gemini sends when
  capacity runs out (quoted verbatim in googleapis/python-genai#2448, 2026-05, and
  continuedev/continue#10639): UNAVAILABLE, "This model is currently experiencing high demand. Spikes in
  demand are usually temporary. Please try again later.", no details.
* Priority over its limit is downgraded to standard rather than failed.
* The tier that served a call is in the `x-gemini-service-tier` response header (the priority page
  tells clients to read it) and in `usageMetadata.serviceTier` (live responses captured 2026-10-07;
  google-genai 3.4/3.6 drop that field from GenerateContentResponseUsageMetadata, so SDK users read
  the header through `response.sdk_http_response.headers`).
"""

from __future__ import annotations

import random

from emulator.config import EmulatorConfig

TIER_HEADER = "x-gemini-service-tier"
FLEX_SHED_STATUS = 503
FLEX_SHED_MESSAGE = ("This model is currently experiencing high demand. Spikes in demand are usually temporary. "
                     "Please try again later.")


def served_tier(requested: str, rng: random.Random, config: EmulatorConfig) -> str:
    """The tier that serves a call: priority may be downgraded to standard (priority_downgrade_rate)."""
    if requested == "priority" and config.priority_downgrade_rate and rng.random() < config.priority_downgrade_rate:
        return "standard"
    return requested


def shed(requested: str, rng: random.Random, config: EmulatorConfig) -> bool:
    """Whether a Flex call is shed (flex_shed_rate); other tiers never are."""
    return requested == "flex" and bool(config.flex_shed_rate) and rng.random() < config.flex_shed_rate


def slowdown(tier: str, config: EmulatorConfig) -> tuple[float, float]:
    """(factor, extra seconds) applied to a call's latency: Flex is slower, the others are not."""
    if tier == "flex":
        return config.flex_latency_factor, config.flex_extra_ms / 1000
    return 1.0, 0.0
