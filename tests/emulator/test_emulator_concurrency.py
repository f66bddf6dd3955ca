"""The emulator holds 1,000 slow concurrent streams (about 2 s each) without stretching them."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import psutil

MODEL = "gemini-3.5-flash"
CONCURRENCY = 1000
#: Each stream: 8 chunks of 4 words; the last is due at 0.6 + 28 / 20 = 2.0 s.
KNOBS = {"ttft_ms": 600, "tokens_per_second": 20, "output_tokens": 30, "chunk_tokens": 4}
EXPECTED_S = 2.0


async def _one_stream(session: aiohttp.ClientSession, url: str, index: int) -> tuple[int, float]:
    body = {"contents": [{"role": "user", "parts": [{"text": f"concurrent {index} [[tag:load]]"}]}]}
    started = time.monotonic()
    async with session.post(url, json=body, headers={"x-goog-api-key": "load-key"}) as response:
        assert response.status == 200
        frames = 0
        async for line in response.content:
            if line.startswith(b"data: "):
                frames += 1
    return frames, time.monotonic() - started


async def _run_all(base_url: str) -> tuple[list[tuple[int, float]], float]:
    url = f"{base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
        started = time.monotonic()
        results = await asyncio.gather(*(_one_stream(session, url, i) for i in range(CONCURRENCY)))
        return results, time.monotonic() - started


def test_thousand_concurrent_slow_streams(emulator) -> None:
    emulator.configure(**KNOBS)
    server = psutil.Process(emulator.pid)
    cpu_before = server.cpu_times()

    results, wall = asyncio.run(_run_all(emulator.url))

    cpu_after = server.cpu_times()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    durations = sorted(duration for _, duration in results)
    print(
        f"\n{CONCURRENCY} streams: wall {wall:.2f} s, per-stream min {durations[0]:.2f} "
        f"p50 {durations[len(durations) // 2]:.2f} max {durations[-1]:.2f} s, emulator CPU {cpu:.2f} s"
    )
    assert all(frames == 8 for frames, _ in results)
    assert durations[0] >= EXPECTED_S - 0.05
    assert wall < 8.0
    assert len(emulator.requests(tag="load")) == CONCURRENCY
