"""CPU per Gemini call in the client: google-genai streamed and unary, and the same stream over bare httpx2.

One thread, the emulator at zero latency in its own process, 1,000 calls each after 100 to warm up.
The difference between the SDK's stream and httpx2's is what the SDK itself costs per call (request
and response models, converters), which every job pays whatever runs it.

    .venv/bin/python bench/sdk_cost.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx2
from google import genai
from google.genai import types

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import machine  # noqa: E402
from procs import EmulatorProcess  # noqa: E402

MODEL = "gemini-2.5-flash"


def measure(call: Callable[[int], object], calls: int) -> dict[str, float]:
    """CPU and wall milliseconds per call."""
    for i in range(100):
        call(i)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(calls):
        call(i)
    return {"cpu_ms": round((time.process_time() - cpu) * 1000 / calls, 3),
            "wall_ms": round((time.perf_counter() - wall) * 1000 / calls, 3)}


def main() -> None:
    """Measure the three ways of calling; JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gemq-bench-") as tmp:
        emulator = EmulatorProcess(Path(tmp) / "emulator.log").start()
        try:
            client = genai.Client(api_key="bench", http_options=types.HttpOptions(
                base_url=emulator.url, api_version="v1beta", timeout=30_000, client_args={"trust_env": False}))
            http = httpx2.Client(base_url=emulator.url, trust_env=False)

            def sdk_stream(i: int) -> str:
                return "".join(c.text or "" for c in client.models.generate_content_stream(
                    model=MODEL, contents=f"throughput {i}"))

            def sdk_unary(i: int) -> str | None:
                return client.models.generate_content(model=MODEL, contents=f"throughput {i}").text

            def bare_stream(i: int) -> bytes:
                body = {"contents": [{"role": "user", "parts": [{"text": f"throughput {i}"}]}]}
                with http.stream("POST", f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
                                 headers={"x-goog-api-key": "bench"}, json=body) as response:
                    return b"".join(response.iter_bytes())

            results = {name: measure(call, args.calls) for name, call in
                       [("sdk_stream", sdk_stream), ("sdk_unary", sdk_unary), ("httpx2_stream", bare_stream)]}
        finally:
            emulator.stop()
    print(json.dumps({"per_call": results, "args": vars(args), "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
