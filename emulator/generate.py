"""`POST /{ver}/models/{model}:{generateContent|streamGenerateContent|countTokens}`.

A generate call goes: payload size -> API key -> method and model served -> body valid -> scripted
refusal (429, or a Flex shed) -> quota admission (counts the call, media tokens included) -> random
Flex shed -> scripted or random fault -> deterministic answer, paced by `latency_ms` (unary only),
`ttft_ms`, thinking and output tokens at `tokens_per_second`, slowed for Flex.

`generate_content` and `count_tokens` are the same logic as plain functions (request dict + model ->
status and body), without quota, faults, pacing or logging: Batch Mode answers its lines with them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulator.answer import Answer, build_answer
from emulator.auth import check_key, fingerprint, request_key
from emulator.cachestore import NOT_FOUND_MESSAGE
from emulator.catalog import model_status, spec_for
from emulator.config import EmulatorConfig
from emulator.faults import ScriptedFault, roll
from emulator.models import model_version, not_found, not_found_message
from emulator.reqlog import CallInfo
from emulator.request import (
    CacheNotFound,
    GenerateRequest,
    InvalidRequest,
    ParseContext,
    parse_count_tokens,
    parse_generate,
)
from emulator.state import STATE_KEY, EmulatorState
from emulator.streaming import Pacing, plan_stream, sleep_until, write_stream
from emulator.textgen import bare_model, find_tag
from emulator.tiers import FLEX_SHED_MESSAGE, FLEX_SHED_STATUS, TIER_HEADER, served_tier, shed, slowdown
from emulator.wire import (
    QuotaKind,
    QuotaViolation,
    blocked_prompt_body,
    candidate,
    error_body,
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
OUTCOME_OF = {"status": "error", "hang": "hang", "midstream": "midstream_error", "malformed": "malformed",
              "safety_prompt": "safety", "safety_candidate": "safety"}
ALT_SSE_ONLY = "The emulator serves streamGenerateContent only with alt=sse (what google-genai sends)."
#: What Google's front end answers to a body over the limit (the figure is the limit in bytes).
TOO_LARGE = "Request payload size exceeds the limit: {limit} bytes."
#: Limit values quoted by scripted quota faults when the matching knob is unlimited.
NOMINAL_LIMITS: dict[QuotaKind, int] = {"rpm": 10, "tpm": 250_000, "rpd": 250}


@dataclass
class GenerateResult:
    """The outcome of a call as a plain value: HTTP status, JSON body, token counts."""

    status: int
    body: dict[str, Any]
    prompt_tokens: int = 0
    output_tokens: int = 0


def parse_context(state: EmulatorState, model: str, version: str) -> ParseContext:
    """Validation context of `model` under the state's current config."""
    return ParseContext(spec_for(model), version, state.config.default_thinking, state.file_lookup,
                        state.caches.lookup)


def _parse(state: EmulatorState, model: str, method: str, version: str,
           data: dict[str, Any]) -> tuple[GenerateRequest | None, GenerateResult | None]:
    parse = parse_count_tokens if method == "countTokens" else parse_generate
    try:
        return parse(data, parse_context(state, model, version)), None
    except InvalidRequest as exc:
        return None, GenerateResult(400, error_body(400, str(exc), exc.details))
    except CacheNotFound:
        return None, GenerateResult(403, error_body(403, NOT_FOUND_MESSAGE))


def generate_content(state: EmulatorState, model: str, request: dict[str, Any], *,
                     version: str = "v1beta") -> GenerateResult:
    """The answer to one GenerateContentRequest dict (a Batch Mode line), or its error envelope."""
    model = bare_model(model)
    if not state.config.served(model):
        return GenerateResult(404, error_body(404, not_found_message(model, version, "generateContent")))
    req, failure = _parse(state, model, "generateContent", version, request)
    if failure is not None:
        return failure
    assert req is not None
    answer = build_answer(model, spec_for(model), req, forced_tokens=state.config.output_tokens,
                          served_tier=req.service_tier)
    body = _unary_body(model, req, answer, None, _meta(state.config, model))
    return GenerateResult(200, body, req.prompt_tokens, answer.output_tokens)


def count_tokens(state: EmulatorState, model: str, request: dict[str, Any], *,
                 version: str = "v1beta") -> GenerateResult:
    """The `countTokens` answer for a request dict (contents or generateContentRequest), or its error."""
    model = bare_model(model)
    if not state.config.served(model):
        return GenerateResult(404, error_body(404, not_found_message(model, version, "countTokens")))
    req, failure = _parse(state, model, "countTokens", version, request)
    if failure is not None:
        return failure
    assert req is not None
    return GenerateResult(200, _count_body(req), req.prompt_tokens)


def _count_body(req: GenerateRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"totalTokens": req.prompt_tokens, "promptTokensDetails": req.token_details()}
    if req.cached_tokens:
        body["cachedContentTokenCount"] = req.cached_tokens
    return body


def _meta(config: EmulatorConfig, model: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"model_version": model_version(model), "response_id": secrets.token_urlsafe(17)}
    if model in config.deprecated_models:
        meta["model_status"] = model_status(model, config.deprecated_models[model])
    return meta


async def model_action(request: web.Request) -> web.StreamResponse:
    """Dispatch `{model}:{method}` after the checks every call goes through."""
    state = request.app[STATE_KEY]
    start = asyncio.get_running_loop().time()
    model, _, method = request.match_info["target"].partition(":")
    model, version, key = bare_model(model), request.path.split("/")[1], request_key(request)
    call = CallInfo(time.time(), model, method, fingerprint(key), request_id=secrets.token_hex(8), api_version=version)
    if request.content_length is not None and request.content_length > state.config.max_request_bytes:
        state.log.record(call, 400, "too_large")
        return error_response(400, TOO_LARGE.format(limit=state.config.max_request_bytes))
    data, bad_json = _read_json(await request.read())
    if data is not None:
        state.log.keep_body(call.request_id, data)
        tier = data.get("serviceTier", data.get("service_tier"))
        call.service_tier = tier.lower().removeprefix("service_tier_") if isinstance(tier, str) else None
    req, failure = (None, bad_json) if data is None else _parse(state, model, method, version, data)
    call.tag = find_tag(req.prompt_text) if req else None
    early = _precheck(request, state, call, key, failure)
    if early is not None:
        return early
    assert req is not None
    if method == "countTokens":
        state.log.record(call, 200, "ok", prompt_tokens=req.prompt_tokens)
        return json_response(_count_body(req))
    return await _generate(request, state, call, req, start)


def _read_json(raw: bytes) -> tuple[dict[str, Any] | None, GenerateResult | None]:
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        return None, GenerateResult(400, error_body(400, f"Invalid JSON payload received. {exc}"))
    if not isinstance(data, dict):
        return None, GenerateResult(400, error_body(400, "Invalid JSON payload received. Root element must be a "
                                                          "message."))
    return data, None


def _precheck(request: web.Request, state: EmulatorState, call: CallInfo, key: str,
              failure: GenerateResult | None) -> web.Response | None:
    config = state.config
    if (denied := check_key(key, config)) is not None:
        outcome, response = "auth", denied
    elif call.method not in METHODS or not config.served(call.model):
        outcome, response = "not_found", not_found(call.model, call.api_version or "", call.method)
    elif failure is not None:
        outcome = "permission_denied" if failure.status == 403 else "invalid"
        response = json_response(failure.body, failure.status)
    elif call.method == "streamGenerateContent" and request.query.get("alt") != "sse":
        outcome, response = "invalid", error_response(400, ALT_SSE_ONLY)
    else:
        return None
    state.log.record(call, response.status, outcome)
    return response


async def _generate(request: web.Request, state: EmulatorState, call: CallInfo, req: GenerateRequest,
                    start: float) -> web.StreamResponse:
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
    tier = served_tier(req.service_tier, state.rng, config)
    answer = build_answer(call.model, spec_for(call.model), req, forced_tokens=config.output_tokens, served_tier=tier)
    meta = _meta(config, call.model)
    pacing = _pacing(config, tier, answer)
    if stream:
        plan = plan_stream(answer, fault, config, pacing=pacing, meta=meta)
        state.log.record(call, 200, outcome, prompt_tokens=req.prompt_tokens, output_tokens=plan.output_tokens)
        start = await _maybe_hang(fault, config, start)
        return await write_stream(request, plan.frames, start, headers={TIER_HEADER: tier})
    body = _unary_body(call.model, req, answer, fault, meta)
    tokens = answer.output_tokens if fault is None or fault.kind not in ("safety_prompt", "safety_candidate") else 0
    state.log.record(call, 200, outcome, prompt_tokens=req.prompt_tokens, output_tokens=tokens)
    start = await _maybe_hang(fault, config, start)
    await sleep_until(start + config.latency_ms / 1000 * slowdown(tier, config)[0] + pacing.at(answer.output_tokens))
    data = json.dumps(body, indent=2).encode()
    if fault is not None and fault.kind == "malformed":
        data = truncated(data)
    return web.Response(body=data, content_type="application/json", charset="UTF-8", headers={TIER_HEADER: tier})


def _pacing(config: EmulatorConfig, tier: str, answer: Answer) -> Pacing:
    factor, extra = slowdown(tier, config)
    rate = config.tokens_per_second
    return Pacing(ttft=config.ttft_ms / 1000 * factor + extra, per_token=factor / rate if rate else 0.0,
                  lead_tokens=answer.candidates[0].thoughts)


def _admit(state: EmulatorState, call: CallInfo, req: GenerateRequest) -> web.Response | None:
    """A 429 or Flex shed for a scripted refusal or a broken quota; None when the call is admitted (and counted)."""
    refusal = state.faults.take(req.prompt_text, refusal=True, tier=req.service_tier)
    if refusal is not None and refusal.kind == "flex_shed":
        return _shed(state, call, req, refusal.message)
    if refusal is not None:
        return _refuse(state, call, req, _scripted_violation(refusal, state), retry=refusal.retry_delay_s is not None)
    if shed(req.service_tier, state.rng, state.config):
        return _shed(state, call, req, None)
    violations = state.quota.admit(call.model, req.prompt_tokens, state.limits, now=call.ts)
    if violations:
        return _refuse(state, call, req, violations, retry=True)
    return None


def _shed(state: EmulatorState, call: CallInfo, req: GenerateRequest, message: str | None) -> web.Response:
    state.log.record(call, FLEX_SHED_STATUS, "flex_shed", prompt_tokens=req.prompt_tokens)
    return error_response(FLEX_SHED_STATUS, message or FLEX_SHED_MESSAGE)


async def _maybe_hang(fault: ScriptedFault | None, config: EmulatorConfig, start: float) -> float:
    """Sleep out a hang fault; return the (new) start of the answer's pacing."""
    if fault is None or fault.kind != "hang":
        return start
    await asyncio.sleep(config.hang_seconds if fault.hang_s is None else fault.hang_s)
    return asyncio.get_running_loop().time()


def _unary_body(model: str, req: GenerateRequest, answer: Answer, fault: ScriptedFault | None,
                meta: dict[str, Any]) -> dict[str, Any]:
    kind = fault.kind if fault is not None else None
    if kind == "safety_prompt":
        return blocked_prompt_body(prompt_tokens=req.prompt_tokens, **meta)
    if kind == "safety_candidate":
        return response_body([candidate(None, "SAFETY")], usage_metadata=usage(req.prompt_tokens, 0), **meta)
    return response_body([c.body() for c in answer.candidates], usage_metadata=answer.usage, **meta)


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
