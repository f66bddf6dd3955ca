"""`streamGenerateContent?alt=sse`: the frames of one answer and their paced delivery.

The text is split into chunks of `chunk_tokens` words. Chunk k is due at
`ttft + (words before chunk k) / tokens_per_second` after the call started (absolute deadlines, so
a busy loop does not add drift); `finishReason` and `usageMetadata` ride on the last frame.
Faults change the tail: `midstream` sends half the chunks then an error object (raw multi-line
JSON by default, as Google's front end does, or an SSE `data:` frame), `malformed` sends one chunk
then a truncated frame, `safety_candidate` sends half the chunks then a SAFETY stop without
content, and `safety_prompt` sends a single blocked-prompt frame.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulator.config import EmulatorConfig
from emulator.faults import ScriptedFault
from emulator.textgen import Generation, count_words, split_chunks
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
class _Chunks:
    """The chunks of one answer, with their due times and bodies."""

    gen: Generation
    config: EmulatorConfig
    prompt_tokens: int
    meta: dict[str, str]
    texts: list[str]

    def at(self, k: int) -> float:
        rate = self.config.tokens_per_second
        return self.config.ttft_ms / 1000 + (k * self.config.chunk_tokens / rate if rate else 0.0)

    def body(self, k: int, final: bool = False) -> dict[str, Any]:
        meta_usage = usage(self.prompt_tokens, self.gen.tokens) if final else None
        cand = candidate(self.texts[k], self.gen.finish_reason if final else None)
        return response_body([cand], usage_metadata=meta_usage, **self.meta)

    def partial(self, count: int) -> list[Frame]:
        return [Frame(self.at(k), sse_frame(self.body(k))) for k in range(count)]

    def complete(self) -> StreamPlan:
        last = len(self.texts) - 1
        frames = [Frame(self.at(k), sse_frame(self.body(k, k == last))) for k in range(last + 1)]
        return StreamPlan(frames, self.gen.tokens)

    def midstream(self, fault: ScriptedFault) -> StreamPlan:
        cut = max(1, len(self.texts) // 2)
        error = stream_error_frame(fault.status or 500, fault.message, self.config.midstream_error_format)
        return StreamPlan([*self.partial(cut), Frame(self.at(cut), error)], _words(self.texts[:cut]))

    def malformed(self) -> StreamPlan:
        broken = self.body(1) if len(self.texts) > 1 else self.body(0, final=True)
        return StreamPlan([*self.partial(1), Frame(self.at(1), garbage_frame(broken))], _words(self.texts[:1]))

    def safety_stop(self) -> StreamPlan:
        cut = len(self.texts) // 2
        sent = _words(self.texts[:cut])
        stop = response_body([candidate(None, "SAFETY")], usage_metadata=usage(self.prompt_tokens, sent), **self.meta)
        return StreamPlan([*self.partial(cut), Frame(self.at(cut), sse_frame(stop))], sent)


def plan_stream(
    gen: Generation,
    fault: ScriptedFault | None,
    config: EmulatorConfig,
    *,
    prompt_tokens: int,
    meta: dict[str, str],
) -> StreamPlan:
    """The frames for `gen`, altered by `fault`; `meta` holds modelVersion and responseId keys."""
    kind = fault.kind if fault is not None else None
    if kind == "safety_prompt":
        body = blocked_prompt_body(prompt_tokens=prompt_tokens, **meta)
        return StreamPlan([Frame(config.ttft_ms / 1000, sse_frame(body))], 0)
    chunks = _Chunks(gen, config, prompt_tokens, meta, split_chunks(gen.text, config.chunk_tokens))
    if kind == "midstream":
        assert fault is not None
        return chunks.midstream(fault)
    if kind == "malformed":
        return chunks.malformed()
    if kind == "safety_candidate":
        return chunks.safety_stop()
    return chunks.complete()


def _words(chunks: Sequence[str]) -> int:
    return count_words("".join(chunks))


async def sleep_until(deadline: float) -> None:
    """Sleep until the event loop's clock reaches `deadline`."""
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


async def write_stream(request: web.Request, frames: Sequence[Frame], start: float) -> web.StreamResponse:
    """Send the 200 headers with the first frame, each frame at `start + frame.at`, then end."""
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    # A client that hangs up mid-stream is normal (timeouts, cancellation); nothing to report.
    with contextlib.suppress(ConnectionError):
        for frame in frames:
            await sleep_until(start + frame.at)
            if not response.prepared:
                await response.prepare(request)
            await response.write(frame.data)
        await response.write_eof()
    return response
