"""`streamGenerateContent?alt=sse`: the frames of one answer and their paced delivery.

The answer's parts become frames: a thought summary, code-execution parts and a function call each
travel in a frame of their own; the answer text is split into chunks of `chunk_tokens` words (the
thought signature rides on the last chunk). Frame k is due at `ttft + (thought tokens + answer
words before frame k) * per_token` after the call started (absolute deadlines, so a busy loop does
not add drift); `finishReason`, candidate metadata and `usageMetadata` ride on the last frame.
Faults change the tail: `midstream` sends half the frames then an error object (raw multi-line
JSON by default, as Google's front end does, or an SSE `data:` frame), `malformed` sends one frame
then a truncated frame, `safety_candidate` sends half the frames then a SAFETY stop without
content, and `safety_prompt` sends a single blocked-prompt frame.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from emulator.answer import Answer
from emulator.config import EmulatorConfig
from emulator.faults import ScriptedFault
from emulator.textgen import count_words, split_chunks
from emulator.wire import (
    blocked_prompt_body,
    candidate,
    garbage_frame,
    response_body,
    sse_frame,
    stream_error_frame,
    usage,
)

#: Headers of a 200 stream (as the real API sends them, minus the cookie-ish ones).
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Content-Disposition": "attachment",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Frame:
    """Bytes to write `at` seconds after the stream's start."""

    at: float
    data: bytes


@dataclass(frozen=True)
class StreamPlan:
    """Frames of one stream and the output tokens they carry."""

    frames: list[Frame]
    output_tokens: int


@dataclass(frozen=True)
class Pacing:
    """When stream frames are due: `ttft` seconds, then `per_token` seconds per output token."""

    ttft: float = 0.0
    per_token: float = 0.0
    #: Tokens spent before the first frame (thinking), paced like output tokens.
    lead_tokens: int = 0

    def at(self, tokens_before: int) -> float:
        """Seconds after the start at which the frame after `tokens_before` answer tokens is due."""
        return self.ttft + (self.lead_tokens + tokens_before) * self.per_token


@dataclass(frozen=True)
class _Pieces:
    """The frames of one answer: the parts each carries and the answer tokens before it."""

    answer: Answer
    pacing: Pacing
    meta: dict[str, Any]
    parts: list[list[dict[str, Any]]]
    before: list[int]

    def body(self, k: int, final: bool = False) -> dict[str, Any]:
        cand = self.answer.candidates[0]
        body_cand: dict[str, Any] = {"content": {"parts": self.parts[k], "role": "model"}, "index": 0}
        if final:
            body_cand = {**body_cand, "finishReason": cand.finish_reason, **cand.extras}
            if not self.parts[k]:
                body_cand["content"] = {"role": "model"}
        return response_body([body_cand], usage_metadata=self.answer.usage if final else None, **self.meta)

    def partial(self, count: int) -> list[Frame]:
        return [Frame(self.pacing.at(self.before[k]), sse_frame(self.body(k))) for k in range(count)]

    def complete(self) -> StreamPlan:
        last = len(self.parts) - 1
        frames = [Frame(self.pacing.at(self.before[k]), sse_frame(self.body(k, k == last))) for k in range(last + 1)]
        return StreamPlan(frames, self.answer.candidates[0].output_tokens)

    def midstream(self, fault: ScriptedFault, fmt: Literal["raw", "sse"]) -> StreamPlan:
        cut = max(1, len(self.parts) // 2)
        error = stream_error_frame(fault.status or 500, fault.message, fmt)
        return StreamPlan([*self.partial(cut), Frame(self.pacing.at(self.before[cut]), error)], self.before[cut])

    def malformed(self) -> StreamPlan:
        broken = self.body(1) if len(self.parts) > 1 else self.body(0, final=True)
        frames = [*self.partial(1), Frame(self.pacing.at(self.before[1]), garbage_frame(broken))]
        return StreamPlan(frames, self.before[1])

    def safety_stop(self) -> StreamPlan:
        cut = len(self.parts) // 2
        sent = self.before[cut]
        prompt_tokens = self.answer.usage["promptTokenCount"]
        stop = response_body([candidate(None, "SAFETY")], usage_metadata=usage(prompt_tokens, sent), **self.meta)
        return StreamPlan([*self.partial(cut), Frame(self.pacing.at(sent), sse_frame(stop))], sent)


def _split(answer: Answer, chunk_tokens: int) -> tuple[list[list[dict[str, Any]]], list[int]]:
    """Frame parts: non-text parts as they come, the answer text in chunks of `chunk_tokens` words."""
    cand = answer.candidates[0]
    frames: list[list[dict[str, Any]]] = []
    for part in cand.parts:
        if "text" in part and not part.get("thought") and part["text"] == cand.text:
            chunks = split_chunks(part["text"], chunk_tokens)
            frames.extend([{"text": chunk}] for chunk in chunks)
            if "thoughtSignature" in part:
                frames[-1][0]["thoughtSignature"] = part["thoughtSignature"]
        else:
            frames.append([part])
    frames = frames or [[]]
    before = [0]
    for frame in frames:
        before.append(before[-1] + sum(count_words(p["text"]) for p in frame if "text" in p and not p.get("thought")))
    return frames, before


def plan_stream(
    answer: Answer,
    fault: ScriptedFault | None,
    config: EmulatorConfig,
    *,
    pacing: Pacing,
    meta: dict[str, Any],
) -> StreamPlan:
    """The frames for `answer`, altered by `fault`; `meta` holds modelVersion, responseId (and modelStatus)."""
    kind = fault.kind if fault is not None else None
    if kind == "safety_prompt":
        body = blocked_prompt_body(prompt_tokens=answer.usage["promptTokenCount"], **meta)
        return StreamPlan([Frame(pacing.ttft, sse_frame(body))], 0)
    frames, before = _split(answer, config.chunk_tokens)
    pieces = _Pieces(answer, pacing, meta, frames, before)
    if kind == "midstream":
        assert fault is not None
        return pieces.midstream(fault, config.midstream_error_format)
    if kind == "malformed":
        return pieces.malformed()
    if kind == "safety_candidate":
        return pieces.safety_stop()
    return pieces.complete()


async def sleep_until(deadline: float) -> None:
    """Sleep until the event loop's clock reaches `deadline`."""
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


async def write_stream(request: web.Request, frames: Sequence[Frame], start: float,
                       headers: dict[str, str] | None = None) -> web.StreamResponse:
    """Send the 200 headers with the first frame, each frame at `start + frame.at`, then end."""
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, **(headers or {})})
    # A client that hangs up mid-stream is normal (timeouts, cancellation); nothing to report.
    with contextlib.suppress(ConnectionError):
        for frame in frames:
            await sleep_until(start + frame.at)
            if not response.prepared:
                await response.prepare(request)
            await response.write(frame.data)
        await response.write_eof()
    return response
