"""The deterministic answer to a parsed request: candidates, parts, metadata and usage.

`build_answer` is a plain function (no HTTP, no pacing, no quota): the unary handler, the stream
planner and Batch Mode all start from it. Every figure is a pure function of (model, prompt text,
generation config, seed), so the same request always gets the same answer.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from emulator.catalog import ModelSpec
from emulator.request import GenerateRequest
from emulator.schema import instance
from emulator.signatures import issue
from emulator.textgen import count_words, cut, generate_text, natural_length
from emulator.tools import (
    SEARCH_TOOL_TOKENS,
    citation_metadata,
    code_execution_parts,
    grounding_metadata,
    url_context_metadata,
)

#: Most words of a thought summary part (its tokens are inside thoughtsTokenCount).
SUMMARY_WORDS = 30


@dataclass
class Candidate:
    """One candidate: parts (thought summary first), finish reason, token counts, candidate metadata."""

    parts: list[dict[str, Any]]
    finish_reason: str
    output_tokens: int
    thoughts: int
    index: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    #: The answer text, for streams that split it into chunks (None: no text part).
    text: str | None = None

    def body(self) -> dict[str, Any]:
        """The candidate as GenerateContentResponse.candidates[i]."""
        cand: dict[str, Any] = {"content": {"parts": self.parts, "role": "model"} if self.parts else {"role": "model"}}
        cand["finishReason"] = self.finish_reason
        cand["index"] = self.index
        return cand | self.extras


@dataclass
class Answer:
    """The whole answer to one request."""

    candidates: list[Candidate]
    usage: dict[str, Any]

    @property
    def output_tokens(self) -> int:
        """Answer tokens of every candidate (thoughts apart)."""
        return sum(c.output_tokens for c in self.candidates)


def build_answer(model: str, spec: ModelSpec, req: GenerateRequest, *, forced_tokens: int = 0,
                 served_tier: str = "standard") -> Answer:
    """Answer `req` as `model` would: `forced_tokens` is the output_tokens knob (0 = natural length)."""
    cands = [_candidate(model, spec, req, k, forced_tokens) for k in range(req.candidate_count)]
    return Answer(cands, usage_for(req, cands, served_tier))


def usage_for(req: GenerateRequest, cands: list[Candidate], served_tier: str) -> dict[str, Any]:
    """usageMetadata: prompt (text, media, cached), candidates, thoughts and tool-use tokens."""
    output = sum(c.output_tokens for c in cands)
    thoughts = sum(c.thoughts for c in cands)
    tool_use = SEARCH_TOOL_TOKENS if req.tools.google_search and "groundingMetadata" in cands[0].extras else 0
    usage: dict[str, Any] = {"promptTokenCount": req.prompt_tokens, "candidatesTokenCount": output,
                             "totalTokenCount": req.prompt_tokens + output + thoughts + tool_use,
                             "promptTokensDetails": req.token_details()}
    if req.cached_tokens:
        usage["cachedContentTokenCount"] = req.cached_tokens
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": req.cached_tokens}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if tool_use:
        usage["toolUsePromptTokenCount"] = tool_use
    usage["serviceTier"] = served_tier
    return usage


def answer_seed(model: str, req: GenerateRequest, index: int) -> str:
    """What determines candidate `index`'s answer: model, prompt, seed and candidate number."""
    parts = [req.prompt_text]
    if index:
        parts.append(f"[candidate {index}]")
    if req.seed is not None:
        parts.append(f"[seed {req.seed}]")
    return "\n".join(parts)


def _candidate(model: str, spec: ModelSpec, req: GenerateRequest, index: int, forced: int) -> Candidate:
    prompt = answer_seed(model, req, index)
    seed = int.from_bytes(hashlib.sha256(f"{model}\x00{prompt}".encode()).digest()[:8], "big")
    limit = req.max_output_tokens or spec.output_limit
    thoughts = min(req.thinking.tokens, limit)
    parts: list[dict[str, Any]] = []
    if req.thinking.include_thoughts and thoughts:
        summary = generate_text(model, f"{prompt}\n[thoughts]", min(thoughts, SUMMARY_WORDS))
        parts.append({"text": summary, "thought": True})
    call = None if req.answers_function else req.tools.function_to_call(req.last_user_text)
    if call is not None:
        return _call_candidate(model, spec, req, call, parts, index, seed, thoughts, prompt)
    extras: dict[str, Any] = {}
    if req.tools.code_execution:
        parts.extend(code_execution_parts(seed))
    text, finish, tokens = _text(model, prompt, req, seed, forced, limit - thoughts)
    if text is not None:
        parts.append({"text": text})
    if spec.gemini3 and parts:
        parts[-1]["thoughtSignature"] = issue(f"{model}\x00{prompt}")
    if req.tools.google_search:
        extras["groundingMetadata"] = grounding_metadata(req.last_user_text)
    if req.tools.url_context:
        extras["urlContextMetadata"] = url_context_metadata(req.prompt_text)
    citations = citation_metadata(req.prompt_text, text or "")
    if citations:
        extras["citationMetadata"] = citations
    if req.response_logprobs:
        extras.update(_logprobs(text or "", req.logprobs, seed))
    return Candidate(parts, finish, tokens, thoughts, index, extras, text)


def _call_candidate(model: str, spec: ModelSpec, req: GenerateRequest, decl: dict[str, Any],
                    parts: list[dict[str, Any]], index: int, seed: int, thoughts: int, prompt: str) -> Candidate:
    schema = decl.get("parametersJsonSchema")
    if schema is not None:
        args = instance(schema, seed, json_schema=True)
    else:
        args = instance(decl["parameters"], seed, json_schema=False) if decl.get("parameters") else {}
    call: dict[str, Any] = {"name": decl["name"], "args": args if isinstance(args, dict) else {}}
    if spec.gemini3:
        call = {"id": f"call-{seed % 10**8:08d}", **call}
    part: dict[str, Any] = {"functionCall": call}
    if spec.gemini3 or thoughts:
        part["thoughtSignature"] = issue(f"{model}\x00{prompt}\x00call")
    tokens = count_words(json.dumps(call))
    return Candidate([*parts, part], "STOP", tokens, thoughts, index)


def _text(model: str, prompt: str, req: GenerateRequest, seed: int, forced: int,
          room: int) -> tuple[str | None, str, int]:
    """The answer text (None when thoughts left no room), its finish reason and tokens."""
    if room <= 0:
        return None, "MAX_TOKENS", 0
    if req.response_mime_type == "application/json":
        if req.response_schema is not None:
            text = json.dumps(instance(req.response_schema, seed, json_schema=req.json_schema))
        else:
            text = json.dumps({"text": generate_text(model, prompt, forced or natural_length(model, prompt))})
    elif req.response_mime_type == "text/x.enum" and isinstance(req.response_schema, dict) \
            and req.response_schema.get("enum"):
        text = str(random.Random(seed).choice(req.response_schema["enum"]))
    else:
        text = generate_text(model, prompt, forced or natural_length(model, prompt))
    gen = cut(text, max_output_tokens=room, stop_sequences=req.stop_sequences)
    return gen.text, gen.finish_reason, gen.tokens


def _logprobs(text: str, top: int, seed: int) -> dict[str, Any]:
    """`avgLogprobs` and `logprobsResult`: one entry per word (the emulator's token)."""
    rng = random.Random(seed ^ 0x5EED)
    words = text.split() or [""]
    probs = [round(-rng.random() * 0.5, 6) for _ in words]
    chosen = [{"token": w, "logProbability": p} for w, p in zip(words, probs, strict=True)]
    result: dict[str, Any] = {"chosenCandidates": chosen}
    if top:
        result["topCandidates"] = [
            {"candidates": [c] + [{"token": rng.choice(words), "logProbability": round(p - 1 - i, 6)}
                                  for i in range(top - 1)]}
            for c, p in zip(chosen, probs, strict=True)
        ]
    avg = sum(probs) / len(probs)
    return {"avgLogprobs": round(avg, 6), "logprobsResult": result}
