"""`POST /{ver}/models/{model}:{generateContent|streamGenerateContent|countTokens}`.

A generate call goes: API key -> method and model known -> body valid -> scripted refusal (429)
-> quota admission (counts the call) -> scripted or random fault -> deterministic answer, paced
by `latency_ms` (unary only), `ttft_ms` and `tokens_per_second`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from aiohttp import web

from emulator.auth import check_key, fingerprint, request_key
from emulator.config import EmulatorConfig
from emulator.faults import ScriptedFault, roll
from emulator.models import model_version, not_found
from emulator.reqlog import CallInfo
from emulator.request import GenerateRequest, InvalidRequest, parse_count_tokens, parse_generate
from emulator.state import STATE_KEY, EmulatorState
from emulator.streaming import plan_stream, sleep_until, write_stream
from emulator.textgen import Generation, bare_model, find_tag, plan_generation
from emulator.wire import (
    QuotaKind,
    QuotaViolation,
    blocked_prompt_body,
    candidate,
    error_response,
    json_response,
    quota_error_body,
    response_body,
    truncated,
    usage,
)

#: The methods served on a model.
METHODS = ("generateContent", "streamGenerateContent", "countTokens")
#: Outcome logged for each fault kind (no fault: "ok").
OUTCOME_OF = {
    "status": "error",
    "hang": "hang",
    "midstream": "midstream_error",
    "malformed": "malformed",
    "safety_prompt": "safety",
    "safety_candidate": "safety",
}
ALT_SSE_ONLY = "The emulator serves streamGenerateContent only with alt=sse (what google-genai sends)."
#: Limit values quoted by scripted quota faults when the matching knob is unlimited.
NOMINAL_LIMITS: dict[QuotaKind, int] = {"rpm": 10, "tpm": 250_000, "rpd": 250}


async def model_action(request: web.Request) -> web.StreamResponse:
    """Dispatch `{model}:{method}` after the checks every call goes through."""
    state = request.app[STATE_KEY]
    start = asyncio.get_running_loop().time()
    model, _, method = request.match_info["target"].partition(":")
    model = bare_model(model)
    key = request_key(request)
    parse = parse_count_tokens if method == "countTokens" else parse_generate
    try:
        parsed: GenerateRequest | None = parse(await request.read())
        invalid: InvalidRequest | None = None
    except InvalidRequest as exc:
        parsed, invalid = None, exc
    tag = find_tag(parsed.prompt_text) if parsed else None
    call = CallInfo(time.time(), model, method, fingerprint(key), tag, api_version=request.path.split("/")[1])
    early = _precheck(request, state, call, key, invalid)
    if early is not None:
        return early
    assert parsed is not None
    if method == "countTokens":
        state.log.record(call, 200, "ok", prompt_tokens=parsed.prompt_tokens)
        tokens = parsed.prompt_tokens
        details = [{"modality": "TEXT", "tokenCount": tokens}]
        return json_response({"totalTokens": tokens, "promptTokensDetails": details})
    return await _generate(request, state, call, parsed, start)


def _precheck(
    request: web.Request, state: EmulatorState, call: CallInfo, key: str, invalid: InvalidRequest | None
) -> web.Response | None:
    config = state.config
    if (denied := check_key(key, config)) is not None:
        outcome, response = "auth", denied
    elif call.method not in METHODS or call.model not in config.models:
        outcome, response = "not_found", not_found(call.model, call.api_version or "", call.method)
    elif invalid is not None:
        outcome, response = "invalid", error_response(400, str(invalid), invalid.details)
    elif call.method == "streamGenerateContent" and request.query.get("alt") != "sse":
        outcome, response = "invalid", error_response(400, ALT_SSE_ONLY)
    else:
        return None
    state.log.record(call, response.status, outcome)
    return response


async def _generate(
    request: web.Request, state: EmulatorState, call: CallInfo, req: GenerateRequest, start: float
) -> web.StreamResponse:
    refused = _admit(state, call, req)
    if refused is not None:
        return refused
    config = state.config
    stream = call.method == "streamGenerateContent"
    fault = state.faults.take(req.prompt_text, refusal=False) or roll(state.rng, config, stream=stream)
    outcome = OUTCOME_OF[fault.kind] if fault is not None else "ok"
    if fault is not None and fault.kind == "status":
        state.log.record(call, fault.status or 500, outcome, prompt_tokens=req.prompt_tokens)
        return error_response(fault.status or 500, fault.message)
    gen = _plan(call.model, req.prompt_text, req, forced_tokens=config.output_tokens)
    meta = {"model_version": model_version(call.model), "response_id": _response_id()}
    if stream:
        plan = plan_stream(gen, fault, config, prompt_tokens=req.prompt_tokens, meta=meta)
        state.log.record(call, 200, outcome, prompt_tokens=req.prompt_tokens, output_tokens=plan.output_tokens)
        start = await _maybe_hang(fault, config, start)
        return await write_stream(request, plan.frames, start)
    body, tokens = _unary_body(call, req, gen, fault, meta)
    state.log.record(call, 200, outcome, prompt_tokens=req.prompt_tokens, output_tokens=tokens)
    start = await _maybe_hang(fault, config, start)
    rate = config.tokens_per_second
    await sleep_until(start + (config.latency_ms + config.ttft_ms) / 1000 + (tokens / rate if rate else 0))
    data = json.dumps(body, indent=2).encode()
    if fault is not None and fault.kind == "malformed":
        data = truncated(data)
    return web.Response(body=data, content_type="application/json", charset="UTF-8")


def _admit(state: EmulatorState, call: CallInfo, req: GenerateRequest) -> web.Response | None:
    """A 429 for a scripted refusal or a broken quota; None when the call is admitted (and counted)."""
    refusal = state.faults.take(req.prompt_text, refusal=True)
    if refusal is not None:
        return _refuse(state, call, req, _scripted_violation(refusal, state), retry=refusal.retry_delay_s is not None)
    violations = state.quota.admit(call.model, req.prompt_tokens, state.limits, now=call.ts)
    if violations:
        return _refuse(state, call, req, violations, retry=True)
    return None


async def _maybe_hang(fault: ScriptedFault | None, config: EmulatorConfig, start: float) -> float:
    """Sleep out a hang fault; return the (new) start of the answer's pacing."""
    if fault is None or fault.kind != "hang":
        return start
    await asyncio.sleep(config.hang_seconds if fault.hang_s is None else fault.hang_s)
    return asyncio.get_running_loop().time()


def _unary_body(
    call: CallInfo, req: GenerateRequest, gen: Generation, fault: ScriptedFault | None, meta: dict[str, str]
) -> tuple[dict[str, Any], int]:
    kind = fault.kind if fault is not None else None
    if kind == "safety_prompt":
        return blocked_prompt_body(prompt_tokens=req.prompt_tokens, **meta), 0
    if kind == "safety_candidate":
        return response_body([candidate(None, "SAFETY")], usage_metadata=usage(req.prompt_tokens, 0), **meta), 0
    gens = [gen]
    for index in range(1, req.candidate_count):
        prompt = f"{req.prompt_text}\n[candidate {index}]"
        gens.append(_plan(call.model, prompt, req))
    tokens = sum(g.tokens for g in gens)
    cands = [candidate(g.text, g.finish_reason, index) for index, g in enumerate(gens)]
    return response_body(cands, usage_metadata=usage(req.prompt_tokens, tokens), **meta), tokens


def _plan(model: str, prompt: str, req: GenerateRequest, *, forced_tokens: int = 0) -> Generation:
    """The answer to ``prompt`` under the request's generation config."""
    return plan_generation(model, prompt, forced_tokens=forced_tokens, max_output_tokens=req.max_output_tokens,
                           stop_sequences=req.stop_sequences,
                           json_output=req.response_mime_type == "application/json")


def _scripted_violation(fault: ScriptedFault, state: EmulatorState) -> list[QuotaViolation]:
    kind: QuotaKind = fault.kind.removeprefix("quota_") if fault.kind != "status" else "rpm"  # type: ignore[assignment]
    limit = getattr(state.config, kind) or NOMINAL_LIMITS[kind]
    return [QuotaViolation(kind, limit, fault.retry_delay_s or 0.0)]


def _refuse(
    state: EmulatorState, call: CallInfo, req: GenerateRequest, violations: list[QuotaViolation], *, retry: bool
) -> web.Response:
    state.log.record(call, 429, f"quota_{violations[0].kind}", prompt_tokens=req.prompt_tokens)
    body = quota_error_body(call.model, violations, retry_info=retry and not state.config.omit_retry_info)
    return json_response(body, 429)


def _response_id() -> str:
    return secrets.token_urlsafe(17)
