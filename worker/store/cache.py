"""The response cache: successful answers kept per tenant, served again without calling Gemini.

A job asks for it with ``"cache": true``.  The key is a SHA-256 of the tenant, the model asked for
and everything that shapes the answer (contents, system instruction, generation config, safety
settings), under the tenant's own prefix (``keys.cache``), so tenants never share entries.  Only
successful results are stored, for ``GEMQ_CACHE_TTL`` seconds.  Jobs of a conversation never use
the cache (their history changes with every exchange; the request model refuses the combination).
Two identical requests that miss at the same time both call Gemini: there is no single-flight.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis

from worker.core import keys
from worker.core.settings import Settings

#: Parts of a stored request that shape the answer (``fallback_models`` only says who may answer).
KEYED_FIELDS = ("contents", "system_instruction", "generation_config", "safety_settings")


def request_hash(tenant: str, model: str, request: dict[str, Any]) -> str:
    """A stable hash of what determines the answer, independent of key order."""
    material = {"tenant": tenant, "model": model, **{name: request.get(name) for name in KEYED_FIELDS}}
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    """Reads and writes cached results for jobs that asked for the cache."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings

    def key_for(self, record: dict[str, str]) -> str | None:
        """The cache key of a job, or ``None`` when the job does not use the cache."""
        if record.get("cache") != "1" or record.get("conversation_id"):
            return None
        request = json.loads(record["request"])
        return keys.cache(record["tenant"], request_hash(record["tenant"], record["model"], request))

    def get(self, record: dict[str, str]) -> dict[str, Any] | None:
        """The cached result for the job, marked ``cached``, or ``None``."""
        key = self.key_for(record)
        raw = self.redis.get(key) if key else None
        if raw is None:
            return None
        return {**json.loads(raw), "cached": True, "time_to_first_token_ms": None}

    def put(self, record: dict[str, str], result: dict[str, Any]) -> None:
        """Keep a successful result for the cache TTL."""
        key = self.key_for(record)
        if key and not result.get("cached") and self.settings.cache_ttl > 0:
            self.redis.set(key, json.dumps(result), ex=self.settings.cache_ttl)
