"""Thought signatures: issued on Gemini 3 answers, checked when a client sends them back.

An issued signature is `MAGIC + nonce + HMAC(nonce)`, base64: deterministic per answer, not bound to
the part's text (a streamed answer's text is split across chunks), and recognisable, so a signature
the emulator did not issue is refused as the API refuses a damaged one: 400 "Corrupted thought
signature." (quoted in many public reports). The two placeholder values Google documents for
histories built elsewhere are accepted. A Gemini 3 model turn after the last user message whose
first `functionCall` part has no signature is refused with the API's message (live probe of
gemini-3.5-flash-lite, 2026-09, published in a public repository).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from emulator.media import decode_base64
from emulator.protos import InvalidRequest

MAGIC = b"\x12\x20emu"
_KEY = b"gemq-emulator-thought-signatures"
#: Documented placeholders that skip validation (ai.google.dev/gemini-api/docs/thought-signatures).
PLACEHOLDERS = frozenset({"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"})
MISSING = ("Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
           "correctly, and missing thought_signature may lead to degraded model performance. Additional data, "
           "function call `{name}` , position {position}. Please refer to "
           "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")


def issue(seed: str) -> str:
    """A signature for the answer identified by `seed`."""
    nonce = hashlib.sha256(seed.encode()).digest()[:16]
    mac = hmac.new(_KEY, nonce, hashlib.sha256).digest()[:16]
    return base64.b64encode(MAGIC + nonce + mac).decode()


def issued(signature: str) -> bool:
    """True for a signature this emulator issued (whatever base64 alphabet carried it back)."""
    raw = decode_base64(signature)
    if raw is None or len(raw) != len(MAGIC) + 32 or not raw.startswith(MAGIC):
        return False
    nonce, mac = raw[len(MAGIC):len(MAGIC) + 16], raw[len(MAGIC) + 16:]
    return hmac.compare_digest(mac, hmac.new(_KEY, nonce, hashlib.sha256).digest()[:16])


def check_signatures(contents: list[dict[str, Any]]) -> None:
    """Refuse forged signatures anywhere, and unsigned function calls in the current turn (Gemini 3)."""
    for content in contents:
        for part in content.get("parts") or []:
            signature = part.get("thoughtSignature")
            if signature is not None and signature not in PLACEHOLDERS and not issued(signature):
                raise InvalidRequest("Corrupted thought signature.")
    start = max((i for i, c in enumerate(contents) if _is_user_text(c)), default=0)
    for position, content in enumerate(contents[start:], start=start + 1):
        calls = [p for p in content.get("parts") or [] if "functionCall" in p]
        if content.get("role") == "model" and calls and calls[0].get("thoughtSignature") is None:
            name = calls[0]["functionCall"].get("name")
            raise InvalidRequest(MISSING.format(name=f"default_api:{name}", position=position))


def _is_user_text(content: dict[str, Any]) -> bool:
    parts = content.get("parts") or []
    return content.get("role") in (None, "", "user") and any("functionResponse" not in p for p in parts)
